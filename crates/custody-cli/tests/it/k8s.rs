//! The K8s reporter through kube-rs, against a local server that speaks
//! the Kubernetes API (see `common::kube_api`): namespace filters, the
//! environments file, warnings, an unreachable API, and a watching
//! reporter that sees a pod live and die between two polls and survives
//! ended watches and expired resource versions.

use crate::common;

use common::kube_api::{FakeKube, image_id, pod};
use common::{Db, Server};
use serde_json::Value;

fn hexes(c: char) -> String {
    c.to_string().repeat(64)
}

/// prod: web (2 pods) and a pod still creating its sidecar; staging-eu:
/// api; kube-system: dns; default: a pending pod.
fn cluster() -> FakeKube {
    let k = FakeKube::start();
    for ns in ["default", "kube-system", "prod", "staging-eu"] {
        k.namespace(ns);
    }
    let web = image_id("docker.io/library/nginx", &hexes('a'));
    k.put(pod(
        "prod",
        "web-7d9f-abcde",
        "Running",
        &[("web", "nginx:1.25", &web)],
    ));
    k.put(pod(
        "prod",
        "web-7d9f-fghij",
        "Running",
        &[("web", "nginx:1.25", &web)],
    ));
    k.put(pod(
        "prod",
        "pay-5c6d-klmno",
        "Running",
        &[
            (
                "pay",
                "registry.example.com/pay:3.1",
                &image_id("registry.example.com/pay", &hexes('b')),
            ),
            ("envoy", "envoyproxy/envoy:v1.31", ""),
        ],
    ));
    k.put(pod(
        "staging-eu",
        "api-1a2b-pqrst",
        "Running",
        &[("api", "api:2", &image_id("api", &hexes('c')))],
    ));
    k.put(pod(
        "kube-system",
        "coredns-787d-uvwxy",
        "Running",
        &[("coredns", "coredns:1.11", &image_id("coredns", &hexes('d')))],
    ));
    k.put(pod(
        "default",
        "batch-9f8e-zzzzz",
        "Pending",
        &[("batch", "batch:1", "")],
    ));
    k
}

fn report(s: &Server, args: &[&str]) -> (i32, String, String) {
    let r = s.custody().run(args);
    (r.code, r.stdout, r.stderr)
}

fn names(s: &Server, env: &str) -> Vec<(String, u64)> {
    let snap = s
        .custody()
        .run(&["get", "snapshot", env, "--output", "json"])
        .ok()
        .json();
    snap["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["name"].as_str().unwrap().to_string(),
                a["instance_count"].as_u64().unwrap(),
            )
        })
        .collect()
}

both!(namespace_filters_choose_the_pods_reported);
fn namespace_filters_choose_the_pods_reported(db: Db) {
    let Some(s) = Server::start(db) else { return };
    let k = cluster();
    let kc = k.kubeconfig(s.dir.path());
    let kc = kc.to_str().unwrap();

    let (code, out, err) = report(
        &s,
        &[
            "snapshot",
            "k8s",
            "prod",
            "--kubeconfig",
            kc,
            "--namespaces",
            "prod",
            "--auto-environment",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("[3] pods were reported to environment prod"),
        "{out}"
    );
    // A running container without an image ID is recorded, not skipped:
    // no fingerprint, so unknown to any provenance.
    assert!(
        err.contains("container envoy has no image ID (image envoyproxy/envoy:v1.31): recorded without a fingerprint"),
        "{err}"
    );
    assert_eq!(
        names(&s, "prod"),
        vec![
            ("envoyproxy/envoy:v1.31".into(), 1),
            ("nginx:1.25".into(), 2),
            ("registry.example.com/pay:3.1".into(), 1)
        ]
    );
    let snap = s
        .custody()
        .run(&["get", "snapshot", "prod", "--output", "json"])
        .ok()
        .json();
    let envoy = &snap["artifacts"][0];
    assert_eq!(envoy["name"], "envoyproxy/envoy:v1.31");
    assert!(envoy["fingerprint"].is_null(), "{envoy}");
    assert_eq!(envoy["unknown"], true);
    assert_eq!(envoy["instances"][0]["attributes"]["digest_source"], "none");
    let web = &snap["artifacts"][1];
    assert_eq!(web["fingerprint"], hexes('a').as_str());
    assert_eq!(web["instances"][0]["attributes"]["namespace"], "prod");
    assert_eq!(
        web["instances"][0]["attributes"]["owner"],
        "ReplicaSet/web-77b4fdf86c"
    );

    // Everything but kube-*: the pending pod does not count.
    report(
        &s,
        &[
            "snapshot",
            "k8s",
            "apps",
            "--kubeconfig",
            kc,
            "--exclude-namespaces-regex",
            "^kube-",
            "-A",
        ],
    );
    assert_eq!(
        names(&s, "apps"),
        vec![
            ("api:2".into(), 1),
            ("envoyproxy/envoy:v1.31".into(), 1),
            ("nginx:1.25".into(), 2),
            ("registry.example.com/pay:3.1".into(), 1)
        ]
    );

    // A namespace the reporter may not read is a warning, not a failure.
    k.forbid("staging-eu");
    let (code, _, err) = report(
        &s,
        &[
            "snapshot",
            "k8s",
            "two",
            "--kubeconfig",
            kc,
            "--namespaces",
            "prod,staging-eu",
            "-A",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("not observed: namespace staging-eu: cannot list pods"),
        "{err}"
    );
    assert_eq!(names(&s, "two").len(), 3);
    // The report was partial: the environment is not observed, and the gap
    // says what could not be seen.
    let view = s
        .custody()
        .run(&["get", "environment", "two", "--output", "json"])
        .ok()
        .json();
    assert_eq!(
        view["last_report"]["unobserved"][0]["scope"], "namespace staging-eu",
        "{view}"
    );
    let gap = &view["coverage"]["gaps"][0];
    assert!(gap["to"].is_null(), "{view}");
    assert_eq!(
        gap["partial"][0]["unobserved"][0]["scope"],
        "namespace staging-eu"
    );
    let table = s.custody().run(&["get", "environment", "two"]).ok().stdout;
    assert!(
        table.contains("not observed   namespace staging-eu: cannot list pods"),
        "{table}"
    );
    let snap = s
        .custody()
        .run(&["get", "snapshot", "two", "--output", "json"])
        .ok()
        .json();
    assert_eq!(snap["unobserved"][0]["scope"], "namespace staging-eu");
}

both!(an_environments_file_reports_each_environment);
fn an_environments_file_reports_each_environment(db: Db) {
    let Some(s) = Server::start(db) else { return };
    let k = cluster();
    let kc = k.kubeconfig(s.dir.path());
    let kc = kc.to_str().unwrap();
    let file = s.write(
        "envs.yaml",
        "environments:\n  - name: prod-env\n    namespaces: [prod]\n  - name: staging-env\n    namespacesRegex: [\"^staging-\"]\n  - name: infra-env\n    excludeNamespaces: [prod, default]\n",
    );
    let (code, out, err) = report(
        &s,
        &[
            "snapshot",
            "k8s",
            "--environments-file",
            file.to_str().unwrap(),
            "--kubeconfig",
            kc,
            "-A",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.matches("pods were reported").count(), 3, "{out}");
    assert_eq!(names(&s, "staging-env"), vec![("api:2".into(), 1)]);
    assert_eq!(
        names(&s, "infra-env"),
        vec![("api:2".into(), 1), ("coredns:1.11".into(), 1)]
    );

    // A bad file is refused before anything connects: here the API is
    // unreachable, and the message is still the file's.
    let dead = s.write(
        "dead-kubeconfig",
        "apiVersion: v1\nkind: Config\nclusters:\n- name: x\n  cluster:\n    server: http://127.0.0.1:9\ncontexts:\n- name: x\n  context:\n    cluster: x\n    user: u\nusers:\n- name: u\n  user: {}\ncurrent-context: x\n",
    );
    let dead = dead.to_str().unwrap();
    for (text, says) in [
        (
            "environments:\n  - name: a\n  - name: a\n",
            "duplicate environment name 'a'",
        ),
        (
            "environments:\n  - name: a\n    namespaces: [x]\n    excludeNamespaces: [y]\n",
            "cannot combine 'namespaces' with 'excludeNamespaces'",
        ),
        (
            "environments:\n  - name: a\n    namespacesRegex: ['[invalid']\n",
            "invalid regex '[invalid'",
        ),
        ("environments: []\n", "must contain at least one entry"),
    ] {
        let f = s.write("bad.yaml", text);
        s.custody()
            .run(&[
                "snapshot",
                "k8s",
                "--environments-file",
                f.to_str().unwrap(),
                "--kubeconfig",
                dead,
            ])
            .fails(2, says);
    }
    s.custody()
        .run(&[
            "snapshot",
            "k8s",
            "x",
            "--namespaces",
            "a",
            "--exclude-namespaces",
            "b",
            "--kubeconfig",
            dead,
        ])
        .fails(
            2,
            "cannot combine '--namespaces' with '--exclude-namespaces'",
        );
    // An environment name and a file together are a usage error.
    s.custody()
        .run(&[
            "snapshot",
            "k8s",
            "x",
            "--environments-file",
            file.to_str().unwrap(),
        ])
        .fails(2, "cannot be used with");
    // Unreachable: exit 3, the endpoint named.
    s.custody()
        .run(&["snapshot", "k8s", "prod-env", "--kubeconfig", dead])
        .fails(3, "127.0.0.1:9");
}

fn log(s: &Server, env: &str) -> Vec<(String, String)> {
    let r = s
        .custody()
        .run(&["log", "environment", env, "--output", "json", "-n", "100"]);
    if r.code != 0 {
        return vec![];
    }
    let v: Value = r.json();
    v["items"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .map(|e| {
            (
                e["name"].as_str().unwrap().to_string(),
                e["kind"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

both!(a_watching_reporter_records_a_pod_that_lived_between_two_polls);
fn a_watching_reporter_records_a_pod_that_lived_between_two_polls(db: Db) {
    let Some(s) = Server::start(db) else { return };
    let k = cluster();
    let kc = k.kubeconfig(s.dir.path());
    let _r = common::Background(
        s.custody()
            .command()
            .args(["snapshot", "k8s", "prod", "--kubeconfig"])
            .arg(&kc)
            .args(["--namespaces", "prod", "--watch", "--interval", "60s", "-A"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    // nginx, pay and the envoy sidecar that has no image ID.
    common::wait_for("the first snapshot", || log(&s, "prod").len() == 3);

    // Starts and is gone within a few milliseconds: far inside the 60 s
    // heartbeat, and quicker than any poll.
    let miner = image_id("docker.io/xmrig/xmrig", &hexes('e'));
    k.put(pod(
        "prod",
        "miner-0000-aaaaa",
        "Pending",
        &[("miner", "xmrig:latest", "")],
    ));
    k.put(pod(
        "prod",
        "miner-0000-aaaaa",
        "Running",
        &[("miner", "xmrig:latest", &miner)],
    ));
    k.delete("prod", "miner-0000-aaaaa");
    common::wait_for("the miner's start and stop", || {
        let l = log(&s, "prod");
        l.contains(&("xmrig:latest".into(), "started".into()))
            && l.contains(&("xmrig:latest".into(), "stopped".into()))
    });

    // The watch ends: the reporter watches again from where it was.
    let before = k.watches();
    k.cut_watches();
    common::wait_for("a new watch", || k.watches() > before);
    k.put(pod(
        "prod",
        "cache-1111-bbbbb",
        "Running",
        &[("cache", "redis:7", &image_id("redis", &hexes('f')))],
    ));
    common::wait_for("the cache after a reconnect", || {
        log(&s, "prod").contains(&("redis:7".into(), "started".into()))
    });

    // History is compacted and the watch ends: 410 Gone, a fresh list.
    k.compact();
    let before = k.watches();
    k.cut_watches();
    common::wait_for("a watch after the relist", || k.watches() > before + 1);
    k.delete("prod", "cache-1111-bbbbb");
    common::wait_for("the cache's stop after a relist", || {
        log(&s, "prod").contains(&("redis:7".into(), "stopped".into()))
    });
    let snap = names(&s, "prod");
    assert_eq!(
        snap,
        vec![
            ("envoyproxy/envoy:v1.31".into(), 1),
            ("nginx:1.25".into(), 2),
            ("registry.example.com/pay:3.1".into(), 1)
        ]
    );

    // The reporter's role is taken away and the watch ends: what it holds
    // is no longer observed, and it says so at once rather than keep
    // reporting stale pods as complete.
    k.forbid("*");
    k.cut_watches();
    let env = || {
        s.custody()
            .run(&["get", "environment", "prod", "--output", "json"])
            .ok()
            .json()
    };
    common::wait_for("a report that the pods are not observed", || {
        env()["last_report"]["unobserved"]
            .as_array()
            .is_some_and(|u| !u.is_empty())
    });
    let u = env()["last_report"]["unobserved"][0].clone();
    assert_eq!(u["scope"], "pods (the watch)", "{u}");
    assert!(u["reason"].as_str().unwrap().contains("forbidden"), "{u}");
    // Given back: the next report is complete again.
    k.allow("*");
    common::wait_for("a complete report after the watch recovers", || {
        env()["last_report"]["unobserved"]
            .as_array()
            .is_none_or(|u| u.is_empty())
    });
}
