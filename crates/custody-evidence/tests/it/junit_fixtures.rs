//! Every `fixtures/junit/NAME.xml` is read alone and checked against
//! `NAME.expected.json` next to it: counts and verdict, or the error.

use std::path::Path;

use custody_evidence::Limits;
use custody_evidence::junit::{JunitParser, JunitSummary};
use serde_json::Value;

fn parse(path: &Path) -> Result<JunitSummary, custody_evidence::ParseError> {
    let bytes = std::fs::read(path).unwrap();
    let mut p = JunitParser::new(Limits::default());
    p.add_file(&path.display().to_string(), &bytes[..])?;
    Ok(p.finish())
}

fn display(c: &custody_evidence::junit::Case) -> String {
    if c.classname.is_empty() {
        c.name.clone()
    } else {
        format!("{}.{}", c.classname, c.name)
    }
}

fn check(xml: &Path, expected: &Value) -> Result<(), String> {
    let got = parse(xml);
    if let Some(err) = expected.get("error") {
        let e = match got {
            Ok(s) => return Err(format!("expected an error, parsed {:?}", s.totals)),
            Err(e) => e,
        };
        let want = err.as_str().unwrap();
        if !e.message.contains(want) {
            return Err(format!("error '{e}' does not mention '{want}'"));
        }
        if let Some(line) = expected.get("line") {
            let at = e.position.map(|p| p.line);
            if at != line.as_u64() {
                return Err(format!("error '{e}' is not at line {line}"));
            }
        }
        return Ok(());
    }
    let s = got.map_err(|e| format!("unexpected error: {e}"))?;
    let t = &s.totals;
    for (key, value) in [
        ("tests", t.tests),
        ("passed", t.passed),
        ("failed", t.failed),
        ("errored", t.errored),
        ("skipped", t.skipped),
        ("flaky", t.flaky),
    ] {
        if expected[key].as_u64() != Some(value) {
            return Err(format!("{key}: expected {}, got {value}", expected[key]));
        }
    }
    let v = s.verdict();
    if expected["compliant"].as_bool() != Some(v.compliant) {
        return Err(format!("verdict {v:?}, expected {}", expected["compliant"]));
    }
    if let Some(reason) = expected.get("reason").and_then(Value::as_str)
        && !v.reasons.iter().any(|r| r.contains(reason))
    {
        return Err(format!("no reason mentions '{reason}': {:?}", v.reasons));
    }
    if let Some(names) = expected.get("failures") {
        let got: Vec<String> = s.failures.iter().map(display).collect();
        let want: Vec<String> = serde_json::from_value(names.clone()).unwrap();
        if got != want {
            return Err(format!("failures {got:?}, expected {want:?}"));
        }
    }
    if let Some(attempts) = expected.get("attempts").and_then(Value::as_object) {
        for (name, n) in attempts {
            let c = s.failures.iter().find(|c| display(c) == *name);
            if c.and_then(|c| c.attempts).map(u64::from) != n.as_u64() {
                return Err(format!("{name}: expected {n} attempts"));
            }
        }
    }
    if let Some(m) = expected.get("message").and_then(Value::as_str)
        && s.failures.first().map(|c| c.message.as_str()) != Some(m)
    {
        return Err(format!("first failure message is not '{m}'"));
    }
    if let Some(n) = expected.get("suites").and_then(Value::as_u64)
        && s.suites.len() as u64 != n
    {
        return Err(format!("{} suites, expected {n}", s.suites.len()));
    }
    if let Some(d) = expected.get("duration").and_then(Value::as_f64)
        && (t.duration - d).abs() > 1e-9
    {
        return Err(format!("duration {}, expected {d}", t.duration));
    }
    Ok(())
}

#[test]
fn fixtures_match_their_expectations() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/junit");
    let mut failures = vec![];
    let mut checked = 0;
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "xml"))
        .collect();
    entries.sort();
    for xml in entries {
        let expected_path = xml.with_extension("expected.json");
        let expected: Value =
            serde_json::from_slice(&std::fs::read(&expected_path).unwrap_or_else(|_| {
                panic!("{} has no {}", xml.display(), expected_path.display())
            }))
            .unwrap();
        checked += 1;
        if let Err(e) = check(&xml, &expected) {
            failures.push(format!(
                "{}: {e}",
                xml.file_name().unwrap().to_string_lossy()
            ));
        }
    }
    assert!(checked >= 15, "only {checked} fixtures found");
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn files_add_up_and_a_bad_file_leaves_nothing_behind() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/junit");
    let mut p = JunitParser::new(Limits::default());
    let read = |name: &str| std::fs::read(dir.join(name)).unwrap();
    p.add_file("header-lies.xml", &read("header-lies.xml")[..])
        .unwrap();
    assert!(
        p.add_file("truncated.xml", &read("truncated.xml")[..])
            .is_err()
    );
    p.add_file("nested-suites.xml", &read("nested-suites.xml")[..])
        .unwrap();
    let s = p.finish();
    assert_eq!(s.totals.tests, 3 + 5);
    assert_eq!(s.files.len(), 2);
    assert!(s.suites.iter().all(|x| x.file != "truncated.xml"));
}

#[test]
fn messages_are_cut_to_64_kib() {
    let long = "x".repeat(200_000);
    let doc = format!(
        "<testsuite name=\"s\"><testcase name=\"c\"><failure message=\"{long}\">{long}</failure></testcase></testsuite>"
    );
    let mut p = JunitParser::new(Limits::default());
    p.add_file("big.xml", doc.as_bytes()).unwrap();
    let s = p.finish();
    assert_eq!(s.failures[0].message.len(), 64 << 10);
    assert_eq!(s.failures[0].detail.len(), 64 << 10);
}

#[test]
fn timestamps_of_pytest_minitest_and_vitest_are_understood() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/junit");
    let s = parse(&dir.join("header-lies.xml")).unwrap();
    assert_eq!(s.suites[0].started_at, Some(1_671_546_456_125));
    let s = parse(&dir.join("nested-suites.xml")).unwrap();
    let starts: Vec<_> = s.suites.iter().filter_map(|x| x.started_at).collect();
    assert_eq!(starts, vec![1_709_547_072_090, 1_709_547_072_000]);
}

fn tool(name: &str) -> bool {
    let found = std::process::Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found && std::env::var_os("CUSTODY_REQUIRE_TOOLS").is_some() {
        panic!("{name} is not installed (scripts/test installs it)");
    }
    found
}

/// A report written by pytest itself, with every outcome pytest has.
#[test]
fn pytest_junitxml() {
    if !tool("pytest") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("test_outcomes.py"),
        r#"
import pytest

def test_passes():
    assert 1 + 1 == 2

def test_fails():
    assert "custody" == "kustody", "names differ"

@pytest.mark.skip(reason="not on this platform")
def test_skipped():
    pass

@pytest.fixture
def database():
    raise RuntimeError("database unavailable")

def test_errors_in_setup(database):
    pass

@pytest.mark.xfail(reason="known bug")
def test_expected_failure():
    assert False
"#,
    )
    .unwrap();
    let report = dir.path().join("report.xml");
    let out = std::process::Command::new("pytest")
        .current_dir(dir.path())
        .args(["-q", "-p", "no:cacheprovider", "--junitxml"])
        .arg(&report)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "pytest: {out:?}");
    let s = parse(&report).unwrap();
    let t = &s.totals;
    assert_eq!(
        (t.tests, t.passed, t.failed, t.errored, t.skipped),
        (5, 1, 1, 1, 2),
        "{t:?}"
    );
    let failed = s.failures.iter().find(|c| c.name == "test_fails").unwrap();
    assert!(failed.message.contains("names differ"), "{failed:?}");
    let errored = s
        .failures
        .iter()
        .find(|c| c.name == "test_errors_in_setup")
        .unwrap();
    assert!(
        errored.detail.contains("database unavailable"),
        "{errored:?}"
    );
    assert!(s.suites[0].started_at.is_some());
    assert!(!s.verdict().compliant);
}
