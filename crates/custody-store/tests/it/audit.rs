//! `verify_ledger`: tampering with the database directly, as someone with
//! access to it could, is found and named with its ledger entry — on
//! SQLite and on PostgreSQL.

use crate::common;

use common::admin;
use custody_api::{BeginTrailRequest, ReportArtifactRequest};
use custody_runtime::{EnvironmentKind, Instance, ObservedArtifact, Report};
use custody_store::{AttestationBinding, NewAttestation, NewEnvironment, NewReport, Store};

fn attestation(name: &str, ok: bool) -> NewAttestation {
    common::generic(name, AttestationBinding::Trail, ok)
}

fn report(version: u8) -> NewReport {
    let r = Report {
        kind: EnvironmentKind::Docker,
        artifacts: vec![ObservedArtifact {
            name: format!("web:{version}"),
            fingerprint: Some(format!("{version:02x}").repeat(32)),
            instances: vec![Instance {
                id: "web".into(),
                started_at: None,
                attributes: Default::default(),
            }],
        }],
        interval_s: None,
        warnings: vec![],
        unobserved: vec![],
        reporter: None,
    };
    NewReport {
        kind: EnvironmentKind::Docker,
        running: r.into_running_set().unwrap(),
        interval_ms: 0,
        warnings: vec![],
        unobserved: vec![],
        reporter: None,
        received_at: 1_700_000_000_000 + i64::from(version) * 60_000,
    }
}

/// A ledger with attestations and snapshots, and a checkpoint of it.
async fn history(s: &Store) -> (String, String) {
    let p = admin(s).await;
    s.put_flow(
        &p,
        "backend",
        Some("the payments API".into()),
        Some("version: 1\ntrail:\n  attestations:\n  - name: tests\n    type: generic\n".into()),
    )
    .await
    .unwrap();
    s.begin_trail(
        &p,
        "backend",
        BeginTrailRequest {
            name: "t1".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    s.report_artifact(
        &p,
        "backend",
        "t1",
        ReportArtifactRequest {
            fingerprint: "ab".repeat(32),
            name: "app".into(),
            git_commit: Some("abc123".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    // An SBOM, its components kept row by row.
    let mut hash = custody_evidence::sbom::Sha256Writer::default();
    let list = custody_evidence::sbom::ComponentList::check(
        serde_json::value::RawValue::from_string(
            r#"[{"name":"openssl","version":"3.0.13","purl":"pkg:deb/debian/openssl@3.0.13"},{"name":"zlib","version":"1.3"}]"#
                .into(),
        )
        .unwrap(),
        &mut hash,
    )
    .unwrap();
    let mut sbom = attestation("sbom", true);
    sbom.kind = "sbom".into();
    sbom.data = serde_json::json!({"component_count": 2, "components_sha256": hash.hex()});
    sbom.components = Some(list);
    s.put_attestation(&p, "backend", "t1", sbom).await.unwrap();
    let failed = s
        .put_attestation(&p, "backend", "t1", attestation("tests", false))
        .await
        .unwrap();
    let passed = s
        .put_attestation(&p, "backend", "t1", attestation("scan", true))
        .await
        .unwrap();
    s.put_environment(
        &p,
        NewEnvironment {
            name: "prod".into(),
            kind: EnvironmentKind::Docker,
            description: None,
            included: None,
        },
    )
    .await
    .unwrap();
    for v in 1..=3 {
        s.report_environment(&p, "prod", report(v)).await.unwrap();
    }
    s.create_policy(
        &p,
        custody_store::NewPolicy {
            name: "provenance".into(),
            kind: custody_api::PolicyKind::Kosli,
            content: "_schema: https://docs.kosli.com/schemas/policy/v1\nartifacts:\n  provenance:\n    required: true\n".into(),
            description: None,
            controls: vec![],
        },
    )
    .await
    .unwrap();
    s.attach_policies(&p, "prod", vec!["provenance".into()], true)
        .await
        .unwrap();
    s.allow_artifact(
        &p,
        "prod",
        custody_api::AllowRequest {
            fingerprint: "ef".repeat(32),
            artifact_name: Some("debug".into()),
            reason: "incident 42".into(),
        },
    )
    .await
    .unwrap();
    s.put_control(
        &p,
        "RCTL-1",
        custody_api::PutControlRequest {
            name: "Four eyes".into(),
            description: Some("every change reviewed".into()),
            links: vec![],
            tags: Default::default(),
        },
    )
    .await
    .unwrap();
    s.create_attestation_type(
        &p,
        custody_api::CreateAttestationTypeRequest {
            name: "coverage".into(),
            description: None,
            schema: serde_json::json!({"type": "object"}),
            jq_rules: vec![".line >= 80".into()],
        },
    )
    .await
    .unwrap();
    s.create_service_account(
        &p,
        custody_api::CreateServiceAccountRequest {
            name: "pipeline".into(),
            role: custody_api::Role::Ci,
            description: None,
        },
    )
    .await
    .unwrap();
    for (id, byte) in [("k-live", 0xa1u8), ("k-revoked", 0xa2u8)] {
        s.create_api_key(
            &p,
            "pipeline",
            custody_store::NewApiKey {
                id: id.into(),
                hash: vec![byte; 32],
                description: None,
                expires_at: None,
            },
        )
        .await
        .unwrap();
    }
    s.revoke_api_key(&p, "k-revoked").await.unwrap();
    let grown = s.unpublished_trees().await.unwrap();
    s.save_checkpoint(grown[0].org_id, &grown[0].head, "checkpoint\n")
        .await
        .unwrap();
    (failed.id, passed.id)
}

async fn seq_of(s: &Store, kind: &str, needle: &str) -> u64 {
    s.ledger_entries("default", 0, 10_000)
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.kind == kind && e.entry.contains(needle))
        .map(|e| e.seq as u64)
        .unwrap()
}

/// A byte-string literal in the database's own syntax.
fn bytes_sql(url: &str, hex: &str) -> String {
    if url.starts_with("postgres") {
        format!("'\\x{hex}'::bytea")
    } else {
        format!("X'{hex}'")
    }
}

async fn tamper(url: &str, sql: &str) {
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(url).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
}

async fn s_reopen(url: &str) -> Store {
    Store::open(url).await.unwrap()
}

async fn problems(url: &str) -> Vec<custody_api::AuditProblem> {
    let s = Store::open(url).await.unwrap();
    let audit = s.verify_ledger("default", None).await.unwrap();
    s.close().await;
    audit.problems
}

async fn tampering_is_found(s: Store, url: String) {
    let (failed, passed) = history(&s).await;
    let audit = s.verify_ledger("default", None).await.unwrap();
    assert!(audit.problems.is_empty(), "{:?}", audit.problems);
    assert_eq!(audit.checkpoints, 1);
    assert_eq!(
        audit.records, 27,
        "an artifact, two attestations, three snapshots, a trail, a policy version, \
         two evaluations (attached, allowlisted), an allowlist entry, two accounts, three keys (the first admin's and two), \
         a flow, its template, an environment, its policies, a control, an attestation type, an SBOM and its components, three runtime intervals"
    );
    let failed_seq = seq_of(&s, "attestation", &failed).await;
    let snapshot_seq = seq_of(&s, "snapshot", "\"snapshot\":2").await;
    s.close().await;

    // A failing attestation made to pass.
    tamper(
        &url,
        &format!("UPDATE attestations SET compliant = 1 WHERE id = '{failed}'"),
    )
    .await;
    let p = problems(&url).await;
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(
        (p[0].seq, p[0].table.as_str()),
        (Some(failed_seq), "attestations")
    );
    assert!(
        p[0].what
            .contains("compliant is true, the entry says false"),
        "{p:?}"
    );
    tamper(
        &url,
        &format!("UPDATE attestations SET compliant = 0 WHERE id = '{failed}'"),
    )
    .await;
    assert!(problems(&url).await.is_empty());

    // Another build's fingerprint given to the reported artifact: forged
    // provenance.
    let artifact_seq = seq_of(&s_reopen(&url).await, "artifact", "abc123").await;
    tamper(
        &url,
        &format!("UPDATE artifacts SET fingerprint = '{}'", "cd".repeat(32)),
    )
    .await;
    let p = problems(&url).await;
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(
        (p[0].seq, p[0].table.as_str()),
        (Some(artifact_seq), "artifacts")
    );
    assert!(p[0].what.contains("its fingerprint column is"), "{p:?}");
    tamper(
        &url,
        &format!("UPDATE artifacts SET fingerprint = '{}'", "ab".repeat(32)),
    )
    .await;
    assert!(problems(&url).await.is_empty());

    // A tree node where no tree has one: named, not a panic.
    tamper(
        &url,
        "INSERT INTO merkle_nodes (org_id, level, idx, hash) SELECT org_id, 200, seq, leaf_hash FROM ledger WHERE seq = 0",
    )
    .await;
    let p = problems(&url).await;
    assert!(
        p.iter()
            .any(|x| x.table == "tree" && x.what.contains("no such place in a tree")),
        "{p:?}"
    );
    tamper(&url, "DELETE FROM merkle_nodes WHERE level = 200").await;

    // A snapshot deleted; an attestation deleted.
    tamper(&url, "DELETE FROM env_snapshots WHERE idx = 2").await;
    tamper(
        &url,
        &format!("DELETE FROM attestations WHERE id = '{passed}'"),
    )
    .await;
    let p = problems(&url).await;
    assert!(
        p.iter().any(|x| x.seq == Some(snapshot_seq)
            && x.table == "env_snapshots"
            && x.what.contains("gone")),
        "{p:?}"
    );
    assert!(
        p.iter()
            .any(|x| x.table == "attestations" && x.key.as_deref() == Some(passed.as_str())),
        "{p:?}"
    );

    // A ledger row changed: its text no longer hashes to its leaf.
    tamper(
        &url,
        &format!("UPDATE ledger SET entry = REPLACE(entry, '\"compliant\":false', '\"compliant\":true') WHERE seq = {failed_seq}"),
    )
    .await;
    let p = problems(&url).await;
    assert!(
        p.iter().any(|x| x.seq == Some(failed_seq)
            && x.table == "ledger"
            && x.what.contains("leaf hash")),
        "{p:?}"
    );

    // A trail's commit, a policy's text, a judgement, an allowlist
    // entry's reason: each changed in place, each named.
    for (sql, table, says) in [
        (
            "UPDATE trails SET doc = REPLACE(doc, 'backend', 'hotfix')",
            "trails",
            "document differs",
        ),
        (
            "UPDATE policy_versions SET content = content || '# off'",
            "policy_versions",
            "its content is",
        ),
        (
            "UPDATE env_evaluations SET status = 'COMPLIANT'",
            "env_evaluations",
            "its status is \"COMPLIANT\", the entry says \"NON-COMPLIANT\"",
        ),
        (
            "UPDATE allowlist SET reason = 'approved'",
            "allowlist",
            "its reason is \"approved\", the entry says \"incident 42\"",
        ),
        ("DELETE FROM allowlist", "allowlist", "it is gone"),
        // History rewritten where "what ran at T" reads it: a count
        // changed, a run erased.
        (
            "UPDATE env_intervals SET instances = 9 WHERE first_idx = 1",
            "env_intervals",
            "the entries say it ran with 1 instance(s) from #1 to #1; the interval is gone",
        ),
        (
            "DELETE FROM env_intervals WHERE first_idx = 2",
            "env_intervals",
            "from #2 to #2; the interval is gone",
        ),
        // A package taken out of an SBOM's components, so "which artifacts
        // contain openssl" no longer finds it.
        (
            "DELETE FROM sbom_components WHERE name = 'openssl'",
            "sbom_components",
            "the components differ from those the entry's digest was taken of",
        ),
        // A custom type's rule and a control's description rewritten.
        (
            "UPDATE attestation_types SET doc = REPLACE(doc, '>= 80', '>= 0')",
            "attestation_types",
            "document differs",
        ),
        (
            "UPDATE control_versions SET doc = REPLACE(doc, 'every change reviewed', 'some changes')",
            "control_versions",
            "document differs",
        ),
        // What a trail must show, loosened in the database.
        (
            "UPDATE flow_templates SET yaml = 'version: 1'",
            "flow_templates",
            "its yaml is",
        ),
        (
            "UPDATE flows SET tags = '{\"risk\":\"low\"}'",
            "flows",
            "its tag set is {\"risk\":\"low\"}, the entry says {}",
        ),
        (
            "UPDATE environments SET archived_at = 1",
            "environments",
            "its archived is true, the entry says false",
        ),
        (
            "DELETE FROM environment_policies",
            "environment_policies",
            "the policies attached are [], the entries say [\"provenance\"]",
        ),
        // Powers given in the database: a pipeline made admin, a revoked
        // key brought back, a key's hash swapped for one whose token the
        // tamperer holds, a key of their own inserted.
        (
            "UPDATE service_accounts SET role = 'admin' WHERE name = 'pipeline'",
            "service_accounts",
            "its role is \"admin\", the entry says \"ci\"",
        ),
        (
            "UPDATE api_keys SET revoked_at = NULL WHERE id = 'k-revoked'",
            "api_keys",
            "its revoked_at is null, the entry says",
        ),
        (
            &format!(
                "UPDATE api_keys SET key_hash = {} WHERE id = 'k-live'",
                bytes_sql(&url, &"ab".repeat(32))
            ),
            "api_keys",
            "its key hash is",
        ),
    ] {
        tamper(&url, sql).await;
        let p = problems(&url).await;
        assert!(
            p.iter()
                .any(|x| x.table == table && x.seq.is_some() && x.what.contains(says)),
            "{sql}: {p:?}"
        );
    }
    for sql in [format!(
        "INSERT INTO api_keys (id, service_account_id, key_hash, created_at) \
         SELECT 'k-mine', service_account_id, {}, 0 FROM api_keys WHERE id = 'k-live'",
        bytes_sql(&url, "0909")
    )] {
        let sql = sql.as_str();
        tamper(&url, sql).await;
        let p = problems(&url).await;
        assert!(
            p.iter().any(|x| x.table == "api_keys"
                && x.key.as_deref() == Some("k-mine")
                && x.what.contains("no ledger entry created this key")),
            "{sql}: {p:?}"
        );
    }

    // The last entries removed: the checkpoint says there were more.
    tamper(&url, "DELETE FROM ledger WHERE seq >= 10").await;
    let p = problems(&url).await;
    assert!(
        p.iter()
            .any(|x| x.table == "checkpoints" && x.what.contains("entries were removed")),
        "{p:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampering_with_sqlite_is_found() {
    let (s, dir) = common::sqlite().await;
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    tampering_is_found(s, url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampering_with_postgres_is_found() {
    if let Some((s, url)) = common::postgres_with_url().await {
        tampering_is_found(s, url).await;
    }
}
