//! Organisations, service accounts and API keys.

use custody_api::{CreateServiceAccountRequest, ServiceAccount};
use custody_domain::Role;
use custody_ledger::EntryKind;
use serde_json::json;
use sqlx::AnyConnection;
use sqlx::Row;

use crate::ledger::LedgerWriter;
use crate::util::now_ms;
use crate::{Store, StoreError, StoreResult};

/// Who is calling: resolved from an API key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub org_id: i64,
    pub org: String,
    pub service_account: String,
    pub role: Role,
    /// May create organisations (the bootstrap key's account).
    pub server_admin: bool,
}

/// A key to store: the server generates the secret; only its hash is kept.
#[derive(Debug, Clone)]
pub struct NewApiKey {
    pub id: String,
    pub hash: Vec<u8>,
    pub description: Option<String>,
    pub expires_at: Option<i64>,
}

pub const BOOTSTRAP_ORG: &str = "default";
const BOOTSTRAP_ACCOUNT: &str = "bootstrap-admin";
const FIRST_ADMIN: &str = "admin";

impl Store {
    /// On an empty store, creates the `default` organisation with a
    /// server-admin account holding `key`. Returns false (and writes
    /// nothing) if any organisation exists.
    pub async fn bootstrap(&self, key: NewApiKey) -> StoreResult<bool> {
        self.db
            .write(move |c| {
                Box::pin(async move {
                    let n: i64 = sqlx::query("SELECT COUNT(*) FROM orgs")
                        .fetch_one(&mut *c)
                        .await?
                        .try_get(0)?;
                    if n > 0 {
                        return Ok(false);
                    }
                    create_org_tx(c, BOOTSTRAP_ORG, BOOTSTRAP_ACCOUNT, true, &key).await?;
                    Ok(true)
                })
            })
            .await
    }

    /// Creates an organisation with an `admin` service account holding `key`.
    pub async fn create_org(&self, name: &str, key: NewApiKey) -> StoreResult<()> {
        let name = name.to_string();
        self.db
            .write(move |c| {
                Box::pin(async move {
                    let exists = sqlx::query("SELECT 1 FROM orgs WHERE name = $1")
                        .bind(&name)
                        .fetch_optional(&mut *c)
                        .await?;
                    if exists.is_some() {
                        return Err(StoreError::Conflict(format!("org '{name}' already exists")));
                    }
                    create_org_tx(c, &name, FIRST_ADMIN, false, &key).await
                })
            })
            .await
    }

    /// Resolves a key hash to its principal; expired or revoked keys resolve
    /// to nothing.
    pub async fn authenticate(&self, key_hash: &[u8]) -> StoreResult<Option<Principal>> {
        let row = sqlx::query(
            "SELECT o.id, o.name, s.name, s.role, s.server_admin, k.expires_at, k.revoked_at \
             FROM api_keys k JOIN service_accounts s ON s.id = k.service_account_id \
             JOIN orgs o ON o.id = s.org_id WHERE k.key_hash = $1",
        )
        .bind(key_hash.to_vec())
        .fetch_optional(&self.db.read)
        .await?;
        let Some(r) = row else { return Ok(None) };
        let expires_at: Option<i64> = r.try_get(5)?;
        let revoked_at: Option<i64> = r.try_get(6)?;
        let now = now_ms();
        if revoked_at.is_some() || expires_at.is_some_and(|t| t <= now) {
            return Ok(None);
        }
        let role: String = r.try_get(3)?;
        Ok(Some(Principal {
            org_id: r.try_get(0)?,
            org: r.try_get(1)?,
            service_account: r.try_get(2)?,
            role: Role::parse(&role)
                .ok_or_else(|| StoreError::Corrupt(format!("unknown role '{role}'")))?,
            server_admin: r.try_get::<i64, _>(4)? != 0,
        }))
    }

    pub async fn create_service_account(
        &self,
        p: &Principal,
        req: CreateServiceAccountRequest,
    ) -> StoreResult<ServiceAccount> {
        let (org_id, org) = (p.org_id, p.org.clone());
        self.db
            .write(move |c| {
                Box::pin(async move {
                    let mut ledger = LedgerWriter::lock(c, org_id, &org).await?;
                    let exists = sqlx::query(
                        "SELECT 1 FROM service_accounts WHERE org_id = $1 AND name = $2",
                    )
                    .bind(org_id)
                    .bind(&req.name)
                    .fetch_optional(&mut *c)
                    .await?;
                    if exists.is_some() {
                        return Err(StoreError::Conflict(format!(
                            "service account '{}' already exists",
                            req.name
                        )));
                    }
                    let sa = ServiceAccount {
                        name: req.name,
                        role: req.role,
                        description: req.description,
                        created_at: now_ms(),
                    };
                    insert_account(c, org_id, &sa, false).await?;
                    ledger.append(c, EntryKind::ServiceAccount, &sa).await?;
                    Ok(sa)
                })
            })
            .await
    }

    pub async fn list_service_accounts(&self, org_id: i64) -> StoreResult<Vec<ServiceAccount>> {
        let rows = sqlx::query(
            "SELECT name, role, description, created_at FROM service_accounts WHERE org_id = $1 ORDER BY name",
        )
        .bind(org_id)
        .fetch_all(&self.db.read)
        .await?;
        rows.iter().map(account_from_row).collect()
    }

    pub async fn get_service_account(
        &self,
        org_id: i64,
        name: &str,
    ) -> StoreResult<ServiceAccount> {
        let row = sqlx::query(
            "SELECT name, role, description, created_at FROM service_accounts WHERE org_id = $1 AND name = $2",
        )
        .bind(org_id)
        .bind(name)
        .fetch_optional(&self.db.read)
        .await?
        .ok_or_else(|| StoreError::not_found("service account", name))?;
        account_from_row(&row)
    }

    /// Stores a new key for an account of the caller's organisation and
    /// returns when it was created.
    pub async fn create_api_key(
        &self,
        p: &Principal,
        account: &str,
        key: NewApiKey,
    ) -> StoreResult<i64> {
        let (org_id, org, account) = (p.org_id, p.org.clone(), account.to_string());
        self.db
            .write(move |c| {
                Box::pin(async move {
                    let mut ledger = LedgerWriter::lock(c, org_id, &org).await?;
                    let sa_id: i64 = sqlx::query(
                        "SELECT id FROM service_accounts WHERE org_id = $1 AND name = $2",
                    )
                    .bind(org_id)
                    .bind(&account)
                    .fetch_optional(&mut *c)
                    .await?
                    .ok_or_else(|| StoreError::not_found("service account", account.clone()))?
                    .try_get(0)?;
                    let created = insert_key(c, sa_id, &key).await?;
                    ledger
                        .append(c, EntryKind::ApiKey, &key_record(&account, &key, created))
                        .await?;
                    Ok(created)
                })
            })
            .await
    }
}

async fn create_org_tx(
    c: &mut AnyConnection,
    name: &str,
    account: &str,
    server_admin: bool,
    key: &NewApiKey,
) -> StoreResult<()> {
    let now = now_ms();
    let org_id: i64 =
        sqlx::query("INSERT INTO orgs (name, created_at) VALUES ($1, $2) RETURNING id")
            .bind(name)
            .bind(now)
            .fetch_one(&mut *c)
            .await?
            .try_get(0)?;
    let mut ledger = LedgerWriter::start(c, org_id, name).await?;
    ledger
        .append(c, EntryKind::Org, &json!({"name": name, "created_at": now}))
        .await?;
    let sa = ServiceAccount {
        name: account.to_string(),
        role: Role::Admin,
        description: Some(if server_admin {
            "created at first start; may create organisations".to_string()
        } else {
            "first administrator of the organisation".to_string()
        }),
        created_at: now,
    };
    let sa_id = insert_account(c, org_id, &sa, server_admin).await?;
    ledger.append(c, EntryKind::ServiceAccount, &sa).await?;
    let created = insert_key(c, sa_id, key).await?;
    ledger
        .append(c, EntryKind::ApiKey, &key_record(account, key, created))
        .await?;
    Ok(())
}

async fn insert_account(
    c: &mut AnyConnection,
    org_id: i64,
    sa: &ServiceAccount,
    server_admin: bool,
) -> StoreResult<i64> {
    Ok(sqlx::query(
        "INSERT INTO service_accounts (org_id, name, role, description, server_admin, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
    )
    .bind(org_id)
    .bind(&sa.name)
    .bind(sa.role.as_str())
    .bind(sa.description.clone())
    .bind(i64::from(server_admin))
    .bind(sa.created_at)
    .fetch_one(&mut *c)
    .await?
    .try_get(0)?)
}

async fn insert_key(c: &mut AnyConnection, sa_id: i64, key: &NewApiKey) -> StoreResult<i64> {
    let now = now_ms();
    sqlx::query(
        "INSERT INTO api_keys (id, service_account_id, key_hash, description, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&key.id)
    .bind(sa_id)
    .bind(key.hash.clone())
    .bind(key.description.clone())
    .bind(now)
    .bind(key.expires_at)
    .execute(&mut *c)
    .await?;
    Ok(now)
}

/// What the ledger says about a key: never the secret, nor its hash.
fn key_record(account: &str, key: &NewApiKey, created_at: i64) -> serde_json::Value {
    json!({
        "id": key.id,
        "service_account": account,
        "description": key.description,
        "expires_at": key.expires_at,
        "created_at": created_at,
    })
}

fn account_from_row(r: &sqlx::any::AnyRow) -> StoreResult<ServiceAccount> {
    let role: String = r.try_get(1)?;
    Ok(ServiceAccount {
        name: r.try_get(0)?,
        role: Role::parse(&role)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown role '{role}'")))?,
        description: r.try_get(2)?,
        created_at: r.try_get(3)?,
    })
}
