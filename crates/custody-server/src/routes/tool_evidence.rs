//! Verdicts for the attestation types built on tools' reports (`junit`,
//! `sarif`, `snyk`, `trivy`, `grype`, `sbom`). The client parses the report
//! with `custody-evidence` and sends its summary; here the summary's shape
//! is checked, the totals are re-derived from the parts where they can be,
//! and the verdict is drawn with the threshold asked for.

use custody_api::AttestationInput;
use custody_evidence::junit::JunitSummary;
use custody_evidence::sarif::{Level, SarifSummary};
use custody_evidence::sbom::{Component, SbomSummary};
use custody_evidence::scan::{ScanSummary, Severity};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::error::{ApiError, ApiResult};

pub struct ToolVerdict {
    pub compliant: bool,
    pub reasons: Vec<String>,
    pub data: Value,
    pub components: Vec<Component>,
}

pub const KINDS: &[&str] = &["junit", "sarif", "snyk", "trivy", "grype", "sbom"];

pub fn evaluate(kind: &str, input: &mut AttestationInput) -> ApiResult<ToolVerdict> {
    let results = input
        .results
        .take()
        .ok_or_else(|| ApiError::bad_request(format!("a {kind} attestation needs results")))?;
    match kind {
        "junit" => {
            let mut s: JunitSummary = summary(kind, results)?;
            s.recount();
            let v = s.verdict();
            Ok(ToolVerdict {
                compliant: v.compliant,
                reasons: v.reasons,
                data: json!({ "results": s }),
                components: vec![],
            })
        }
        "sarif" => {
            let fail_on = match input.fail_on.as_deref() {
                None => Level::Error,
                Some(l) => Level::parse(l)
                    .filter(|l| *l != Level::None)
                    .ok_or_else(|| {
                        ApiError::bad_request(format!(
                            "invalid fail_on '{l}': expected error, warning or note"
                        ))
                    })?,
            };
            let s: SarifSummary = summary(kind, results)?;
            let v = s.verdict(fail_on);
            Ok(ToolVerdict {
                compliant: v.compliant,
                reasons: v.reasons,
                data: json!({ "results": s, "fail_on": fail_on }),
                components: vec![],
            })
        }
        "snyk" | "trivy" | "grype" => {
            let default = if kind == "snyk" {
                Severity::Low
            } else {
                Severity::High
            };
            let threshold = match input.severity_threshold.as_deref() {
                None => default,
                Some(t) => t.parse::<Severity>().map_err(ApiError::bad_request)?,
            };
            let s: ScanSummary = summary(kind, results)?;
            let counted: u64 = s.targets.iter().map(|t| t.counts.total()).sum();
            if !s.targets.is_empty() && counted != s.totals.total() {
                return Err(ApiError::bad_request(format!(
                    "{kind} results: totals ({}) do not add up to the targets' counts ({counted})",
                    s.totals.total()
                )));
            }
            let v = s.verdict(threshold);
            Ok(ToolVerdict {
                compliant: v.compliant,
                reasons: v.reasons,
                data: json!({ "results": s, "severity_threshold": threshold }),
                components: vec![],
            })
        }
        "sbom" => {
            let mut s: SbomSummary = summary(kind, results)?;
            if s.component_count != s.components.len() as u64 {
                return Err(ApiError::bad_request(format!(
                    "sbom results: component_count is {} but {} components are listed",
                    s.component_count,
                    s.components.len()
                )));
            }
            let components = std::mem::take(&mut s.components);
            // The ledger records the attestation, not the rows: this digest
            // binds the stored components to it.
            let canonical = custody_ledger::canonical_json(&components)
                .map_err(|e| ApiError::bad_request(format!("sbom components: {e}")))?;
            let digest = hex::encode(Sha256::digest(canonical.as_bytes()));
            let v = s.verdict();
            Ok(ToolVerdict {
                compliant: v.compliant,
                reasons: v.reasons,
                data: json!({
                    "format": s.format,
                    "encoding": s.encoding,
                    "spec_version": s.spec_version,
                    "id": s.id,
                    "subject": s.subject,
                    "component_count": s.component_count,
                    "components_sha256": digest,
                }),
                components,
            })
        }
        other => Err(ApiError::bad_request(format!(
            "'{other}' is not a tool attestation type"
        ))),
    }
}

fn summary<T: DeserializeOwned>(kind: &str, results: Value) -> ApiResult<T> {
    serde_json::from_value(results)
        .map_err(|e| ApiError::bad_request(format!("invalid {kind} results: {e}")))
}
