//! The ledger's proofs: checkpoints, inclusion and consistency proofs, and
//! entries. Hashes are base64, as in the C2SP formats the checkpoints use.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A signed tree head (c2sp.org/tlog-checkpoint) and the cosignatures
/// witnesses gave it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Checkpoint {
    /// `<host>/custody/<org>`: the log's name, and its key's.
    pub origin: String,
    pub size: u64,
    /// The Merkle root, base64.
    pub root: String,
    /// The signed note: checkpoint text, blank line, the log's signature,
    /// then every witness's cosignature.
    pub note: String,
    /// Names of the witnesses that cosigned it.
    pub witnesses: Vec<String>,
    /// When the server signed it (milliseconds since the epoch).
    pub created_at: i64,
}

/// The key that signs the organisation's checkpoints.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LedgerKey {
    pub origin: String,
    /// Verifier key in c2sp.org/signed-note form: `<name>+<id>+<key>`.
    pub verifier_key: String,
}

/// Entry `seq` is leaf `seq` of the tree of `tree_size` entries.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct InclusionProof {
    pub seq: u64,
    pub tree_size: u64,
    /// The entry's leaf hash, base64.
    pub leaf_hash: String,
    /// Sibling hashes from the leaf up (RFC 9162 §2.1.3), base64.
    pub proof: Vec<String>,
}

/// The tree of `old_size` entries is a prefix of the tree of `new_size`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ConsistencyProof {
    pub old_size: u64,
    pub new_size: u64,
    /// RFC 9162 §2.1.4 proof hashes, base64.
    pub proof: Vec<String>,
}

/// One ledger entry as stored.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LedgerEntry {
    pub seq: u64,
    pub kind: String,
    pub ts: i64,
    /// The canonical JSON envelope whose leaf hash is `leaf_hash`.
    pub entry: String,
    /// `SHA-256(0x00 ‖ entry)`, base64.
    pub leaf_hash: String,
}

/// A run of entries, in order.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LedgerEntries {
    pub entries: Vec<LedgerEntry>,
    /// The ledger's size when read.
    pub size: u64,
}

/// What `ledger verify` found: every entry re-derived, the tree rebuilt
/// and held to every checkpoint, and the records held to their entries.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LedgerAudit {
    pub org: String,
    /// Entries read.
    pub entries: u64,
    /// Checkpoints the rebuilt tree was held to.
    pub checkpoints: u64,
    /// Checkpoint signatures checked (with a public key).
    pub signatures: u64,
    /// Records held to their ledger entries.
    pub records: u64,
    /// The rebuilt tree's root, base64.
    pub root: String,
    /// Empty when the store is what its ledger says.
    pub problems: Vec<AuditProblem>,
}

/// One way the store differs from its ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AuditProblem {
    /// The ledger entry concerned, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// `ledger`, `tree`, `checkpoints`, or the record's table.
    pub table: String,
    /// The record's key in its table, when it is a record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    pub what: String,
}

/// A trail's records as in-toto Statement v1 documents in DSSE envelopes,
/// signed with the server's key.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct IntotoExport {
    /// The `keyid` of the envelopes' signatures: hex SHA-256 of the key.
    pub keyid: String,
    /// The Ed25519 public key, hex (as securesystemslib's `keyval.public`).
    pub public_key: String,
    /// The same key as the checkpoints' verifier key.
    pub verifier_key: String,
    pub envelopes: Vec<custody_ledger::dsse::Envelope>,
    /// Records that could not be stated, and why (no artifact to be their
    /// subject yet).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<String>,
}

/// What an audit bundle (`custody audit export`) covers.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditBundleRequest {
    /// The window, milliseconds since the epoch, both inclusive. The window
    /// ends earlier when the latest checkpoint does: at the last report it
    /// holds.
    pub from: i64,
    pub to: i64,
    /// Provenance counted only from trails of this flow.
    #[serde(default)]
    pub flow: Option<String>,
    /// Include the evidence files (default true).
    #[serde(default = "yes")]
    pub blobs: bool,
    /// A checkpoint the requester holds (signed note): the bundle proves
    /// the log grew from it.
    #[serde(default)]
    pub since_checkpoint: Option<String>,
    /// Claim that this fingerprint never ran in the window.
    #[serde(default)]
    pub absent: Option<String>,
}

fn yes() -> bool {
    true
}
