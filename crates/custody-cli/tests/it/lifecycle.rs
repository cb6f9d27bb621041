//! Kosli's everyday verbs over what exists: archive and rename flows,
//! archive attestation types and controls (and restore controls), join and
//! leave logical environments, and the repositories trails came from.

use crate::common;
use common::{Cli, Db, Server};

fn json(c: &Cli, args: &[&str]) -> serde_json::Value {
    c.run(&[args, &["--output", "json"][..]].concat())
        .ok()
        .json()
}

fn names(v: &serde_json::Value, key: &str) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x[key].as_str().unwrap().to_string())
        .collect()
}

both!(flows_are_archived_and_renamed_with_their_history);
fn flows_are_archived_and_renamed_with_their_history(db: Db) {
    let Some(s) = Server::start(db) else { return };
    let c = s.custody();
    for f in ["shop", "billing"] {
        c.run(&["create", "flow", f]).ok();
        c.run(&["begin", "trail", "t1", "--flow", f]).ok();
    }
    c.run(&[
        "attest", "generic", "--name", "tests", "--flow", "shop", "--trail", "t1",
    ])
    .ok();

    c.run(&["archive", "flow", "shop"])
        .ok()
        .stdout
        .contains("flow 'shop' was archived")
        .then_some(())
        .unwrap();
    assert_eq!(names(&json(&c, &["list", "flows"]), "name"), ["billing"]);
    let all = json(&c, &["list", "flows", "--archived"]);
    assert_eq!(names(&all, "name"), ["billing", "shop"]);
    assert!(all[1]["archived_at"].as_i64().is_some());
    // Nothing new goes in; what is there is still read.
    c.run(&["begin", "trail", "t2", "--flow", "shop"])
        .fails(2, "flow 'shop' is archived");
    c.run(&[
        "attest", "generic", "--name", "more", "--flow", "shop", "--trail", "t1",
    ])
    .fails(2, "flow 'shop' is archived");
    c.run(&["create", "flow", "shop", "--description", "again"])
        .fails(2, "flow 'shop' is archived");
    let t = json(&c, &["get", "trail", "t1", "--flow", "shop"]);
    assert_eq!(t["attestations"].as_array().unwrap().len(), 1);

    c.run(&["rename", "flow", "billing", "shop"])
        .fails(2, "flow 'shop' already exists");
    let fp = "a".repeat(64);
    c.built("billing", "t1", "app", &fp);
    c.run(&[
        "attest", "generic", "--name", "tests", "--flow", "billing", "--trail", "t1",
    ])
    .ok();
    c.run(&["rename", "flow", "billing", "invoicing"]).ok();
    let t = json(&c, &["get", "trail", "t1", "--flow", "invoicing"]);
    assert_eq!(t["trail"]["flow"], "invoicing");
    assert_eq!(t["attestations"][0]["flow"], "invoicing");
    assert_eq!(t["compliant"], true);
    c.run(&[
        "attest",
        "generic",
        "--name",
        "more",
        "--flow",
        "invoicing",
        "--trail",
        "t1",
    ])
    .ok();
    assert_eq!(
        names(&json(&c, &["list", "flows", "--archived"]), "name"),
        ["invoicing", "shop"]
    );
    assert_eq!(
        json(&c, &["get", "trail", "t1", "--flow", "invoicing"])["name"],
        "t1"
    );
    c.run(&["get", "flow", "billing"])
        .fails(2, "flow 'billing' does not exist");
    c.run(&["rename", "flow", "nope", "x"])
        .fails(2, "flow 'nope' does not exist");
    // Each change is in the ledger, and the ledger still verifies.
    c.run(&["ledger", "verify"]).ok();
}

both!(types_and_controls_are_archived);
fn types_and_controls_are_archived(db: Db) {
    let Some(s) = Server::start(db) else { return };
    let c = s.custody();
    let schema = s.write("person.json", r#"{"type":"object"}"#);
    let data = s.write("jane.json", r#"{"name":"Jane"}"#);
    let schema = schema.to_str().unwrap();
    let data = data.to_str().unwrap();
    c.run(&["create", "attestation-type", "person", "--schema", schema])
        .ok();
    c.run(&["create", "flow", "f"]).ok();
    c.run(&["begin", "trail", "t", "--flow", "f"]).ok();
    let custom = |name: &str| {
        c.run(&[
            "attest",
            "custom",
            "--type",
            "person",
            "--name",
            name,
            "--attestation-data",
            data,
            "--flow",
            "f",
            "--trail",
            "t",
        ])
    };
    custom("a").ok();
    c.run(&["archive", "attestation-type", "person"]).ok();
    custom("b").fails(2, "attestation type 'person' is archived");
    assert!(
        json(&c, &["list", "attestation-types"])
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        names(
            &json(&c, &["list", "attestation-types", "--archived"]),
            "name"
        ),
        ["person"]
    );
    // A new version brings it back.
    c.run(&["create", "attestation-type", "person", "--schema", schema])
        .ok();
    custom("b").ok();

    c.run(&["create", "control", "RCTL-1", "--name", "Change approval"])
        .ok();
    let decide = || {
        c.run(&[
            "attest",
            "decision",
            "--control",
            "RCTL-1",
            "--name",
            "approval",
            "--flow",
            "f",
            "--trail",
            "t",
        ])
    };
    decide().ok();
    c.run(&["archive", "control", "RCTL-1"]).ok();
    decide().fails(2, "control 'RCTL-1' is archived");
    assert!(
        json(&c, &["list", "controls"])
            .as_array()
            .unwrap()
            .is_empty()
    );
    let all = json(&c, &["list", "controls", "--archived"]);
    assert_eq!(all[0]["archived"], true);
    c.run(&["unarchive", "control", "RCTL-1"]).ok();
    decide().ok();
    assert_eq!(
        json(&c, &["get", "control", "RCTL-1"])[0]["archived"],
        false
    );
    c.run(&["archive", "control", "NOPE"])
        .fails(2, "control 'NOPE' does not exist");
}

both!(physical_environments_join_and_leave_logical_ones);
fn physical_environments_join_and_leave_logical_ones(db: Db) {
    let Some(s) = Server::start(db) else { return };
    let c = s.custody();
    for e in ["eu", "us"] {
        c.run(&["create", "environment", e, "--type", "docker"])
            .ok();
    }
    c.run(&["create", "environment", "prod", "--type", "logical"])
        .ok();
    let members = || json(&c, &["get", "environment", "prod"])["included_environments"].clone();
    let member = |verb: &str, p: &str, l: &str| {
        c.run(&[verb, "environment", "--physical", p, "--logical", l])
    };
    assert!(
        member("join", "eu", "prod")
            .ok()
            .stdout
            .contains("environment 'eu' joined 'prod'")
    );
    member("join", "us", "prod").ok();
    member("join", "us", "prod").ok();
    assert_eq!(members(), serde_json::json!(["eu", "us"]));
    member("leave", "eu", "prod").ok();
    assert_eq!(members(), serde_json::json!(["us"]));
    member("leave", "eu", "prod").fails(2, "'eu' is not in logical environment 'prod'");
    member("join", "prod", "prod").fails(2, "'prod' is a logical environment");
    member("join", "us", "eu").fails(2, "'eu' is a docker environment, not a logical one");
    member("join", "mars", "prod").fails(2, "environment 'mars' does not exist");
}

both!(repositories_are_those_the_trails_came_from);
fn repositories_are_those_the_trails_came_from(db: Db) {
    let Some(s) = Server::start(db) else { return };
    let c = s.custody();
    c.run(&["create", "flow", "shop"]).ok();
    c.run(&["create", "flow", "shop-release"]).ok();
    // Begun in GitHub Actions: the CI names the repository.
    let begin = |flow: &str, trail: &str, repo: &str| {
        let out = c
            .command()
            .args(["begin", "trail", trail, "--flow", flow])
            .env_remove("CUSTODY_NO_CI_DETECT")
            .env("GITHUB_RUN_NUMBER", "7")
            .env("GITHUB_REPOSITORY", repo)
            .env("GITHUB_REPOSITORY_ID", "4242")
            .env("GITHUB_SHA", "6dcb09b5b57875f334f61aebed695e2e4193db5e")
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    };
    begin("shop", "t1", "acme/shop");
    begin("shop-release", "r1", "acme/shop");
    begin("shop", "t2", "acme/billing");
    c.run(&["begin", "trail", "local", "--flow", "shop"]).ok();

    let repos = json(&c, &["list", "repos"]);
    assert_eq!(names(&repos, "name"), ["acme/billing", "acme/shop"]);
    assert_eq!(repos[1]["trails"], 2);
    assert_eq!(
        repos[1]["flows"],
        serde_json::json!(["shop", "shop-release"])
    );
    assert_eq!(repos[1]["url"], "https://github.com/acme/shop");
    let one = json(&c, &["get", "repo", "acme/shop"]);
    assert_eq!(one["id"], "4242");
    assert_eq!(names(&one["recent_trails"], "trail"), ["r1", "t1"]);
    assert_eq!(
        one["recent_trails"][0]["commit"],
        "6dcb09b5b57875f334f61aebed695e2e4193db5e"
    );
    let table = c.run(&["list", "repos"]).ok().stdout;
    assert!(table.contains("acme/shop"), "{table}");
    c.run(&["get", "repo", "acme/nope"])
        .fails(2, "repository 'acme/nope' does not exist");
}
