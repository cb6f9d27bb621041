//! Every `fixtures/sbom/NAME.*` is parsed and checked against
//! `NAME.expected.json`; then real documents written by real tools
//! (cyclonedx-py for every CycloneDX version in JSON and XML, pyspdxtools
//! for SPDX tag-value) when they are installed, as `scripts/test` ensures.

use std::path::Path;
use std::process::Command;

use custody_evidence::sbom::{self, SbomSummary};
use custody_evidence::{Limits, ParseError};
use serde_json::Value;

fn check(parsed: Result<SbomSummary, ParseError>, expected: &Value) -> Result<(), String> {
    if let Some(want) = expected.get("error").and_then(Value::as_str) {
        let e = match parsed {
            Ok(s) => {
                return Err(format!(
                    "expected an error, parsed {} components",
                    s.component_count
                ));
            }
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
        return Ok(());
    }
    let s = parsed.map_err(|e| format!("unexpected error: {e}"))?;
    for (key, got) in [
        ("format", s.format.clone()),
        ("encoding", s.encoding.clone()),
        ("spec_version", s.spec_version.clone()),
    ] {
        if expected[key].as_str() != Some(got.as_str()) {
            return Err(format!("{key}: {got}, expected {}", expected[key]));
        }
    }
    if expected["component_count"].as_u64() != Some(s.component_count) {
        return Err(format!(
            "{} components, expected {}",
            s.component_count, expected["component_count"]
        ));
    }
    if let Some(subject) = expected.get("subject").and_then(Value::as_str)
        && s.subject.as_deref() != Some(subject)
    {
        return Err(format!("subject {:?}", s.subject));
    }
    if let Some(purls) = expected.get("purls") {
        let got: Vec<&str> = s
            .components
            .iter()
            .filter_map(|c| c.purl.as_deref())
            .collect();
        let want: Vec<String> = serde_json::from_value(purls.clone()).unwrap();
        if got != want {
            return Err(format!("purls {got:?}, expected {want:?}"));
        }
    }
    for (name, want) in expected
        .get("licenses")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        let c = s
            .components
            .iter()
            .find(|c| c.name == *name)
            .ok_or(format!("no component {name}"))?;
        let want: Vec<String> = serde_json::from_value(want.clone()).unwrap();
        if c.licenses != want {
            return Err(format!(
                "{name}: licenses {:?}, expected {want:?}",
                c.licenses
            ));
        }
    }
    for (name, n) in expected
        .get("hashes")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        let c = s
            .components
            .iter()
            .find(|c| c.name == *name)
            .ok_or(format!("no component {name}"))?;
        if Some(c.hashes.len() as u64) != n.as_u64() {
            return Err(format!("{name}: {} hashes, expected {n}", c.hashes.len()));
        }
    }
    if !s.verdict().compliant {
        return Err("a valid SBOM must be compliant".into());
    }
    Ok(())
}

#[test]
fn fixtures_match_their_expectations() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sbom");
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| !p.to_string_lossy().ends_with(".expected.json"))
        .collect();
    entries.sort();
    assert!(entries.len() >= 12);
    let mut failures = vec![];
    for p in entries {
        let stem = p.file_stem().unwrap().to_string_lossy().into_owned();
        let expected: Value = serde_json::from_slice(
            &std::fs::read(p.with_file_name(format!("{stem}.expected.json")))
                .unwrap_or_else(|_| panic!("{} has no expectation", p.display())),
        )
        .unwrap();
        let bytes = std::fs::read(&p).unwrap();
        if let Err(e) = check(sbom::parse(&bytes, Limits::default()), &expected) {
            failures.push(format!("{}: {e}", p.file_name().unwrap().to_string_lossy()));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

fn tool(name: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found && std::env::var_os("CUSTODY_REQUIRE_TOOLS").is_some() {
        panic!("{name} is not installed (scripts/test installs it)");
    }
    found
}

#[test]
fn cyclonedx_py_output_of_every_version_and_encoding() {
    if !tool("cyclonedx-py") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // Ten Python start-ups: run them side by side.
    let mut runs = vec![];
    for version in ["1.2", "1.3", "1.4", "1.5", "1.6"] {
        for (format, encoding) in [("JSON", "json"), ("XML", "xml")] {
            let out = dir.path().join(format!("bom-{version}.{encoding}"));
            let child = Command::new("cyclonedx-py")
                .args([
                    "environment",
                    "--spec-version",
                    version,
                    "--output-format",
                    format,
                    "--output-file",
                ])
                .arg(&out)
                .spawn()
                .unwrap();
            runs.push((version, format, encoding, out, child));
        }
    }
    for (version, format, encoding, out, mut child) in runs {
        assert!(
            child.wait().unwrap().success(),
            "cyclonedx-py failed for {version} {format}"
        );
        let bytes = std::fs::read(&out).unwrap();
        let s = sbom::parse(&bytes, Limits::default())
            .unwrap_or_else(|e| panic!("CycloneDX {version} {format}: {e}"));
        assert_eq!(s.format, "cyclonedx");
        assert_eq!(s.encoding, encoding);
        assert_eq!(s.spec_version, version);
        // The environment has at least cyclonedx-bom itself installed.
        assert!(
            s.components.iter().any(|c| c.name == "cyclonedx-bom"),
            "{version} {format}: cyclonedx-bom not among {} components",
            s.component_count
        );
        assert!(s.components.iter().filter(|c| c.purl.is_some()).count() > 5);
    }
}

#[test]
fn pyspdxtools_tag_value_and_json_agree() {
    if !tool("pyspdxtools") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sbom/spdx-2.3.json");
    let mut results = vec![];
    for ext in ["spdx", "json"] {
        let out = dir.path().join(format!("converted.{ext}"));
        let status = Command::new("pyspdxtools")
            .arg("-i")
            .arg(&src)
            .arg("-o")
            .arg(&out)
            .status()
            .unwrap();
        assert!(status.success(), "pyspdxtools could not convert to {ext}");
        let s = sbom::parse(&std::fs::read(&out).unwrap(), Limits::default())
            .unwrap_or_else(|e| panic!("pyspdxtools {ext}: {e}"));
        results.push(s);
    }
    assert_eq!(results[0].encoding, "tag-value");
    assert_eq!(results[0].components, results[1].components);
    assert_eq!(results[0].component_count, 2);
}
