//! The JSON shapes of Custody's HTTP API (`/api/v1`), shared by the server
//! and the client so they cannot drift apart. Each type derives
//! `utoipa::ToSchema`, and the OpenAPI document is generated from them.

use std::collections::BTreeMap;

mod controls;
mod ledger;
mod notifications;
mod runtime;
pub use controls::*;
pub use ledger::*;
pub use notifications::*;
pub use runtime::*;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;
use utoipa::ToSchema;

pub use custody_domain::compliance::{ArtifactStatus, SlotStatus, Status, TrailCompliance};
pub use custody_domain::provenance::{
    Annotations, ExternalUrl, ExternalUrls, GitCommitInfo, RepoInfo,
};
pub use custody_domain::role::Role;
pub use custody_ledger::Actor;

/// Every error leaves the server in this shape.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub error: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<Value>,
}

/// A page of a longer list.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub page: u32,
    pub per_page: u32,
    pub total: u64,
}

// ---- Organisations, service accounts, API keys -------------------------

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreateOrgRequest {
    pub name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct OrgCreated {
    pub org: String,
    /// The new organisation's first admin key. Shown once.
    pub api_key: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WhoAmI {
    pub org: String,
    pub service_account: String,
    pub role: Role,
    pub server_admin: bool,
    /// The id of the key the request was made with.
    #[serde(default)]
    pub key_id: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreateServiceAccountRequest {
    pub name: String,
    pub role: Role,
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ServiceAccount {
    pub name: String,
    pub role: Role,
    #[serde(default)]
    pub description: Option<String>,
    /// Milliseconds since the Unix epoch.
    pub created_at: i64,
    /// The account created at first start, which may create organisations.
    #[serde(default)]
    pub server_admin: bool,
    /// When it was deleted (its keys were revoked then).
    #[serde(default)]
    pub deleted_at: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UpdateServiceAccountRequest {
    pub role: Role,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct CreateApiKeyRequest {
    #[serde(default)]
    pub description: Option<String>,
    /// Milliseconds since the Unix epoch. With neither this nor
    /// `expires_in_ms`, the key lives as long as the organisation's maximum
    /// allows (forever when it sets none).
    #[serde(default)]
    pub expires_at: Option<i64>,
    /// How long the key lives, in milliseconds from its creation.
    #[serde(default)]
    pub expires_in_ms: Option<i64>,
}

/// A key as it can be shown: never its secret.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct ApiKeyInfo {
    pub id: String,
    pub service_account: String,
    #[serde(default)]
    pub description: Option<String>,
    pub created_at: i64,
    #[serde(default)]
    pub expires_at: Option<i64>,
    #[serde(default)]
    pub revoked_at: Option<i64>,
    /// To the minute: a key's use is noted at most once a minute.
    #[serde(default)]
    pub last_used_at: Option<i64>,
    /// The key this one replaced.
    #[serde(default)]
    pub rotated_from: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct RotateApiKeyRequest {
    /// How long the old key keeps working, in milliseconds; 0 revokes it
    /// at once.
    #[serde(default)]
    pub grace_period_ms: i64,
    /// How long the new key lives, in milliseconds.
    #[serde(default)]
    pub expires_in_ms: Option<i64>,
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ApiKeyRotated {
    /// The new key; its secret is shown this once.
    pub new: ApiKeyCreated,
    /// The old key, with the time it stops working.
    pub old: ApiKeyInfo,
}

/// Settings an organisation's admins set.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct OrgSettings {
    /// The longest a new key may live, in milliseconds; keys asked for
    /// without an expiry get this one. None: no limit.
    #[serde(default)]
    pub max_key_lifetime_ms: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ApiKeyCreated {
    pub id: String,
    /// The secret. Only its hash is stored: it cannot be shown again.
    pub key: String,
    pub service_account: String,
    #[serde(default)]
    pub description: Option<String>,
    pub created_at: i64,
    #[serde(default)]
    pub expires_at: Option<i64>,
}

// ---- Flows ---------------------------------------------------------------

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct PutFlowRequest {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    /// Flow-template YAML (version 1). A new version is kept when it changes.
    #[serde(default)]
    pub template_yaml: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Flow {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub template_version: Option<i64>,
    #[serde(default)]
    pub template_yaml: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    /// Read by policy conditions as `flow.tags.<key>`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// When it was archived (ms since the epoch); it then takes nothing new.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archived_at: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Saved<T> {
    /// True when the request created the resource, false when it updated it.
    pub created: bool,
    #[serde(flatten)]
    pub value: T,
}

// ---- Trails --------------------------------------------------------------

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct BeginTrailRequest {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    /// Overrides the flow's template for this trail.
    #[serde(default)]
    pub template_yaml: Option<String>,
    #[serde(default)]
    pub git_commit_info: Option<GitCommitInfo>,
    #[serde(default)]
    pub repo_info: Option<RepoInfo>,
    #[serde(default)]
    /// Free-form JSON, kept as the text it was sent as.
    #[schema(value_type = Option<Object>)]
    pub user_data: Option<Box<RawValue>>,
    #[serde(default)]
    pub origin_url: Option<String>,
    #[serde(default)]
    pub external_urls: ExternalUrls,
}

/// A source repository, as trails' repo info names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Repo {
    pub name: String,
    pub url: String,
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// Flows with trails from it, by name.
    pub flows: Vec<String>,
    pub trails: u64,
    pub first_seen: i64,
    pub last_seen: i64,
}

/// A repository and its latest trails, newest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RepoDetail {
    #[serde(flatten)]
    pub repo: Repo,
    pub recent_trails: Vec<RepoTrail>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RepoTrail {
    pub flow: String,
    pub trail: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    pub created_at: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Trail {
    pub name: String,
    pub flow: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub template_yaml: Option<String>,
    #[serde(default)]
    pub git_commit_info: Option<GitCommitInfo>,
    #[serde(default)]
    pub repo_info: Option<RepoInfo>,
    #[serde(default)]
    /// Free-form JSON, kept as the text it was sent as.
    #[schema(value_type = Option<Object>)]
    pub user_data: Option<Box<RawValue>>,
    #[serde(default)]
    pub origin_url: Option<String>,
    #[serde(default)]
    pub external_urls: ExternalUrls,
    pub created_at: i64,
    pub updated_at: i64,
    /// Who began the trail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<Actor>,
    /// Who last changed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_by: Option<Actor>,
}

/// A trail with its evidence and its compliance, computed when read so
/// that evidence reported later is always reflected.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TrailView {
    pub name: String,
    pub flow: String,
    pub compliant: bool,
    pub status: Status,
    /// Latest attestation of each name (history is under `/attestations`).
    pub attestations: Vec<Attestation>,
    pub artifacts: Vec<TrailArtifact>,
    pub missing: Vec<String>,
    pub reasons: Vec<String>,
    pub compliance: TrailCompliance,
    pub trail: Trail,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TrailArtifact {
    /// Template name.
    pub name: String,
    #[serde(default)]
    pub fingerprint: Option<String>,
    pub compliant: bool,
    pub status: Status,
    #[serde(default)]
    pub artifact: Option<Artifact>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TrailSummary {
    pub name: String,
    pub flow: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub git_commit: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

// ---- Artifacts -------------------------------------------------------------

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct ReportArtifactRequest {
    pub fingerprint: String,
    /// The artifact's name in the template.
    pub name: String,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub git_commit: Option<String>,
    #[serde(default)]
    pub git_commit_info: Option<GitCommitInfo>,
    #[serde(default)]
    pub repo_info: Option<RepoInfo>,
    #[serde(default)]
    pub build_url: Option<String>,
    #[serde(default)]
    pub commit_url: Option<String>,
    #[serde(default)]
    pub external_urls: ExternalUrls,
    #[serde(default)]
    pub annotations: Annotations,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Artifact {
    pub fingerprint: String,
    /// The artifact's name in the template.
    pub name: String,
    pub display_name: String,
    pub flow: String,
    pub trail: String,
    #[serde(default)]
    pub git_commit: Option<String>,
    #[serde(default)]
    pub git_commit_info: Option<GitCommitInfo>,
    #[serde(default)]
    pub repo_info: Option<RepoInfo>,
    #[serde(default)]
    pub build_url: Option<String>,
    #[serde(default)]
    pub commit_url: Option<String>,
    #[serde(default)]
    pub external_urls: ExternalUrls,
    #[serde(default)]
    pub annotations: Annotations,
    pub created_at: i64,
    /// Who reported it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reported_by: Option<Actor>,
}

// ---- Attestations ------------------------------------------------------------

/// The JSON part of an attestation report (`data_json` in a multipart
/// upload, or the whole body when there are no attachments).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct AttestationInput {
    /// `NAME` or `ARTIFACT.NAME`.
    pub name: String,
    /// `generic` or `custom`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Binds the attestation to the trail's artifact with this fingerprint.
    #[serde(default)]
    pub fingerprint: Option<String>,
    /// For `generic`: the verdict (default true).
    #[serde(default)]
    pub compliant: Option<bool>,
    /// For `custom`: the type name, optionally `NAME@vN`.
    #[serde(default)]
    pub type_name: Option<String>,
    /// For `custom`: the data checked against the type, kept as the text
    /// it was sent as (it is parsed only in the sandbox that checks it).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub attestation_data: Option<Box<RawValue>>,
    /// For `junit`, `sarif`, `snyk`, `trivy`, `grype` and `sbom`: the summary
    /// parsed from the tool's report (the shapes of `custody-evidence`).
    /// Kept as text until its type is known, so that a large SBOM is read
    /// once, straight into its typed summary.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub results: Option<Box<serde_json::value::RawValue>>,
    /// For `decision`: the control it is made for (it must exist).
    #[serde(default)]
    pub control: Option<String>,
    /// For `sarif`: the lowest level that fails, `error` (default),
    /// `warning` or `note`.
    #[serde(default)]
    pub fail_on: Option<String>,
    /// For `snyk` (default `low`), `trivy` and `grype` (default `high`): the
    /// lowest severity that fails, `low`, `medium`, `high` or `critical`.
    #[serde(default)]
    pub severity_threshold: Option<String>,
    /// For `pull_request`: approvals needed from someone other than the
    /// author on the last commit (default: the template's `approvals` for
    /// this name, else 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_approvals: Option<u32>,
    /// For `override`: why the named attestation's compliance is changed
    /// (its new status is `compliant`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// For `pull_request`: whether an open pull request counts (default false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_open: Option<bool>,
    #[serde(default)]
    /// Free-form JSON, kept as the text it was sent as.
    #[schema(value_type = Option<Object>)]
    pub user_data: Option<Box<RawValue>>,
    #[serde(default)]
    pub annotations: Annotations,
    #[serde(default)]
    pub external_urls: ExternalUrls,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub origin_url: Option<String>,
    #[serde(default)]
    pub git_commit_info: Option<GitCommitInfo>,
    #[serde(default)]
    pub repo_info: Option<RepoInfo>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Attestation {
    pub id: String,
    pub name: String,
    /// `generic` or `custom:<type>`.
    #[serde(rename = "type")]
    pub kind: String,
    pub flow: String,
    pub trail: String,
    /// Template name of the artifact it is bound to.
    #[serde(default)]
    pub artifact: Option<String>,
    #[serde(default)]
    pub fingerprint: Option<String>,
    pub compliant: bool,
    /// Why it is non-compliant, when it is.
    #[serde(default)]
    pub reasons: Vec<String>,
    /// Type-specific data, e.g. `{type_name, type_version}` or a tool's
    /// summary.
    #[serde(default)]
    pub data: Value,
    /// For `custom`: the data that was checked against the type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub attestation_data: Option<Box<RawValue>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub user_data: Option<Box<RawValue>>,
    #[serde(default)]
    pub annotations: Annotations,
    #[serde(default)]
    pub external_urls: ExternalUrls,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub origin_url: Option<String>,
    #[serde(default)]
    pub git_commit_info: Option<GitCommitInfo>,
    #[serde(default)]
    pub repo_info: Option<RepoInfo>,
    #[serde(default)]
    pub evidence: Vec<Evidence>,
    pub created_at: i64,
    /// Who reported it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reported_by: Option<Actor>,
}

/// What an override says of the attestation it replaced: kept as the
/// override's `data.override`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OverrideNote {
    /// The id of the attestation overridden.
    pub of: String,
    pub reason: String,
    pub was_compliant: bool,
    #[serde(default)]
    pub was_reasons: Vec<String>,
}

impl Attestation {
    /// Its override note, when it is an override.
    pub fn override_note(&self) -> Option<OverrideNote> {
        serde_json::from_value(self.data.get("override")?.clone()).ok()
    }
}

/// A package listed by an SBOM attestation, and where that SBOM was
/// reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ComponentUse {
    pub name: String,
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub purl: Option<String>,
    #[serde(default)]
    pub licenses: Vec<String>,
    pub flow: String,
    pub trail: String,
    /// Template name of the artifact the SBOM describes, if bound to one.
    #[serde(default)]
    pub artifact: Option<String>,
    #[serde(default)]
    pub fingerprint: Option<String>,
    pub attestation_id: String,
    pub attestation_name: String,
    pub reported_at: i64,
}

/// A file in the evidence vault, attached to an attestation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Evidence {
    pub sha256: String,
    /// The file's path relative to what was attached.
    pub filename: String,
    pub size: u64,
}

// ---- Custom attestation types ----------------------------------------------

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct CreateAttestationTypeRequest {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    /// A JSON Schema the attestation data must satisfy.
    pub schema: Value,
    /// jq expressions; each must yield `true` for compliance.
    #[serde(default)]
    pub jq_rules: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AttestationType {
    pub name: String,
    pub version: i64,
    #[serde(default)]
    pub description: Option<String>,
    pub schema: Value,
    pub jq_rules: Vec<String>,
    pub created_at: i64,
}

// ---- Search -------------------------------------------------------------------

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SearchResult {
    pub query: String,
    pub artifacts: Vec<Artifact>,
    /// Where artifacts with a matching fingerprint ran, newest first; for
    /// a search by name, each matching artifact's latest run.
    #[serde(default)]
    pub runtime: Vec<RuntimeOccurrence>,
}

/// Health and readiness.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Health {
    pub status: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub checks: BTreeMap<String, String>,
    /// The server's version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}
