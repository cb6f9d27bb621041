//! Environments and what runs in them, end to end: the real CLI against a
//! real server, on SQLite and PostgreSQL. Reporters here read real
//! directories (`snapshot paths` and `snapshot path`), changed while a
//! watching reporter runs.

use crate::common;

use std::time::Duration;

use common::{Db, Server};
use serde_json::Value;

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

fn json(s: &Server, args: &[&str]) -> Value {
    let mut a = args.to_vec();
    a.extend(["--output", "json"]);
    s.custody().run(&a).ok().json()
}

both!(environments_are_created_listed_renamed_and_archived);
fn environments_are_created_listed_renamed_and_archived(db: Db) {
    let Some(s) = Server::start(db) else { return };
    let c = s.custody();
    for (name, kind) in [
        ("eu", "k8s"),
        ("us", "K8S"),
        ("boxes", "docker"),
        ("files", "server"),
    ] {
        c.run(&[
            "create",
            "environment",
            name,
            "--type",
            kind,
            "--description",
            "d",
        ])
        .ok();
    }
    c.run(&[
        "create",
        "environment",
        "prod",
        "--type",
        "logical",
        "--included-environments",
        "eu,us",
    ])
    .ok();
    let list = json(&s, &["list", "environments"]);
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["boxes", "eu", "files", "prod", "us"]);
    let prod = json(&s, &["get", "environment", "prod"]);
    assert_eq!(prod["type"], "logical");
    assert_eq!(
        prod["included_environments"],
        serde_json::json!(["eu", "us"])
    );

    c.run(&["rename", "environment", "files", "servers"]).ok();
    c.run(&["get", "environment", "files"])
        .fails(2, "environment 'files' does not exist");
    c.run(&["archive", "environment", "servers"]).ok();
    let list = json(&s, &["list", "environments"]);
    assert_eq!(list.as_array().unwrap().len(), 4);
    let all = json(&s, &["list", "environments", "--archived"]);
    assert_eq!(all.as_array().unwrap().len(), 5);

    // Bad input: exit 2, named.
    c.run(&["create", "environment", "x", "--type", "azure"])
        .fails(2, "unknown environment type 'azure'");
    c.run(&["create", "environment", "bad~name", "--type", "k8s"])
        .fails(2, "environment name 'bad~name' is invalid");
    c.run(&[
        "create",
        "environment",
        "y",
        "--type",
        "k8s",
        "--included-environments",
        "eu",
    ])
    .fails(2, "--included-environments is only for --type logical");
    c.run(&[
        "create",
        "environment",
        "z",
        "--type",
        "logical",
        "--included-environments",
        "nope",
    ])
    .fails(2, "included environment 'nope' does not exist");
    c.run(&["create", "environment", "eu", "--type", "logical"])
        .fails(2, "its type cannot become logical");

    // Created, renamed, archived: each environment row is what its
    // entries say.
    let audit = c.run(&["ledger", "verify", "--output", "json"]).ok().json();
    assert_eq!(
        audit[0]["problems"].as_array().map(Vec::len),
        Some(0),
        "{audit}"
    );
}

/// A small deployed tree: `app/bin` and `app/conf/settings`, plus a log
/// that the paths file excludes.
fn deploy(s: &Server, version: &str) {
    s.write("srv/app/bin", &format!("binary {version}\n"));
    s.write("srv/app/conf/settings", "port = 8080\n");
    s.write("srv/app/logs/today.log", &format!("noise {version}\n"));
    s.write("srv/motd", "welcome\n");
}

both!(paths_are_reported_and_history_answers_questions);
fn paths_are_reported_and_history_answers_questions(db: Db) {
    let Some(s) = Server::start(db) else { return };
    let c = s.custody();
    deploy(&s, "1");
    let paths = s.write(
        "paths.yml",
        "version: 1\nartifacts:\n  app:\n    path: srv/app\n    exclude: [\"logs/*\", \"logs\"]\n  motd:\n    path: srv/motd\n",
    );
    let paths = paths.to_str().unwrap();

    // Unknown environment without --auto-environment: nothing is created.
    c.run(&["snapshot", "paths", "web", "--paths-file", paths])
        .fails(2, "environment 'web' does not exist");
    let r = c
        .run(&[
            "snapshot",
            "paths",
            "web",
            "--paths-file",
            paths,
            "--auto-environment",
        ])
        .ok();
    assert!(
        r.stdout
            .contains("[2] artifacts were reported to environment web"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("UNKNOWN: app"), "{}", r.stdout);
    // The same again: no new snapshot.
    let again = json(&s, &["snapshot", "paths", "web", "--paths-file", paths]);
    assert_eq!(again["changed"], false);
    assert_eq!(again["snapshot"], 1);

    // The app's fingerprint is what `custody fingerprint` says, logs excluded.
    let app_v1 = s
        .custody()
        .run(&[
            "fingerprint",
            s.path("srv/app").to_str().unwrap(),
            "--artifact-type",
            "dir",
            "--exclude",
            "logs/*,logs",
        ])
        .ok()
        .stdout
        .trim()
        .to_string();
    let motd = sha256_hex(b"welcome\n");
    let snap = json(&s, &["get", "snapshot", "web"]);
    let arts = snap["artifacts"].as_array().unwrap();
    assert_eq!(arts.len(), 2);
    assert_eq!(arts[0]["name"], "app");
    assert_eq!(arts[0]["fingerprint"], app_v1.as_str());
    assert_eq!(arts[0]["unknown"], true);
    assert_eq!(arts[1]["fingerprint"], motd.as_str());
    assert_eq!(snap["unknown"], 2);

    // Provenance reported later is reflected when read.
    c.built("backend", "v1", "app", &app_v1);
    let snap = json(&s, &["get", "snapshot", "web"]);
    let app = &snap["artifacts"][0];
    assert_eq!(app["unknown"], false);
    assert_eq!(app["provenance"][0]["flow"], "backend");
    assert_eq!(app["provenance"][0]["trail"], "v1");
    assert_eq!(snap["unknown"], 1);

    // A new version: the old app stops, the new one starts; logs do not count.
    std::thread::sleep(Duration::from_millis(5));
    let before_v2 = jiff::Timestamp::now();
    std::thread::sleep(Duration::from_millis(5));
    deploy(&s, "2");
    let r = json(&s, &["snapshot", "paths", "web", "--paths-file", paths]);
    assert_eq!(r["changed"], true);
    assert_eq!(r["snapshot"], 2);
    let mut kinds: Vec<(&str, &str)> = r["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["name"].as_str().unwrap(), c["kind"].as_str().unwrap()))
        .collect();
    kinds.sort();
    assert_eq!(kinds, vec![("app", "started"), ("app", "stopped")]);

    // Snapshot expressions.
    let first = json(&s, &["get", "snapshot", "web#1"]);
    assert_eq!(first["artifacts"][0]["fingerprint"], app_v1.as_str());
    let behind = json(&s, &["get", "snapshot", "web~1"]);
    assert_eq!(behind["index"], 1);
    let at = format!("web@{{{}}}", before_v2.strftime("%Y-%m-%dT%H:%M:%S%.3fZ"));
    assert_eq!(json(&s, &["get", "snapshot", &at])["index"], 1);
    assert_eq!(
        json(&s, &["get", "snapshot", "web@{1.hours.ago}"])["index"],
        0
    );
    c.run(&["get", "snapshot", "web#9"])
        .fails(2, "has 2 snapshots");
    c.run(&["get", "snapshot", "web#x"])
        .fails(2, "#N needs a snapshot number");

    let list = json(&s, &["list", "snapshots", "web"]);
    assert_eq!(list["total"], 2);
    assert_eq!(list["items"][0]["index"], 2);
    let ranged = json(&s, &["list", "snapshots", "web", "--interval", "1..1"]);
    assert_eq!(ranged["items"].as_array().unwrap().len(), 1);

    let diff = json(
        &s,
        &["diff", "snapshots", "web#1", "web#2", "--show-unchanged"],
    );
    assert_eq!(diff["only_in_first"][0]["fingerprint"], app_v1.as_str());
    assert_eq!(
        diff["only_in_first"][0]["flows"],
        serde_json::json!(["backend"])
    );
    assert_eq!(diff["only_in_second"][0]["name"], "app");
    assert_eq!(diff["unchanged"][0]["name"], "motd");
    let table = c.run(&["diff", "snapshots", "web#1", "web#2"]).ok().stdout;
    assert!(
        table.contains("only in web#1") && table.contains("only in web#2"),
        "{table}"
    );

    let log = json(&s, &["log", "environment", "web"]);
    assert_eq!(log["total"], 4);
    assert_eq!(log["items"][0]["snapshot"], 2);
    assert_eq!(
        log["items"][3]["description"],
        "1 instance started running (from 0 to 1)"
    );
    let recent = json(
        &s,
        &[
            "log",
            "environment",
            "web",
            "--since",
            &before_v2.to_string(),
        ],
    );
    assert_eq!(recent["total"], 2);

    // Where has v1 run? In web, from snapshot 1 to 1.
    let found = json(&s, &["search", &app_v1[..12]]);
    assert_eq!(found["runtime"][0]["environment"], "web");
    assert_eq!(found["runtime"][0]["last_snapshot"], 1);
    assert_eq!(found["artifacts"][0]["flow"], "backend");
    let table = c.run(&["search", &app_v1[..12]]).ok().stdout;
    assert!(table.contains("web"), "{table}");

    let env = json(&s, &["get", "environment", "web"]);
    assert_eq!(env["latest_snapshot"], 2);
    // Three one-shot reports: one stretch when they came within a second
    // of each other, else more.
    let reports: u64 = env["coverage"]["observed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["reports"].as_u64().unwrap())
        .sum();
    assert_eq!(reports, 3, "{env}");
    assert_eq!(env["last_report"]["artifacts"], 2);
    assert!(env["last_report"]["reporter"].is_string());
    let first_app = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|e| e["name"] == "app")
        .unwrap();
    let app_path = std::fs::canonicalize(s.path("srv/app")).unwrap();
    assert_eq!(
        first_app["instances"][0]["attributes"]["path"],
        app_path.to_str().unwrap()
    );

    // The intervals "what ran at T" reads are what the snapshot entries'
    // changes imply.
    let audit = json(&s, &["ledger", "verify"]);
    assert_eq!(
        audit[0]["problems"].as_array().map(Vec::len),
        Some(0),
        "{audit}"
    );
}

both!(bad_reports_change_nothing);
fn bad_reports_change_nothing(db: Db) {
    let Some(s) = Server::start(db) else { return };
    let c = s.custody();
    deploy(&s, "1");
    c.run(&["create", "environment", "web", "--type", "server"])
        .ok();
    c.run(&["create", "environment", "k", "--type", "k8s"]).ok();
    c.run(&[
        "create",
        "environment",
        "all",
        "--type",
        "logical",
        "--included-environments",
        "web",
    ])
    .ok();
    let bad = s.write(
        "bad.yml",
        "version: 1\nfoo: 1\nartifacts:\n  a:\n    path: srv/app\n",
    );
    c.run(&[
        "snapshot",
        "paths",
        "web",
        "--paths-file",
        bad.to_str().unwrap(),
    ])
    .fails(2, "has invalid keys: foo");
    let v13 = s.write(
        "v13.toml",
        "version = 13\n[artifacts.a]\npath = \"srv/app\"\n",
    );
    c.run(&[
        "snapshot",
        "paths",
        "web",
        "--paths-file",
        v13.to_str().unwrap(),
    ])
    .fails(2, "version must be 1, not 13");
    let missing = s.write(
        "m.json",
        r#"{"version":1,"artifacts":{"gone":{"path":"srv/nothing"}}}"#,
    );
    c.run(&[
        "snapshot",
        "paths",
        "web",
        "--paths-file",
        missing.to_str().unwrap(),
    ])
    .fails(2, "failed to calculate fingerprint for artifact [gone]");
    let good = s.write(
        "ok.yml",
        "version: 1\nartifacts:\n  a:\n    path: srv/app\n",
    );
    let good = good.to_str().unwrap();
    c.run(&["snapshot", "paths", "k", "--paths-file", good])
        .fails(
            2,
            "environment 'k' is of type k8s; a server reporter cannot report to it",
        );
    c.run(&["snapshot", "paths", "all", "--paths-file", good])
        .fails(2, "environment 'all' is logical");
    c.run(&["snapshot", "paths", "no#pe", "--paths-file", good])
        .fails(2, "environment name 'no#pe' is invalid");
    let env = json(&s, &["get", "environment", "web"]);
    assert_eq!(env["latest_snapshot"], 0);
    assert!(env["coverage"]["observed"].as_array().unwrap().is_empty());

    // An unreachable server is exit 3, and it is named.
    common::Cli::new("http://127.0.0.1:9", common::TOKEN, s.dir.path())
        .run(&["snapshot", "paths", "web", "--paths-file", good])
        .fails(3, "127.0.0.1:9");
}

both!(a_watching_reporter_sees_changes_as_they_happen);
fn a_watching_reporter_sees_changes_as_they_happen(db: Db) {
    let Some(s) = Server::start(db) else { return };
    deploy(&s, "1");
    let app = s.path("srv/app");
    let _watcher = common::Background(
        s.custody()
            .command()
            .args(["snapshot", "path", "web", "--name", "app", "--path"])
            .arg(&app)
            .args([
                "--exclude",
                "logs/*,logs",
                "--watch",
                "--interval",
                "60s",
                "--auto-environment",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let latest = || s.latest_snapshot("web");
    common::wait_for("the first snapshot", || latest() == 1);
    // A changed file is seen without waiting for the 60 s heartbeat.
    s.write("srv/app/bin", "binary 2\n");
    common::wait_for("a snapshot of the change", || latest() == 2);
    // A log line is excluded: no snapshot for it, only for the next change.
    s.write("srv/app/logs/today.log", "more noise\n");
    std::fs::remove_file(s.path("srv/app/conf/settings")).unwrap();
    common::wait_for("a snapshot of the removal", || latest() == 3);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(latest(), 3, "the excluded log made no snapshot of its own");
    let log = json(&s, &["log", "environment", "web"]);
    assert_eq!(log["total"], 5);
}
