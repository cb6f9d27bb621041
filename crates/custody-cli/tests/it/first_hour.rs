//! A new user's first hour: what they run first, and what they see.

use crate::common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use common::{Db, Server};

/// Runs `custody ARGS` with its output going to a reader that takes one
/// line and goes away, as `custody ... | head -1` does.
fn into_a_short_pipe(s: &Server, args: &[&str]) -> (Option<i32>, String) {
    let mut cmd = s.custody().command();
    cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    // The reader is gone: the pipe is closed.
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_closed_pipe_ends_the_output_not_the_command() {
    let Some(s) = Server::start(Db::Sqlite) else {
        return;
    };
    let c = s.custody();
    // Enough output that it cannot all sit in the pipe's buffer.
    for i in 0..300 {
        c.run(&[
            "create",
            "flow",
            &format!("flow-{i:03}"),
            "--description",
            &"a flow with a long description ".repeat(10),
        ])
        .ok();
    }
    for args in [
        &["list", "flows", "--output", "json"][..],
        &["list", "flows"][..],
    ] {
        let (code, stderr) = into_a_short_pipe(&s, args);
        assert_eq!(code, Some(0), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(stderr.is_empty(), "{args:?}: {stderr}");
    }
    // A gate keeps its verdict: 1 for non-compliant, whatever reads it.
    c.run(&["create", "environment", "prod", "--type", "server"])
        .ok();
    let policy = s.write(
        "p.yml",
        "_schema: https://docs.kosli.com/schemas/policy/v1\nartifacts:\n  provenance:\n    required: true\n",
    );
    c.run(&["create", "policy", "prov", policy.to_str().unwrap()])
        .ok();
    c.run(&["attach-policy", "prov", "--environment", "prod"])
        .ok();
    let (code, stderr) = into_a_short_pipe(
        &s,
        &[
            "assert",
            "artifact",
            "--fingerprint",
            &"e".repeat(64),
            "--environment",
            "prod",
        ],
    );
    assert_eq!(code, Some(1), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// The instance count of `name` in a snapshot, 0 when it does not run.
fn count_in(snapshot: &serde_json::Value, name: &str) -> u64 {
    snapshot["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == name)
        .map_or(0, |a| a["instance_count"].as_u64().unwrap())
}

/// Sends a report as a reporter does, over HTTP.
fn put_report(s: &Server, env: &str, body: serde_json::Value) {
    let url = format!("{}/api/v1/orgs/default/environments/{env}/report", s.url);
    let status = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async move {
            reqwest::Client::new()
                .put(url)
                .bearer_auth(common::TOKEN)
                .json(&body)
                .send()
                .await
                .unwrap()
                .status()
        });
    assert!(status.is_success(), "{status}");
}

#[test]
fn alerts_carry_the_counts_of_the_snapshot_they_describe() {
    use common::receiver::{Behaviour, Receiver};
    let Some(s) = Server::start(Db::Sqlite) else {
        return;
    };
    let c = s.custody();
    c.run(&["create", "environment", "prod", "--type", "server"])
        .ok();
    let policy = s.write(
        "p.yml",
        "_schema: https://docs.kosli.com/schemas/policy/v1\nartifacts:\n  provenance:\n    required: true\n",
    );
    c.run(&["create", "policy", "prov", policy.to_str().unwrap()])
        .ok();
    c.run(&["attach-policy", "prov", "--environment", "prod"])
        .ok();
    let hook = Receiver::start(Behaviour::Ok);
    c.run(&[
        "create",
        "action",
        "all",
        "--environment",
        "prod",
        "--on",
        "non-compliant,compliant-again,unknown-artifact,artifact-started,artifact-stopped",
        "--webhook",
        &hook.url,
    ])
    .ok();
    // Two instances of an unknown artifact start; then a third; then it
    // is allowlisted (compliant again) and stops.
    let fp = "c".repeat(64);
    let report = |n: usize| {
        let artifacts = if n == 0 {
            serde_json::json!([])
        } else {
            let instances: Vec<_> = (0..n)
                .map(|i| serde_json::json!({"id": format!("w{i}")}))
                .collect();
            serde_json::json!([{"name": "miner", "fingerprint": fp, "instances": instances}])
        };
        put_report(
            &s,
            "prod",
            serde_json::json!({"type": "server", "artifacts": artifacts}),
        );
    };
    report(2);
    report(3);
    c.run(&[
        "allow",
        "artifact",
        "--fingerprint",
        &fp,
        "--environment",
        "prod",
        "--reason",
        "known",
    ])
    .ok();
    report(0);
    common::wait_for("five deliveries", || hook.requests().len() >= 5);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let payloads: Vec<serde_json::Value> = hook.requests().iter().map(|r| r.json()).collect();
    let triggers: Vec<&str> = payloads
        .iter()
        .map(|p| p["trigger"].as_str().unwrap())
        .collect();
    for t in [
        "unknown-artifact",
        "artifact-started",
        "non-compliant",
        "compliant-again",
        "artifact-stopped",
    ] {
        assert!(triggers.contains(&t), "no {t} in {triggers:?}");
    }
    for p in &payloads {
        let n = p["snapshot"]["index"].as_u64().unwrap();
        let snap = c
            .run(&["get", "snapshot", &format!("prod#{n}"), "--output", "json"])
            .ok()
            .json();
        let before = if n > 1 {
            c.run(&[
                "get",
                "snapshot",
                &format!("prod#{}", n - 1),
                "--output",
                "json",
            ])
            .ok()
            .json()
        } else {
            serde_json::json!({"artifacts": []})
        };
        for a in p["artifacts"].as_array().unwrap() {
            let name = a["name"].as_str().unwrap();
            let counts = &a["instances"];
            assert_eq!(
                counts["now"].as_u64(),
                Some(count_in(&snap, name)),
                "{}: {p}",
                p["trigger"]
            );
            let changed = snap["artifacts"]
                .as_array()
                .unwrap()
                .iter()
                .any(|x| x["name"] == name && !x["change"].is_null())
                || snap["stopped"]
                    .as_array()
                    .is_some_and(|s| s.iter().any(|x| x["name"] == name));
            let was = if changed {
                count_in(&before, name)
            } else {
                count_in(&snap, name)
            };
            assert_eq!(counts["was"].as_u64(), Some(was), "{}: {p}", p["trigger"]);
        }
    }
}

#[test]
fn a_key_works_in_its_own_organisation_without_naming_it() {
    let Some(s) = Server::start(Db::Sqlite) else {
        return;
    };
    let admin = s.custody();
    let acme_key = admin
        .run(&["create", "org", "acme", "--output", "json"])
        .ok()
        .json()["api_key"]
        .as_str()
        .unwrap()
        .to_string();
    let acme = admin.with_token(&acme_key);
    // No --org: the key's own organisation.
    acme.run(&["create", "flow", "web"]).ok();
    let flows = acme.run(&["list", "flows", "--output", "json"]).ok().json();
    assert_eq!(flows[0]["name"], "web", "{flows}");
    // The server admin acts in the organisations it created.
    let seen = admin
        .run(&["list", "flows", "--org", "acme", "--output", "json"])
        .ok()
        .json();
    assert_eq!(seen[0]["name"], "web", "{seen}");
    admin.run(&["create", "flow", "ops", "--org", "acme"]).ok();
    // Another organisation stays sealed, and the error says whose key it is.
    acme.run(&["--org", "default", "list", "flows"])
        .fails(2, "this key is of org 'acme'");
}

/// The README's first session, the block after its `first-session`
/// marker, run line by line by bash against a real server, in a git
/// repository, as a newcomer would paste it.
#[test]
fn the_readmes_first_session_runs_as_written() {
    let readme = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md"),
    )
    .unwrap();
    let after = readme
        .split_once("<!-- first-session")
        .expect("the README marks its first session")
        .1;
    let block = after
        .split_once("```sh\n")
        .unwrap()
        .1
        .split_once("\n```")
        .unwrap()
        .0;
    let Some(s) = Server::start(Db::Sqlite) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let git = |args: &[&str]| {
        let out = std::process::Command::new("git")
            .args(args)
            .current_dir(dir.path())
            .env("GIT_AUTHOR_NAME", "Newcomer")
            .env("GIT_AUTHOR_EMAIL", "new@example.com")
            .env("GIT_COMMITTER_NAME", "Newcomer")
            .env("GIT_COMMITTER_EMAIL", "new@example.com")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    git(&["init", "-q"]);
    std::fs::write(dir.path().join("main.rs"), "fn main() {}\n").unwrap();
    git(&["add", "."]);
    git(&["commit", "-q", "-m", "first"]);
    // Where the server the newcomer started keeps its first key.
    std::fs::create_dir_all(dir.path().join("custody-data")).unwrap();
    std::fs::write(
        dir.path().join("custody-data/bootstrap-token"),
        format!("{}\n", common::TOKEN),
    )
    .unwrap();
    let bin_dir = std::path::Path::new(common::bin()).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = std::process::Command::new("bash")
        .args(["-e", "-o", "pipefail", "-c", block])
        .current_dir(dir.path())
        .env("PATH", path)
        .env("CUSTODY_HOST", &s.url)
        .env("HOME", dir.path())
        .env("CUSTODY_NO_CI_DETECT", "1")
        .env_remove("CUSTODY_API_TOKEN")
        .env_remove("CUSTODY_ORG")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stdout: {stdout}\nstderr: {stderr}");
    assert!(stdout.contains("COMPLIANT"), "{stdout}");
    assert!(!stdout.contains("NON-COMPLIANT"), "{stdout}");
    // The search by commit found the build.
    assert!(stdout.contains("backend"), "{stdout}");
}

#[test]
fn errors_say_what_is_wrong_in_plain_words() {
    let Some(s) = Server::start(Db::Sqlite) else {
        return;
    };
    let c = s.custody();
    // A Rego file is taken for Rego without --type.
    let rego = s.write(
        "gate.rego",
        "package policy\n\nimport rego.v1\n\ndefault allow := false\n\nallow if input.ok\n",
    );
    c.run(&["create", "policy", "gate", rego.to_str().unwrap()])
        .ok();
    let p = c
        .run(&["get", "policy", "gate", "--output", "json"])
        .ok()
        .json();
    assert_eq!(p["type"], "rego", "{p}");
    // ...and so is a file whose first statement is a package.
    let plain = s.write(
        "gate.txt",
        "# a gate\npackage policy\n\ndefault allow := false\n",
    );
    c.run(&["create", "policy", "gate2", plain.to_str().unwrap()])
        .ok();
    // Told it is a policy v1 file, it says to use --type rego.
    c.run(&[
        "create",
        "policy",
        "gate3",
        rego.to_str().unwrap(),
        "--type",
        "kosli",
    ])
    .fails(2, "looks like Rego: use --type rego");
    // Rego errors name the file, and the Rego library's own chatter does
    // not reach the user.
    let bad = s.write(
        "sched.rego",
        "package policy\n\nimport rego.v1\n\ndefault allow := false\n\nallow if {\n    x = y; y = x\n}\n",
    );
    let input = s.write("in.json", "{}");
    let r = c
        .run(&[
            "evaluate",
            "input",
            "--input-file",
            input.to_str().unwrap(),
            "--policy",
            bad.to_str().unwrap(),
        ])
        .fails(2, "sched.rego:8:");
    assert!(!r.stderr.contains("could not schedule"), "{}", r.stderr);
    assert!(!r.stderr.contains("policy.rego"), "{}", r.stderr);
    // A snapshot that does not exist, said as a sentence.
    c.run(&["create", "environment", "prod", "--type", "server"])
        .ok();
    c.run(&["get", "snapshot", "prod#12"]).fails(
        2,
        "snapshot 'prod#12' does not exist: environment 'prod' has no snapshot yet",
    );
    // An OS error, once.
    let r = c
        .run(&["fingerprint", "nope", "--artifact-type", "file"])
        .fails(2, "nope: No such file or directory");
    assert_eq!(r.stderr.matches("No such file").count(), 1, "{}", r.stderr);
}

#[test]
fn a_new_control_version_keeps_what_was_not_given() {
    let Some(s) = Server::start(Db::Sqlite) else {
        return;
    };
    let c = s.custody();
    c.run(&["create", "control", "RCTL-1"])
        .fails(2, "creating it needs --name");
    c.run(&[
        "create",
        "control",
        "RCTL-1",
        "--name",
        "Change approval",
        "--description",
        "Two people approve",
        "--link",
        "https://wiki.example.com/rctl-1",
        "--tag",
        "risk=high",
    ])
    .ok();
    // Only the name changes; description, link and tag stay.
    let r = c
        .run(&[
            "update",
            "control",
            "RCTL-1",
            "--name",
            "Change approval (4 eyes)",
        ])
        .ok();
    assert!(r.stdout.contains("version 2: name changed"), "{}", r.stdout);
    let v = c
        .run(&["get", "control", "RCTL-1", "--output", "json"])
        .ok()
        .json();
    let last = &v.as_array().unwrap()[1];
    assert_eq!(last["name"], "Change approval (4 eyes)");
    assert_eq!(last["description"], "Two people approve");
    assert_eq!(last["links"][0], "https://wiki.example.com/rctl-1");
    assert_eq!(last["tags"]["risk"], "high");
    c.run(&[
        "create",
        "control",
        "RCTL-1",
        "--tag",
        "owner=sec",
        "--untag",
        "risk",
    ])
    .ok();
    let table = c.run(&["get", "control", "RCTL-1"]).ok();
    assert!(table.stdout.contains("owner=sec"), "{}", table.stdout);
    assert!(!table.stdout.contains("risk=high"), "{}", table.stdout);
    let same = c.run(&["create", "control", "RCTL-1"]).ok();
    assert!(same.stdout.contains("unchanged"), "{}", same.stdout);
    // A flow's tags, which policies read, show in its table too.
    c.run(&["create", "flow", "web"]).ok();
    c.run(&["tag", "flow", "web", "--set", "risk-level=high"])
        .ok();
    let f = c.run(&["get", "flow", "web"]).ok();
    assert!(f.stdout.contains("risk-level=high"), "{}", f.stdout);
}

#[test]
fn a_failed_start_creates_nothing_and_logs_are_plain() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let run = |env: &[(&str, &str)], listen: &str| {
        let mut cmd = std::process::Command::new(common::bin());
        cmd.args(["server", "--listen", listen, "--data-dir"])
            .arg(&data)
            .env_remove("CUSTODY_BOOTSTRAP_TOKEN");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    };
    // An address that cannot be listened on: nothing bootstrapped.
    let out = run(&[], "256.0.0.1:0");
    assert_ne!(out.status.code(), Some(0));
    assert!(!data.join("custody.db").exists());
    assert!(!data.join("bootstrap-token").exists());
    // An invalid bootstrap token is the operator's input: exit 2.
    let out = run(&[("CUSTODY_BOOTSTRAP_TOKEN", "short")], "127.0.0.1:0");
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least 16 characters"));

    // Requests are logged at the default level, without colour codes when
    // the log is not a terminal, with the id the answer carries.
    let mut child = std::process::Command::new(common::bin())
        .args(["server", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("other"))
        .env("CUSTODY_BOOTSTRAP_TOKEN", common::TOKEN)
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = loop {
        let l = lines.next().unwrap().unwrap();
        if let Some(u) = l.strip_prefix("custody server listening on ") {
            break u.to_string();
        }
    };
    let c = common::Cli::new(&url, common::TOKEN, dir.path());
    c.run(&["list", "flows"]).ok();
    let id = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            reqwest::Client::new()
                .get(format!("{url}/api/v1/whoami"))
                .bearer_auth(common::TOKEN)
                .send()
                .await
                .unwrap()
                .headers()
                .get("x-request-id")
                .unwrap()
                .to_str()
                .unwrap()
                .to_string()
        });
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(!log.contains('\u{1b}'), "{log}");
    assert!(log.contains(&format!("request_id={id}")), "{log}");
    assert!(
        log.contains("path=\"/api/v1/orgs/default/flows\"")
            || log.contains("path=/api/v1/orgs/default/flows"),
        "{log}"
    );
    assert!(log.contains("status=200"), "{log}");
}

/// A Python tool, or None (the test is then skipped, unless the test
/// command asks for every tool).
fn tool(name: &str) -> Option<String> {
    let found = std::process::Command::new(name)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if found {
        return Some(name.to_string());
    }
    assert!(
        std::env::var_os("CUSTODY_REQUIRE_TOOLS").is_none(),
        "{name} is needed (pip install {name})"
    );
    eprintln!("skipping: {name} is not installed");
    None
}

/// The OpenAPI document is valid (`openapi-spec-validator`), and the live
/// server answers as it says: no server error, no undocumented status or
/// content type, every answer in its documented schema (`schemathesis`).
#[test]
fn the_openapi_document_is_valid_and_the_server_keeps_to_it() {
    let Some(validator) = tool("openapi-spec-validator") else {
        return;
    };
    let Some(st) = tool("st") else { return };
    let Some(s) = Server::start(Db::Sqlite) else {
        return;
    };
    let url = format!("{}/api/v1/openapi.json", s.url);
    let doc = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async { reqwest::get(&url).await.unwrap().text().await.unwrap() });
    let file = s.write("openapi.json", &doc);
    let out = std::process::Command::new(&validator)
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Something to find, so that operations get past 404s.
    let c = s.custody();
    c.run(&["create", "flow", "f"]).ok();
    c.run(&["begin", "trail", "t", "--flow", "f"]).ok();
    c.run(&["create", "environment", "e", "--type", "server"])
        .ok();
    let out = std::process::Command::new(&st)
        .args(["run", &url, "-H"])
        .arg(format!("Authorization: Bearer {}", common::TOKEN))
        .args([
            "-n",
            "15",
            "--seed",
            "1",
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
        ])
        .env("NO_COLOR", "1")
        // It keeps a cache in its working directory: the test's, not the
        // source tree.
        .current_dir(s.path(""))
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn help_says_what_each_command_does_and_both_argument_styles_work() {
    let Some(s) = Server::start(Db::Sqlite) else {
        return;
    };
    let c = s.custody();
    // The server's help is the server's: no client flags, and the
    // variables it reads besides its flags.
    let help = c.run(&["server", "--help"]).ok().stdout;
    for client_flag in ["--api-token", "--host", "--org", "--dry-run", "--output"] {
        assert!(!help.contains(client_flag), "{client_flag} in: {help}");
    }
    for said in [
        "--listen",
        "--data-dir",
        "CUSTODY_BOOTSTRAP_TOKEN",
        "RUST_LOG",
    ] {
        assert!(help.contains(said), "{said} not in: {help}");
    }
    // `create --help` names all it creates.
    let help = c.run(&["create", "--help"]).ok().stdout;
    let about = help.lines().take(3).collect::<Vec<_>>().join(" ");
    for thing in [
        "organisations",
        "service accounts",
        "API keys",
        "flows",
        "environments",
        "policies",
        "controls",
        "actions",
        "attestation types",
    ] {
        assert!(about.contains(thing), "'{thing}' not in: {about}");
    }
    // The key may come from the environment: not a required flag.
    let help = c.run(&["create", "flow", "--help"]).ok().stdout;
    let usage = help.lines().find(|l| l.starts_with("Usage:")).unwrap();
    assert!(!usage.contains("--api-token"), "{usage}");

    // A name as an argument or as a flag, both.
    c.run(&["create", "service-account", "ci", "--role", "ci"])
        .ok();
    let k1 = c
        .run(&["create", "api-key", "ci", "--output", "json"])
        .ok()
        .json();
    let k2 = c
        .run(&[
            "create",
            "api-key",
            "--service-account",
            "ci",
            "--output",
            "json",
        ])
        .ok()
        .json();
    assert_eq!(k1["service_account"], "ci", "{k1}");
    assert_eq!(k2["service_account"], "ci", "{k2}");
    assert_ne!(k1["key"], k2["key"]);
    c.run(&["create", "api-key"]).fails(2, "--service-account");
    c.run(&["create", "environment", "prod", "--type", "server"])
        .ok();
    let fingerprint = "a".repeat(64);
    c.run(&[
        "allow",
        "artifact",
        "--fingerprint",
        &fingerprint,
        "--environment",
        "prod",
        "--reason",
        "static welcome file",
    ])
    .ok();
    let by_argument = c
        .run(&["list", "allowlist", "prod", "--output", "json"])
        .ok()
        .json();
    let by_flag = c
        .run(&[
            "list",
            "allowlist",
            "--environment",
            "prod",
            "--output",
            "json",
        ])
        .ok()
        .json();
    assert_eq!(by_argument, by_flag);
    assert_eq!(by_flag[0]["fingerprint"], fingerprint.as_str(), "{by_flag}");

    // --archived says which are.
    c.run(&["create", "environment", "old", "--type", "server"])
        .ok();
    c.run(&["archive", "environment", "old"]).ok();
    let listed = c.run(&["list", "environments", "--archived"]).ok().stdout;
    let row = |name: &str| {
        listed
            .lines()
            .find(|l| l.contains(&format!(" {name} ")))
            .unwrap_or_else(|| panic!("{name} not in: {listed}"))
            .to_string()
    };
    assert!(row("old").contains("archived"), "{listed}");
    assert!(row("prod").contains("active"), "{listed}");
}

#[test]
fn the_smaller_edges_of_the_first_hour() {
    let Some(s) = Server::start_with(
        Db::Sqlite,
        &["--public-url", "https://custody.example.com/"],
    ) else {
        return;
    };
    let c = s.custody();
    // A template may not require a custom type that does not exist...
    let template = s.write(
        "t.yml",
        "version: 1\ntrail:\n  artifacts:\n  - name: app\n    attestations:\n    - name: unit-tests\n      type: junit\n    - name: cover\n      type: custom:coverage\n",
    );
    let t = template.to_str().unwrap();
    c.run(&["create", "flow", "web", "-f", t])
        .fails(2, "custom:coverage (attestation 'cover' on artifact 'app')");
    c.run(&["get", "flow", "web"]).fails(2, "does not exist");
    // ...and once it does, it may.
    let schema = s.write("schema.json", r#"{"type": "object"}"#);
    c.run(&[
        "create",
        "attestation-type",
        "coverage",
        "--schema",
        schema.to_str().unwrap(),
    ])
    .ok();
    c.run(&["create", "flow", "web", "-f", t]).ok();

    // Evidence for an artifact that was never reported is not compliance.
    c.run(&["begin", "trail", "t1", "--flow", "web"]).ok();
    let junit = s.write(
        "results/junit.xml",
        r#"<testsuite name="s" tests="1" failures="0" errors="0"><testcase name="a" classname="c"/></testsuite>"#,
    );
    let results = junit.parent().unwrap().to_str().unwrap();
    c.run(&[
        "attest",
        "junit",
        "--name",
        "ghost.unit-tests",
        "--flow",
        "web",
        "--trail",
        "t1",
        "--results-dir",
        results,
    ])
    .ok();
    let trail = c
        .run(&["get", "trail", "t1", "--flow", "web", "--output", "json"])
        .ok()
        .json();
    let ghost = trail["compliance"]["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "ghost")
        .unwrap_or_else(|| panic!("{trail}"));
    assert_eq!(ghost["status"], "MISSING", "{ghost}");
    assert_eq!(ghost["compliant"], false, "{ghost}");
    let table = c.run(&["get", "trail", "t1", "--flow", "web"]).ok().stdout;
    let row = table
        .lines()
        .find(|l| l.contains("ghost") && l.contains("(artifact)"))
        .unwrap();
    assert!(!row.contains("COMPLIANT"), "{table}");
    assert!(
        table.contains("'ghost' has evidence but has not been reported"),
        "{table}"
    );

    // evaluate --attestations with a name the trail lacks says so.
    let rego = s.write(
        "p.rego",
        "package policy\n\nimport rego.v1\n\ndefault allow := true\n",
    );
    c.run(&[
        "evaluate",
        "trail",
        "t1",
        "--flow",
        "web",
        "--policy",
        rego.to_str().unwrap(),
        "--attestations",
        "app.unit-tests,app.unit-test",
    ])
    .fails(
        2,
        "has no attestation 'app.unit-test' (it has: app.unit-tests, app.cover, ghost.unit-tests)",
    );

    // assert links to the trail at the server's public URL.
    let app = s.write("app.bin", "app");
    c.run(&[
        "attest",
        "artifact",
        app.to_str().unwrap(),
        "--artifact-type",
        "file",
        "--name",
        "app",
        "--flow",
        "web",
        "--trail",
        "t1",
    ])
    .ok();
    let out = c.run(&[
        "assert",
        "artifact",
        app.to_str().unwrap(),
        "--artifact-type",
        "file",
        "--flow",
        "web",
    ]);
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout
            .contains("See more details at https://custody.example.com/api/v1/orgs/default/flows/web/trails/t1"),
        "{}",
        out.stdout
    );

    // Reports in one moment are one stretch of observation: no gap of
    // nothing between them.
    c.run(&["create", "environment", "box", "--type", "server"])
        .ok();
    for _ in 0..3 {
        put_report(
            &s,
            "box",
            serde_json::json!({"type": "server", "artifacts": []}),
        );
    }
    let env = c
        .run(&["get", "environment", "box", "--output", "json"])
        .ok()
        .json();
    let observed = env["coverage"]["observed"].as_array().unwrap();
    let first = observed[0]["from"].as_i64().unwrap();
    let last = observed[observed.len() - 1]["to"].as_i64().unwrap();
    for g in env["coverage"]["gaps"].as_array().unwrap() {
        let to = g["to"].as_i64().unwrap_or(i64::MAX);
        assert!(to - g["from"].as_i64().unwrap() >= 1000, "{env}");
    }
    if last - first < 1000 {
        assert_eq!(observed.len(), 1, "{env}");
        assert_eq!(observed[0]["reports"], 3, "{env}");
    }
}
