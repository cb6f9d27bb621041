//! The RFC 6962 (RFC 9162 §2.1) Merkle tree over an organisation's ledger:
//! roots, the compact frontier kept at write time, which subtrees an
//! inclusion or consistency proof needs, and the verifiers.
//!
//! Written here rather than taken from a crate because the store keeps only
//! some levels of the tree (see [`STRIDE`]) and fetches a proof's nodes in
//! one query: the proof functions therefore name the subtrees they need
//! ([`Node`]s) and assemble hashes the caller fetched, instead of walking a
//! tree through a callback. The verifiers follow RFC 9162 §2.1.3.2 and
//! §2.1.4.2 step by step; the transparency-dev vectors check them.

use std::collections::HashMap;

use sha2::{Digest, Sha256};

pub type Hash = [u8; 32];

/// Interior nodes are stored at levels that are multiples of `STRIDE`
/// (level 0, the leaves, are the ledger's own leaf hashes). A node at any
/// other level is at most `2^(STRIDE-1)` stored nodes away, so a proof at
/// ten million entries reads about a hundred hashes, while the store keeps
/// one row per sixteen entries instead of one per entry.
pub const STRIDE: u8 = 4;

/// `SHA-256(0x01 ‖ left ‖ right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The root of the empty tree: SHA-256 of nothing.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// A perfect subtree: leaves `[index · 2^level, (index + 1) · 2^level)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Node {
    pub level: u8,
    pub index: u64,
}

impl Node {
    pub fn new(level: u8, index: u64) -> Node {
        Node { level, index }
    }

    /// Whether the store keeps this node's hash as a row.
    pub fn is_stored(self) -> bool {
        self.level > 0 && self.level.is_multiple_of(STRIDE)
    }

    /// The stored (or leaf) nodes this node is computed from: level and
    /// index range. A stored node or a leaf is its own source.
    pub fn sources(self) -> (u8, std::ops::Range<u64>) {
        let base = self.level - self.level % STRIDE;
        let up = self.level - base;
        let first = self.index << up;
        (base, first..first + (1u64 << up))
    }
}

/// The right edge of the tree: the roots of its perfect subtrees, largest
/// first, one per set bit of the size. Appending a leaf merges equal-sized
/// subtrees; this is all the write path keeps between writes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Frontier {
    size: u64,
    roots: Vec<Hash>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrontierError {
    #[error("a frontier of {size} leaves has {want} hashes, not {got} bytes")]
    Length { size: u64, want: usize, got: usize },
}

impl Frontier {
    pub fn new() -> Frontier {
        Frontier::default()
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends a leaf; `created` sees every interior node completed by it,
    /// lowest first.
    pub fn push(&mut self, leaf: Hash, mut created: impl FnMut(Node, &Hash)) {
        let n = self.size;
        let mut hash = leaf;
        let mut level = 0u8;
        while (n >> level) & 1 == 1 {
            let Some(left) = self.roots.pop() else {
                // The roots match the set bits of `size`, so a set bit
                // always has its root; nothing to merge otherwise.
                break;
            };
            hash = node_hash(&left, &hash);
            level += 1;
            created(Node::new(level, n >> level), &hash);
        }
        self.roots.push(hash);
        self.size += 1;
    }

    pub fn root(&self) -> Hash {
        let mut it = self.roots.iter().rev();
        let Some(last) = it.next() else {
            return empty_root();
        };
        it.fold(*last, |acc, left| node_hash(left, &acc))
    }

    /// The stored form: the roots' hashes concatenated.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.roots.concat()
    }

    pub fn from_bytes(size: u64, bytes: &[u8]) -> Result<Frontier, FrontierError> {
        let want = size.count_ones() as usize;
        if bytes.len() != want * 32 {
            return Err(FrontierError::Length {
                size,
                want,
                got: bytes.len(),
            });
        }
        let roots = bytes
            .chunks_exact(32)
            .map(|c| {
                let mut h = [0u8; 32];
                h.copy_from_slice(c);
                h
            })
            .collect();
        Ok(Frontier { size, roots })
    }

    /// The perfect subtrees of a tree of `size` leaves, largest first:
    /// what a frontier of that size holds.
    pub fn nodes(size: u64) -> Vec<Node> {
        range_nodes(0, size)
    }
}

/// The perfect subtrees covering `[start, end)`, left to right, where
/// `start` is aligned to the largest power of two not above `end - start`
/// (true of every range RFC 6962's proofs name).
fn range_nodes(start: u64, end: u64) -> Vec<Node> {
    let mut out = Vec::new();
    let mut pos = start;
    let len = end - start;
    for level in (0..64u8).rev() {
        if len & (1u64 << level) != 0 {
            out.push(Node::new(level, pos >> level));
            pos += 1u64 << level;
        }
    }
    out
}

/// `MTH(D[start:end])` from the hashes of its perfect subtrees.
fn range_hash(start: u64, end: u64, hashes: &NodeHashes) -> Result<Hash, ProofError> {
    let nodes = range_nodes(start, end);
    let mut it = nodes.iter().rev();
    let Some(last) = it.next() else {
        return Ok(empty_root());
    };
    let mut acc = hashes.get(*last)?;
    for n in it {
        acc = node_hash(&hashes.get(*n)?, &acc);
    }
    Ok(acc)
}

/// The largest power of two smaller than `n` (n > 1).
fn split(n: u64) -> u64 {
    1u64 << (63 - (n - 1).leading_zeros())
}

/// The subtree ranges an inclusion proof of `index` in a tree of `size`
/// consists of, deepest first (RFC 9162 §2.1.3.1, PATH).
fn inclusion_ranges(index: u64, size: u64) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    let (mut lo, mut hi) = (0u64, size);
    // Walking down from the root produces siblings shallowest first.
    while hi - lo > 1 {
        let k = split(hi - lo);
        if index - lo < k {
            out.push((lo + k, hi));
            hi = lo + k;
        } else {
            out.push((lo, lo + k));
            lo += k;
        }
    }
    out.reverse();
    out
}

/// The subtree ranges of a consistency proof from `old` to `new`
/// (RFC 9162 §2.1.4.1, SUBPROOF), in proof order.
fn consistency_ranges(old: u64, new: u64) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    let (mut lo, mut hi) = (0u64, new);
    let mut complete = true;
    let m = old;
    loop {
        if m - lo == hi - lo {
            if !complete {
                out.push((lo, hi));
            }
            break;
        }
        let k = split(hi - lo);
        if m - lo <= k {
            out.push((lo + k, hi));
            hi = lo + k;
        } else {
            out.push((lo, lo + k));
            lo += k;
            complete = false;
        }
    }
    out.reverse();
    out
}

/// What a proof needs from the store, and how to assemble it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProofPlan {
    ranges: Vec<(u64, u64)>,
}

impl ProofPlan {
    /// The inclusion proof of leaf `index` in the tree of `size` leaves.
    pub fn inclusion(index: u64, size: u64) -> Result<ProofPlan, ProofError> {
        if index >= size {
            return Err(ProofError::IndexBeyondSize { index, size });
        }
        Ok(ProofPlan {
            ranges: inclusion_ranges(index, size),
        })
    }

    /// The consistency proof between the trees of `old` and `new` leaves
    /// (empty when either is empty or they are equal).
    pub fn consistency(old: u64, new: u64) -> Result<ProofPlan, ProofError> {
        if old > new {
            return Err(ProofError::OldBeyondNew { old, new });
        }
        let ranges = if old == 0 || old == new {
            Vec::new()
        } else {
            consistency_ranges(old, new)
        };
        Ok(ProofPlan { ranges })
    }

    /// The perfect subtrees whose hashes the proof is made of.
    pub fn nodes(&self) -> Vec<Node> {
        let mut v: Vec<Node> = self
            .ranges
            .iter()
            .flat_map(|&(a, b)| range_nodes(a, b))
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    pub fn assemble(&self, hashes: &NodeHashes) -> Result<Vec<Hash>, ProofError> {
        self.ranges
            .iter()
            .map(|&(a, b)| range_hash(a, b, hashes))
            .collect()
    }
}

/// Ranges of stored nodes this close are read as one.
const MERGE_GAP: u64 = 1 << STRIDE;

/// Hashes of nodes, as fetched: stored nodes and leaves, from which any
/// other perfect node is computed on demand.
#[derive(Debug, Default, Clone)]
pub struct NodeHashes {
    known: HashMap<Node, Hash>,
}

impl NodeHashes {
    pub fn new() -> NodeHashes {
        NodeHashes::default()
    }

    pub fn insert(&mut self, node: Node, hash: Hash) {
        self.known.insert(node, hash);
    }

    /// The stored nodes and leaves that [`NodeHashes::get`] of `nodes`
    /// needs, as level and index range, merged per level where they are
    /// close (a few extra hashes read are cheaper than another range).
    pub fn sources(nodes: &[Node]) -> Vec<(u8, std::ops::Range<u64>)> {
        let mut by_level: Vec<(u8, std::ops::Range<u64>)> =
            nodes.iter().map(|n| n.sources()).collect();
        by_level.sort_by_key(|(l, r)| (*l, r.start));
        let mut out: Vec<(u8, std::ops::Range<u64>)> = Vec::new();
        for (level, r) in by_level {
            match out.last_mut() {
                Some((l, last)) if *l == level && r.start <= last.end + MERGE_GAP => {
                    last.end = last.end.max(r.end);
                }
                _ => out.push((level, r)),
            }
        }
        out
    }

    pub fn get(&self, node: Node) -> Result<Hash, ProofError> {
        if let Some(h) = self.known.get(&node) {
            return Ok(*h);
        }
        if node.level == 0 || node.is_stored() {
            return Err(ProofError::Missing(node));
        }
        let left = self.get(Node::new(node.level - 1, node.index * 2))?;
        let right = self.get(Node::new(node.level - 1, node.index * 2 + 1))?;
        Ok(node_hash(&left, &right))
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProofError {
    #[error("entry {index} is not in a tree of {size} entries")]
    IndexBeyondSize { index: u64, size: u64 },
    #[error("tree size {old} is larger than {new}")]
    OldBeyondNew { old: u64, new: u64 },
    #[error("the hash of subtree {0:?} is not stored")]
    Missing(Node),
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VerifyProofError {
    #[error("entry {index} is not in a tree of {size} entries")]
    IndexBeyondSize { index: u64, size: u64 },
    #[error("tree size {old} is larger than {new}")]
    OldBeyondNew { old: u64, new: u64 },
    #[error("the proof has {got} hashes where {want} were expected")]
    Length { got: usize, want: usize },
    #[error("the proof does not lead to the expected root")]
    RootMismatch,
    #[error("the old tree's root does not match")]
    OldRootMismatch,
    #[error("equal tree sizes with different roots")]
    SameSizeDifferentRoots,
    #[error("an empty tree has no consistency proof to check")]
    EmptyOldTree,
}

/// How many hashes an inclusion proof of `index` in `size` has.
pub fn inclusion_proof_len(index: u64, size: u64) -> usize {
    inclusion_ranges(index, size).len()
}

/// How many hashes a consistency proof from `old` to `new` has
/// (0 < old < new).
pub fn consistency_proof_len(old: u64, new: u64) -> usize {
    if old == 0 || old >= new {
        return 0;
    }
    consistency_ranges(old, new).len()
}

/// RFC 9162 §2.1.3.2.
pub fn verify_inclusion(
    index: u64,
    size: u64,
    leaf: &Hash,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), VerifyProofError> {
    if index >= size {
        return Err(VerifyProofError::IndexBeyondSize { index, size });
    }
    let want = inclusion_proof_len(index, size);
    if proof.len() != want {
        return Err(VerifyProofError::Length {
            got: proof.len(),
            want,
        });
    }
    let (mut fn_, mut sn) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if sn == 0 {
            return Err(VerifyProofError::RootMismatch);
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(p, &r);
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn == 0 && r == *root {
        Ok(())
    } else {
        Err(VerifyProofError::RootMismatch)
    }
}

/// RFC 9162 §2.1.4.2. A proof from the empty tree is refused, as it
/// proves nothing: callers that accept one (a witness's first checkpoint)
/// check that the proof is empty themselves.
pub fn verify_consistency(
    old: u64,
    new: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), VerifyProofError> {
    if old > new {
        return Err(VerifyProofError::OldBeyondNew { old, new });
    }
    if old == 0 {
        return Err(VerifyProofError::EmptyOldTree);
    }
    if old == new {
        if !proof.is_empty() {
            return Err(VerifyProofError::Length {
                got: proof.len(),
                want: 0,
            });
        }
        return if old_root == new_root {
            Ok(())
        } else {
            Err(VerifyProofError::SameSizeDifferentRoots)
        };
    }
    let want = consistency_ranges(old, new).len();
    if proof.len() != want {
        return Err(VerifyProofError::Length {
            got: proof.len(),
            want,
        });
    }
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if old.is_power_of_two() {
        path.push(*old_root);
    }
    path.extend_from_slice(proof);
    let (mut fn_, mut sn) = (old - 1, new - 1);
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    let Some((first, rest)) = path.split_first() else {
        return Err(VerifyProofError::RootMismatch);
    };
    let (mut fr, mut sr) = (*first, *first);
    for c in rest {
        if sn == 0 {
            return Err(VerifyProofError::RootMismatch);
        }
        if fn_ & 1 == 1 || fn_ == sn {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 || sr != *new_root {
        return Err(VerifyProofError::RootMismatch);
    }
    if fr != *old_root {
        return Err(VerifyProofError::OldRootMismatch);
    }
    Ok(())
}

/// Computes roots and proofs over an in-memory list of leaf hashes: the
/// reference the store's plans are checked against, and what an auditor's
/// tools use on a bundle's entries.
pub fn hashes_from_leaves(leaves: &[Hash]) -> NodeHashes {
    let mut h = NodeHashes::new();
    let mut f = Frontier::new();
    for (i, leaf) in leaves.iter().enumerate() {
        h.insert(Node::new(0, i as u64), *leaf);
        f.push(*leaf, |n, hash| {
            if n.is_stored() {
                h.known.insert(n, *hash);
            }
        });
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::leaf_hash;

    fn leaves(n: u64) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect()
    }

    /// MTH by the RFC's recursive definition, for cross-checking.
    fn mth(d: &[Hash]) -> Hash {
        match d.len() {
            0 => empty_root(),
            1 => d[0],
            n => {
                let k = split(n as u64) as usize;
                node_hash(&mth(&d[..k]), &mth(&d[k..]))
            }
        }
    }

    #[test]
    fn frontier_root_is_the_rfc_root_at_every_size() {
        let all = leaves(300);
        let mut f = Frontier::new();
        assert_eq!(f.root(), mth(&[]));
        for (i, l) in all.iter().enumerate() {
            f.push(*l, |_, _| {});
            assert_eq!(f.root(), mth(&all[..=i]), "size {}", i + 1);
            let again = Frontier::from_bytes(f.size(), &f.to_bytes()).unwrap();
            assert_eq!(again, f);
        }
        assert!(Frontier::from_bytes(5, &[0u8; 32]).is_err());
    }

    #[test]
    fn created_nodes_are_the_perfect_subtrees() {
        let all = leaves(64);
        let mut f = Frontier::new();
        let mut seen = Vec::new();
        for l in &all {
            f.push(*l, |n, h| seen.push((n, *h)));
        }
        assert_eq!(seen.len(), 63);
        for (n, h) in seen {
            let start = (n.index << n.level) as usize;
            let end = start + (1usize << n.level);
            assert_eq!(h, mth(&all[start..end]), "{n:?}");
        }
    }

    #[test]
    fn every_proof_from_stored_nodes_verifies() {
        for size in 1..=70u64 {
            let all = leaves(size);
            let hashes = hashes_from_leaves(&all);
            let root = mth(&all);
            for index in 0..size {
                let plan = ProofPlan::inclusion(index, size).unwrap();
                // Only what the plan asks the store for is given to it.
                let mut fetched = NodeHashes::new();
                for (level, r) in NodeHashes::sources(&plan.nodes()) {
                    for i in r {
                        let n = Node::new(level, i);
                        if let Ok(h) = hashes.get(n) {
                            fetched.insert(n, h);
                        }
                    }
                }
                let proof = plan.assemble(&fetched).unwrap();
                verify_inclusion(index, size, &all[index as usize], &proof, &root).unwrap();
                if let Some(bad) = proof.first() {
                    let mut bad = *bad;
                    bad[0] ^= 1;
                    let mut p = proof.clone();
                    p[0] = bad;
                    assert!(
                        verify_inclusion(index, size, &all[index as usize], &p, &root).is_err()
                    );
                }
            }
            for old in 1..=size {
                let plan = ProofPlan::consistency(old, size).unwrap();
                let proof = plan.assemble(&hashes).unwrap();
                let old_root = mth(&all[..old as usize]);
                verify_consistency(old, size, &old_root, &root, &proof).unwrap();
                if old < size {
                    let other = mth(&leaves(old + 1)[1..]);
                    assert!(verify_consistency(old, size, &other, &root, &proof).is_err());
                }
            }
        }
    }

    #[test]
    fn sources_are_few_at_ten_million() {
        let size = 10_000_000u64;
        let plan = ProofPlan::inclusion(1_234_567, size).unwrap();
        let count: u64 = NodeHashes::sources(&plan.nodes())
            .iter()
            .map(|(_, r)| r.end - r.start)
            .sum();
        assert!(count <= 160, "{count}");
    }
}
