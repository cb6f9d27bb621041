//! The ledger's Merkle tree: how fast proofs come back from a large one
//! (`benches/appends.rs` times the writes that grow it).
//!
//! A ledger of `CUSTODY_BENCH_ENTRIES` (default 10 million)
//! entries, written straight into the tables in the layout the write
//!    path keeps (leaf hashes, every fourth level of nodes, the frontier;
//!    `tests/it/tree.rs` holds that layout to the real write path), since
//!    ten million real writes would take most of an hour. Then inclusion
//!    and consistency proofs of random entries against the whole tree,
//!    interleaved with a baseline — reading one ledger entry by its
//!    sequence number — so the ratio says what a proof costs over the
//!    cheapest read, on this noisy machine, in this run.
//!
//! SQLite by default; PostgreSQL with `CUSTODY_BENCH_POSTGRES_URL`.
//! Run: `cargo bench -p custody-store --bench ledger`

use std::time::Instant;

use custody_ledger::merkle::{Frontier, Hash, verify_consistency, verify_inclusion};
use custody_store::{NewApiKey, Store};
use sqlx::{Connection, Executor};

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

struct Xorshift(u64);

impl Xorshift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn open(url: &str) -> Store {
    let store = Store::open(url).await.unwrap();
    store
        .bootstrap(NewApiKey {
            id: "bench".into(),
            hash: vec![7; 32],
            description: None,
            expires_at: None,
        })
        .await
        .unwrap();
    store
}

/// A fresh database: a SQLite file in `dir`, or a new PostgreSQL database.
async fn fresh(dir: &std::path::Path, name: &str) -> (String, &'static str) {
    match std::env::var("CUSTODY_BENCH_POSTGRES_URL") {
        Ok(base) => {
            sqlx::any::install_default_drivers();
            let db = format!("bench_{name}_{}", std::process::id());
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

fn leaf(i: u64) -> Hash {
    custody_ledger::leaf_hash(&i.to_be_bytes())
}

/// Writes `n` entries' leaves, nodes and frontier straight into the tables.
async fn populate(c: &mut sqlx::AnyConnection, backend: &str, org_id: i64, from: u64, n: u64) {
    let blob = |h: &Hash| {
        if backend == "PostgreSQL" {
            format!("'\\x{}'::bytea", hex::encode(h))
        } else {
            format!("X'{}'", hex::encode(h))
        }
    };
    let mut tree = Frontier::new();
    // The bootstrap's own entries come first: rebuild their part of the tree.
    let existing: Vec<Vec<u8>> =
        sqlx::query_scalar("SELECT leaf_hash FROM ledger WHERE org_id = $1 ORDER BY seq")
            .bind(org_id)
            .fetch_all(&mut *c)
            .await
            .unwrap();
    assert_eq!(existing.len() as u64, from);
    for l in existing {
        tree.push(l.try_into().unwrap(), |_, _| {});
    }
    let started = Instant::now();
    let batch = 500u64;
    let mut seq = from;
    c.execute("BEGIN").await.unwrap();
    while seq < from + n {
        let end = (seq + batch).min(from + n);
        let mut rows =
            String::from("INSERT INTO ledger (org_id, seq, kind, ts, entry, leaf_hash) VALUES ");
        let mut nodes = Vec::new();
        for s in seq..end {
            if s > seq {
                rows.push(',');
            }
            let h = leaf(s);
            rows.push_str(&format!(
                "({org_id}, {s}, 'flow', {s}, '{{\"seq\":{s}}}', {})",
                blob(&h)
            ));
            tree.push(h, |node, hash| {
                if node.is_stored() {
                    nodes.push((node, *hash));
                }
            });
        }
        c.execute(sqlx::AssertSqlSafe(rows)).await.unwrap();
        if !nodes.is_empty() {
            let mut sql =
                String::from("INSERT INTO merkle_nodes (org_id, level, idx, hash) VALUES ");
            for (i, (node, hash)) in nodes.iter().enumerate() {
                if i > 0 {
                    sql.push(',');
                }
                sql.push_str(&format!(
                    "({org_id}, {}, {}, {})",
                    node.level,
                    node.index,
                    blob(hash)
                ));
            }
            c.execute(sqlx::AssertSqlSafe(sql)).await.unwrap();
        }
        seq = end;
        if seq.is_multiple_of(1_000_000) {
            c.execute("COMMIT").await.unwrap();
            c.execute("BEGIN").await.unwrap();
            eprintln!("  {seq} entries ({:.0} s)", started.elapsed().as_secs_f64());
        }
    }
    sqlx::query("UPDATE ledger_heads SET size = $2, frontier = $3 WHERE org_id = $1")
        .bind(org_id)
        .bind(tree.size() as i64)
        .bind(tree.to_bytes())
        .execute(&mut *c)
        .await
        .unwrap();
    c.execute("COMMIT").await.unwrap();
}

async fn proofs(dir: &std::path::Path) {
    let entries = env_usize("CUSTODY_BENCH_ENTRIES", 10_000_000) as u64;
    let queries = env_usize("CUSTODY_BENCH_QUERIES", 5000);
    let (url, backend) = fresh(dir, "proofs").await;
    let store = open(&url).await;
    let p = store.authenticate(&[7; 32]).await.unwrap().unwrap();
    let from = store.ledger_size("default").await.unwrap() as u64;
    sqlx::any::install_default_drivers();
    let mut c = sqlx::AnyConnection::connect(&url).await.unwrap();
    let started = Instant::now();
    populate(&mut c, backend, p.org_id, from, entries).await;
    c.close().await.unwrap();
    // Reopen, as a restarted server would, so caches start cold-ish.
    store.close().await;
    let store = Store::open(&url).await.unwrap();
    let head = store.tree_head("default").await.unwrap();
    eprintln!(
        "built a ledger of {} entries in {:.0} s",
        head.size,
        started.elapsed().as_secs_f64()
    );

    let mut rng = Xorshift(0x9e37_79b9_7f4a_7c15);
    let (mut incl, mut cons, mut base) = (vec![], vec![], vec![]);
    for _ in 0..queries {
        let seq = rng.next() % head.size;
        let t = Instant::now();
        let (size, leaf_hash, proof) = store.inclusion_proof("default", seq, None).await.unwrap();
        incl.push(t.elapsed().as_secs_f64() * 1000.0);
        verify_inclusion(seq, size, &leaf_hash, &proof, &head.root).unwrap();

        let old = 1 + rng.next() % (head.size - 1);
        let t = Instant::now();
        let (_, proof) = store.consistency_proof("default", old, None).await.unwrap();
        cons.push(t.elapsed().as_secs_f64() * 1000.0);
        if rng.next().is_multiple_of(50) {
            let old_root = store.tree_root_at("default", old).await.unwrap();
            verify_consistency(old, head.size, &old_root, &head.root, &proof).unwrap();
        }

        let t = Instant::now();
        let e = store
            .ledger_entries("default", seq as i64, 1)
            .await
            .unwrap();
        base.push(t.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(e.len(), 1);
    }
    for v in [&mut incl, &mut cons, &mut base] {
        v.sort_by(f64::total_cmp);
    }
    let p99_base = percentile(&base, 0.99);
    for (what, v) in [
        ("inclusion proof", &incl),
        ("consistency proof", &cons),
        ("baseline: one entry by seq", &base),
    ] {
        println!(
            "{what} ({backend}, {} entries): p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms; p99 {:.2}x the baseline",
            head.size,
            percentile(v, 0.5),
            percentile(v, 0.99),
            v[v.len() - 1],
            percentile(v, 0.99) / p99_base
        );
    }
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    proofs(dir.path()).await;
}
