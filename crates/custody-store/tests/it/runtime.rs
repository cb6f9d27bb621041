//! Environments, reports, snapshots, the change log and where artifacts
//! ran, on SQLite and PostgreSQL (see `common`).

use crate::common;

use std::collections::BTreeMap;

use common::admin;
use custody_runtime::{
    ArtifactKey, At, ChangeKind, EnvironmentKind, Instance, ObservedArtifact, Report, RunningSet,
};
use custody_store::{NewEnvironment, NewReport, Principal, Store, StoreError};

const T0: i64 = 1_772_336_000_000;

/// Distinct from the first hex digits, so that prefix searches tell them apart.
fn fp(n: u32) -> String {
    format!("{n:08x}{}", "0".repeat(56))
}

fn set(artifacts: &[(&str, u32, u32)]) -> RunningSet {
    // (name, fingerprint number, instances)
    let report = Report {
        kind: EnvironmentKind::K8s,
        artifacts: artifacts
            .iter()
            .map(|(name, f, n)| ObservedArtifact {
                name: name.to_string(),
                fingerprint: Some(fp(*f)),
                instances: (0..*n)
                    .map(|i| Instance {
                        id: format!("{name}-{i}"),
                        started_at: Some(T0),
                        attributes: [("namespace".to_string(), "prod".to_string())].into(),
                    })
                    .collect(),
            })
            .collect(),
        interval_s: None,
        warnings: vec![],
        unobserved: vec![],
        reporter: None,
    };
    report.into_running_set().unwrap()
}

fn report(running: RunningSet, at: i64) -> NewReport {
    NewReport {
        kind: EnvironmentKind::K8s,
        running,
        interval_ms: 60_000,
        warnings: vec![],
        unobserved: vec![],
        reporter: Some("test".into()),
        received_at: at,
    }
}

async fn env(s: &Store, p: &Principal, name: &str, kind: EnvironmentKind) {
    s.put_environment(
        p,
        NewEnvironment {
            name: name.into(),
            kind,
            description: None,
            included: None,
        },
    )
    .await
    .unwrap();
}

fn names(snapshot: &custody_store::StoredSnapshot) -> Vec<(String, u32)> {
    snapshot
        .running
        .iter()
        .map(|r| (r.key.name.clone(), r.instances))
        .collect()
}

both!(reports_make_snapshots_only_when_what_runs_changes);
async fn reports_make_snapshots_only_when_what_runs_changes(s: Store) {
    let p = admin(&s).await;
    env(&s, &p, "prod", EnvironmentKind::K8s).await;

    let r1 = s
        .report_environment(&p, "prod", report(set(&[("web", 1, 2), ("db", 2, 1)]), T0))
        .await
        .unwrap();
    assert!(r1.changed);
    assert_eq!(r1.snapshot, 1);
    assert_eq!(r1.changes.len(), 2);

    // The same counts, other pods: no snapshot, only a heartbeat.
    let ledger = s.ledger_size("default").await.unwrap();
    let mut same = set(&[("web", 1, 2), ("db", 2, 1)]);
    same = {
        let mut other = RunningSet::default();
        for (k, r) in same.iter() {
            other.add(
                k.clone(),
                r.instances.iter().map(|i| Instance {
                    id: format!("{}-replaced", i.id),
                    ..i.clone()
                }),
            );
        }
        other
    };
    let r2 = s
        .report_environment(&p, "prod", report(same, T0 + 60_000))
        .await
        .unwrap();
    assert!(!r2.changed);
    assert_eq!(r2.snapshot, 1);
    assert_eq!(s.ledger_size("default").await.unwrap(), ledger + 1);
    let entries = s.ledger_entries("default", ledger, 1).await.unwrap();
    assert_eq!(entries[0].kind, "heartbeat");

    // web scaled 2 → 3, db stopped, cache started.
    let r3 = s
        .report_environment(
            &p,
            "prod",
            report(set(&[("web", 1, 3), ("cache", 3, 1)]), T0 + 120_000),
        )
        .await
        .unwrap();
    assert!(r3.changed);
    assert_eq!(r3.snapshot, 2);
    let kinds: Vec<_> = r3
        .changes
        .iter()
        .map(|c| (c.key.name.as_str(), c.kind()))
        .collect();
    assert_eq!(
        kinds,
        vec![
            ("cache", ChangeKind::Started),
            ("db", ChangeKind::Stopped),
            ("web", ChangeKind::Scaled)
        ]
    );

    let latest = s
        .snapshot(p.org_id, "prod", At::Latest, "prod")
        .await
        .unwrap();
    assert_eq!(latest.index, 2);
    assert_eq!(names(&latest), vec![("cache".into(), 1), ("web".into(), 3)]);
    assert_eq!(latest.running[1].since_snapshot, 2);
    assert_eq!(latest.running[1].detail.len(), 3);
    assert_eq!(latest.changes.len(), 3);

    let first = s
        .snapshot(p.org_id, "prod", At::Index(1), "prod#1")
        .await
        .unwrap();
    assert_eq!(names(&first), vec![("db".into(), 1), ("web".into(), 2)]);
    assert_eq!(first.replaced_at, Some(T0 + 120_000));
    let behind = s
        .snapshot(p.org_id, "prod", At::Behind(1), "prod~1")
        .await
        .unwrap();
    assert_eq!(behind.index, 1);
    // At a time: the snapshot current then.
    let at = s
        .snapshot(p.org_id, "prod", At::Time(T0 + 119_999), "prod@{..}")
        .await
        .unwrap();
    assert_eq!(at.index, 1);
    let before = s
        .snapshot(p.org_id, "prod", At::Time(T0 - 1), "prod@{..}")
        .await
        .unwrap();
    assert_eq!(before.index, 0);
    assert!(before.running.is_empty());
    match s.snapshot(p.org_id, "prod", At::Index(3), "prod#3").await {
        Err(StoreError::Missing(m)) => {
            assert_eq!(
                m,
                "snapshot 'prod#3' does not exist: environment 'prod' has 2 snapshots, #1 to #2"
            )
        }
        other => panic!("{other:?}"),
    }

    // The log, newest first, paged.
    let log = s
        .environment_events(p.org_id, "prod", 0, i64::MAX, 1, 2)
        .await
        .unwrap();
    assert_eq!(log.total, 5);
    let got: Vec<_> = log
        .items
        .iter()
        .map(|e| (e.snapshot, e.change.key.name.as_str()))
        .collect();
    assert_eq!(got, vec![(2, "cache"), (2, "db")]);
    let page3 = s
        .environment_events(p.org_id, "prod", 0, i64::MAX, 3, 2)
        .await
        .unwrap();
    let got: Vec<_> = page3
        .items
        .iter()
        .map(|e| (e.snapshot, e.change.key.name.as_str(), e.change.now))
        .collect();
    assert_eq!(got, vec![(1, "web", 2)]);
    assert_eq!(
        page3.items[0].instances.len(),
        2,
        "the instances it started with"
    );
    assert_eq!(page3.items[0].instances[0].id, "web-0");
    let windowed = s
        .environment_events(p.org_id, "prod", T0 + 1, i64::MAX, 1, 50)
        .await
        .unwrap();
    assert_eq!(windowed.total, 3);

    // Where has web's fingerprint run? Once at 2, now at 3.
    let occ = s.runtime_occurrences(p.org_id, &fp(1)[..10]).await.unwrap();
    let got: Vec<_> = occ
        .iter()
        .map(|o| (o.instances, o.from, o.to, o.last_snapshot))
        .collect();
    assert_eq!(
        got,
        vec![
            (3, T0 + 120_000, None, None),
            (2, T0, Some(T0 + 120_000), Some(1))
        ]
    );

    let list = s
        .list_snapshots(p.org_id, "prod", 1, u64::MAX, 1, 50)
        .await
        .unwrap();
    assert_eq!(list.total, 2);
    assert_eq!(list.items[0].index, 2);
    assert_eq!(list.items[1].replaced_at, Some(T0 + 120_000));
}

both!(bad_reports_are_refused_and_leave_nothing);
async fn bad_reports_are_refused_and_leave_nothing(s: Store) {
    let p = admin(&s).await;
    env(&s, &p, "prod", EnvironmentKind::K8s).await;
    env(&s, &p, "boxes", EnvironmentKind::Docker).await;
    s.put_environment(
        &p,
        NewEnvironment {
            name: "all".into(),
            kind: EnvironmentKind::Logical,
            description: None,
            included: Some(vec!["prod".into(), "boxes".into()]),
        },
    )
    .await
    .unwrap();
    let before = s.ledger_size("default").await.unwrap();
    let cases = [
        ("boxes", "docker"),
        ("all", "logical"),
        ("nowhere", "does not exist"),
    ];
    for (env, says) in cases {
        let e = s
            .report_environment(&p, env, report(set(&[("web", 1, 1)]), T0))
            .await
            .unwrap_err();
        assert!(e.to_string().contains(says), "{env}: {e}");
    }
    s.archive_environment(&p, "prod").await.unwrap();
    let archived = s.ledger_size("default").await.unwrap();
    let e = s
        .report_environment(&p, "prod", report(set(&[("web", 1, 1)]), T0))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("archived"), "{e}");
    assert_eq!(archived, before + 1);
    assert_eq!(s.ledger_size("default").await.unwrap(), archived);
    let listed = s.list_environments(p.org_id, false).await.unwrap();
    assert!(listed.iter().all(|e| e.name != "prod"));
    assert_eq!(s.list_environments(p.org_id, true).await.unwrap().len(), 3);

    // The type of an environment that has snapshots cannot change.
    s.report_environment(
        &p,
        "boxes",
        NewReport {
            kind: EnvironmentKind::Docker,
            ..report(set(&[("web", 1, 1)]), T0)
        },
    )
    .await
    .unwrap();
    let e = s
        .put_environment(
            &p,
            NewEnvironment {
                name: "boxes".into(),
                kind: EnvironmentKind::K8s,
                description: None,
                included: None,
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::Conflict(_)), "{e}");
    for bad in ["bad name", "x~1", "a#b"] {
        let e = s
            .put_environment(
                &p,
                NewEnvironment {
                    name: bad.into(),
                    kind: EnvironmentKind::K8s,
                    description: None,
                    included: None,
                },
            )
            .await
            .unwrap_err();
        assert!(matches!(e, StoreError::Unprocessable(_)), "{bad}: {e}");
    }
}

both!(renames_keep_the_history);
async fn renames_keep_the_history(s: Store) {
    let p = admin(&s).await;
    env(&s, &p, "staging", EnvironmentKind::K8s).await;
    s.report_environment(&p, "staging", report(set(&[("web", 1, 1)]), T0))
        .await
        .unwrap();
    s.rename_environment(&p, "staging", "preprod")
        .await
        .unwrap();
    let snap = s
        .snapshot(p.org_id, "preprod", At::Latest, "preprod")
        .await
        .unwrap();
    assert_eq!(names(&snap), vec![("web".into(), 1)]);
    assert!(matches!(
        s.get_environment(p.org_id, "staging").await,
        Err(StoreError::NotFound { .. })
    ));
    env(&s, &p, "other", EnvironmentKind::K8s).await;
    assert!(matches!(
        s.rename_environment(&p, "other", "preprod").await,
        Err(StoreError::Conflict(_))
    ));
}

both!(a_logical_environment_is_the_union_of_its_members);
async fn a_logical_environment_is_the_union_of_its_members(s: Store) {
    let p = admin(&s).await;
    env(&s, &p, "eu", EnvironmentKind::K8s).await;
    env(&s, &p, "us", EnvironmentKind::K8s).await;
    s.put_environment(
        &p,
        NewEnvironment {
            name: "prod".into(),
            kind: EnvironmentKind::Logical,
            description: None,
            included: Some(vec!["eu".into(), "us".into()]),
        },
    )
    .await
    .unwrap();
    s.report_environment(&p, "eu", report(set(&[("web", 1, 1)]), T0))
        .await
        .unwrap();
    s.report_environment(&p, "us", report(set(&[("api", 2, 2)]), T0 + 10))
        .await
        .unwrap();
    s.report_environment(&p, "eu", report(set(&[("web", 1, 4)]), T0 + 20))
        .await
        .unwrap();
    let view = s.get_environment(p.org_id, "prod").await.unwrap();
    assert_eq!(view.included_environments, vec!["eu", "us"]);
    assert_eq!(view.latest_snapshot, 3);

    let latest = s
        .snapshot(p.org_id, "prod", At::Latest, "prod")
        .await
        .unwrap();
    assert_eq!(names(&latest), vec![("api".into(), 2), ("web".into(), 4)]);
    let second = s
        .snapshot(p.org_id, "prod", At::Index(2), "prod#2")
        .await
        .unwrap();
    assert_eq!(names(&second), vec![("api".into(), 2), ("web".into(), 1)]);
    assert_eq!(second.replaced_at, Some(T0 + 20));
    let first = s
        .snapshot(p.org_id, "prod", At::Behind(2), "prod~2")
        .await
        .unwrap();
    assert_eq!(names(&first), vec![("web".into(), 1)]);
    let log = s
        .environment_events(p.org_id, "prod", 0, i64::MAX, 1, 50)
        .await
        .unwrap();
    let got: Vec<_> = log
        .items
        .iter()
        .map(|e| (e.environment.as_str(), e.change.key.name.as_str()))
        .collect();
    assert_eq!(got, vec![("eu", "web"), ("us", "api"), ("eu", "web")]);
}

both!(coverage_shows_when_the_environment_was_watched);
async fn coverage_shows_when_the_environment_was_watched(s: Store) {
    let p = admin(&s).await;
    env(&s, &p, "prod", EnvironmentKind::K8s).await;
    let running = set(&[("web", 1, 1)]);
    // Every minute for three minutes, then silence for an hour, then back.
    for (i, t) in [0, 60_000, 120_000, 180_000, 3_780_000, 3_840_000]
        .into_iter()
        .enumerate()
    {
        let r = s
            .report_environment(&p, "prod", report(running.clone(), T0 + t))
            .await
            .unwrap();
        assert_eq!(r.changed, i == 0);
    }
    let c = s.coverage(p.org_id, "prod", T0 + 3_850_000).await.unwrap();
    let spans: Vec<_> = c
        .observed
        .iter()
        .map(|o| (o.from - T0, o.to - T0, o.reports))
        .collect();
    assert_eq!(spans, vec![(0, 180_000, 4), (3_780_000, 3_840_000, 2)]);
    assert_eq!(c.gaps.len(), 1);
    assert_eq!(c.gaps[0].from, T0 + 180_000);
    assert!(!c.overdue);
    let later = s.coverage(p.org_id, "prod", T0 + 9_000_000).await.unwrap();
    assert!(later.overdue);
    assert_eq!(later.gaps.last().map(|g| g.to), Some(None));
}

// A small random walk over a few artifacts, checked against a model at
// every snapshot: the interval tree, the closing and the change pairing.
both!(every_snapshot_of_a_random_history_reads_back);
async fn every_snapshot_of_a_random_history_reads_back(s: Store) {
    let p = admin(&s).await;
    env(&s, &p, "prod", EnvironmentKind::K8s).await;
    let mut rng = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let names = ["a", "b", "c", "d", "e", "f"];
    let mut model: Vec<BTreeMap<String, u32>> = vec![BTreeMap::new()];
    let mut t = T0;
    for _ in 0..120 {
        let mut state = model.last().cloned().unwrap_or_default();
        // Change one to three artifacts.
        for _ in 0..(1 + next() % 3) {
            let n = names[(next() % names.len() as u64) as usize];
            let count = (next() % 4) as u32;
            if count == 0 {
                state.remove(n);
            } else {
                state.insert(n.to_string(), count);
            }
        }
        let spec: Vec<(&str, u32, u32)> = state
            .iter()
            .map(|(n, c)| (n.as_str(), n.as_bytes()[0] as u32, *c))
            .collect();
        t += 1000;
        let r = s
            .report_environment(&p, "prod", report(set(&spec), t))
            .await
            .unwrap();
        if r.changed {
            model.push(state);
        }
        assert_eq!(r.snapshot as usize, model.len() - 1);
    }
    let latest = model.len() - 1;
    assert!(latest > 60, "the walk should change most of the time");
    for (n, want) in model.iter().enumerate().skip(1) {
        let got = s
            .snapshot(p.org_id, "prod", At::Index(n as u64), "prod#n")
            .await
            .unwrap();
        let got: BTreeMap<String, u32> = got
            .running
            .iter()
            .map(|r| (r.key.name.clone(), r.instances))
            .collect();
        assert_eq!(&got, want, "snapshot {n}");
        // The changes at n are the model's difference from n - 1.
        let snap = s
            .snapshot(p.org_id, "prod", At::Index(n as u64), "prod#n")
            .await
            .unwrap();
        let prev = &model[n - 1];
        let mut expected: Vec<(String, u32, u32)> = prev
            .keys()
            .chain(want.keys())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .map(|k| {
                (
                    k.clone(),
                    *prev.get(k).unwrap_or(&0),
                    *want.get(k).unwrap_or(&0),
                )
            })
            .filter(|(_, a, b)| a != b)
            .collect();
        expected.sort();
        let mut changes: Vec<(String, u32, u32)> = snap
            .changes
            .iter()
            .map(|c| (c.key.name.clone(), c.was, c.now))
            .collect();
        changes.sort();
        assert_eq!(changes, expected, "changes at {n}");
    }
    let key = ArtifactKey {
        name: "a".into(),
        fingerprint: fp(u32::from(b'a')),
    };
    let occ = s
        .runtime_occurrences(p.org_id, &key.fingerprint)
        .await
        .unwrap();
    let runs = model
        .windows(2)
        .filter(|w| w[0].get("a") != w[1].get("a") && w[1].contains_key("a"))
        .count();
    assert_eq!(occ.len(), runs, "one interval per run or rescale of 'a'");

    // The change log: every page of every size, over any window, is its
    // slice of the whole log, newest first.
    let log = |since: i64, until: i64, page: u32, per: u32| {
        let s = s.clone();
        async move {
            s.environment_events(p.org_id, "prod", since, until, page, per)
                .await
                .unwrap()
        }
    };
    let whole = log(0, i64::MAX, 1, 10_000).await;
    let all: Vec<(u64, i64, String, u32, u32)> = whole
        .items
        .iter()
        .map(|e| {
            (
                e.snapshot,
                e.timestamp,
                e.change.key.name.clone(),
                e.change.was,
                e.change.now,
            )
        })
        .collect();
    assert_eq!(whole.total as usize, all.len());
    assert!(all.windows(2).all(|w| w[0].0 >= w[1].0), "newest first");
    let mut rng2 = 7u64;
    for _ in 0..12 {
        rng2 = rng2
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let a = T0 + ((rng2 >> 33) % 130_000) as i64;
        let b = a + ((rng2 >> 17) % 90_000) as i64;
        let want: Vec<_> = all
            .iter()
            .filter(|e| e.1 >= a && e.1 <= b)
            .cloned()
            .collect();
        for per in [1u32, 3, 7, 50] {
            let mut got = vec![];
            let mut page = 1;
            loop {
                let l = log(a, b, page, per).await;
                assert_eq!(l.total as usize, want.len(), "window {a}..{b}");
                if l.items.is_empty() {
                    break;
                }
                got.extend(l.items.iter().map(|e| {
                    (
                        e.snapshot,
                        e.timestamp,
                        e.change.key.name.clone(),
                        e.change.was,
                        e.change.now,
                    )
                }));
                page += 1;
            }
            assert_eq!(got, want, "window {a}..{b}, {per} a page");
        }
    }
}

/// A Rego runner that is down: a judgement cannot be made.
struct Down;

#[async_trait::async_trait]
impl custody_store::RegoRunner for Down {
    async fn run(
        &self,
        _org_id: i64,
        _name: &str,
        _policy: &str,
        _inputs: Vec<serde_json::Value>,
    ) -> Result<Vec<Result<custody_policy::rego::Decision, String>>, String> {
        Err("the sandbox is down".into())
    }
}

const DENY_BOOM: &str = "package policy\n\nimport rego.v1\n\ndefault allow := false\n\nallow if input.artifact.name != \"boom\"\n";

both!(judgements_left_undone_are_made_later);
async fn judgements_left_undone_are_made_later(s: Store) {
    let p = admin(&s).await;
    env(&s, &p, "prod", EnvironmentKind::K8s).await;
    s.report_environment(&p, "prod", report(set(&[("boom", 1, 1)]), T0))
        .await
        .unwrap();
    s.create_policy(
        &p,
        custody_store::NewPolicy {
            name: "no-boom".into(),
            kind: custody_api::PolicyKind::Rego,
            content: DENY_BOOM.into(),
            description: None,
            controls: vec![],
        },
    )
    .await
    .unwrap();
    // Attached while the runner is down: the write happens, the judgement
    // does not, and the environment stays marked.
    let down = s.clone().with_rego(std::sync::Arc::new(Down));
    down.attach_policies(&p, "prod", vec!["no-boom".into()], true)
        .await
        .unwrap();
    assert!(
        s.latest_evaluation(p.org_id, "prod")
            .await
            .unwrap()
            .is_none()
    );
    // What a server does on its next pass (or after a restart).
    assert_eq!(s.settle_pending(10).await.unwrap(), 1);
    let e = s
        .latest_evaluation(p.org_id, "prod")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(e.status, custody_api::ComplianceStatus::NonCompliant);
    assert_eq!(e.cause, "policy-attached");
    // Nothing is left to judge, and judging again records nothing.
    assert_eq!(s.settle_pending(10).await.unwrap(), 0);
    // Several changes before one judgement: one evaluation, cause
    // "several". The snapshot's judgement fails (the runner is down); the
    // detach that follows needs no runner and judges both.
    down.report_environment(&p, "prod", report(set(&[("ok", 2, 1)]), T0 + 1_000))
        .await
        .unwrap();
    down.attach_policies(&p, "prod", vec!["no-boom".into()], false)
        .await
        .unwrap();
    assert_eq!(s.settle_pending(10).await.unwrap(), 0);
    let after = s
        .latest_evaluation(p.org_id, "prod")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after.evaluation, e.evaluation + 1);
    assert_eq!(after.cause, "several");
    assert_eq!(after.status, custody_api::ComplianceStatus::Unknown);
    // The ledger has one evaluation entry per recorded judgement, each
    // naming the server's judge as its actor.
    let entries = s.ledger_entries("default", 0, 1000).await.unwrap();
    let judged: Vec<_> = entries
        .iter()
        .filter(|x| x.kind == "evaluation")
        .map(|x| custody_ledger::verify(&x.entry, &x.leaf_hash).unwrap())
        .collect();
    assert_eq!(judged.len(), 2);
    assert!(
        judged
            .iter()
            .all(|x| x.actor == custody_ledger::Actor::server("judge"))
    );
}

both!(a_partial_report_leaves_a_gap_that_says_why);
async fn a_partial_report_leaves_a_gap_that_says_why(s: Store) {
    let p = admin(&s).await;
    env(&s, &p, "prod", EnvironmentKind::K8s).await;
    let minute = 60_000;
    s.report_environment(&p, "prod", report(set(&[("web", 1, 2)]), T0))
        .await
        .unwrap();
    s.report_environment(&p, "prod", report(set(&[("web", 1, 2)]), T0 + minute))
        .await
        .unwrap();
    // A namespace could not be listed: what was seen is recorded, and the
    // environment is no longer observed.
    let mut partial = report(set(&[("web", 1, 2)]), T0 + 2 * minute);
    partial.unobserved = vec![custody_runtime::Unobserved {
        scope: "namespace payments".into(),
        reason: "cannot list pods: forbidden".into(),
    }];
    s.report_environment(&p, "prod", partial).await.unwrap();
    let c = s
        .coverage(p.org_id, "prod", T0 + 2 * minute + 1)
        .await
        .unwrap();
    assert_eq!(c.observed.len(), 1, "{c:?}");
    assert_eq!(c.observed[0].to, T0 + minute);
    assert_eq!(c.gaps.len(), 1, "{c:?}");
    assert_eq!(c.gaps[0].from, T0 + minute);
    assert_eq!(c.gaps[0].to, None);
    assert_eq!(c.gaps[0].partial.len(), 1);
    assert_eq!(
        c.gaps[0].partial[0].unobserved[0].scope,
        "namespace payments"
    );
    let last = s
        .get_environment(p.org_id, "prod")
        .await
        .unwrap()
        .last_report
        .unwrap();
    assert_eq!(last.unobserved[0].reason, "cannot list pods: forbidden");
    // A complete report observes again; the gap closes and keeps its why.
    s.report_environment(&p, "prod", report(set(&[("web", 1, 2)]), T0 + 3 * minute))
        .await
        .unwrap();
    let c = s
        .coverage(p.org_id, "prod", T0 + 3 * minute + 1)
        .await
        .unwrap();
    assert_eq!(c.observed.len(), 2, "{c:?}");
    assert_eq!(c.gaps.len(), 1);
    assert_eq!(c.gaps[0].to, Some(T0 + 3 * minute));
    assert_eq!(c.gaps[0].partial.len(), 1);
    assert!(
        s.get_environment(p.org_id, "prod")
            .await
            .unwrap()
            .last_report
            .unwrap()
            .unobserved
            .is_empty()
    );
    // The ledger's entry for the partial report says what it missed.
    let entries = s.ledger_entries("default", 0, 1000).await.unwrap();
    assert!(
        entries
            .iter()
            .any(|e| e.kind == "heartbeat" && e.entry.contains("namespace payments")),
        "{entries:?}"
    );
}

// A database whose snapshots were written before they carried a running
// count of changes gets the counts when it is opened: its change log
// pages as a new one does.
#[tokio::test]
async fn an_older_history_gets_its_change_counts_at_open() {
    let (s, dir) = common::sqlite().await;
    let p = admin(&s).await;
    env(&s, &p, "prod", EnvironmentKind::K8s).await;
    for n in 1..=30u32 {
        let spec: Vec<(&str, u32, u32)> = ["a", "b", "c"][..(n % 3 + 1) as usize]
            .iter()
            .map(|name| (*name, n, 1 + n % 2))
            .collect();
        s.report_environment(&p, "prod", report(set(&spec), T0 + i64::from(n) * 1000))
            .await
            .unwrap();
    }
    let pages = |s: Store| async move {
        let mut out = vec![];
        for page in 1..=40 {
            let l = s
                .environment_events(p.org_id, "prod", 0, i64::MAX, page, 4)
                .await
                .unwrap();
            out.extend(
                l.items
                    .iter()
                    .map(|e| (e.snapshot, e.change.key.name.clone(), e.change.now)),
            );
        }
        out
    };
    let before = pages(s.clone()).await;
    assert!(before.len() > 40);
    s.close().await;
    // Back to the schema before migration 11.
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&url).await.unwrap();
    for sql in [
        "DROP TABLE web_sessions",
        "DROP INDEX env_intervals_by_start",
        "DROP INDEX artifacts_by_name",
        "DROP INDEX runtime_artifacts_by_name",
        "DROP INDEX trails_by_created",
        "DROP INDEX env_snapshots_by_count",
        "ALTER TABLE env_snapshots DROP COLUMN changes_upto",
        "DELETE FROM _sqlx_migrations WHERE version = 11",
    ] {
        sqlx::query(sql).execute(&pool).await.unwrap();
    }
    pool.close().await;
    let s = Store::open(&url).await.unwrap();
    assert_eq!(pages(s).await, before);
}
