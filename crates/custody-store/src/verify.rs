//! `ledger verify`: the store audited against its own ledger, trusting
//! nothing but the hashes.
//!
//! 1. Every entry is re-derived: its text must be canonical, hash to its
//!    leaf, and say the sequence number, kind, organisation and time its
//!    row's columns say; the numbering must have no gap.
//! 2. The tree is rebuilt from the leaves and held to every kept checkpoint
//!    (root, size, the note's own text, and its signature when a key is
//!    given), to the stored interior nodes and to the head. A checkpoint
//!    beyond the ledger's end means entries were removed.
//! 3. Records are held to the entries that wrote them: artifacts and
//!    attestations (the whole record and its queried columns), snapshots
//!    (their counts), trails (the latest entry's document), policy
//!    versions (text and digest), evaluations (verdict, snapshot and the
//!    document's digest), the allowlist (what, why, on whose word),
//!    flows (description, tags) and their templates, environments (type,
//!    description, archiving, across renames), the policies attached to
//!    each, evidence files (which blob each name leads to), SBOM
//!    components (re-hashed to the digest in their attestation's entry),
//!    runtime intervals (replayed from the snapshots' changes),
//!    custom
//!    attestation types, control versions, notification
//!    actions, service accounts (role, server admin,
//!    deletion) and API keys (whose,
//!    expiry, revocation, and the stored hash itself, which entries commit
//!    to by its SHA-256) — replayed through rotations and revocations.
//!    A record without an entry was inserted outside a write; an entry
//!    without its record names a record that was deleted.
//!
//! Reads run in one read transaction per step, a batch at a time, so the
//! audit of a large ledger holds little in memory: the frontier, the
//! interior nodes (one per fifteen entries) and the records' keys.

use std::collections::{BTreeMap, HashMap};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use custody_api::{AuditProblem, LedgerAudit};
use custody_ledger::merkle::{Frontier, Hash, Node};
use custody_ledger::note::{Checkpoint, SignedCheckpoint, VerifierKey};
use serde_json::Value;
use sha2::Digest;
use sqlx::Row;

use crate::{Store, StoreError, StoreResult};

const BATCH: i64 = 5_000;

fn problem(seq: Option<u64>, table: &str, key: Option<String>, what: String) -> AuditProblem {
    AuditProblem {
        seq,
        table: table.to_string(),
        key,
        what,
    }
}

/// What the ledger says of a record, to hold the record to it.
struct Recorded {
    seq: u64,
    record: Value,
}

/// Names environments by identity across renames: an environment keeps the
/// identity it was first seen with, and a name given up by a rename is a
/// new environment if it comes back.
#[derive(Default)]
struct Identities {
    by_name: HashMap<String, u64>,
    next: u64,
}

impl Identities {
    fn of(&mut self, name: &str) -> u64 {
        if let Some(id) = self.by_name.get(name) {
            return *id;
        }
        self.next += 1;
        self.by_name.insert(name.to_string(), self.next);
        self.next
    }

    fn rename(&mut self, old: &str, new: &str) {
        let id = self.of(old);
        self.by_name.remove(old);
        self.by_name.insert(new.to_string(), id);
    }
}

/// What the ledger says of the records it wrote, to hold them to it.
#[derive(Default)]
struct Ledgered {
    attestations: HashMap<String, Recorded>,
    snapshots: HashMap<(u64, i64), Recorded>,
    /// Artifact reports have no key of their own: each is known by its
    /// whole record (canonical JSON), with the entries that wrote one so.
    artifacts: HashMap<String, Vec<u64>>,
    /// The latest entry of each trail (flow, name): a trail begun again
    /// is written again, whole.
    trails: HashMap<(String, String), Recorded>,
    policies: HashMap<(String, i64), Recorded>,
    evaluations: HashMap<(u64, i64), Recorded>,
    allowlist: HashMap<(u64, String), Recorded>,
    /// Accounts and keys as their entries leave them, replayed.
    accounts: HashMap<String, Account>,
    keys: HashMap<String, Key>,
    /// Flow templates by (flow, version); flows' description and tags as
    /// their latest entries left them.
    templates: HashMap<(String, i64), Recorded>,
    flows: HashMap<String, Recorded>,
    /// The policies attached to each environment, replayed.
    attached: HashMap<u64, (u64, std::collections::BTreeSet<String>)>,
    /// Each environment's type, description and archiving, replayed.
    environments: HashMap<u64, Recorded>,
    /// Whole documents: attestation types by (name, version), control
    /// versions by (identifier, version), actions by name (the latest).
    types: HashMap<(String, i64), Recorded>,
    controls: HashMap<(String, i64), Recorded>,
    actions: HashMap<String, Recorded>,
    /// Evidence files by (attestation, file name).
    evidence: HashMap<(String, String), Recorded>,
    /// SBOM attestations: the SHA-256 of their components' JSON.
    components: HashMap<String, (u64, String)>,
    /// What ran when, replayed from the snapshot entries' changes.
    runs: HashMap<u64, Runs>,
    envs: Identities,
}

/// An artifact (name, fingerprint) running with so many instances from one
/// snapshot to another (`OPEN` while it still runs).
type Interval = (u64, String, String, i64, i64, i64);
const OPEN: i64 = 2_147_483_647;

/// One environment's replay: intervals still open, and those closed, each
/// with the entry that opened it.
#[derive(Default)]
struct Runs {
    open: HashMap<(String, String), (i64, i64, u64)>,
    closed: Vec<(Interval, u64)>,
}

/// An account as its entries leave it: who may act, and how far.
struct Account {
    seq: u64,
    role: Value,
    server_admin: bool,
    deleted_at: Option<i64>,
}

/// A key as its entries leave it: whose, until when, whether revoked.
struct Key {
    seq: u64,
    service_account: Value,
    expires_at: Option<i64>,
    revoked_at: Option<i64>,
    /// SHA-256 of the stored key hash (entries written since it was added).
    hash_sha256: Option<String>,
}

fn key_of(seq: u64, r: &Value) -> Option<(String, Key)> {
    Some((
        r.get("id")?.as_str()?.to_string(),
        Key {
            seq,
            service_account: r.get("service_account").cloned().unwrap_or(Value::Null),
            expires_at: r.get("expires_at").and_then(Value::as_i64),
            revoked_at: None,
            hash_sha256: r
                .get("hash_sha256")
                .and_then(Value::as_str)
                .map(str::to_string),
        },
    ))
}

/// Keeps what an entry says of the records it wrote.
fn note_record(seq: u64, kind: &str, record: Value, l: &mut Ledgered) {
    let Ledgered {
        attestations,
        snapshots,
        artifacts,
        trails,
        policies,
        evaluations,
        allowlist,
        accounts,
        keys,
        templates,
        flows,
        attached,
        environments,
        types,
        controls,
        actions,
        evidence,
        components,
        runs,
        envs,
    } = l;
    let text = |f: &str| record.get(f).and_then(Value::as_str).map(str::to_string);
    match kind {
        "trail" => {
            if let (Some(flow), Some(name)) = (text("flow"), text("name")) {
                trails.insert((flow, name), Recorded { seq, record });
            }
        }
        "policy" => {
            if let (Some(name), Some(v)) =
                (text("name"), record.get("version").and_then(Value::as_i64))
            {
                policies.insert((name, v), Recorded { seq, record });
            }
        }
        "evaluation" => {
            if let (Some(env), Some(n)) = (
                text("environment"),
                record.get("evaluation").and_then(Value::as_i64),
            ) {
                let id = envs.of(&env);
                evaluations.insert((id, n), Recorded { seq, record });
            }
        }
        "evidence" => {
            if let (Some(att), Some(name)) = (text("attestation_id"), text("filename")) {
                evidence.insert((att, name), Recorded { seq, record });
            }
        }
        "attestation_type" => {
            if let (Some(name), Some(v)) =
                (text("name"), record.get("version").and_then(Value::as_i64))
            {
                types.insert((name, v), Recorded { seq, record });
            }
        }
        "control" => {
            if let (Some(id), Some(v)) = (
                text("identifier"),
                record.get("version").and_then(Value::as_i64),
            ) {
                controls.insert((id, v), Recorded { seq, record });
            }
        }
        "action" => {
            if let Some(name) = text("name") {
                actions.insert(name, Recorded { seq, record });
            }
        }
        "flow_template" => {
            if let (Some(flow), Some(v)) =
                (text("flow"), record.get("version").and_then(Value::as_i64))
            {
                templates.insert((flow, v), Recorded { seq, record });
            }
        }
        "flow" => {
            let Some(name) = text("name") else { return };
            let f = flows.entry(name).or_insert_with(|| Recorded {
                seq,
                record: serde_json::json!({"description": null, "tags": {}}),
            });
            f.seq = seq;
            for field in ["description", "tags"] {
                if let Some(v) = record.get(field) {
                    f.record[field] = v.clone();
                }
            }
        }
        "policy_attachment" => {
            let Some(env) = text("environment") else {
                return;
            };
            let id = envs.of(&env);
            let names = |field: &str| -> Vec<String> {
                record
                    .get(field)
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|p| p.get("name").and_then(Value::as_str).map(str::to_string))
                    .collect()
            };
            let set = attached.entry(id).or_default();
            set.0 = seq;
            set.1.extend(names("attached"));
            for n in names("detached") {
                set.1.remove(&n);
            }
        }
        "service_account" => {
            let Some(name) = text("name") else { return };
            if record.get("created_at").is_some() {
                accounts.insert(
                    name,
                    Account {
                        seq,
                        role: record.get("role").cloned().unwrap_or(Value::Null),
                        server_admin: record
                            .get("server_admin")
                            .and_then(Value::as_bool)
                            .unwrap_or(false),
                        deleted_at: None,
                    },
                );
            } else if let Some(a) = accounts.get_mut(&name) {
                a.seq = seq;
                if let Some(role) = record.get("role") {
                    a.role = role.clone();
                }
                if let Some(t) = record.get("deleted_at").and_then(Value::as_i64) {
                    a.deleted_at = Some(t);
                    for id in record
                        .get("revoked_keys")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                    {
                        if let Some(k) = id.as_str().and_then(|id| keys.get_mut(id)) {
                            k.seq = seq;
                            k.revoked_at = Some(t);
                        }
                    }
                }
            }
        }
        "api_key" => {
            // A rotation says the new key and what became of the old one.
            if let Some(new) = record.get("key") {
                if let Some((id, k)) = key_of(seq, new) {
                    keys.insert(id, k);
                }
                let old = &record["replaces"];
                if let Some(k) = old
                    .get("id")
                    .and_then(Value::as_str)
                    .and_then(|id| keys.get_mut(id))
                {
                    k.seq = seq;
                    k.expires_at = old.get("expires_at").and_then(Value::as_i64);
                    k.revoked_at = old.get("revoked_at").and_then(Value::as_i64);
                }
            } else if let Some((id, k)) = key_of(seq, &record) {
                keys.insert(id, k);
            }
        }
        "api_key_revoked" => {
            if let Some(k) = text("id").and_then(|id| keys.get_mut(&id)) {
                k.seq = seq;
                k.revoked_at = record.get("revoked_at").and_then(Value::as_i64);
            }
        }
        "allowlist" => {
            if let (Some(env), Some(fp)) = (text("environment"), text("fingerprint")) {
                let id = envs.of(&env);
                allowlist.insert((id, fp), Recorded { seq, record });
            }
        }
        "artifact" => {
            if let Ok(text) = custody_ledger::canonical_json(&record) {
                artifacts.entry(text).or_default().push(seq);
            }
        }
        "attestation" => {
            if let Some(id) = record.get("id").and_then(Value::as_str) {
                if let Some(d) = record["data"]
                    .get("components_sha256")
                    .and_then(Value::as_str)
                {
                    components.insert(id.to_string(), (seq, d.to_string()));
                }
                attestations.insert(id.to_string(), Recorded { seq, record });
            }
        }
        "snapshot" => {
            if let (Some(env), Some(n)) = (
                record.get("environment").and_then(Value::as_str),
                record.get("snapshot").and_then(Value::as_i64),
            ) {
                let id = envs.of(env);
                // A change closes the artifact's running interval at the
                // snapshot before and opens one with its new count: the
                // store's own rule, so the intervals follow from the log.
                let r = runs.entry(id).or_default();
                for ch in record["changes"].as_array().into_iter().flatten() {
                    let key = (
                        ch["name"].as_str().unwrap_or_default().to_string(),
                        ch["fingerprint"].as_str().unwrap_or_default().to_string(),
                    );
                    if ch["was"].as_i64().unwrap_or(0) > 0
                        && let Some((first, inst, opened)) = r.open.remove(&key)
                    {
                        r.closed.push((
                            (id, key.0.clone(), key.1.clone(), inst, first, n - 1),
                            opened,
                        ));
                    }
                    let now = ch["now"].as_i64().unwrap_or(0);
                    if now > 0 {
                        r.open.insert(key, (n, now, seq));
                    }
                }
                snapshots.insert((id, n), Recorded { seq, record });
            }
        }
        "environment" => {
            if let (Some(old), Some(new)) = (
                record.get("name").and_then(Value::as_str),
                record.get("renamed_to").and_then(Value::as_str),
            ) {
                envs.rename(old, new);
            } else if let Some(name) = record.get("name").and_then(Value::as_str) {
                let id = envs.of(name);
                let e = environments.entry(id).or_insert_with(|| Recorded {
                    seq,
                    record: serde_json::json!({"type": null, "description": null, "archived": false}),
                });
                e.seq = seq;
                if record.get("type").is_some() {
                    e.record["type"] = record["type"].clone();
                    e.record["description"] =
                        record.get("description").cloned().unwrap_or(Value::Null);
                }
                if record.get("archived").and_then(Value::as_bool) == Some(true) {
                    e.record["archived"] = Value::Bool(true);
                }
            }
        }
        _ => {}
    }
}

impl Store {
    /// Every organisation's name, for audits of the whole database.
    pub async fn org_names(&self) -> StoreResult<Vec<String>> {
        let rows = sqlx::query("SELECT name FROM orgs ORDER BY name")
            .fetch_all(&self.db.read)
            .await?;
        rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
    }

    /// Audits the organisation's store against its ledger; `key` checks
    /// the checkpoints' signatures too.
    pub async fn verify_ledger(
        &self,
        org: &str,
        key: Option<&VerifierKey>,
    ) -> StoreResult<LedgerAudit> {
        let Some(org_id) = self.org_id(org).await? else {
            return Err(StoreError::not_found("org", org));
        };
        let mut problems = Vec::new();
        let checkpoints = self.checkpoints(org).await?;
        let mut next_checkpoint = checkpoints.iter().peekable();
        let mut checked_checkpoints = 0u64;
        let mut signatures = 0u64;
        let mut tree = Frontier::new();
        let mut nodes: Vec<(Node, Hash)> = Vec::new();
        let mut ledgered = Ledgered::default();
        let mut expected: u64 = 0;

        loop {
            let rows = sqlx::query(
                "SELECT seq, kind, ts, entry, leaf_hash FROM ledger WHERE org_id = $1 AND seq >= $2 \
                 ORDER BY seq LIMIT $3",
            )
            .bind(org_id)
            .bind(expected as i64)
            .bind(BATCH)
            .fetch_all(&self.db.read)
            .await?;
            let done = (rows.len() as i64) < BATCH;
            for row in rows {
                let seq = row.try_get::<i64, _>(0)?.max(0) as u64;
                if seq != expected {
                    problems.push(problem(
                        Some(expected),
                        "ledger",
                        None,
                        format!("entries {expected} to {} are missing", seq - 1),
                    ));
                    // The tree cannot be rebuilt past a hole: what follows
                    // is held to nothing.
                    return Ok(self.finish(
                        org,
                        tree,
                        checked_checkpoints,
                        signatures,
                        0,
                        problems,
                    ));
                }
                expected += 1;
                let kind: String = row.try_get(1)?;
                let ts: i64 = row.try_get(2)?;
                let entry: String = row.try_get(3)?;
                let leaf: Vec<u8> = row.try_get(4)?;
                let Ok(leaf) = Hash::try_from(leaf.as_slice()) else {
                    problems.push(problem(
                        Some(seq),
                        "ledger",
                        None,
                        "the leaf hash is not 32 bytes".into(),
                    ));
                    return Ok(self.finish(
                        org,
                        tree,
                        checked_checkpoints,
                        signatures,
                        0,
                        problems,
                    ));
                };
                match custody_ledger::verify(&entry, &leaf) {
                    Err(e) => problems.push(problem(Some(seq), "ledger", None, e.to_string())),
                    Ok(env) => {
                        let mut differs = Vec::new();
                        if env.seq.max(0) as u64 != seq {
                            differs.push(format!(
                                "its row is entry {seq}, the entry says {}",
                                env.seq
                            ));
                        }
                        if env.kind.as_str() != kind {
                            differs.push(format!(
                                "its row says kind '{kind}', the entry '{}'",
                                env.kind.as_str()
                            ));
                        }
                        if env.org != org {
                            differs.push(format!("it belongs to org '{}'", env.org));
                        }
                        if env.ts != ts {
                            differs.push(format!("its row says time {ts}, the entry {}", env.ts));
                        }
                        for d in differs {
                            problems.push(problem(Some(seq), "ledger", None, d));
                        }
                        note_record(seq, env.kind.as_str(), env.record, &mut ledgered);
                    }
                }
                tree.push(leaf, |n, h| {
                    if n.is_stored() {
                        nodes.push((n, *h));
                    }
                });
                while let Some(cp) = next_checkpoint.peek() {
                    if cp.size > tree.size() {
                        break;
                    }
                    checked_checkpoints += 1;
                    if cp.root != tree.root() {
                        problems.push(problem(
                            None,
                            "checkpoints",
                            Some(cp.size.to_string()),
                            format!(
                                "the checkpoint of size {} has root {}, the ledger's first {} entries hash to {}",
                                cp.size,
                                B64.encode(cp.root),
                                cp.size,
                                B64.encode(tree.root())
                            ),
                        ));
                    }
                    next_checkpoint.next();
                }
            }
            if done {
                break;
            }
        }

        // Checkpoints: beyond the end (entries removed), their notes, and
        // their signatures.
        for cp in next_checkpoint {
            problems.push(problem(
                None,
                "checkpoints",
                Some(cp.size.to_string()),
                format!(
                    "a checkpoint of size {} was issued, the ledger has {} entries: entries were removed",
                    cp.size,
                    tree.size()
                ),
            ));
        }
        for cp in &checkpoints {
            let text_ok = match key {
                Some(k) => match SignedCheckpoint::open(&cp.note, k, &[]) {
                    Ok(s) => {
                        signatures += 1;
                        Some(s.checkpoint)
                    }
                    Err(e) => {
                        problems.push(problem(
                            None,
                            "checkpoints",
                            Some(cp.size.to_string()),
                            format!("its signature: {e}"),
                        ));
                        None
                    }
                },
                None => cp
                    .note
                    .rsplit_once("\n\n")
                    .and_then(|(text, _)| Checkpoint::parse(&format!("{text}\n")).ok()),
            };
            if let Some(c) = text_ok
                && (c.size != cp.size || c.root != cp.root)
            {
                problems.push(problem(
                    None,
                    "checkpoints",
                    Some(cp.size.to_string()),
                    format!(
                        "its note says size {} root {}, its row size {} root {}",
                        c.size,
                        B64.encode(c.root),
                        cp.size,
                        B64.encode(cp.root)
                    ),
                ));
            }
        }

        // The head and the stored interior nodes.
        let head = self.tree_head(org).await?;
        if head.size != tree.size() || head.root != tree.root() {
            problems.push(problem(
                None,
                "tree",
                None,
                format!(
                    "the head says {} entries with root {}, the ledger has {} with root {}",
                    head.size,
                    B64.encode(head.root),
                    tree.size(),
                    B64.encode(tree.root())
                ),
            ));
        }
        let stored: Vec<(i64, i64, Vec<u8>)> = sqlx::query_as(
            "SELECT level, idx, hash FROM merkle_nodes WHERE org_id = $1 ORDER BY level, idx",
        )
        .bind(org_id)
        .fetch_all(&self.db.read)
        .await?;
        let mut want: BTreeMap<(u8, u64), Hash> = nodes
            .into_iter()
            .map(|(n, h)| ((n.level, n.index), h))
            .collect();
        for (level, idx, hash) in stored {
            let k = (level.clamp(0, 255) as u8, idx.max(0) as u64);
            // A tampered row may hold any level and index: the range is
            // named only when it is one a tree can have.
            let range = |k: (u8, u64)| {
                let first = k.1.checked_shl(u32::from(k.0)).filter(|_| k.0 < 64);
                let end =
                    k.1.checked_add(1)
                        .and_then(|i| i.checked_shl(u32::from(k.0)));
                match (first, end) {
                    (Some(a), Some(b)) if k.1 < (1u64 << (63 - k.0.min(63))) => {
                        format!("entries {a} to {}", b - 1)
                    }
                    _ => format!("level {} index {} (no such place in a tree)", k.0, k.1),
                }
            };
            match want.remove(&k) {
                Some(h) if h.as_slice() == hash.as_slice() => {}
                Some(_) => problems.push(problem(
                    None,
                    "tree",
                    Some(format!("{}/{}", k.0, k.1)),
                    format!(
                        "the stored node over {} differs from the entries'",
                        range(k)
                    ),
                )),
                None => problems.push(problem(
                    None,
                    "tree",
                    Some(format!("{}/{}", k.0, k.1)),
                    format!(
                        "a stored node over {} that the ledger does not make",
                        range(k)
                    ),
                )),
            }
        }
        for k in want.keys() {
            problems.push(problem(
                None,
                "tree",
                Some(format!("{}/{}", k.0, k.1)),
                "a node the ledger makes is not stored".into(),
            ));
        }

        let records = self.hold_records(org_id, ledgered, &mut problems).await?;
        Ok(self.finish(
            org,
            tree,
            checked_checkpoints,
            signatures,
            records,
            problems,
        ))
    }

    fn finish(
        &self,
        org: &str,
        tree: Frontier,
        checkpoints: u64,
        signatures: u64,
        records: u64,
        problems: Vec<AuditProblem>,
    ) -> LedgerAudit {
        LedgerAudit {
            org: org.to_string(),
            entries: tree.size(),
            checkpoints,
            signatures,
            records,
            root: B64.encode(tree.root()),
            problems,
        }
    }

    /// Holds attestations and snapshots to the entries that wrote them.
    async fn hold_records(
        &self,
        org_id: i64,
        ledgered: Ledgered,
        problems: &mut Vec<AuditProblem>,
    ) -> StoreResult<u64> {
        let Ledgered {
            mut attestations,
            mut snapshots,
            mut artifacts,
            mut trails,
            mut policies,
            mut evaluations,
            mut allowlist,
            mut accounts,
            mut keys,
            mut templates,
            mut flows,
            mut attached,
            mut environments,
            mut types,
            mut controls,
            mut actions,
            mut evidence,
            mut components,
            mut runs,
            mut envs,
        } = ledgered;
        let mut records = 0u64;
        // Artifacts: each row's record must be one an entry wrote, and its
        // queried columns must say what the record says.
        let rows = sqlx::query(
            "SELECT id, template_name, fingerprint, git_commit, doc FROM artifacts WHERE org_id = $1 ORDER BY id",
        )
        .bind(org_id)
        .fetch_all(&self.db.read)
        .await?;
        for r in rows {
            records += 1;
            let id: i64 = r.try_get(0)?;
            let doc: String = r.try_get(4)?;
            let doc: Value = serde_json::from_str(&doc).unwrap_or(Value::Null);
            let key = Some(format!("#{id} {}", doc["name"].as_str().unwrap_or("?")));
            let text = custody_ledger::canonical_json(&doc).unwrap_or_default();
            let seq = artifacts.get_mut(&text).and_then(|seqs| seqs.pop());
            let Some(seq) = seq else {
                problems.push(problem(
                    None,
                    "artifacts",
                    key,
                    "no ledger entry wrote this artifact as it is (edited, or inserted outside a write)".into(),
                ));
                continue;
            };
            for (column, row, entry) in [
                (
                    "name",
                    Value::from(r.try_get::<String, _>(1)?),
                    doc["name"].clone(),
                ),
                (
                    "fingerprint",
                    Value::from(r.try_get::<String, _>(2)?),
                    doc["fingerprint"].clone(),
                ),
                (
                    "git_commit",
                    Value::from(r.try_get::<Option<String>, _>(3)?),
                    doc["git_commit"].clone(),
                ),
            ] {
                if row != entry {
                    problems.push(problem(
                        Some(seq),
                        "artifacts",
                        key.clone(),
                        format!("its {column} column is {row}, the entry says {entry}"),
                    ));
                }
            }
        }
        let mut gone: Vec<u64> = artifacts.into_values().flatten().collect();
        gone.sort();
        for seq in gone {
            problems.push(problem(
                Some(seq),
                "artifacts",
                None,
                "the entry wrote an artifact that is not there as written (deleted or edited)"
                    .into(),
            ));
        }

        let rows = sqlx::query(
            "SELECT id, name, kind, artifact_name, fingerprint, compliant, doc FROM attestations WHERE org_id = $1 ORDER BY id",
        )
        .bind(org_id)
        .fetch_all(&self.db.read)
        .await?;
        for r in rows {
            records += 1;
            let id: String = r.try_get(0)?;
            let Some(rec) = attestations.remove(&id) else {
                problems.push(problem(
                    None,
                    "attestations",
                    Some(id),
                    "no ledger entry wrote this attestation".into(),
                ));
                continue;
            };
            let doc: String = r.try_get(6)?;
            let doc: Value = serde_json::from_str(&doc).unwrap_or(Value::Null);
            let mut differs = Vec::new();
            if custody_ledger::canonical_json(&doc).ok()
                != custody_ledger::canonical_json(&rec.record).ok()
            {
                differs.push("its document differs from the entry".to_string());
            }
            let compliant: i64 = r.try_get(5)?;
            let columns: [(&str, Value, Value); 5] = [
                (
                    "name",
                    Value::from(r.try_get::<String, _>(1)?),
                    rec.record["name"].clone(),
                ),
                (
                    "type",
                    Value::from(r.try_get::<String, _>(2)?),
                    rec.record["type"].clone(),
                ),
                (
                    "artifact",
                    Value::from(r.try_get::<Option<String>, _>(3)?),
                    rec.record["artifact"].clone(),
                ),
                (
                    "fingerprint",
                    Value::from(r.try_get::<Option<String>, _>(4)?),
                    rec.record["fingerprint"].clone(),
                ),
                (
                    "compliant",
                    Value::from(compliant != 0),
                    rec.record["compliant"].clone(),
                ),
            ];
            for (column, row, entry) in columns {
                if row != entry {
                    differs.push(format!("its {column} is {row}, the entry says {entry}"));
                }
            }
            for d in differs {
                problems.push(problem(Some(rec.seq), "attestations", Some(id.clone()), d));
            }
        }
        for (id, rec) in attestations {
            problems.push(problem(
                Some(rec.seq),
                "attestations",
                Some(id),
                "the entry wrote this attestation; it is gone".into(),
            ));
        }

        let rows = sqlx::query(
            "SELECT e.name, s.idx, s.artifacts, s.instances, s.changes FROM env_snapshots s \
             JOIN environments e ON e.id = s.env_id WHERE e.org_id = $1 ORDER BY e.name, s.idx",
        )
        .bind(org_id)
        .fetch_all(&self.db.read)
        .await?;
        for r in rows {
            records += 1;
            let env: String = r.try_get(0)?;
            let idx: i64 = r.try_get(1)?;
            let key = format!("{env}#{idx}");
            let Some(rec) = snapshots.remove(&(envs.of(&env), idx)) else {
                problems.push(problem(
                    None,
                    "env_snapshots",
                    Some(key),
                    "no ledger entry wrote this snapshot".into(),
                ));
                continue;
            };
            let changes = rec.record["changes"]
                .as_array()
                .map_or(0, |c| c.len() as i64);
            for (column, row, entry) in [
                (
                    "artifacts",
                    r.try_get::<i64, _>(2)?,
                    rec.record["artifacts"].as_i64().unwrap_or(-1),
                ),
                (
                    "instances",
                    r.try_get::<i64, _>(3)?,
                    rec.record["instances"].as_i64().unwrap_or(-1),
                ),
                ("changes", r.try_get::<i64, _>(4)?, changes),
            ] {
                if row != entry {
                    problems.push(problem(
                        Some(rec.seq),
                        "env_snapshots",
                        Some(key.clone()),
                        format!("its {column} is {row}, the entry says {entry}"),
                    ));
                }
            }
        }
        let mut gone: Vec<(u64, String)> = snapshots
            .into_values()
            .map(|rec| {
                let env = rec.record["environment"]
                    .as_str()
                    .unwrap_or("?")
                    .to_string();
                (rec.seq, format!("{env}#{}", rec.record["snapshot"]))
            })
            .collect();
        gone.sort();
        for (seq, key) in gone {
            problems.push(problem(
                Some(seq),
                "env_snapshots",
                Some(key),
                "the entry wrote this snapshot; it is gone".into(),
            ));
        }
        // Trails: the row's document is the latest entry's record.
        let rows = sqlx::query(
            "SELECT f.name, t.name, t.doc FROM trails t JOIN flows f ON f.id = t.flow_id \
             WHERE t.org_id = $1 ORDER BY f.name, t.name",
        )
        .bind(org_id)
        .fetch_all(&self.db.read)
        .await?;
        for r in rows {
            records += 1;
            let (flow, name): (String, String) = (r.try_get(0)?, r.try_get(1)?);
            let doc: Value =
                serde_json::from_str(&r.try_get::<String, _>(2)?).unwrap_or(Value::Null);
            let rec = trails.remove(&(flow.clone(), name.clone()));
            held(
                problems,
                "trails",
                format!("{flow}/{name}"),
                rec,
                &[("document", doc, None)],
            );
        }
        gone_records(problems, "trails", trails.into_values(), |r| {
            format!(
                "{}/{}",
                r["flow"].as_str().unwrap_or("?"),
                r["name"].as_str().unwrap_or("?")
            )
        });

        // Policy versions: name, version, text and digest as written.
        let rows = sqlx::query(
            "SELECT p.name, v.version, v.content, v.sha256 FROM policy_versions v \
             JOIN policies p ON p.id = v.policy_id WHERE p.org_id = $1 ORDER BY p.name, v.version",
        )
        .bind(org_id)
        .fetch_all(&self.db.read)
        .await?;
        for r in rows {
            records += 1;
            let (name, version): (String, i64) = (r.try_get(0)?, r.try_get(1)?);
            let rec = policies.remove(&(name.clone(), version));
            held(
                problems,
                "policy_versions",
                format!("{name} v{version}"),
                rec,
                &[
                    (
                        "content",
                        Value::from(r.try_get::<String, _>(2)?),
                        Some("content"),
                    ),
                    (
                        "sha256",
                        Value::from(r.try_get::<String, _>(3)?),
                        Some("sha256"),
                    ),
                ],
            );
        }
        gone_records(problems, "policy_versions", policies.into_values(), |r| {
            format!("{} v{}", r["name"].as_str().unwrap_or("?"), r["version"])
        });

        // Evaluations: the verdict, and the document the entry's digest
        // commits to.
        let rows = sqlx::query(
            "SELECT e.name, v.seq, v.status, v.doc, v.snapshot_idx FROM env_evaluations v \
             JOIN environments e ON e.id = v.env_id WHERE e.org_id = $1 ORDER BY e.name, v.seq",
        )
        .bind(org_id)
        .fetch_all(&self.db.read)
        .await?;
        for r in rows {
            records += 1;
            let (env, n): (String, i64) = (r.try_get(0)?, r.try_get(1)?);
            let doc: String = r.try_get(3)?;
            let digest = hex::encode(sha2::Sha256::digest(doc.as_bytes()));
            let rec = evaluations.remove(&(envs.of(&env), n));
            held(
                problems,
                "env_evaluations",
                format!("{env} evaluation {n}"),
                rec,
                &[
                    (
                        "status",
                        Value::from(r.try_get::<String, _>(2)?),
                        Some("status"),
                    ),
                    (
                        "document's SHA-256",
                        Value::from(digest),
                        Some("doc_sha256"),
                    ),
                    (
                        "snapshot",
                        Value::from(r.try_get::<i64, _>(4)?),
                        Some("snapshot"),
                    ),
                ],
            );
        }
        gone_records(
            problems,
            "env_evaluations",
            evaluations.into_values(),
            |r| {
                format!(
                    "{} evaluation {}",
                    r["environment"].as_str().unwrap_or("?"),
                    r["evaluation"]
                )
            },
        );

        // The allowlist: what is allowed, why, and on whose word.
        let rows = sqlx::query(
            "SELECT e.name, a.fingerprint, a.artifact_name, a.reason, a.created_by, a.created_at FROM allowlist a \
             JOIN environments e ON e.id = a.env_id WHERE e.org_id = $1 ORDER BY e.name, a.fingerprint",
        )
        .bind(org_id)
        .fetch_all(&self.db.read)
        .await?;
        for r in rows {
            records += 1;
            let (env, fp): (String, String) = (r.try_get(0)?, r.try_get(1)?);
            let rec = allowlist.remove(&(envs.of(&env), fp.clone()));
            held(
                problems,
                "allowlist",
                format!("{env} {fp}"),
                rec,
                &[
                    (
                        "artifact_name",
                        Value::from(r.try_get::<Option<String>, _>(2)?),
                        Some("artifact_name"),
                    ),
                    (
                        "reason",
                        Value::from(r.try_get::<String, _>(3)?),
                        Some("reason"),
                    ),
                    (
                        "created_by",
                        Value::from(r.try_get::<String, _>(4)?),
                        Some("created_by"),
                    ),
                    (
                        "created_at",
                        Value::from(r.try_get::<i64, _>(5)?),
                        Some("created_at"),
                    ),
                ],
            );
        }
        gone_records(problems, "allowlist", allowlist.into_values(), |r| {
            format!(
                "{} {}",
                r["environment"].as_str().unwrap_or("?"),
                r["fingerprint"].as_str().unwrap_or("?")
            )
        });

        // Flow templates: what a flow's trails must show, as written.
        let rows = sqlx::query(
            "SELECT f.name, t.version, t.yaml FROM flow_templates t JOIN flows f ON f.id = t.flow_id \
             WHERE f.org_id = $1 ORDER BY f.name, t.version",
        )
        .bind(org_id)
        .fetch_all(&self.db.read)
        .await?;
        for r in rows {
            records += 1;
            let (flow, v): (String, i64) = (r.try_get(0)?, r.try_get(1)?);
            let rec = templates.remove(&(flow.clone(), v));
            held(
                problems,
                "flow_templates",
                format!("{flow} v{v}"),
                rec,
                &[(
                    "yaml",
                    Value::from(r.try_get::<String, _>(2)?),
                    Some("yaml"),
                )],
            );
        }
        gone_records(problems, "flow_templates", templates.into_values(), |r| {
            format!("{} v{}", r["flow"].as_str().unwrap_or("?"), r["version"])
        });

        // Flows: description and tags (policies read the tags).
        let rows = sqlx::query(
            "SELECT name, description, tags FROM flows WHERE org_id = $1 ORDER BY name",
        )
        .bind(org_id)
        .fetch_all(&self.db.read)
        .await?;
        for r in rows {
            records += 1;
            let name: String = r.try_get(0)?;
            let tags: Option<String> = r.try_get(2)?;
            let tags: Value = tags
                .and_then(|t| serde_json::from_str(&t).ok())
                .unwrap_or_else(|| serde_json::json!({}));
            let rec = flows.remove(&name);
            held(
                problems,
                "flows",
                name,
                rec,
                &[
                    (
                        "description",
                        Value::from(r.try_get::<Option<String>, _>(1)?),
                        Some("description"),
                    ),
                    ("tag set", tags, Some("tags")),
                ],
            );
        }
        gone_records(
            problems,
            "flows",
            flows.into_iter().map(|(name, mut r)| {
                r.record["name"] = Value::from(name);
                r
            }),
            |r| r["name"].as_str().unwrap_or("?").to_string(),
        );

        // Environments: their type, description, and whether archived
        // (an archived environment takes no reports).
        let rows = sqlx::query(
            "SELECT name, kind, description, archived_at FROM environments WHERE org_id = $1 ORDER BY name",
        )
        .bind(org_id)
        .fetch_all(&self.db.read)
        .await?;
        for r in rows {
            records += 1;
            let name: String = r.try_get(0)?;
            let rec = environments.remove(&envs.of(&name));
            held(
                problems,
                "environments",
                name,
                rec,
                &[
                    (
                        "type",
                        Value::from(r.try_get::<String, _>(1)?),
                        Some("type"),
                    ),
                    (
                        "description",
                        Value::from(r.try_get::<Option<String>, _>(2)?),
                        Some("description"),
                    ),
                    (
                        "archived",
                        Value::from(r.try_get::<Option<i64>, _>(3)?.is_some()),
                        Some("archived"),
                    ),
                ],
            );
        }
        let mut left: Vec<Recorded> = environments.into_values().collect();
        left.sort_by_key(|r| r.seq);
        for rec in left {
            problems.push(problem(
                Some(rec.seq),
                "environments",
                None,
                "the entry wrote an environment that is gone".into(),
            ));
        }

        // Policy attachments: which policies judge each environment.
        let rows = sqlx::query(
            "SELECT e.name, p.name FROM environment_policies ep JOIN environments e ON e.id = ep.env_id \
             JOIN policies p ON p.id = ep.policy_id WHERE e.org_id = $1 ORDER BY e.name, p.name",
        )
        .bind(org_id)
        .fetch_all(&self.db.read)
        .await?;
        let mut in_db: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for r in rows {
            in_db.entry(r.try_get(0)?).or_default().push(r.try_get(1)?);
        }
        let mut envs_seen: Vec<String> = in_db.keys().cloned().collect();
        for (name, id) in &envs.by_name {
            if attached.contains_key(id) && !in_db.contains_key(name) {
                envs_seen.push(name.clone());
            }
        }
        envs_seen.sort();
        envs_seen.dedup();
        for env in envs_seen {
            records += 1;
            let row: Vec<String> = in_db.remove(&env).unwrap_or_default();
            let (seq, want) = attached
                .remove(&envs.of(&env))
                .map(|(seq, set)| (Some(seq), set.into_iter().collect::<Vec<_>>()))
                .unwrap_or((None, Vec::new()));
            if row != want {
                problems.push(problem(
                    seq,
                    "environment_policies",
                    Some(env),
                    format!("the policies attached are {row:?}, the entries say {want:?}"),
                ));
            }
        }

        // Runtime intervals ("what ran at T" reads them): each row must be
        // one the snapshot entries' changes imply, and each implied one
        // must be there.
        let mut expected: HashMap<Interval, Vec<u64>> = HashMap::new();
        for (env_id, r) in runs.drain() {
            for (iv, seq) in r.closed {
                expected.entry(iv).or_default().push(seq);
            }
            for ((name, fp), (first, inst, seq)) in r.open {
                expected
                    .entry((env_id, name, fp, inst, first, OPEN))
                    .or_default()
                    .push(seq);
            }
        }
        {
            let mut rows = sqlx::query(
                "SELECT e.name, a.name, a.fingerprint, i.instances, i.first_idx, i.last_idx FROM env_intervals i \
                 JOIN environments e ON e.id = i.env_id JOIN runtime_artifacts a ON a.id = i.artifact_id \
                 WHERE e.org_id = $1",
            )
            .bind(org_id)
            .fetch(&self.db.read);
            while let Some(r) = futures::TryStreamExt::try_next(&mut rows).await? {
                records += 1;
                let env: String = r.try_get(0)?;
                let name: String = r.try_get(1)?;
                let fp = hex::encode(r.try_get::<Vec<u8>, _>(2)?);
                let (inst, first, last): (i64, i64, i64) =
                    (r.try_get(3)?, r.try_get(4)?, r.try_get(5)?);
                let key = (envs.of(&env), name.clone(), fp, inst, first, last);
                let found = match expected.get_mut(&key) {
                    Some(seqs) if !seqs.is_empty() => {
                        seqs.pop();
                        true
                    }
                    _ => false,
                };
                if !found {
                    problems.push(problem(
                        None,
                        "env_intervals",
                        Some(format!("{env} {name}")),
                        format!(
                            "{inst} instance(s) from #{first} to {}: no snapshot entry says so (edited, or inserted outside a write)",
                            if last == OPEN { "now".to_string() } else { format!("#{last}") }
                        ),
                    ));
                }
            }
        }
        let mut missing: Vec<(u64, Interval)> = expected
            .into_iter()
            .flat_map(|(iv, seqs)| seqs.into_iter().map(move |s| (s, iv.clone())))
            .collect();
        missing.sort_by_key(|(seq, _)| *seq);
        let env_names: HashMap<u64, String> = envs
            .by_name
            .iter()
            .map(|(n, id)| (*id, n.clone()))
            .collect();
        for (seq, (env_id, name, _, inst, first, last)) in missing {
            let env = env_names.get(&env_id).map_or("?", String::as_str);
            problems.push(problem(
                Some(seq),
                "env_intervals",
                Some(format!("{env} {name}")),
                format!(
                    "the entries say it ran with {inst} instance(s) from #{first} to {}; the interval is gone",
                    if last == OPEN { "now".to_string() } else { format!("#{last}") }
                ),
            ));
        }

        // SBOM components: the rows of each attestation, in the order they
        // were written, must hash to the digest its entry holds (the rows'
        // documents are the very JSON that was hashed), and their queried
        // columns must say what their documents say. Streamed: an SBOM can
        // have tens of thousands of components.
        {
            let mut rows = sqlx::query(
                "SELECT attestation_id, doc, name, version, purl FROM sbom_components WHERE org_id = $1 \
                 ORDER BY attestation_id, id",
            )
            .bind(org_id)
            .fetch(&self.db.read);
            let mut current: Option<(String, sha2::Sha256, u64)> = None;
            fn finish(
                cur: Option<(String, sha2::Sha256, u64)>,
                components: &mut HashMap<String, (u64, String)>,
                problems: &mut Vec<AuditProblem>,
            ) {
                let Some((att, mut h, _)) = cur else { return };
                h.update(b"]");
                let got = hex::encode(h.finalize());
                match components.remove(&att) {
                    Some((seq, want)) if want != got => problems.push(problem(
                        Some(seq),
                        "sbom_components",
                        Some(att),
                        "the components differ from those the entry's digest was taken of".into(),
                    )),
                    Some(_) => {}
                    None => problems.push(problem(
                        None,
                        "sbom_components",
                        Some(att),
                        "components of an attestation whose entry lists none".into(),
                    )),
                }
            }
            while let Some(r) = futures::TryStreamExt::try_next(&mut rows).await? {
                let att: String = r.try_get(0)?;
                let doc: String = r.try_get(1)?;
                if current.as_ref().is_none_or(|(a, _, _)| *a != att) {
                    finish(current.take(), &mut components, problems);
                    records += 1;
                    let mut h = sha2::Sha256::new();
                    h.update(b"[");
                    current = Some((att.clone(), h, 0));
                }
                if let Some((_, h, n)) = current.as_mut() {
                    if *n > 0 {
                        h.update(b",");
                    }
                    h.update(doc.as_bytes());
                    *n += 1;
                }
                let v: Value = serde_json::from_str(&doc).unwrap_or(Value::Null);
                for (column, row) in [
                    ("name", Value::from(r.try_get::<String, _>(2)?)),
                    ("version", Value::from(r.try_get::<Option<String>, _>(3)?)),
                    ("purl", Value::from(r.try_get::<Option<String>, _>(4)?)),
                ] {
                    let doc_value = v.get(column).cloned().unwrap_or(Value::Null);
                    if row != doc_value {
                        problems.push(problem(
                            components.get(&att).map(|(seq, _)| *seq),
                            "sbom_components",
                            Some(att.clone()),
                            format!("a component's {column} column is {row}, its document says {doc_value}"),
                        ));
                    }
                }
            }
            finish(current.take(), &mut components, problems);
        }
        let mut left: Vec<(String, (u64, String))> = components.into_iter().collect();
        left.sort_by_key(|(_, (seq, _))| *seq);
        for (att, (seq, _)) in left {
            problems.push(problem(
                Some(seq),
                "sbom_components",
                Some(att),
                "the entry lists components; they are gone".into(),
            ));
        }

        // Evidence files: which content an attestation's file name leads
        // to (a row pointed at another blob would serve other content).
        let rows = sqlx::query(
            "SELECT attestation_id, filename, sha256 FROM evidence WHERE org_id = $1 ORDER BY attestation_id, filename",
        )
        .bind(org_id)
        .fetch_all(&self.db.read)
        .await?;
        for r in rows {
            records += 1;
            let (att, name): (String, String) = (r.try_get(0)?, r.try_get(1)?);
            let rec = evidence.remove(&(att.clone(), name.clone()));
            held(
                problems,
                "evidence",
                format!("{att} {name}"),
                rec,
                &[(
                    "sha256",
                    Value::from(r.try_get::<String, _>(2)?),
                    Some("sha256"),
                )],
            );
        }
        gone_records(problems, "evidence", evidence.into_values(), |r| {
            format!(
                "{} {}",
                r["attestation_id"].as_str().unwrap_or("?"),
                r["filename"].as_str().unwrap_or("?")
            )
        });

        // Custom attestation types (the schema and rules that judge
        // evidence), control versions and notification actions: each row's
        // document is what its entry wrote.
        let rows = sqlx::query(
            "SELECT name, version, doc FROM attestation_types WHERE org_id = $1 ORDER BY name, version",
        )
        .bind(org_id)
        .fetch_all(&self.db.read)
        .await?;
        for r in rows {
            records += 1;
            let (name, v): (String, i64) = (r.try_get(0)?, r.try_get(1)?);
            let doc: Value =
                serde_json::from_str(&r.try_get::<String, _>(2)?).unwrap_or(Value::Null);
            let rec = types.remove(&(name.clone(), v));
            held(
                problems,
                "attestation_types",
                format!("{name} v{v}"),
                rec,
                &[("document", doc, None)],
            );
        }
        gone_records(problems, "attestation_types", types.into_values(), |r| {
            format!("{} v{}", r["name"].as_str().unwrap_or("?"), r["version"])
        });

        let rows = sqlx::query(
            "SELECT c.identifier, v.version, v.doc FROM control_versions v JOIN controls c ON c.id = v.control_id \
             WHERE c.org_id = $1 ORDER BY c.identifier, v.version",
        )
        .bind(org_id)
        .fetch_all(&self.db.read)
        .await?;
        for r in rows {
            records += 1;
            let (id, v): (String, i64) = (r.try_get(0)?, r.try_get(1)?);
            let doc: Value =
                serde_json::from_str(&r.try_get::<String, _>(2)?).unwrap_or(Value::Null);
            // The entry is the control as shown: its fields flattened
            // beside its identity, which the row keeps in other columns.
            let rec = controls.remove(&(id.clone(), v)).map(|mut r| {
                if let Some(o) = r.record.as_object_mut() {
                    for k in [
                        "identifier",
                        "version",
                        "archived",
                        "created_at",
                        "updated_at",
                    ] {
                        o.remove(k);
                    }
                }
                r
            });
            held(
                problems,
                "control_versions",
                format!("{id} v{v}"),
                rec,
                &[("document", doc, None)],
            );
        }
        gone_records(problems, "control_versions", controls.into_values(), |r| {
            format!(
                "{} v{}",
                r["identifier"].as_str().unwrap_or("?"),
                r["version"]
            )
        });

        let rows = sqlx::query("SELECT name, doc FROM actions WHERE org_id = $1 ORDER BY name")
            .bind(org_id)
            .fetch_all(&self.db.read)
            .await?;
        for r in rows {
            records += 1;
            let name: String = r.try_get(0)?;
            let doc: Value =
                serde_json::from_str(&r.try_get::<String, _>(1)?).unwrap_or(Value::Null);
            let rec = actions.remove(&name);
            held(problems, "actions", name, rec, &[("document", doc, None)]);
        }
        gone_records(problems, "actions", actions.into_values(), |r| {
            r["name"].as_str().unwrap_or("?").to_string()
        });

        // Accounts: who may act, and how far (a role raised or an account
        // brought back in the database would give someone powers).
        let rows = sqlx::query(
            "SELECT name, role, server_admin, deleted_at FROM service_accounts WHERE org_id = $1 ORDER BY name",
        )
        .bind(org_id)
        .fetch_all(&self.db.read)
        .await?;
        for r in rows {
            records += 1;
            let name: String = r.try_get(0)?;
            let Some(a) = accounts.remove(&name) else {
                problems.push(problem(
                    None,
                    "service_accounts",
                    Some(name),
                    "no ledger entry created this account (inserted outside a write)".into(),
                ));
                continue;
            };
            let rec = Recorded {
                seq: a.seq,
                record: serde_json::json!({"role": a.role, "server_admin": a.server_admin, "deleted_at": a.deleted_at}),
            };
            held(
                problems,
                "service_accounts",
                name,
                Some(rec),
                &[
                    (
                        "role",
                        Value::from(r.try_get::<String, _>(1)?),
                        Some("role"),
                    ),
                    (
                        "server_admin",
                        Value::from(r.try_get::<i64, _>(2)? != 0),
                        Some("server_admin"),
                    ),
                    (
                        "deleted_at",
                        Value::from(r.try_get::<Option<i64>, _>(3)?),
                        Some("deleted_at"),
                    ),
                ],
            );
        }
        gone_records(
            problems,
            "service_accounts",
            accounts.into_iter().map(|(name, a)| Recorded {
                seq: a.seq,
                record: serde_json::json!({"name": name}),
            }),
            |r| r["name"].as_str().unwrap_or("?").to_string(),
        );

        // Keys: whose, until when, revoked or not, and (where the entry
        // commits to it) the very hash a token must match.
        let rows = sqlx::query(
            "SELECT k.id, a.name, k.expires_at, k.revoked_at, k.key_hash FROM api_keys k \
             JOIN service_accounts a ON a.id = k.service_account_id WHERE a.org_id = $1 ORDER BY k.id",
        )
        .bind(org_id)
        .fetch_all(&self.db.read)
        .await?;
        for r in rows {
            records += 1;
            let id: String = r.try_get(0)?;
            let Some(k) = keys.remove(&id) else {
                problems.push(problem(
                    None,
                    "api_keys",
                    Some(id),
                    "no ledger entry created this key (inserted outside a write)".into(),
                ));
                continue;
            };
            let hash: Vec<u8> = r.try_get(4)?;
            let mut columns = vec![
                (
                    "service account",
                    Value::from(r.try_get::<String, _>(1)?),
                    Some("service_account"),
                ),
                (
                    "expires_at",
                    Value::from(r.try_get::<Option<i64>, _>(2)?),
                    Some("expires_at"),
                ),
                (
                    "revoked_at",
                    Value::from(r.try_get::<Option<i64>, _>(3)?),
                    Some("revoked_at"),
                ),
            ];
            if k.hash_sha256.is_some() {
                columns.push((
                    "key hash",
                    Value::from(hex::encode(sha2::Sha256::digest(&hash))),
                    Some("hash_sha256"),
                ));
            }
            let rec = Recorded {
                seq: k.seq,
                record: serde_json::json!({
                    "service_account": k.service_account,
                    "expires_at": k.expires_at,
                    "revoked_at": k.revoked_at,
                    "hash_sha256": k.hash_sha256,
                }),
            };
            held(problems, "api_keys", id, Some(rec), &columns);
        }
        gone_records(
            problems,
            "api_keys",
            keys.into_iter().map(|(id, k)| Recorded {
                seq: k.seq,
                record: serde_json::json!({"id": id}),
            }),
            |r| r["id"].as_str().unwrap_or("?").to_string(),
        );

        problems.sort_by_key(|p| (p.seq.is_none(), p.seq));
        Ok(records)
    }
}

/// Holds a row to the entry that wrote it: each (what, the row's value,
/// the record's field — or the whole record when `None`).
fn held(
    problems: &mut Vec<AuditProblem>,
    table: &str,
    key: String,
    rec: Option<Recorded>,
    columns: &[(&str, Value, Option<&str>)],
) {
    let Some(rec) = rec else {
        problems.push(problem(
            None,
            table,
            Some(key),
            "no ledger entry wrote this record (inserted outside a write)".into(),
        ));
        return;
    };
    for (what, row, field) in columns {
        let entry = match field {
            Some(f) => rec.record.get(*f).cloned().unwrap_or(Value::Null),
            None => rec.record.clone(),
        };
        let same =
            custody_ledger::canonical_json(row).ok() == custody_ledger::canonical_json(&entry).ok();
        if !same {
            let shown = |v: &Value| {
                let t = v.to_string();
                if t.len() > 80 {
                    format!("{}…", &t[..t.floor_char_boundary(80)])
                } else {
                    t
                }
            };
            problems.push(problem(
                Some(rec.seq),
                table,
                Some(key.clone()),
                if field.is_none() {
                    format!("its {what} differs from the entry")
                } else {
                    format!(
                        "its {what} is {}, the entry says {}",
                        shown(row),
                        shown(&entry)
                    )
                },
            ));
        }
    }
}

/// Entries whose record is not in its table any more.
fn gone_records(
    problems: &mut Vec<AuditProblem>,
    table: &str,
    left: impl Iterator<Item = Recorded>,
    key: impl Fn(&Value) -> String,
) {
    let mut left: Vec<Recorded> = left.collect();
    left.sort_by_key(|r| r.seq);
    for rec in left {
        problems.push(problem(
            Some(rec.seq),
            table,
            Some(key(&rec.record)),
            "the entry wrote this record; it is gone".into(),
        ));
    }
}
