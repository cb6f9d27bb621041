//! Grype's native JSON report (`grype IMAGE -o json`): `matches[]`, each a
//! vulnerability found in a package.
//!
//! `matches: []` next to the `source` that was scanned is Grype saying
//! "clean"; a report without `matches` says nothing and is not clean.

use serde::Deserialize;

use crate::error::ParseError;
use crate::json;
use crate::limits::Limits;
use crate::scan::{Finding, ScanSummary, Severity};

#[derive(Deserialize)]
struct Report {
    #[serde(default)]
    matches: Option<Vec<Match>>,
    #[serde(default)]
    source: Option<Source>,
    #[serde(default)]
    descriptor: Option<Descriptor>,
}

#[derive(Deserialize)]
struct Source {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    target: serde_json::Value,
}

#[derive(Deserialize)]
struct Descriptor {
    #[serde(default)]
    name: String,
    version: Option<String>,
}

#[derive(Deserialize)]
struct Match {
    vulnerability: Vulnerability,
    artifact: Artifact,
}

#[derive(Deserialize)]
struct Vulnerability {
    id: String,
    #[serde(default)]
    severity: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    fix: Option<Fix>,
}

#[derive(Deserialize)]
struct Fix {
    #[serde(default)]
    versions: Vec<String>,
}

#[derive(Deserialize)]
struct Artifact {
    name: String,
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    purl: Option<String>,
}

pub fn parse(bytes: &[u8], limits: Limits) -> Result<ScanSummary, ParseError> {
    if json::first_byte(bytes) != Some(b'{') {
        return Err(ParseError::new(
            "not a Grype JSON report: expected a JSON object (use -o json)",
        ));
    }
    let report: Report = json::from_slice(bytes, limits)?;
    let descriptor = report.descriptor;
    if report.matches.is_none() && report.source.is_none() && descriptor.is_none() {
        return Err(ParseError::new(
            "not a Grype JSON report: no matches, source or descriptor",
        ));
    }
    if let Some(d) = &descriptor
        && !d.name.is_empty()
        && d.name != "grype"
    {
        return Err(ParseError::new(format!(
            "not a Grype report: written by \"{}\"",
            d.name
        )));
    }
    let mut s = ScanSummary::new("json", "grype", descriptor.and_then(|d| d.version));
    let target = report
        .source
        .as_ref()
        .map(source_name)
        .unwrap_or_else(|| "(unknown source)".to_string());
    s.target(target.clone());
    match report.matches {
        None => s.incomplete.push(format!(
            "Grype reported nothing for {target}: the report has no matches"
        )),
        Some(_) if report.source.is_none() => s.incomplete.push(
            "Grype's report does not say what was scanned (no source): not a clean scan"
                .to_string(),
        ),
        Some(matches) => {
            for m in matches {
                let severity =
                    Severity::from_scanner(&m.vulnerability.severity).ok_or_else(|| {
                        ParseError::new(format!(
                            "{}: unknown severity \"{}\"",
                            m.vulnerability.id, m.vulnerability.severity
                        ))
                    })?;
                s.add(Finding {
                    id: m.vulnerability.id,
                    severity,
                    category: "vulnerability".to_string(),
                    package: Some(m.artifact.name),
                    version: m.artifact.version,
                    fixed_in: m
                        .vulnerability
                        .fix
                        .and_then(|f| f.versions.into_iter().next()),
                    title: m.vulnerability.description.unwrap_or_default(),
                    location: m.artifact.purl,
                    target: Some(target.clone()),
                });
            }
        }
    }
    s.trim();
    Ok(s)
}

fn source_name(src: &Source) -> String {
    let t = &src.target;
    let name = t
        .as_str()
        .map(str::to_string)
        .or_else(|| {
            t.get("userInput")
                .and_then(|v| v.as_str())
                .map(str::to_string)
        })
        .or_else(|| t.get("path").and_then(|v| v.as_str()).map(str::to_string))
        .unwrap_or_default();
    if name.is_empty() {
        src.kind.clone()
    } else {
        name
    }
}
