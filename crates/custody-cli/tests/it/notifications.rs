//! Notifications end to end: real webhook receivers on loopback (healthy,
//! flaky, hanging, broken), a real server, and a server killed during a
//! burst of events, on SQLite and PostgreSQL.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::receiver::{Behaviour, Receiver, Request};
use common::{Db, Server, wait_for};
use hmac::{KeyInit, Mac};
use serde_json::Value;

fn json(s: &Server, args: &[&str]) -> Value {
    let mut a = args.to_vec();
    a.extend(["--output", "json"]);
    s.custody().run(&a).ok().json()
}

const SECRET: &str = "s3cret-shared-with-the-receiver";

/// What a receiver does to trust a body (docs/notifications.md).
fn verify(r: &Request) {
    let ts = r.header("x-custody-timestamp");
    let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(ts.as_bytes());
    mac.update(b".");
    mac.update(&r.body);
    let want = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    assert_eq!(r.header("x-custody-signature"), want);
    let body = r.json();
    assert_eq!(r.header("idempotency-key"), body["id"].as_str().unwrap());
    assert_eq!(r.header("x-custody-delivery"), body["id"].as_str().unwrap());
    assert_eq!(
        r.header("x-custody-event"),
        body["trigger"].as_str().unwrap()
    );
}

fn by_trigger(reqs: &[Request]) -> BTreeMap<String, Vec<Value>> {
    let mut m: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for r in reqs {
        let b = r.json();
        m.entry(b["trigger"].as_str().unwrap().to_string())
            .or_default()
            .push(b);
    }
    m
}

both!(webhooks_and_slack_hear_what_happens);
fn webhooks_and_slack_hear_what_happens(db: Db) {
    let Some(s) = Server::start(db) else { return };
    let c = s.custody();
    let hook = Receiver::start(Behaviour::Ok);
    let slack = Receiver::start(Behaviour::Ok);
    s.write("srv/app/bin", "binary 1\n");
    s.write("srv/motd", "welcome\n");
    let paths = s.write(
        "paths.yml",
        "version: 1\nartifacts:\n  app:\n    path: srv/app\n  motd:\n    path: srv/motd\n",
    );
    let paths = paths.to_str().unwrap();
    c.run(&["create", "environment", "prod", "--type", "server"])
        .ok();
    c.run(&[
        "create", "action", "ops-hook", "--environment", "prod", "--on",
        "artifact-started,unknown-artifact,artifact-stopped,non-compliant,compliant-again,reporter-silent",
        "--webhook", &hook.url, "--secret", SECRET, "--silent-intervals", "2",
    ])
    .ok();
    c.run(&[
        "create",
        "action",
        "ops-slack",
        "--environment",
        "prod",
        "--on",
        "non-compliant",
        "--slack",
        &slack.url,
    ])
    .ok();
    c.run(&[
        "create",
        "action",
        "bad",
        "--environment",
        "prod",
        "--on",
        "deployed",
        "--webhook",
        &hook.url,
    ])
    .fails(2, "unknown trigger 'deployed'");
    c.run(&[
        "create",
        "action",
        "bad",
        "--environment",
        "nowhere",
        "--on",
        "non-compliant",
        "--webhook",
        &hook.url,
    ])
    .fails(2, "environment 'nowhere' does not exist");
    c.run(&[
        "create",
        "action",
        "bad",
        "--environment",
        "prod",
        "--on",
        "non-compliant",
        "--slack",
        &slack.url,
        "--secret",
        "x",
    ])
    .fails(2, "Slack messages are not signed");
    let actions = json(&s, &["list", "actions"]);
    assert_eq!(actions.as_array().unwrap().len(), 2);
    assert_eq!(actions[0]["signed"], true);
    assert!(
        !actions.to_string().contains(SECRET),
        "the secret is never shown"
    );

    // Provenance for the app only.
    let app = c
        .run(&["fingerprint", "srv/app", "--artifact-type", "dir"])
        .ok()
        .stdout
        .trim()
        .to_string();
    c.run(&["create", "flow", "backend"]).ok();
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

    c.run(&[
        "snapshot",
        "paths",
        "prod",
        "--paths-file",
        paths,
        "--interval",
        "1s",
    ])
    .ok();
    wait_for("started and unknown", || {
        by_trigger(&hook.requests()).len() >= 2
    });
    let got = by_trigger(&hook.requests());
    let started = &got["artifact-started"][0];
    assert_eq!(started["environment"], "prod");
    assert_eq!(started["snapshot"]["index"], 1);
    assert!(
        started["snapshot"]["url"]
            .as_str()
            .unwrap()
            .starts_with(&s.url)
    );
    assert_eq!(started["artifacts"].as_array().unwrap().len(), 2);
    let unknown = &got["unknown-artifact"][0];
    assert_eq!(unknown["artifacts"].as_array().unwrap().len(), 1);
    assert_eq!(unknown["artifacts"][0]["name"], "motd");
    assert_eq!(
        unknown["description"],
        "1 artifact without provenance started running in prod"
    );
    let with_prov = started["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "app")
        .unwrap();
    assert_eq!(with_prov["provenance"][0]["flow"], "backend");

    // Compliance changes.
    let policy = s.write("p.yml", "_schema: https://docs.kosli.com/schemas/policy/v1\nartifacts:\n  provenance:\n    required: true\n");
    c.run(&["create", "policy", "provenance", policy.to_str().unwrap()])
        .ok();
    c.run(&["attach-policy", "provenance", "--environment", "prod"])
        .ok();
    wait_for("non-compliant", || {
        by_trigger(&hook.requests()).contains_key("non-compliant")
    });
    let nc = &by_trigger(&hook.requests())["non-compliant"][0];
    assert_eq!(nc["compliance"]["status"], "NON-COMPLIANT");
    assert!(
        nc["compliance"]["reasons"][0]
            .as_str()
            .unwrap()
            .contains("motd"),
        "{nc}"
    );
    wait_for("the Slack message", || !slack.requests().is_empty());
    let msg = slack.requests()[0].json();
    assert_eq!(msg["blocks"][0]["type"], "header");
    assert!(
        msg["text"]
            .as_str()
            .unwrap()
            .contains("prod became non-compliant"),
        "{msg}"
    );
    assert!(msg.to_string().contains("snapshot #1"), "{msg}");
    assert!(
        !slack.requests()[0]
            .headers
            .contains_key("x-custody-signature")
    );

    let motd = c
        .run(&["fingerprint", "srv/motd", "--artifact-type", "file"])
        .ok()
        .stdout
        .trim()
        .to_string();
    c.run(&[
        "allow",
        "artifact",
        "--fingerprint",
        &motd,
        "--environment",
        "prod",
        "--reason",
        "static",
    ])
    .ok();
    wait_for("compliant-again", || {
        by_trigger(&hook.requests()).contains_key("compliant-again")
    });

    let without_motd = s.write(
        "paths2.yml",
        "version: 1\nartifacts:\n  app:\n    path: srv/app\n",
    );
    c.run(&[
        "snapshot",
        "paths",
        "prod",
        "--paths-file",
        without_motd.to_str().unwrap(),
        "--interval",
        "1s",
    ])
    .ok();
    wait_for("stopped", || {
        by_trigger(&hook.requests()).contains_key("artifact-stopped")
    });
    assert_eq!(
        by_trigger(&hook.requests())["artifact-stopped"][0]["artifacts"][0]["name"],
        "motd"
    );

    // The reporter said every second; two seconds of silence is news, once.
    wait_for("reporter-silent", || {
        by_trigger(&hook.requests()).contains_key("reporter-silent")
    });
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(by_trigger(&hook.requests())["reporter-silent"].len(), 1);

    for r in hook.requests() {
        verify(&r);
    }
    // Every delivery recorded, each once.
    let ids: BTreeSet<String> = hook
        .requests()
        .iter()
        .map(|r| r.json()["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        ids.len(),
        hook.requests().len(),
        "nothing was delivered twice"
    );
    let deliveries = json(&s, &["list", "deliveries", "--action", "ops-hook"]);
    let ds = deliveries.as_array().unwrap();
    assert_eq!(ds.len(), ids.len());
    for d in ds {
        assert_eq!(d["state"], "delivered", "{d}");
        assert_eq!(d["attempts"][0]["status_code"], 200);
    }
    c.run(&["list", "deliveries"]).ok();

    // Actions as created and changed are what their entries say.
    let audit = c.run(&["ledger", "verify", "--output", "json"]).ok().json();
    assert_eq!(
        audit[0]["problems"].as_array().map(Vec::len),
        Some(0),
        "{audit}"
    );
}

both!(failing_receivers_are_retried_and_recorded);
fn failing_receivers_are_retried_and_recorded(db: Db) {
    let Some(s) = Server::start_with(
        db,
        &[
            "--notify-retry-base",
            "100ms",
            "--notify-timeout",
            "300ms",
            "--notify-max-age",
            "3s",
        ],
    ) else {
        return;
    };
    let c = s.custody();
    let flaky = Receiver::start(Behaviour::FailFirst(2));
    let hang = Receiver::start(Behaviour::Hang(Duration::from_secs(2)));
    let broken = Receiver::start(Behaviour::Always500);
    c.run(&["create", "environment", "prod", "--type", "server"])
        .ok();
    for (name, r) in [("flaky", &flaky), ("hang", &hang), ("broken", &broken)] {
        c.run(&[
            "create",
            "action",
            name,
            "--environment",
            "prod",
            "--on",
            "artifact-started",
            "--webhook",
            &r.url,
        ])
        .ok();
    }
    s.write("srv/app", "v1\n");
    let paths = s.write(
        "paths.yml",
        "version: 1\nartifacts:\n  app:\n    path: srv/app\n",
    );
    c.run(&[
        "snapshot",
        "paths",
        "prod",
        "--paths-file",
        paths.to_str().unwrap(),
    ])
    .ok();

    wait_for("the flaky receiver's third try", || {
        flaky.requests().len() >= 3
    });
    let ids: BTreeSet<String> = flaky
        .requests()
        .iter()
        .map(|r| r.header("idempotency-key").to_string())
        .collect();
    assert_eq!(ids.len(), 1, "every retry carries the same idempotency key");
    let deliveries =
        |action: &str| json(&s, &["list", "deliveries", "--action", action])[0].clone();
    wait_for("flaky delivered", || {
        deliveries("flaky")["state"] == "delivered"
    });
    let d = deliveries("flaky");
    let codes: Vec<i64> = d["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["status_code"].as_i64().unwrap())
        .collect();
    assert_eq!(codes, [500, 500, 200]);
    // The status is kept; what the receiver said in its body is not
    // (readers see deliveries; an internal service's error page is none of
    // their business).
    assert_eq!(d["attempts"][0]["error"], "HTTP 500", "{d}");

    // Retried with backoff until the maximum age, then given up.
    wait_for("broken given up", || {
        deliveries("broken")["state"] == "failed"
    });
    let d = deliveries("broken");
    let attempts = d["attempts"].as_array().unwrap();
    assert!(attempts.len() >= 3, "{d}");
    assert!(attempts.iter().all(|a| a["status_code"] == 500));
    // Each wait at least half of the doubled delay before it.
    for (i, w) in attempts.windows(2).enumerate() {
        let gap = w[1]["at"].as_i64().unwrap()
            - (w[0]["at"].as_i64().unwrap() + w[0]["duration_ms"].as_i64().unwrap());
        let full = 100 * (1i64 << i);
        assert!(
            gap >= full / 2 - 20,
            "attempt {} came {gap} ms after the one before (delay {full} ms)",
            i + 2
        );
    }
    wait_for("hang given up", || deliveries("hang")["state"] == "failed");
    let d = deliveries("hang");
    assert!(
        d["attempts"][0]["error"]
            .as_str()
            .unwrap()
            .contains("timed out after 300 ms"),
        "{d}"
    );
    let table = c.run(&["list", "deliveries"]).ok().stdout;
    assert!(
        table.contains("failed") && table.contains("delivered"),
        "{table}"
    );
}

both!(a_killed_server_delivers_everything_after_restart);
fn a_killed_server_delivers_everything_after_restart(db: Db) {
    // Attempts last 2 s, so the kill finds some in flight; their lease is
    // 2 × 3 s + 5 s, after which the restarted server sends them again.
    let Some(mut s) = Server::start_with(db, &["--notify-timeout", "3s"]) else {
        return;
    };
    let hook = Receiver::start(Behaviour::Slow(Duration::from_secs(2)));
    let c = s.custody();
    c.run(&["create", "environment", "prod", "--type", "server"])
        .ok();
    c.run(&[
        "create",
        "action",
        "hook",
        "--environment",
        "prod",
        "--on",
        "artifact-started",
        "--webhook",
        &hook.url,
    ])
    .ok();
    let paths = s.write(
        "paths.yml",
        "version: 1\nartifacts:\n  app:\n    path: srv/app\n",
    );
    let paths = paths.to_str().unwrap().to_string();
    const BURST: usize = 30;
    for i in 0..BURST {
        s.write("srv/app", &format!("build {i}\n"));
        s.custody()
            .run(&["snapshot", "paths", "prod", "--paths-file", &paths])
            .ok();
    }
    // Killed mid-burst: some deliveries done, some in flight, most pending.
    let before_kill = hook.requests().len();
    s.crash_and_restart();
    assert!(
        before_kill < BURST,
        "the receiver was too fast for this test ({before_kill})"
    );
    let in_flight_at_kill = before_kill;
    wait_for("every delivery recorded as delivered", || {
        let d = json(&s, &["list", "deliveries", "--limit", "1000"]);
        d.as_array()
            .unwrap()
            .iter()
            .all(|d| d["state"] == "delivered")
    });
    let ids: BTreeSet<String> = hook
        .requests()
        .iter()
        .map(|r| r.json()["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), BURST);
    let deliveries = json(&s, &["list", "deliveries", "--limit", "1000"]);
    let ds = deliveries.as_array().unwrap();
    assert_eq!(ds.len(), BURST);
    assert!(ds.iter().all(|d| d["state"] == "delivered"), "{deliveries}");
    // At least once: a delivery in flight at the kill may come twice, but
    // never more often than the worker had in flight.
    let sent = hook.requests().len();
    assert!(
        sent - BURST <= in_flight_at_kill.min(16),
        "{sent} requests for {BURST} events, {in_flight_at_kill} in flight at the kill"
    );
    let snapshots: BTreeSet<u64> = hook
        .requests()
        .iter()
        .map(|r| r.json()["snapshot"]["index"].as_u64().unwrap())
        .collect();
    assert_eq!(snapshots, (1..=BURST as u64).collect());
}
