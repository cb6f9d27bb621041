//! Appending to and reading an organisation's ledger.

use custody_ledger::merkle::{Frontier, Hash, Node};
use custody_ledger::{Actor, EntryKind, Envelope};
use serde::Serialize;
use sqlx::AnyConnection;
use sqlx::Row;

use crate::util::now_ms;
use crate::{Store, StoreError, StoreResult};

/// Appends entries for one write. Created first in every write
/// transaction: it locks the organisation's ledger head, so concurrent
/// writes to one organisation take turns and sequence numbers have no gaps.
/// It extends the organisation's Merkle tree with every entry, in the same
/// transaction (the frontier in `ledger_heads`, interior nodes in
/// `merkle_nodes`).
pub(crate) struct LedgerWriter {
    org_id: i64,
    org: String,
    actor: Actor,
    next: i64,
    tree: Frontier,
}

impl LedgerWriter {
    pub async fn lock(
        conn: &mut AnyConnection,
        org_id: i64,
        org: &str,
        actor: &Actor,
    ) -> StoreResult<Self> {
        let row = sqlx::query(
            "UPDATE ledger_heads SET size = size WHERE org_id = $1 RETURNING size, frontier",
        )
        .bind(org_id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| StoreError::Corrupt(format!("org '{org}' has no ledger head")))?;
        let next: i64 = row.try_get(0)?;
        let frontier: Option<Vec<u8>> = row.try_get(1)?;
        let frontier = frontier.ok_or_else(|| {
            StoreError::Corrupt(format!("the ledger of org '{org}' has no Merkle tree"))
        })?;
        let tree = Frontier::from_bytes(next as u64, &frontier)
            .map_err(|e| StoreError::Corrupt(format!("the ledger of org '{org}': {e}")))?;
        Ok(LedgerWriter {
            org_id,
            org: org.to_string(),
            actor: actor.clone(),
            next,
            tree,
        })
    }

    /// Starts the ledger of a new organisation, inside its creating write.
    pub async fn start(
        conn: &mut AnyConnection,
        org_id: i64,
        org: &str,
        actor: &Actor,
    ) -> StoreResult<Self> {
        sqlx::query("INSERT INTO ledger_heads (org_id, size, frontier) VALUES ($1, 0, $2)")
            .bind(org_id)
            .bind(Vec::<u8>::new())
            .execute(&mut *conn)
            .await?;
        Ok(LedgerWriter {
            org_id,
            org: org.to_string(),
            actor: actor.clone(),
            next: 0,
            tree: Frontier::new(),
        })
    }

    /// The ledger's size with what this write appended so far.
    pub fn size(&self) -> i64 {
        self.next
    }

    pub async fn append(
        &mut self,
        conn: &mut AnyConnection,
        kind: EntryKind,
        record: &impl Serialize,
    ) -> StoreResult<i64> {
        let record = serde_json::to_value(record)
            .map_err(|e| StoreError::Corrupt(format!("cannot encode ledger record: {e}")))?;
        let envelope = Envelope {
            seq: self.next,
            org: self.org.clone(),
            kind,
            ts: now_ms(),
            actor: self.actor.clone(),
            record,
        };
        let sealed = envelope.seal()?;
        sqlx::query(
            "INSERT INTO ledger (org_id, seq, kind, ts, entry, leaf_hash) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(self.org_id)
        .bind(envelope.seq)
        .bind(kind.as_str())
        .bind(envelope.ts)
        .bind(sealed.canonical)
        .bind(sealed.leaf_hash.to_vec())
        .execute(&mut *conn)
        .await?;
        grow(conn, self.org_id, &mut self.tree, sealed.leaf_hash).await?;
        sqlx::query("UPDATE ledger_heads SET size = $2, frontier = $3 WHERE org_id = $1")
            .bind(self.org_id)
            .bind(self.next + 1)
            .bind(self.tree.to_bytes())
            .execute(&mut *conn)
            .await?;
        self.next += 1;
        Ok(envelope.seq)
    }
}

/// Adds a leaf to an organisation's tree, storing the interior nodes it
/// completes that the store keeps (every `STRIDE`-th level).
pub(crate) async fn grow(
    conn: &mut AnyConnection,
    org_id: i64,
    tree: &mut Frontier,
    leaf: Hash,
) -> StoreResult<()> {
    let mut stored: Vec<(Node, Hash)> = Vec::new();
    tree.push(leaf, |node, hash| {
        if node.is_stored() {
            stored.push((node, *hash));
        }
    });
    for (node, hash) in stored {
        sqlx::query("INSERT INTO merkle_nodes (org_id, level, idx, hash) VALUES ($1, $2, $3, $4)")
            .bind(org_id)
            .bind(i64::from(node.level))
            .bind(node.index as i64)
            .bind(hash.to_vec())
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// One stored ledger entry.
#[derive(Debug, Clone)]
pub struct LedgerEntry {
    pub seq: i64,
    pub kind: String,
    pub ts: i64,
    /// Canonical JSON of the envelope.
    pub entry: String,
    pub leaf_hash: Vec<u8>,
}

impl Store {
    /// How many entries the organisation's ledger holds.
    pub async fn ledger_size(&self, org: &str) -> StoreResult<i64> {
        let row = sqlx::query(
            "SELECT h.size FROM ledger_heads h JOIN orgs o ON o.id = h.org_id WHERE o.name = $1",
        )
        .bind(org)
        .fetch_optional(&self.db.read)
        .await?
        .ok_or_else(|| StoreError::not_found("org", org))?;
        Ok(row.try_get(0)?)
    }

    /// Entries from `from` (inclusive), at most `limit`, in order.
    pub async fn ledger_entries(
        &self,
        org: &str,
        from: i64,
        limit: i64,
    ) -> StoreResult<Vec<LedgerEntry>> {
        let rows = sqlx::query(
            "SELECT l.seq, l.kind, l.ts, l.entry, l.leaf_hash FROM ledger l JOIN orgs o ON o.id = l.org_id \
             WHERE o.name = $1 AND l.seq >= $2 ORDER BY l.seq LIMIT $3",
        )
        .bind(org)
        .bind(from)
        .bind(limit)
        .fetch_all(&self.db.read)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(LedgerEntry {
                    seq: r.try_get(0)?,
                    kind: r.try_get(1)?,
                    ts: r.try_get(2)?,
                    entry: r.try_get(3)?,
                    leaf_hash: r.try_get(4)?,
                })
            })
            .collect()
    }
}

/// A record whose ledger entry is looked for, by what its entry says of
/// it and the time the record carries (its entry is written after that
/// time, in the same transaction).
#[derive(Debug, Clone)]
pub enum RecordRef {
    /// A trail as it was last written (`updated_at`).
    Trail {
        flow: String,
        trail: String,
        at: i64,
    },
    /// One report of an artifact in a trail.
    Artifact {
        flow: String,
        trail: String,
        fingerprint: String,
        at: i64,
    },
    Attestation {
        id: String,
        at: i64,
    },
    Snapshot {
        environment: String,
        snapshot: u64,
        at: i64,
    },
}

/// How far past a record's time its entry is looked for: the entry's
/// clock is read later in the same transaction, so well within this.
const LOCATE_SLACK_MS: i64 = 60_000;
/// Entries of the kind read at most while looking.
const LOCATE_MAX_SCANNED: usize = 20_000;

impl RecordRef {
    fn kind(&self) -> EntryKind {
        match self {
            RecordRef::Trail { .. } => EntryKind::Trail,
            RecordRef::Artifact { .. } => EntryKind::Artifact,
            RecordRef::Attestation { .. } => EntryKind::Attestation,
            RecordRef::Snapshot { .. } => EntryKind::Snapshot,
        }
    }

    fn at(&self) -> i64 {
        match self {
            RecordRef::Trail { at, .. }
            | RecordRef::Artifact { at, .. }
            | RecordRef::Attestation { at, .. }
            | RecordRef::Snapshot { at, .. } => *at,
        }
    }

    /// Whether an entry's record is this record.
    fn is(&self, r: &serde_json::Value) -> bool {
        let s = |f: &str| r.get(f).and_then(serde_json::Value::as_str);
        let n = |f: &str| r.get(f).and_then(serde_json::Value::as_i64);
        match self {
            RecordRef::Trail { flow, trail, at } => {
                s("flow") == Some(flow) && s("name") == Some(trail) && n("updated_at") == Some(*at)
            }
            RecordRef::Artifact {
                flow,
                trail,
                fingerprint,
                at,
            } => {
                s("flow") == Some(flow)
                    && s("trail") == Some(trail)
                    && s("fingerprint") == Some(fingerprint)
                    && n("created_at") == Some(*at)
            }
            RecordRef::Attestation { id, .. } => s("id") == Some(id),
            RecordRef::Snapshot {
                environment,
                snapshot,
                ..
            } => {
                s("environment") == Some(environment)
                    && r.get("snapshot").and_then(serde_json::Value::as_u64) == Some(*snapshot)
            }
        }
    }
}

impl Store {
    /// The sequence number of the entry that wrote a record: the entries of
    /// its kind from its time on, through the `ledger_by_kind` index, until
    /// one is it. None when no entry within reach is it.
    pub async fn locate_entry(&self, org: &str, record: &RecordRef) -> StoreResult<Option<i64>> {
        let org_id = self
            .org_id(org)
            .await?
            .ok_or_else(|| StoreError::not_found("org", org))?;
        let size = self.ledger_size(org).await?.max(0) as u64;
        let at = record.at();
        let from = self.seq_after(org_id, at.saturating_sub(1), size).await?;
        let (mut found, mut scanned) = (None, 0usize);
        self.scan_kinds(org_id, &[record.kind()], from, size, false, |seq, e| {
            scanned += 1;
            if record.is(&e.record) {
                found = Some(seq as i64);
                return Ok(false);
            }
            Ok(e.ts <= at.saturating_add(LOCATE_SLACK_MS) && scanned < LOCATE_MAX_SCANNED)
        })
        .await?;
        Ok(found)
    }
}
