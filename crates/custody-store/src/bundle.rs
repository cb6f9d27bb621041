//! What goes in an audit bundle (custody-audit's format): which ledger
//! entries tell an environment's history over a window and the provenance
//! of what ran, and those entries with their proofs against one tree size.
//!
//! Entries are found by kind, through the `ledger_by_kind` index, and read
//! as the verifier will read them: an environment is known by the names
//! its own `environment` entries gave it, a window by entries' times.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use custody_audit::{Claim, Line, Manifest, RanArtifact, Running, Start};
use custody_ledger::merkle::{Hash, Node, ProofPlan};
use custody_ledger::{EntryKind, Envelope};
use custody_runtime::At;
use futures::TryStreamExt;
use serde_json::Value;
use sqlx::Row;

use crate::environments::env_row;
use crate::{Store, StoreError, StoreResult};

/// What was asked for.
#[derive(Debug, Clone)]
pub struct BundleRequest {
    pub environment: String,
    pub from: i64,
    pub to: i64,
    pub flow: Option<String>,
    pub claim: Claim,
    pub blobs: bool,
    /// Entries beyond this are not bundled: the size of the checkpoint the
    /// proofs are against.
    pub tree_size: u64,
    pub now: i64,
}

/// The bundle's manifest and the entries it lists.
#[derive(Debug, Clone)]
pub struct BundlePlan {
    pub manifest: Manifest,
    pub env_id: i64,
    pub seqs: Vec<u64>,
    /// Evidence files the entries reference: SHA-256 and size.
    pub blobs: BTreeMap<String, u64>,
}

fn str_of<'a>(r: &'a Value, f: &str) -> Option<&'a str> {
    r.get(f).and_then(Value::as_str)
}

/// Entries read by one query when bundling.
const LINES_PER_QUERY: usize = 64;

const ENV_SCOPED: [EntryKind; 5] = [
    EntryKind::Snapshot,
    EntryKind::Heartbeat,
    EntryKind::Evaluation,
    EntryKind::PolicyAttachment,
    EntryKind::Allowlist,
];

impl Store {
    /// Entries of `kinds` with sequence numbers in `from..to`, in order
    /// (newest first when `back`), until `each` says stop.
    pub(crate) async fn scan_kinds(
        &self,
        org_id: i64,
        kinds: &[EntryKind],
        from: u64,
        to: u64,
        back: bool,
        mut each: impl FnMut(u64, Envelope) -> StoreResult<bool>,
    ) -> StoreResult<()> {
        if from >= to || kinds.is_empty() {
            return Ok(());
        }
        let list = kinds
            .iter()
            .map(|k| format!("'{}'", k.as_str()))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT seq, entry FROM ledger WHERE org_id = $1 AND kind IN ({list}) AND seq >= $2 AND seq < $3 \
             ORDER BY seq {}",
            if back { "DESC" } else { "ASC" }
        );
        let mut rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(org_id)
            .bind(from as i64)
            .bind(to as i64)
            .fetch(&self.db.read);
        while let Some(row) = rows.try_next().await? {
            let seq: i64 = row.try_get(0)?;
            let text: String = row.try_get(1)?;
            let envelope: Envelope = serde_json::from_str(&text).map_err(|e| {
                StoreError::Corrupt(format!("ledger entry {seq} is not an envelope: {e}"))
            })?;
            if !each(seq as u64, envelope)? {
                break;
            }
        }
        Ok(())
    }

    /// The first sequence number whose entry is later than `t` (entries'
    /// times follow their numbers: each write takes the clock after the
    /// ledger's lock).
    pub(crate) async fn seq_after(&self, org_id: i64, t: i64, size: u64) -> StoreResult<u64> {
        let (mut lo, mut hi) = (0u64, size);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let ts: i64 = sqlx::query("SELECT ts FROM ledger WHERE org_id = $1 AND seq = $2")
                .bind(org_id)
                .bind(mid as i64)
                .fetch_one(&self.db.read)
                .await?
                .try_get(0)?;
            if ts <= t {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        Ok(lo)
    }

    /// Decides what a bundle holds.
    pub async fn bundle_plan(
        &self,
        org_id: i64,
        org: &str,
        req: &BundleRequest,
    ) -> StoreResult<BundlePlan> {
        let n = req.tree_size;
        let env = {
            let mut c = self.db.read.acquire().await?;
            env_row(&mut c, org_id, &req.environment).await?
        };
        if env.kind.is_logical() {
            return Err(StoreError::Unprocessable(format!(
                "environment '{}' is logical: it has no snapshots of its own; export each of its members",
                req.environment
            )));
        }
        if req.from > req.to {
            return Err(StoreError::Unprocessable(
                "the window starts after it ends".into(),
            ));
        }

        // The environment's own entries, newest first, following renames
        // back to its creation.
        let mut own_env_entries: Vec<(u64, Option<String>)> = Vec::new();
        let mut name = req.environment.clone();
        self.scan_kinds(org_id, &[EntryKind::Environment], 0, n, true, |seq, e| {
            let r = &e.record;
            let entry_name = str_of(r, "name").unwrap_or_default();
            match str_of(r, "renamed_to") {
                Some(to) if to == name => {
                    own_env_entries.push((seq, Some(to.to_string())));
                    name = entry_name.to_string();
                }
                // Another environment gave this name up: ours came later.
                Some(_) if entry_name == name => return Ok(false),
                None if entry_name == name => own_env_entries.push((seq, None)),
                _ => {}
            }
            Ok(true)
        })
        .await?;
        own_env_entries.reverse();
        // The name in force at any sequence number.
        let mut names = vec![name.clone()];
        let mut renames: Vec<(u64, String)> = Vec::new();
        for (seq, to) in &own_env_entries {
            if let Some(to) = to {
                names.push(to.clone());
                renames.push((*seq, to.clone()));
            }
        }
        let first_name = name;
        let name_at = |seq: u64| -> &str {
            renames
                .iter()
                .take_while(|(s, _)| *s < seq)
                .last()
                .map_or(first_name.as_str(), |(_, n)| n.as_str())
        };
        let mut seqs: BTreeSet<u64> = own_env_entries.iter().map(|(s, _)| *s).collect();

        // Where the window begins in the ledger.
        let lo = self.seq_after(org_id, req.from, n).await?;

        // The starting state: the last report at or before `from` (for
        // coverage at `from`), then the snapshot in force then. A stable
        // environment's last snapshot can be far back, behind every
        // environment's heartbeats: it is looked for among snapshots only.
        let mut start_snapshot: Option<u64> = None;
        let mut in_force: Option<(u64, u64)> = None;
        self.scan_kinds(
            org_id,
            &[EntryKind::Snapshot, EntryKind::Heartbeat],
            0,
            lo,
            true,
            |seq, e| {
                if str_of(&e.record, "environment") != Some(name_at(seq)) {
                    return Ok(true);
                }
                seqs.insert(seq);
                let idx = e
                    .record
                    .get("snapshot")
                    .and_then(Value::as_u64)
                    .unwrap_or(0);
                if e.kind == EntryKind::Snapshot {
                    start_snapshot = Some(idx);
                } else {
                    in_force = Some((seq, idx));
                }
                Ok(false)
            },
        )
        .await?;
        if let Some((below, idx)) = in_force {
            self.scan_kinds(org_id, &[EntryKind::Snapshot], 0, below, true, |seq, e| {
                let ours = str_of(&e.record, "environment") == Some(name_at(seq))
                    && e.record.get("snapshot").and_then(Value::as_u64) == Some(idx);
                if ours {
                    seqs.insert(seq);
                    start_snapshot = Some(idx);
                }
                Ok(!ours)
            })
            .await?;
        }
        let start_idx = start_snapshot.unwrap_or(0);
        let running: Vec<Running> = if start_idx == 0 {
            Vec::new()
        } else {
            let s = self
                .snapshot(
                    org_id,
                    &req.environment,
                    At::Index(start_idx),
                    &format!("#{start_idx}"),
                )
                .await?;
            let mut r: Vec<Running> = s
                .running
                .into_iter()
                .map(|a| Running {
                    name: a.key.name,
                    fingerprint: a.key.fingerprint,
                    instances: a.instances,
                })
                .collect();
            r.sort();
            r
        };

        // The window itself, up to the first report at or after its end.
        let mut to = req.to;
        let mut closed = false;
        let mut last_report: Option<i64> = None;
        let mut ran: BTreeSet<(String, String)> = running
            .iter()
            .map(|r| (r.name.clone(), r.fingerprint.clone()))
            .collect();
        let mut evaluations: Vec<(u64, i64)> = Vec::new();
        let mut policies: HashSet<(String, i64)> = HashSet::new();
        self.scan_kinds(org_id, &ENV_SCOPED, lo, n, false, |seq, e| {
            if str_of(&e.record, "environment") != Some(name_at(seq)) {
                return Ok(true);
            }
            let report = matches!(e.kind, EntryKind::Snapshot | EntryKind::Heartbeat);
            if e.ts > req.to && !report {
                return Ok(true);
            }
            seqs.insert(seq);
            match e.kind {
                EntryKind::Snapshot if e.ts <= req.to => {
                    for ch in e
                        .record
                        .get("changes")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                    {
                        if ch.get("now").and_then(Value::as_u64).unwrap_or(0) > 0 {
                            ran.insert((
                                str_of(ch, "name").unwrap_or_default().to_string(),
                                str_of(ch, "fingerprint").unwrap_or_default().to_string(),
                            ));
                        }
                    }
                }
                EntryKind::Evaluation => {
                    if let Some(n) = e.record.get("evaluation").and_then(Value::as_i64) {
                        evaluations.push((seq, n));
                    }
                    for p in e
                        .record
                        .get("policies")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                    {
                        if let (Some(name), Some(v)) =
                            (str_of(p, "name"), p.get("version").and_then(Value::as_i64))
                        {
                            policies.insert((name.to_string(), v));
                        }
                    }
                }
                _ => {}
            }
            if report {
                last_report = Some(e.ts);
                if e.ts >= req.to {
                    closed = true;
                    return Ok(false);
                }
            }
            Ok(true)
        })
        .await?;
        if !closed {
            // The checkpoint ends before the window does: the window ends
            // at the last report it holds, which is what can be proven.
            if let Some(t) = last_report {
                to = t.max(req.from);
            }
        }

        // The policy versions the judgements used.
        if !policies.is_empty() {
            self.scan_kinds(org_id, &[EntryKind::Policy], 0, n, false, |seq, e| {
                let key = (
                    str_of(&e.record, "name").unwrap_or_default().to_string(),
                    e.record.get("version").and_then(Value::as_i64).unwrap_or(0),
                );
                if policies.contains(&key) {
                    seqs.insert(seq);
                }
                Ok(true)
            })
            .await?;
        }

        // Provenance: every artifact entry of a fingerprint that ran, its
        // trail, the trail's attestations and their evidence.
        let fingerprints: HashSet<&str> = ran
            .iter()
            .map(|(_, f)| f.as_str())
            .filter(|f| !f.is_empty())
            .collect();
        let mut with_provenance: HashSet<String> = HashSet::new();
        let mut trails: HashSet<(String, String)> = HashSet::new();
        self.scan_kinds(org_id, &[EntryKind::Artifact], 0, n, false, |seq, e| {
            let fp = str_of(&e.record, "fingerprint").unwrap_or_default();
            let flow = str_of(&e.record, "flow").unwrap_or_default();
            if fingerprints.contains(fp) && req.flow.as_deref().is_none_or(|f| f == flow) {
                seqs.insert(seq);
                with_provenance.insert(fp.to_string());
                trails.insert((
                    flow.to_string(),
                    str_of(&e.record, "trail").unwrap_or_default().to_string(),
                ));
            }
            Ok(true)
        })
        .await?;
        let mut attestation_ids: HashSet<String> = HashSet::new();
        let mut blobs: BTreeMap<String, u64> = BTreeMap::new();
        if !trails.is_empty() {
            self.scan_kinds(
                org_id,
                &[
                    EntryKind::Trail,
                    EntryKind::Attestation,
                    EntryKind::Evidence,
                ],
                0,
                n,
                false,
                |seq, e| {
                    let r = &e.record;
                    let keep = match e.kind {
                        EntryKind::Trail => trails.contains(&(
                            str_of(r, "flow").unwrap_or_default().to_string(),
                            str_of(r, "name").unwrap_or_default().to_string(),
                        )),
                        EntryKind::Attestation => {
                            let ours = trails.contains(&(
                                str_of(r, "flow").unwrap_or_default().to_string(),
                                str_of(r, "trail").unwrap_or_default().to_string(),
                            ));
                            if ours && let Some(id) = str_of(r, "id") {
                                attestation_ids.insert(id.to_string());
                            }
                            ours
                        }
                        _ => {
                            let ours = str_of(r, "attestation_id")
                                .is_some_and(|a| attestation_ids.contains(a));
                            if ours && let Some(sha) = str_of(r, "sha256") {
                                blobs.insert(
                                    sha.to_string(),
                                    r.get("size").and_then(Value::as_u64).unwrap_or(0),
                                );
                            }
                            ours
                        }
                    };
                    if keep {
                        seqs.insert(seq);
                    }
                    Ok(true)
                },
            )
            .await?;
        }

        let unknown: Vec<RanArtifact> = ran
            .iter()
            .filter(|(_, f)| f.is_empty() || !with_provenance.contains(f))
            .map(|(name, fingerprint)| RanArtifact {
                name: name.clone(),
                fingerprint: fingerprint.clone(),
            })
            .collect();
        let seqs: Vec<u64> = seqs.into_iter().collect();
        Ok(BundlePlan {
            manifest: Manifest {
                format: custody_audit::format::FORMAT.to_string(),
                org: org.to_string(),
                environment: req.environment.clone(),
                names,
                from: req.from,
                to,
                flow: req.flow.clone(),
                claim: req.claim.clone(),
                start: Start {
                    snapshot: start_idx,
                    running,
                },
                blobs: req.blobs,
                unknown,
                entries: seqs.len() as u64,
                created_at: req.now,
            },
            env_id: env.id,
            seqs,
            blobs: if req.blobs { blobs } else { BTreeMap::new() },
        })
    }

    /// The lines of `seqs` (a run of a plan's, in order): each entry with
    /// its inclusion proof against the tree of `tree_size` entries, and an
    /// evaluation's document.
    pub async fn bundle_lines(
        &self,
        org_id: i64,
        env_id: i64,
        seqs: &[u64],
        tree_size: u64,
    ) -> StoreResult<Vec<Line>> {
        if seqs.is_empty() {
            return Ok(Vec::new());
        }
        let mut entries: HashMap<u64, (String, String)> = HashMap::new();
        for run in seqs.chunks(LINES_PER_QUERY) {
            let list = (0..run.len())
                .map(|i| format!("${}", i + 2))
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!(
                "SELECT seq, kind, entry FROM ledger WHERE org_id = $1 AND seq IN ({list})"
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(org_id);
            for s in run {
                q = q.bind(*s as i64);
            }
            for row in q.fetch_all(&self.db.read).await? {
                let seq = row.try_get::<i64, _>(0)? as u64;
                entries.insert(seq, (row.try_get(1)?, row.try_get(2)?));
            }
        }

        // One read of the tree for the whole run.
        let mut plans = Vec::with_capacity(seqs.len());
        let mut nodes: Vec<Node> = Vec::new();
        for &seq in seqs {
            let plan = ProofPlan::inclusion(seq, tree_size)
                .map_err(|e| StoreError::Unprocessable(e.to_string()))?;
            nodes.extend(plan.nodes());
            plans.push(plan);
        }
        nodes.sort_unstable();
        nodes.dedup();
        let hashes = self.fetch_nodes(org_id, &nodes).await?;

        let mut out = Vec::with_capacity(seqs.len());
        for (&seq, plan) in seqs.iter().zip(&plans) {
            let (kind, entry) = entries
                .remove(&seq)
                .ok_or_else(|| StoreError::Corrupt(format!("ledger entry {seq} is missing")))?;
            let proof: Vec<Hash> = plan
                .assemble(&hashes)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            let doc = if kind == EntryKind::Evaluation.as_str() {
                let envelope: Envelope = serde_json::from_str(&entry).map_err(|e| {
                    StoreError::Corrupt(format!("ledger entry {seq} is not an envelope: {e}"))
                })?;
                let n = envelope
                    .record
                    .get("evaluation")
                    .and_then(Value::as_i64)
                    .unwrap_or(0);
                sqlx::query("SELECT doc FROM env_evaluations WHERE env_id = $1 AND seq = $2")
                    .bind(env_id)
                    .bind(n)
                    .fetch_optional(&self.db.read)
                    .await?
                    .map(|r| r.try_get::<String, _>(0))
                    .transpose()?
            } else {
                None
            };
            out.push(Line {
                seq,
                entry,
                proof: proof.iter().map(hex::encode).collect(),
                doc,
            });
        }
        Ok(out)
    }
}
