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
//! 3. Records are held to the entries that wrote them ([`replay`] says
//!    what the entries say, [`records`] holds every table to it):
//!    artifacts, attestations, evidence files, SBOM components (re-hashed
//!    to the digest in their attestation's entry), trails, flows and
//!    templates, snapshots, the runtime intervals (replayed from the
//!    snapshots' changes), environments (across renames) and their
//!    policies, policy versions, evaluations, the allowlist, custom types,
//!    controls, actions, accounts and keys (through rotations and
//!    revocations, down to the stored key hash, which key entries commit
//!    to by its SHA-256). A record without an entry was inserted outside a
//!    write; an entry without its record names a record that was deleted.
//!
//! Reads run in one read transaction per step, a batch at a time, so the
//! audit of a large ledger holds little in memory: the frontier, the
//! interior nodes (one per fifteen entries), the records' keys and the
//! intervals of what ran, replayed.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use custody_api::{AuditProblem, LedgerAudit};
use custody_ledger::merkle::{Frontier, Hash, Node};
use custody_ledger::note::{Checkpoint, SignedCheckpoint, VerifierKey};
use sqlx::Row;

use crate::{Store, StoreError, StoreResult};

mod records;
mod replay;

use replay::{Ledgered, note_record};

const BATCH: i64 = 5_000;

pub(super) fn problem(
    seq: Option<u64>,
    table: &str,
    key: Option<String>,
    what: String,
) -> AuditProblem {
    AuditProblem {
        seq,
        table: table.to_string(),
        key,
        what,
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
}
