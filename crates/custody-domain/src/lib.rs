//! Custody's domain: the words users see (flow, template, trail, artifact,
//! attestation, role) and the rules that decide compliance.
//!
//! Architecture invariant: this crate does no I/O. It takes values (parsed
//! YAML, JSON, attestation facts) and returns values, so every rule can be
//! tested without a server or a database.

pub mod attestation;
pub mod compliance;
pub mod custom_type;
pub mod fingerprint;
pub mod json_depth;
pub mod names;
pub mod provenance;
pub mod role;
pub mod template;

pub use attestation::{AttestationKind, AttestationName};
pub use fingerprint::Fingerprint;
pub use names::Name;
pub use role::{Permission, Role};
pub use template::FlowTemplate;
