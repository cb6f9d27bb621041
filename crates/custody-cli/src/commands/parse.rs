//! `custody parse`: what Custody makes of a report, without a server — to
//! check a pipeline's output before wiring it up, or to see why it fails.

use std::process::ExitCode;

use custody_evidence::judge::{Thresholds, judge};
use serde_json::{Value, json};

use crate::cli::{Output, ParseCmd};
use crate::reports;

pub fn run(out: Output, cmd: ParseCmd) -> anyhow::Result<ExitCode> {
    let (kind, report, thresholds) = match cmd {
        ParseCmd::Junit { results_dir } => (
            "junit",
            reports::junit(&results_dir)?,
            Thresholds::default(),
        ),
        ParseCmd::Sarif {
            scan_results,
            fail_on,
        } => (
            "sarif",
            reports::single("sarif", &scan_results, "--scan-results")?,
            Thresholds {
                fail_on: Some(fail_on),
                ..Thresholds::default()
            },
        ),
        ParseCmd::Snyk(a) => severity("snyk", a)?,
        ParseCmd::Trivy(a) => severity("trivy", a)?,
        ParseCmd::Grype(a) => severity("grype", a)?,
        ParseCmd::Sbom { file } => (
            "sbom",
            reports::single("sbom", &file, "--file")?,
            Thresholds::default(),
        ),
    };
    let j = judge(kind, report.results.get(), &thresholds).map_err(anyhow::Error::msg)?;
    match out {
        Output::Json => {
            let mut v = json!({
                "type": kind,
                "compliant": j.verdict.compliant,
                "reasons": j.verdict.reasons,
                "data": j.data,
            });
            if let Some(list) = &j.components {
                v["components"] = serde_json::to_value(list.to_vec().map_err(anyhow::Error::msg)?)?;
            }
            crate::output::json(&v)?;
        }
        Output::Markdown => return Err(crate::output::markdown_not_here()),
        Output::Table => {
            println!("{kind}: {}", headline(kind, &j.data));
            println!(
                "{}",
                if j.verdict.compliant {
                    "compliant"
                } else {
                    "non-compliant"
                }
            );
            for r in &j.verdict.reasons {
                println!("  {r}");
            }
        }
    }
    // As `assert`: a pipeline can gate on the report before sending it.
    Ok(if j.verdict.compliant {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(crate::fail::NON_COMPLIANT)
    })
}

fn severity(
    kind: &'static str,
    a: crate::cli::ParseSeverityArgs,
) -> anyhow::Result<(&'static str, reports::Report, Thresholds)> {
    Ok((
        kind,
        reports::single(kind, &a.scan_results, "--scan-results")?,
        Thresholds {
            severity_threshold: a.severity_threshold,
            ..Thresholds::default()
        },
    ))
}

/// One line of counts, from the stored data.
fn headline(kind: &str, d: &Value) -> String {
    let n = |v: &Value| v.as_u64().unwrap_or(0);
    let t = &d["results"]["totals"];
    match kind {
        "junit" => format!(
            "{} tests: {} passed ({} flaky), {} failed, {} errored, {} skipped",
            n(&t["tests"]),
            n(&t["passed"]),
            n(&t["flaky"]),
            n(&t["failed"]),
            n(&t["errored"]),
            n(&t["skipped"])
        ),
        "sarif" => format!(
            "{} error, {} warning, {} note",
            n(&t["error"]),
            n(&t["warning"]),
            n(&t["note"])
        ),
        "sbom" => format!(
            "{} {} {} ({}), {} components",
            d["format"].as_str().unwrap_or(""),
            d["spec_version"].as_str().unwrap_or(""),
            d["encoding"].as_str().unwrap_or(""),
            d["subject"].as_str().unwrap_or("no subject"),
            n(&d["component_count"])
        ),
        _ => {
            let counts = |t: &Value| {
                format!(
                    "{} critical, {} high, {} medium, {} low",
                    n(&t["critical"]),
                    n(&t["high"]),
                    n(&t["medium"]),
                    n(&t["low"])
                )
            };
            // Snyk's JSON counts issues and paths, as Snyk prints them.
            let r = &d["results"];
            match (r["counted"].as_str(), r.get("paths")) {
                (Some(what), Some(p)) => {
                    format!("{} {what}; vulnerable paths: {}", counts(t), counts(p))
                }
                _ => counts(t),
            }
        }
    }
}
