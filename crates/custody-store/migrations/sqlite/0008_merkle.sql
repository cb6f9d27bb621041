-- The ledger's Merkle tree (RFC 6962), kept at write time.
--
-- `frontier` holds the roots of the tree's perfect subtrees, largest first
-- (32 bytes each, one per set bit of `size`): all a write needs to extend
-- the tree. NULL until the store has built it for ledgers written before
-- this migration (done once, when the store opens).
ALTER TABLE ledger_heads ADD COLUMN frontier BLOB;

-- Interior nodes at every fourth level (custody_ledger::merkle::STRIDE):
-- node (level, idx) is the root of leaves [idx·2^level, (idx+1)·2^level).
-- Proofs compute the levels between from these and the leaf hashes.
CREATE TABLE merkle_nodes (
    org_id BIGINT NOT NULL REFERENCES orgs(id),
    level BIGINT NOT NULL,
    idx BIGINT NOT NULL,
    hash BLOB NOT NULL,
    PRIMARY KEY (org_id, level, idx)
) WITHOUT ROWID; -- SQLite only: the key is the data

-- Signed tree heads (c2sp.org/tlog-checkpoint), every one kept so any
-- past head can be proven consistent with a later one. `note` is the note
-- as the log signed it; cosignatures are added in checkpoint_cosignatures.
CREATE TABLE checkpoints (
    org_id BIGINT NOT NULL REFERENCES orgs(id),
    size BIGINT NOT NULL,
    root BLOB NOT NULL,
    note TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (org_id, size)
);

-- Witnesses' cosignature lines (c2sp.org/tlog-cosignature) on a checkpoint.
CREATE TABLE checkpoint_cosignatures (
    org_id BIGINT NOT NULL,
    size BIGINT NOT NULL,
    witness TEXT NOT NULL,
    line TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (org_id, size, witness),
    FOREIGN KEY (org_id, size) REFERENCES checkpoints(org_id, size)
);

-- Proofs read runs of leaf hashes; this covers them without reading the
-- entries' text.
CREATE INDEX ledger_leaves ON ledger (org_id, seq, leaf_hash);
