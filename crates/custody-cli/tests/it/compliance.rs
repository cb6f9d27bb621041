//! The foundation's end-to-end scenarios, over SQLite and PostgreSQL.

use crate::common;

use common::{Db, Server};

const TEMPLATE: &str = "version: 1
trail:
  artifacts:
  - name: app
    attestations:
    - name: tests
      type: generic
    - name: quality
      type: custom:person
";

fn status(s: &Server, trail: &str) -> serde_json::Value {
    s.custody()
        .run(&[
            "get", "trail", trail, "--flow", "backend", "--output", "json",
        ])
        .ok()
        .json()
}

both!(trail_turns_compliant_only_when_all_evidence_is_there);
fn trail_turns_compliant_only_when_all_evidence_is_there(db: Db) {
    let Some(s) = Server::start(db) else { return };
    let c = s.custody();
    let tpl = s.write("template.yml", TEMPLATE);
    let schema = s.write(
        "person.json",
        r#"{"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer"}}}"#,
    );
    let adult = s.write("jane.json", r#"{"name":"Jane","age":34}"#);
    let child = s.write("tim.json", r#"{"name":"Tim","age":12}"#);
    let artifact = s.write("app.bin", "the application");
    let p = |p: &std::path::Path| p.to_str().unwrap().to_string();

    c.run(&[
        "create",
        "attestation-type",
        "person",
        "--schema",
        &p(&schema),
        "--jq",
        ".age > 21",
    ])
    .ok();
    c.run(&["create", "flow", "backend", "--template-file", &p(&tpl)])
        .ok();
    c.run(&["begin", "trail", "t1", "--flow", "backend"]).ok();

    let v = status(&s, "t1");
    assert_eq!(v["compliant"], false);
    assert_eq!(v["status"], "INCOMPLETE");
    assert_eq!(
        v["missing"],
        serde_json::json!(["app.tests", "app.quality", "app"])
    );

    let out = c
        .run(&[
            "attest",
            "artifact",
            &p(&artifact),
            "--artifact-type",
            "file",
            "--name",
            "app",
            "--flow",
            "backend",
            "--trail",
            "t1",
        ])
        .ok();
    assert!(
        out.stdout
            .contains("artifact app.bin was attested with fingerprint: "),
        "{}",
        out.stdout
    );
    let fingerprint = out.stdout.trim().rsplit(' ').next().unwrap().to_string();
    assert_eq!(fingerprint.len(), 64);

    // A failing generic verdict makes the artifact and trail non-compliant.
    c.run(&[
        "attest",
        "generic",
        "--name",
        "tests",
        "--fingerprint",
        &fingerprint,
        "--flow",
        "backend",
        "--trail",
        "t1",
        "--compliant=false",
    ])
    .ok();
    let v = status(&s, "t1");
    assert_eq!(v["status"], "NON-COMPLIANT");
    assert_eq!(v["artifacts"][0]["compliant"], false);

    // The latest attestation of a name wins.
    c.run(&[
        "attest",
        "generic",
        "--name",
        "app.tests",
        "--flow",
        "backend",
        "--trail",
        "t1",
    ])
    .ok();
    let v = status(&s, "t1");
    assert_eq!(v["status"], "INCOMPLETE");
    assert_eq!(v["missing"], serde_json::json!(["app.quality"]));

    // Custom evidence whose rule fails is recorded, and non-compliant.
    c.run(&[
        "attest",
        "custom",
        "--type",
        "person",
        "--attestation-data",
        &p(&child),
        "--name",
        "app.quality",
        "--flow",
        "backend",
        "--trail",
        "t1",
    ])
    .ok();
    let v = status(&s, "t1");
    assert_eq!(v["compliant"], false);
    assert!(
        v["reasons"][0].as_str().unwrap().contains(".age > 21"),
        "{}",
        v["reasons"]
    );

    c.run(&[
        "attest",
        "custom",
        "--type",
        "person",
        "--attestation-data",
        &p(&adult),
        "--name",
        "app.quality",
        "--flow",
        "backend",
        "--trail",
        "t1",
    ])
    .ok();
    let v = status(&s, "t1");
    assert_eq!(v["compliant"], true, "{}", v["reasons"]);
    assert_eq!(v["status"], "COMPLIANT");
    assert_eq!(v["name"], "t1");
    assert_eq!(v["artifacts"][0]["fingerprint"], fingerprint.as_str());
    assert_eq!(v["artifacts"][0]["name"], "app");
    assert_eq!(v["artifacts"][0]["compliant"], true);
    assert_eq!(v["attestations"].as_array().unwrap().len(), 2);
    assert_eq!(v["missing"], serde_json::json!([]));

    // History is kept.
    let h = c
        .run(&[
            "get",
            "attestation",
            "app.quality",
            "--flow",
            "backend",
            "--trail",
            "t1",
            "--output",
            "json",
        ])
        .ok()
        .json();
    assert_eq!(h.as_array().unwrap().len(), 2);

    // Search finds the artifact by fingerprint prefix across flows.
    let found = c
        .run(&["search", &fingerprint[..12], "--output", "json"])
        .ok()
        .json();
    assert_eq!(found["artifacts"][0]["trail"], "t1");
    let got = c
        .run(&[
            "get",
            "artifact",
            &format!("backend@{}", &fingerprint[..10]),
            "--output",
            "json",
        ])
        .ok()
        .json();
    assert_eq!(got[0]["fingerprint"], fingerprint.as_str());

    // Custom types, trails, attestations, evidence: the store is what its
    // ledger says.
    let audit = c.run(&["ledger", "verify", "--output", "json"]).ok().json();
    assert_eq!(
        audit[0]["problems"].as_array().map(Vec::len),
        Some(0),
        "{audit}"
    );
}

both!(bad_input_is_refused_and_nothing_is_written);
fn bad_input_is_refused_and_nothing_is_written(db: Db) {
    let Some(s) = Server::start(db) else { return };
    let c = s.custody();
    let schema = s.write(
        "person.json",
        r#"{"type":"object","properties":{"age":{"type":"integer"}}}"#,
    );
    let bad_data = s.write("bad.json", r#"{"age":"old"}"#);
    let not_json = s.write("broken.json", "{\"age\": ");
    let bad_tpl = s.write(
        "bad.yml",
        "version: 1\ntrail:\n  attestations:\n  - name: x\n    type: not-supported\n",
    );
    let p = |p: &std::path::Path| p.to_str().unwrap().to_string();

    c.run(&["create", "flow", "f", "--template-file", &p(&bad_tpl)])
        .fails(2, "unknown attestation type 'not-supported'")
        .fails(2, "line 4");
    c.run(&["get", "flow", "f"])
        .fails(2, "flow 'f' does not exist");
    c.run(&["begin", "trail", "t", "--flow", "nope"])
        .fails(2, "flow 'nope' does not exist");
    c.run(&["create", "flow", "f"]).ok();
    c.run(&["begin", "trail", "t", "--flow", "f"]).ok();
    c.run(&[
        "attest", "generic", "--name", "a", "--flow", "f", "--trail", "missing",
    ])
    .fails(2, "trail 'missing' in flow 'f' does not exist");
    c.run(&[
        "attest",
        "generic",
        "--name",
        "a",
        "--flow",
        "f",
        "--trail",
        "t",
        "--fingerprint",
        "xyz",
    ])
    .fails(2, "not a valid fingerprint");
    c.run(&[
        "attest",
        "generic",
        "--name",
        "a",
        "--flow",
        "f",
        "--trail",
        "t",
        "--fingerprint",
        &"a".repeat(64),
    ])
    .fails(2, "does not exist in trail 't'");
    c.run(&[
        "attest", "generic", "--name", "a.b.c", "--flow", "f", "--trail", "t",
    ])
    .fails(2, "more than one '.'");
    c.run(&[
        "attest",
        "generic",
        "--name",
        "a",
        "--flow",
        "f",
        "--trail",
        "t",
        "--attachments",
        "/does/not/exist",
    ])
    .fails(2, "/does/not/exist");
    c.run(&[
        "attest",
        "generic",
        "--name",
        "a",
        "--flow",
        "f",
        "--trail",
        "t",
        "--user-data",
        &p(&not_json),
    ])
    .fails(2, "is not valid JSON");
    c.run(&[
        "create",
        "attestation-type",
        "person",
        "--schema",
        &p(&schema),
        "--jq",
        ".age >",
    ])
    .fails(2, "invalid jq rule");
    c.run(&[
        "create",
        "attestation-type",
        "person",
        "--schema",
        &p(&schema),
    ])
    .ok();
    c.run(&[
        "attest",
        "custom",
        "--type",
        "person",
        "--attestation-data",
        &p(&bad_data),
        "--name",
        "q",
        "--flow",
        "f",
        "--trail",
        "t",
    ])
    .fails(2, "at /age");
    c.run(&[
        "attest",
        "custom",
        "--type",
        "nobody",
        "--attestation-data",
        &p(&bad_data),
        "--name",
        "q",
        "--flow",
        "f",
        "--trail",
        "t",
    ])
    .fails(2, "attestation type 'nobody' does not exist");
    c.run(&[
        "attest",
        "generic",
        "--name",
        "a",
        "--flow",
        "f",
        "--trail",
        "t",
        "--annotate",
        "bad key=v",
    ])
    .fails(2, "annotation key");
    c.run(&["fingerprint", "/does/not/exist", "--artifact-type", "file"])
        .fails(2, "/does/not/exist");
    c.run(&[
        "attest", "generic", "--name", "", "--flow", "f", "--trail", "t",
    ])
    .fails(2, "");

    // None of the refused attestations left anything behind.
    let v = c
        .run(&["get", "trail", "t", "--flow", "f", "--output", "json"])
        .ok()
        .json();
    assert_eq!(v["attestations"], serde_json::json!([]));

    // Custom types, trails, attestations, evidence: the store is what its
    // ledger says, and what was refused left nothing behind.
    let audit = c.run(&["ledger", "verify", "--output", "json"]).ok().json();
    assert_eq!(
        audit[0]["problems"].as_array().map(Vec::len),
        Some(0),
        "{audit}"
    );
}

both!(keys_roles_and_organisations);
fn keys_roles_and_organisations(db: Db) {
    let Some(s) = Server::start(db) else { return };
    let c = s.custody();
    c.run(&["create", "flow", "secret-flow"]).ok();

    let org = c
        .run(&["create", "org", "acme", "--output", "json"])
        .ok()
        .json();
    assert_eq!(org["org"], "acme");
    let acme_key = org["api_key"].as_str().unwrap().to_string();
    let acme = c.with_token(&acme_key);
    acme.run(&["--org", "acme", "get", "flow", "secret-flow"])
        .fails(2, "flow 'secret-flow' does not exist");
    // Another organisation's name is indistinguishable from a missing one.
    acme.run(&["--org", "default", "list", "flows"])
        .fails(2, "org 'default' does not exist");
    acme.run(&["--org", "acme", "create", "org", "evil"])
        .fails(3, "server-admin");
    c.run(&["create", "org", "acme"]).fails(2, "already exists");

    acme.run(&[
        "--org",
        "acme",
        "create",
        "service-account",
        "ci-reader",
        "--role",
        "reader",
    ])
    .ok();
    let key = acme
        .run(&[
            "--org",
            "acme",
            "create",
            "api-key",
            "--service-account",
            "ci-reader",
            "--output",
            "json",
        ])
        .ok()
        .json();
    let reader = c.with_token(key["key"].as_str().unwrap());
    reader.run(&["--org", "acme", "list", "flows"]).ok();
    reader
        .run(&["--org", "acme", "create", "flow", "x"])
        .fails(3, "does not allow");
    reader
        .run(&[
            "--org",
            "acme",
            "create",
            "service-account",
            "y",
            "--role",
            "reader",
        ])
        .fails(3, "does not allow");
    // Only admins hand out roles.
    acme.run(&[
        "--org",
        "acme",
        "create",
        "service-account",
        "ci",
        "--role",
        "member",
    ])
    .ok();
    let key = acme
        .run(&[
            "--org",
            "acme",
            "create",
            "api-key",
            "--service-account",
            "ci",
            "--output",
            "json",
        ])
        .ok()
        .json();
    let member = c.with_token(key["key"].as_str().unwrap());
    member
        .run(&[
            "--org",
            "acme",
            "create",
            "service-account",
            "root",
            "--role",
            "admin",
        ])
        .fails(3, "does not allow");
    // A member reports, but flows and their templates are requirements.
    member
        .run(&["--org", "acme", "create", "flow", "allowed"])
        .fails(3, "does not allow");
    acme.run(&["--org", "acme", "create", "flow", "allowed"])
        .ok();
    let who = reader.run(&["whoami", "--output", "json"]).ok().json();
    assert_eq!(who["role"], "reader");
    c.with_token("cust_not-a-real-key")
        .run(&["list", "flows"])
        .fails(3, "API key not found");
    c.run(&["create", "service-account", "x", "--role", "wizard"])
        .fails(2, "unknown role");
}

both!(a_trail_reads_as_markdown_for_a_change_ticket);
/// `get trail --output markdown`: the verdict first, each slot of the
/// template with its status and reason, then why; every table row has its
/// header's columns, whatever the values hold.
fn a_trail_reads_as_markdown_for_a_change_ticket(db: Db) {
    let Some(s) = Server::start(db) else { return };
    let c = s.custody();
    let tpl = s.write(
        "template.yml",
        "version: 1\ntrail:\n  attestations:\n  - name: review\n    type: generic\n  artifacts:\n  - name: app\n    attestations:\n    - name: tests\n      type: generic\n",
    );
    let artifact = s.write("app.bin", "the application");
    c.run(&[
        "create",
        "flow",
        "backend",
        "--template-file",
        tpl.to_str().unwrap(),
    ])
    .ok();
    c.run(&[
        "begin",
        "trail",
        "t1",
        "--flow",
        "backend",
        "--description",
        "fix | pipes\nand lines",
    ])
    .ok();
    let fingerprint = c.fingerprint(artifact.to_str().unwrap(), "file");
    c.attest_file(&artifact, "app", "backend", "t1");
    c.attest_verdict("tests", &fingerprint, "backend", "t1", false);
    let md = c
        .run(&[
            "get", "trail", "t1", "--flow", "backend", "--output", "markdown",
        ])
        .ok()
        .stdout;
    assert!(
        md.starts_with("## ❌ Trail `t1` of flow `backend`: NON-COMPLIANT\n"),
        "{md}"
    );
    assert!(
        md.contains("| Description | fix \\| pipes and lines |"),
        "{md}"
    );
    assert!(
        md.contains("| `review` | generic | ⬜ MISSING | not reported |"),
        "{md}"
    );
    assert!(
        md.contains(&format!("Fingerprint: `{fingerprint}`")),
        "{md}"
    );
    assert!(
        md.contains("| `tests` | generic | ❌ NON-COMPLIANT |"),
        "{md}"
    );
    assert!(md.contains("### Why it is not compliant\n"), "{md}");
    // Every row of a table has as many cells as its header.
    let cells = |line: &str| line.replace("\\|", "").matches('|').count();
    let mut header = None;
    for line in md.lines() {
        if !line.starts_with('|') {
            header = None;
            continue;
        }
        let n = cells(line);
        match header {
            None => header = Some(n),
            Some(h) => assert_eq!(
                n, h,
                "a row with other columns than its header: {line}\n{md}"
            ),
        }
    }
    c.run(&["get", "flow", "backend", "--output", "markdown"])
        .fails(2, "--output markdown is for `get trail`");
}
