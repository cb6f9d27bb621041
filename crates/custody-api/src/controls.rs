//! Policies, controls, the allowlist, environment compliance and asserts.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub use custody_policy::{ArtifactVerdict, RuleResult};

/// What a policy is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, Default)]
#[serde(rename_all = "lowercase")]
pub enum PolicyKind {
    /// Kosli's policy v1 YAML.
    #[default]
    Kosli,
    /// Rego (`package policy`, an `allow` rule, optional `violations`).
    Rego,
}

impl PolicyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyKind::Kosli => "kosli",
            PolicyKind::Rego => "rego",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "kosli" => Some(PolicyKind::Kosli),
            "rego" => Some(PolicyKind::Rego),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreatePolicyRequest {
    /// The policy's text.
    pub content: String,
    #[serde(rename = "type", default)]
    pub kind: PolicyKind,
    #[serde(default)]
    pub description: Option<String>,
}

/// One version of a policy. Versions are immutable: creating a policy again
/// with other content adds a version.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Policy {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: PolicyKind,
    pub version: i64,
    pub content: String,
    pub sha256: String,
    #[serde(default)]
    pub description: Option<String>,
    pub created_at: i64,
    /// Environments it is attached to.
    #[serde(default)]
    pub environments: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PolicyAttachmentRequest {
    pub policy_names: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, Default)]
pub struct PutControlRequest {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub links: Vec<String>,
    #[serde(default)]
    pub tags: std::collections::BTreeMap<String, String>,
}

/// A control at one version; every edit makes a version.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Control {
    pub identifier: String,
    pub version: i64,
    #[serde(flatten)]
    pub fields: PutControlRequest,
    pub archived: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AllowRequest {
    pub fingerprint: String,
    #[serde(default)]
    pub artifact_name: Option<String>,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AllowlistEntry {
    pub environment: String,
    pub fingerprint: String,
    #[serde(default)]
    pub artifact_name: Option<String>,
    pub reason: String,
    pub created_by: String,
    pub created_at: i64,
}

/// An environment's compliance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum ComplianceStatus {
    #[serde(rename = "COMPLIANT")]
    Compliant,
    #[serde(rename = "NON-COMPLIANT")]
    NonCompliant,
    /// No policy is attached: nothing says what may run.
    #[serde(rename = "UNKNOWN")]
    Unknown,
}

impl ComplianceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ComplianceStatus::Compliant => "COMPLIANT",
            ComplianceStatus::NonCompliant => "NON-COMPLIANT",
            ComplianceStatus::Unknown => "UNKNOWN",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "COMPLIANT" => Some(ComplianceStatus::Compliant),
            "NON-COMPLIANT" => Some(ComplianceStatus::NonCompliant),
            "UNKNOWN" => Some(ComplianceStatus::Unknown),
            _ => None,
        }
    }
}

/// One policy version applied to a set of artifacts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PolicyEvaluation {
    pub policy: String,
    pub version: i64,
    /// SHA-256 of the policy's content: which text was applied.
    pub sha256: String,
    pub compliant: bool,
    /// Every artifact, or with `failed_only`, the non-compliant ones.
    pub artifacts: Vec<ArtifactVerdict>,
}

/// An evaluation of an environment, as recorded.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EnvironmentCompliance {
    pub environment: String,
    pub status: ComplianceStatus,
    /// Which evaluation of the environment this is, from 1.
    pub evaluation: i64,
    /// The snapshot it judged.
    pub snapshot: u64,
    pub evaluated_at: i64,
    /// Why it was evaluated: `snapshot`, `policy-attached`,
    /// `policy-detached`, `policy-updated`, `allowlist`, `attestation`,
    /// `artifact`, `flow-tags`, `template`.
    pub cause: String,
    pub policies: Vec<PolicyEvaluation>,
    /// What it read, by identity.
    #[serde(default)]
    pub inputs: EvaluationInputs,
}

/// The identities of what an evaluation read.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, Default)]
pub struct EvaluationInputs {
    pub policies: Vec<PolicyRef>,
    /// Fingerprints the environment allowlisted.
    pub allowlisted: Vec<String>,
    /// For each running fingerprint with provenance: its trails, as
    /// `FLOW/TRAIL`.
    pub trails: std::collections::BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PolicyRef {
    pub name: String,
    pub version: i64,
    pub sha256: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, Default)]
pub struct AssertArtifactRequest {
    pub fingerprint: String,
    /// Judge by the policies attached to this environment (and its
    /// allowlist).
    #[serde(default)]
    pub environment: Option<String>,
    /// Judge by these policies.
    #[serde(default)]
    pub policies: Vec<String>,
    /// Judge by the artifact's trails in this flow.
    #[serde(default)]
    pub flow: Option<String>,
}

/// The compliance of a trail that reported the artifact.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TrailVerdict {
    pub flow: String,
    pub trail: String,
    pub compliant: bool,
    pub status: custody_domain::compliance::Status,
    #[serde(default)]
    pub reasons: Vec<String>,
    /// The trail in the API, at the server's public URL (`--public-url`).
    pub url: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AssertResult {
    pub compliant: bool,
    /// `flow`, `environment` or `policy`.
    pub scope: String,
    pub fingerprint: String,
    #[serde(default)]
    pub environment: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policy_evaluations: Vec<PolicyEvaluation>,
    pub flows: Vec<TrailVerdict>,
    /// Why it is not compliant, in order.
    #[serde(default)]
    pub reasons: Vec<String>,
}
