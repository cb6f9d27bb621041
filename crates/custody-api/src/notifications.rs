//! Notification actions, the events they deliver, and delivery records.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What makes an action fire.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Trigger {
    /// The environment became non-compliant.
    NonCompliant,
    /// It is compliant again after being non-compliant.
    CompliantAgain,
    /// A workload without provenance started.
    UnknownArtifact,
    ArtifactStarted,
    ArtifactStopped,
    /// No report for the action's number of reporting intervals.
    ReporterSilent,
}

impl Trigger {
    pub const ALL: [Trigger; 6] = [
        Trigger::NonCompliant,
        Trigger::CompliantAgain,
        Trigger::UnknownArtifact,
        Trigger::ArtifactStarted,
        Trigger::ArtifactStopped,
        Trigger::ReporterSilent,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::NonCompliant => "non-compliant",
            Trigger::CompliantAgain => "compliant-again",
            Trigger::UnknownArtifact => "unknown-artifact",
            Trigger::ArtifactStarted => "artifact-started",
            Trigger::ArtifactStopped => "artifact-stopped",
            Trigger::ReporterSilent => "reporter-silent",
        }
    }

    pub fn parse(s: &str) -> Option<Trigger> {
        Trigger::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TargetKind {
    /// A JSON POST, signed when the action has a secret.
    Webhook,
    /// A Slack incoming webhook: a message in blocks.
    Slack,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Target {
    #[serde(rename = "type")]
    pub kind: TargetKind,
    pub url: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PutActionRequest {
    pub environments: Vec<String>,
    pub triggers: Vec<Trigger>,
    pub target: Target,
    /// HMAC-SHA256 key for `X-Custody-Signature` (webhooks).
    #[serde(default)]
    pub secret: Option<String>,
    /// For `reporter-silent`: how many of its reporting intervals a
    /// reporter may miss (default 3).
    #[serde(default)]
    pub silent_intervals: Option<u32>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Action {
    pub name: String,
    pub environments: Vec<String>,
    pub triggers: Vec<Trigger>,
    pub target: Target,
    /// Whether bodies are signed (the secret itself is never shown).
    pub signed: bool,
    pub silent_intervals: u32,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A running artifact an event is about.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EventArtifact {
    pub name: String,
    #[serde(default)]
    pub fingerprint: Option<String>,
    /// Instances before and after the change.
    pub was: u32,
    pub now: u32,
    /// The trails that reported its fingerprint; empty when unknown.
    pub provenance: Vec<EventProvenance>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EventProvenance {
    pub flow: String,
    pub trail: String,
    pub compliant: bool,
}

/// What happened, as stored in the outbox and sent (with links added).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Event {
    /// Unique per delivery target: the idempotency key.
    pub id: String,
    pub trigger: Trigger,
    pub org: String,
    pub environment: String,
    /// The snapshot concerned, when there is one.
    #[serde(default)]
    pub snapshot: Option<u64>,
    /// When it happened (ms since the epoch).
    pub timestamp: i64,
    pub description: String,
    #[serde(default)]
    pub artifacts: Vec<EventArtifact>,
    /// For compliance changes: the new status and its reasons.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compliance: Option<EventCompliance>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EventCompliance {
    pub status: crate::ComplianceStatus,
    pub reasons: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryState {
    Pending,
    Delivered,
    /// Retries ran out (24 hours by default).
    Failed,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(DeliveryState::Pending),
            "delivered" => Some(DeliveryState::Delivered),
            "failed" => Some(DeliveryState::Failed),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DeliveryAttempt {
    pub attempt: u32,
    pub at: i64,
    pub duration_ms: i64,
    #[serde(default)]
    pub status_code: Option<u16>,
    #[serde(default)]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Delivery {
    pub event_id: String,
    pub action: String,
    pub trigger: Trigger,
    pub environment: String,
    pub state: DeliveryState,
    pub created_at: i64,
    #[serde(default)]
    pub next_attempt_at: Option<i64>,
    #[serde(default)]
    pub delivered_at: Option<i64>,
    pub attempts: Vec<DeliveryAttempt>,
}
