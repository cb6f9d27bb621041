//! The ledger's entry format.
//!
//! Every accepted write appends one entry to its organisation's ledger. An
//! entry is an envelope `{seq, org, kind, ts, actor, record}` serialised as
//! canonical JSON (RFC 8785, JCS), and its leaf hash is
//! `SHA-256(0x00 ‖ canonical bytes)` as in RFC 6962, so a Merkle tree over
//! the leaves (proofs and signed checkpoints) can be built on top without
//! re-encoding anything. The envelope, not only the record, is hashed: the
//! position, kind and time of a write are part of what the log attests.
//!
//! The leaves form one RFC 6962 Merkle tree per organisation ([`merkle`]),
//! whose heads are published as signed checkpoints and cosigned by
//! witnesses ([`note`]).
//!
//! This crate does no I/O; the store writes entries in the same transaction
//! as the records they describe.

pub mod dsse;
pub mod foreign;
pub mod merkle;
pub mod note;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What kind of write an entry records. The string forms are stored and
/// hashed: never rename one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    Org,
    ServiceAccount,
    ApiKey,
    ApiKeyRevoked,
    Flow,
    FlowTemplate,
    Trail,
    Artifact,
    Attestation,
    AttestationType,
    Evidence,
    Environment,
    /// What runs in an environment changed: the changes and the digest of
    /// what runs after them.
    Snapshot,
    /// A report that changed nothing: the environment was observed.
    Heartbeat,
    /// A policy version was created.
    Policy,
    /// Policies were attached to or detached from an environment.
    PolicyAttachment,
    /// A control was created or edited (a new version).
    Control,
    /// An artifact was allowlisted in an environment.
    Allowlist,
    /// An environment was judged against its policies: the inputs'
    /// identities and every artifact's rule results.
    Evaluation,
    /// A notification action was created, changed or deleted.
    Action,
}

impl EntryKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::Org => "org",
            EntryKind::ServiceAccount => "service_account",
            EntryKind::ApiKey => "api_key",
            EntryKind::ApiKeyRevoked => "api_key_revoked",
            EntryKind::Flow => "flow",
            EntryKind::FlowTemplate => "flow_template",
            EntryKind::Trail => "trail",
            EntryKind::Artifact => "artifact",
            EntryKind::Attestation => "attestation",
            EntryKind::AttestationType => "attestation_type",
            EntryKind::Evidence => "evidence",
            EntryKind::Environment => "environment",
            EntryKind::Snapshot => "snapshot",
            EntryKind::Heartbeat => "heartbeat",
            EntryKind::Policy => "policy",
            EntryKind::PolicyAttachment => "policy_attachment",
            EntryKind::Control => "control",
            EntryKind::Allowlist => "allowlist",
            EntryKind::Evaluation => "evaluation",
            EntryKind::Action => "action",
        }
    }
}

/// Who made a write: part of every entry, so the log says not only what
/// happened but on whose key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Actor {
    /// A request made with an API key: the key's organisation (a server
    /// admin acts in organisations other than its own), service account
    /// and key id (never the secret).
    Key {
        org: String,
        service_account: String,
        key_id: String,
    },
    /// The server on its own account: `bootstrap` at first start, `judge`
    /// for the judgements that follow writes.
    Server { task: String },
}

impl Actor {
    pub fn server(task: &str) -> Actor {
        Actor::Server {
            task: task.to_string(),
        }
    }
}

impl std::fmt::Display for Actor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Actor::Key {
                org,
                service_account,
                key_id,
            } => write!(f, "{org}/{service_account} (key {key_id})"),
            Actor::Server { task } => write!(f, "server ({task})"),
        }
    }
}

/// The hashed form of one ledger entry.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Envelope {
    /// Position in the organisation's ledger, from 0, without gaps.
    pub seq: i64,
    pub org: String,
    pub kind: EntryKind,
    /// Milliseconds since the Unix epoch, assigned by the server.
    pub ts: i64,
    pub actor: Actor,
    pub record: serde_json::Value,
}

/// An envelope in its canonical bytes, with its leaf hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedEntry {
    pub canonical: String,
    pub leaf_hash: [u8; 32],
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot canonicalise ledger record: {0}")]
    Canonical(String),
}

impl Envelope {
    pub fn seal(&self) -> Result<SealedEntry, Error> {
        let canonical = canonical_json(self)?;
        let leaf_hash = leaf_hash(canonical.as_bytes());
        Ok(SealedEntry {
            canonical,
            leaf_hash,
        })
    }
}

/// RFC 8785 canonical JSON: sorted keys, no insignificant whitespace,
/// ECMAScript number formatting.
pub fn canonical_json(value: &impl Serialize) -> Result<String, Error> {
    serde_json_canonicalizer::to_string(value).map_err(|e| Error::Canonical(e.to_string()))
}

/// RFC 6962 leaf hash: `SHA-256(0x00 ‖ data)`.
pub fn leaf_hash(data: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(data);
    h.finalize().into()
}

/// Re-computes an entry's leaf hash from its stored canonical text and checks
/// that the text is indeed canonical, so an edited row cannot pass.
pub fn verify(canonical: &str, leaf: &[u8]) -> Result<Envelope, VerifyError> {
    let envelope: Envelope =
        serde_json::from_str(canonical).map_err(|e| VerifyError::Malformed(e.to_string()))?;
    let again = envelope
        .seal()
        .map_err(|e| VerifyError::Malformed(e.to_string()))?;
    if again.canonical != canonical {
        return Err(VerifyError::NotCanonical);
    }
    if again.leaf_hash.as_slice() != leaf {
        return Err(VerifyError::HashMismatch);
    }
    Ok(envelope)
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VerifyError {
    #[error("entry is not a valid envelope: {0}")]
    Malformed(String),
    #[error("entry text is not in canonical form")]
    NotCanonical,
    #[error("leaf hash does not match the entry")]
    HashMismatch,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_form_sorts_keys_and_formats_numbers() {
        let v = json!({"b": 1.0, "a": [1e21, "x"], "c": {"z": null, "y": true}});
        assert_eq!(
            canonical_json(&v).unwrap(),
            r#"{"a":[1e+21,"x"],"b":1,"c":{"y":true,"z":null}}"#
        );
    }

    #[test]
    fn leaf_hash_is_rfc6962() {
        // RFC 6962 test vector: the leaf hash of the empty string.
        assert_eq!(
            hex::encode(leaf_hash(b"")),
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
        );
    }

    #[test]
    fn seal_and_verify_round_trip() {
        let e = Envelope {
            seq: 7,
            org: "default".into(),
            kind: EntryKind::Flow,
            ts: 1_700_000_000_000,
            actor: Actor::Key {
                org: "default".into(),
                service_account: "ci".into(),
                key_id: "0193".into(),
            },
            record: json!({"name": "backend", "description": "é"}),
        };
        let sealed = e.seal().unwrap();
        assert_eq!(verify(&sealed.canonical, &sealed.leaf_hash).unwrap(), e);
        assert!(
            sealed.canonical.contains(
                r#""actor":{"key_id":"0193","org":"default","service_account":"ci","type":"key"}"#
            ),
            "{}",
            sealed.canonical
        );
        let tampered = sealed.canonical.replace("backend", "frontend");
        assert_eq!(
            verify(&tampered, &sealed.leaf_hash),
            Err(VerifyError::HashMismatch)
        );
        let spaced = sealed.canonical.replacen(':', ": ", 1);
        assert_eq!(
            verify(&spaced, &sealed.leaf_hash),
            Err(VerifyError::NotCanonical)
        );
    }
}
