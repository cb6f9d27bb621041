//! One entry point from a tool's summary, as JSON, to a verdict: what the
//! server runs on what a client sends, and `custody parse` on a local file.

use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::jira::JiraSummary;
use crate::junit::JunitSummary;
use crate::pull_request::{PrRules, PullRequestSummary};
use crate::sarif::{Level, SarifSummary};
use crate::sbom::{ComponentList, SbomSummary};
use crate::scan::{ScanSummary, Severity};
use crate::sonar::SonarSummary;
use crate::verdict::Verdict;

/// The attestation types built on tools' reports.
pub const KINDS: &[&str] = &[
    "junit",
    "sarif",
    "snyk",
    "trivy",
    "grype",
    "sbom",
    "pull_request",
    "jira",
    "sonar",
];

/// What the user asked to fail on; `None` takes the type's default.
#[derive(Debug, Clone, Default)]
pub struct Thresholds {
    /// SARIF: `error` (default), `warning` or `note`.
    pub fail_on: Option<String>,
    /// Snyk (default `low`), Trivy and Grype (default `high`).
    pub severity_threshold: Option<String>,
    /// Pull requests: approvals needed by someone other than the author
    /// (default 0).
    pub require_approvals: Option<u32>,
    /// Pull requests: whether an open one counts (default no).
    pub allow_open: Option<bool>,
}

#[derive(Debug)]
pub struct Judged {
    pub verdict: Verdict,
    /// What is stored as the attestation's data.
    pub data: Value,
    /// An SBOM's components, stored apart from `data`, as checked text.
    pub components: Option<ComponentList>,
    /// The SHA-256 of the components' canonical JSON, hex.
    pub components_sha256: Option<String>,
}

/// An SBOM summary with its components left as text.
#[derive(serde::Deserialize)]
struct SbomHead {
    format: String,
    encoding: String,
    spec_version: String,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    subject: Option<String>,
    component_count: u64,
    components: Box<serde_json::value::RawValue>,
}

/// Checks a summary's shape, recounts what can be recounted, and judges it.
/// Errors name what is wrong, for a 400.
pub fn judge(kind: &str, results: &str, t: &Thresholds) -> Result<Judged, String> {
    let plain = |verdict: Verdict, data: Value| Judged {
        verdict,
        data,
        components: None,
        components_sha256: None,
    };
    match kind {
        "junit" => {
            let mut s: JunitSummary = summary(kind, results)?;
            s.recount()?;
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
            s.check()?;
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
            s.check(kind)?;
            Ok(plain(
                s.verdict(threshold),
                json!({ "results": s, "severity_threshold": threshold }),
            ))
        }
        "sbom" => {
            let s: SbomHead = summary(kind, results)?;
            let mut hash = crate::sbom::Sha256Writer::default();
            let components = ComponentList::check(s.components, &mut hash)?;
            if s.component_count != components.len() {
                return Err(format!(
                    "sbom results: component_count is {} but {} components are listed",
                    s.component_count,
                    components.len()
                ));
            }
            let verdict = SbomSummary::default().verdict();
            Ok(Judged {
                verdict,
                data: json!({
                    "format": s.format,
                    "encoding": s.encoding,
                    "spec_version": s.spec_version,
                    "id": s.id,
                    "subject": s.subject,
                    "component_count": s.component_count,
                }),
                components: Some(components),
                components_sha256: Some(hash.hex()),
            })
        }
        "pull_request" => {
            let s: PullRequestSummary = summary(kind, results)?;
            s.check()?;
            let rules = PrRules {
                require_approvals: t.require_approvals.unwrap_or(0),
                allow_open: t.allow_open.unwrap_or(false),
            };
            Ok(plain(
                s.verdict(&rules),
                json!({ "results": s, "rules": rules }),
            ))
        }
        "jira" => {
            let s: JiraSummary = summary(kind, results)?;
            s.check()?;
            Ok(plain(s.verdict(), json!({ "results": s })))
        }
        "sonar" => {
            let s: SonarSummary = summary(kind, results)?;
            s.check()?;
            Ok(plain(s.verdict(), json!({ "results": s })))
        }
        other => Err(format!("'{other}' is not a tool attestation type")),
    }
}

fn summary<T: DeserializeOwned>(kind: &str, results: &str) -> Result<T, String> {
    serde_json::from_str(results).map_err(|e| format!("invalid {kind} results: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::Limits;

    fn trivy() -> String {
        let report = r#"{"SchemaVersion": 2, "ArtifactName": "app:1", "Results": [{"Target": "app:1 (debian 12)",
            "Vulnerabilities": [{"VulnerabilityID": "CVE-2024-1", "PkgName": "openssl", "InstalledVersion": "3.0.1",
            "Severity": "CRITICAL", "Title": "bad"}]}]}"#;
        let s = crate::trivy::parse(report.as_bytes(), Limits::default()).unwrap();
        serde_json::to_string(&s).unwrap()
    }

    fn junit() -> String {
        let xml = r#"<testsuites><testsuite name="a"><testcase name="t1"/><testcase name="t2"><failure message="x"/></testcase></testsuite>
            <testsuite name="b"><testcase name="t3"/></testsuite></testsuites>"#;
        let mut p = crate::junit::JunitParser::new(Limits::default());
        p.add_file("r.xml", xml.as_bytes()).unwrap();
        serde_json::to_string(&p.finish()).unwrap()
    }

    #[test]
    fn what_the_parsers_write_is_accepted() {
        let t = Thresholds::default();
        assert!(!judge("trivy", &trivy(), &t).unwrap().verdict.compliant);
        assert!(!judge("junit", &junit(), &t).unwrap().verdict.compliant);
    }

    #[test]
    fn counts_that_wrap_around_are_refused() {
        let t = Thresholds::default();
        // A critical finding hidden by a count that overflows the total.
        let mut v: Value = serde_json::from_str(&trivy()).unwrap();
        v["totals"]["high"] = json!(u64::MAX);
        let e = judge("trivy", &v.to_string(), &t).unwrap_err();
        assert!(e.contains("64 bits"), "{e}");
        // Two suites of 2^63 failures each sum to 2^64, which wraps to 0.
        let mut v: Value = serde_json::from_str(&junit()).unwrap();
        for s in v["suites"].as_array_mut().unwrap() {
            s["tests"] = json!(1u64 << 63);
            s["passed"] = json!(0);
            s["failed"] = json!(1u64 << 63);
        }
        let e = judge("junit", &v.to_string(), &t).unwrap_err();
        assert!(e.contains("64 bits"), "{e}");
    }

    #[test]
    fn listed_findings_must_agree_with_the_totals() {
        let t = Thresholds::default();
        // A critical finding listed, but the totals say there is none.
        let mut v: Value = serde_json::from_str(&trivy()).unwrap();
        v["totals"]["critical"] = json!(0);
        v["totals"]["low"] = json!(1);
        v["targets"][0]["counts"] = v["totals"].clone();
        let e = judge("trivy", &v.to_string(), &t).unwrap_err();
        assert!(e.contains("critical findings are listed"), "{e}");
        // Failures listed with suites that count none.
        let mut v: Value = serde_json::from_str(&junit()).unwrap();
        v["suites"][0]["failed"] = json!(0);
        v["suites"][0]["passed"] = json!(2);
        let e = judge("junit", &v.to_string(), &t).unwrap_err();
        assert!(e.contains("failing cases listed"), "{e}");
        // A suite whose parts do not add up.
        let mut v: Value = serde_json::from_str(&junit()).unwrap();
        v["suites"][1]["tests"] = json!(5);
        let e = judge("junit", &v.to_string(), &t).unwrap_err();
        assert!(e.contains("suite 'b' counts 5 tests"), "{e}");
    }
}
