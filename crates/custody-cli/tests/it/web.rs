//! The web UI, end to end: a real server filled by the real CLI, pages
//! opened in a real headless Chromium, what they show checked against the
//! API's answers, every page checked by axe-core and at 320 px, and a
//! screenshot of each saved (target/tmp/web-screenshots) to be looked at.
//! Sessions, CSRF and organisation sealing are checked over plain HTTP on
//! both databases.

use crate::common;
use crate::security;

use std::time::Duration;

use common::browser::Browser;
use common::{Db, Server};
use fantoccini::Locator;
use serde_json::{Value, json};

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// The API's answer, to compare a page with.
async fn api(s: &Server, path: &str) -> Value {
    let r = reqwest::Client::new()
        .get(format!("{}/api/v1/orgs/default{path}", s.url))
        .bearer_auth(common::TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{path}");
    r.json().await.unwrap()
}

fn report(s: &Server, env: &str, artifacts: &[(&str, &str, usize)]) {
    let artifacts: Vec<Value> = artifacts
        .iter()
        .map(|(name, fp, n)| {
            json!({"name": name, "fingerprint": fp,
                   "instances": (0..*n).map(|i| json!({"id": format!("{name}-{i}")})).collect::<Vec<_>>()})
        })
        .collect();
    let body = json!({"type": "k8s", "interval_s": 60, "artifacts": artifacts, "reporter": "reporter-eu-1"});
    let a = security::call(
        s,
        "PUT",
        &format!("/api/v1/orgs/default/environments/{env}/report"),
        common::TOKEN,
        Some(serde_json::to_vec(&body).unwrap()),
    );
    assert_eq!(a.status, 200, "{}", a.body);
}

/// What `fill` made.
struct Facts {
    api_v1: String,
    api_v2: String,
    miner: String,
    junit_sha: String,
}

const JUNIT: &str = r#"<?xml version="1.0"?>
<testsuite name="payments" tests="3" failures="1">
  <testcase classname="pay.Api" name="charges"/>
  <testcase classname="pay.Api" name="refunds"><failure message="expected 200, got 500">stack</failure></testcase>
  <testcase classname="pay.Api" name="lists"/>
</testsuite>
"#;

const TEMPLATE: &str = "version: 1\ntrail:\n  artifacts:\n    - name: api\n      attestations:\n        - name: tests\n          type: junit\n";

/// A flow with two trails (the first with failing tests), an environment
/// where the second build replaced the first and an unknown miner
/// started, and a policy that judges it.
fn fill(s: &Server) -> Facts {
    let c = s.custody();
    s.write("tmpl.yml", TEMPLATE);
    s.write("results/junit.xml", JUNIT);
    let tmpl = s.path("tmpl.yml");
    c.run(&[
        "create",
        "flow",
        "payments",
        "--template-file",
        tmpl.to_str().unwrap(),
        "--description",
        "Payments API",
    ])
    .ok();
    let api_v1 = sha256_hex(b"payments-api v1");
    let api_v2 = sha256_hex(b"payments-api v2");
    let miner = sha256_hex(b"xmrig");
    for (trail, fp) in [("v1", &api_v1), ("v2", &api_v2)] {
        c.run(&["begin", "trail", trail, "--flow", "payments"]).ok();
        c.run(&[
            "attest",
            "artifact",
            "--fingerprint",
            fp,
            "--name",
            "api",
            "--flow",
            "payments",
            "--trail",
            trail,
            "--build-url",
            "https://ci.example/build/1",
        ])
        .ok();
    }
    let results = s.path("results");
    c.run(&[
        "attest",
        "junit",
        "--name",
        "api.tests",
        "--flow",
        "payments",
        "--trail",
        "v1",
        "--results-dir",
        results.to_str().unwrap(),
    ])
    .ok();
    // Snyk's JSON, counted as Snyk counts it: issues and vulnerable paths.
    let snyk = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../custody-evidence/tests/fixtures/snyk/two-versions.json");
    c.run(&[
        "attest",
        "snyk",
        "--name",
        "api.deps",
        "--flow",
        "payments",
        "--trail",
        "v1",
        "--scan-results",
        snyk.to_str().unwrap(),
        "--upload-results=false",
    ])
    .ok();
    // The review of the change, from GitHub (a local stand-in), and the
    // dependency scan overridden with a reason.
    let (repo, sha) = crate::change::repo(s.path("").as_path(), "PAY-1: refunds", "main");
    let gh = crate::change::github(&sha);
    let base = format!("{}/git", gh.url);
    c.run(&[
        "attest",
        "pullrequest",
        "github",
        "--name",
        "review",
        "--flow",
        "payments",
        "--trail",
        "v1",
        "--github-token",
        "t",
        "--github-org",
        "acme",
        "--repository",
        "shop",
        "--github-base-url",
        &base,
        "--commit",
        &sha,
        "--repo-root",
        repo.to_str().unwrap(),
        "--require-approvals",
        "1",
    ])
    .ok();
    c.run(&[
        "attest",
        "override",
        "--name",
        "api.deps",
        "--flow",
        "payments",
        "--trail",
        "v1",
        "--new-compliance-status=true",
        "--reason",
        "reviewed: the vulnerable code is not reachable",
    ])
    .ok();
    c.run(&[
        "create",
        "environment",
        "prod",
        "--type",
        "k8s",
        "--description",
        "Production",
    ])
    .ok();
    report(
        s,
        "prod",
        &[("registry.example/payments-api:1", &api_v1, 2)],
    );
    report(
        s,
        "prod",
        &[
            ("registry.example/payments-api:2", &api_v2, 3),
            ("docker.io/xmrig:latest", &miner, 1),
        ],
    );
    s.write("policy.yml", "_schema: https://kosli.com/schemas/policy/environment/v1\nartifacts:\n  provenance:\n    required: true\n");
    let policy = s.path("policy.yml");
    c.run(&["create", "policy", "provenance", policy.to_str().unwrap()])
        .ok();
    c.run(&["attach-policy", "provenance", "--environment", "prod"])
        .ok();
    Facts {
        api_v1,
        api_v2,
        miner,
        junit_sha: sha256_hex(JUNIT.as_bytes()),
    }
}

async fn submit_key(b: &Browser, key: &str) {
    b.client
        .find(Locator::Id("api_key"))
        .await
        .unwrap()
        .send_keys(key)
        .await
        .unwrap();
    b.client
        .find(Locator::Css("form button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

async fn sign_in(b: &Browser, base: &str, key: &str) {
    submit_key(b, key).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while b.url().await.starts_with(&format!("{base}/signin")) {
        assert!(
            std::time::Instant::now() < deadline,
            "sign-in did not leave the sign-in page"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Opens a page, checks it answers, has no serious accessibility problem,
/// reads at 320 px without sideways scrolling, and saves its screenshot.
/// Follows each "Show in ledger" link of the page: each lands on the page
/// of an entry of the kind it asked for. The kinds and entries' texts.
async fn follow_ledger_links(b: &Browser) -> Vec<(String, String)> {
    let mut hrefs = vec![];
    for a in b.client.find_all(Locator::Css("a.ledger")).await.unwrap() {
        hrefs.push(a.attr("href").await.unwrap().unwrap());
    }
    assert!(!hrefs.is_empty(), "no 'Show in ledger' link");
    let mut landed = vec![];
    for href in hrefs {
        b.goto(&href).await;
        let url = b.url().await;
        let seq = url.rsplit('/').next().unwrap();
        assert!(seq.parse::<u64>().is_ok(), "{href} went to {url}");
        let kind = href
            .split(['?', '&'])
            .find_map(|p| p.strip_prefix("kind="))
            .unwrap()
            .to_string();
        let text = b.text().await;
        assert!(text.contains(&format!("Kind\n{kind}")), "{href}: {text}");
        landed.push((kind, text));
    }
    landed
}

async fn visit(b: &Browser, url: &str, shot: &str) -> String {
    b.goto(url).await;
    let text = b.text().await;
    assert!(
        !text.contains("Not found") && !text.contains("Something went wrong"),
        "{url}: {text}"
    );
    let problems = b.axe_violations().await;
    assert!(problems.is_empty(), "{url}: axe found {problems:#?}");
    b.full_shot(shot).await;
    b.client.set_window_size(320, 800).await.unwrap();
    let overflow = b.overflows_sideways().await.then_some(b.too_wide().await);
    b.shot(&format!("{shot}-320px")).await;
    b.client.set_window_size(1280, 900).await.unwrap();
    assert!(
        overflow.is_none(),
        "{url}: the page scrolls sideways at 320 px: {overflow:?}"
    );
    text
}

#[test]
fn a_security_person_answers_the_questions_in_a_browser() {
    let Some(s) = Server::start(Db::Sqlite) else {
        return;
    };
    let f = fill(&s);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let Some(b) = Browser::start().await else {
            return;
        };
        let base = s.url.clone();
        let org = format!("{base}/orgs/default");

        // A page asked for while signed out leads to sign-in, then back.
        b.goto(&format!("{org}/environments/prod")).await;
        assert!(
            b.url().await.starts_with(&format!("{base}/signin?next=")),
            "{}",
            b.url().await
        );
        assert!(b.axe_violations().await.is_empty());
        b.shot("signin").await;
        // A wrong key keeps the visitor on the sign-in page, told why.
        submit_key(&b, "cust_not-a-key").await;
        b.wait_for("#signin-error").await;
        assert!(
            b.text()
                .await
                .contains("was not found, or it has expired or been revoked")
        );
        assert!(b.url().await.starts_with(&format!("{base}/signin")));
        sign_in(&b, &base, common::TOKEN).await;
        assert_eq!(b.url().await, format!("{org}/environments/prod"));
        assert!(b.cookie("custody_session").await.is_some());

        // Overview: what the API says of each environment.
        let text = visit(&b, &format!("{org}/environments"), "environments").await;
        assert!(text.contains("prod"));
        let rows = b.rows("Every environment").await;
        assert_eq!(rows.len(), 1, "{rows:?}");
        let snap = api(&s, "/environments/prod/snapshot").await;
        let env = api(&s, "/environments/prod").await;
        assert_eq!(env["compliance"], "NON-COMPLIANT");
        assert!(rows[0].contains("Non-compliant"), "{rows:?}");
        assert!(
            rows[0].contains(&format!(
                "| {} |",
                snap["artifacts"].as_array().unwrap().len()
            )),
            "{rows:?}"
        );
        assert!(
            rows[0].contains(&format!("| {} ⚠", snap["unknown"])),
            "{rows:?}"
        );

        // The environment: what runs now, with provenance, and the miner
        // flagged; the timeline draws both runs of the API and the miner.
        visit(&b, &format!("{org}/environments/prod"), "environment").await;
        let running = b.rows("Artifacts in snapshot").await;
        assert_eq!(running.len(), snap["artifacts"].as_array().unwrap().len());
        let miner = running.iter().find(|r| r.contains("xmrig")).unwrap();
        let snapshot_entry = follow_ledger_links(&b).await;
        assert_eq!(snapshot_entry.len(), 1);
        assert!(
            snapshot_entry[0]
                .1
                .contains(&format!("\"snapshot\": {}", snap["index"]))
        );
        b.goto(&format!("{org}/environments/prod")).await;
        assert!(
            miner.contains("Unknown artifact") && miner.contains("Non-compliant"),
            "{miner}"
        );
        let api_row = running
            .iter()
            .find(|r| r.contains("payments-api:2"))
            .unwrap();
        assert!(
            api_row.contains("payments / v2") && api_row.contains("| 3 |"),
            "{api_row}"
        );
        let timeline = api(&s, "/environments/prod/timeline").await;
        assert_eq!(timeline["runs"].as_array().unwrap().len(), 3);
        assert_eq!(b.count("svg rect[fill='url(#hatch-unk)']").await, 1);
        assert!(b.count("svg[role=img] title").await > 0);
        let changes = b.rows("Changes of what runs").await;
        let events = api(&s, "/environments/prod/events").await;
        assert_eq!(changes.len() as u64, events["total"].as_u64().unwrap());
        assert!(b.text().await.contains("evaluation"));

        // A past snapshot, by the picker's URL, and a difference.
        visit(
            &b,
            &format!("{org}/environments/prod?snapshot=1"),
            "environment-snapshot-1",
        )
        .await;
        let first = b.rows("Artifacts in snapshot #1").await;
        assert_eq!(first.len(), 1);
        assert!(first[0].contains("payments-api:1"));
        visit(
            &b,
            &format!("{org}/environments/prod/diff?first=1&second=2"),
            "diff",
        )
        .await;
        let diff = api(&s, "/snapshot-diff?first=prod%231&second=prod%232").await;
        assert_eq!(
            b.rows("Only in #1").await.len(),
            diff["only_in_first"].as_array().unwrap().len()
        );
        assert_eq!(
            b.rows("Only in #2").await.len(),
            diff["only_in_second"].as_array().unwrap().len()
        );
        visit(&b, &format!("{org}/environments/prod/events"), "events").await;
        visit(
            &b,
            &format!("{org}/environments/prod/snapshots"),
            "snapshots",
        )
        .await;
        assert_eq!(b.rows("Snapshots, newest first").await.len(), 2);

        // Flows, trails, evidence.
        visit(&b, &format!("{org}/flows"), "flows").await;
        visit(&b, &format!("{org}/flows/payments"), "flow").await;
        assert_eq!(b.rows("Trails of payments").await.len(), 2);
        let text = visit(&b, &format!("{org}/flows/payments/trails/v1"), "trail").await;
        let trail = api(&s, "/flows/payments/trails/v1").await;
        assert_eq!(trail["compliant"], false);
        assert!(
            text.contains("expected 200, got 500"),
            "the failing test's message"
        );
        assert!(text.contains("3 tests: 2 passed, 1 failed"));
        assert!(
            text.contains("Vulnerable paths: 0 critical, 3 high, 0 medium, 2 low."),
            "Snyk's paths shown beside its issues"
        );
        for shown in [
            "Approvals of #1347",
            "no: the author's own",
            "no: before the last commit",
            "Overridden to compliant: reviewed: the vulnerable code is not reachable (it was non-compliant",
        ] {
            assert!(text.contains(shown), "{shown}");
        }
        for r in trail["reasons"].as_array().unwrap() {
            assert!(text.contains(r.as_str().unwrap()), "reason {r} shown");
        }
        let link = b
            .client
            .find(Locator::Css("a[download]"))
            .await
            .unwrap()
            .attr("href")
            .await
            .unwrap()
            .unwrap();
        assert!(link.contains(&f.junit_sha), "{link}");
        // The evidence downloads, with the session, byte for byte.
        let session = b.cookie("custody_session").await.unwrap();
        let got = reqwest::Client::new()
            .get(format!("{base}{link}"))
            .header("cookie", format!("custody_session={session}"))
            .send()
            .await
            .unwrap();
        assert_eq!(got.status(), 200);
        assert!(
            got.headers()["content-disposition"]
                .to_str()
                .unwrap()
                .contains("junit.xml")
        );
        assert_eq!(sha256_hex(&got.bytes().await.unwrap()), f.junit_sha);
        let att_id = trail["attestations"][0]["id"].as_str().unwrap().to_string();
        // Every record on the trail page leads to the entry that wrote it.
        let landed = follow_ledger_links(&b).await;
        assert_eq!(
            landed.iter().filter(|(k, _)| k == "attestation").count(),
            trail["attestations"].as_array().unwrap().len()
        );
        assert!(landed.iter().any(|(k, _)| k == "trail"));
        assert!(landed.iter().any(|(k, _)| k == "artifact"));
        assert!(
            landed
                .iter()
                .any(|(k, e)| k == "attestation" && e.contains(&att_id)),
            "{landed:?}"
        );
        visit(&b, &format!("{org}/attestations/{att_id}"), "attestation").await;

        // Artifact page: provenance and where it ran.
        let text = visit(&b, &format!("{org}/artifacts/{}", f.api_v1), "artifact").await;
        assert!(text.contains("payments / v1"));
        let runs = b.rows("Runs, newest first").await;
        assert_eq!(runs.len(), 1);
        assert!(runs[0].contains("prod"));
        let text = visit(
            &b,
            &format!("{org}/artifacts/{}", f.miner),
            "artifact-unknown",
        )
        .await;
        assert!(text.contains("No flow reported this fingerprint"));
        assert!(text.contains("running now"));

        // Search: by name (what ran unknown), by fingerprint prefix.
        visit(
            &b,
            &format!("{org}/search?q=docker.io%2Fxmrig"),
            "search-name",
        )
        .await;
        let seen = b.rows("Runs matching").await;
        assert_eq!(seen.len(), 1);
        assert!(seen[0].contains("prod"));
        visit(
            &b,
            &format!("{org}/search?q={}", &f.api_v2[..10]),
            "search-fingerprint",
        )
        .await;
        let found = b.rows("Artifacts matching").await;
        assert_eq!(found.len(), 1);
        assert!(found[0].contains("payments / v2"));

        // Controls: the policy, where it is attached, its text.
        visit(&b, &format!("{org}/controls"), "controls").await;
        let policies = b.rows("Policies, at their latest version").await;
        assert_eq!(policies.len(), 1);
        assert!(
            policies[0].contains("provenance") && policies[0].contains("prod"),
            "{policies:?}"
        );
        let text = visit(&b, &format!("{org}/policies/provenance"), "policy").await;
        assert!(text.contains("required: true"));

        // DORA: the page's figures are the API's.
        visit(&b, &format!("{org}/dora"), "dora").await;
        let dora = api(&s, "/environments/prod/dora").await;
        let row = b.rows("The four key metrics").await;
        assert!(
            row[0].starts_with(&format!("prod | {} |", dora["deployments"])),
            "{row:?} vs {dora}"
        );
        let deploys = b.rows("Deployments, newest first").await;
        assert_eq!(deploys.len(), dora["recent"].as_array().unwrap().len());
        assert!(
            deploys
                .iter()
                .any(|d| d.contains("xmrig") && d.contains("no flow knows")),
            "{deploys:?}"
        );

        // Ledger: its size and a signed checkpoint, checked; an entry with
        // its proof.
        let size = api(&s, "/ledger/entries?from=0&to=0").await["size"]
            .as_u64()
            .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            b.goto(&format!("{org}/ledger")).await;
            let t = b.text().await;
            if t.contains("valid signature") && t.contains(&format!("size {size}, signed")) {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no signed checkpoint shown"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let text = visit(&b, &format!("{org}/ledger"), "ledger").await;
        let checkpoint = api(&s, "/ledger/checkpoint").await;
        assert!(text.contains(checkpoint["root"].as_str().unwrap()));
        assert_eq!(checkpoint["size"].as_u64().unwrap(), size);
        assert_eq!(b.rows("Ledger entries").await.len() as u64, size.min(50));
        let text = visit(&b, &format!("{org}/ledger/3"), "ledger-entry").await;
        assert!(text.contains("Included in the signed tree"), "{text}");
        // The bundle form, with the page's token, downloads a bundle the
        // offline verifier accepts; without the token it is refused.
        b.goto(&format!("{org}/ledger")).await;
        let csrf = b
            .client
            .find(Locator::Css(
                "form[action$='/ledger/bundle'] input[name=csrf]",
            ))
            .await
            .unwrap()
            .attr("value")
            .await
            .unwrap()
            .unwrap();
        let cookie = b.cookie("custody_session").await.unwrap();
        let post = |form: String| {
            reqwest::Client::new()
                .post(format!("{org}/ledger/bundle"))
                .header("cookie", format!("custody_session={cookie}"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(form)
                .send()
        };
        let refused = post("environment=prod&from=7.days.ago&to=NOW".into())
            .await
            .unwrap();
        assert_eq!(refused.status(), 403);
        let got = post(format!(
            "csrf={csrf}&environment=prod&from=7.days.ago&to=NOW"
        ))
        .await
        .unwrap();
        assert_eq!(got.status(), 200);
        let bundle = s.path("prod-audit.tar.gz");
        std::fs::write(&bundle, got.bytes().await.unwrap()).unwrap();
        let key = api(&s, "/ledger/key").await["verifier_key"]
            .as_str()
            .unwrap()
            .to_string();
        let checked = std::process::Command::new(common::bin())
            .args([
                "audit",
                "verify",
                bundle.to_str().unwrap(),
                "--public-key",
                &key,
            ])
            .output()
            .unwrap();
        // Genuine (exit 0 or 1: 1 says what it proves is not clean — here the
        // unknown miner and a gap), never refused (2).
        let said = String::from_utf8_lossy(&checked.stdout);
        assert!(
            checked.status.code() != Some(2)
                && said.contains("signature verified")
                && said.contains("1 unknown"),
            "{}{}",
            String::from_utf8_lossy(&checked.stdout),
            String::from_utf8_lossy(&checked.stderr)
        );

        // Signing out ends the session: pages lead to sign-in again.
        b.goto(&format!("{org}/environments")).await;
        b.client
            .find(Locator::Css(".who button[type=submit]"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        b.wait_for("#api_key").await;
        b.goto(&format!("{org}/flows")).await;
        assert!(b.url().await.starts_with(&format!("{base}/signin")));
        let stale = reqwest::Client::new()
            .get(format!("{org}/flows"))
            .header("cookie", format!("custody_session={session}"))
            .send()
            .await
            .unwrap();
        assert!(
            stale.url().path().starts_with("/signin"),
            "the old session is over on the server too"
        );
        b.close().await;
    });
}

/// A browser without a browser: a cookie jar of one session, over HTTP.
struct Visitor {
    base: String,
    http: reqwest::Client,
    cookies: std::collections::BTreeMap<String, String>,
}

/// What a page answered.
struct Got {
    status: u16,
    location: Option<String>,
    body: String,
}

impl Visitor {
    fn new(base: &str) -> Visitor {
        Visitor {
            base: base.to_string(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookies: Default::default(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn take(&mut self, r: reqwest::Response) -> Got {
        for c in r.headers().get_all("set-cookie") {
            let c = c.to_str().unwrap();
            assert!(
                c.contains("HttpOnly") && c.contains("SameSite=Strict"),
                "{c}"
            );
            let (name, rest) = c.split_once('=').unwrap();
            let value = rest.split(';').next().unwrap();
            if value.is_empty() {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_string(), value.to_string());
            }
        }
        Got {
            status: r.status().as_u16(),
            location: r
                .headers()
                .get("location")
                .map(|v| v.to_str().unwrap().to_string()),
            body: r.text().await.unwrap(),
        }
    }

    async fn get(&mut self, path: &str) -> Got {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .send()
            .await
            .unwrap();
        self.take(r).await
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Got {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(urlencoded(form))
            .send()
            .await
            .unwrap();
        self.take(r).await
    }

    /// The hidden form token on a page.
    fn csrf(page: &str) -> String {
        let at = page
            .find("name=\"csrf\" value=\"")
            .expect("a form with a CSRF token");
        let rest = &page[at + 19..];
        rest[..rest.find('"').unwrap()].to_string()
    }

    async fn sign_in(&mut self, key: &str) -> Got {
        let form = self.get("/signin").await;
        let token = Self::csrf(&form.body);
        self.post("/signin", &[("csrf", &token), ("api_key", key)])
            .await
    }
}

fn urlencoded(form: &[(&str, &str)]) -> String {
    let enc = |v: &str| {
        v.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    form.iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn key_for(s: &Server, org: &str, name: &str, role: &str) -> String {
    let c = s.custody();
    let org_flag = ["--org", org];
    let mut a = vec!["create", "service-account", name, "--role", role];
    a.extend(org_flag);
    c.run(&a).ok();
    let mut a = vec![
        "create",
        "api-key",
        "--service-account",
        name,
        "--output",
        "json",
    ];
    a.extend(org_flag);
    c.run(&a).ok().json()["key"].as_str().unwrap().to_string()
}

both!(sessions_are_sealed_to_their_key_and_forms_need_their_token);
fn sessions_are_sealed_to_their_key_and_forms_need_their_token(db: Db) {
    let Some(s) = Server::start(db) else { return };
    s.custody()
        .run(&["create", "environment", "prod", "--type", "k8s"])
        .ok();
    s.custody().run(&["create", "org", "acme"]).ok();
    let reader = key_for(&s, "default", "auditor", "reader");
    let acme = key_for(&s, "acme", "acme-reader", "reader");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        // Signed out: every page leads to sign-in, with the way back.
        let mut v = Visitor::new(&s.url);
        let g = v.get("/orgs/default/environments/prod").await;
        assert_eq!(g.status, 303);
        assert_eq!(
            g.location.as_deref(),
            Some("/signin?next=/orgs/default/environments/prod")
        );

        // Sign-in needs the token of the sign-in page's own cookie: a form
        // posted from elsewhere is refused, and opens no session.
        let g = v
            .post("/signin", &[("csrf", "0000"), ("api_key", common::TOKEN)])
            .await;
        assert_eq!(g.status, 403, "{}", g.body);
        assert!(g.body.contains("CSRF"));
        assert!(!v.cookies.contains_key("custody_session"));
        // A sign-in page never sends anyone to another site afterwards.
        let form = v.get("/signin?next=//evil.example/x").await;
        assert!(!form.body.contains("evil.example"));

        // The reader signs in and sees its organisation.
        let g = v.sign_in(&reader).await;
        assert_eq!(g.status, 303);
        assert_eq!(g.location.as_deref(), Some("/orgs/default/environments"));
        let g = v.get("/orgs/default/environments").await;
        assert_eq!(g.status, 200);
        assert!(g.body.contains("prod"));

        // Sign-out without the page's token is refused and changes nothing.
        let g = v.post("/signout", &[]).await;
        assert_eq!(g.status, 403);
        let g = v.post("/signout", &[("csrf", "f00d")]).await;
        assert_eq!(g.status, 403);
        assert_eq!(v.get("/orgs/default/environments").await.status, 200);

        // Another organisation's reader: every page of this one is a 404,
        // whether it exists or not.
        let mut other = Visitor::new(&s.url);
        assert_eq!(other.sign_in(&acme).await.status, 303);
        for p in [
            "/orgs/default/environments",
            "/orgs/default/environments/prod",
            "/orgs/default/flows",
            "/orgs/nope/environments",
        ] {
            let g = other.get(p).await;
            assert_eq!(g.status, 404, "{p}");
            assert!(g.body.contains("does not exist"), "{p}: {}", g.body);
        }
        assert_eq!(other.get("/orgs/acme/environments").await.status, 200);

        // A session is its key: revoking the key ends it at once.
        let keys = s
            .custody()
            .run(&[
                "list",
                "api-keys",
                "--service-account",
                "acme-reader",
                "--org",
                "acme",
                "--output",
                "json",
            ])
            .ok()
            .json();
        let id = keys[0]["id"].as_str().unwrap().to_string();
        s.custody()
            .run(&["revoke", "api-key", &id, "--org", "acme"])
            .ok();
        let g = other.get("/orgs/acme/environments").await;
        assert_eq!(g.status, 303, "a revoked key's session is over");

        // Sign-out with the token ends the session on the server.
        let page = v.get("/orgs/default/environments").await;
        let token = Visitor::csrf(&page.body);
        let old = v.cookies.clone();
        let g = v.post("/signout", &[("csrf", &token)]).await;
        assert_eq!(g.status, 303);
        assert!(!v.cookies.contains_key("custody_session"));
        v.cookies = old;
        assert_eq!(v.get("/orgs/default/environments").await.status, 303);
    });
}

both!(dora_metrics_come_from_what_ran);
fn dora_metrics_come_from_what_ran(db: Db) {
    let Some(s) = Server::start(db) else { return };
    let c = s.custody();
    let (v1, v2) = (sha256_hex(b"shop v1"), sha256_hex(b"shop v2"));
    c.built("shop", "1", "shop", &v1);
    c.built("shop", "2", "shop", &v2);
    c.run(&["create", "environment", "prod", "--type", "k8s"])
        .ok();
    // v1 runs; v2 replaces it; v1 comes back (a rollback); a rescale of
    // v1 is no deployment.
    report(&s, "prod", &[("registry.example/shop:1", &v1, 2)]);
    report(&s, "prod", &[("registry.example/shop:2", &v2, 2)]);
    report(&s, "prod", &[("registry.example/shop:1", &v1, 2)]);
    report(&s, "prod", &[("registry.example/shop:1", &v1, 4)]);
    let out = c
        .run(&[
            "get",
            "dora",
            "--environment",
            "prod",
            "--since",
            "1.hours.ago",
            "--output",
            "json",
        ])
        .ok()
        .json();
    assert_eq!(out["deployments"], 3, "{out}");
    assert_eq!(out["failed_deployments"], 1, "{out}");
    let failed: Vec<&Value> = out["recent"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| !d["failure"].is_null())
        .collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["fingerprint"], v2.as_str());
    assert_eq!(failed[0]["replaced"], v1.as_str());
    assert_eq!(
        failed[0]["failure"],
        "rolled back to the version it replaced"
    );
    assert!(failed[0]["restored_after_ms"].as_i64().unwrap() >= 0);
    assert_eq!(out["unrestored"], 0);
    let rate = out["change_failure_rate"].as_f64().unwrap();
    assert!((rate - 1.0 / 3.0).abs() < 1e-9, "{rate}");
    // The table form says the same.
    let table = c
        .run(&["get", "dora", "-e", "prod", "--since", "1.hours.ago"])
        .ok()
        .stdout;
    assert!(
        table.contains("3 (") && table.contains("33.3% (1 of 3 deployments"),
        "{table}"
    );
    assert!(table.contains("rolled back to the version it replaced"));
    // Bad input: named, exit 2.
    c.run(&["get", "dora", "-e", "prod", "--since", "yesterday-ish"])
        .fails(2, "yesterday-ish");
    c.run(&["get", "dora", "-e", "prod", "--failure-window-hours", "0"])
        .fails(2, "failure_window_hours");
    c.run(&["get", "dora", "-e", "nope"])
        .fails(2, "environment 'nope' does not exist");
}

/// `custody demo` makes a week a newcomer can look around in: the pages
/// answer the questions it was made to pose. Its screenshots are the
/// README's (copied to CUSTODY_README_SCREENSHOTS when that is set).
#[test]
fn the_demo_week_answers_the_questions() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = std::process::Command::new(common::bin())
        .args(["demo", "--data-dir", data.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("A made-up history of 7 days"));
    // Never into a directory that holds something.
    let again = std::process::Command::new(common::bin())
        .args(["demo", "--data-dir", data.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("is not empty"));
    let key = std::fs::read_to_string(data.join("bootstrap-token"))
        .unwrap()
        .trim()
        .to_string();
    let Some(s) = Server::start_in(dir, Db::Sqlite, &[], &[]) else {
        return;
    };
    let get = |path: &str| {
        let a = security::call(
            &s,
            "GET",
            &format!("/api/v1/orgs/default{path}"),
            &key,
            None,
        );
        assert_eq!(a.status, 200, "{path}: {}", a.body);
        serde_json::from_str::<Value>(&a.body).unwrap()
    };
    // The week, as the API tells it.
    let envs = get("/environments");
    assert_eq!(envs.as_array().unwrap().len(), 3);
    assert!(
        !get("/environments/dev")["coverage"]["gaps"]
            .as_array()
            .unwrap()
            .is_empty(),
        "the dev outage"
    );
    let miner = get("/search?name=docker.io%2Flibrary%2Fxmrig");
    assert_eq!(miner["runtime"].as_array().unwrap().len(), 1);
    assert!(miner["artifacts"].as_array().unwrap().is_empty());
    let dora = get("/environments/prod/dora?since=8.days.ago");
    let failed: Vec<String> = dora["recent"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["failure"].as_str().map(|f| format!("{} {f}", d["name"])))
        .collect();
    assert_eq!(
        failed.len(),
        2,
        "the failing scan and the miner: {failed:?}"
    );
    assert_eq!(dora["unrestored"], 0, "both were stopped");
    let trails = get("/flows/payments/trails?per_page=50");
    let bad: Vec<String> = trails["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .filter(|t| get(&format!("/flows/payments/trails/{t}"))["compliant"] == false)
        .collect();
    assert_eq!(bad.len(), 1, "one failing scan");

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let Some(b) = Browser::start().await else {
            return;
        };
        let org = format!("{}/orgs/default", s.url);
        b.goto(&format!("{org}/environments")).await;
        sign_in(&b, &s.url, &key).await;
        let text = visit(&b, &format!("{org}/environments"), "demo-environments").await;
        assert!(text.contains("prod") && text.contains("staging") && text.contains("dev"));
        visit(
            &b,
            &format!("{org}/environments/prod?from=7.days.ago"),
            "demo-prod",
        )
        .await;
        assert_eq!(
            b.count("svg rect[fill='url(#hatch-unk)']").await,
            1,
            "the miner's run"
        );
        assert!(
            b.count("svg rect[fill='url(#hatch-nc)']").await >= 1,
            "the failing build's run"
        );
        let figure = b.client.find(Locator::Css("figure .chart")).await.unwrap();
        let png = figure.screenshot().await.unwrap();
        std::fs::write(
            common::browser::screenshot_dir().join("demo-timeline.png"),
            png,
        )
        .unwrap();
        let text = visit(
            &b,
            &format!("{org}/flows/payments/trails/{}", bad[0]),
            "demo-failing-scan",
        )
        .await;
        assert!(
            text.contains("CVE-2024-3094") && text.contains("1 critical"),
            "{text}"
        );
        let text = visit(
            &b,
            &format!("{org}/search?q=docker.io%2Flibrary%2Fxmrig"),
            "demo-search",
        )
        .await;
        assert!(text.contains("prod"));
        visit(&b, &format!("{org}/dora?since=8.days.ago"), "demo-dora").await;
        let rows = b.rows("The four key metrics").await;
        let prod = rows.iter().find(|r| r.starts_with("prod |")).unwrap();
        assert!(
            prod.starts_with(&format!("prod | {} |", dora["deployments"])),
            "{prod}"
        );
        if let Some(to) = std::env::var_os("CUSTODY_README_SCREENSHOTS") {
            let to = std::path::PathBuf::from(to);
            std::fs::create_dir_all(&to).unwrap();
            for name in ["demo-environments", "demo-timeline"] {
                std::fs::copy(
                    common::browser::screenshot_dir().join(format!("{name}.png")),
                    to.join(format!("{name}.png")),
                )
                .unwrap();
            }
        }
        b.close().await;
    });
}
