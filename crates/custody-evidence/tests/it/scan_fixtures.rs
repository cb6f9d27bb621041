//! Every fixture under `fixtures/{sarif,snyk,trivy,grype}` is parsed and
//! checked against the `NAME.expected.json` next to it: counts, the verdict
//! at each threshold, or the error.

use std::path::{Path, PathBuf};

use custody_evidence::scan::{ScanSummary, Severity};
use custody_evidence::{Limits, ParseError, sarif};
use serde_json::Value;

fn fixtures(kind: &str) -> Vec<(PathBuf, Value)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(kind);
    let mut out: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| !p.to_string_lossy().ends_with(".expected.json"))
        .map(|p| {
            let stem = p.file_stem().unwrap().to_string_lossy().into_owned();
            let expected = p.with_file_name(format!("{stem}.expected.json"));
            let v = serde_json::from_slice(
                &std::fs::read(&expected)
                    .unwrap_or_else(|_| panic!("{} has no {}", p.display(), expected.display())),
            )
            .unwrap();
            (p, v)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(out.len() >= 4, "too few {kind} fixtures");
    out
}

fn check_error(got: Result<(), ParseError>, expected: &Value) -> Result<(), String> {
    let Some(want) = expected.get("error").and_then(Value::as_str) else {
        return got.map_err(|e| format!("unexpected error: {e}"));
    };
    let e = match got {
        Ok(()) => return Err(format!("expected an error mentioning '{want}'")),
        Err(e) => e,
    };
    if !e.message.contains(want) {
        return Err(format!("error '{e}' does not mention '{want}'"));
    }
    if let Some(line) = expected.get("line").and_then(Value::as_u64)
        && e.position.map(|p| p.line) != Some(line)
    {
        return Err(format!("error '{e}' is not at line {line}"));
    }
    Ok(())
}

fn run_all(kind: &str, check: impl Fn(&[u8], &Value) -> Result<(), String>) {
    let mut failures = vec![];
    for (path, expected) in fixtures(kind) {
        let bytes = std::fs::read(&path).unwrap();
        if let Err(e) = check(&bytes, &expected) {
            failures.push(format!(
                "{}: {e}",
                path.file_name().unwrap().to_string_lossy()
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn sarif_fixtures() {
    run_all("sarif", |bytes, expected| {
        let parsed = sarif::parse(bytes, Limits::default());
        let s = match parsed {
            Err(e) => return check_error(Err(e), expected),
            Ok(s) => {
                check_error(Ok(()), expected)?;
                s
            }
        };
        let totals = serde_json::to_value(&s.totals).unwrap();
        if totals != expected["totals"] {
            return Err(format!("totals {totals}, expected {}", expected["totals"]));
        }
        for (key, got) in [
            (
                "suppressed",
                s.runs.iter().map(|r| r.suppressed).sum::<u64>(),
            ),
            ("not_failing", s.runs.iter().map(|r| r.not_failing).sum()),
        ] {
            if let Some(want) = expected.get(key).and_then(Value::as_u64)
                && want != got
            {
                return Err(format!("{key}: {got}, expected {want}"));
            }
        }
        for (level, want) in expected["verdicts"].as_object().unwrap() {
            let v = s.verdict(sarif::Level::parse(level).unwrap());
            if Some(v.compliant) != want.as_bool() {
                return Err(format!("--fail-on {level}: {v:?}, expected {want}"));
            }
        }
        if let Some(reason) = expected.get("reason").and_then(Value::as_str) {
            let v = s.verdict(sarif::Level::Note);
            if !v.reasons.iter().any(|r| r.contains(reason)) {
                return Err(format!("no reason mentions '{reason}': {:?}", v.reasons));
            }
        }
        if let Some(tool) = expected.get("tool").and_then(Value::as_str)
            && s.runs[0].tool != tool
        {
            return Err(format!("tool {}", s.runs[0].tool));
        }
        if let Some(version) = expected.get("version").and_then(Value::as_str)
            && s.runs[0].version.as_deref() != Some(version)
        {
            return Err(format!("version {:?}", s.runs[0].version));
        }
        Ok(())
    });
}

fn check_scan(
    parsed: Result<ScanSummary, ParseError>,
    expected: &Value,
    default: Severity,
) -> Result<(), String> {
    let s = match parsed {
        Err(e) => return check_error(Err(e), expected),
        Ok(s) => {
            check_error(Ok(()), expected)?;
            s
        }
    };
    if let Some(format) = expected.get("format").and_then(Value::as_str)
        && s.format != format
    {
        return Err(format!("format {}, expected {format}", s.format));
    }
    if let Some(n) = expected.get("targets").and_then(Value::as_u64)
        && s.targets.len() as u64 != n
    {
        return Err(format!("{} targets, expected {n}", s.targets.len()));
    }
    let totals = serde_json::to_value(&s.totals).unwrap();
    for (k, want) in expected["totals"].as_object().unwrap() {
        if totals[k] != *want {
            return Err(format!("{k}: {}, expected {want}", totals[k]));
        }
    }
    for (t, want) in expected["verdicts"].as_object().unwrap() {
        let v = s.verdict(t.parse().unwrap());
        if Some(v.compliant) != want.as_bool() {
            return Err(format!("--severity-threshold {t}: {v:?}, expected {want}"));
        }
    }
    if let Some(want) = expected.get("default").and_then(Value::as_bool)
        && s.verdict(default).compliant != want
    {
        return Err(format!("default threshold: expected compliant={want}"));
    }
    if let Some(reason) = expected.get("reason").and_then(Value::as_str) {
        let v = s.verdict(Severity::Low);
        if !v.reasons.iter().any(|r| r.contains(reason)) {
            return Err(format!("no reason mentions '{reason}': {:?}", v.reasons));
        }
    }
    if let Some(want) = expected.get("paths").and_then(Value::as_object) {
        let paths = serde_json::to_value(&s.paths).unwrap();
        for (k, want) in want {
            if paths[k] != *want {
                return Err(format!("paths {k}: {}, expected {want}", paths[k]));
            }
        }
    }
    if let Some(cats) = expected.get("categories").and_then(Value::as_object) {
        for (c, n) in cats {
            let got = s.by_category.get(c).map(|x| x.total());
            if got != n.as_u64() {
                return Err(format!("category {c}: {got:?}, expected {n}"));
            }
        }
    }
    Ok(())
}

#[test]
fn snyk_fixtures() {
    run_all("snyk", |bytes, expected| {
        let parsed = custody_evidence::snyk::parse(bytes, Limits::default());
        // The totals are the issues Snyk itself counts: its `uniqueCount`.
        if expected.get("unique_count").and_then(Value::as_bool) == Some(true) {
            let doc: Value = serde_json::from_slice(bytes).unwrap();
            let want = doc["uniqueCount"].as_u64().unwrap();
            let got = parsed.as_ref().map(|s| s.totals.total()).unwrap_or(0);
            if got != want {
                return Err(format!("{got} issues, Snyk's uniqueCount is {want}"));
            }
        }
        check_scan(parsed, expected, Severity::Low)
    });
}

#[test]
fn trivy_fixtures() {
    run_all("trivy", |bytes, expected| {
        check_scan(
            custody_evidence::trivy::parse(bytes, Limits::default()),
            expected,
            Severity::High,
        )
    });
}

#[test]
fn grype_fixtures() {
    run_all("grype", |bytes, expected| {
        check_scan(
            custody_evidence::grype::parse(bytes, Limits::default()),
            expected,
            Severity::High,
        )
    });
}

#[test]
fn findings_are_listed_worst_first_and_bounded() {
    let mut results = String::new();
    for i in 0..2500 {
        let level = if i == 2400 { "error" } else { "note" };
        if i > 0 {
            results.push(',');
        }
        results.push_str(&format!(
            r#"{{"ruleId":"r{i}","level":"{level}","message":{{"text":"m"}}}}"#
        ));
    }
    let doc = format!(
        r#"{{"version":"2.1.0","runs":[{{"tool":{{"driver":{{"name":"t"}}}},"results":[{results}]}}]}}"#
    );
    let s = sarif::parse(doc.as_bytes(), Limits::default()).unwrap();
    assert_eq!(s.findings.len(), 1000);
    assert_eq!(s.findings_not_listed, 1500);
    assert_eq!(s.findings[0].rule, "r2400");
    assert_eq!(s.totals.note, 2499);
}

/// SARIF written by a real scanner: Bandit maps HIGH to `error` and LOW to
/// `note`.
#[test]
fn bandit_sarif() {
    let found = std::process::Command::new("sh")
        .args(["-c", "command -v bandit"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var_os("CUSTODY_REQUIRE_TOOLS").is_none(),
            "bandit is not installed (scripts/test installs it)"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("app.py"),
        "import subprocess, hashlib\n\ndef run(cmd):\n    subprocess.call(cmd, shell=True)\n\ndef digest(x):\n    assert x\n    return hashlib.md5(x).hexdigest()\n",
    )
    .unwrap();
    let out = dir.path().join("bandit.sarif");
    let status = std::process::Command::new("bandit")
        .current_dir(dir.path())
        .args(["-q", "-f", "sarif", "-o"])
        .arg(&out)
        .arg("app.py")
        .status()
        .unwrap();
    assert_eq!(
        status.code(),
        Some(1),
        "bandit exits 1 when it finds issues"
    );
    let s = sarif::parse(&std::fs::read(&out).unwrap(), Limits::default()).unwrap();
    assert_eq!(s.runs[0].tool, "Bandit");
    assert_eq!((s.totals.error, s.totals.note), (2, 2), "{:?}", s.totals);
    assert!(s.by_rule.contains_key("B602"));
    assert!(!s.verdict(sarif::Level::Error).compliant);
    let loc = s.findings.iter().find(|f| f.rule == "B602").unwrap();
    assert_eq!(loc.location.as_deref(), Some("app.py:4"));
}
