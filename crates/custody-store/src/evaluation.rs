//! Judging an environment against its policies, inside the write that
//! changed something it depends on: a new snapshot, a policy attached,
//! detached or given a new version, an allowlist entry, or evidence for an
//! artifact that runs there. Each evaluation is a row in `env_evaluations`
//! holding its inputs (snapshot, policy versions and their SHA-256,
//! allowlisted fingerprints, the trails read) and every artifact's rule
//! results, and an `evaluation` ledger entry with the row's SHA-256, the
//! policy versions and what failed.
//!
//! An environment with no policy is UNKNOWN, never compliant; it is only
//! recorded as such when it stops being judged (the last policy detached).

use std::collections::{BTreeMap, HashMap, HashSet};

use custody_api::{
    ComplianceStatus, EnvironmentCompliance, EvaluationInputs, PolicyEvaluation, PolicyKind,
    PolicyRef,
};
use custody_ledger::EntryKind;
use custody_policy::ArtifactFacts;
use custody_policy::rego::Place;
use custody_runtime::ArtifactKey;
use serde_json::json;
use sha2::{Digest, Sha256};
use sqlx::{AnyConnection, Row};

use crate::facts;
use crate::interval_tree::OPEN;
use crate::ledger::LedgerWriter;
use crate::policies::{AttachedPolicy, attached};
use crate::util::{from_json, now_ms, to_json};
use crate::{StoreError, StoreResult};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cause {
    Snapshot,
    PolicyAttached,
    PolicyDetached,
    PolicyUpdated,
    Allowlist,
    Attestation,
    Artifact,
    FlowTags,
    Template,
}

impl Cause {
    fn as_str(self) -> &'static str {
        match self {
            Cause::Snapshot => "snapshot",
            Cause::PolicyAttached => "policy-attached",
            Cause::PolicyDetached => "policy-detached",
            Cause::PolicyUpdated => "policy-updated",
            Cause::Allowlist => "allowlist",
            Cause::Attestation => "attestation",
            Cause::Artifact => "artifact",
            Cause::FlowTags => "flow-tags",
            Cause::Template => "template",
        }
    }
}

/// An evaluation just recorded, and the status before it.
#[derive(Debug, Clone)]
pub(crate) struct Evaluated {
    pub previous: ComplianceStatus,
    pub now: EnvironmentCompliance,
}

/// Who the environment is, for an evaluation.
pub(crate) struct EnvRef<'a> {
    pub id: i64,
    pub name: &'a str,
    pub snapshot: i64,
}

/// Judges a set of artifacts by policies: the pure part, also used by
/// `assert artifact`.
pub(crate) fn judge(
    policies: &[AttachedPolicy],
    facts: &[ArtifactFacts],
    place: Place<'_>,
) -> StoreResult<Vec<PolicyEvaluation>> {
    policies
        .iter()
        .map(|p| {
            let verdicts = match p.kind {
                PolicyKind::Kosli => {
                    let parsed = custody_policy::Policy::from_yaml(&p.content).map_err(|e| {
                        StoreError::Corrupt(format!(
                            "stored policy '{}' v{}: {e}",
                            p.name, p.version
                        ))
                    })?;
                    facts.iter().map(|f| parsed.evaluate(f)).collect::<Vec<_>>()
                }
                PolicyKind::Rego => {
                    let rego = custody_policy::rego::EnvironmentPolicy::compile(&p.content)
                        .map_err(|e| {
                            StoreError::Corrupt(format!(
                                "stored policy '{}' v{}: {e}",
                                p.name, p.version
                            ))
                        })?;
                    facts
                        .iter()
                        .map(|f| rego.evaluate(place, f))
                        .collect::<Vec<_>>()
                }
            };
            Ok(PolicyEvaluation {
                policy: p.name.clone(),
                version: p.version,
                sha256: p.sha256.clone(),
                compliant: verdicts.iter().all(|v| v.compliant),
                artifacts: verdicts,
            })
        })
        .collect()
}

/// What runs in the environment's latest snapshot.
pub(crate) async fn running_keys(
    c: &mut AnyConnection,
    env_id: i64,
) -> StoreResult<Vec<ArtifactKey>> {
    let mut keys: Vec<ArtifactKey> = crate::runtime::open_intervals(c, env_id)
        .await?
        .into_iter()
        .map(|o| o.key)
        .collect();
    keys.sort();
    Ok(keys)
}

pub(crate) async fn allowlisted(
    c: &mut AnyConnection,
    env_id: i64,
) -> StoreResult<HashSet<String>> {
    let rows = sqlx::query("SELECT fingerprint FROM allowlist WHERE env_id = $1")
        .bind(env_id)
        .fetch_all(&mut *c)
        .await?;
    rows.iter()
        .map(|r| r.try_get(0).map_err(Into::into))
        .collect()
}

async fn env_ref(c: &mut AnyConnection, env_id: i64) -> StoreResult<(String, i64)> {
    let r = sqlx::query("SELECT name, latest_index FROM environments WHERE id = $1")
        .bind(env_id)
        .fetch_one(&mut *c)
        .await?;
    Ok((r.try_get(0)?, r.try_get(1)?))
}

/// [`evaluate`] for an environment known by id, at its latest snapshot.
pub(crate) async fn evaluate_by_id(
    c: &mut AnyConnection,
    ledger: &mut LedgerWriter,
    org_id: i64,
    env_id: i64,
    cause: Cause,
) -> StoreResult<Option<Evaluated>> {
    let (name, snapshot) = env_ref(c, env_id).await?;
    let env = EnvRef {
        id: env_id,
        name: &name,
        snapshot,
    };
    evaluate(c, ledger, org_id, &env, None, cause).await
}

pub(crate) async fn evaluate_env(
    c: &mut AnyConnection,
    ledger: &mut LedgerWriter,
    org_id: i64,
    e: &crate::environments::EnvRow,
    running: Option<&[ArtifactKey]>,
    cause: Cause,
) -> StoreResult<Option<Evaluated>> {
    let env = EnvRef {
        id: e.id,
        name: &e.name,
        snapshot: e.latest_index,
    };
    evaluate(c, ledger, org_id, &env, running, cause).await
}

/// Judges the environment and records the result. Nothing is recorded for
/// an environment that has no policy and never had one judging it.
pub(crate) async fn evaluate(
    c: &mut AnyConnection,
    ledger: &mut LedgerWriter,
    org_id: i64,
    env: &EnvRef<'_>,
    running: Option<&[ArtifactKey]>,
    cause: Cause,
) -> StoreResult<Option<Evaluated>> {
    let r = sqlx::query("SELECT compliance, evaluation_seq FROM environments WHERE id = $1")
        .bind(env.id)
        .fetch_one(&mut *c)
        .await?;
    let previous = match r.try_get::<Option<String>, _>(0)? {
        Some(s) => ComplianceStatus::parse(&s)
            .ok_or_else(|| StoreError::Corrupt(format!("environment compliance '{s}'")))?,
        None => ComplianceStatus::Unknown,
    };
    let seq: i64 = r.try_get::<i64, _>(1)? + 1;
    let policies = attached(c, env.id).await?;
    if policies.is_empty() && previous == ComplianceStatus::Unknown {
        return Ok(None);
    }
    let keys = match running {
        Some(k) => k.to_vec(),
        None => running_keys(c, env.id).await?,
    };
    let allow = allowlisted(c, env.id).await?;
    let mut allowed: Vec<String> = allow.iter().cloned().collect();
    allowed.sort();
    let refs: Vec<PolicyRef> = policies
        .iter()
        .map(|p| PolicyRef {
            name: p.name.clone(),
            version: p.version,
            sha256: p.sha256.clone(),
        })
        .collect();
    // A new snapshot changes only what runs: every other input change
    // judges the environment whole. So when the policies (policy v1, a
    // pure function of an artifact's facts) and the allowlist are those of
    // the last evaluation, artifacts that still run keep their verdicts and
    // only the new ones are read and judged.
    let reusable = if cause == Cause::Snapshot
        && !policies.is_empty()
        && policies.iter().all(|p| p.kind == PolicyKind::Kosli)
    {
        latest(c, env.id).await?.filter(|prev| {
            same_refs(&prev.inputs.policies, &refs) && prev.inputs.allowlisted == allowed
        })
    } else {
        None
    };
    let (evaluations, trails) = match reusable {
        Some(prev) => reuse(c, org_id, &policies, &keys, &allow, prev, env).await?,
        None => {
            let facts = facts::gather(c, org_id, &keys, &allow).await?;
            let place = Place {
                environment: Some(env.name),
                snapshot: Some(env.snapshot.max(0) as u64),
            };
            (judge(&policies, &facts, place)?, trails_of(&facts))
        }
    };
    let status = if policies.is_empty() {
        ComplianceStatus::Unknown
    } else if evaluations.iter().all(|p| p.compliant) {
        ComplianceStatus::Compliant
    } else {
        ComplianceStatus::NonCompliant
    };
    let now = now_ms();
    let value = EnvironmentCompliance {
        environment: env.name.to_string(),
        status,
        evaluation: seq,
        snapshot: env.snapshot.max(0) as u64,
        evaluated_at: now,
        cause: cause.as_str().into(),
        policies: evaluations,
        inputs: EvaluationInputs {
            policies: refs,
            allowlisted: allowed,
            trails,
        },
    };
    // The whole judgement is kept in its row; the ledger entry commits to
    // that text by its SHA-256 and names what failed, so an environment of
    // thousands of artifacts does not copy every passing rule into the log.
    let doc = to_json(&value)?;
    let doc_sha256 = hex::encode(Sha256::digest(doc.as_bytes()));
    sqlx::query(
        "INSERT INTO env_evaluations (env_id, seq, snapshot_idx, ts, status, cause, doc) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(env.id)
    .bind(seq)
    .bind(env.snapshot)
    .bind(now)
    .bind(status.as_str())
    .bind(cause.as_str())
    .bind(doc)
    .execute(&mut *c)
    .await?;
    sqlx::query("UPDATE environments SET compliance = $2, evaluation_seq = $3 WHERE id = $1")
        .bind(env.id)
        .bind(status.as_str())
        .bind(seq)
        .execute(&mut *c)
        .await?;
    let failing: Vec<_> = value
        .policies
        .iter()
        .flat_map(|p| {
            p.artifacts.iter().filter(|a| !a.compliant).map(move |a| {
                json!({
                    "policy": p.policy,
                    "name": a.name,
                    "fingerprint": a.fingerprint,
                    "reasons": a.reasons().collect::<Vec<_>>(),
                })
            })
        })
        .collect();
    ledger
        .append(
            c,
            EntryKind::Evaluation,
            &json!({
                "environment": env.name,
                "evaluation": seq,
                "snapshot": env.snapshot,
                "cause": cause.as_str(),
                "status": status.as_str(),
                "policies": value.inputs.policies,
                "artifacts": keys.len(),
                "failing": failing,
                "doc_sha256": doc_sha256,
            }),
        )
        .await?;
    let evaluated = Evaluated {
        previous,
        now: value,
    };
    let org = ledger.org().to_string();
    crate::notifications::compliance_event(c, org_id, &org, env.id, &evaluated).await?;
    Ok(Some(evaluated))
}

fn same_refs(a: &[PolicyRef], b: &[PolicyRef]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| x.name == y.name && x.version == y.version && x.sha256 == y.sha256)
}

fn trails_of(facts: &[ArtifactFacts]) -> BTreeMap<String, Vec<String>> {
    facts
        .iter()
        .filter(|f| !f.trails.is_empty())
        .map(|f| {
            (
                f.fingerprint.clone(),
                f.trails
                    .iter()
                    .map(|t| format!("{}/{}", t.flow, t.trail))
                    .collect(),
            )
        })
        .collect()
}

/// The verdicts of `prev` for artifacts that still run, and fresh ones for
/// the rest, in `keys` order.
async fn reuse(
    c: &mut AnyConnection,
    org_id: i64,
    policies: &[AttachedPolicy],
    keys: &[ArtifactKey],
    allow: &HashSet<String>,
    mut prev: EnvironmentCompliance,
    env: &EnvRef<'_>,
) -> StoreResult<(Vec<PolicyEvaluation>, BTreeMap<String, Vec<String>>)> {
    type Key = (String, String);
    let mut old: Vec<HashMap<Key, custody_policy::ArtifactVerdict>> = prev
        .policies
        .iter_mut()
        .map(|p| {
            std::mem::take(&mut p.artifacts)
                .into_iter()
                .map(|v| ((v.name.clone(), v.fingerprint.clone()), v))
                .collect()
        })
        .collect();
    let missing: Vec<ArtifactKey> = keys
        .iter()
        .filter(|k| {
            let key = (k.name.clone(), k.fingerprint.clone());
            !old.iter().all(|m| m.contains_key(&key))
        })
        .cloned()
        .collect();
    let facts = facts::gather(c, org_id, &missing, allow).await?;
    let place = Place {
        environment: Some(env.name),
        snapshot: Some(env.snapshot.max(0) as u64),
    };
    let fresh = judge(policies, &facts, place)?;
    let mut trails = std::mem::take(&mut prev.inputs.trails);
    let running: HashSet<&str> = keys.iter().map(|k| k.fingerprint.as_str()).collect();
    trails.retain(|fp, _| running.contains(fp.as_str()));
    trails.extend(trails_of(&facts));
    let mut out = Vec::with_capacity(policies.len());
    for (i, p) in policies.iter().enumerate() {
        let mut new: HashMap<Key, custody_policy::ArtifactVerdict> = fresh[i]
            .artifacts
            .iter()
            .map(|v| ((v.name.clone(), v.fingerprint.clone()), v.clone()))
            .collect();
        let mut verdicts = Vec::with_capacity(keys.len());
        for k in keys {
            let key = (k.name.clone(), k.fingerprint.clone());
            let v = new
                .remove(&key)
                .or_else(|| old[i].remove(&key))
                .ok_or_else(|| StoreError::Corrupt(format!("no verdict for '{}'", k.name)))?;
            verdicts.push(v);
        }
        out.push(PolicyEvaluation {
            policy: p.name.clone(),
            version: p.version,
            sha256: p.sha256.clone(),
            compliant: verdicts.iter().all(|v| v.compliant),
            artifacts: verdicts,
        });
    }
    Ok((out, trails))
}

/// The latest evaluation of an environment.
async fn latest(c: &mut AnyConnection, env_id: i64) -> StoreResult<Option<EnvironmentCompliance>> {
    let r =
        sqlx::query("SELECT doc FROM env_evaluations WHERE env_id = $1 ORDER BY seq DESC LIMIT 1")
            .bind(env_id)
            .fetch_optional(&mut *c)
            .await?;
    match r {
        Some(r) => Ok(Some(from_json("evaluation", &r.try_get::<String, _>(0)?)?)),
        None => Ok(None),
    }
}

/// Environments with policies where any of `fingerprints` runs now:
/// those that evidence about the fingerprints can change.
pub(crate) async fn environments_running(
    c: &mut AnyConnection,
    org_id: i64,
    fingerprints: &[String],
) -> StoreResult<Vec<i64>> {
    let mut out: Vec<i64> = Vec::new();
    for fp in fingerprints.iter().collect::<HashSet<_>>() {
        let Ok(bytes) = hex::decode(fp) else { continue };
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT DISTINCT i.env_id FROM runtime_artifacts a JOIN env_intervals i ON i.artifact_id = a.id \
             JOIN environment_policies ep ON ep.env_id = i.env_id \
             WHERE a.org_id = $1 AND a.fingerprint = $2 AND i.last_idx = {OPEN}"
        )))
        .bind(org_id)
        .bind(bytes)
        .fetch_all(&mut *c)
        .await?;
        for r in rows {
            let id: i64 = r.try_get(0)?;
            if !out.contains(&id) {
                out.push(id);
            }
        }
    }
    out.sort_unstable();
    Ok(out)
}

/// Whose artifacts a change is about.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Reported {
    Trail(i64),
    Flow(i64),
}

/// The fingerprints reported into a trail or a flow.
pub(crate) async fn fingerprints_of(
    c: &mut AnyConnection,
    r: Reported,
) -> StoreResult<Vec<String>> {
    let (sql, id) = match r {
        Reported::Trail(id) => (
            "SELECT DISTINCT fingerprint FROM artifacts WHERE trail_id = $1",
            id,
        ),
        Reported::Flow(id) => (
            "SELECT DISTINCT fingerprint FROM artifacts WHERE flow_id = $1",
            id,
        ),
    };
    let rows = sqlx::query(sql).bind(id).fetch_all(&mut *c).await?;
    rows.iter()
        .map(|r| r.try_get(0).map_err(Into::into))
        .collect()
}

/// Re-judges the environments where the artifacts of a trail or flow run.
pub(crate) async fn reported_changed(
    c: &mut AnyConnection,
    ledger: &mut LedgerWriter,
    org_id: i64,
    r: Reported,
    cause: Cause,
) -> StoreResult<Vec<Evaluated>> {
    let fps = fingerprints_of(c, r).await?;
    evidence_changed(c, ledger, org_id, &fps, cause).await
}

/// Re-judges the environments where any of `fingerprints` runs.
pub(crate) async fn evidence_changed(
    c: &mut AnyConnection,
    ledger: &mut LedgerWriter,
    org_id: i64,
    fingerprints: &[String],
    cause: Cause,
) -> StoreResult<Vec<Evaluated>> {
    let mut out = Vec::new();
    for env in environments_running(c, org_id, fingerprints).await? {
        if let Some(e) = evaluate_by_id(c, ledger, org_id, env, cause).await? {
            out.push(e);
        }
    }
    Ok(out)
}

/// The latest evaluation of an environment that judged snapshot `idx` or
/// an earlier one: what was known about that snapshot when it was current.
pub(crate) async fn for_snapshot(
    c: &mut AnyConnection,
    env_id: i64,
    idx: i64,
) -> StoreResult<Option<EnvironmentCompliance>> {
    let r = sqlx::query(
        "SELECT doc FROM env_evaluations WHERE env_id = $1 AND snapshot_idx = $2 ORDER BY seq DESC LIMIT 1",
    )
    .bind(env_id)
    .bind(idx)
    .fetch_optional(&mut *c)
    .await?;
    match r {
        Some(r) => Ok(Some(from_json("evaluation", &r.try_get::<String, _>(0)?)?)),
        None => Ok(None),
    }
}

/// Attached policies and facts for an ad-hoc judgement (assert).
pub(crate) async fn facts_for(
    c: &mut AnyConnection,
    org_id: i64,
    keys: &[ArtifactKey],
    env_id: Option<i64>,
) -> StoreResult<Vec<ArtifactFacts>> {
    let allow = match env_id {
        Some(id) => allowlisted(c, id).await?,
        None => HashSet::new(),
    };
    facts::gather(c, org_id, keys, &allow).await
}

/// An artifact judged on demand (`assert artifact`).
#[derive(Debug, Clone)]
pub struct Judgement {
    pub facts: ArtifactFacts,
    pub policies: Vec<PolicyEvaluation>,
}

impl crate::Store {
    /// Judges one fingerprint by the policies attached to `environment`
    /// (with its allowlist) and by `policies`, as they are now. Nothing is
    /// recorded: this answers a question, it changes nothing.
    pub async fn judge_artifact(
        &self,
        org_id: i64,
        fingerprint: &str,
        environment: Option<&str>,
        policies: &[String],
    ) -> StoreResult<Judgement> {
        let mut c = self.db.read.acquire().await?;
        let mut tx = sqlx::Connection::begin(&mut *c).await?;
        let mut chosen = Vec::new();
        let mut env_id = None;
        let mut place = Place::default();
        let mut name = None;
        let env_row;
        if let Some(env) = environment {
            env_row = crate::environments::env_row(&mut tx, org_id, env).await?;
            env_id = Some(env_row.id);
            place = Place {
                environment: Some(&env_row.name),
                snapshot: Some(env_row.latest_index.max(0) as u64),
            };
            chosen = attached(&mut tx, env_row.id).await?;
            if chosen.is_empty() && policies.is_empty() {
                return Err(StoreError::Unprocessable(format!(
                    "environment '{env}' has no policy attached, so its compliance is unknown: attach one with `custody attach-policy NAME --environment {env}`"
                )));
            }
            // The name it runs under there, found by fingerprint: one
            // index range, not the whole running set.
            if let Ok(bytes) = hex::decode(fingerprint) {
                name = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT a.name FROM runtime_artifacts a JOIN env_intervals i ON i.artifact_id = a.id \
                     WHERE a.org_id = $1 AND a.fingerprint = $2 AND i.env_id = $3 AND i.last_idx = {OPEN} \
                     ORDER BY a.name LIMIT 1"
                )))
                .bind(org_id)
                .bind(bytes)
                .bind(env_row.id)
                .fetch_optional(&mut *tx)
                .await?
                .map(|r| r.try_get::<String, _>(0))
                .transpose()?;
            }
        }
        for (_, p) in crate::policies::by_names(&mut tx, org_id, policies).await? {
            if !chosen.iter().any(|c: &AttachedPolicy| c.name == p.name) {
                chosen.push(p);
            }
        }
        let name = match name {
            Some(n) => n,
            None => sqlx::query(
                "SELECT template_name FROM artifacts WHERE org_id = $1 AND fingerprint = $2 ORDER BY id DESC LIMIT 1",
            )
            .bind(org_id)
            .bind(fingerprint)
            .fetch_optional(&mut *tx)
            .await?
            .map(|r| r.try_get::<String, _>(0))
            .transpose()?
            .unwrap_or_default(),
        };
        let key = ArtifactKey {
            name,
            fingerprint: fingerprint.to_string(),
        };
        let mut facts = facts_for(&mut tx, org_id, std::slice::from_ref(&key), env_id).await?;
        let facts = facts
            .pop()
            .ok_or_else(|| StoreError::Corrupt("no facts for the artifact".into()))?;
        let evaluations = judge(&chosen, std::slice::from_ref(&facts), place)?;
        tx.commit().await?;
        Ok(Judgement {
            facts,
            policies: evaluations,
        })
    }

    /// The latest evaluation of an environment, if any policy ever judged
    /// it.
    pub async fn latest_evaluation(
        &self,
        org_id: i64,
        env: &str,
    ) -> StoreResult<Option<EnvironmentCompliance>> {
        let mut c = self.db.read.acquire().await?;
        let e = crate::environments::env_row(&mut c, org_id, env).await?;
        let r = sqlx::query(
            "SELECT doc FROM env_evaluations WHERE env_id = $1 ORDER BY seq DESC LIMIT 1",
        )
        .bind(e.id)
        .fetch_optional(&mut *c)
        .await?;
        match r {
            Some(r) => Ok(Some(from_json("evaluation", &r.try_get::<String, _>(0)?)?)),
            None => Ok(None),
        }
    }

    /// Every trail that reported the fingerprint, as (flow, trail), in
    /// report order; only those of `flow` when it is given.
    pub async fn artifact_trails(
        &self,
        org_id: i64,
        fingerprint: &str,
        flow: Option<&str>,
    ) -> StoreResult<Vec<(String, String)>> {
        let mut c = self.db.read.acquire().await?;
        // PostgreSQL cannot type a parameter that is only compared to NULL,
        // so the flow filter is in the text or not at all.
        let filter = if flow.is_some() {
            " AND f.name = $3"
        } else {
            ""
        };
        let mut q = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT f.name, t.name, MIN(a.id) AS first FROM artifacts a JOIN trails t ON t.id = a.trail_id \
             JOIN flows f ON f.id = a.flow_id WHERE a.org_id = $1 AND a.fingerprint = $2{filter} \
             GROUP BY f.name, t.name ORDER BY first"
        )))
        .bind(org_id)
        .bind(fingerprint);
        if let Some(f) = flow {
            q = q.bind(f);
        }
        let rows = q.fetch_all(&mut *c).await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }
}
