//! Environments, reports of what runs, snapshots, their differences and
//! the change log.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub use custody_runtime::{ChangeKind, EnvironmentKind, Instance, ObservedArtifact, Report};

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutEnvironmentRequest {
    #[serde(rename = "type")]
    pub kind: EnvironmentKind,
    #[serde(default)]
    pub description: Option<String>,
    /// For a logical environment: the physical environments it joins.
    #[serde(default)]
    pub included_environments: Option<Vec<String>>,
}

/// `join` / `leave`: the physical environment to add to or take out of a
/// logical one.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MembershipRequest {
    pub physical_env_name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RenameRequest {
    pub new_name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Environment {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: EnvironmentKind,
    #[serde(default)]
    pub description: Option<String>,
    /// For a logical environment: its physical environments.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub included_environments: Vec<String>,
    pub archived: bool,
    /// The latest snapshot's number; 0 before the first report.
    pub latest_snapshot: u64,
    #[serde(default)]
    pub last_reported_at: Option<i64>,
    #[serde(default)]
    pub last_changed_at: Option<i64>,
    /// The last report: who sent it, what it could not read, what runs.
    #[serde(default)]
    pub last_report: Option<LastReport>,
    /// As of its latest evaluation; UNKNOWN while no policy judges it.
    #[serde(default = "unknown")]
    pub compliance: crate::ComplianceStatus,
    pub created_at: i64,
}

fn unknown() -> crate::ComplianceStatus {
    crate::ComplianceStatus::Unknown
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LastReport {
    pub at: i64,
    #[serde(default)]
    pub reporter: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// What it could not observe: when not empty, the environment is not
    /// observed now.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unobserved: Vec<custody_runtime::Unobserved>,
    /// Running in the latest snapshot.
    pub artifacts: u64,
    pub instances: u64,
}

/// An environment with how well it has been watched.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EnvironmentView {
    #[serde(flatten)]
    pub environment: Environment,
    pub coverage: Coverage,
}

/// When the environment was observed: stretches during which reports came
/// within their reporters' intervals, and the gaps between them. What ran
/// in a gap is not known.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct Coverage {
    /// Oldest first; the last may still be growing.
    pub observed: Vec<Observed>,
    pub gaps: Vec<Gap>,
    /// Whether a report is due: the last came longer ago than its
    /// reporter's interval allows.
    pub overdue: bool,
    /// Older stretches not listed (only the latest ones are).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub earlier_stretches: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Observed {
    pub from: i64,
    pub to: i64,
    pub reports: u64,
    /// The reporters' interval in seconds; 0 for one-shot reports.
    pub interval_s: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Gap {
    pub from: i64,
    /// Absent while the gap is still open.
    #[serde(default)]
    pub to: Option<i64>,
    /// Reports that came in the gap but could not observe everything, and
    /// what they missed (the latest ones).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub partial: Vec<PartialReport>,
}

/// A report that could not observe the whole environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PartialReport {
    pub at: i64,
    #[serde(default)]
    pub reporter: Option<String>,
    pub unobserved: Vec<custody_runtime::Unobserved>,
}

/// The answer to a report.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ReportOutcome {
    pub environment: String,
    /// Whether the report changed what runs (and so made a snapshot).
    pub changed: bool,
    /// The environment's latest snapshot after the report.
    pub snapshot: u64,
    pub changes: Vec<ArtifactChange>,
    /// Artifacts running that no flow knows (by fingerprint).
    pub unknown: Vec<String>,
    pub artifacts: u64,
    pub instances: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ArtifactChange {
    pub name: String,
    #[serde(default)]
    pub fingerprint: Option<String>,
    pub kind: ChangeKind,
    pub was: u32,
    pub now: u32,
    pub description: String,
}

/// Where a running artifact comes from: a flow's trail that reported its
/// fingerprint, and how compliant that trail and artifact are now.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Provenance {
    pub flow: String,
    pub trail: String,
    /// The artifact's name in the template.
    pub artifact: String,
    #[serde(default)]
    pub git_commit: Option<String>,
    #[serde(default)]
    pub commit_url: Option<String>,
    #[serde(default)]
    pub build_url: Option<String>,
    /// The artifact's compliance in its trail.
    pub compliant: bool,
    pub trail_compliant: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SnapshotArtifact {
    pub name: String,
    #[serde(default)]
    pub fingerprint: Option<String>,
    pub instance_count: u32,
    /// As reported when this artifact started running with this count.
    pub instances: Vec<Instance>,
    /// The first snapshot of its current run, and when that was.
    pub since_snapshot: u64,
    pub running_since: i64,
    /// Every trail that reported the fingerprint, newest first.
    pub provenance: Vec<Provenance>,
    /// No flow knows the fingerprint.
    pub unknown: bool,
    /// How this artifact changed in this snapshot, if it did.
    #[serde(default)]
    pub change: Option<ChangeKind>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Snapshot {
    pub environment: String,
    #[serde(rename = "type")]
    pub kind: EnvironmentKind,
    /// From 1; 0 when nothing has been reported yet.
    pub index: u64,
    /// When the snapshot was taken (ms); 0 when there is none.
    pub timestamp: i64,
    /// When the next snapshot replaced it; absent for the latest.
    #[serde(default)]
    pub replaced_at: Option<i64>,
    pub artifacts: Vec<SnapshotArtifact>,
    /// Artifacts that stopped in this snapshot.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stopped: Vec<ArtifactChange>,
    pub unknown: u64,
    /// For a logical environment: which snapshot of each member it joins.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<MemberSnapshot>,
    /// The latest judgement of this snapshot by the environment's
    /// policies; absent when none judged it (compliance UNKNOWN).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compliance: Option<crate::EnvironmentCompliance>,
    /// Who sent the report that made this snapshot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reported_by: Option<crate::Actor>,
    /// What that report could not observe: this snapshot is then only what
    /// it saw.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unobserved: Vec<custody_runtime::Unobserved>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MemberSnapshot {
    pub environment: String,
    pub index: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SnapshotSummary {
    pub index: u64,
    pub timestamp: i64,
    /// When the next snapshot replaced it; absent for the latest.
    #[serde(default)]
    pub replaced_at: Option<i64>,
    pub artifacts: u64,
    pub instances: u64,
    pub changes: u64,
    /// Who sent the report that made this snapshot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reported_by: Option<crate::Actor>,
}

/// How two snapshots differ, possibly of different environments.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SnapshotDiff {
    pub first: SnapshotId,
    pub second: SnapshotId,
    pub only_in_first: Vec<DiffEntry>,
    pub only_in_second: Vec<DiffEntry>,
    /// Running in both, with different instance counts.
    pub scaled: Vec<DiffEntry>,
    /// Running in both with the same count; listed only when asked for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unchanged: Vec<DiffEntry>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SnapshotId {
    pub environment: String,
    pub index: u64,
    pub timestamp: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DiffEntry {
    pub name: String,
    #[serde(default)]
    pub fingerprint: Option<String>,
    pub first_instances: u32,
    pub second_instances: u32,
    /// The flows that know the fingerprint.
    pub flows: Vec<String>,
}

/// One change of what runs, for the environment log.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EnvironmentEvent {
    pub environment: String,
    pub snapshot: u64,
    pub timestamp: i64,
    pub name: String,
    #[serde(default)]
    pub fingerprint: Option<String>,
    pub kind: ChangeKind,
    pub was: u32,
    pub now: u32,
    pub description: String,
    /// The instances as they were when the artifact started (or was
    /// rescaled), or as they last ran when it stopped.
    pub instances: Vec<Instance>,
    /// The flows that know the fingerprint.
    pub flows: Vec<String>,
    /// Who sent the report that recorded the change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reported_by: Option<crate::Actor>,
}

/// Where an artifact ran: an environment and the stretch of time.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RuntimeOccurrence {
    pub environment: String,
    pub name: String,
    pub fingerprint: String,
    pub instances: u32,
    pub from: i64,
    /// Absent while it still runs.
    #[serde(default)]
    pub to: Option<i64>,
    pub first_snapshot: u64,
    /// Absent while it still runs.
    #[serde(default)]
    pub last_snapshot: Option<u64>,
}

/// A snapshot's place on a timeline.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SnapshotTick {
    pub environment: String,
    pub index: u64,
    pub timestamp: i64,
    /// How many artifacts it started, stopped or rescaled.
    pub changes: u64,
}

/// What ran in an environment over a window of time.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Timeline {
    pub environment: String,
    pub from: i64,
    pub to: i64,
    /// Runs that overlap the window, by when they began.
    pub runs: Vec<RuntimeOccurrence>,
    /// Snapshots taken in the window.
    pub snapshots: Vec<SnapshotTick>,
    /// More runs, or snapshots, fall in the window than are listed:
    /// choose a shorter window to see them all.
    #[serde(default)]
    pub truncated: bool,
    /// Fingerprints of listed runs that no flow knows.
    pub unknown: Vec<String>,
    /// Fingerprints of listed runs whose provenance is not compliant now
    /// (every trail that reported them is non-compliant for them).
    pub non_compliant: Vec<String>,
    /// When the environment was not observed within the window.
    pub gaps: Vec<Gap>,
}
