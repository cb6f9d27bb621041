//! Judging an environment against its policies.
//!
//! A write that changes something an environment's judgement depends on —
//! a new snapshot, a policy attached, detached or given a new version, an
//! allowlist entry, evidence for an artifact that runs there, a flow's
//! template or tags — does not judge it: it *marks* it, in its own
//! transaction, with the size of the organisation's ledger after the
//! write and the cause. Judging happens after the commit, in three steps,
//! none of which holds the write lock while a policy runs:
//!
//! 1. read, in one read transaction, everything the judgement needs and
//!    the ledger size it saw (`as_of`);
//! 2. judge: policy v1 here (pure, bounded); Rego through the caller's
//!    [`RegoRunner`] (the server's sandbox), since a Rego policy is a
//!    user's program that may loop or allocate without end;
//! 3. record, in a short write: an `env_evaluations` row holding the
//!    inputs (snapshot, policy versions and their SHA-256, allowlisted
//!    fingerprints, the trails read) and every artifact's rule results,
//!    and an `evaluation` ledger entry with the row's SHA-256, the policy
//!    versions and what failed — unless a judgement that saw a later
//!    state was recorded first. The mark is cleared when the judgement saw
//!    the write that set it.
//!
//! The write's caller waits for steps 1–3 (see `Store::settle`), so a
//! client sees the judgement of its own change; a server that stopped in
//! between finds the marks and judges on its next pass.
//!
//! An environment with no policy is UNKNOWN, never compliant; it is only
//! recorded as such when it stops being judged (the last policy detached).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use custody_api::{
    ComplianceStatus, EnvironmentCompliance, EvaluationInputs, PolicyEvaluation, PolicyKind,
    PolicyRef,
};
use custody_ledger::EntryKind;
use custody_policy::rego::{Decision, EnvironmentPolicy, Place};
use custody_policy::{ArtifactFacts, ArtifactVerdict};
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
    /// Several changes of different kinds before one judgement.
    Several,
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
            Cause::Several => "several",
        }
    }

    fn parse(s: &str) -> Cause {
        [
            Cause::Snapshot,
            Cause::PolicyAttached,
            Cause::PolicyDetached,
            Cause::PolicyUpdated,
            Cause::Allowlist,
            Cause::Attestation,
            Cause::Artifact,
            Cause::FlowTags,
            Cause::Template,
        ]
        .into_iter()
        .find(|c| c.as_str() == s)
        .unwrap_or(Cause::Several)
    }
}

/// Runs Rego policies for the store. The store never runs one itself: a
/// policy is a user's program, and the server runs those in its sandbox
/// with time and memory limits.
#[async_trait::async_trait]
pub trait RegoRunner: Send + Sync {
    /// The policy's decision for each input, in order; an input the policy
    /// gave no answer for is an `Err` with the reason. `Err` for the whole
    /// call means the runner itself is unavailable: nothing is judged.
    async fn run(
        &self,
        org_id: i64,
        name: &str,
        policy: &str,
        inputs: Vec<serde_json::Value>,
    ) -> Result<Vec<Result<Decision, String>>, String>;
}

/// Runs Rego in this process, with regorus's own time limit and nothing
/// else: for tools and tests that run their own policies. A server must
/// not use it for its tenants' policies.
pub struct InProcessRego;

#[async_trait::async_trait]
impl RegoRunner for InProcessRego {
    async fn run(
        &self,
        _org_id: i64,
        name: &str,
        policy: &str,
        inputs: Vec<serde_json::Value>,
    ) -> Result<Vec<Result<Decision, String>>, String> {
        let p = custody_policy::rego::RegoPolicy::compile_limited(
            policy,
            &format!("{name}.rego"),
            custody_policy::rego::TIME_LIMIT,
        )
        .map_err(|e| e.to_string())?;
        Ok(inputs
            .into_iter()
            .map(|i| p.evaluate(i, None).map_err(|e| e.to_string()))
            .collect())
    }
}

pub(crate) type Runner = Arc<dyn RegoRunner>;

/// An evaluation just recorded, and the status before it.
#[derive(Debug, Clone)]
pub(crate) struct Evaluated {
    pub previous: ComplianceStatus,
    pub now: EnvironmentCompliance,
}

/// Judges a set of artifacts by policies: the pure part for policy v1, the
/// runner for Rego. Also used by `assert artifact`.
pub(crate) async fn judge(
    rego: &dyn RegoRunner,
    org_id: i64,
    policies: &[AttachedPolicy],
    facts: &[ArtifactFacts],
    place: Place<'_>,
) -> StoreResult<Vec<PolicyEvaluation>> {
    let mut out = Vec::with_capacity(policies.len());
    for p in policies {
        let corrupt = |e: &dyn std::fmt::Display| {
            StoreError::Corrupt(format!("stored policy '{}' v{}: {e}", p.name, p.version))
        };
        let verdicts: Vec<ArtifactVerdict> = match p.kind {
            PolicyKind::Kosli => {
                let parsed =
                    custody_policy::Policy::from_yaml(&p.content).map_err(|e| corrupt(&e))?;
                facts.iter().map(|f| parsed.evaluate(f)).collect()
            }
            PolicyKind::Rego => {
                // Allowlisted artifacts are compliant whatever the policy
                // says: only the others are sent.
                let asked: Vec<&ArtifactFacts> = facts.iter().filter(|f| !f.allowlisted).collect();
                let inputs = asked
                    .iter()
                    .map(|f| EnvironmentPolicy::input(place, f))
                    .collect();
                let decisions = rego
                    .run(org_id, &p.name, &p.content, inputs)
                    .await
                    .map_err(|e| StoreError::Judge(format!("policy '{}': {e}", p.name)))?;
                if decisions.len() != asked.len() {
                    return Err(StoreError::Judge(format!(
                        "policy '{}': {} answers for {} artifacts",
                        p.name,
                        decisions.len(),
                        asked.len()
                    )));
                }
                let mut decisions = decisions.into_iter();
                facts
                    .iter()
                    .map(|f| {
                        let outcome = if f.allowlisted {
                            Ok(Decision {
                                allow: true,
                                violations: vec![],
                            })
                        } else {
                            decisions.next().unwrap_or_else(|| Err("no answer".into()))
                        };
                        EnvironmentPolicy::verdict(f, outcome)
                    })
                    .collect()
            }
        };
        out.push(PolicyEvaluation {
            policy: p.name.clone(),
            version: p.version,
            sha256: p.sha256.clone(),
            compliant: verdicts.iter().all(|v| v.compliant),
            artifacts: verdicts,
        });
    }
    Ok(out)
}

/// Marks environments for judgement after this write commits. Only those
/// a judgement would record something for: with a policy attached, or
/// judged before (a detached last policy records UNKNOWN once). A new
/// snapshot lets the next judgement keep the verdicts of what still runs;
/// any other cause given here (policies, the allowlist) has it judge every
/// artifact again.
pub(crate) async fn mark(
    c: &mut AnyConnection,
    ledger: &LedgerWriter,
    env_ids: &[i64],
    cause: Cause,
) -> StoreResult<()> {
    mark_with(c, ledger, env_ids, cause, cause != Cause::Snapshot).await
}

async fn mark_with(
    c: &mut AnyConnection,
    ledger: &LedgerWriter,
    env_ids: &[i64],
    cause: Cause,
    whole: bool,
) -> StoreResult<()> {
    for &id in env_ids {
        // Causes pile up until a judgement clears them (only the cause's
        // name: whether the next judgement may keep verdicts is
        // `judge_whole`).
        sqlx::query(
            "UPDATE environments SET \
               judge_cause = CASE WHEN judge_mark IS NULL OR judge_cause = $3 THEN $3 ELSE 'several' END, \
               judge_mark = $2, \
               judge_whole = CASE WHEN $4 = 1 THEN 1 ELSE judge_whole END \
             WHERE id = $1 AND (compliance IN ('COMPLIANT', 'NON-COMPLIANT') \
               OR EXISTS (SELECT 1 FROM environment_policies ep WHERE ep.env_id = $1))",
        )
        .bind(id)
        .bind(ledger.size())
        .bind(cause.as_str())
        .bind(i64::from(whole))
        .execute(&mut *c)
        .await?;
    }
    Ok(())
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

/// Everything one judgement of an environment needs, read in one read
/// transaction.
struct Prepared {
    org: String,
    env_id: i64,
    env: String,
    snapshot: i64,
    /// The organisation's ledger size the reads saw.
    as_of: i64,
    cause: Cause,
    policies: Vec<AttachedPolicy>,
    keys: Vec<ArtifactKey>,
    allowed: Vec<String>,
    /// The previous evaluation, when its verdicts still hold for the
    /// artifacts that still run (only new snapshots, same policies and
    /// allowlist since).
    reuse: Option<EnvironmentCompliance>,
    /// The latest evaluation recorded, to tell whether this one says
    /// anything new.
    previous: Option<EnvironmentCompliance>,
    /// Facts of the artifacts to judge: all of them, or with `reuse` only
    /// those it has no verdict for.
    facts: Vec<ArtifactFacts>,
}

/// Step 1: the inputs of a judgement of `env_id`, or None when it has no
/// mark to settle.
async fn prepare(c: &mut AnyConnection, org_id: i64, env_id: i64) -> StoreResult<Option<Prepared>> {
    let as_of: i64 = sqlx::query("SELECT size FROM ledger_heads WHERE org_id = $1")
        .bind(org_id)
        .fetch_one(&mut *c)
        .await?
        .try_get(0)?;
    let r = sqlx::query(
        "SELECT e.name, e.latest_index, e.judge_mark, e.judge_cause, e.judged_as_of, o.name, e.judge_whole \
         FROM environments e JOIN orgs o ON o.id = e.org_id WHERE e.id = $1 AND e.org_id = $2",
    )
    .bind(env_id)
    .bind(org_id)
    .fetch_optional(&mut *c)
    .await?;
    let Some(r) = r else { return Ok(None) };
    let mark: Option<i64> = r.try_get(2)?;
    let judged_as_of: i64 = r.try_get(4)?;
    if mark.is_none_or(|m| m <= judged_as_of) {
        return Ok(None);
    }
    let cause = Cause::parse(&r.try_get::<Option<String>, _>(3)?.unwrap_or_default());
    let policies = attached(c, env_id).await?;
    let keys = running_keys(c, env_id).await?;
    let allow = allowlisted(c, env_id).await?;
    let mut allowed: Vec<String> = allow.iter().cloned().collect();
    allowed.sort();
    // A new snapshot changes only what runs, and evidence only the facts
    // of the fingerprints it names (`env_judge_dirty`); a policy or the
    // allowlist changing judges the environment whole (`judge_whole`). So
    // when the policies (policy v1, a pure function of an artifact's facts)
    // and the allowlist are those of the last evaluation, artifacts that
    // still run and were not named keep their verdicts; only the others
    // are read and judged.
    let whole = r.try_get::<i64, _>(6)? != 0;
    let dirty: HashSet<String> =
        sqlx::query("SELECT fingerprint FROM env_judge_dirty WHERE env_id = $1")
            .bind(env_id)
            .fetch_all(&mut *c)
            .await?
            .iter()
            .map(|r| r.try_get(0))
            .collect::<Result<_, _>>()?;
    let previous = latest(c, env_id).await?;
    let reuse =
        if !whole && !policies.is_empty() && policies.iter().all(|p| p.kind == PolicyKind::Kosli) {
            let refs = refs_of(&policies);
            previous.clone().filter(|prev| {
                same_refs(&prev.inputs.policies, &refs) && prev.inputs.allowlisted == allowed
            })
        } else {
            None
        };
    let to_judge: Vec<ArtifactKey> = match &reuse {
        Some(prev) => {
            let known: Vec<HashSet<(&str, &str)>> = prev
                .policies
                .iter()
                .map(|p| {
                    p.artifacts
                        .iter()
                        .map(|v| (v.name.as_str(), v.fingerprint.as_str()))
                        .collect()
                })
                .collect();
            keys.iter()
                .filter(|k| {
                    dirty.contains(&k.fingerprint)
                        || !known
                            .iter()
                            .all(|m| m.contains(&(k.name.as_str(), k.fingerprint.as_str())))
                })
                .cloned()
                .collect()
        }
        None => keys.clone(),
    };
    let facts = if policies.is_empty() {
        vec![]
    } else {
        facts::gather(c, org_id, &to_judge, &allow).await?
    };
    Ok(Some(Prepared {
        org: r.try_get(5)?,
        env_id,
        env: r.try_get(0)?,
        snapshot: r.try_get(1)?,
        as_of,
        cause,
        policies,
        keys,
        allowed,
        reuse,
        previous,
        facts,
    }))
}

fn refs_of(policies: &[AttachedPolicy]) -> Vec<PolicyRef> {
    policies
        .iter()
        .map(|p| PolicyRef {
            name: p.name.clone(),
            version: p.version,
            sha256: p.sha256.clone(),
        })
        .collect()
}

/// What a judgement found: each policy's verdicts, and the trails read
/// per fingerprint.
type Judged = (Vec<PolicyEvaluation>, BTreeMap<String, Vec<String>>);

/// Step 3: records a judgement unless one that saw a later state was
/// recorded first. Nothing is recorded for an environment that has no
/// policy and never had one judging it; its mark is cleared all the same.
async fn record(
    c: &mut AnyConnection,
    org_id: i64,
    p: &Prepared,
    judged: Option<Judged>,
) -> StoreResult<Option<Evaluated>> {
    // Locked first, as in every write: on PostgreSQL this also makes two
    // judgements of one environment record one after the other.
    let mut ledger =
        LedgerWriter::lock(c, org_id, &p.org, &custody_ledger::Actor::server("judge")).await?;
    let r = sqlx::query(
        "SELECT compliance, evaluation_seq, judged_as_of FROM environments WHERE id = $1",
    )
    .bind(p.env_id)
    .fetch_one(&mut *c)
    .await?;
    if r.try_get::<i64, _>(2)? >= p.as_of {
        return Ok(None);
    }
    let previous = match r.try_get::<Option<String>, _>(0)? {
        Some(s) => ComplianceStatus::parse(&s)
            .ok_or_else(|| StoreError::Corrupt(format!("environment compliance '{s}'")))?,
        None => ComplianceStatus::Unknown,
    };
    let Some((evaluations, trails)) =
        judged.filter(|_| !(p.policies.is_empty() && previous == ComplianceStatus::Unknown))
    else {
        settled(c, p.env_id, p.as_of).await?;
        return Ok(None);
    };
    let seq: i64 = r.try_get::<i64, _>(1)? + 1;
    let status = if p.policies.is_empty() {
        ComplianceStatus::Unknown
    } else if evaluations.iter().all(|e| e.compliant) {
        ComplianceStatus::Compliant
    } else {
        ComplianceStatus::NonCompliant
    };
    // A judgement that finds what the latest one found, from the same
    // inputs, adds nothing to the record: the mark is cleared and
    // `judged_as_of` says how far the environment was judged. (Evidence
    // about a running artifact that changes no verdict is the common
    // case; recording each would write an evaluation per attestation per
    // environment.)
    if let Some(prev) = p
        .previous
        .as_ref()
        .filter(|prev| prev.evaluation == seq - 1)
        && prev.status == status
        && prev.snapshot == p.snapshot.max(0) as u64
        && prev.policies == evaluations
        && prev.inputs.policies == refs_of(&p.policies)
        && prev.inputs.allowlisted == p.allowed
        && prev.inputs.trails == trails
    {
        settled(c, p.env_id, p.as_of).await?;
        return Ok(None);
    }
    let now = now_ms();
    let value = EnvironmentCompliance {
        environment: p.env.clone(),
        status,
        evaluation: seq,
        snapshot: p.snapshot.max(0) as u64,
        evaluated_at: now,
        cause: p.cause.as_str().into(),
        policies: evaluations,
        inputs: EvaluationInputs {
            policies: refs_of(&p.policies),
            allowlisted: p.allowed.clone(),
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
    .bind(p.env_id)
    .bind(seq)
    .bind(p.snapshot)
    .bind(now)
    .bind(status.as_str())
    .bind(p.cause.as_str())
    .bind(doc)
    .execute(&mut *c)
    .await?;
    sqlx::query("UPDATE environments SET compliance = $2, evaluation_seq = $3 WHERE id = $1")
        .bind(p.env_id)
        .bind(status.as_str())
        .bind(seq)
        .execute(&mut *c)
        .await?;
    settled(c, p.env_id, p.as_of).await?;
    let failing: Vec<_> = value
        .policies
        .iter()
        .flat_map(|pe| {
            pe.artifacts.iter().filter(|a| !a.compliant).map(move |a| {
                json!({
                    "policy": pe.policy,
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
                "environment": p.env,
                "evaluation": seq,
                "snapshot": p.snapshot,
                "cause": p.cause.as_str(),
                "status": status.as_str(),
                "policies": value.inputs.policies,
                "artifacts": p.keys.len(),
                "failing": failing,
                "doc_sha256": doc_sha256,
                "as_of": p.as_of,
            }),
        )
        .await?;
    let evaluated = Evaluated {
        previous,
        now: value,
    };
    crate::notifications::compliance_event(c, org_id, &p.org, p.env_id, &evaluated).await?;
    Ok(Some(evaluated))
}

/// Notes that the environment was judged as of `as_of`, clearing its mark
/// if that judgement saw the write that set it.
async fn settled(c: &mut AnyConnection, env_id: i64, as_of: i64) -> StoreResult<()> {
    sqlx::query(
        "UPDATE environments SET judged_as_of = $2, \
           judge_whole = CASE WHEN judge_mark <= $2 THEN 0 ELSE judge_whole END, \
           judge_cause = CASE WHEN judge_mark <= $2 THEN NULL ELSE judge_cause END, \
           judge_mark = CASE WHEN judge_mark <= $2 THEN NULL ELSE judge_mark END \
         WHERE id = $1",
    )
    .bind(env_id)
    .bind(as_of)
    .execute(&mut *c)
    .await?;
    sqlx::query("DELETE FROM env_judge_dirty WHERE env_id = $1 AND mark <= $2")
        .bind(env_id)
        .bind(as_of)
        .execute(&mut *c)
        .await?;
    Ok(())
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

/// Step 2 for a prepared judgement: fresh verdicts for the facts read,
/// the previous ones for the rest, in the order of what runs.
async fn judge_prepared(
    rego: &dyn RegoRunner,
    org_id: i64,
    p: &mut Prepared,
) -> StoreResult<Judged> {
    let place = Place {
        environment: Some(&p.env),
        snapshot: Some(p.snapshot.max(0) as u64),
    };
    let fresh = judge(rego, org_id, &p.policies, &p.facts, place).await?;
    let Some(mut prev) = p.reuse.take() else {
        return Ok((fresh, trails_of(&p.facts)));
    };
    type Key = (String, String);
    let mut old: Vec<HashMap<Key, ArtifactVerdict>> = prev
        .policies
        .iter_mut()
        .map(|pe| {
            std::mem::take(&mut pe.artifacts)
                .into_iter()
                .map(|v| ((v.name.clone(), v.fingerprint.clone()), v))
                .collect()
        })
        .collect();
    let mut trails = std::mem::take(&mut prev.inputs.trails);
    let running: HashSet<&str> = p.keys.iter().map(|k| k.fingerprint.as_str()).collect();
    trails.retain(|fp, _| running.contains(fp.as_str()));
    trails.extend(trails_of(&p.facts));
    let mut out = Vec::with_capacity(p.policies.len());
    for (i, (pol, fresh)) in p.policies.iter().zip(fresh).enumerate() {
        let mut new: HashMap<Key, ArtifactVerdict> = fresh
            .artifacts
            .into_iter()
            .map(|v| ((v.name.clone(), v.fingerprint.clone()), v))
            .collect();
        let mut verdicts = Vec::with_capacity(p.keys.len());
        for k in &p.keys {
            let key = (k.name.clone(), k.fingerprint.clone());
            let v = new
                .remove(&key)
                .or_else(|| old.get_mut(i).and_then(|m| m.remove(&key)))
                .ok_or_else(|| StoreError::Corrupt(format!("no verdict for '{}'", k.name)))?;
            verdicts.push(v);
        }
        out.push(PolicyEvaluation {
            policy: pol.name.clone(),
            version: pol.version,
            sha256: pol.sha256.clone(),
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

/// Marks for judgement the environments where the artifacts of a trail or
/// flow run.
pub(crate) async fn reported_changed(
    c: &mut AnyConnection,
    ledger: &LedgerWriter,
    org_id: i64,
    r: Reported,
    cause: Cause,
) -> StoreResult<()> {
    let fps = fingerprints_of(c, r).await?;
    evidence_changed(c, ledger, org_id, &fps, cause).await
}

/// Marks for judgement the environments where any of `fingerprints` runs.
pub(crate) async fn evidence_changed(
    c: &mut AnyConnection,
    ledger: &LedgerWriter,
    org_id: i64,
    fingerprints: &[String],
    cause: Cause,
) -> StoreResult<()> {
    let envs = environments_running(c, org_id, fingerprints).await?;
    // Evidence changes the facts of these fingerprints and of no other
    // artifact (a trail's compliance is a fact of the fingerprints reported
    // into it, and the callers name them all): the next judgement reads and
    // judges those again and keeps the other verdicts.
    mark_with(c, ledger, &envs, cause, false).await?;
    for &env in &envs {
        for fp in fingerprints.iter().collect::<HashSet<_>>() {
            sqlx::query(
                "INSERT INTO env_judge_dirty (env_id, fingerprint, mark) VALUES ($1, $2, $3) \
                 ON CONFLICT (env_id, fingerprint) DO UPDATE SET mark = excluded.mark",
            )
            .bind(env)
            .bind(fp)
            .bind(ledger.size())
            .execute(&mut *c)
            .await?;
        }
    }
    Ok(())
}

/// The latest evaluation of an environment that judged snapshot `idx` or
/// an earlier one: what was known about that snapshot when it was current.
pub(crate) async fn for_snapshot(
    c: &mut AnyConnection,
    env_id: i64,
    idx: i64,
) -> StoreResult<Option<EnvironmentCompliance>> {
    let r = sqlx::query(
        // The latest seq through the snapshot index first: asked directly,
        // SQLite walks the primary key back from the newest evaluation,
        // which grows with the history after that snapshot.
        "SELECT doc FROM env_evaluations WHERE env_id = $1 AND seq = \
           (SELECT MAX(seq) FROM env_evaluations WHERE env_id = $1 AND snapshot_idx = $2)",
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
    /// Judges the environments of the organisation marked since its ledger
    /// had `since` entries — by the write just committed (or a concurrent
    /// one) — and returns what was recorded. Writes that can change a
    /// judgement call it before they answer, so a writer waits for the
    /// judgement of its own change and for no other: a write that marked
    /// nothing judges nothing. A failure here leaves the marks for
    /// [`Store::settle_pending`] and is logged, never returned: the write
    /// it follows has happened.
    pub(crate) async fn settle(&self, org_id: i64, since: i64) -> Vec<Evaluated> {
        let pending = sqlx::query(
            "SELECT id FROM environments WHERE org_id = $1 AND judge_mark > $2 ORDER BY id",
        )
        .bind(org_id)
        .bind(since)
        .fetch_all(&self.db.read)
        .await;
        let ids: Vec<i64> = match pending {
            Ok(rows) => rows.iter().filter_map(|r| r.try_get(0).ok()).collect(),
            Err(e) => {
                tracing::error!(error = %e, org_id, "cannot read the environments to judge");
                return vec![];
            }
        };
        // Side by side: each environment is judged by one task at a time
        // (`judging`), and the writes of their verdicts share a commit.
        let judged =
            futures::future::join_all(ids.iter().map(|&id| self.settle_env(org_id, id))).await;
        let mut out = Vec::new();
        for (env_id, j) in ids.into_iter().zip(judged) {
            match j {
                Ok(Some(e)) => out.push(e),
                Ok(None) => {}
                Err(e) => {
                    tracing::error!(error = %e, org_id, env_id, "judging an environment failed; it stays marked")
                }
            }
        }
        out
    }

    /// Judges up to `limit` marked environments of any organisation: what
    /// a stopped server or a failed judgement left. Returns how many were
    /// looked at.
    pub async fn settle_pending(&self, limit: i64) -> StoreResult<usize> {
        let rows = sqlx::query(
            "SELECT org_id, id FROM environments WHERE judge_mark IS NOT NULL ORDER BY judge_mark LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.db.read)
        .await?;
        for r in &rows {
            let (org_id, env_id): (i64, i64) = (r.try_get(0)?, r.try_get(1)?);
            if let Err(e) = self.settle_env(org_id, env_id).await {
                tracing::error!(error = %e, org_id, env_id, "judging an environment failed; it stays marked");
            }
        }
        Ok(rows.len())
    }

    /// Steps 1–3 for one environment. One judgement of an environment at a
    /// time in this process: a burst of writes that each marked it then
    /// waits for one judgement that saw them all, instead of each running
    /// its own.
    async fn settle_env(&self, org_id: i64, env_id: i64) -> StoreResult<Option<Evaluated>> {
        let lock = {
            let mut judging = self.judging.lock().unwrap_or_else(|e| e.into_inner());
            judging.retain(|_, m| Arc::strong_count(m) > 1);
            judging.entry(env_id).or_default().clone()
        };
        let _turn = lock.lock().await;
        let prepared = {
            let mut c = self.db.read.acquire().await?;
            let mut tx = sqlx::Connection::begin(&mut *c).await?;
            if self.db.backend == crate::Backend::Postgres {
                // One snapshot for every read below, as SQLite's WAL gives.
                sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                    .execute(&mut *tx)
                    .await?;
            }
            let p = prepare(&mut tx, org_id, env_id).await?;
            tx.commit().await?;
            p
        };
        let Some(mut prepared) = prepared else {
            return Ok(None);
        };
        let judged = if prepared.policies.is_empty() {
            Some((vec![], BTreeMap::new()))
        } else {
            Some(judge_prepared(self.rego.as_ref(), org_id, &mut prepared).await?)
        };
        self.db
            .write(move |c| Box::pin(async move { record(c, org_id, &prepared, judged).await }))
            .await
    }

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
        // Read, then judge with no transaction open.
        tx.commit().await?;
        drop(c);
        let evaluations = judge(
            self.rego.as_ref(),
            org_id,
            &chosen,
            std::slice::from_ref(&facts),
            place,
        )
        .await?;
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
