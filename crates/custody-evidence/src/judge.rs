//! One entry point from a tool's summary, as JSON, to a verdict: what the
//! server runs on what a client sends, and `custody parse` on a local file.

use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::junit::JunitSummary;
use crate::sarif::{Level, SarifSummary};
use crate::sbom::{Component, SbomSummary};
use crate::scan::{ScanSummary, Severity};
use crate::verdict::Verdict;

/// The attestation types built on tools' reports.
pub const KINDS: &[&str] = &["junit", "sarif", "snyk", "trivy", "grype", "sbom"];

/// What the user asked to fail on; `None` takes the type's default.
#[derive(Debug, Clone, Default)]
pub struct Thresholds {
    /// SARIF: `error` (default), `warning` or `note`.
    pub fail_on: Option<String>,
    /// Snyk (default `low`), Trivy and Grype (default `high`).
    pub severity_threshold: Option<String>,
}

#[derive(Debug)]
pub struct Judged {
    pub verdict: Verdict,
    /// What is stored as the attestation's data.
    pub data: Value,
    /// An SBOM's components, stored apart from `data`.
    pub components: Vec<Component>,
}

/// Checks a summary's shape, recounts what can be recounted, and judges it.
/// Errors name what is wrong, for a 400.
pub fn judge(kind: &str, results: &str, t: &Thresholds) -> Result<Judged, String> {
    let plain = |verdict: Verdict, data: Value| Judged {
        verdict,
        data,
        components: vec![],
    };
    match kind {
        "junit" => {
            let mut s: JunitSummary = summary(kind, results)?;
            s.recount();
            Ok(plain(s.verdict(), json!({ "results": s })))
        }
        "sarif" => {
            let fail_on = match t.fail_on.as_deref() {
                None => Level::Error,
                Some(l) => Level::parse(l)
                    .filter(|l| *l != Level::None)
                    .ok_or_else(|| {
                        format!("invalid fail_on '{l}': expected error, warning or note")
                    })?,
            };
            let s: SarifSummary = summary(kind, results)?;
            Ok(plain(
                s.verdict(fail_on),
                json!({ "results": s, "fail_on": fail_on }),
            ))
        }
        "snyk" | "trivy" | "grype" => {
            let default = if kind == "snyk" {
                Severity::Low
            } else {
                Severity::High
            };
            let threshold = match t.severity_threshold.as_deref() {
                None => default,
                Some(x) => x.parse::<Severity>()?,
            };
            let s: ScanSummary = summary(kind, results)?;
            let counted: u64 = s.targets.iter().map(|t| t.counts.total()).sum();
            if !s.targets.is_empty() && counted != s.totals.total() {
                return Err(format!(
                    "{kind} results: totals ({}) do not add up to the targets' counts ({counted})",
                    s.totals.total()
                ));
            }
            Ok(plain(
                s.verdict(threshold),
                json!({ "results": s, "severity_threshold": threshold }),
            ))
        }
        "sbom" => {
            let mut s: SbomSummary = summary(kind, results)?;
            if s.component_count != s.components.len() as u64 {
                return Err(format!(
                    "sbom results: component_count is {} but {} components are listed",
                    s.component_count,
                    s.components.len()
                ));
            }
            let components = std::mem::take(&mut s.components);
            Ok(Judged {
                verdict: s.verdict(),
                data: json!({
                    "format": s.format,
                    "encoding": s.encoding,
                    "spec_version": s.spec_version,
                    "id": s.id,
                    "subject": s.subject,
                    "component_count": s.component_count,
                }),
                components,
            })
        }
        other => Err(format!("'{other}' is not a tool attestation type")),
    }
}

fn summary<T: DeserializeOwned>(kind: &str, results: &str) -> Result<T, String> {
    serde_json::from_str(results).map_err(|e| format!("invalid {kind} results: {e}"))
}
