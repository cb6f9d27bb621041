//! Organisations, service accounts and API keys: who may call, and the
//! lifecycle of their keys (create, list, revoke, rotate, expire).
//!
//! Who may manage which keys is decided here, inside the write, from the
//! account the key belongs to — not by the route, which cannot see it:
//! - the server-admin account's keys only with a server-admin key;
//! - one's own keys with any key;
//! - anyone else's (in the organisation) only as an admin.
//!
//! Every change is a ledger entry, which names the key that made it.

use custody_api::{ApiKeyInfo, CreateServiceAccountRequest, OrgSettings, ServiceAccount};
use custody_domain::{Permission, Role};
use custody_ledger::{Actor, EntryKind};
use serde_json::json;
use sha2::{Digest, Sha256};
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
    /// The id of the key the request was made with.
    pub key_id: String,
    /// When that key was last noted as used (at most once a minute).
    pub key_last_used_at: Option<i64>,
    /// The organisation the key belongs to: `org` too, but for a server
    /// admin acting in another organisation.
    pub home_org: String,
}

impl Principal {
    /// Who this principal is, as the ledger and records name it.
    pub fn actor(&self) -> Actor {
        Actor::Key {
            org: self.home_org.clone(),
            service_account: self.service_account.clone(),
            key_id: self.key_id.clone(),
        }
    }

    /// A server admin, acting as an admin of another organisation.
    pub fn acting_in(&self, org_id: i64, org: &str) -> Principal {
        Principal {
            org_id,
            org: org.to_string(),
            role: Role::Admin,
            ..self.clone()
        }
    }
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

/// An account as key management needs it.
struct AccountRow {
    id: i64,
    name: String,
    role: Role,
    server_admin: bool,
    deleted_at: Option<i64>,
}

const KEY_SELECT: &str = "SELECT k.id, s.name, k.description, k.created_at, k.expires_at, k.revoked_at, \
     k.last_used_at, k.rotated_from FROM api_keys k JOIN service_accounts s ON s.id = k.service_account_id";

fn key_from_row(r: &sqlx::any::AnyRow) -> StoreResult<ApiKeyInfo> {
    Ok(ApiKeyInfo {
        id: r.try_get(0)?,
        service_account: r.try_get(1)?,
        description: r.try_get(2)?,
        created_at: r.try_get(3)?,
        expires_at: r.try_get(4)?,
        revoked_at: r.try_get(5)?,
        last_used_at: r.try_get(6)?,
        rotated_from: r.try_get(7)?,
    })
}

/// Whether `p` may create, revoke or rotate keys of `account`.
fn may_manage_keys(p: &Principal, account: &AccountRow) -> StoreResult<()> {
    let own = account.name == p.service_account;
    if account.server_admin {
        return if own && p.server_admin {
            Ok(())
        } else {
            Err(StoreError::Forbidden(format!(
                "the keys of '{}' (the server-admin account) are managed only with its own key",
                account.name
            )))
        };
    }
    if own || p.role.allows(Permission::ManageServiceAccounts) {
        Ok(())
    } else {
        Err(StoreError::Forbidden(format!(
            "a {} may manage only the keys of its own account '{}', not those of '{}'",
            p.role, p.service_account, account.name
        )))
    }
}

/// Whether `p` may change or delete `account` (its role, its existence).
fn may_manage_account(p: &Principal, account: &AccountRow, what: &str) -> StoreResult<()> {
    if !p.role.allows(Permission::ManageServiceAccounts) {
        return Err(StoreError::Forbidden(format!(
            "only an admin may {what} service accounts; '{}' is a {}",
            p.service_account, p.role
        )));
    }
    if account.server_admin {
        return Err(StoreError::Forbidden(format!(
            "'{}' is the server-admin account: it cannot be changed or deleted",
            account.name
        )));
    }
    if account.name == p.service_account {
        return Err(StoreError::Forbidden(format!(
            "'{}' is the account making this request: another admin must {what} it",
            account.name
        )));
    }
    Ok(())
}

async fn account_row(c: &mut AnyConnection, org_id: i64, name: &str) -> StoreResult<AccountRow> {
    let r = sqlx::query(
        "SELECT id, name, role, server_admin, deleted_at FROM service_accounts WHERE org_id = $1 AND name = $2",
    )
    .bind(org_id)
    .bind(name)
    .fetch_optional(&mut *c)
    .await?
    .ok_or_else(|| StoreError::not_found("service account", name))?;
    let role: String = r.try_get(2)?;
    Ok(AccountRow {
        id: r.try_get(0)?,
        name: r.try_get(1)?,
        role: Role::parse(&role)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown role '{role}'")))?,
        server_admin: r.try_get::<i64, _>(3)? != 0,
        deleted_at: r.try_get(4)?,
    })
}

/// A live account: deleted ones take no new keys and no changes.
async fn live_account(c: &mut AnyConnection, org_id: i64, name: &str) -> StoreResult<AccountRow> {
    let a = account_row(c, org_id, name).await?;
    if a.deleted_at.is_some() {
        return Err(StoreError::Conflict(format!(
            "service account '{name}' was deleted"
        )));
    }
    Ok(a)
}

/// The expiry a new key gets: as asked, within the organisation's maximum
/// lifetime (a key asked for without one gets the maximum).
async fn bounded_expiry(
    c: &mut AnyConnection,
    org_id: i64,
    org: &str,
    asked: Option<i64>,
    now: i64,
) -> StoreResult<Option<i64>> {
    if let Some(t) = asked
        && t <= now
    {
        return Err(StoreError::Unprocessable(
            "the key's expiry is not in the future".into(),
        ));
    }
    let max: Option<i64> = sqlx::query("SELECT max_key_lifetime_ms FROM orgs WHERE id = $1")
        .bind(org_id)
        .fetch_one(&mut *c)
        .await?
        .try_get(0)?;
    let Some(max) = max else { return Ok(asked) };
    let latest = now.saturating_add(max);
    match asked {
        None => Ok(Some(latest)),
        Some(t) if t <= latest => Ok(Some(t)),
        Some(_) => Err(StoreError::Unprocessable(format!(
            "keys of org '{org}' may live at most {}: ask for less (--expires-in)",
            human_ms(max)
        ))),
    }
}

fn human_ms(ms: i64) -> String {
    const DAY: i64 = 86_400_000;
    const HOUR: i64 = 3_600_000;
    if ms % DAY == 0 {
        format!("{}d", ms / DAY)
    } else if ms % HOUR == 0 {
        format!("{}h", ms / HOUR)
    } else {
        format!("{}s", ms / 1000)
    }
}

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
                    let actor = Actor::server("bootstrap");
                    create_org_tx(c, BOOTSTRAP_ORG, BOOTSTRAP_ACCOUNT, true, &key, &actor).await?;
                    Ok(true)
                })
            })
            .await
    }

    /// Creates an organisation with an `admin` service account holding `key`.
    pub async fn create_org(&self, p: &Principal, name: &str, key: NewApiKey) -> StoreResult<()> {
        if !p.server_admin {
            return Err(StoreError::Forbidden(
                "creating organisations needs a server-admin key".into(),
            ));
        }
        let name = name.to_string();
        let actor = p.actor();
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
                    create_org_tx(c, &name, FIRST_ADMIN, false, &key, &actor).await
                })
            })
            .await
    }

    /// Resolves a key hash to its principal; expired or revoked keys, and
    /// keys of deleted accounts, resolve to nothing.
    pub async fn authenticate(&self, key_hash: &[u8]) -> StoreResult<Option<Principal>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {PRINCIPAL_COLUMNS} {PRINCIPAL_FROM} WHERE k.key_hash = $1"
        )))
        .bind(key_hash.to_vec())
        .fetch_optional(&self.db.read)
        .await?;
        row.map(|r| principal(&r)).transpose().map(Option::flatten)
    }

    /// The id of an organisation, by name.
    pub async fn org_id(&self, name: &str) -> StoreResult<Option<i64>> {
        let r = sqlx::query("SELECT id FROM orgs WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.db.read)
            .await?;
        r.map(|r| r.try_get(0)).transpose().map_err(Into::into)
    }

    /// Notes that a key was used now. Operational state (not a ledger
    /// entry); callers note it at most once a minute per key.
    pub async fn touch_key(&self, key_id: &str, at: i64) -> StoreResult<()> {
        let id = key_id.to_string();
        self.db
            .write(move |c| {
                Box::pin(async move {
                    sqlx::query("UPDATE api_keys SET last_used_at = $2 WHERE id = $1")
                        .bind(&id)
                        .bind(at)
                        .execute(&mut *c)
                        .await?;
                    Ok(())
                })
            })
            .await
    }

    pub async fn create_service_account(
        &self,
        p: &Principal,
        req: CreateServiceAccountRequest,
    ) -> StoreResult<ServiceAccount> {
        if !p.role.can_grant(req.role) {
            return Err(StoreError::Forbidden(format!(
                "only an admin may create service accounts; '{}' is a {}",
                p.service_account, p.role
            )));
        }
        let (org_id, org) = (p.org_id, p.org.clone());
        let actor = p.actor();
        self.db
            .write(move |c| {
                Box::pin(async move {
                    let mut ledger = LedgerWriter::lock(c, org_id, &org, &actor).await?;
                    if let Ok(a) = account_row(c, org_id, &req.name).await {
                        return Err(StoreError::Conflict(if a.deleted_at.is_some() {
                            format!("service account '{}' existed and was deleted; its name is not reused", req.name)
                        } else {
                            format!("service account '{}' already exists", req.name)
                        }));
                    }
                    let sa = ServiceAccount {
                        name: req.name,
                        role: req.role,
                        description: req.description,
                        created_at: now_ms(),
                        server_admin: false,
                        deleted_at: None,
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
            "SELECT name, role, description, created_at, server_admin, deleted_at FROM service_accounts \
             WHERE org_id = $1 ORDER BY name",
        )
        .bind(org_id)
        .fetch_all(&self.db.read)
        .await?;
        rows.iter().map(account_from_row).collect()
    }

    /// Gives an account another role. Admins only; never the server-admin
    /// account, never the caller's own.
    pub async fn update_service_account(
        &self,
        p: &Principal,
        name: &str,
        role: Role,
    ) -> StoreResult<ServiceAccount> {
        let (org_id, org, name, who) = (p.org_id, p.org.clone(), name.to_string(), p.clone());
        let actor = p.actor();
        self.db
            .write(move |c| {
                Box::pin(async move {
                    let mut ledger = LedgerWriter::lock(c, org_id, &org, &actor).await?;
                    let a = live_account(c, org_id, &name).await?;
                    may_manage_account(&who, &a, "change")?;
                    sqlx::query("UPDATE service_accounts SET role = $2 WHERE id = $1")
                        .bind(a.id)
                        .bind(role.as_str())
                        .execute(&mut *c)
                        .await?;
                    ledger
                        .append(
                            c,
                            EntryKind::ServiceAccount,
                            &json!({"name": name, "role": role, "previous_role": a.role}),
                        )
                        .await?;
                    account_by_id(c, a.id).await
                })
            })
            .await
    }

    /// Deletes an account: it and every key it holds stop working at once.
    /// Its name is kept (the ledger refers to it) and not reused.
    pub async fn delete_service_account(
        &self,
        p: &Principal,
        name: &str,
    ) -> StoreResult<ServiceAccount> {
        let (org_id, org, name, who) = (p.org_id, p.org.clone(), name.to_string(), p.clone());
        let actor = p.actor();
        self.db
            .write(move |c| {
                Box::pin(async move {
                    let mut ledger = LedgerWriter::lock(c, org_id, &org, &actor).await?;
                    let a = live_account(c, org_id, &name).await?;
                    may_manage_account(&who, &a, "delete")?;
                    let now = now_ms();
                    let revoked: Vec<String> = sqlx::query(
                        "SELECT id FROM api_keys WHERE service_account_id = $1 AND revoked_at IS NULL ORDER BY id",
                    )
                    .bind(a.id)
                    .fetch_all(&mut *c)
                    .await?
                    .iter()
                    .map(|r| r.try_get(0))
                    .collect::<Result<_, _>>()?;
                    sqlx::query("UPDATE api_keys SET revoked_at = $2 WHERE service_account_id = $1 AND revoked_at IS NULL")
                        .bind(a.id)
                        .bind(now)
                        .execute(&mut *c)
                        .await?;
                    sqlx::query("UPDATE service_accounts SET deleted_at = $2 WHERE id = $1")
                        .bind(a.id)
                        .bind(now)
                        .execute(&mut *c)
                        .await?;
                    ledger
                        .append(
                            c,
                            EntryKind::ServiceAccount,
                            &json!({"name": name, "deleted_at": now, "revoked_keys": revoked}),
                        )
                        .await?;
                    account_by_id(c, a.id).await
                })
            })
            .await
    }

    pub async fn get_service_account(
        &self,
        org_id: i64,
        name: &str,
    ) -> StoreResult<ServiceAccount> {
        let row = sqlx::query(
            "SELECT name, role, description, created_at, server_admin, deleted_at FROM service_accounts \
             WHERE org_id = $1 AND name = $2",
        )
        .bind(org_id)
        .bind(name)
        .fetch_optional(&self.db.read)
        .await?
        .ok_or_else(|| StoreError::not_found("service account", name))?;
        account_from_row(&row)
    }

    /// Stores a new key for an account of the caller's organisation, if the
    /// caller may manage that account's keys; returns the key as stored.
    pub async fn create_api_key(
        &self,
        p: &Principal,
        account: &str,
        key: NewApiKey,
    ) -> StoreResult<ApiKeyInfo> {
        let (org_id, org, account, who) = (p.org_id, p.org.clone(), account.to_string(), p.clone());
        let actor = p.actor();
        self.db
            .write(move |c| {
                Box::pin(async move {
                    let mut ledger = LedgerWriter::lock(c, org_id, &org, &actor).await?;
                    let a = live_account(c, org_id, &account).await?;
                    may_manage_keys(&who, &a)?;
                    let now = now_ms();
                    let key = NewApiKey {
                        expires_at: bounded_expiry(c, org_id, &org, key.expires_at, now).await?,
                        ..key
                    };
                    insert_key(c, a.id, &key, now, None).await?;
                    ledger
                        .append(c, EntryKind::ApiKey, &key_record(&account, &key, now, None))
                        .await?;
                    get_key(c, org_id, &key.id).await
                })
            })
            .await
    }

    /// The keys of the organisation (of one account, when given), newest
    /// first. Admins see every account's; others only their own.
    pub async fn list_api_keys(
        &self,
        p: &Principal,
        account: Option<&str>,
    ) -> StoreResult<Vec<ApiKeyInfo>> {
        let sees_all = p.role.allows(Permission::ManageServiceAccounts) || p.server_admin;
        let account = match account {
            Some(a) if !sees_all && a != p.service_account => {
                return Err(StoreError::Forbidden(format!(
                    "a {} may list only the keys of its own account '{}'",
                    p.role, p.service_account
                )));
            }
            Some(a) => Some(a.to_string()),
            None if sees_all => None,
            None => Some(p.service_account.clone()),
        };
        let filter = if account.is_some() {
            " AND s.name = $2"
        } else {
            ""
        };
        let mut q = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{KEY_SELECT} WHERE s.org_id = $1{filter} ORDER BY k.created_at DESC, k.id"
        )))
        .bind(p.org_id);
        if let Some(a) = &account {
            q = q.bind(a.clone());
        }
        let rows = q.fetch_all(&self.db.read).await?;
        rows.iter().map(key_from_row).collect()
    }

    /// Revokes a key: the very next request made with it is refused.
    pub async fn revoke_api_key(&self, p: &Principal, key_id: &str) -> StoreResult<ApiKeyInfo> {
        let (org_id, org, key_id, who) = (p.org_id, p.org.clone(), key_id.to_string(), p.clone());
        let actor = p.actor();
        self.db
            .write(move |c| {
                Box::pin(async move {
                    let mut ledger = LedgerWriter::lock(c, org_id, &org, &actor).await?;
                    let k = get_key(c, org_id, &key_id).await?;
                    let a = account_row(c, org_id, &k.service_account).await?;
                    may_manage_keys(&who, &a)?;
                    if k.revoked_at.is_some() {
                        return Err(StoreError::Conflict(format!(
                            "API key {key_id} is already revoked"
                        )));
                    }
                    let now = now_ms();
                    sqlx::query("UPDATE api_keys SET revoked_at = $2 WHERE id = $1")
                        .bind(&key_id)
                        .bind(now)
                        .execute(&mut *c)
                        .await?;
                    ledger
                        .append(
                            c,
                            EntryKind::ApiKeyRevoked,
                            &json!({"id": key_id, "service_account": k.service_account, "revoked_at": now}),
                        )
                        .await?;
                    get_key(c, org_id, &key_id).await
                })
            })
            .await
    }

    /// Replaces a key with a new one for the same account. The old key
    /// keeps working for `grace_ms` (revoked at once when 0), so whoever
    /// uses it can switch without an outage.
    pub async fn rotate_api_key(
        &self,
        p: &Principal,
        key_id: &str,
        new: NewApiKey,
        grace_ms: i64,
    ) -> StoreResult<(ApiKeyInfo, ApiKeyInfo)> {
        if grace_ms < 0 {
            return Err(StoreError::Unprocessable(
                "the grace period cannot be negative".into(),
            ));
        }
        let (org_id, org, key_id, who) = (p.org_id, p.org.clone(), key_id.to_string(), p.clone());
        let actor = p.actor();
        self.db
            .write(move |c| {
                Box::pin(async move {
                    let mut ledger = LedgerWriter::lock(c, org_id, &org, &actor).await?;
                    let old = get_key(c, org_id, &key_id).await?;
                    let a = live_account(c, org_id, &old.service_account).await?;
                    may_manage_keys(&who, &a)?;
                    let now = now_ms();
                    if old.revoked_at.is_some() || old.expires_at.is_some_and(|t| t <= now) {
                        return Err(StoreError::Conflict(format!(
                            "API key {key_id} no longer works: create a new key instead"
                        )));
                    }
                    let new = NewApiKey {
                        expires_at: bounded_expiry(c, org_id, &org, new.expires_at, now).await?,
                        ..new
                    };
                    insert_key(c, a.id, &new, now, Some(&key_id)).await?;
                    if grace_ms == 0 {
                        sqlx::query("UPDATE api_keys SET revoked_at = $2 WHERE id = $1")
                            .bind(&key_id)
                            .bind(now)
                            .execute(&mut *c)
                            .await?;
                    } else {
                        let until = now.saturating_add(grace_ms);
                        sqlx::query(
                            "UPDATE api_keys SET expires_at = CASE WHEN expires_at IS NULL OR expires_at > $2 THEN $2 ELSE expires_at END WHERE id = $1",
                        )
                        .bind(&key_id)
                        .bind(until)
                        .execute(&mut *c)
                        .await?;
                    }
                    let old = get_key(c, org_id, &key_id).await?;
                    ledger
                        .append(
                            c,
                            EntryKind::ApiKey,
                            &json!({
                                "key": key_record(&a.name, &new, now, Some(&key_id)),
                                "replaces": {"id": key_id, "expires_at": old.expires_at, "revoked_at": old.revoked_at},
                            }),
                        )
                        .await?;
                    Ok((get_key(c, org_id, &new.id).await?, old))
                })
            })
            .await
    }

    pub async fn org_settings(&self, org_id: i64) -> StoreResult<OrgSettings> {
        let r = sqlx::query("SELECT max_key_lifetime_ms FROM orgs WHERE id = $1")
            .bind(org_id)
            .fetch_one(&self.db.read)
            .await?;
        Ok(OrgSettings {
            max_key_lifetime_ms: r.try_get(0)?,
        })
    }

    /// Changes the organisation's settings. Admins only.
    pub async fn put_org_settings(
        &self,
        p: &Principal,
        settings: OrgSettings,
    ) -> StoreResult<OrgSettings> {
        if !p.role.allows(Permission::ManageServiceAccounts) {
            return Err(StoreError::Forbidden(format!(
                "only an admin may change the organisation's settings; '{}' is a {}",
                p.service_account, p.role
            )));
        }
        if settings.max_key_lifetime_ms.is_some_and(|m| m <= 0) {
            return Err(StoreError::Unprocessable(
                "the maximum key lifetime must be positive".into(),
            ));
        }
        let (org_id, org) = (p.org_id, p.org.clone());
        let actor = p.actor();
        self.db
            .write(move |c| {
                Box::pin(async move {
                    let mut ledger = LedgerWriter::lock(c, org_id, &org, &actor).await?;
                    sqlx::query("UPDATE orgs SET max_key_lifetime_ms = $2 WHERE id = $1")
                        .bind(org_id)
                        .bind(settings.max_key_lifetime_ms)
                        .execute(&mut *c)
                        .await?;
                    ledger
                        .append(
                            c,
                            EntryKind::Org,
                            &json!({"name": org, "settings": settings}),
                        )
                        .await?;
                    Ok(settings)
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
    actor: &Actor,
) -> StoreResult<()> {
    let now = now_ms();
    let org_id: i64 =
        sqlx::query("INSERT INTO orgs (name, created_at) VALUES ($1, $2) RETURNING id")
            .bind(name)
            .bind(now)
            .fetch_one(&mut *c)
            .await?
            .try_get(0)?;
    let mut ledger = LedgerWriter::start(c, org_id, name, actor).await?;
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
        server_admin,
        deleted_at: None,
    };
    let sa_id = insert_account(c, org_id, &sa, server_admin).await?;
    ledger.append(c, EntryKind::ServiceAccount, &sa).await?;
    insert_key(c, sa_id, key, now, None).await?;
    ledger
        .append(c, EntryKind::ApiKey, &key_record(account, key, now, None))
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

async fn insert_key(
    c: &mut AnyConnection,
    sa_id: i64,
    key: &NewApiKey,
    now: i64,
    rotated_from: Option<&str>,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO api_keys (id, service_account_id, key_hash, description, created_at, expires_at, rotated_from) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&key.id)
    .bind(sa_id)
    .bind(key.hash.clone())
    .bind(key.description.clone())
    .bind(now)
    .bind(key.expires_at)
    .bind(rotated_from.map(str::to_string))
    .execute(&mut *c)
    .await?;
    Ok(())
}

async fn get_key(c: &mut AnyConnection, org_id: i64, key_id: &str) -> StoreResult<ApiKeyInfo> {
    let r = sqlx::query(sqlx::AssertSqlSafe(format!(
        "{KEY_SELECT} WHERE s.org_id = $1 AND k.id = $2"
    )))
    .bind(org_id)
    .bind(key_id)
    .fetch_optional(&mut *c)
    .await?
    .ok_or_else(|| StoreError::not_found("API key", key_id))?;
    key_from_row(&r)
}

async fn account_by_id(c: &mut AnyConnection, id: i64) -> StoreResult<ServiceAccount> {
    let r = sqlx::query(
        "SELECT name, role, description, created_at, server_admin, deleted_at FROM service_accounts WHERE id = $1",
    )
    .bind(id)
    .fetch_one(&mut *c)
    .await?;
    account_from_row(&r)
}

/// What the ledger says about a key: never the secret, nor its hash.
fn key_record(
    account: &str,
    key: &NewApiKey,
    created_at: i64,
    rotated_from: Option<&str>,
) -> serde_json::Value {
    // The SHA-256 of the stored hash commits the entry to the one token
    // the key accepts (`ledger verify` sees a swapped hash) and, the token
    // being 256 random bits, tells nothing about it.
    json!({
        "id": key.id,
        "service_account": account,
        "description": key.description,
        "expires_at": key.expires_at,
        "created_at": created_at,
        "rotated_from": rotated_from,
        "hash_sha256": hex::encode(Sha256::digest(&key.hash)),
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
        server_admin: r.try_get::<i64, _>(4)? != 0,
        deleted_at: r.try_get(5)?,
    })
}

/// The columns [`principal`] reads, first in a row: a key, its account
/// and organisation, from [`PRINCIPAL_FROM`].
pub(crate) const PRINCIPAL_COLUMNS: &str = "o.id, o.name, s.name, s.role, s.server_admin, \
    k.expires_at, k.revoked_at, k.id, s.deleted_at, k.last_used_at";
pub(crate) const PRINCIPAL_FROM: &str = "FROM api_keys k \
    JOIN service_accounts s ON s.id = k.service_account_id JOIN orgs o ON o.id = s.org_id";

/// The principal a [`PRINCIPAL`] row names, or nothing when the key is
/// expired or revoked or its account deleted.
pub(crate) fn principal(r: &sqlx::any::AnyRow) -> StoreResult<Option<Principal>> {
    let expires_at: Option<i64> = r.try_get(5)?;
    let revoked_at: Option<i64> = r.try_get(6)?;
    let deleted_at: Option<i64> = r.try_get(8)?;
    let now = now_ms();
    if revoked_at.is_some() || deleted_at.is_some() || expires_at.is_some_and(|t| t <= now) {
        return Ok(None);
    }
    let role: String = r.try_get(3)?;
    let org: String = r.try_get(1)?;
    Ok(Some(Principal {
        org_id: r.try_get(0)?,
        home_org: org.clone(),
        org,
        service_account: r.try_get(2)?,
        role: Role::parse(&role)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown role '{role}'")))?,
        server_admin: r.try_get::<i64, _>(4)? != 0,
        key_id: r.try_get(7)?,
        key_last_used_at: r.try_get(9)?,
    }))
}
