//! How fast writes append to the ledger: `CUSTODY_BENCH_WRITES` (default
//! 20,000) real writes through the store (`put_flow` of new flows, one
//! ledger entry each), from 64 tasks at once so SQLite's writer commits them
//! in groups, as a busy server does. Prints entries per second.
//!
//! It uses nothing but the store's public writes, so the same file builds
//! against an earlier commit: `bench/appends.sh` runs this build and such a
//! baseline side by side (the Merkle tree's cost on the write path).
//! SQLite by default; PostgreSQL with `CUSTODY_BENCH_POSTGRES_URL`.
//! Run: `cargo bench -p custody-store --bench appends`

use std::time::Instant;

use custody_store::{NewApiKey, Store};
use sqlx::{Connection, Executor};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn fresh(dir: &std::path::Path, name: &str) -> (String, &'static str) {
    match std::env::var("CUSTODY_BENCH_POSTGRES_URL") {
        Ok(base) => {
            sqlx::any::install_default_drivers();
            let db = format!("bench_{name}_{}_{}", std::process::id(), unique_suffix());
            let mut admin = sqlx::AnyConnection::connect(&base).await.unwrap();
            admin
                .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {db}")))
                .await
                .unwrap();
            let (prefix, _) = base.rsplit_once('/').unwrap();
            (format!("{prefix}/{db}"), "PostgreSQL")
        }
        Err(_) => (
            format!("sqlite://{}", dir.join(format!("{name}.db")).display()),
            "SQLite",
        ),
    }
}

fn unique_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default()
}

async fn appends(dir: &std::path::Path) {
    let writes = env_usize("CUSTODY_BENCH_WRITES", 20_000);
    let (url, backend) = fresh(dir, "appends").await;
    let store = Store::open(&url).await.unwrap();
    store
        .bootstrap(NewApiKey {
            id: "bench".into(),
            hash: vec![7; 32],
            description: None,
            expires_at: None,
        })
        .await
        .unwrap();
    let p = store.authenticate(&[7; 32]).await.unwrap().unwrap();
    let before = store.ledger_size("default").await.unwrap();
    let started = Instant::now();
    let tasks = 64;
    let mut set = tokio::task::JoinSet::new();
    for t in 0..tasks {
        let (store, p) = (store.clone(), p.clone());
        set.spawn(async move {
            let mut i = t;
            while i < writes {
                store
                    .put_flow(&p, &format!("flow-{i}"), None, None)
                    .await
                    .unwrap();
                i += tasks;
            }
        });
    }
    while set.join_next().await.is_some() {}
    let secs = started.elapsed().as_secs_f64();
    let added = store.ledger_size("default").await.unwrap() - before;
    assert_eq!(added as usize, writes);
    println!(
        "appends ({backend}): {writes} writes from {tasks} tasks in {secs:.2} s = {:.0} entries/s",
        writes as f64 / secs
    );
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    appends(dir.path()).await;
}
