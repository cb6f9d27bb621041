use custody_sandbox::Sandbox;
use custody_store::{BlobStore, Store};

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub blobs: BlobStore,
    /// The most bytes one request may upload.
    pub max_upload: u64,
    /// Where users' programs (jq rules, JSON Schemas, Rego) run.
    pub sandbox: Sandbox,
    /// Where notifications may be sent.
    pub egress: crate::egress::EgressPolicy,
    pub limits: std::sync::Arc<crate::Limits>,
    /// Requests per key, when limited.
    pub rate: Option<std::sync::Arc<crate::ratelimit::RateLimiter>>,
    /// Seals secrets kept at rest.
    pub secrets: std::sync::Arc<crate::secrets::SecretBox>,
    /// The server's address as users reach it (no trailing slash), for
    /// links in answers and notifications.
    pub public_url: std::sync::Arc<str>,
    /// Signs the ledger's checkpoints.
    pub signer: std::sync::Arc<crate::checkpoints::LogSigner>,
}
