//! Evidence from real tools, end to end: `custody attest junit|sarif|snyk|
//! trivy|grype|sbom` against a real server, over SQLite and PostgreSQL.

use crate::common;

use std::path::{Path, PathBuf};

use common::{Db, Server};
use serde_json::Value;

const TEMPLATE: &str = "version: 1
trail:
  attestations:
  - name: unit
    type: junit
  - name: sast
    type: sarif
  artifacts:
  - name: app
    attestations:
    - name: deps
      type: snyk
    - name: image
      type: trivy
    - name: vulns
      type: grype
    - name: bom
      type: sbom
";

fn fixture(rel: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../custody-evidence/tests/fixtures")
        .join(rel)
        .to_str()
        .unwrap()
        .to_string()
}

/// A results directory holding copies of the named JUnit fixtures.
fn junit_dir(s: &Server, name: &str, fixtures: &[&str]) -> PathBuf {
    let dir = s.path(name);
    std::fs::create_dir_all(dir.join("nested")).unwrap();
    for (i, f) in fixtures.iter().enumerate() {
        let target = if i == 0 {
            dir.join(f)
        } else {
            dir.join("nested").join(f)
        };
        std::fs::copy(fixture(&format!("junit/{f}")), target).unwrap();
    }
    dir
}

fn trail(s: &Server, name: &str) -> Value {
    s.custody()
        .run(&["get", "trail", name, "--flow", "svc", "--output", "json"])
        .ok()
        .json()
}

/// The latest attestation of a name (`get attestation` lists the history,
/// newest first, once there is more than one).
fn attestation(s: &Server, trail: &str, name: &str) -> Value {
    let v = s
        .custody()
        .run(&[
            "get",
            "attestation",
            name,
            "--flow",
            "svc",
            "--trail",
            trail,
            "--output",
            "json",
        ])
        .ok()
        .json();
    match v {
        Value::Array(mut items) => items.remove(0),
        one => one,
    }
}

both!(every_tool_type_turns_a_trail_compliant_only_when_clean);
fn every_tool_type_turns_a_trail_compliant_only_when_clean(db: Db) {
    let Some(s) = Server::start(db) else { return };
    let c = s.custody();
    let tpl = s.write("template.yml", TEMPLATE);
    let app = s.write("app.bin", "the application");
    let p = |p: &Path| p.to_str().unwrap().to_string();
    c.run(&["create", "flow", "svc", "--template-file", &p(&tpl)])
        .ok();
    c.run(&["begin", "trail", "t1", "--flow", "svc"]).ok();
    let fp = c
        .run(&[
            "attest",
            "artifact",
            &p(&app),
            "--artifact-type",
            "file",
            "--name",
            "app",
            "--flow",
            "svc",
            "--trail",
            "t1",
            "--output",
            "json",
        ])
        .ok()
        .json()["fingerprint"]
        .as_str()
        .unwrap()
        .to_string();
    let base = ["--flow", "svc", "--trail", "t1"];
    let attest = |args: &[&str]| {
        let mut all: Vec<&str> = vec!["attest"];
        all.extend_from_slice(args);
        all.extend_from_slice(&base);
        c.run(&all)
    };

    // Failing tests first: the trail says which.
    let failing = junit_dir(&s, "failing", &["nested-suites.xml", "header-lies.xml"]);
    let out = attest(&["junit", "--name", "unit", "--results-dir", &p(&failing)]).ok();
    assert!(out.stdout.contains("non-compliant"), "{}", out.stdout);
    assert!(
        out.stdout.contains("tests.test_math.test_div"),
        "{}",
        out.stdout
    );
    let v = trail(&s, "t1");
    assert_eq!(v["compliant"], false);
    let unit = attestation(&s, "t1", "unit");
    assert_eq!(unit["type"], "junit");
    assert_eq!(unit["compliant"], false);
    assert_eq!(unit["data"]["results"]["totals"]["tests"], 8);
    assert_eq!(unit["data"]["results"]["totals"]["failed"], 1);
    let mut names: Vec<&str> = unit["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["filename"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["junit/nested-suites.xml", "junit/nested/header-lies.xml"]
    );

    // Then passing ones: the latest attestation of a name wins.
    let passing = junit_dir(&s, "passing", &["nested-suites.xml", "ant-old-style.xml"]);
    attest(&["junit", "--name", "unit", "--results-dir", &p(&passing)]).ok();
    assert_eq!(attestation(&s, "t1", "unit")["compliant"], true);

    // SARIF warnings pass at the default --fail-on error, fail at warning.
    let sarif = fixture("sarif/semgrep-warnings.sarif");
    attest(&[
        "sarif",
        "--name",
        "sast",
        "--scan-results",
        &sarif,
        "--fail-on",
        "warning",
    ])
    .ok();
    let sast = attestation(&s, "t1", "sast");
    assert_eq!(sast["compliant"], false);
    assert!(
        sast["reasons"][0]
            .as_str()
            .unwrap()
            .contains("level warning")
    );
    attest(&["sarif", "--name", "sast", "--scan-results", &sarif]).ok();
    assert_eq!(attestation(&s, "t1", "sast")["compliant"], true);

    // Scanners on the artifact, by ARTIFACT.NAME and by fingerprint.
    attest(&[
        "snyk",
        "--name",
        "app.deps",
        "--scan-results",
        &fixture("snyk/test.json"),
    ])
    .ok();
    let deps = attestation(&s, "t1", "app.deps");
    assert_eq!(
        deps["compliant"], false,
        "snyk fails on any severity by default"
    );
    assert_eq!(deps["data"]["severity_threshold"], "low");
    attest(&[
        "snyk",
        "--name",
        "app.deps",
        "--scan-results",
        &fixture("snyk/clean.json"),
    ])
    .ok();
    // Trivy's image report has one HIGH and one CRITICAL: the default
    // threshold (high) fails it, critical only... still fails.
    let image = fixture("trivy/image.json");
    attest(&["trivy", "--name", "app.image", "--scan-results", &image]).ok();
    assert_eq!(attestation(&s, "t1", "app.image")["compliant"], false);
    attest(&[
        "trivy",
        "--name",
        "app.image",
        "--scan-results",
        &fixture("trivy/clean.json"),
    ])
    .ok();
    attest(&[
        "grype",
        "--name",
        "vulns",
        "--fingerprint",
        &fp,
        "--scan-results",
        &fixture("grype/image.json"),
        "--severity-threshold",
        "critical",
    ])
    .ok();
    assert_eq!(attestation(&s, "t1", "app.vulns")["compliant"], false);
    attest(&[
        "grype",
        "--name",
        "vulns",
        "--fingerprint",
        &fp,
        "--scan-results",
        &fixture("grype/clean.json"),
    ])
    .ok();
    let v = trail(&s, "t1");
    assert_eq!(v["compliant"], false, "the SBOM is still missing: {v}");
    assert!(v["missing"].to_string().contains("app.bom"), "{v}");

    attest(&[
        "sbom",
        "--name",
        "app.bom",
        "--file",
        &fixture("sbom/cyclonedx-1.6-nested.json"),
    ])
    .ok();
    let bom = attestation(&s, "t1", "app.bom");
    assert_eq!(bom["data"]["component_count"], 5);
    assert_eq!(bom["data"]["spec_version"], "1.6");
    // The digest that binds the component rows is of their RFC 8785
    // canonical JSON, as any canonicaliser writes it.
    let parsed = c
        .run(&[
            "parse",
            "sbom",
            "--file",
            &fixture("sbom/cyclonedx-1.6-nested.json"),
            "--output",
            "json",
        ])
        .ok()
        .json();
    let canonical = serde_json_canonicalizer::to_string(&parsed["components"]).unwrap();
    assert_eq!(
        bom["data"]["components_sha256"].as_str().unwrap(),
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(canonical.as_bytes()))
    );
    let v = trail(&s, "t1");
    assert_eq!(v["compliant"], true, "{v}");

    // Which artifacts contain express? The one this SBOM describes.
    let found = c
        .run(&[
            "list",
            "components",
            "--name",
            "express",
            "--output",
            "json",
        ])
        .ok()
        .json();
    assert_eq!(found.as_array().unwrap().len(), 1, "{found}");
    assert_eq!(found[0]["fingerprint"], fp.as_str());
    assert_eq!(found[0]["trail"], "t1");
    assert_eq!(found[0]["licenses"][0], "MIT");
    let by_purl = c
        .run(&[
            "list",
            "components",
            "--purl",
            "pkg:npm/bytes",
            "--output",
            "json",
        ])
        .ok()
        .json();
    assert_eq!(by_purl[0]["version"], "3.1.2");
    let none = c
        .run(&[
            "list",
            "components",
            "--purl",
            "pkg:npm/bytes@9.9.9",
            "--output",
            "json",
        ])
        .ok()
        .json();
    assert_eq!(none, serde_json::json!([]));

    // Every tool's record, and the SBOMs' components row by row, are what
    // the ledger says.
    let audit = s
        .custody()
        .run(&["ledger", "verify", "--output", "json"])
        .ok()
        .json();
    assert_eq!(
        audit[0]["problems"].as_array().map(Vec::len),
        Some(0),
        "{audit}"
    );
}

both!(bad_reports_are_refused_with_their_place_and_nothing_is_recorded);
fn bad_reports_are_refused_with_their_place_and_nothing_is_recorded(db: Db) {
    let Some(s) = Server::start(db) else { return };
    let c = s.custody();
    c.run(&["create", "flow", "svc"]).ok();
    c.run(&["begin", "trail", "t1", "--flow", "svc"]).ok();
    let base = ["--flow", "svc", "--trail", "t1", "--name", "x"];
    let attest = |args: &[&str]| {
        let mut all: Vec<&str> = vec!["attest"];
        all.extend_from_slice(args);
        all.extend_from_slice(&base);
        c.run(&all)
    };
    let truncated = junit_dir(&s, "truncated", &["header-lies.xml", "truncated.xml"]);
    attest(&["junit", "--results-dir", truncated.to_str().unwrap()])
        .fails(2, "nested/truncated.xml:4:");
    let empty = s.path("empty");
    std::fs::create_dir_all(&empty).unwrap();
    attest(&["junit", "--results-dir", empty.to_str().unwrap()]).fails(2, "no tests found in");
    let not_junit = junit_dir(&s, "notjunit", &["not-junit.xml"]);
    attest(&["junit", "--results-dir", not_junit.to_str().unwrap()]).fails(2, "not a JUnit report");
    let latin = junit_dir(&s, "latin", &["wrong-encoding.xml"]);
    attest(&["junit", "--results-dir", latin.to_str().unwrap()]).fails(2, "wrong-encoding.xml:3:");
    let xxe = junit_dir(&s, "xxe", &["xxe.xml"]);
    attest(&["junit", "--results-dir", xxe.to_str().unwrap()]).fails(2, "DOCTYPE");
    attest(&["sarif", "--scan-results", &fixture("sarif/truncated.sarif")])
        .fails(2, "truncated.sarif:3:");
    attest(&[
        "trivy",
        "--scan-results",
        &fixture("trivy/table-output.txt"),
    ])
    .fails(2, "--format json");
    attest(&["sbom", "--file", &fixture("sbom/cyclonedx-bad-hash.json")])
        .fails(2, "at /components/0/hashes/0/content");
    attest(&["grype", "--scan-results", "/no/such/file.json"]).fails(2, "/no/such/file.json");
    attest(&[
        "snyk",
        "--scan-results",
        &fixture("snyk/test.json"),
        "--severity-threshold",
        "severe",
    ])
    .fails(2, "severe");
    // Nothing of any of it reached the trail.
    let v = trail(&s, "t1");
    assert_eq!(v["attestations"], serde_json::json!([]), "{v}");
}

both!(results_can_stay_out_of_the_vault);
fn results_can_stay_out_of_the_vault(db: Db) {
    let Some(s) = Server::start(db) else { return };
    let c = s.custody();
    c.run(&["create", "flow", "svc"]).ok();
    c.run(&["begin", "trail", "t1", "--flow", "svc"]).ok();
    let notes = s.write("notes.txt", "reviewed by the security team");
    c.run(&[
        "attest",
        "sarif",
        "--name",
        "sast",
        "--flow",
        "svc",
        "--trail",
        "t1",
        "--scan-results",
        &fixture("sarif/codeql-levels.sarif"),
        "--upload-results=false",
        "--attachments",
        notes.to_str().unwrap(),
    ])
    .ok();
    let a = attestation(&s, "t1", "sast");
    assert_eq!(a["compliant"], false);
    assert_eq!(a["data"]["results"]["totals"]["error"], 3);
    let files: Vec<&str> = a["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["filename"].as_str().unwrap())
        .collect();
    assert_eq!(files, ["notes.txt"]);
}

/// `custody parse` judges a report locally, with no server at all.
#[test]
fn parse_needs_no_server() {
    let run = |args: &[&str]| {
        std::process::Command::new(common::bin())
            .args(args)
            .env("CUSTODY_HOST", "http://127.0.0.1:9")
            .output()
            .unwrap()
    };
    let out = run(&[
        "parse",
        "grype",
        "--scan-results",
        &fixture("grype/image.json"),
        "--output",
        "json",
    ]);
    // Non-compliant: exit 1, as assert does, so a pipeline can gate on it.
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["compliant"], false);
    assert_eq!(v["data"]["severity_threshold"], "high");
    let out = run(&["parse", "sbom", "--file", &fixture("sbom/spdx-2.3-tv.spdx")]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("spdx 2.3 tag-value (worker-0.9.0), 2 components"),
        "{text}"
    );
    let out = run(&[
        "parse",
        "sarif",
        "--scan-results",
        &fixture("sarif/bad-level.sarif"),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad-level.sarif:2:"));
}
