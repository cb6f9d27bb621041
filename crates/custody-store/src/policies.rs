//! Environment policies (versioned, immutable), their attachment to
//! environments, controls and their versions, and the allowlist. Every
//! change that can alter an environment's compliance marks it, and it is
//! judged right after the commit (`evaluation.rs`).

use std::collections::BTreeMap;

use custody_api::{
    AllowRequest, AllowlistEntry, Control, Policy, PolicyKind, PutControlRequest, Saved,
};
use custody_ledger::EntryKind;
use serde_json::json;
use sha2::{Digest, Sha256};
use sqlx::{AnyConnection, Row};

use crate::environments::env_row;
use crate::evaluation::{self, Cause};
use crate::ledger::LedgerWriter;
use crate::util::{from_json, now_ms, to_json};
use crate::{Principal, Store, StoreError, StoreResult};

/// A policy version as evaluation needs it.
#[derive(Debug, Clone)]
pub struct AttachedPolicy {
    pub name: String,
    pub kind: PolicyKind,
    pub version: i64,
    pub content: String,
    pub sha256: String,
}

impl From<Policy> for AttachedPolicy {
    fn from(p: Policy) -> Self {
        AttachedPolicy {
            name: p.name,
            kind: p.kind,
            version: p.version,
            content: p.content,
            sha256: p.sha256,
        }
    }
}

/// A policy ready to be stored: checked by the caller (its syntax), with
/// the controls it names, which must exist.
#[derive(Debug, Clone)]
pub struct NewPolicy {
    pub name: String,
    pub kind: PolicyKind,
    pub content: String,
    pub description: Option<String>,
    pub controls: Vec<String>,
}

const POLICY_SELECT: &str = "SELECT p.id, p.name, p.kind, v.version, v.content, v.sha256, v.description, v.created_at \
     FROM policies p JOIN policy_versions v ON v.policy_id = p.id";

fn policy_from_row(r: &sqlx::any::AnyRow) -> StoreResult<(i64, Policy)> {
    let kind: String = r.try_get(2)?;
    Ok((
        r.try_get(0)?,
        Policy {
            name: r.try_get(1)?,
            kind: PolicyKind::parse(&kind)
                .ok_or_else(|| StoreError::Corrupt(format!("policy type '{kind}'")))?,
            version: r.try_get(3)?,
            content: r.try_get(4)?,
            sha256: r.try_get(5)?,
            description: r.try_get(6)?,
            created_at: r.try_get(7)?,
            environments: vec![],
        },
    ))
}

async fn policy_environments(c: &mut AnyConnection, policy_id: i64) -> StoreResult<Vec<String>> {
    let rows = sqlx::query(
        "SELECT e.name FROM environment_policies ep JOIN environments e ON e.id = ep.env_id \
         WHERE ep.policy_id = $1 ORDER BY e.name",
    )
    .bind(policy_id)
    .fetch_all(&mut *c)
    .await?;
    rows.iter()
        .map(|r| r.try_get(0).map_err(Into::into))
        .collect()
}

/// The latest version of each policy attached to an environment, by name.
pub(crate) async fn attached(
    c: &mut AnyConnection,
    env_id: i64,
) -> StoreResult<Vec<AttachedPolicy>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "{POLICY_SELECT} AND v.version = p.latest_version \
         JOIN environment_policies ep ON ep.policy_id = p.id WHERE ep.env_id = $1 ORDER BY p.name"
    )))
    .bind(env_id)
    .fetch_all(&mut *c)
    .await?;
    rows.iter()
        .map(|r| Ok(AttachedPolicy::from(policy_from_row(r)?.1)))
        .collect()
}

/// A policy at `version`, or at its latest.
async fn policy_at(
    c: &mut AnyConnection,
    org_id: i64,
    name: &str,
    version: Option<i64>,
) -> StoreResult<Option<(i64, Policy)>> {
    // The version goes in the text, not as a NULL-able parameter that
    // PostgreSQL would have to guess the type of.
    let which = if version.is_some() {
        "v.version = $3"
    } else {
        "v.version = p.latest_version"
    };
    let mut q = sqlx::query(sqlx::AssertSqlSafe(format!(
        "{POLICY_SELECT} AND {which} WHERE p.org_id = $1 AND p.name = $2"
    )))
    .bind(org_id)
    .bind(name);
    if let Some(v) = version {
        q = q.bind(v);
    }
    q.fetch_optional(&mut *c)
        .await?
        .map(|r| policy_from_row(&r))
        .transpose()
}

/// The environment named, which must be physical: `doing` says what a
/// logical one cannot have done to it.
pub(crate) async fn physical_env(
    c: &mut AnyConnection,
    org_id: i64,
    name: &str,
    doing: &str,
) -> StoreResult<crate::environments::EnvRow> {
    let e = env_row(c, org_id, name).await?;
    if e.kind.is_logical() {
        return Err(StoreError::Unprocessable(format!(
            "environment '{name}' is logical: {doing} its physical members"
        )));
    }
    Ok(e)
}

/// Policies by name at their latest versions, refusing unknown names.
pub(crate) async fn by_names(
    c: &mut AnyConnection,
    org_id: i64,
    names: &[String],
) -> StoreResult<Vec<(i64, AttachedPolicy)>> {
    let mut out = Vec::new();
    for n in names {
        let (id, p) = policy_at(c, org_id, n, None)
            .await?
            .ok_or_else(|| StoreError::not_found("policy", n))?;
        out.push((id, AttachedPolicy::from(p)));
    }
    Ok(out)
}

pub(crate) fn check_name(what: &'static str, name: &str) -> StoreResult<()> {
    custody_domain::names::validate(what, name)
        .map_err(|e| StoreError::Unprocessable(e.to_string()))
}

impl Store {
    /// Creates a policy, or a new version of it when the content differs
    /// from its latest. The same content again changes nothing.
    pub async fn create_policy(&self, p: &Principal, new: NewPolicy) -> StoreResult<Saved<Policy>> {
        check_name("policy name", &new.name)?;
        let (org_id, org) = (p.org_id, p.org.clone());
        let actor = p.actor();
        self.write_judged(org_id, move |c| {
                Box::pin(async move {
                    let mut ledger = LedgerWriter::lock(c, org_id, &org, &actor).await?;
                    for control in &new.controls {
                        let found = sqlx::query(
                            "SELECT 1 FROM controls WHERE org_id = $1 AND identifier = $2",
                        )
                        .bind(org_id)
                        .bind(control)
                        .fetch_optional(&mut *c)
                        .await?;
                        if found.is_none() {
                            return Err(StoreError::Unprocessable(format!(
                                "policy '{}' names control '{control}', which does not exist: create it with `custody create control {control} --name ...`",
                                new.name
                            )));
                        }
                    }
                    let sha256 = hex::encode(Sha256::digest(new.content.as_bytes()));
                    let now = now_ms();
                    let existing = policy_at(c, org_id, &new.name, None).await?;
                    let (id, version, created) = match existing {
                        Some((id, old)) => {
                            if old.kind != new.kind {
                                return Err(StoreError::Conflict(format!(
                                    "policy '{}' is a {} policy; a new version cannot be {}",
                                    new.name,
                                    old.kind.as_str(),
                                    new.kind.as_str()
                                )));
                            }
                            if old.sha256 == sha256 && old.description == new.description {
                                let mut value = old;
                                value.environments = policy_environments(c, id).await?;
                                return Ok(Saved { created: false, value });
                            }
                            (id, old.version + 1, false)
                        }
                        None => {
                            let id: i64 = sqlx::query(
                                "INSERT INTO policies (org_id, name, kind, latest_version, created_at) \
                                 VALUES ($1, $2, $3, 1, $4) RETURNING id",
                            )
                            .bind(org_id)
                            .bind(&new.name)
                            .bind(new.kind.as_str())
                            .bind(now)
                            .fetch_one(&mut *c)
                            .await?
                            .try_get(0)?;
                            (id, 1, true)
                        }
                    };
                    sqlx::query(
                        "INSERT INTO policy_versions (policy_id, version, content, sha256, description, created_at) \
                         VALUES ($1, $2, $3, $4, $5, $6)",
                    )
                    .bind(id)
                    .bind(version)
                    .bind(&new.content)
                    .bind(&sha256)
                    .bind(new.description.clone())
                    .bind(now)
                    .execute(&mut *c)
                    .await?;
                    sqlx::query("UPDATE policies SET latest_version = $2 WHERE id = $1")
                        .bind(id)
                        .bind(version)
                        .execute(&mut *c)
                        .await?;
                    ledger
                        .append(
                            c,
                            EntryKind::Policy,
                            &json!({
                                "name": new.name,
                                "type": new.kind.as_str(),
                                "version": version,
                                "sha256": sha256,
                                "content": new.content,
                                "description": new.description,
                            }),
                        )
                        .await?;
                    // Environments judged by it are judged again by the new text.
                    let envs: Vec<i64> = sqlx::query("SELECT env_id FROM environment_policies WHERE policy_id = $1 ORDER BY env_id")
                        .bind(id)
                        .fetch_all(&mut *c)
                        .await?
                        .iter()
                        .map(|r| r.try_get(0))
                        .collect::<Result<_, _>>()?;
                    evaluation::mark(c, &ledger, &envs, Cause::PolicyUpdated).await?;
                    let environments = policy_environments(c, id).await?;
                    Ok(Saved {
                        created,
                        value: Policy {
                            name: new.name,
                            kind: new.kind,
                            version,
                            content: new.content,
                            sha256,
                            description: new.description,
                            created_at: now,
                            environments,
                        },
                    })
                })
            })
            .await
    }

    /// A policy at its latest version, or at `version`.
    pub async fn get_policy(
        &self,
        org_id: i64,
        name: &str,
        version: Option<i64>,
    ) -> StoreResult<Policy> {
        let mut c = self.db.read.acquire().await?;
        let (id, mut p) = policy_at(&mut c, org_id, name, version)
            .await?
            .ok_or_else(|| match version {
                Some(v) => StoreError::not_found("policy version", format!("{name}@v{v}")),
                None => StoreError::not_found("policy", name),
            })?;
        p.environments = policy_environments(&mut c, id).await?;
        Ok(p)
    }

    pub async fn list_policies(&self, org_id: i64) -> StoreResult<Vec<Policy>> {
        let mut c = self.db.read.acquire().await?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{POLICY_SELECT} AND v.version = p.latest_version WHERE p.org_id = $1 ORDER BY p.name"
        )))
        .bind(org_id)
        .fetch_all(&mut *c)
        .await?;
        // Where each policy is attached, for all of them in one read.
        let mut attached_to: std::collections::HashMap<i64, Vec<String>> = Default::default();
        for r in sqlx::query(
            "SELECT ep.policy_id, e.name FROM environment_policies ep JOIN environments e ON e.id = ep.env_id \
             JOIN policies p ON p.id = ep.policy_id WHERE p.org_id = $1 ORDER BY e.name",
        )
        .bind(org_id)
        .fetch_all(&mut *c)
        .await?
        {
            attached_to.entry(r.try_get(0)?).or_default().push(r.try_get(1)?);
        }
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let (id, mut p) = policy_from_row(r)?;
            p.environments = attached_to.remove(&id).unwrap_or_default();
            out.push(p);
        }
        Ok(out)
    }

    /// Attaches (or with `attach` false, detaches) policies to an
    /// environment and judges it again. Attaching twice, or detaching what
    /// is not attached, is refused, so a mistyped name is never silent.
    pub async fn attach_policies(
        &self,
        p: &Principal,
        env: &str,
        names: Vec<String>,
        attach: bool,
    ) -> StoreResult<Vec<String>> {
        if names.is_empty() {
            return Err(StoreError::Unprocessable("name at least one policy".into()));
        }
        let (org_id, org, env) = (p.org_id, p.org.clone(), env.to_string());
        let actor = p.actor();
        self.write_judged(org_id, move |c| {
                Box::pin(async move {
                    let mut ledger = LedgerWriter::lock(c, org_id, &org, &actor).await?;
                    let e = physical_env(c, org_id, &env, "attach policies to").await?;
                    let policies = by_names(c, org_id, &names).await?;
                    let now = now_ms();
                    for (id, pol) in &policies {
                        let q = if attach {
                            sqlx::query("INSERT INTO environment_policies (env_id, policy_id, attached_at) VALUES ($1, $2, $3)")
                                .bind(e.id)
                                .bind(*id)
                                .bind(now)
                        } else {
                            sqlx::query("DELETE FROM environment_policies WHERE env_id = $1 AND policy_id = $2")
                                .bind(e.id)
                                .bind(*id)
                        };
                        let done = q.execute(&mut *c).await.map_err(|err| match StoreError::from(err) {
                            StoreError::Conflict(_) => StoreError::Conflict(format!(
                                "policy '{}' is already attached to environment '{env}'",
                                pol.name
                            )),
                            other => other,
                        })?;
                        if !attach && done.rows_affected() == 0 {
                            return Err(StoreError::Unprocessable(format!(
                                "policy '{}' is not attached to environment '{env}'",
                                pol.name
                            )));
                        }
                    }
                    ledger
                        .append(
                            c,
                            EntryKind::PolicyAttachment,
                            &json!({
                                "environment": env,
                                if attach { "attached" } else { "detached" }:
                                    policies.iter().map(|(_, p)| json!({"name": p.name, "version": p.version})).collect::<Vec<_>>(),
                            }),
                        )
                        .await?;
                    let cause = if attach { Cause::PolicyAttached } else { Cause::PolicyDetached };
                    evaluation::mark(c, &ledger, &[e.id], cause).await?;
                    Ok(attached(c, e.id).await?.into_iter().map(|p| p.name).collect())
                })
            })
            .await
    }

    /// Creates a control, or a new version of it when anything changed.
    pub async fn put_control(
        &self,
        p: &Principal,
        identifier: &str,
        fields: PutControlRequest,
    ) -> StoreResult<Saved<Control>> {
        check_name("control identifier", identifier)?;
        if fields.name.trim().is_empty() {
            return Err(StoreError::Unprocessable("a control needs a name".into()));
        }
        let (org_id, org, identifier) = (p.org_id, p.org.clone(), identifier.to_string());
        let actor = p.actor();
        self.db
            .write(move |c| {
                Box::pin(async move {
                    let mut ledger = LedgerWriter::lock(c, org_id, &org, &actor).await?;
                    let now = now_ms();
                    let (id, version, created, created_at) = match control_row(c, org_id, &identifier).await {
                        Ok((id, old)) => {
                            if to_json(&old.fields)? == to_json(&fields)? {
                                return Ok(Saved { created: false, value: old });
                            }
                            (id, old.version + 1, false, old.created_at)
                        }
                        Err(StoreError::NotFound { .. }) => {
                            let id: i64 = sqlx::query(
                                "INSERT INTO controls (org_id, identifier, latest_version, created_at) VALUES ($1, $2, 1, $3) RETURNING id",
                            )
                            .bind(org_id)
                            .bind(&identifier)
                            .bind(now)
                            .fetch_one(&mut *c)
                            .await?
                            .try_get(0)?;
                            (id, 1, true, now)
                        }
                        Err(e) => return Err(e),
                    };
                    sqlx::query("INSERT INTO control_versions (control_id, version, doc, created_at) VALUES ($1, $2, $3, $4)")
                        .bind(id)
                        .bind(version)
                        .bind(to_json(&fields)?)
                        .bind(now)
                        .execute(&mut *c)
                        .await?;
                    sqlx::query("UPDATE controls SET latest_version = $2 WHERE id = $1")
                        .bind(id)
                        .bind(version)
                        .execute(&mut *c)
                        .await?;
                    let value = Control {
                        identifier: identifier.clone(),
                        version,
                        fields,
                        archived: false,
                        created_at,
                        updated_at: now,
                    };
                    ledger.append(c, EntryKind::Control, &value).await?;
                    Ok(Saved { created, value })
                })
            })
            .await
    }

    pub async fn get_control(&self, org_id: i64, identifier: &str) -> StoreResult<Control> {
        let mut c = self.db.read.acquire().await?;
        Ok(control_row(&mut c, org_id, identifier).await?.1)
    }

    /// Every version of a control, oldest first.
    pub async fn control_versions(
        &self,
        org_id: i64,
        identifier: &str,
    ) -> StoreResult<Vec<Control>> {
        let mut c = self.db.read.acquire().await?;
        let (_, head) = control_row(&mut c, org_id, identifier).await?;
        let rows = sqlx::query(
            "SELECT v.version, v.doc, v.created_at FROM control_versions v JOIN controls k ON k.id = v.control_id \
             WHERE k.org_id = $1 AND k.identifier = $2 ORDER BY v.version",
        )
        .bind(org_id)
        .bind(identifier)
        .fetch_all(&mut *c)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Control {
                    identifier: identifier.to_string(),
                    version: r.try_get(0)?,
                    fields: from_json("control", &r.try_get::<String, _>(1)?)?,
                    archived: head.archived,
                    created_at: head.created_at,
                    updated_at: r.try_get(2)?,
                })
            })
            .collect()
    }

    /// Archived controls are listed only when asked for.
    pub async fn list_controls(
        &self,
        org_id: i64,
        include_archived: bool,
    ) -> StoreResult<Vec<Control>> {
        let mut c = self.db.read.acquire().await?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{CONTROL_SELECT} WHERE k.org_id = $1 AND ($2 = 1 OR k.archived_at IS NULL) ORDER BY k.identifier"
        )))
        .bind(org_id)
        .bind(i64::from(include_archived))
        .fetch_all(&mut *c)
        .await?;
        rows.iter().map(|r| Ok(control_from_row(r)?.1)).collect()
    }

    /// Archives a control (no decisions are recorded for it), or restores
    /// it. Its versions and the decisions made stay as they are.
    pub async fn set_control_archived(
        &self,
        p: &Principal,
        identifier: &str,
        archived: bool,
    ) -> StoreResult<Control> {
        let (org_id, org, identifier) = (p.org_id, p.org.clone(), identifier.to_string());
        let actor = p.actor();
        self.db
            .write(move |c| {
                Box::pin(async move {
                    let mut ledger = LedgerWriter::lock(c, org_id, &org, &actor).await?;
                    let (id, control) = control_row(c, org_id, &identifier).await?;
                    if control.archived != archived {
                        sqlx::query("UPDATE controls SET archived_at = $2 WHERE id = $1")
                            .bind(id)
                            .bind(archived.then(now_ms))
                            .execute(&mut *c)
                            .await?;
                        ledger
                            .append(
                                c,
                                EntryKind::Control,
                                &json!({"identifier": identifier, "archived": archived}),
                            )
                            .await?;
                    }
                    Ok(control_row(c, org_id, &identifier).await?.1)
                })
            })
            .await
    }

    /// Allowlists an artifact in an environment and judges it again.
    pub async fn allow_artifact(
        &self,
        p: &Principal,
        env: &str,
        req: AllowRequest,
    ) -> StoreResult<AllowlistEntry> {
        if req.reason.trim().is_empty() {
            return Err(StoreError::Unprocessable(
                "an allowlist entry needs a reason".into(),
            ));
        }
        let (org_id, org, env, who) = (
            p.org_id,
            p.org.clone(),
            env.to_string(),
            p.service_account.clone(),
        );
        let actor = p.actor();
        self.write_judged(org_id, move |c| {
                Box::pin(async move {
                    let mut ledger = LedgerWriter::lock(c, org_id, &org, &actor).await?;
                    let e = physical_env(c, org_id, &env, "allowlist in").await?;
                    let now = now_ms();
                    sqlx::query(
                        "INSERT INTO allowlist (env_id, fingerprint, artifact_name, reason, created_by, created_at) \
                         VALUES ($1, $2, $3, $4, $5, $6) \
                         ON CONFLICT (env_id, fingerprint) DO UPDATE SET artifact_name = excluded.artifact_name, \
                         reason = excluded.reason, created_by = excluded.created_by, created_at = excluded.created_at",
                    )
                    .bind(e.id)
                    .bind(&req.fingerprint)
                    .bind(req.artifact_name.clone())
                    .bind(&req.reason)
                    .bind(&who)
                    .bind(now)
                    .execute(&mut *c)
                    .await?;
                    let entry = AllowlistEntry {
                        environment: env.clone(),
                        fingerprint: req.fingerprint,
                        artifact_name: req.artifact_name,
                        reason: req.reason,
                        created_by: who,
                        created_at: now,
                    };
                    ledger.append(c, EntryKind::Allowlist, &entry).await?;
                    evaluation::mark(c, &ledger, &[e.id], Cause::Allowlist).await?;
                    Ok(entry)
                })
            })
            .await
    }

    pub async fn allowlist(&self, org_id: i64, env: &str) -> StoreResult<Vec<AllowlistEntry>> {
        let mut c = self.db.read.acquire().await?;
        let e = env_row(&mut c, org_id, env).await?;
        let rows = sqlx::query(
            "SELECT fingerprint, artifact_name, reason, created_by, created_at FROM allowlist WHERE env_id = $1 ORDER BY created_at, fingerprint",
        )
        .bind(e.id)
        .fetch_all(&mut *c)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AllowlistEntry {
                    environment: env.to_string(),
                    fingerprint: r.try_get(0)?,
                    artifact_name: r.try_get(1)?,
                    reason: r.try_get(2)?,
                    created_by: r.try_get(3)?,
                    created_at: r.try_get(4)?,
                })
            })
            .collect()
    }
}

const CONTROL_SELECT: &str = "SELECT k.identifier, k.latest_version, k.archived_at, k.created_at, v.doc, v.created_at, k.id \
     FROM controls k JOIN control_versions v ON v.control_id = k.id AND v.version = k.latest_version";

/// A control at its latest version, with its row id.
fn control_from_row(r: &sqlx::any::AnyRow) -> StoreResult<(i64, Control)> {
    Ok((
        r.try_get(6)?,
        Control {
            identifier: r.try_get(0)?,
            version: r.try_get(1)?,
            archived: r.try_get::<Option<i64>, _>(2)?.is_some(),
            created_at: r.try_get(3)?,
            fields: from_json("control", &r.try_get::<String, _>(4)?)?,
            updated_at: r.try_get(5)?,
        },
    ))
}

async fn control_row(
    c: &mut AnyConnection,
    org_id: i64,
    identifier: &str,
) -> StoreResult<(i64, Control)> {
    let r = sqlx::query(sqlx::AssertSqlSafe(format!(
        "{CONTROL_SELECT} WHERE k.org_id = $1 AND k.identifier = $2"
    )))
    .bind(org_id)
    .bind(identifier)
    .fetch_optional(&mut *c)
    .await?
    .ok_or_else(|| StoreError::not_found("control", identifier))?;
    control_from_row(&r)
}

/// The current version of a control, for a decision made now.
pub(crate) async fn control_version(
    c: &mut AnyConnection,
    org_id: i64,
    identifier: &str,
) -> StoreResult<i64> {
    let (_, control) = control_row(c, org_id, identifier).await?;
    if control.archived {
        return Err(StoreError::Unprocessable(format!(
            "control '{identifier}' is archived: unarchive it to record decisions for it"
        )));
    }
    Ok(control.version)
}

/// Tags as stored on a flow.
pub(crate) fn tags_json(tags: &BTreeMap<String, String>) -> StoreResult<Option<String>> {
    if tags.is_empty() {
        Ok(None)
    } else {
        to_json(tags).map(Some)
    }
}
