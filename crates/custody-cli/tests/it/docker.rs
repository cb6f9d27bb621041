//! The Docker reporter and Docker fingerprints against a real Docker
//! Engine and a real registry (started by the test command), with real
//! containers that start and stop.

use crate::common;

use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::docker::docker;
use common::{Db, Server};
use serde_json::Value;

/// One Docker Engine serves every test here: they take turns, so each
/// sees only its own containers.
static ENGINE: Mutex<()> = Mutex::new(());

fn json(s: &Server, host: &str, args: &[&str]) -> Value {
    let out = s
        .custody()
        .command()
        .env("DOCKER_HOST", host)
        .args(args)
        .args(["--output", "json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    )
}

both!(running_containers_are_reported_and_their_stop_recorded);
fn running_containers_are_reported_and_their_stop_recorded(db: Db) {
    let Some(d) = docker() else { return };
    let _turn = ENGINE.lock().unwrap_or_else(|e| e.into_inner());
    let Some(s) = Server::start(db) else { return };
    let images = d.images();
    let web = d.start(&unique("web"), &images.pushed, 300);
    let _local = d.start(&unique("local"), &images.local, 300);

    let out = s
        .custody()
        .command()
        .env("DOCKER_HOST", &d.host)
        .args(["snapshot", "docker", "boxes", "--auto-environment"])
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stderr}");
    assert!(
        stdout.contains("[2] containers were reported to environment boxes"),
        "{stdout}"
    );
    // Built here, never pushed: recorded by its image ID, not skipped.
    assert!(stderr.contains("which has no repo digest"), "{stderr}");
    assert!(
        stderr.contains("recorded by its local image ID"),
        "{stderr}"
    );
    let local_id = d
        .run(&["image", "inspect", &images.local, "--format", "{{.Id}}"])
        .trim()
        .trim_start_matches("sha256:")
        .to_string();

    let snap = json(&s, &d.host, &["get", "snapshot", "boxes"]);
    let arts = snap["artifacts"].as_array().unwrap();
    assert_eq!(arts.len(), 2, "{snap}");
    assert_eq!(arts[0]["name"], images.pushed.as_str());
    assert_eq!(arts[0]["fingerprint"], images.pushed_digest.as_str());
    assert_eq!(arts[0]["instances"][0]["id"], web.name.as_str());
    assert_eq!(arts[0]["unknown"], true);
    assert_eq!(arts[1]["name"], images.local.as_str());
    assert_eq!(arts[1]["fingerprint"], local_id.as_str());
    assert_eq!(arts[1]["unknown"], true);
    assert_eq!(
        arts[1]["instances"][0]["attributes"]["digest_source"],
        "image-id"
    );

    // The same fingerprints from `custody fingerprint --artifact-type docker`:
    // the local image's is its image ID, with a warning.
    let fp = json(
        &s,
        &d.host,
        &["fingerprint", &images.pushed, "--artifact-type", "docker"],
    );
    assert_eq!(fp["fingerprint"], images.pushed_digest.as_str());
    let r = s
        .custody()
        .command()
        .env("DOCKER_HOST", &d.host)
        .args([
            "fingerprint",
            &images.local,
            "--artifact-type",
            "docker",
            "--output",
            "json",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(r.status.success(), "{err}");
    assert!(
        err.contains("its fingerprint is its local image ID"),
        "{err}"
    );
    let fp: Value = serde_json::from_slice(&r.stdout).unwrap();
    assert_eq!(fp["fingerprint"], local_id.as_str());

    // A policy that wants provenance judges the unpushed image
    // non-compliant...
    let c = s.custody();
    let policy = s.write(
        "policy.yml",
        "_schema: https://docs.kosli.com/schemas/policy/v1\nartifacts:\n  provenance:\n    required: true\n",
    );
    c.run(&["create", "policy", "provenance", policy.to_str().unwrap()])
        .ok();
    c.run(&["attach-policy", "provenance", "--environment", "boxes"])
        .ok();
    let comp = json(&s, &d.host, &["get", "compliance", "boxes"]);
    assert_eq!(comp["status"], "NON-COMPLIANT", "{comp}");
    let local_verdict = comp["policies"][0]["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["fingerprint"] == local_id.as_str())
        .unwrap_or_else(|| panic!("{comp}"));
    assert_eq!(local_verdict["compliant"], false, "{comp}");
    // ...until a pipeline attests that very image: then it has provenance.
    c.run(&["create", "flow", "local-builds"]).ok();
    c.run(&["begin", "trail", "t1", "--flow", "local-builds"])
        .ok();
    let r = s
        .custody()
        .command()
        .env("DOCKER_HOST", &d.host)
        .args([
            "attest",
            "artifact",
            &images.local,
            "--artifact-type",
            "docker",
            "--flow",
            "local-builds",
            "--trail",
            "t1",
            "--name",
            "unpushed",
        ])
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let snap = json(&s, &d.host, &["get", "snapshot", "boxes"]);
    assert_eq!(snap["artifacts"][1]["unknown"], false, "{snap}");

    drop(web);
    let r = json(&s, &d.host, &["snapshot", "docker", "boxes"]);
    assert_eq!(r["snapshot"], 2);
    assert_eq!(r["changes"][0]["kind"], "stopped");
    assert_eq!(r["changes"][0]["name"], images.pushed.as_str());
    let left = json(&s, &d.host, &["get", "snapshot", "boxes"]);
    let left = left["artifacts"].as_array().unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["fingerprint"], local_id.as_str());
}

both!(an_unreachable_engine_is_named_and_exits_3);
fn an_unreachable_engine_is_named_and_exits_3(db: Db) {
    let Some(s) = Server::start(db) else { return };
    s.custody()
        .run(&["create", "environment", "boxes", "--type", "docker"])
        .ok();
    let out = s
        .custody()
        .command()
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .args(["snapshot", "docker", "boxes"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("unix:///nonexistent/docker.sock"),
        "{stderr}"
    );
}

both!(a_container_that_lives_five_seconds_is_in_the_history);
fn a_container_that_lives_five_seconds_is_in_the_history(db: Db) {
    let Some(d) = docker() else { return };
    let _turn = ENGINE.lock().unwrap_or_else(|e| e.into_inner());
    let Some(s) = Server::start(db) else { return };
    let images = d.images();
    let _reporter = common::Background(
        s.custody()
            .command()
            .env("DOCKER_HOST", &d.host)
            .args([
                "snapshot",
                "docker",
                "boxes",
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
    let latest = || s.latest_snapshot("boxes");
    common::wait_for("the first snapshot", || latest() > 0);
    // Well inside the 60 s heartbeat: only the event stream can see it.
    let brief = d.start(&unique("brief"), &images.pushed, 5);
    let deadline = Instant::now() + Duration::from_secs(30);
    let events = loop {
        let log = s
            .custody()
            .run(&["log", "environment", "boxes", "--output", "json"])
            .ok()
            .json();
        let kinds: Vec<String> = log["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["kind"].as_str().unwrap().to_string())
            .collect();
        if kinds == ["stopped", "started"] {
            break log;
        }
        assert!(Instant::now() < deadline, "log so far: {log}");
        std::thread::sleep(Duration::from_millis(200));
    };
    drop(brief);
    let items = events["items"].as_array().unwrap();
    assert!(
        items
            .iter()
            .all(|e| e["fingerprint"] == images.pushed_digest.as_str())
    );
    let started = items[1]["timestamp"].as_i64().unwrap();
    let stopped = items[0]["timestamp"].as_i64().unwrap();
    let lived = stopped - started;
    assert!((3_000..15_000).contains(&lived), "lived {lived} ms");

    // One that exits at once and is removed (`--rm`): milliseconds, far
    // less than any debounce, still a start and a stop in the history.
    d.run(&[
        "run",
        "--rm",
        "--network",
        "none",
        &images.pushed,
        "/bin/sh",
        "-c",
        "exit 0",
    ]);
    common::wait_for("the instant container's start and stop", || {
        let log = s
            .custody()
            .run(&["log", "environment", "boxes", "--output", "json"])
            .ok()
            .json();
        log["total"] == 4
    });
}
