//! The server against hostile tenants, end to end: each attack a review
//! reproduced against the landed server, made again against a real server
//! (SQLite and PostgreSQL where the store is involved), which must answer
//! with a clear 4xx and keep serving everyone.

use crate::common;

use std::io::{Read, Write};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::receiver::{Behaviour, Receiver};
use common::{Db, Server, TOKEN, wait_for};
use serde_json::{Value, json};

// ---- HTTP without the CLI ----------------------------------------------------

fn rt() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    })
}

pub(crate) struct Answer {
    pub status: u16,
    retry_after: Option<String>,
    pub body: String,
}

impl Answer {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
    fn error(&self) -> String {
        self.json()["error"]
            .as_str()
            .unwrap_or(&self.body)
            .to_string()
    }
}

pub(crate) fn call(
    s: &Server,
    method: &str,
    path: &str,
    token: &str,
    body: Option<Vec<u8>>,
) -> Answer {
    call_url(&s.url, method, path, token, body)
}

/// A request to the server at `base` (a test's own server, or one the
/// harness started).
fn call_url(base: &str, method: &str, path: &str, token: &str, body: Option<Vec<u8>>) -> Answer {
    let url = format!("{base}{path}");
    let method = reqwest::Method::from_bytes(method.to_ascii_uppercase().as_bytes()).unwrap();
    let token = token.to_string();
    rt().block_on(async move {
        let mut rb = reqwest::Client::new()
            .request(method, url)
            .timeout(Duration::from_secs(60))
            .bearer_auth(token);
        if let Some(b) = body {
            rb = rb.header("content-type", "application/json").body(b);
        }
        let r = rb.send().await.unwrap();
        let status = r.status().as_u16();
        let retry_after = r
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_string());
        Answer {
            status,
            retry_after,
            body: r.text().await.unwrap(),
        }
    })
}

fn json_body(v: &Value) -> Option<Vec<u8>> {
    Some(serde_json::to_vec(v).unwrap())
}

/// A key for a new service account of org `default` with `role`.
pub(crate) fn key_for(s: &Server, name: &str, role: &str) -> String {
    let c = s.custody();
    c.run(&["create", "service-account", name, "--role", role])
        .ok();
    c.run(&[
        "create",
        "api-key",
        "--service-account",
        name,
        "--output",
        "json",
    ])
    .ok()
    .json()["key"]
        .as_str()
        .unwrap()
        .to_string()
}

fn report(s: &Server, env: &str, token: &str, artifacts: &[(&str, &str)]) -> Answer {
    let artifacts: Vec<Value> = artifacts
        .iter()
        .map(|(name, fp)| json!({"name": name, "fingerprint": fp, "instances": [{"id": format!("{name}-1")}]}))
        .collect();
    call(
        s,
        "put",
        &format!("/api/v1/orgs/default/environments/{env}/report"),
        token,
        json_body(&json!({"type": "server", "artifacts": artifacts})),
    )
}

fn healthy(s: &Server) -> bool {
    let url = format!("{}/healthz", s.url);
    rt().block_on(async move {
        reqwest::Client::new()
            .get(url)
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
    })
}

// ---- 1, 2: no crash and no freeze from users' programs -----------------------

/// Whether a program's refusal says it overran its budget. Endless
/// recursion ends as a stack overflow or, on a loaded machine, at the time
/// limit first: either is the sandbox doing its job.
fn over_budget(said: &str) -> bool {
    said.contains("recursed too deeply") || said.contains("time limit")
}

const RECURSIVE: &str =
    "package policy\n\nimport rego.v1\n\nf(x) := y if { y := f(x) }\n\nallow if f(1)\n";

/// Recursion hidden behind an input check: the policy compiles (the
/// empty-input probe does not recurse), and blows up on one artifact.
const HIDDEN_RECURSION: &str = r#"package policy

import rego.v1

f(x) := y if { y := f(x) }

default allow := false

allow if input.artifact.name != "boom"

allow if {
    input.artifact.name == "boom"
    f(1)
}
"#;

both!(users_programs_cannot_crash_or_freeze_the_server);
fn users_programs_cannot_crash_or_freeze_the_server(db: Db) {
    let Some(s) = Server::start(db) else { return };
    let c = s.custody();

    // A policy condition nested thousands deep.
    let deep = format!(
        "_schema: https://docs.kosli.com/schemas/policy/v1\nartifacts:\n  attestations:\n    - name: x\n      type: generic\n      if: ${{{{ {}true{} }}}}\n",
        "(".repeat(5000),
        ")".repeat(5000)
    );
    let a = call(
        &s,
        "put",
        "/api/v1/orgs/default/policies/deep",
        TOKEN,
        json_body(&json!({"type": "kosli", "content": deep})),
    );
    assert_eq!(a.status, 422, "{}", a.body);
    assert!(a.error().contains("nests too deeply"), "{}", a.body);
    let chain = format!(
        "_schema: https://docs.kosli.com/schemas/policy/v1\nartifacts:\n  attestations:\n    - name: x\n      type: generic\n      if: ${{{{ {} }}}}\n",
        vec!["true"; 50_000].join(" and ")
    );
    let a = call(
        &s,
        "put",
        "/api/v1/orgs/default/policies/chain",
        TOKEN,
        json_body(&json!({"type": "kosli", "content": chain})),
    );
    assert_eq!(a.status, 422, "{}", a.body);

    // A Rego policy that recurses for ever, at creation.
    let a = call(
        &s,
        "put",
        "/api/v1/orgs/default/policies/rec",
        TOKEN,
        json_body(&json!({"type": "rego", "content": RECURSIVE})),
    );
    assert_eq!(a.status, 422, "{}", a.body);
    assert!(over_budget(&a.error()), "{}", a.body);

    // ...and hidden, judged when it meets its input: the artifact fails
    // with the reason, the others are judged, the server lives on.
    let p = s.write("hidden.rego", HIDDEN_RECURSION);
    c.run(&[
        "create",
        "policy",
        "hidden",
        p.to_str().unwrap(),
        "--type",
        "rego",
    ])
    .ok();
    c.run(&["create", "environment", "prod", "--type", "server"])
        .ok();
    c.run(&["attach-policy", "hidden", "--environment", "prod"])
        .ok();
    let boom = "b".repeat(64);
    let fine = "f".repeat(64);
    let r = report(&s, "prod", TOKEN, &[("boom", &boom), ("fine", &fine)]);
    assert_eq!(r.status, 200, "{}", r.body);
    let snap = c
        .run(&["get", "snapshot", "prod", "--output", "json"])
        .ok()
        .json();
    let verdicts = &snap["compliance"]["policies"][0]["artifacts"];
    let of = |name: &str| {
        verdicts
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(of("fine")["compliant"], true, "{snap}");
    assert_eq!(of("boom")["compliant"], false, "{snap}");
    assert!(over_budget(&of("boom").to_string()), "{snap}");
    // A reader's gate on it answers; it does not take the server down.
    let reader = c.with_token(&key_for(&s, "auditor", "reader"));
    reader
        .run(&[
            "assert",
            "artifact",
            "--fingerprint",
            &boom,
            "--environment",
            "prod",
        ])
        .fails(1, "NON-COMPLIANT");
    assert!(healthy(&s));

    // jq rules: endless recursion, endless loops, endless allocation.
    let schema = s.write("schema.json", "{}");
    let data = s.write("data.json", "{\"a\": 1}");
    c.run(&["create", "flow", "f"]).ok();
    c.run(&["begin", "trail", "t", "--flow", "f"]).ok();
    for (name, rule, says) in [
        (
            "recurse",
            "def f: 1 + f; f",
            over_budget as fn(&str) -> bool,
        ),
        ("spin", "repeat(1) | select(false)", |e| {
            e.contains("time limit")
        }),
        ("hoard", "[range(1e10)] | length > 0", |e| {
            e.contains("limit")
        }),
    ] {
        c.run(&[
            "create",
            "attestation-type",
            name,
            "--schema",
            schema.to_str().unwrap(),
            "--jq",
            rule,
        ])
        .ok();
        let r = c
            .run(&[
                "attest",
                "custom",
                "--name",
                name,
                "--flow",
                "f",
                "--trail",
                "t",
                "--type",
                name,
                "--attestation-data",
                data.to_str().unwrap(),
            ])
            .fails(2, "");
        assert!(says(&r.stderr), "{name}: {}", r.stderr);
    }
    // Two spinning rules at once, more than there are cores here: the
    // server still answers everyone meanwhile.
    let spinners: Vec<_> = (0..2)
        .map(|_| {
            let mut cmd = c.command();
            cmd.args([
                "attest",
                "custom",
                "--name",
                "spin",
                "--flow",
                "f",
                "--trail",
                "t",
                "--type",
                "spin",
                "--attestation-data",
                data.to_str().unwrap(),
            ]);
            cmd.stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null());
            cmd.spawn().unwrap()
        })
        .collect();
    for _ in 0..5 {
        assert!(healthy(&s), "the server stopped answering");
        c.run(&["list", "flows"]).ok();
    }
    for mut p in spinners {
        assert_eq!(p.wait().unwrap().code(), Some(2));
    }
    // Nothing was written for the refused attestations.
    let t = c
        .run(&["get", "trail", "t", "--flow", "f", "--output", "json"])
        .ok()
        .json();
    assert_eq!(t["attestations"].as_array().unwrap().len(), 0, "{t}");
}

both!(one_orgs_heavy_policy_does_not_hold_another_orgs_writes);
fn one_orgs_heavy_policy_does_not_hold_another_orgs_writes(db: Db) {
    let Some(s) = Server::start_with(db, &["--judgement-budget", "6s"]) else {
        return;
    };
    let c = s.custody();
    // Org default: a policy that runs to its time limit on every artifact.
    let slow = "package policy\n\nimport rego.v1\n\nallow if {\n    input.artifact.name\n    count([1 | some i in numbers.range(1, 5000); some j in numbers.range(1, 5000); i * j < 0]) > 0\n}\n";
    let p = s.write("slow.rego", slow);
    c.run(&[
        "create",
        "policy",
        "slow",
        p.to_str().unwrap(),
        "--type",
        "rego",
    ])
    .ok();
    c.run(&["create", "environment", "prod", "--type", "server"])
        .ok();
    c.run(&["attach-policy", "slow", "--environment", "prod"])
        .ok();
    // Another organisation, with an unrelated write to make.
    let acme_key = c
        .run(&["create", "org", "acme", "--output", "json"])
        .ok()
        .json()["api_key"]
        .as_str()
        .unwrap()
        .to_string();
    let acme = c.with_token(&acme_key);
    acme.run(&["--org", "acme", "create", "flow", "web"]).ok();

    let fps: Vec<String> = (0..30).map(|i| format!("{i:064x}")).collect();
    let names: Vec<String> = (0..30).map(|i| format!("svc-{i}")).collect();
    let artifacts: Vec<(&str, &str)> = names
        .iter()
        .zip(&fps)
        .map(|(n, f)| (n.as_str(), f.as_str()))
        .collect();
    let started = Instant::now();
    let heavy = std::thread::scope(|scope| {
        let heavy = scope.spawn(|| {
            let r = report(&s, "prod", TOKEN, &artifacts);
            (r, started.elapsed())
        });
        std::thread::sleep(Duration::from_millis(500));
        // While default's judgement runs, acme writes.
        let before = Instant::now();
        acme.run(&["--org", "acme", "begin", "trail", "t1", "--flow", "web"])
            .ok();
        let took = before.elapsed();
        let (r, heavy_took) = heavy.join().unwrap();
        assert!(
            took < Duration::from_secs(3) && took < heavy_took,
            "acme's write took {took:?} while default's judgement took {heavy_took:?}"
        );
        r
    });
    assert_eq!(heavy.status, 200, "{}", heavy.body);
    // The judgement stopped at its budget and says so.
    let comp = c
        .run(&["get", "compliance", "prod", "--output", "json"])
        .ok()
        .json();
    assert_eq!(comp["status"], "NON-COMPLIANT", "{comp}");
    let text = comp.to_string();
    assert!(
        text.contains("time limit") || text.contains("budget"),
        "{text}"
    );
}

// ---- 3, 7: keys: no escalation, a real lifecycle ----------------------------

both!(keys_cannot_escalate_or_impersonate);
fn keys_cannot_escalate_or_impersonate(db: Db) {
    let Some(s) = Server::start(db) else { return };
    let c = s.custody();
    let ops = c.with_token(&key_for(&s, "ops", "admin"));
    // An org admin is not the server admin and cannot become it.
    ops.run(&["create", "api-key", "--service-account", "bootstrap-admin"])
        .fails(3, "server-admin account");
    ops.run(&["create", "org", "evil"]).fails(3, "server-admin");
    ops.run(&[
        "update",
        "service-account",
        "bootstrap-admin",
        "--role",
        "reader",
    ])
    .fails(3, "server-admin account");
    let keys = c.run(&["list", "api-keys", "--output", "json"]).ok().json();
    let root_key = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["service_account"] == "bootstrap-admin")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    ops.run(&["revoke", "api-key", &root_key])
        .fails(3, "server-admin account");
    // A member mints keys for itself, never for another member.
    let alice = c.with_token(&key_for(&s, "alice", "member"));
    key_for(&s, "bob", "member");
    alice
        .run(&["create", "api-key", "--service-account", "bob"])
        .fails(3, "does not allow");
    alice
        .run(&["create", "api-key", "--service-account", "alice"])
        .ok();
    alice
        .run(&["create", "service-account", "mallory", "--role", "admin"])
        .fails(3, "does not allow");
    // No secret in any listing.
    let listed = c.run(&["list", "api-keys", "--output", "json"]).ok();
    assert!(!listed.stdout.contains("cust_"), "{}", listed.stdout);
}

both!(keys_are_listed_revoked_rotated_and_expire);
fn keys_are_listed_revoked_rotated_and_expire(db: Db) {
    let Some(s) = Server::start(db) else { return };
    let c = s.custody();
    let key = key_for(&s, "ci", "ci");
    let ci = c.with_token(&key);
    let who = ci.run(&["whoami", "--output", "json"]).ok().json();
    let id = who["key_id"].as_str().unwrap().to_string();
    // Its own keys, with when they were last used.
    let own = ci
        .run(&["list", "api-keys", "--output", "json"])
        .ok()
        .json();
    assert_eq!(own.as_array().unwrap().len(), 1, "{own}");
    wait_for("the key's use to be noted", || {
        ci.run(&["list", "api-keys", "--output", "json"])
            .ok()
            .json()[0]["last_used_at"]
            .is_i64()
    });

    // Rotation with a grace period: both work; then the old one is cut.
    let rotated = ci
        .run(&[
            "rotate",
            "api-key",
            &id,
            "--grace-period",
            "1h",
            "--output",
            "json",
        ])
        .ok()
        .json();
    let new_key = rotated["new"]["key"].as_str().unwrap().to_string();
    let new_id = rotated["new"]["id"].as_str().unwrap().to_string();
    ci.run(&["whoami"]).ok();
    let ci2 = c.with_token(&new_key);
    ci2.run(&["whoami"]).ok();
    c.run(&["revoke", "api-key", &id]).ok();
    ci.run(&["whoami"]).fails(3, "expired or revoked");
    c.run(&["revoke", "api-key", &id])
        .fails(2, "already revoked");
    // Without grace, the old key stops at once.
    let again = ci2
        .run(&["rotate", "api-key", &new_id, "--output", "json"])
        .ok()
        .json();
    ci2.run(&["whoami"]).fails(3, "expired or revoked");
    let ci3 = c.with_token(again["new"]["key"].as_str().unwrap());
    ci3.run(&["whoami"]).ok();

    // A role change applies to the next request; a deleted account's keys
    // stop working.
    c.run(&["update", "service-account", "ci", "--role", "reader"])
        .ok();
    assert_eq!(
        ci3.run(&["whoami", "--output", "json"]).ok().json()["role"],
        "reader"
    );
    c.run(&["delete", "service-account", "ci"]).ok();
    ci3.run(&["whoami"]).fails(3, "expired or revoked");
    c.run(&["delete", "service-account", "bootstrap-admin"])
        .fails(3, "server-admin account");

    // Expiry at creation, and an organisation-wide maximum.
    key_for(&s, "short", "reader");
    let brief = c
        .run(&[
            "create",
            "api-key",
            "--service-account",
            "short",
            "--expires-in",
            "1s",
            "--output",
            "json",
        ])
        .ok()
        .json();
    let brief = c.with_token(brief["key"].as_str().unwrap());
    brief.run(&["whoami"]).ok();
    std::thread::sleep(Duration::from_millis(1500));
    brief.run(&["whoami"]).fails(3, "expired or revoked");
    c.run(&["update", "org", "--max-key-lifetime", "1d"]).ok();
    let k = c
        .run(&[
            "create",
            "api-key",
            "--service-account",
            "short",
            "--output",
            "json",
        ])
        .ok()
        .json();
    let now = jiff::Timestamp::now().as_millisecond();
    let expires = k["expires_at"].as_i64().unwrap();
    assert!(expires > now && expires <= now + 86_400_000 + 60_000, "{k}");
    c.run(&[
        "create",
        "api-key",
        "--service-account",
        "short",
        "--expires-in",
        "2d",
    ])
    .fails(2, "at most 1d");

    // Every account and key as the database holds it is what the ledger
    // says: rotations (with and without grace), revocations, a deletion.
    let audit = c.run(&["ledger", "verify", "--output", "json"]).ok().json();
    assert_eq!(
        audit[0]["problems"].as_array().map(Vec::len),
        Some(0),
        "{audit}"
    );
}

// ---- 8: who did what ---------------------------------------------------------

both!(every_record_names_who_made_it);
fn every_record_names_who_made_it(db: Db) {
    let Some(s) = Server::start(db) else { return };
    let admin = s.custody();
    admin.run(&["create", "flow", "app"]).ok();
    let ci = admin.with_token(&key_for(&s, "pipeline", "ci"));
    ci.run(&["begin", "trail", "t1", "--flow", "app"]).ok();
    ci.run(&[
        "attest", "generic", "--name", "checks", "--flow", "app", "--trail", "t1",
    ])
    .ok();
    let who = |v: &Value| v["service_account"].as_str().unwrap_or("").to_string();
    let t = ci
        .run(&["get", "trail", "t1", "--flow", "app", "--output", "json"])
        .ok()
        .json();
    assert_eq!(who(&t["trail"]["created_by"]), "pipeline", "{t}");
    assert_eq!(who(&t["attestations"][0]["reported_by"]), "pipeline", "{t}");
    let table = ci
        .run(&[
            "get",
            "attestation",
            "checks",
            "--flow",
            "app",
            "--trail",
            "t1",
        ])
        .ok();
    assert!(
        table.stdout.contains("default/pipeline"),
        "{}",
        table.stdout
    );
    // What runs, too.
    let snapper = key_for(&s, "reporter", "snapshotter");
    assert_eq!(report(&s, "edge", &snapper, &[]).status, 404);
    admin
        .run(&["create", "environment", "edge", "--type", "server"])
        .ok();
    assert_eq!(
        report(&s, "edge", &snapper, &[("web", &"a".repeat(64))]).status,
        200
    );
    let log = admin.run(&["log", "environment", "edge"]).ok();
    assert!(log.stdout.contains("default/reporter"), "{}", log.stdout);
    let snap = admin
        .run(&["get", "snapshot", "edge", "--output", "json"])
        .ok()
        .json();
    assert_eq!(who(&snap["reported_by"]), "reporter", "{snap}");
    // A snapshotter may create what does not exist, not change what does.
    let a = call(
        &s,
        "put",
        "/api/v1/orgs/default/environments/edge",
        &snapper,
        json_body(&json!({"type": "server", "description": "renamed by a reporter"})),
    );
    assert_eq!(a.status, 403, "{}", a.body);
    let a = call(
        &s,
        "put",
        "/api/v1/orgs/default/environments/new-edge",
        &snapper,
        json_body(&json!({"type": "server"})),
    );
    assert_eq!(a.status, 201, "{}", a.body);
    let a = call(
        &s,
        "put",
        "/api/v1/orgs/default/environments/new-edge",
        &snapper,
        json_body(&json!({"type": "server"})),
    );
    assert_eq!(a.status, 200, "{}", a.body);
}

// ---- 4: no SSRF ----------------------------------------------------------------

#[test]
fn notifications_go_to_public_addresses_only() {
    let Some(s) = Server::start_env(
        Db::Sqlite,
        &[],
        &[("CUSTODY_NOTIFY_ALLOW_PRIVATE", "false")],
    ) else {
        return;
    };
    let c = s.custody();
    c.run(&["create", "environment", "prod", "--type", "server"])
        .ok();
    for target in [
        "http://127.0.0.1:9/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:9/",
        "http://10.0.0.7/admin",
        "http://localhost:9/",
        "http://2130706433/",
        "ftp://example.com/",
    ] {
        c.run(&[
            "create",
            "action",
            "a",
            "--environment",
            "prod",
            "--on",
            "artifact-started",
            "--webhook",
            target,
        ])
        .fails(2, "");
    }
    let list = c.run(&["list", "actions", "--output", "json"]).ok().json();
    assert_eq!(list.as_array().unwrap().len(), 0, "{list}");
}

#[test]
fn receivers_say_only_their_status_and_redirects_are_not_followed() {
    let Some(s) = Server::start(Db::Sqlite) else {
        return;
    };
    let c = s.custody();
    c.run(&["create", "environment", "prod", "--type", "server"])
        .ok();
    let inside = Receiver::start(Behaviour::Ok);
    let leaky = Receiver::start(Behaviour::Always500);
    let bouncer = Receiver::start(Behaviour::Redirect(Box::leak(
        inside.url.clone().into_boxed_str(),
    )));
    for (name, r) in [("leaky", &leaky), ("bouncer", &bouncer)] {
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
    assert_eq!(
        report(&s, "prod", TOKEN, &[("web", &"a".repeat(64))]).status,
        200
    );
    let attempt = |action: &str| {
        let d = c
            .run(&["list", "deliveries", "--action", action, "--output", "json"])
            .ok()
            .json();
        d[0]["attempts"][0].clone()
    };
    wait_for("both attempts", || {
        attempt("leaky").is_object() && attempt("bouncer").is_object()
    });
    // The body of an internal service's error page stays out of reach.
    assert_eq!(attempt("leaky")["error"], "HTTP 500");
    let b = attempt("bouncer");
    assert_eq!(b["status_code"], 302, "{b}");
    assert!(b["error"].as_str().unwrap().contains("not followed"), "{b}");
    std::thread::sleep(Duration::from_millis(300));
    assert!(inside.requests().is_empty(), "the redirect was followed");
}

// ---- 5, 6: bounded work ---------------------------------------------------------

#[test]
fn requests_are_bounded() {
    let Some(s) = Server::start_with(
        Db::Sqlite,
        &[
            "--max-json-body",
            "64KiB",
            "--max-evidence-json",
            "256KiB",
            "--max-field",
            "4KiB",
        ],
    ) else {
        return;
    };
    let c = s.custody();
    c.run(&["create", "flow", "f"]).ok();
    c.run(&["begin", "trail", "t", "--flow", "f"]).ok();
    let attest = "/api/v1/orgs/default/flows/f/trails/t/attestations";
    // A free-form field over its limit, named.
    let big = "x".repeat(8 << 10);
    let a = call(
        &s,
        "post",
        attest,
        TOKEN,
        json_body(&json!({"name": "g", "type": "generic", "user_data": {"blob": big}})),
    );
    assert_eq!(a.status, 413, "{}", a.body);
    assert!(a.error().contains("--max-field"), "{}", a.body);
    // Nesting that anything walking it later could not take.
    let deep = format!("{}{}", "[".repeat(1000), "]".repeat(1000));
    let a = call(
        &s,
        "post",
        attest,
        TOKEN,
        Some(format!("{{\"name\":\"g\",\"type\":\"generic\",\"user_data\":{deep}}}").into_bytes()),
    );
    assert_eq!(a.status, 400, "{}", a.body);
    assert!(a.error().contains("nests 1000 levels"), "{}", a.body);
    let a = call(
        &s,
        "put",
        "/api/v1/orgs/default/flows/f/trails",
        TOKEN,
        Some(format!("{{\"name\":\"t2\",\"user_data\":{deep}}}").into_bytes()),
    );
    assert_eq!(a.status, 400, "{}", a.body);
    // Fields other than a tool's results held to the JSON limit.
    let a = call(
        &s,
        "post",
        attest,
        TOKEN,
        json_body(&json!({"name": "g", "type": "generic", "description": "d".repeat(100 << 10)})),
    );
    assert_eq!(a.status, 413, "{}", a.body);
    assert!(a.error().contains("--max-json-body"), "{}", a.body);
    // The whole attestation held to its own limit.
    let a = call(
        &s,
        "post",
        attest,
        TOKEN,
        Some(
            format!(
                "{{\"name\":\"g\",\"type\":\"sbom\",\"results\":\"{}\"}}",
                "y".repeat(300 << 10)
            )
            .into_bytes(),
        ),
    );
    assert_eq!(a.status, 413, "{}", a.body);
    assert!(a.error().contains("--max-evidence-json"), "{}", a.body);
    // Any other JSON body.
    let policy = json!({"type": "kosli", "content": "#".repeat(100 << 10)});
    let a = call(
        &s,
        "put",
        "/api/v1/orgs/default/policies/p",
        TOKEN,
        json_body(&policy),
    );
    assert_eq!(a.status, 413, "{}", a.body);
    assert!(a.error().contains("--max-json-body"), "{}", a.body);
    // Roles are checked before a body is read: a reader's oversized body
    // is refused for what it is, not for its size.
    let reader = key_for(&s, "r", "reader");
    let a = call(
        &s,
        "put",
        "/api/v1/orgs/default/policies/p",
        &reader,
        json_body(&policy),
    );
    assert_eq!(a.status, 403, "{}", a.body);
    // Counts that wrap around do not make a verdict.
    let trivy = json!({"format": "json", "tool": "trivy", "targets": [],
        "totals": {"critical": 1, "high": u64::MAX, "medium": 0, "low": 0, "negligible": 0, "unknown": 0},
        "findings": [{"id": "CVE-1", "severity": "critical", "category": "vulnerability"}]});
    let a = call(
        &s,
        "post",
        attest,
        TOKEN,
        json_body(&json!({"name": "scan", "type": "trivy", "results": trivy})),
    );
    assert_eq!(a.status, 400, "{}", a.body);
    assert!(a.error().contains("64 bits"), "{}", a.body);
    // Ranges from a query string are checked before they are used.
    c.run(&["create", "environment", "prod", "--type", "server"])
        .ok();
    let a = call(
        &s,
        "get",
        "/api/v1/orgs/default/environments/prod/snapshots?interval=18446744073709551615..",
        TOKEN,
        None,
    );
    assert!(a.status < 500, "{} {}", a.status, a.body);
    assert!(healthy(&s));
}

#[test]
fn keys_are_rate_limited_and_slow_clients_are_cut_off() {
    let Some(s) = Server::start_with(Db::Sqlite, &["--rate-limit", "5", "--header-timeout", "1s"])
    else {
        return;
    };
    let answers: Vec<Answer> = (0..20)
        .map(|_| call(&s, "get", "/api/v1/whoami", TOKEN, None))
        .collect();
    let limited: Vec<&Answer> = answers.iter().filter(|a| a.status == 429).collect();
    assert!(!limited.is_empty(), "no request was limited");
    assert!(limited[0].retry_after.is_some());
    assert!(limited[0].error().contains("rate limit"));
    // Another key has its own allowance.
    let other = key_for_after_wait(&s);
    assert_eq!(call(&s, "get", "/api/v1/whoami", &other, None).status, 200);

    // A client that sends half a request head is disconnected.
    let addr = s.url.trim_start_matches("http://").to_string();
    let mut conn = std::net::TcpStream::connect(&addr).unwrap();
    conn.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let started = Instant::now();
    let mut buf = Vec::new();
    let _ = conn.read_to_end(&mut buf);
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "the connection was held open"
    );
}

/// A new key, after the rate limiter has let the bootstrap key breathe.
fn key_for_after_wait(s: &Server) -> String {
    std::thread::sleep(Duration::from_millis(1200));
    key_for(s, "other", "reader")
}

// ---- 9: separation of duties, on every route --------------------------------

/// Who may call a route.
#[derive(Clone, Copy, Debug)]
enum Need {
    /// No key at all.
    Public,
    /// Any key.
    Read,
    ServerAdmin,
    /// Report what runs; create missing environments.
    Snapshots,
    ManageEnvironments,
    /// Trails, artifacts, attestations (decisions by who may decide).
    Evidence,
    EvidenceOrDecisions,
    Requirements,
    Admin,
}

const ROLES: [&str; 6] = [
    "reader",
    "snapshotter",
    "ci",
    "member",
    "policy-admin",
    "admin",
];

impl Need {
    fn allows(self, role: &str) -> bool {
        match self {
            Need::Public | Need::Read => true,
            Need::ServerAdmin => false,
            Need::Snapshots => matches!(role, "snapshotter" | "ci" | "member" | "admin"),
            Need::ManageEnvironments => matches!(role, "member" | "admin"),
            Need::Evidence => matches!(role, "ci" | "member" | "admin"),
            Need::EvidenceOrDecisions => {
                matches!(role, "ci" | "member" | "policy-admin" | "admin")
            }
            Need::Requirements => matches!(role, "policy-admin" | "admin"),
            Need::Admin => role == "admin",
        }
    }
}

/// Every route of the API and who may call it: the matrix of
/// docs/security.md.
const MATRIX: &[(&str, &str, Need)] = &[
    ("get", "/healthz", Need::Public),
    ("get", "/readyz", Need::Public),
    ("get", "/api/v1/whoami", Need::Read),
    ("post", "/api/v1/orgs", Need::ServerAdmin),
    ("get", "/api/v1/orgs/{org}/settings", Need::Read),
    ("put", "/api/v1/orgs/{org}/settings", Need::Admin),
    ("get", "/api/v1/orgs/{org}/service-accounts", Need::Read),
    ("post", "/api/v1/orgs/{org}/service-accounts", Need::Admin),
    (
        "patch",
        "/api/v1/orgs/{org}/service-accounts/{account}",
        Need::Admin,
    ),
    (
        "delete",
        "/api/v1/orgs/{org}/service-accounts/{account}",
        Need::Admin,
    ),
    // For another account than the caller's own (for its own: any key).
    (
        "post",
        "/api/v1/orgs/{org}/service-accounts/{account}/api-keys",
        Need::Admin,
    ),
    // One's own keys, or as an admin any; decided per key.
    ("get", "/api/v1/orgs/{org}/api-keys", Need::Read),
    ("delete", "/api/v1/orgs/{org}/api-keys/{id}", Need::Read),
    (
        "post",
        "/api/v1/orgs/{org}/api-keys/{id}/rotate",
        Need::Read,
    ),
    ("get", "/api/v1/orgs/{org}/flows", Need::Read),
    ("put", "/api/v1/orgs/{org}/flows", Need::Requirements),
    ("get", "/api/v1/orgs/{org}/flows/{flow}", Need::Read),
    (
        "post",
        "/api/v1/orgs/{org}/flows/{flow}/archive",
        Need::Requirements,
    ),
    (
        "post",
        "/api/v1/orgs/{org}/flows/{flow}/rename",
        Need::Requirements,
    ),
    ("get", "/api/v1/orgs/{org}/repos", Need::Read),
    ("get", "/api/v1/orgs/{org}/repos/{name}", Need::Read),
    (
        "patch",
        "/api/v1/orgs/{org}/flows/{flow}/tags",
        Need::Requirements,
    ),
    ("get", "/api/v1/orgs/{org}/flows/{flow}/trails", Need::Read),
    // With its own template: Requirements.
    (
        "put",
        "/api/v1/orgs/{org}/flows/{flow}/trails",
        Need::Evidence,
    ),
    (
        "get",
        "/api/v1/orgs/{org}/flows/{flow}/trails/{trail}",
        Need::Read,
    ),
    (
        "post",
        "/api/v1/orgs/{org}/flows/{flow}/trails/{trail}/artifacts",
        Need::Evidence,
    ),
    (
        "post",
        "/api/v1/orgs/{org}/flows/{flow}/trails/{trail}/attestations",
        Need::EvidenceOrDecisions,
    ),
    (
        "get",
        "/api/v1/orgs/{org}/flows/{flow}/trails/{trail}/attestations/{name}",
        Need::Read,
    ),
    (
        "get",
        "/api/v1/orgs/{org}/flows/{flow}/artifacts/{sha}",
        Need::Read,
    ),
    ("get", "/api/v1/orgs/{org}/artifacts", Need::Read),
    ("get", "/api/v1/orgs/{org}/search/{sha}", Need::Read),
    ("get", "/api/v1/orgs/{org}/search", Need::Read),
    ("get", "/api/v1/orgs/{org}/attestation-types", Need::Read),
    (
        "post",
        "/api/v1/orgs/{org}/attestation-types",
        Need::Requirements,
    ),
    (
        "get",
        "/api/v1/orgs/{org}/attestation-types/{name}",
        Need::Read,
    ),
    (
        "post",
        "/api/v1/orgs/{org}/attestation-types/{name}/archive",
        Need::Requirements,
    ),
    ("get", "/api/v1/orgs/{org}/attestations/{id}", Need::Read),
    (
        "get",
        "/api/v1/orgs/{org}/attestations/{id}/components",
        Need::Read,
    ),
    ("get", "/api/v1/orgs/{org}/components", Need::Read),
    ("get", "/api/v1/orgs/{org}/evidence/{sha256}", Need::Read),
    ("get", "/api/v1/orgs/{org}/environments", Need::Read),
    // Creating a missing one; changing one that exists: ManageEnvironments.
    (
        "put",
        "/api/v1/orgs/{org}/environments/{env}",
        Need::Snapshots,
    ),
    ("get", "/api/v1/orgs/{org}/environments/{env}", Need::Read),
    (
        "post",
        "/api/v1/orgs/{org}/environments/{env}/rename",
        Need::ManageEnvironments,
    ),
    (
        "post",
        "/api/v1/orgs/{org}/environments/{env}/archive",
        Need::ManageEnvironments,
    ),
    (
        "post",
        "/api/v1/orgs/{org}/environments/{env}/join",
        Need::ManageEnvironments,
    ),
    (
        "post",
        "/api/v1/orgs/{org}/environments/{env}/leave",
        Need::ManageEnvironments,
    ),
    (
        "put",
        "/api/v1/orgs/{org}/environments/{env}/report",
        Need::Snapshots,
    ),
    (
        "get",
        "/api/v1/orgs/{org}/environments/{env}/snapshot",
        Need::Read,
    ),
    (
        "get",
        "/api/v1/orgs/{org}/environments/{env}/snapshots",
        Need::Read,
    ),
    (
        "get",
        "/api/v1/orgs/{org}/environments/{env}/events",
        Need::Read,
    ),
    ("get", "/api/v1/orgs/{org}/snapshot-diff", Need::Read),
    (
        "get",
        "/api/v1/orgs/{org}/environments/{env}/timeline",
        Need::Read,
    ),
    (
        "get",
        "/api/v1/orgs/{org}/environments/{env}/dora",
        Need::Read,
    ),
    ("get", "/api/v1/orgs/{org}/policies", Need::Read),
    (
        "put",
        "/api/v1/orgs/{org}/policies/{name}",
        Need::Requirements,
    ),
    ("get", "/api/v1/orgs/{org}/policies/{name}", Need::Read),
    (
        "post",
        "/api/v1/orgs/{org}/environments/{env}/policies",
        Need::Requirements,
    ),
    (
        "delete",
        "/api/v1/orgs/{org}/environments/{env}/policies",
        Need::Requirements,
    ),
    ("get", "/api/v1/orgs/{org}/controls", Need::Read),
    (
        "post",
        "/api/v1/orgs/{org}/controls/{id}/archive",
        Need::Requirements,
    ),
    (
        "post",
        "/api/v1/orgs/{org}/controls/{id}/unarchive",
        Need::Requirements,
    ),
    (
        "put",
        "/api/v1/orgs/{org}/controls/{id}",
        Need::Requirements,
    ),
    ("get", "/api/v1/orgs/{org}/controls/{id}", Need::Read),
    (
        "get",
        "/api/v1/orgs/{org}/controls/{id}/versions",
        Need::Read,
    ),
    (
        "post",
        "/api/v1/orgs/{org}/environments/{env}/allowlist",
        Need::Requirements,
    ),
    (
        "get",
        "/api/v1/orgs/{org}/environments/{env}/allowlist",
        Need::Read,
    ),
    (
        "get",
        "/api/v1/orgs/{org}/environments/{env}/compliance",
        Need::Read,
    ),
    ("post", "/api/v1/orgs/{org}/assert/artifact", Need::Read),
    ("get", "/api/v1/orgs/{org}/actions", Need::Read),
    (
        "put",
        "/api/v1/orgs/{org}/actions/{name}",
        Need::Requirements,
    ),
    ("get", "/api/v1/orgs/{org}/deliveries", Need::Read),
    ("get", "/api/v1/orgs/{org}/ledger/checkpoint", Need::Read),
    ("get", "/api/v1/orgs/{org}/ledger/key", Need::Read),
    ("get", "/api/v1/orgs/{org}/ledger/inclusion", Need::Read),
    ("get", "/api/v1/orgs/{org}/ledger/consistency", Need::Read),
    ("get", "/api/v1/orgs/{org}/ledger/entries", Need::Read),
    ("get", "/api/v1/orgs/{org}/ledger/locate", Need::Read),
    ("get", "/metrics", Need::ServerAdmin),
    ("get", "/api/v1/orgs/{org}/ledger/verify", Need::Admin),
    (
        "get",
        "/api/v1/orgs/{org}/flows/{flow}/trails/{trail}/intoto",
        Need::Read,
    ),
    (
        "post",
        "/api/v1/orgs/{org}/environments/{env}/audit-bundle",
        Need::Read,
    ),
];

fn concrete(path: &str) -> String {
    path.replace("{org}", "default")
        .replace("{account}", "nobody")
        .replace("{id}", "nope")
        .replace("{flow}", "f")
        .replace("{trail}", "t")
        .replace("{name}", "n")
        .replace("{sha256}", &"0".repeat(64))
        .replace("{sha}", "abcd")
        .replace("{env}", "e")
}

both!(every_route_checks_every_role);
fn every_route_checks_every_role(db: Db) {
    let Some(s) = Server::start(db) else { return };
    // The matrix covers exactly the routes the server has.
    let doc: Value =
        serde_json::from_str(&call(&s, "get", "/api/v1/openapi.json", TOKEN, None).body).unwrap();
    let mut served: Vec<(String, String)> = vec![];
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if ["get", "put", "post", "delete", "patch"].contains(&method.as_str()) {
                served.push((method.clone(), path.clone()));
            }
        }
    }
    served.sort();
    let mut listed: Vec<(String, String)> = MATRIX
        .iter()
        .map(|(m, p, _)| (m.to_string(), p.to_string()))
        .collect();
    listed.sort();
    assert_eq!(
        served, listed,
        "the route matrix and the server's routes differ"
    );

    let keys: Vec<(&str, String)> = ROLES
        .iter()
        .map(|r| (*r, key_for(&s, &format!("as-{r}"), r)))
        .collect();
    let mut wrong = vec![];
    for (method, path, need) in MATRIX {
        let url = concrete(path);
        let body = (*method != "get" && *method != "delete").then(|| b"{}".to_vec());
        for (role, key) in &keys {
            let a = call(&s, method, &url, key, body.clone());
            let ok = if need.allows(role) {
                a.status != 401 && a.status != 403
            } else {
                a.status == 403
            };
            if !ok {
                wrong.push(format!(
                    "{} {path} as {role}: {} {}",
                    method.to_uppercase(),
                    a.status,
                    a.body
                ));
            }
        }
        // The server admin's key may do everything in its organisation.
        let a = call(&s, method, &url, TOKEN, body.clone());
        if a.status == 401 || a.status == 403 {
            wrong.push(format!(
                "{} {path} as server admin: {}",
                method.to_uppercase(),
                a.status
            ));
        }
        // No key: only public routes answer.
        if !matches!(need, Need::Public) {
            let a = call(&s, method, &url, "", body);
            if a.status != 401 {
                wrong.push(format!(
                    "{} {path} without a key: {}",
                    method.to_uppercase(),
                    a.status
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

// ---- 10: secrets at rest and the first start -------------------------------

#[test]
fn secrets_stay_sealed_and_the_first_start_is_safe() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let start = |data: &std::path::Path| {
        std::process::Command::new(common::bin())
            .args(["server", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data)
            .env_remove("CUSTODY_BOOTSTRAP_TOKEN")
            .env_remove("CUSTODY_DATABASE")
            .env("CUSTODY_NOTIFY_ALLOW_PRIVATE", "true")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let mut child = start(&data);
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(child.stdout.take().unwrap()));
    let mut said = String::new();
    let url = loop {
        let line = lines.next().expect("the server exited").unwrap();
        said.push_str(&line);
        if let Some(u) = line.strip_prefix("custody server listening on ") {
            break u.to_string();
        }
    };
    let token = std::fs::read_to_string(data.join("bootstrap-token"))
        .unwrap()
        .trim()
        .to_string();
    // Not printed where logs go (stdout is a pipe here).
    assert!(!said.contains(&token), "{said}");
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&data.join("bootstrap-token")), 0o600);
    assert_eq!(mode(&data.join("custody.db")), 0o600);
    assert_eq!(mode(&data.join("secret.key")), 0o600);

    // A webhook's secret is not in the database as it was given.
    let c = common::Cli::new(&url, &token, dir.path());
    c.run(&["create", "environment", "prod", "--type", "server"])
        .ok();
    let receiver = Receiver::start(Behaviour::Ok);
    c.run(&[
        "create",
        "action",
        "signed",
        "--environment",
        "prod",
        "--on",
        "artifact-started",
        "--webhook",
        &receiver.url,
        "--secret",
        "whsec-do-not-store-me",
    ])
    .ok();
    let db_bytes = |data: &std::path::Path| {
        let mut all = Vec::new();
        for f in ["custody.db", "custody.db-wal"] {
            if let Ok(b) = std::fs::read(data.join(f)) {
                all.extend(b);
            }
        }
        String::from_utf8_lossy(&all).into_owned()
    };
    assert!(!db_bytes(&data).contains("whsec-do-not-store-me"));
    // ...and deliveries are still signed with it.
    let r = call_url(
        &url,
        "put",
        "/api/v1/orgs/default/environments/prod/report",
        &token,
        json_body(
            &json!({"type": "server", "artifacts": [{"name": "web", "fingerprint": "a".repeat(64), "instances": [{"id": "w1"}]}]}),
        ),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    wait_for("the signed delivery", || !receiver.requests().is_empty());
    let req = &receiver.requests()[0];
    let ts = req.header("x-custody-timestamp").to_string();
    let mut signed = format!("{ts}.").into_bytes();
    signed.extend_from_slice(&req.body);
    use hmac::Mac;
    let mut mac =
        <hmac::Hmac<sha2::Sha256> as hmac::KeyInit>::new_from_slice(b"whsec-do-not-store-me")
            .unwrap();
    mac.update(&signed);
    assert_eq!(
        req.header("x-custody-signature"),
        format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
    );
    let _ = child.kill();
    let _ = child.wait();

    // A bootstrap-token left from another database: refused before
    // anything is created, so the operator is not locked out.
    let fresh = dir.path().join("fresh");
    std::fs::create_dir_all(&fresh).unwrap();
    std::fs::write(fresh.join("bootstrap-token"), "cust_stale\n").unwrap();
    let out = start(&fresh).wait_with_output().unwrap();
    assert_ne!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("belongs to another database"), "{err}");
    std::fs::remove_file(fresh.join("bootstrap-token")).unwrap();
    let mut again = start(&fresh);
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(again.stdout.take().unwrap()));
    assert!(lines.any(|l| l.unwrap().starts_with("custody server listening on ")));
    assert!(fresh.join("bootstrap-token").exists());
    let _ = again.kill();
    let _ = again.wait();
}

// ---- 11: the client side ---------------------------------------------------

#[test]
fn the_client_gives_up_on_a_silent_server() {
    // Accepts connections and never answers: a half-open server.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut held = vec![];
        for c in listener.incoming() {
            held.push(c);
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let c = common::Cli::new(&format!("http://{addr}"), TOKEN, dir.path());
    let started = Instant::now();
    c.run(&["--timeout", "1s", "whoami"])
        .fails(3, "no answer in time");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn attachments_do_not_follow_links_out_of_the_tree() {
    let Some(s) = Server::start(Db::Sqlite) else {
        return;
    };
    let c = s.custody();
    c.run(&["create", "flow", "f"]).ok();
    c.run(&["begin", "trail", "t", "--flow", "f"]).ok();
    s.write("reports/junit.xml", "<testsuite/>");
    let creds = s.write("home/.aws/credentials", "aws_secret_access_key=x");
    std::os::unix::fs::symlink(&creds, s.path("reports/x")).unwrap();
    c.run(&[
        "attest",
        "generic",
        "--name",
        "g",
        "--flow",
        "f",
        "--trail",
        "t",
        "--attachments",
        s.path("reports").to_str().unwrap(),
    ])
    .fails(2, "outside the attached directory");
    let t = c
        .run(&["get", "trail", "t", "--flow", "f", "--output", "json"])
        .ok()
        .json();
    assert_eq!(t["attestations"].as_array().unwrap().len(), 0);
}
