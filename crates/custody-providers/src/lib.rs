//! Clients of the change-process providers: the code hosts (pull request
//! reviews), Jira (issues) and Sonar (quality gates). Each asks the
//! provider's REST API what it documents and returns the summary
//! `custody-evidence` judges; nothing here decides compliance.
//!
//! I/O lives here so `custody-evidence` stays pure; every client goes
//! through `http::Api`, which waits out rate limits and names the provider,
//! the request and the answer in every error.

pub mod azure;
pub mod bitbucket;
pub mod github;
pub mod gitlab;
pub mod http;
pub mod jira;
pub mod sonar;

pub use http::{Api, ProviderError};
