//! Evidence from the tools people already run, read the way they would
//! judge it, and safely on hostile input.
//!
//! Every parser takes bytes (`&[u8]` or a `BufRead`) and returns a typed
//! summary, or a [`ParseError`] with a line and column. Summaries are what
//! the server stores with an attestation; each has a `verdict` that turns it
//! into compliant / non-compliant with reasons. No I/O beyond reading the
//! bytes handed in; nothing is ever fetched.

mod error;
mod json;
mod limits;
mod verdict;
mod xml;

pub mod junit;

pub use error::{ParseError, Position};
pub use limits::Limits;
pub use verdict::Verdict;
pub mod grype;
pub mod jira;
pub mod judge;
pub mod pull_request;
pub mod sarif;
pub mod sbom;
pub mod scan;
pub mod snyk;
pub mod sonar;
pub mod trivy;
