//! Audit bundles end to end: exported from a real server, checked by the
//! CLI before they are written, then verified with the server stopped.

use crate::common;
use crate::ledger::checkpoint_of_everything;

use common::{Db, Server};
use serde_json::Value;

fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// `audit verify --output json`, which must exit 0.
fn verify_json(c: &common::Cli, bundle: &str, key: &str) -> Value {
    c.run(&[
        "audit",
        "verify",
        bundle,
        "--public-key",
        key,
        "--output",
        "json",
    ])
    .ok()
    .json()
}

fn rfc3339(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms).unwrap().to_string()
}

both!(a_bundle_proves_what_ran_offline);
fn a_bundle_proves_what_ran_offline(db: Db) {
    let Some(mut s) = Server::start_with(db, &["--checkpoint-interval", "100ms"]) else {
        return;
    };
    let c = s.custody();
    s.write("srv/app/bin", "binary 1\n");
    s.write("srv/motd", "welcome\n");
    let paths = s.write(
        "paths.yml",
        "version: 1\nartifacts:\n  app:\n    path: srv/app\n  motd:\n    path: srv/motd\n",
    );
    let paths = paths.to_str().unwrap();
    let app_v1 = c.fingerprint("srv/app", "dir");

    // The pipeline made app v1, with evidence.
    c.built("backend", "v1", "app", &app_v1);
    let report = s.write("review.txt", "approved by two people\n");
    c.run(&[
        "attest",
        "generic",
        "--name",
        "review",
        "--flow",
        "backend",
        "--trail",
        "v1",
        "--attachments",
        report.to_str().unwrap(),
    ])
    .ok();

    let snapshot = || {
        c.run(&[
            "snapshot",
            "paths",
            "web",
            "--paths-file",
            paths,
            "--interval",
            "60s",
            "--auto-environment",
        ])
        .ok();
    };
    snapshot();
    let key = c
        .run(&["ledger", "public-key"])
        .ok()
        .stdout
        .trim()
        .to_string();
    let early = checkpoint_of_everything(&c);
    let early_file = s.write("early-checkpoint.json", &early.to_string());
    std::thread::sleep(std::time::Duration::from_millis(20));
    let from = now_ms();
    std::thread::sleep(std::time::Duration::from_millis(20));
    snapshot();
    // A hand-made change no pipeline recorded: app v2.
    s.write("srv/app/bin", "binary 2, patched by hand\n");
    let app_v2 = c.fingerprint("srv/app", "dir");
    snapshot();
    snapshot();
    checkpoint_of_everything(&c);

    let bundle = s.path("bundle.tar.gz");
    let bundle = bundle.to_str().unwrap();
    let r = c
        .run(&[
            "audit",
            "export",
            "-e",
            "web",
            "--from",
            &rfc3339(from),
            "-o",
            bundle,
            "--public-key",
            &key,
            "--since-checkpoint",
            early_file.to_str().unwrap(),
        ])
        .ok();
    assert!(r.stdout.contains("VERIFIED"), "{}\n{}", r.stdout, r.stderr);

    // Absence: of something that never ran, proven; of app v1, refused.
    let absent = s.path("absent.tar.gz");
    let other = "ab".repeat(32);
    c.run(&[
        "audit",
        "prove-absent",
        "-e",
        "web",
        "--from",
        &rfc3339(from),
        "--fingerprint",
        &other,
        "-o",
        absent.to_str().unwrap(),
        "--public-key",
        &key,
    ])
    .ok();
    let refuted = s.path("refuted.tar.gz");
    c.run(&[
        "audit",
        "prove-absent",
        "-e",
        "web",
        "--from",
        &rfc3339(from),
        "--fingerprint",
        &app_v1,
        "-o",
        refuted.to_str().unwrap(),
        "--public-key",
        &key,
    ])
    .fails(1, "was running as 'app'");
    assert!(!refuted.exists(), "a refuted proof was written");

    // The server is gone: the auditor needs only the file and the key.
    s.stop();
    let r = c
        .run(&["audit", "verify", bundle, "--public-key", &key])
        .ok();
    assert!(r.stdout.contains("\nVERIFIED"), "{}", r.stdout);
    let v = verify_json(&c, bundle, &key);
    assert_eq!(v["verified"], true);
    assert_eq!(v["first_snapshot"], 1);
    assert_eq!(v["last_snapshot"], 2);
    assert_eq!(v["gaps"].as_array().unwrap().len(), 0, "{v}");
    assert_eq!(v["blobs_checked"], 1);
    assert_eq!(v["since"]["size"], early["size"]);
    let ran: Vec<(String, bool)> = v["ran"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["fingerprint"].as_str().unwrap().to_string(),
                r["provenance"].as_bool().unwrap(),
            )
        })
        .collect();
    assert!(ran.contains(&(app_v1.clone(), true)), "{ran:?}");
    assert!(ran.contains(&(app_v2.clone(), false)), "{ran:?}");
    let unknown: Vec<&str> = v["unknown"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["fingerprint"].as_str().unwrap())
        .collect();
    assert!(unknown.contains(&app_v2.as_str()), "{unknown:?}");
    let r = c
        .run(&[
            "audit",
            "verify",
            absent.to_str().unwrap(),
            "--public-key",
            &key,
        ])
        .ok();
    assert!(r.stdout.contains("never ran"), "{}", r.stdout);

    // The check docs/proofs.md gives auditors, in their own code.
    let docs =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/proofs.md"))
            .unwrap();
    let after = docs
        .split("### Checking a bundle with your own code")
        .nth(1)
        .unwrap();
    let script = after
        .split("```python\n")
        .nth(1)
        .unwrap()
        .split("```")
        .next()
        .unwrap();
    let script = s.write("check_bundle.py", script);
    let vkey = s.write("log.vkey", &key);
    let out = std::process::Command::new("python3")
        .arg(&script)
        .arg(bundle)
        .arg(&vkey)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("web: snapshots complete up to #2"),
        "{stdout}"
    );

    // Another key: not verified, and why.
    let origin = key.split('+').next().unwrap();
    let other_key = custody_ledger::note::SignerKey::from_seed(origin, [5; 32])
        .unwrap()
        .verifier()
        .encode();
    let r = c.run(&["audit", "verify", bundle, "--public-key", &other_key]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stdout.contains("no signature by"), "{}", r.stdout);
    // A cut file: unusable, exit 2.
    let bytes = std::fs::read(bundle).unwrap();
    let cut = s.write("cut.tar.gz", "");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    c.run(&[
        "audit",
        "verify",
        cut.to_str().unwrap(),
        "--public-key",
        &key,
    ])
    .fails(2, "unusable bundle");
    // Witnesses asked for but none cosigned.
    let witness = custody_ledger::note::SignerKey::from_seed("witness.example", [6; 32])
        .unwrap()
        .cosigner()
        .encode();
    let r = c.run(&[
        "audit",
        "verify",
        bundle,
        "--public-key",
        &key,
        "--witness-key",
        &witness,
        "--min-witnesses",
        "1",
    ]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stdout
            .contains("0 known witness cosignature(s), 1 required"),
        "{}",
        r.stdout
    );
}

both!(a_window_the_record_does_not_cover_is_refused_or_shown);
fn a_window_the_record_does_not_cover_is_refused_or_shown(db: Db) {
    let Some(s) = Server::start_with(db, &["--checkpoint-interval", "100ms"]) else {
        return;
    };
    let c = s.custody();
    let key = || {
        c.run(&["ledger", "public-key"])
            .ok()
            .stdout
            .trim()
            .to_string()
    };
    let bundle = s.path("b.tar.gz");
    let bundle = bundle.to_str().unwrap();
    c.run(&[
        "audit",
        "export",
        "-e",
        "nope",
        "--from",
        "1.hours.ago",
        "-o",
        bundle,
    ])
    .fails(2, "");
    c.run(&["create", "environment", "web", "--type", "server"])
        .ok();
    checkpoint_of_everything(&c);
    c.run(&[
        "audit",
        "export",
        "-e",
        "web",
        "--from",
        "now",
        "--to",
        "1.hours.ago",
        "-o",
        bundle,
    ])
    .fails(2, "is after --to");
    // Never reported: the bundle is written, and says the whole window is
    // a gap.
    let r = c
        .run(&[
            "audit",
            "export",
            "-e",
            "web",
            "--from",
            "1.hours.ago",
            "-o",
            bundle,
            "--public-key",
            &key(),
        ])
        .ok();
    assert!(
        r.stdout.contains("no report of the environment"),
        "{}",
        r.stdout
    );
    let r = c.run(&["audit", "verify", bundle, "--public-key", &key()]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stdout.contains("NOT VERIFIED"), "{}", r.stdout);
}

both!(a_renamed_environment_is_followed_across_its_names);
fn a_renamed_environment_is_followed_across_its_names(db: Db) {
    let Some(mut s) = Server::start_with(db, &["--checkpoint-interval", "100ms"]) else {
        return;
    };
    let c = s.custody();
    s.write("srv/app", "v1\n");
    let paths = s.write(
        "paths.yml",
        "version: 1\nartifacts:\n  app:\n    path: srv/app\n",
    );
    let paths = paths.to_str().unwrap();
    let report = |env: &str| {
        c.run(&[
            "snapshot",
            "paths",
            env,
            "--paths-file",
            paths,
            "--interval",
            "60s",
            "--auto-environment",
        ])
        .ok();
    };
    report("staging");
    std::thread::sleep(std::time::Duration::from_millis(20));
    let from = now_ms();
    report("staging");
    c.run(&["rename", "environment", "staging", "prod"]).ok();
    // A new environment takes the old name: none of its record is ours.
    report("staging");
    s.write("srv/app", "v2\n");
    report("prod");
    report("prod");
    checkpoint_of_everything(&c);
    let key = c
        .run(&["ledger", "public-key"])
        .ok()
        .stdout
        .trim()
        .to_string();
    let bundle = s.path("prod.tar.gz");
    let bundle = bundle.to_str().unwrap();
    c.run(&[
        "audit",
        "export",
        "-e",
        "prod",
        "--from",
        &rfc3339(from),
        "-o",
        bundle,
        "--public-key",
        &key,
    ])
    .ok();
    s.stop();
    let v = verify_json(&c, bundle, &key);
    assert_eq!(v["verified"], true, "{v}");
    assert_eq!(v["names"], serde_json::json!(["staging", "prod"]));
    assert_eq!(
        (v["first_snapshot"].as_u64(), v["last_snapshot"].as_u64()),
        (Some(1), Some(2))
    );
}
