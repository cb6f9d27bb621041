//! What a bundle holds, member by member. docs/proofs.md describes the same
//! format for people who check bundles with their own tools.
//!
//! A bundle is a gzip'd tar whose members come in this order:
//!
//! 1. `manifest.json`: what the bundle claims ([`Manifest`]). It is not
//!    signed; everything in it that matters is proven by the entries.
//! 2. `checkpoint`: the log's signed checkpoint (a C2SP signed note, with
//!    the witnesses' cosignatures) that every entry is proven against.
//! 3. Optionally `since-checkpoint` (an older checkpoint the requester
//!    held) and `consistency.json` (the proof that the log only grew from
//!    it to `checkpoint`).
//! 4. `entries.jsonl`: one [`Line`] per ledger entry, in increasing
//!    sequence order, each with its inclusion proof.
//! 5. `blobs/sha256/<hex>`: the evidence files the entries reference,
//!    unless the bundle was made without them.
//!
//! The order lets a verifier check everything in one pass: the checkpoint
//! is known before the first proof, the referenced digests before the
//! first blob.

use serde::{Deserialize, Serialize};

pub const FORMAT: &str = "custody-audit-bundle/v1";

pub const MANIFEST: &str = "manifest.json";
pub const CHECKPOINT: &str = "checkpoint";
pub const SINCE_CHECKPOINT: &str = "since-checkpoint";
pub const CONSISTENCY: &str = "consistency.json";
pub const ENTRIES: &str = "entries.jsonl";
pub const BLOB_DIR: &str = "blobs/sha256/";

/// The largest manifest, checkpoint or consistency member read.
pub const MAX_SMALL_MEMBER: u64 = 64 << 20;
/// The longest line of `entries.jsonl` (a policy's text is the largest
/// record a ledger holds).
pub const MAX_LINE: usize = 32 << 20;

/// The bundle's claims: which environment, which window, where the replay
/// starts. Unsigned: a verifier proves each claim from the entries, and
/// reports the window it proved, so a changed manifest cannot make a
/// bundle say more than its entries do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format: String,
    pub org: String,
    /// The environment's name at the end of the bundle.
    pub environment: String,
    /// Every name the environment had over the bundle's entries, in order
    /// (renames); the last is `environment`.
    pub names: Vec<String>,
    /// The window, milliseconds since the Unix epoch, both inclusive.
    pub from: i64,
    pub to: i64,
    /// Provenance counted only from trails of this flow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flow: Option<String>,
    pub claim: Claim,
    /// What ran at `from`: the snapshot in force and its running set,
    /// proven by that snapshot's entry (the digest of its counts).
    pub start: Start,
    /// Whether the evidence files are in the bundle.
    pub blobs: bool,
    /// Artifacts that ran in the window without provenance in the bundle.
    pub unknown: Vec<RanArtifact>,
    /// How many lines `entries.jsonl` holds.
    pub entries: u64,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Claim {
    /// What ran, complete, with its provenance.
    History,
    /// That an artifact never ran in the environment in the window.
    Absent { fingerprint: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Start {
    /// 0 when the environment had no snapshot before the window.
    pub snapshot: u64,
    pub running: Vec<Running>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Running {
    pub name: String,
    /// Empty when the reporter could not identify the artifact.
    pub fingerprint: String,
    pub instances: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RanArtifact {
    pub name: String,
    pub fingerprint: String,
}

/// One line of `entries.jsonl`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Line {
    pub seq: u64,
    /// The entry's canonical JSON, exactly the bytes its leaf hash covers.
    pub entry: String,
    /// The inclusion proof against the checkpoint, hex.
    pub proof: Vec<String>,
    /// For an `evaluation` entry: the judgement's document, whose SHA-256
    /// the entry holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub doc: Option<String>,
}

/// `consistency.json`: the log grew from `since-checkpoint` to
/// `checkpoint` without changing what it held.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Consistency {
    pub old_size: u64,
    pub new_size: u64,
    /// Hex.
    pub proof: Vec<String>,
}

/// The member name of a blob, if `name` is one.
pub fn blob_digest(name: &str) -> Option<&str> {
    let hex = name.strip_prefix(BLOB_DIR)?;
    (hex.len() == 64
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
    .then_some(hex)
}

pub fn blob_member(sha256: &str) -> String {
    format!("{BLOB_DIR}{sha256}")
}
