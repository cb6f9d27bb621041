//! Trivy's native JSON report (`trivy image|fs|repo|config --format json`):
//! `Results[]` with `Vulnerabilities`, `Misconfigurations` (only `FAIL`
//! counts) and `Secrets`.
//!
//! A report without `Results` scanned nothing: Trivy omits the key when it
//! found nothing it could scan, so that is not a clean bill of health. A
//! result with a target and no findings is clean for that target.

use serde::Deserialize;

use crate::error::ParseError;
use crate::json;
use crate::limits::Limits;
use crate::scan::{Finding, ScanSummary, Severity};

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Report {
    schema_version: Option<i64>,
    artifact_name: Option<String>,
    #[serde(default)]
    results: Option<Vec<TrivyResult>>,
    #[serde(default)]
    trivy: Option<TrivyMeta>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TrivyMeta {
    version: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TrivyResult {
    #[serde(default)]
    target: String,
    #[serde(default)]
    vulnerabilities: Option<Vec<Vulnerability>>,
    #[serde(default)]
    misconfigurations: Option<Vec<Misconfiguration>>,
    #[serde(default)]
    secrets: Option<Vec<Secret>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Vulnerability {
    #[serde(rename = "VulnerabilityID")]
    vulnerability_id: String,
    #[serde(default)]
    pkg_name: Option<String>,
    #[serde(default)]
    installed_version: Option<String>,
    #[serde(default)]
    fixed_version: Option<String>,
    #[serde(default)]
    severity: String,
    #[serde(default)]
    title: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Misconfiguration {
    #[serde(rename = "ID", default)]
    id: String,
    #[serde(rename = "AVDID", default)]
    avd_id: Option<String>,
    #[serde(default)]
    title: String,
    #[serde(default)]
    severity: String,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    cause_metadata: Option<CauseMetadata>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CauseMetadata {
    start_line: Option<u64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Secret {
    #[serde(rename = "RuleID", default)]
    rule_id: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    severity: String,
    #[serde(default)]
    start_line: Option<u64>,
}

pub fn parse(bytes: &[u8], limits: Limits) -> Result<ScanSummary, ParseError> {
    if json::first_byte(bytes) != Some(b'{') {
        return Err(ParseError::new(
            "not a Trivy JSON report: expected a JSON object (use --format json)",
        ));
    }
    let report: Report = json::from_slice(bytes, limits)?;
    if report.schema_version.is_none() && report.artifact_name.is_none() && report.results.is_none()
    {
        return Err(ParseError::new(
            "not a Trivy JSON report: no SchemaVersion, ArtifactName or Results",
        ));
    }
    let version = report.trivy.and_then(|t| t.version);
    let mut s = ScanSummary::new("json", "trivy", version);
    let artifact = report.artifact_name.unwrap_or_default();
    let results = report.results.unwrap_or_default();
    if results.is_empty() {
        s.incomplete.push(format!(
            "Trivy scanned nothing{}: the report has no Results",
            if artifact.is_empty() {
                String::new()
            } else {
                format!(" in {artifact}")
            }
        ));
    }
    for r in results {
        s.target(r.target.clone());
        for v in r.vulnerabilities.unwrap_or_default() {
            let severity = severity(&v.severity, &v.vulnerability_id)?;
            s.add(Finding {
                id: v.vulnerability_id,
                severity,
                category: "vulnerability".to_string(),
                package: v.pkg_name,
                version: v.installed_version,
                fixed_in: v.fixed_version.filter(|f| !f.is_empty()),
                title: v.title.unwrap_or_default(),
                location: None,
                target: Some(r.target.clone()),
            });
        }
        for m in r.misconfigurations.unwrap_or_default() {
            // PASS and EXCEPTION are checks that held, or were waived.
            if m.status.as_deref().is_some_and(|st| st != "FAIL") {
                continue;
            }
            let id = m.avd_id.filter(|a| !a.is_empty()).unwrap_or(m.id);
            let severity = severity(&m.severity, &id)?;
            let line = m.cause_metadata.and_then(|c| c.start_line);
            s.add(Finding {
                id,
                severity,
                category: "misconfiguration".to_string(),
                package: None,
                version: None,
                fixed_in: None,
                title: m.title,
                location: line.map(|l| format!("{}:{l}", r.target)),
                target: Some(r.target.clone()),
            });
        }
        for sec in r.secrets.unwrap_or_default() {
            let severity = severity(&sec.severity, &sec.rule_id)?;
            s.add(Finding {
                id: sec.rule_id,
                severity,
                category: "secret".to_string(),
                package: None,
                version: None,
                fixed_in: None,
                title: sec.title,
                location: sec.start_line.map(|l| format!("{}:{l}", r.target)),
                target: Some(r.target.clone()),
            });
        }
    }
    s.trim();
    Ok(s)
}

fn severity(s: &str, id: &str) -> Result<Severity, ParseError> {
    Severity::from_scanner(s)
        .ok_or_else(|| ParseError::new(format!("{id}: unknown severity \"{s}\"")))
}
