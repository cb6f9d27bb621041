//! What runs: environments, reports of running workloads, the running set
//! a report amounts to and how it changed, snapshot expressions, and the
//! configuration files reporters read.
//!
//! Architecture invariant: no I/O. Reporters (in the CLI) gather what runs
//! and build a [`Report`]; the server folds it into a [`RunningSet`] and
//! compares [`Counts`]; both parse expressions and files with the
//! functions here, so the rules are tested once.

pub mod config_files;
pub mod coverage;
pub mod dora;
pub mod expression;
pub mod filter;
pub mod kind;
pub mod report;
pub mod running_set;

pub use expression::{At, Range, SnapshotRef, parse_time, validate_environment_name};
pub use filter::{FilterLabels, NameFilter};
pub use kind::EnvironmentKind;
pub use report::{Instance, ObservedArtifact, Report, Unobserved};
pub use running_set::{ArtifactKey, Change, ChangeKind, Counts, RunningSet};
