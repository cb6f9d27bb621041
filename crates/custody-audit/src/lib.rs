//! Audit bundles: an environment's runtime history over a window, with
//! the provenance of what ran, as ledger entries each proven included in
//! one signed (and witnessed) checkpoint — checkable offline, by anyone
//! holding the log's public key.
//!
//! [`format`] says what a bundle holds, [`history`] replays an
//! environment's entries (complete snapshot numbering, the running set
//! each snapshot's digest commits to, coverage, provenance), [`verify`]
//! checks a bundle in one streaming pass, [`write`] frames one.
//!
//! No I/O beyond the readers and writers handed in.

pub mod format;
pub mod history;
pub mod verify;
pub mod write;

pub use format::{Claim, Line, Manifest, RanArtifact, Running, Start};
pub use history::{Findings, Gap, History, Problem};
pub use verify::{Report, Trust, Unusable, verify};
pub use write::BundleWriter;

#[cfg(test)]
mod tests;
