//! The store's behaviour, run against SQLite and against a real PostgreSQL
//! (see `common`).

use crate::common;

use common::{admin, generic, key};

use custody_api::{BeginTrailRequest, CreateServiceAccountRequest, ReportArtifactRequest};
use custody_domain::Role;
use custody_store::{AttestationBinding, Store, StoreError};
use serde_json::json;

fn verify_ledger(entries: &[custody_store::ledger::LedgerEntry]) {
    for (i, e) in entries.iter().enumerate() {
        assert_eq!(e.seq, i as i64, "gap in the ledger");
        let env = custody_ledger::verify(&e.entry, &e.leaf_hash).unwrap();
        assert_eq!(env.seq, e.seq);
        assert_eq!(env.kind.as_str(), e.kind);
    }
}

both!(bootstrap_happens_once);
async fn bootstrap_happens_once(s: Store) {
    let p = admin(&s).await;
    assert_eq!(p.org, "default");
    assert!(p.server_admin);
    assert_eq!(p.role, Role::Admin);
    assert!(!s.bootstrap(key(2)).await.unwrap());
    assert!(s.authenticate(&[2; 32]).await.unwrap().is_none());
    // org, service account, api key
    assert_eq!(s.ledger_size("default").await.unwrap(), 3);
}

both!(orgs_are_isolated);
async fn orgs_are_isolated(s: Store) {
    let p = admin(&s).await;
    s.create_org(&p, "acme", key(3)).await.unwrap();
    assert!(matches!(
        s.create_org(&p, "acme", key(4)).await,
        Err(StoreError::Conflict(_))
    ));
    let acme = s.authenticate(&[3; 32]).await.unwrap().unwrap();
    assert_eq!(acme.org, "acme");
    assert!(!acme.server_admin);
    s.put_flow(&p, "backend", None, None).await.unwrap();
    assert!(matches!(
        s.get_flow(acme.org_id, "backend").await,
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(s.list_flows(acme.org_id, false).await.unwrap().len(), 0);
    assert_eq!(s.ledger_size("acme").await.unwrap(), 3);
}

both!(service_accounts_and_keys);
async fn service_accounts_and_keys(s: Store) {
    let p = admin(&s).await;
    let req = CreateServiceAccountRequest {
        name: "ci".into(),
        role: Role::Member,
        description: None,
    };
    s.create_service_account(&p, req.clone()).await.unwrap();
    assert!(matches!(
        s.create_service_account(&p, req).await,
        Err(StoreError::Conflict(_))
    ));
    s.create_api_key(&p, "ci", key(9)).await.unwrap();
    let ci = s.authenticate(&[9; 32]).await.unwrap().unwrap();
    assert_eq!((ci.service_account.as_str(), ci.role), ("ci", Role::Member));
    let mut expired = key(10);
    expired.expires_at = Some(jiff::Timestamp::now().as_millisecond() + 100);
    s.create_api_key(&p, "ci", expired).await.unwrap();
    assert!(s.authenticate(&[10; 32]).await.unwrap().is_some());
    tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    assert!(s.authenticate(&[10; 32]).await.unwrap().is_none());
    assert!(matches!(
        s.create_api_key(&p, "nobody", key(11)).await,
        Err(StoreError::NotFound { .. })
    ));
}

both!(flows_trails_artifacts_attestations);
async fn flows_trails_artifacts_attestations(s: Store) {
    let p = admin(&s).await;
    let v1 = "version: 1\n";
    let v2 = "version: 1\ntrail:\n  attestations:\n  - name: a\n    type: generic\n";
    let f = s
        .put_flow(&p, "backend", Some("d".into()), Some(v1.into()))
        .await
        .unwrap();
    assert!(f.created);
    assert_eq!(f.value.template_version, Some(1));
    let f = s
        .put_flow(&p, "backend", None, Some(v1.into()))
        .await
        .unwrap();
    assert!(!f.created);
    assert_eq!(
        f.value.template_version,
        Some(1),
        "same template: no new version"
    );
    let f = s
        .put_flow(&p, "backend", None, Some(v2.into()))
        .await
        .unwrap();
    assert_eq!(f.value.template_version, Some(2));
    assert_eq!(f.value.description.as_deref(), Some("d"));

    let t = s
        .begin_trail(
            &p,
            "backend",
            BeginTrailRequest {
                name: "t1".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(t.created);
    let t = s
        .begin_trail(
            &p,
            "backend",
            BeginTrailRequest {
                name: "t1".into(),
                description: Some("x".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(!t.created);
    assert!(matches!(
        s.begin_trail(
            &p,
            "nope",
            BeginTrailRequest {
                name: "t1".into(),
                ..Default::default()
            }
        )
        .await,
        Err(StoreError::NotFound { what: "flow", .. })
    ));

    let fp = "a".repeat(64);
    s.report_artifact(
        &p,
        "backend",
        "t1",
        ReportArtifactRequest {
            fingerprint: fp.clone(),
            name: "app".into(),
            git_commit: Some("abc123".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    s.put_attestation(
        &p,
        "backend",
        "t1",
        generic("a", AttestationBinding::Trail, true),
    )
    .await
    .unwrap();
    let bound = s
        .put_attestation(
            &p,
            "backend",
            "t1",
            generic("tests", AttestationBinding::Fingerprint(fp.clone()), false),
        )
        .await
        .unwrap();
    assert_eq!(bound.artifact.as_deref(), Some("app"));
    s.put_attestation(
        &p,
        "backend",
        "t1",
        generic("pre", AttestationBinding::ArtifactName("web".into()), true),
    )
    .await
    .unwrap();

    let before = s.ledger_size("default").await.unwrap();
    let e = s
        .put_attestation(
            &p,
            "backend",
            "t1",
            generic("x", AttestationBinding::Fingerprint("b".repeat(64)), true),
        )
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("does not exist in trail 't1'"),
        "{e}"
    );
    assert!(matches!(
        s.put_attestation(
            &p,
            "backend",
            "nope",
            generic("x", AttestationBinding::Trail, true)
        )
        .await,
        Err(StoreError::NotFound { what: "trail", .. })
    ));
    assert_eq!(
        s.ledger_size("default").await.unwrap(),
        before,
        "a refused write leaves no ledger entry"
    );

    let data = s.get_trail(p.org_id, "backend", "t1").await.unwrap();
    assert_eq!(data.trail.description.as_deref(), Some("x"));
    assert_eq!(data.artifacts.len(), 1);
    assert_eq!(data.attestations.len(), 3);
    assert_eq!(data.template_yaml(), Some(v2));

    let found = s.search(p.org_id, "aaaa", None).await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(s.search(p.org_id, "abc1", None).await.unwrap().len(), 1);
    assert_eq!(s.search(p.org_id, "abd", None).await.unwrap().len(), 0);
    let page = s.list_trails(p.org_id, "backend", 1, 10).await.unwrap();
    assert_eq!(page.total, 1);
    let history = s
        .attestation_history(p.org_id, "backend", "t1", Some("app"), "tests", 1, 50)
        .await
        .unwrap();
    assert_eq!(history.items.len(), 1);
    // A newer report of the same name replaces it in the trail; both stay in history.
    let newer = s
        .put_attestation(
            &p,
            "backend",
            "t1",
            generic("tests", AttestationBinding::Fingerprint(fp.clone()), true),
        )
        .await
        .unwrap();
    let data = s.get_trail(p.org_id, "backend", "t1").await.unwrap();
    assert_eq!(data.attestations.len(), 3);
    assert!(data.attestations.iter().any(|a| a.id == newer.id));
    assert!(!data.attestations.iter().any(|a| a.id == bound.id));
    let history = s
        .attestation_history(p.org_id, "backend", "t1", Some("app"), "tests", 1, 50)
        .await
        .unwrap();
    assert_eq!(
        history
            .items
            .iter()
            .map(|a| a.id.as_str())
            .collect::<Vec<_>>(),
        [newer.id.as_str(), bound.id.as_str()]
    );

    let entries = s.ledger_entries("default", 0, 1000).await.unwrap();
    assert_eq!(
        entries.len() as i64,
        s.ledger_size("default").await.unwrap()
    );
    verify_ledger(&entries);
    let kinds: Vec<&str> = entries.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "org",
            "service_account",
            "api_key",
            "flow",
            "flow_template",
            "flow_template",
            "trail",
            "trail",
            "artifact",
            "attestation",
            "attestation",
            "attestation",
            "attestation"
        ]
    );

    s.begin_trail(
        &p,
        "backend",
        BeginTrailRequest {
            name: "t2".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    // Read together, the trails are what each reads alone; those that do
    // not exist are left out.
    let keys = [
        ("backend".to_string(), "t1".to_string()),
        ("backend".to_string(), "t2".to_string()),
        ("backend".to_string(), "nope".to_string()),
        ("no-flow".to_string(), "t1".to_string()),
    ];
    let together = s.get_trails(p.org_id, &keys).await.unwrap();
    assert_eq!(together.len(), 2);
    for t in together {
        let alone = s
            .get_trail(p.org_id, &t.trail.flow, &t.trail.name)
            .await
            .unwrap();
        assert_eq!(
            serde_json::to_value((&t.trail, &t.artifacts, &t.attestations)).unwrap(),
            serde_json::to_value((&alone.trail, &alone.artifacts, &alone.attestations)).unwrap()
        );
        assert_eq!(t.flow_template_yaml, alone.flow_template_yaml);
    }
}

both!(concurrent_writes_keep_the_ledger_gap_free);
async fn concurrent_writes_keep_the_ledger_gap_free(s: Store) {
    let p = admin(&s).await;
    s.put_flow(&p, "f", None, None).await.unwrap();
    s.begin_trail(
        &p,
        "f",
        BeginTrailRequest {
            name: "t".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let mut tasks = Vec::new();
    for i in 0..200 {
        let s = s.clone();
        let p = p.clone();
        tasks.push(tokio::spawn(async move {
            // Every fifth write fails half-way and must leave no trace.
            let binding = if i % 5 == 0 {
                AttestationBinding::Fingerprint("c".repeat(64))
            } else {
                AttestationBinding::Trail
            };
            s.put_attestation(&p, "f", "t", generic(&format!("a{i}"), binding, true))
                .await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        if t.await.unwrap().is_ok() {
            ok += 1;
        }
    }
    assert_eq!(ok, 160);
    let entries = s.ledger_entries("default", 0, 10_000).await.unwrap();
    verify_ledger(&entries);
    assert_eq!(entries.len(), 3 + 2 + 160);
    assert_eq!(
        s.get_trail(p.org_id, "f", "t")
            .await
            .unwrap()
            .attestations
            .len(),
        160
    );
}

both!(attestation_types_are_versioned);
async fn attestation_types_are_versioned(s: Store) {
    let p = admin(&s).await;
    let req = custody_api::CreateAttestationTypeRequest {
        name: "person".into(),
        description: None,
        schema: json!({"type": "object"}),
        jq_rules: vec![".age > 21".into()],
    };
    assert_eq!(
        s.create_attestation_type(&p, req.clone())
            .await
            .unwrap()
            .version,
        1
    );
    assert_eq!(s.create_attestation_type(&p, req).await.unwrap().version, 2);
    assert_eq!(
        s.get_attestation_type(p.org_id, "person", None)
            .await
            .unwrap()
            .version,
        2
    );
    assert_eq!(
        s.get_attestation_type(p.org_id, "person", Some(1))
            .await
            .unwrap()
            .version,
        1
    );
    assert!(
        s.get_attestation_type(p.org_id, "person", Some(3))
            .await
            .is_err()
    );
    assert_eq!(
        s.list_attestation_types(p.org_id, false)
            .await
            .unwrap()
            .len(),
        1
    );
}

both!(sbom_components_are_stored_and_found);
async fn sbom_components_are_stored_and_found(s: Store) {
    use custody_evidence::sbom::Component;
    let p = admin(&s).await;
    s.put_flow(&p, "backend", None, None).await.unwrap();
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
    // More than one INSERT batch.
    let components: Vec<Component> = (0..250)
        .map(|i| Component {
            name: format!("pkg{i}"),
            version: Some(format!("1.{i}.0")),
            purl: Some(format!("pkg:npm/pkg{i}@1.{i}.0")),
            licenses: vec!["MIT".into()],
            ..Component::default()
        })
        .collect();
    let mut a = generic("bom", AttestationBinding::ArtifactName("app".into()), true);
    a.kind = "sbom".into();
    let text = serde_json::value::to_raw_value(&components).unwrap();
    a.components =
        Some(custody_evidence::sbom::ComponentList::check(text, std::io::sink()).unwrap());
    let id = a.id.clone();
    let before = s.ledger_size("default").await.unwrap();
    s.put_attestation(&p, "backend", "t1", a).await.unwrap();
    assert_eq!(
        s.ledger_size("default").await.unwrap(),
        before + 1,
        "components are covered by the attestation's entry"
    );
    assert_eq!(
        s.attestation_components(p.org_id, &id, 1, 500)
            .await
            .unwrap()
            .items,
        components
    );

    let found = s
        .find_components(p.org_id, Some("pkg7"), None, None, 10)
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].trail, "t1");
    assert_eq!(found[0].artifact.as_deref(), Some("app"));
    assert_eq!(
        found[0].fingerprint, None,
        "the artifact is not reported yet"
    );
    let any_version = s
        .find_components(p.org_id, None, Some("pkg:npm/pkg42"), None, 10)
        .await
        .unwrap();
    assert_eq!(any_version[0].version.as_deref(), Some("1.42.0"));
    let exact = s
        .find_components(p.org_id, None, Some("pkg:npm/pkg42@9.9.9"), None, 10)
        .await
        .unwrap();
    assert!(exact.is_empty());
    let by_version = s
        .find_components(p.org_id, Some("pkg42"), None, Some("1.42.0"), 10)
        .await
        .unwrap();
    assert_eq!(by_version.len(), 1);

    // Once the artifact is reported, its fingerprint answers the question.
    let fp = "c".repeat(64);
    s.report_artifact(
        &p,
        "backend",
        "t1",
        ReportArtifactRequest {
            fingerprint: fp.clone(),
            name: "app".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let found = s
        .find_components(p.org_id, Some("pkg7"), None, None, 10)
        .await
        .unwrap();
    assert_eq!(found[0].fingerprint.as_deref(), Some(fp.as_str()));

    // Another organisation sees none of it.
    s.create_org(&p, "acme", key(9)).await.unwrap();
    let acme = s.authenticate(&[9; 32]).await.unwrap().unwrap();
    assert!(
        s.find_components(acme.org_id, Some("pkg7"), None, None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(matches!(
        s.attestation_components(acme.org_id, &id, 1, 50).await,
        Err(StoreError::NotFound { .. })
    ));
}

fn account(name: &str, role: Role) -> CreateServiceAccountRequest {
    CreateServiceAccountRequest {
        name: name.into(),
        role,
        description: None,
    }
}

both!(no_escalation_through_keys);
async fn no_escalation_through_keys(s: Store) {
    let root = admin(&s).await;
    // An org admin of `default` (not the server admin).
    s.create_service_account(&root, account("ops", Role::Admin))
        .await
        .unwrap();
    s.create_api_key(&root, "ops", key(20)).await.unwrap();
    let ops = s.authenticate(&[20; 32]).await.unwrap().unwrap();
    assert!(!ops.server_admin);
    // It cannot mint a key for the server-admin account...
    let e = s
        .create_api_key(&ops, "bootstrap-admin", key(21))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, StoreError::Forbidden(m) if m.contains("server-admin")),
        "{e}"
    );
    assert!(s.authenticate(&[21; 32]).await.unwrap().is_none());
    // ...nor revoke, rotate, change or delete it.
    let root_key = root.key_id.clone();
    assert!(matches!(
        s.revoke_api_key(&ops, &root_key).await,
        Err(StoreError::Forbidden(_))
    ));
    assert!(matches!(
        s.rotate_api_key(&ops, &root_key, key(22), 0).await,
        Err(StoreError::Forbidden(_))
    ));
    assert!(matches!(
        s.update_service_account(&ops, "bootstrap-admin", Role::Reader)
            .await,
        Err(StoreError::Forbidden(_))
    ));
    assert!(matches!(
        s.delete_service_account(&ops, "bootstrap-admin").await,
        Err(StoreError::Forbidden(_))
    ));
    // Organisations are for the server admin only.
    assert!(matches!(
        s.create_org(&ops, "evil", key(23)).await,
        Err(StoreError::Forbidden(_))
    ));

    // A member mints keys for itself only: never for another member.
    s.create_service_account(&root, account("alice", Role::Member))
        .await
        .unwrap();
    s.create_service_account(&root, account("bob", Role::Member))
        .await
        .unwrap();
    s.create_api_key(&root, "alice", key(24)).await.unwrap();
    let alice = s.authenticate(&[24; 32]).await.unwrap().unwrap();
    let e = s.create_api_key(&alice, "bob", key(25)).await.unwrap_err();
    assert!(
        matches!(&e, StoreError::Forbidden(m) if m.contains("own account")),
        "{e}"
    );
    s.create_api_key(&alice, "alice", key(26)).await.unwrap();
    // And creates no accounts.
    assert!(matches!(
        s.create_service_account(&alice, account("mallory", Role::Admin))
            .await,
        Err(StoreError::Forbidden(_))
    ));
    // The server admin still manages its own keys.
    s.create_api_key(&root, "bootstrap-admin", key(27))
        .await
        .unwrap();
    assert!(
        s.authenticate(&[27; 32])
            .await
            .unwrap()
            .unwrap()
            .server_admin
    );
}

both!(keys_are_listed_revoked_and_rotated);
async fn keys_are_listed_revoked_and_rotated(s: Store) {
    let root = admin(&s).await;
    s.create_service_account(&root, account("ci", Role::Ci))
        .await
        .unwrap();
    let k = s.create_api_key(&root, "ci", key(30)).await.unwrap();
    let ci = s.authenticate(&[30; 32]).await.unwrap().unwrap();
    assert_eq!(ci.key_id, k.id);

    // Listed without secrets; a non-admin sees only its own.
    let all = s.list_api_keys(&root, None).await.unwrap();
    assert_eq!(all.len(), 2);
    let own = s.list_api_keys(&ci, None).await.unwrap();
    assert_eq!(
        own.iter().map(|k| k.id.as_str()).collect::<Vec<_>>(),
        [k.id.as_str()]
    );
    assert!(matches!(
        s.list_api_keys(&ci, Some("bootstrap-admin")).await,
        Err(StoreError::Forbidden(_))
    ));

    // Use is noted.
    s.touch_key(&k.id, 1_234).await.unwrap();
    let listed = s.list_api_keys(&root, Some("ci")).await.unwrap();
    assert_eq!(listed[0].last_used_at, Some(1_234));

    // Rotation with a grace period: both work until it ends.
    let (new, old) = s.rotate_api_key(&ci, &k.id, key(31), 60_000).await.unwrap();
    assert_eq!(new.rotated_from.as_deref(), Some(k.id.as_str()));
    assert!(old.expires_at.is_some() && old.revoked_at.is_none());
    assert!(s.authenticate(&[30; 32]).await.unwrap().is_some());
    assert!(s.authenticate(&[31; 32]).await.unwrap().is_some());
    // Without one, the old key stops at once.
    let (_, old2) = s.rotate_api_key(&root, &new.id, key(32), 0).await.unwrap();
    assert!(old2.revoked_at.is_some());
    assert!(s.authenticate(&[31; 32]).await.unwrap().is_none());
    assert!(s.authenticate(&[32; 32]).await.unwrap().is_some());

    // Revoked: the next authentication fails; twice is a conflict.
    let r = s.revoke_api_key(&root, &k.id).await.unwrap();
    assert!(r.revoked_at.is_some());
    assert!(s.authenticate(&[30; 32]).await.unwrap().is_none());
    assert!(matches!(
        s.revoke_api_key(&root, &k.id).await,
        Err(StoreError::Conflict(_))
    ));

    // Every one of these is in the ledger, naming who did it.
    let entries = s.ledger_entries("default", 0, 1000).await.unwrap();
    verify_ledger(&entries);
    let kinds: Vec<&str> = entries.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds.iter().filter(|k| **k == "api_key_revoked").count(), 1);
    let last = custody_ledger::verify(
        &entries.last().unwrap().entry,
        &entries.last().unwrap().leaf_hash,
    )
    .unwrap();
    assert_eq!(last.actor, root.actor());
    let rotated_by_ci = entries
        .iter()
        .map(|e| custody_ledger::verify(&e.entry, &e.leaf_hash).unwrap())
        .find(|e| e.record.get("replaces").is_some())
        .unwrap();
    assert_eq!(rotated_by_ci.actor, ci.actor());
}

both!(accounts_are_changed_and_deleted);
async fn accounts_are_changed_and_deleted(s: Store) {
    let root = admin(&s).await;
    s.create_service_account(&root, account("ci", Role::Member))
        .await
        .unwrap();
    s.create_api_key(&root, "ci", key(40)).await.unwrap();
    s.create_api_key(&root, "ci", key(41)).await.unwrap();
    let a = s
        .update_service_account(&root, "ci", Role::Ci)
        .await
        .unwrap();
    assert_eq!(a.role, Role::Ci);
    assert_eq!(
        s.authenticate(&[40; 32]).await.unwrap().unwrap().role,
        Role::Ci
    );
    // Nobody changes or deletes the account making the request.
    assert!(matches!(
        s.delete_service_account(&root, "bootstrap-admin").await,
        Err(StoreError::Forbidden(_))
    ));
    let d = s.delete_service_account(&root, "ci").await.unwrap();
    assert!(d.deleted_at.is_some());
    assert!(s.authenticate(&[40; 32]).await.unwrap().is_none());
    assert!(s.authenticate(&[41; 32]).await.unwrap().is_none());
    assert!(
        s.list_api_keys(&root, Some("ci"))
            .await
            .unwrap()
            .iter()
            .all(|k| k.revoked_at.is_some())
    );
    // A deleted account takes no keys, and its name is not reused.
    assert!(matches!(
        s.create_api_key(&root, "ci", key(42)).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        s.create_service_account(&root, account("ci", Role::Ci))
            .await,
        Err(StoreError::Conflict(_))
    ));
}

both!(keys_live_no_longer_than_the_org_allows);
async fn keys_live_no_longer_than_the_org_allows(s: Store) {
    let root = admin(&s).await;
    let day = 86_400_000;
    s.put_org_settings(
        &root,
        custody_api::OrgSettings {
            max_key_lifetime_ms: Some(90 * day),
        },
    )
    .await
    .unwrap();
    s.create_service_account(&root, account("ci", Role::Ci))
        .await
        .unwrap();
    let now = jiff::Timestamp::now().as_millisecond();
    // No expiry asked: the maximum is given.
    let k = s.create_api_key(&root, "ci", key(50)).await.unwrap();
    let t = k.expires_at.unwrap();
    assert!(t > now + 89 * day && t <= now + 90 * day + 60_000);
    // More than the maximum: refused, naming it.
    let mut long = key(51);
    long.expires_at = Some(now + 100 * day);
    let e = s.create_api_key(&root, "ci", long).await.unwrap_err();
    assert!(e.to_string().contains("90d"), "{e}");
    let mut short = key(52);
    short.expires_at = Some(now + day);
    assert_eq!(
        s.create_api_key(&root, "ci", short)
            .await
            .unwrap()
            .expires_at,
        Some(now + day)
    );
    assert_eq!(
        s.org_settings(root.org_id)
            .await
            .unwrap()
            .max_key_lifetime_ms,
        Some(90 * day)
    );
}

// A database written before attestations marked their latest version
// gets the marks at open (migration 13's backfill), and a trail reads as
// it did: the latest of each name and binding, in order.
#[tokio::test]
async fn an_older_database_gets_its_latest_attestations_marked_at_open() {
    let (s, dir) = common::sqlite().await;
    let p = admin(&s).await;
    s.put_flow(&p, "backend", None, None).await.unwrap();
    for t in ["t1", "t2"] {
        s.begin_trail(
            &p,
            "backend",
            BeginTrailRequest {
                name: t.into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    }
    let fp = "ab".repeat(32);
    s.report_artifact(
        &p,
        "backend",
        "t1",
        ReportArtifactRequest {
            fingerprint: fp.clone(),
            name: "app".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    for (i, (trail, name, binding)) in [
        ("t1", "tests", AttestationBinding::Trail),
        ("t1", "lint", AttestationBinding::Trail),
        ("t1", "tests", AttestationBinding::Trail),
        ("t1", "tests", AttestationBinding::Fingerprint(fp.clone())),
        ("t2", "tests", AttestationBinding::Trail),
        ("t1", "tests", AttestationBinding::Trail),
        ("t1", "tests", AttestationBinding::Fingerprint(fp.clone())),
    ]
    .into_iter()
    .enumerate()
    {
        s.put_attestation(&p, "backend", trail, generic(name, binding, i % 2 == 0))
            .await
            .unwrap();
    }
    let latest = |s: Store| async move {
        let mut out = vec![];
        for t in ["t1", "t2"] {
            let d = s.get_trail(p.org_id, "backend", t).await.unwrap();
            out.push(
                d.attestations
                    .iter()
                    .map(|a| a.id.clone())
                    .collect::<Vec<_>>(),
            );
        }
        out
    };
    let before = latest(s.clone()).await;
    assert_eq!(
        before[0].len(),
        3,
        "tests, lint and tests about the artifact"
    );
    assert_eq!(before[1].len(), 1);
    s.close().await;
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&url).await.unwrap();
    for sql in [
        "DROP INDEX attestations_latest",
        "ALTER TABLE attestations DROP COLUMN latest",
        "DELETE FROM _sqlx_migrations WHERE version = 13",
    ] {
        sqlx::query(sql).execute(&pool).await.unwrap();
    }
    pool.close().await;
    let s = Store::open(&url).await.unwrap();
    assert_eq!(latest(s).await, before);
}
