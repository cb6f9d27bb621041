//! Snyk results, as SARIF (`snyk ... --sarif`) or Snyk's native JSON
//! (`snyk test --json`, `snyk container test --json`, `snyk iac test
//! --json`), told apart by content.
//!
//! SARIF uses Kosli's severity mapping: the result's `level`, else its
//! rule's `properties.problem.severity`; error/high/critical → high,
//! warning/medium → medium, note/info/low → low; `none` is not a finding.
//! Native JSON keeps Snyk's own four severities and counts the way Snyk
//! prints them ("found N issues, M vulnerable paths"): the totals are
//! unique issues, one per vulnerability id in each project (Snyk's
//! `uniqueCount`), which the severity threshold applies to; `paths` counts
//! every entry of `vulnerabilities`, one per dependency path that pulls the
//! issue in.

use std::collections::HashSet;

use serde::Deserialize;
use serde_json::Value;

use crate::error::ParseError;
use crate::json;
use crate::limits::Limits;
use crate::sarif::{Level, Log};
use crate::scan::{Finding, ScanSummary, Severity, SeverityCounts};

/// What the totals of Snyk's native JSON count.
pub const UNIQUE_ISSUES: &str = "unique issue(s) (one per Snyk id in each project)";

pub fn parse(bytes: &[u8], limits: Limits) -> Result<ScanSummary, ParseError> {
    let doc: Value = json::from_slice(bytes, limits)?;
    if doc.get("runs").is_some() && doc.get("version").is_some() {
        return parse_sarif(bytes, limits);
    }
    parse_native(doc)
}

fn parse_sarif(bytes: &[u8], limits: Limits) -> Result<ScanSummary, ParseError> {
    let log = Log::parse(bytes, limits)?;
    let mut s = ScanSummary::new("sarif", "snyk", None);
    for (run_no, run) in log.runs.iter().flatten().enumerate() {
        if s.tool_version.is_none() {
            s.tool_version = run.tool.driver.version().filter(|v| !v.is_empty());
        }
        s.tool = run.tool.driver.name.clone();
        s.target(run.tool.driver.name.clone());
        if let Some(why) = run.incomplete() {
            s.incomplete.push(why);
        }
        for (i, r) in run.results.iter().flatten().enumerate() {
            if !r.counts() || r.suppressed() {
                continue;
            }
            let rule = run.rule_of(r);
            let severity = match r.level {
                Some(Level::Error) => Some(Severity::High),
                Some(Level::Warning) => Some(Severity::Medium),
                Some(Level::Note) => Some(Severity::Low),
                Some(Level::None) => None,
                None => {
                    let Some(rule) = rule else {
                        return Err(ParseError::new(format!(
                            "run {} result {}: no level and no rule '{}' to take a severity from",
                            run_no + 1,
                            i + 1,
                            r.rule_id().unwrap_or("")
                        )));
                    };
                    let sev = rule
                        .properties
                        .as_ref()
                        .and_then(|p| p.pointer("/problem/severity"))
                        .and_then(Value::as_str)
                        .ok_or_else(|| {
                            ParseError::new(format!(
                                "run {} result {}: no level, and rule '{}' has no properties.problem.severity",
                                run_no + 1,
                                i + 1,
                                r.rule_id().unwrap_or("")
                            ))
                        })?;
                    match sev.to_ascii_lowercase().as_str() {
                        "error" | "high" | "critical" => Some(Severity::High),
                        "warning" | "medium" => Some(Severity::Medium),
                        "note" | "info" | "low" => Some(Severity::Low),
                        _ => None,
                    }
                }
            };
            let Some(severity) = severity else { continue };
            s.add(Finding {
                id: r.rule_id().unwrap_or("(no rule)").to_string(),
                severity,
                category: category_of_tool(&run.tool.driver.name).to_string(),
                package: None,
                version: None,
                fixed_in: None,
                title: r.message(),
                location: r.location(),
                target: None,
            });
        }
    }
    s.trim();
    Ok(s)
}

fn category_of_tool(name: &str) -> &'static str {
    let n = name.to_ascii_lowercase();
    if n.contains("code") {
        "code"
    } else if n.contains("iac") {
        "iac"
    } else if n.contains("container") {
        "container"
    } else {
        "open-source"
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Project {
    #[serde(default)]
    ok: Option<bool>,
    #[serde(default)]
    error: Option<Value>,
    #[serde(default)]
    vulnerabilities: Option<Vec<Vuln>>,
    #[serde(default)]
    applications: Vec<Project>,
    #[serde(default)]
    infrastructure_as_code_issues: Option<Vec<IacIssue>>,
    #[serde(default)]
    project_name: Option<String>,
    #[serde(default)]
    display_target_file: Option<String>,
    #[serde(default)]
    target_file: Option<String>,
    #[serde(default)]
    path: Option<String>,
}

impl Project {
    fn name(&self) -> String {
        self.display_target_file
            .clone()
            .or_else(|| self.target_file.clone())
            .or_else(|| self.project_name.clone())
            .or_else(|| self.path.clone())
            .unwrap_or_else(|| "(project)".to_string())
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Vuln {
    id: String,
    #[serde(default)]
    title: String,
    severity: String,
    #[serde(default)]
    package_name: Option<String>,
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    fixed_in: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct IacIssue {
    #[serde(default)]
    id: String,
    #[serde(default)]
    public_id: Option<String>,
    #[serde(default)]
    title: String,
    severity: String,
    #[serde(default)]
    line_number: Option<i64>,
}

fn parse_native(doc: Value) -> Result<ScanSummary, ParseError> {
    let projects: Vec<Project> = match doc {
        Value::Array(items) => items
            .into_iter()
            .enumerate()
            .map(|(i, v)| {
                serde_json::from_value(v).map_err(|e| {
                    ParseError::new(format!("project {} of the Snyk JSON: {e}", i + 1))
                })
            })
            .collect::<Result<_, _>>()?,
        v @ Value::Object(_) => vec![
            serde_json::from_value(v).map_err(|e| ParseError::new(format!("Snyk JSON: {e}")))?,
        ],
        _ => {
            return Err(ParseError::new(
                "not a Snyk report: expected a JSON object or array",
            ));
        }
    };
    let mut s = ScanSummary::new("json", "snyk", None);
    s.counted = Some(UNIQUE_ISSUES.to_string());
    s.paths = Some(SeverityCounts::default());
    if projects.is_empty() {
        s.incomplete
            .push("the Snyk report lists no project: nothing was scanned".to_string());
    }
    for p in &projects {
        add_project(&mut s, p)?;
    }
    s.trim();
    Ok(s)
}

fn add_project(s: &mut ScanSummary, p: &Project) -> Result<(), ParseError> {
    let name = p.name();
    if let Some(e) = &p.error {
        let text = e
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| e.to_string());
        s.target(name.clone());
        s.incomplete
            .push(format!("Snyk could not test {name}: {text}"));
        return Ok(());
    }
    if p.vulnerabilities.is_none() && p.infrastructure_as_code_issues.is_none() {
        if p.ok == Some(true) {
            s.target(name);
            return Ok(());
        }
        return Err(ParseError::new(
            "not a Snyk report: no \"vulnerabilities\", \"infrastructureAsCodeIssues\", \"runs\" or \"error\"",
        ));
    }
    s.target(name.clone());
    // Snyk lists a vulnerability once per path that pulls it in, and
    // counts an issue once per id (whatever versions it is found in).
    let mut seen = HashSet::new();
    for v in p.vulnerabilities.iter().flatten() {
        let severity = severity(&v.severity, &v.id)?;
        if let Some(paths) = s.paths.as_mut() {
            paths.add(severity);
        }
        if !seen.insert(v.id.as_str()) {
            continue;
        }
        s.add(Finding {
            id: v.id.clone(),
            severity,
            category: "vulnerability".to_string(),
            package: v.package_name.clone(),
            version: v.version.clone(),
            fixed_in: v.fixed_in.first().cloned(),
            title: v.title.clone(),
            location: None,
            target: Some(name.clone()),
        });
    }
    for i in p.infrastructure_as_code_issues.iter().flatten() {
        let id = i.public_id.clone().unwrap_or_else(|| i.id.clone());
        let severity = severity(&i.severity, &id)?;
        s.add(Finding {
            id,
            severity,
            category: "iac".to_string(),
            package: None,
            version: None,
            fixed_in: None,
            title: i.title.clone(),
            location: i.line_number.map(|l| format!("{name}:{l}")),
            target: Some(name.clone()),
        });
    }
    for app in &p.applications {
        add_project(s, app)?;
    }
    Ok(())
}

fn severity(s: &str, id: &str) -> Result<Severity, ParseError> {
    Severity::from_scanner(s)
        .ok_or_else(|| ParseError::new(format!("{id}: unknown severity \"{s}\"")))
}
