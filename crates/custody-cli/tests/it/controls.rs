//! Controls end to end: policies judged against what runs, allowlists,
//! decisions for controls, asserts and Rego, with the real CLI against a
//! real server on SQLite and PostgreSQL.

use crate::common;

use common::{Db, Server};
use serde_json::Value;

fn json(s: &Server, args: &[&str]) -> Value {
    let mut a = args.to_vec();
    a.extend(["--output", "json"]);
    s.custody().run(&a).ok().json()
}

const POLICY: &str = r#"_schema: https://docs.kosli.com/schemas/policy/v1
artifacts:
  provenance:
    required: true
  trail-compliance:
    required: true
  attestations:
    - name: unit-tests
      type: generic
      if: ${{ flow.tags.risk-level == "high" }}
    - type: decision
      for_control: RCTL-1
"#;

/// Every reason of the environment's latest evaluation.
fn reasons(c: &Value) -> Vec<String> {
    c["policies"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["artifacts"].as_array().unwrap().iter())
        .flat_map(|a| a["rules"].as_array().unwrap().iter())
        .filter(|r| r["satisfied"] == false && r["ignored"] == false)
        .map(|r| r["reason"].as_str().unwrap().to_string())
        .collect()
}

both!(policies_judge_what_runs_and_gate_deployments);
fn policies_judge_what_runs_and_gate_deployments(db: Db) {
    let Some(s) = Server::start(db) else { return };
    let c = s.custody();
    s.write("srv/app/bin", "binary 1\n");
    s.write("srv/motd", "welcome\n");
    let paths = s.write(
        "paths.yml",
        "version: 1\nartifacts:\n  app:\n    path: srv/app\n  motd:\n    path: srv/motd\n",
    );
    let paths = paths.to_str().unwrap();
    c.run(&[
        "snapshot",
        "paths",
        "prod",
        "--paths-file",
        paths,
        "--auto-environment",
    ])
    .ok();
    let app = s.custody().fingerprint("srv/app", "dir");
    let motd = s.custody().fingerprint("srv/motd", "file");

    // No policy: compliance is unknown, and an assert says no.
    let snap = json(&s, &["get", "snapshot", "prod"]);
    assert!(snap.get("compliance").is_none());
    c.run(&["assert", "snapshot", "prod"])
        .fails(1, "NON-COMPLIANT");
    c.run(&[
        "assert",
        "artifact",
        "--fingerprint",
        &app,
        "--environment",
        "prod",
    ])
    .fails(2, "has no policy attached");

    c.run(&["create", "flow", "backend"]).ok();
    c.run(&["tag", "flow", "backend", "--set", "risk-level=high"])
        .ok();
    c.run(&["begin", "trail", "v1", "--flow", "backend"]).ok();
    c.run(&[
        "attest",
        "artifact",
        "--fingerprint",
        &app,
        "--name",
        "app",
        "--flow",
        "backend",
        "--trail",
        "v1",
    ])
    .ok();

    // A policy is refused whole, with where and why.
    let file = s.write("policy.yml", POLICY);
    let file = file.to_str().unwrap();
    c.run(&["create", "policy", "prod-rules", file])
        .fails(2, "names control 'RCTL-1', which does not exist");
    let bad = s.write(
        "bad.yml",
        "_schema: https://docs.kosli.com/schemas/policy/v1\nartifacts:\n  provenance:\n    required: true\n    exceptions:\n      - if: ${{ artifact.name == }}\n",
    );
    c.run(&["create", "policy", "bad", bad.to_str().unwrap()])
        .fails(2, "line 6");
    let unknown_key = s.write(
        "unknown.yml",
        "_schema: https://docs.kosli.com/schemas/policy/v1\nartifact:\n  provenance: {required: true}\n",
    );
    c.run(&["create", "policy", "bad", unknown_key.to_str().unwrap()])
        .fails(2, "unknown field `artifact`");
    c.run(&["list", "policies"]).ok();
    assert_eq!(json(&s, &["list", "policies"]), serde_json::json!([]));

    c.run(&["create", "control", "RCTL-1", "--name", "Change approval"])
        .ok();
    let p = json(&s, &["create", "policy", "prod-rules", file]);
    assert_eq!(p["version"], 1);
    // The same text again is the same version; another text is the next.
    assert_eq!(
        json(&s, &["create", "policy", "prod-rules", file])["version"],
        1
    );
    let got = json(&s, &["get", "policy", "prod-rules", "--version", "1"]);
    assert_eq!(got["content"], POLICY);
    assert_eq!(json(&s, &["get", "policy", "prod-rules"])["version"], 1);
    c.run(&["get", "policy", "prod-rules", "--version", "9"])
        .fails(2, "policy version 'prod-rules@v9' does not exist");
    let control = json(&s, &["get", "control", "RCTL-1"]);
    assert_eq!(control[0]["version"], 1);
    assert_eq!(control[0]["name"], "Change approval");

    c.run(&["attach-policy", "prod-rules", "--environment", "prod"])
        .ok();
    c.run(&["attach-policy", "prod-rules", "--environment", "prod"])
        .fails(2, "already attached");
    let comp = json(&s, &["get", "compliance", "prod"]);
    assert_eq!(comp["status"], "NON-COMPLIANT");
    assert_eq!(comp["cause"], "policy-attached");
    let r = reasons(&comp);
    assert!(
        r.contains(&"artifact has no provenance: no flow reported its fingerprint".to_string()),
        "{r:?}"
    );
    assert!(
        r.contains(
            &"artifact is missing required 'unit-tests' (type: generic) attestation in trail"
                .to_string()
        ),
        "{r:?}"
    );
    assert!(
        r.contains(&"artifact is missing required decision for control 'RCTL-1'".to_string()),
        "{r:?}"
    );

    // The gate: exit 1 with Kosli's words.
    let gate = c
        .run(&[
            "assert",
            "artifact",
            "--fingerprint",
            &app,
            "--environment",
            "prod",
        ])
        .fails(1, "NON-COMPLIANT");
    assert!(
        gate.stdout
            .contains("artifact is missing required decision for control 'RCTL-1'"),
        "{}",
        gate.stdout
    );
    let j = c.run(&[
        "assert",
        "artifact",
        "--fingerprint",
        &app,
        "--environment",
        "prod",
        "--output",
        "json",
    ]);
    assert_eq!(j.code, 1);
    assert_eq!(j.json()["compliant"], false);
    assert_eq!(j.json()["scope"], "environment");

    // Evidence arrives: the environment is judged again each time.
    c.run(&[
        "attest",
        "generic",
        "--fingerprint",
        &app,
        "--name",
        "unit-tests",
        "--flow",
        "backend",
        "--trail",
        "v1",
    ])
    .ok();
    c.run(&[
        "attest",
        "decision",
        "--control",
        "NOPE",
        "--name",
        "approval",
        "--flow",
        "backend",
        "--trail",
        "v1",
    ])
    .fails(2, "control 'NOPE' does not exist");
    c.run(&[
        "attest",
        "decision",
        "--control",
        "RCTL-1",
        "--name",
        "approval",
        "--flow",
        "backend",
        "--trail",
        "v1",
    ])
    .ok();
    let comp = json(&s, &["get", "compliance", "prod"]);
    assert_eq!(comp["cause"], "attestation");
    assert_eq!(
        reasons(&comp),
        [
            "artifact has no provenance: no flow reported its fingerprint",
            "artifact has no provenance, so no trail can be compliant",
            "artifact has no provenance, so it has no attestations"
        ]
    );
    c.run(&[
        "assert",
        "artifact",
        "--fingerprint",
        &app,
        "--environment",
        "prod",
    ])
    .ok();

    c.run(&[
        "allow",
        "artifact",
        "--fingerprint",
        &motd,
        "--environment",
        "prod",
        "--reason",
        "static welcome file",
    ])
    .ok();
    let comp = json(&s, &["get", "compliance", "prod"]);
    assert_eq!(comp["status"], "COMPLIANT", "{comp:#}");
    assert_eq!(comp["cause"], "allowlist");
    let out = c.run(&["assert", "snapshot", "prod"]).ok();
    assert!(out.stdout.starts_with("COMPLIANT"), "{}", out.stdout);
    // Flow tags feed conditions: changing them judges again.
    c.run(&["tag", "flow", "backend", "--unset", "risk-level"])
        .ok();
    let comp = json(&s, &["get", "compliance", "prod"]);
    assert_eq!(comp["cause"], "flow-tags");
    let unit = comp["policies"][0]["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "app")
        .unwrap()["rules"][2]
        .clone();
    assert_eq!(unit["ignored"], true, "{unit}");
    c.run(&["tag", "flow", "backend", "--set", "risk-level=high"])
        .ok();
    let list = json(&s, &["list", "allowlist", "prod"]);
    assert_eq!(list[0]["fingerprint"], motd.as_str());

    // A new snapshot is judged as it is taken.
    s.write("srv/app/bin", "binary 2 (a hot fix by hand)\n");
    c.run(&["snapshot", "paths", "prod", "--paths-file", paths])
        .ok();
    let snap = json(&s, &["get", "snapshot", "prod"]);
    assert_eq!(snap["index"], 2);
    assert_eq!(snap["compliance"]["status"], "NON-COMPLIANT");
    assert_eq!(snap["compliance"]["cause"], "snapshot");
    c.run(&["assert", "snapshot", "prod"])
        .fails(1, "NON-COMPLIANT");
    // A snapshot reuses the verdicts of what still runs; judging whole
    // (anything but a snapshot does) finds the same.
    let incremental = json(&s, &["get", "compliance", "prod"]);
    c.run(&[
        "allow",
        "artifact",
        "--fingerprint",
        &motd,
        "--environment",
        "prod",
        "--reason",
        "static welcome file",
    ])
    .ok();
    // A judgement that finds what the latest one found records nothing
    // new: a different finding would be the next evaluation.
    let whole = json(&s, &["get", "compliance", "prod"]);
    assert_eq!(whole["evaluation"], incremental["evaluation"], "{whole}");
    assert_eq!(whole["cause"], "snapshot");
    assert_eq!(incremental["policies"], whole["policies"]);
    assert_eq!(incremental["inputs"], whole["inputs"]);
    // The earlier snapshot keeps the judgement it had.
    let first = json(&s, &["get", "snapshot", "prod#1"]);
    assert_eq!(first["compliance"]["status"], "COMPLIANT");
    c.run(&["assert", "snapshot", "prod#1"]).ok();

    // Detaching the last policy: UNKNOWN, never compliant.
    c.run(&["detach-policy", "prod-rules", "--environment", "prod"])
        .ok();
    let comp = json(&s, &["get", "compliance", "prod"]);
    assert_eq!(comp["status"], "UNKNOWN");
    c.run(&["detach-policy", "prod-rules", "--environment", "prod"])
        .fails(2, "is not attached");
    let env = json(&s, &["get", "environment", "prod"]);
    assert_eq!(env["compliance"], "UNKNOWN");

    // Asserts by named policy and by flow.
    c.run(&[
        "assert",
        "artifact",
        "--fingerprint",
        &app,
        "--policy",
        "prod-rules",
    ])
    .ok();
    c.run(&[
        "assert",
        "artifact",
        "--fingerprint",
        &app,
        "--flow",
        "backend",
    ])
    .ok();
    c.run(&["assert", "artifact", "--fingerprint", &motd, "--flow", "backend"])
        .fails(2, &format!("Artifact with fingerprint '{motd}' does not exist in flow 'backend' belonging to organization 'default'"));
    c.run(&["assert", "artifact", "--fingerprint", &motd])
        .fails(1, "NON-COMPLIANT");

    // Rego policies judge environments too.
    let rego = s.write(
        "prod.rego",
        "package policy\n\nimport rego.v1\n\ndefault allow := false\n\nallow if input.artifact.provenance\n\nviolations contains sprintf(\"%s runs without provenance in %s\", [input.artifact.name, input.environment.name]) if not input.artifact.provenance\n",
    );
    c.run(&[
        "create",
        "policy",
        "provenance-rego",
        rego.to_str().unwrap(),
        "--type",
        "rego",
    ])
    .ok();
    c.run(&["attach-policy", "provenance-rego", "--environment", "prod"])
        .ok();
    let comp = json(&s, &["get", "compliance", "prod"]);
    assert_eq!(comp["status"], "NON-COMPLIANT");
    // motd is allowlisted; the hot-fixed app has no provenance.
    assert_eq!(reasons(&comp), ["app runs without provenance in prod"]);

    // The ledger holds every evaluation.
    let history = comp["evaluation"].as_i64().unwrap();
    assert!(history >= 6, "{history}");

    // Flows and their tags, policies and where they are attached, the
    // allowlist and every judgement: the store is what its ledger says.
    let audit = c.run(&["ledger", "verify", "--output", "json"]).ok().json();
    assert_eq!(
        audit[0]["problems"].as_array().map(Vec::len),
        Some(0),
        "{audit}"
    );
}

const THRESHOLD: &str = r#"package policy

import rego.v1

threshold := object.get(data, ["params", "threshold"], 10)

default allow := false

allow if input.score >= threshold

violations contains msg if {
    input.score < threshold
    msg := sprintf("score %d is below threshold %d", [input.score, threshold])
}
"#;

both!(rego_evaluates_trails_and_inputs);
fn rego_evaluates_trails_and_inputs(db: Db) {
    let Some(s) = Server::start(db) else { return };
    let c = s.custody();
    let policy = s.write("threshold.rego", THRESHOLD);
    let policy = policy.to_str().unwrap();
    let input = s.write("score.json", "{\"score\": 5}");
    let input = input.to_str().unwrap();
    let denied = c.run(&[
        "evaluate",
        "input",
        "--input-file",
        input,
        "--policy",
        policy,
    ]);
    assert_eq!(denied.code, 1, "{}", denied.stderr);
    assert!(denied.stdout.contains("RESULT: DENIED"));
    assert!(denied.stdout.contains("score 5 is below threshold 10"));
    c.run(&[
        "evaluate",
        "input",
        "--input-file",
        input,
        "--policy",
        policy,
        "--no-assert",
    ])
    .ok();
    let low = s.write("low.json", "{\"threshold\": 3}");
    let allowed = c
        .run(&[
            "evaluate",
            "input",
            "--input-file",
            input,
            "--policy",
            policy,
            "--params",
            &format!("@{}", low.display()),
            "--output",
            "json",
            "--show-input",
        ])
        .ok()
        .json();
    assert_eq!(allowed["allow"], true);
    assert_eq!(allowed["input"]["score"], 5);
    c.run(&[
        "evaluate",
        "input",
        "--input-file",
        input,
        "--policy",
        policy,
        "--params",
        "not-json",
    ])
    .fails(2, "failed to parse --params");
    let wrong_package = s.write("foo.rego", "package foo\n\nallow := true\n");
    c.run(&[
        "evaluate",
        "input",
        "--input-file",
        input,
        "--policy",
        wrong_package.to_str().unwrap(),
    ])
    .fails(2, "policy package must be 'package policy', got 'foo'");
    let undefined = s.write(
        "undefined.rego",
        "package policy\n\nimport rego.v1\n\nallow if input.score > 30\n",
    );
    c.run(&[
        "evaluate",
        "input",
        "--input-file",
        input,
        "--policy",
        undefined.to_str().unwrap(),
    ])
    .fails(2, "policy did not return a result for 'data.policy.allow'");
    let not_json = s.write("bad.json", "{score");
    c.run(&[
        "evaluate",
        "input",
        "--input-file",
        not_json.to_str().unwrap(),
        "--policy",
        policy,
    ])
    .fails(2, "is not valid JSON");

    // Trails in Kosli's document shape.
    c.run(&["create", "flow", "backend"]).ok();
    for t in ["v1", "v2"] {
        c.run(&["begin", "trail", t, "--flow", "backend"]).ok();
        c.run(&[
            "attest",
            "generic",
            "--name",
            "pull-request",
            "--flow",
            "backend",
            "--trail",
            t,
        ])
        .ok();
    }
    c.run(&[
        "attest",
        "generic",
        "--name",
        "unit-tests",
        "--flow",
        "backend",
        "--trail",
        "v2",
        "--compliant=false",
    ])
    .ok();
    let realistic = s.write(
        "realistic.rego",
        "package policy\n\nimport rego.v1\n\nrequired := object.get(data, [\"params\", \"required\"], [\"pull-request\"])\n\ndefault allow := false\n\nallow if count(violations) == 0\n\nviolations contains msg if {\n    some t in trails\n    some name in required\n    not t.compliance_status.attestations_statuses[name].is_compliant\n    msg := sprintf(\"%s: '%s' is missing or non-compliant\", [t.name, name])\n}\n\ntrails := [input.trail] if input.trail\ntrails := input.trails if input.trails\n",
    );
    let realistic = realistic.to_str().unwrap();
    c.run(&[
        "evaluate", "trail", "v1", "--flow", "backend", "--policy", realistic,
    ])
    .ok();
    let r = c.run(&[
        "evaluate",
        "trails",
        "v1",
        "v2",
        "--flow",
        "backend",
        "--policy",
        realistic,
        "--params",
        "{\"required\": [\"pull-request\", \"unit-tests\"]}",
    ]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stdout
            .contains("v1: 'unit-tests' is missing or non-compliant"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("v2: 'unit-tests' is missing or non-compliant"),
        "{}",
        r.stdout
    );
    // --attestations keeps only what it names.
    let r = c.run(&[
        "evaluate",
        "trail",
        "v2",
        "--flow",
        "backend",
        "--policy",
        realistic,
        "--attestations",
        "unit-tests",
    ]);
    assert!(
        r.stdout.contains("v2: 'pull-request' is missing"),
        "{}",
        r.stdout
    );
}

both!(judging_only_what_evidence_names_agrees_with_judging_afresh);
/// After evidence, a judgement re-reads only the artifacts the evidence is
/// about and keeps the other verdicts. Over a seeded run of attestations,
/// redeploys and flow tag changes, every verdict recorded for what runs
/// equals the one an assert draws afresh from the same facts.
fn judging_only_what_evidence_names_agrees_with_judging_afresh(db: Db) {
    use crate::security::call;
    use common::TOKEN;
    let Some(s) = Server::start(db) else { return };
    let org = "/api/v1/orgs/default";
    let send = |method: &str, path: &str, body: Value| {
        let body = (!body.is_null()).then(|| body.to_string().into_bytes());
        let a = call(&s, method, &format!("{org}{path}"), TOKEN, body);
        assert!(a.status < 300, "{method} {path}: {} {}", a.status, a.body);
        a.json()
    };
    // Three trails of two artifacts each: evidence in one trail changes
    // the compliance of both of its artifacts, and of nothing else.
    let fp = |t: usize, i: usize| format!("{:064x}", 0xa000 + t * 16 + i);
    send("PUT", "/flows", serde_json::json!({"name": "svc"}));
    for t in 0..3 {
        send(
            "PUT",
            "/flows/svc/trails",
            serde_json::json!({"name": format!("t{t}")}),
        );
        for i in 0..2 {
            send(
                "POST",
                &format!("/flows/svc/trails/t{t}/artifacts"),
                serde_json::json!({"name": format!("a{i}"), "fingerprint": fp(t, i)}),
            );
        }
    }
    let policy = "_schema: https://docs.kosli.com/schemas/policy/v1\nartifacts:\n  provenance:\n    required: true\n  trail-compliance:\n    required: true\n  attestations:\n    - name: unit-tests\n      type: generic\n      if: ${{ flow.tags.risk-level == \"high\" }}\n";
    send(
        "PUT",
        "/policies/prod",
        serde_json::json!({"content": policy}),
    );
    send(
        "PUT",
        "/environments/prod",
        serde_json::json!({"type": "k8s"}),
    );
    send(
        "POST",
        "/environments/prod/policies",
        serde_json::json!({"policy_names": ["prod"]}),
    );
    // Six workloads; each runs one of its trail's artifacts, or an
    // artifact nobody reported.
    let mut running: Vec<Option<usize>> = vec![Some(0); 6];
    let report = |running: &[Option<usize>]| {
        let artifacts: Vec<Value> = running
            .iter()
            .enumerate()
            .map(|(w, which)| {
                let f = match which {
                    Some(i) => fp(w % 3, *i),
                    None => format!("{:064x}", 0xf000 + w),
                };
                serde_json::json!({"name": format!("w{w}"), "fingerprint": f,
                    "instances": [{"id": format!("w{w}-pod"), "started_at": 1_700_000_000_000u64}]})
            })
            .collect();
        send(
            "PUT",
            "/environments/prod/report",
            serde_json::json!({"type": "k8s", "artifacts": artifacts}),
        );
    };
    report(&running);
    let mut seed: u64 = 0x5eed;
    let mut next = |n: u64| {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) % n
    };
    for step in 0..60 {
        match next(4) {
            0 | 1 => {
                let t = next(3);
                let name = ["unit-tests", "lint"][next(2) as usize];
                send(
                    "POST",
                    &format!("/flows/svc/trails/t{t}/attestations"),
                    serde_json::json!({"name": name, "type": "generic", "compliant": next(3) != 0}),
                );
            }
            2 => {
                let w = next(6) as usize;
                running[w] = match next(3) {
                    2 => None,
                    i => Some(i as usize),
                };
                report(&running);
            }
            _ => {
                let risk = ["high", "low"][next(2) as usize];
                send(
                    "PATCH",
                    "/flows/svc/tags",
                    serde_json::json!({"set": {"risk-level": risk}}),
                );
            }
        }
        let recorded = send("GET", "/environments/prod/compliance", Value::Null);
        let verdicts = recorded["policies"][0]["artifacts"].as_array().unwrap();
        assert_eq!(verdicts.len(), 6, "step {step}: {recorded}");
        for v in verdicts {
            let fresh = send(
                "POST",
                "/assert/artifact",
                serde_json::json!({"fingerprint": v["fingerprint"], "environment": "prod"}),
            );
            let fresh = &fresh["policy_evaluations"][0]["artifacts"][0];
            assert_eq!(
                (&v["compliant"], &v["rules"]),
                (&fresh["compliant"], &fresh["rules"]),
                "step {step}: {} recorded {v}, judged afresh {fresh}",
                v["name"]
            );
        }
    }
}
