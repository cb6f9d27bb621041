//! The integration tests of custody-evidence, one binary so the crate and its
//! dependencies are linked once rather than once per file.

mod canonical;
mod jira_keys;
mod junit_fixtures;
mod sbom_fixtures;
mod scan_fixtures;
