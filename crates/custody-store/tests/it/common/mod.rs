//! What the store tests share: a store on SQLite or on a real PostgreSQL,
//! and a way to run one test on both.
//!
//! PostgreSQL tests need `CUSTODY_TEST_POSTGRES_URL` (the test command
//! starts a throwaway server and sets it); each test gets its own database.
//! Without it they are skipped, unless `CUSTODY_REQUIRE_POSTGRES` is set, in
//! which case they fail.
#![allow(dead_code)]

use custody_store::{AttestationBinding, NewApiKey, NewAttestation, Principal, Store};

pub async fn sqlite() -> (Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    (Store::open(&url).await.unwrap(), dir)
}

pub async fn postgres() -> Option<Store> {
    Some(postgres_with_url().await?.0)
}

/// A store on a fresh PostgreSQL database, and the database's URL (for
/// tests that reach under the store).
pub async fn postgres_with_url() -> Option<(Store, String)> {
    let Ok(base) = std::env::var("CUSTODY_TEST_POSTGRES_URL") else {
        assert!(
            std::env::var("CUSTODY_REQUIRE_POSTGRES").is_err(),
            "CUSTODY_REQUIRE_POSTGRES is set but CUSTODY_TEST_POSTGRES_URL is not"
        );
        eprintln!("skipping: CUSTODY_TEST_POSTGRES_URL is not set");
        return None;
    };
    let name = format!("t_{}", uuid::Uuid::new_v4().simple());
    sqlx::any::install_default_drivers();
    let admin = sqlx::AnyPool::connect(&base).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
    let url = match base.rsplit_once('/') {
        Some((prefix, _)) => format!("{prefix}/{name}"),
        None => panic!("bad CUSTODY_TEST_POSTGRES_URL"),
    };
    Some((Store::open(&url).await.unwrap(), url))
}

#[macro_export]
macro_rules! both {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let (s, _dir) = $crate::common::sqlite().await;
                super::$name(s).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(s) = $crate::common::postgres().await {
                    super::$name(s).await;
                }
            }
        }
    };
}

pub fn key(n: u8) -> NewApiKey {
    NewApiKey {
        id: uuid::Uuid::new_v4().to_string(),
        hash: vec![n; 32],
        description: None,
        expires_at: None,
    }
}

pub async fn admin(s: &Store) -> Principal {
    assert!(s.bootstrap(key(1)).await.unwrap());
    s.authenticate(&[1; 32]).await.unwrap().unwrap()
}

/// A generic attestation, bound as `binding`.
pub fn generic(name: &str, binding: AttestationBinding, ok: bool) -> NewAttestation {
    NewAttestation {
        id: uuid::Uuid::now_v7().to_string(),
        name: name.into(),
        kind: "generic".into(),
        binding,
        compliant: ok,
        reasons: vec![],
        data: serde_json::json!({}),
        attestation_data: None,
        user_data: None,
        annotations: Default::default(),
        external_urls: Default::default(),
        description: None,
        origin_url: None,
        git_commit_info: None,
        repo_info: None,
        evidence: vec![],
        components: None,
        control: None,
    }
}
