//! The ledger's Merkle tree as stored: its head, proofs read from stored
//! nodes, and the signed checkpoints (with witnesses' cosignatures) that
//! publish it. The tree itself grows in [`crate::ledger::LedgerWriter`].

use custody_ledger::merkle::{Frontier, Hash, Node, NodeHashes, ProofPlan};
use sqlx::Row;

use crate::ledger::grow;
use crate::util::now_ms;
use crate::{Store, StoreError, StoreResult};

/// The tree at one size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeHead {
    pub size: u64,
    pub root: Hash,
}

/// A checkpoint as kept: the log's signed note, and the cosignature lines
/// witnesses returned for it, in the order they came.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCheckpoint {
    pub size: u64,
    pub root: Hash,
    pub note: String,
    pub cosignatures: Vec<String>,
    pub created_at: i64,
}

impl StoredCheckpoint {
    /// The note with every cosignature: what is served and bundled.
    pub fn cosigned_note(&self) -> String {
        let mut n = self.note.clone();
        for line in &self.cosignatures {
            n.push_str(line);
            if !line.ends_with('\n') {
                n.push('\n');
            }
        }
        n
    }
}

/// An organisation whose tree grew past its latest checkpoint.
#[derive(Debug, Clone)]
pub struct Unpublished {
    pub org_id: i64,
    pub org: String,
    pub head: TreeHead,
}

fn hash_from(bytes: Vec<u8>, what: &str) -> StoreResult<Hash> {
    bytes
        .try_into()
        .map_err(|_| StoreError::Corrupt(format!("{what} is not a 32-byte hash")))
}

fn u64_of(v: i64) -> u64 {
    v.max(0) as u64
}

impl Store {
    /// Builds the tree of every ledger written before trees were kept (the
    /// `0008_merkle` migration leaves their frontier empty). Runs once, at
    /// open, in one write per organisation.
    pub(crate) async fn build_missing_trees(&self) -> StoreResult<()> {
        let orgs = sqlx::query("SELECT org_id FROM ledger_heads WHERE frontier IS NULL")
            .fetch_all(&self.db.read)
            .await?;
        for r in orgs {
            let org_id: i64 = r.try_get(0)?;
            self.db
                .write(move |c| {
                    Box::pin(async move {
                        const BATCH: i64 = 10_000;
                        let mut tree = Frontier::new();
                        loop {
                            let rows = sqlx::query(
                                "SELECT seq, leaf_hash FROM ledger WHERE org_id = $1 AND seq >= $2 \
                                 ORDER BY seq LIMIT $3",
                            )
                            .bind(org_id)
                            .bind(tree.size() as i64)
                            .bind(BATCH)
                            .fetch_all(&mut *c)
                            .await?;
                            let done = (rows.len() as i64) < BATCH;
                            for row in rows {
                                let seq: i64 = row.try_get(0)?;
                                if u64_of(seq) != tree.size() {
                                    return Err(StoreError::Corrupt(format!(
                                        "the ledger has no entry {} (the next is {seq})",
                                        tree.size()
                                    )));
                                }
                                let leaf = hash_from(row.try_get(1)?, "a leaf hash")?;
                                grow(c, org_id, &mut tree, leaf).await?;
                            }
                            if done {
                                break;
                            }
                        }
                        let size: i64 =
                            sqlx::query("SELECT size FROM ledger_heads WHERE org_id = $1")
                                .bind(org_id)
                                .fetch_one(&mut *c)
                                .await?
                                .try_get(0)?;
                        if u64_of(size) != tree.size() {
                            return Err(StoreError::Corrupt(format!(
                                "the ledger head says {size} entries, the ledger has {}",
                                tree.size()
                            )));
                        }
                        sqlx::query("UPDATE ledger_heads SET frontier = $2 WHERE org_id = $1")
                            .bind(org_id)
                            .bind(tree.to_bytes())
                            .execute(&mut *c)
                            .await?;
                        Ok(())
                    })
                })
                .await?;
        }
        Ok(())
    }

    async fn org_tree(&self, org: &str) -> StoreResult<(i64, TreeHead)> {
        let row = sqlx::query(
            "SELECT h.org_id, h.size, h.frontier FROM ledger_heads h JOIN orgs o ON o.id = h.org_id \
             WHERE o.name = $1",
        )
        .bind(org)
        .fetch_optional(&self.db.read)
        .await?
        .ok_or_else(|| StoreError::not_found("org", org))?;
        let org_id: i64 = row.try_get(0)?;
        let size = u64_of(row.try_get(1)?);
        let frontier: Option<Vec<u8>> = row.try_get(2)?;
        let frontier = frontier.ok_or_else(|| {
            StoreError::Corrupt(format!("the ledger of org '{org}' has no Merkle tree"))
        })?;
        let tree = Frontier::from_bytes(size, &frontier)
            .map_err(|e| StoreError::Corrupt(format!("the ledger of org '{org}': {e}")))?;
        Ok((
            org_id,
            TreeHead {
                size,
                root: tree.root(),
            },
        ))
    }

    /// The organisation's tree as of its latest write.
    pub async fn tree_head(&self, org: &str) -> StoreResult<TreeHead> {
        Ok(self.org_tree(org).await?.1)
    }

    /// The stored hashes `nodes` are computed from, in one query.
    pub(crate) async fn fetch_nodes(&self, org_id: i64, nodes: &[Node]) -> StoreResult<NodeHashes> {
        let mut hashes = NodeHashes::new();
        let sources = NodeHashes::sources(nodes);
        if sources.is_empty() {
            return Ok(hashes);
        }
        // One query for the whole proof. Its shape depends only on which
        // levels are read (the tree's height), so the prepared statement
        // is reused from one proof to the next; the ranges are bound.
        let mut sql = String::new();
        let mut binds: Vec<i64> = Vec::new();
        for (level, r) in &sources {
            if !sql.is_empty() {
                sql.push_str(" UNION ALL ");
            }
            let n = binds.len() + 2;
            if *level == 0 {
                sql.push_str(&format!(
                    "SELECT 0, seq, leaf_hash FROM ledger WHERE org_id = $1 AND seq >= ${n} AND seq < ${}",
                    n + 1
                ));
            } else {
                sql.push_str(&format!(
                    "SELECT level, idx, hash FROM merkle_nodes WHERE org_id = $1 AND level = {level} \
                     AND idx >= ${n} AND idx < ${}",
                    n + 1
                ));
            }
            binds.push(r.start as i64);
            binds.push(r.end as i64);
        }
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(org_id);
        for b in binds {
            q = q.bind(b);
        }
        let rows = q.fetch_all(&self.db.read).await?;
        for row in rows {
            let level: i64 = row.try_get(0)?;
            let index: i64 = row.try_get(1)?;
            let hash = hash_from(row.try_get(2)?, "a tree node")?;
            hashes.insert(Node::new(level as u8, u64_of(index)), hash);
        }
        Ok(hashes)
    }

    fn check_size(head: &TreeHead, size: u64) -> StoreResult<()> {
        if size > head.size {
            return Err(StoreError::Unprocessable(format!(
                "the ledger has {} entries, not {size}",
                head.size
            )));
        }
        Ok(())
    }

    /// The root of the tree when it had `size` entries.
    pub async fn tree_root_at(&self, org: &str, size: u64) -> StoreResult<Hash> {
        let (org_id, head) = self.org_tree(org).await?;
        Self::check_size(&head, size)?;
        if size == head.size {
            return Ok(head.root);
        }
        let nodes = Frontier::nodes(size);
        let hashes = self.fetch_nodes(org_id, &nodes).await?;
        let mut acc: Option<Hash> = None;
        for n in nodes.iter().rev() {
            let h = hashes
                .get(*n)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            acc = Some(match acc {
                None => h,
                Some(right) => custody_ledger::merkle::node_hash(&h, &right),
            });
        }
        Ok(acc.unwrap_or_else(custody_ledger::merkle::empty_root))
    }

    /// The inclusion proof of entry `seq` in the tree of `tree_size`
    /// entries (the current size when `None`): the tree size used, the
    /// entry's leaf hash, and the proof's hashes.
    pub async fn inclusion_proof(
        &self,
        org: &str,
        seq: u64,
        tree_size: Option<u64>,
    ) -> StoreResult<(u64, Hash, Vec<Hash>)> {
        let (org_id, head) = self.org_tree(org).await?;
        let size = tree_size.unwrap_or(head.size);
        Self::check_size(&head, size)?;
        let plan = ProofPlan::inclusion(seq, size)
            .map_err(|e| StoreError::Unprocessable(e.to_string()))?;
        let mut nodes = plan.nodes();
        nodes.push(Node::new(0, seq));
        let hashes = self.fetch_nodes(org_id, &nodes).await?;
        let leaf = hashes
            .get(Node::new(0, seq))
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let proof = plan
            .assemble(&hashes)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        Ok((size, leaf, proof))
    }

    /// The sequence number of the entry with this leaf hash.
    pub async fn seq_of_leaf(&self, org: &str, leaf: &Hash) -> StoreResult<u64> {
        let row = sqlx::query(
            "SELECT l.seq FROM ledger l JOIN orgs o ON o.id = l.org_id \
             WHERE o.name = $1 AND l.leaf_hash = $2 ORDER BY l.seq LIMIT 1",
        )
        .bind(org)
        .bind(leaf.to_vec())
        .fetch_optional(&self.db.read)
        .await?
        .ok_or_else(|| StoreError::not_found("ledger entry with leaf hash", hex::encode(leaf)))?;
        Ok(u64_of(row.try_get(0)?))
    }

    /// The consistency proof from the tree of `old` entries to the tree of
    /// `new` (the current size when `None`); returns `new` and the proof.
    pub async fn consistency_proof(
        &self,
        org: &str,
        old: u64,
        new: Option<u64>,
    ) -> StoreResult<(u64, Vec<Hash>)> {
        let (org_id, head) = self.org_tree(org).await?;
        let new = new.unwrap_or(head.size);
        Self::check_size(&head, new)?;
        let plan = ProofPlan::consistency(old, new)
            .map_err(|e| StoreError::Unprocessable(e.to_string()))?;
        let hashes = self.fetch_nodes(org_id, &plan.nodes()).await?;
        let proof = plan
            .assemble(&hashes)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        Ok((new, proof))
    }

    /// Organisations whose tree grew since their latest checkpoint.
    pub async fn unpublished_trees(&self) -> StoreResult<Vec<Unpublished>> {
        let rows = sqlx::query(
            "SELECT h.org_id, o.name, h.size, h.frontier FROM ledger_heads h JOIN orgs o ON o.id = h.org_id \
             WHERE h.frontier IS NOT NULL AND h.size > COALESCE( \
               (SELECT MAX(c.size) FROM checkpoints c WHERE c.org_id = h.org_id), 0) \
             ORDER BY h.org_id",
        )
        .fetch_all(&self.db.read)
        .await?;
        rows.into_iter()
            .map(|r| {
                let size = u64_of(r.try_get(2)?);
                let frontier: Vec<u8> = r.try_get(3)?;
                let tree = Frontier::from_bytes(size, &frontier)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?;
                Ok(Unpublished {
                    org_id: r.try_get(0)?,
                    org: r.try_get(1)?,
                    head: TreeHead {
                        size,
                        root: tree.root(),
                    },
                })
            })
            .collect()
    }

    /// Keeps a signed checkpoint; false if one of that size was kept
    /// already (another replica signed it first).
    pub async fn save_checkpoint(
        &self,
        org_id: i64,
        head: &TreeHead,
        note: &str,
    ) -> StoreResult<bool> {
        let (size, root, note) = (head.size as i64, head.root.to_vec(), note.to_string());
        self.db
            .write(move |c| {
                Box::pin(async move {
                    let r = sqlx::query(
                        "INSERT INTO checkpoints (org_id, size, root, note, created_at) \
                         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (org_id, size) DO NOTHING",
                    )
                    .bind(org_id)
                    .bind(size)
                    .bind(root)
                    .bind(note)
                    .bind(now_ms())
                    .execute(&mut *c)
                    .await?;
                    Ok(r.rows_affected() == 1)
                })
            })
            .await
    }

    /// Adds a witness's cosignature line to a kept checkpoint.
    pub async fn add_cosignature(
        &self,
        org_id: i64,
        size: u64,
        witness: &str,
        line: &str,
    ) -> StoreResult<()> {
        let (witness, line) = (witness.to_string(), line.to_string());
        self.db
            .write(move |c| {
                Box::pin(async move {
                    sqlx::query(
                        "INSERT INTO checkpoint_cosignatures (org_id, size, witness, line, created_at) \
                         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (org_id, size, witness) DO NOTHING",
                    )
                    .bind(org_id)
                    .bind(size as i64)
                    .bind(witness)
                    .bind(line)
                    .bind(now_ms())
                    .execute(&mut *c)
                    .await?;
                    Ok(())
                })
            })
            .await
    }

    /// The largest checkpoint `witness` cosigned for the organisation.
    pub async fn last_cosigned(&self, org_id: i64, witness: &str) -> StoreResult<Option<u64>> {
        let row = sqlx::query(
            "SELECT MAX(size) FROM checkpoint_cosignatures WHERE org_id = $1 AND witness = $2",
        )
        .bind(org_id)
        .bind(witness)
        .fetch_one(&self.db.read)
        .await?;
        let max: Option<i64> = row.try_get(0)?;
        Ok(max.map(u64_of))
    }

    /// The latest checkpoint, or the one of exactly `size` entries.
    pub async fn checkpoint(
        &self,
        org: &str,
        size: Option<u64>,
    ) -> StoreResult<Option<StoredCheckpoint>> {
        let Some(org_id) = self.org_id(org).await? else {
            return Err(StoreError::not_found("org", org));
        };
        let row = match size {
            Some(s) => sqlx::query(
                "SELECT size, root, note, created_at FROM checkpoints WHERE org_id = $1 AND size = $2",
            )
            .bind(org_id)
            .bind(s as i64)
            .fetch_optional(&self.db.read)
            .await?,
            None => sqlx::query(
                "SELECT size, root, note, created_at FROM checkpoints WHERE org_id = $1 \
                 ORDER BY size DESC LIMIT 1",
            )
            .bind(org_id)
            .fetch_optional(&self.db.read)
            .await?,
        };
        let Some(row) = row else {
            return Ok(None);
        };
        let size = u64_of(row.try_get(0)?);
        let cosignatures = sqlx::query(
            "SELECT line FROM checkpoint_cosignatures WHERE org_id = $1 AND size = $2 \
             ORDER BY created_at, witness",
        )
        .bind(org_id)
        .bind(size as i64)
        .fetch_all(&self.db.read)
        .await?
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<Vec<String>, _>>()?;
        Ok(Some(StoredCheckpoint {
            size,
            root: hash_from(row.try_get(1)?, "a checkpoint's root")?,
            note: row.try_get(2)?,
            cosignatures,
            created_at: row.try_get(3)?,
        }))
    }

    /// Every kept checkpoint's size and root, oldest first (for audits).
    pub async fn checkpoints(&self, org: &str) -> StoreResult<Vec<StoredCheckpoint>> {
        let Some(org_id) = self.org_id(org).await? else {
            return Err(StoreError::not_found("org", org));
        };
        let rows = sqlx::query(
            "SELECT size, root, note, created_at FROM checkpoints WHERE org_id = $1 ORDER BY size",
        )
        .bind(org_id)
        .fetch_all(&self.db.read)
        .await?;
        rows.into_iter()
            .map(|row| {
                Ok(StoredCheckpoint {
                    size: u64_of(row.try_get(0)?),
                    root: hash_from(row.try_get(1)?, "a checkpoint's root")?,
                    note: row.try_get(2)?,
                    cosignatures: Vec::new(),
                    created_at: row.try_get(3)?,
                })
            })
            .collect()
    }
}
