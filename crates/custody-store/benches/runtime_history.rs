//! "What ran in ENV at T" and "where has SHA run" over a long history.
//!
//! Builds, in a fresh SQLite database (or PostgreSQL with
//! `CUSTODY_BENCH_POSTGRES_URL`), 1,000 environments of 50 workloads whose
//! history adds up to `CUSTODY_BENCH_EVENTS` change events (default 10
//! million): each environment starts its 50 workloads, then redeploys one
//! of them per snapshot (it stops, its next version starts: two events, a
//! new fingerprint), a minute apart. The history is written straight into
//! the tables in the layout `Store::report_environment` writes (same
//! columns, same interval-tree nodes), because a million real reports would
//! take hours; `tests/it/runtime.rs` holds that layout to the real write path.
//! Then it times the store's own queries and reports the bytes the history
//! takes per change event.
//!
//! Run: `cargo bench -p custody-store --bench runtime_history`

use std::time::Instant;

use custody_runtime::{At, EnvironmentKind};
use custody_store::interval_tree::{OPEN, fork};
use custody_store::{NewApiKey, NewEnvironment, Store};
use sqlx::{Connection, Executor, Row};

const ENVS: usize = 1000;
const SLOTS: usize = 50;
const T0: i64 = 1_700_000_000_000;
const STEP: i64 = 60_000;

fn fp(env: usize, slot: usize, version: usize) -> String {
    // Distinct, well spread fingerprints, as SHA-256 digests are.
    let mut h = (env as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)
        ^ (slot as u64).wrapping_mul(0xc2b2_ae3d_27d4_eb4f)
        ^ (version as u64).wrapping_mul(0x1656_67b1_9e37_79f9);
    let mut s = String::with_capacity(64);
    for _ in 0..4 {
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        s.push_str(&format!("{h:016x}"));
    }
    s
}

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
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// (artifact id, first, last, node, started at, instances, ended at)
type Interval = (i64, i64, i64, i64, i64, i64, Option<i64>);

async fn size(c: &mut sqlx::AnyConnection, backend: &str) -> i64 {
    let sql = if backend == "PostgreSQL" {
        "SELECT pg_database_size(current_database())"
    } else {
        "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()"
    };
    sqlx::query(sql)
        .fetch_one(&mut *c)
        .await
        .unwrap()
        .try_get::<i64, _>(0)
        .unwrap()
}

#[tokio::main]
async fn main() {
    let events: usize = std::env::var("CUSTODY_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000_000);
    let queries: usize = std::env::var("CUSTODY_BENCH_QUERIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    // Each redeploy is two events; each environment starts with SLOTS.
    let snapshots_per_env = (events / ENVS).saturating_sub(SLOTS) / 2 + 1;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bench.db");
    let (url, backend) = match std::env::var("CUSTODY_BENCH_POSTGRES_URL") {
        Ok(u) => (u, "PostgreSQL"),
        Err(_) => (format!("sqlite://{}", path.display()), "SQLite"),
    };
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
    for e in 0..ENVS {
        store
            .put_environment(
                &p,
                NewEnvironment {
                    name: format!("env-{e}"),
                    kind: EnvironmentKind::K8s,
                    description: None,
                    included: None,
                },
            )
            .await
            .unwrap();
    }

    sqlx::any::install_default_drivers();
    let mut c = sqlx::AnyConnection::connect(&url).await.unwrap();
    let before = size(&mut c, backend).await;
    let env_ids: Vec<i64> = sqlx::query("SELECT id FROM environments ORDER BY id")
        .fetch_all(&mut c)
        .await
        .unwrap()
        .iter()
        .map(|r| r.try_get(0).unwrap())
        .collect();

    let started = Instant::now();
    let mut rng = Xorshift(0x2545_f491_4f6c_dd1d);
    let mut total_events = 0usize;
    let mut sample_fps = vec![];
    let mut next_artifact_id: i64 = 1;
    for (e, env_id) in env_ids.iter().enumerate() {
        c.execute("BEGIN").await.unwrap();
        // (artifact id, first snapshot, started at)
        let mut slots: Vec<(i64, i64, i64, usize)> = Vec::with_capacity(SLOTS);
        let mut artifacts: Vec<(i64, String, String)> = vec![];
        let mut intervals: Vec<Interval> = vec![];
        let mut snaps: Vec<(i64, i64, i64)> = vec![];
        for s in 0..SLOTS {
            let id = next_artifact_id;
            next_artifact_id += 1;
            artifacts.push((
                id,
                fp(e, s, 0),
                format!("registry.example.com/team/svc-{s}:1.0.0"),
            ));
            slots.push((id, 1, T0, 0));
            total_events += 1;
        }
        snaps.push((1, T0, SLOTS as i64));
        for n in 2..=snapshots_per_env as i64 {
            let t = T0 + (n - 1) * STEP;
            let s = rng.below(SLOTS);
            let (old, first, from, version) = slots[s];
            intervals.push((old, first, n - 1, fork(first, n - 1), from, 1, Some(t)));
            let id = next_artifact_id;
            next_artifact_id += 1;
            let v = version + 1;
            let f = fp(e, s, v);
            if rng.below(5000) == 0 && sample_fps.len() < queries {
                sample_fps.push(f.clone());
            }
            artifacts.push((id, f, format!("registry.example.com/team/svc-{s}:1.0.{v}")));
            slots[s] = (id, n, t, v);
            snaps.push((n, t, 2));
            total_events += 2;
        }
        for (id, first, from, _) in &slots {
            intervals.push((*id, *first, OPEN, fork(*first, OPEN), *from, 1, None));
        }
        for chunk in artifacts.chunks(300) {
            let mut sql = String::from(if backend == "PostgreSQL" {
                "INSERT INTO runtime_artifacts (id, org_id, fingerprint, name) OVERRIDING SYSTEM VALUE VALUES "
            } else {
                "INSERT INTO runtime_artifacts (id, org_id, fingerprint, name) VALUES "
            });
            for (i, (id, f, name)) in chunk.iter().enumerate() {
                if i > 0 {
                    sql.push(',');
                }
                // Fingerprints are stored as bytes.
                let blob = if backend == "PostgreSQL" {
                    format!("decode('{f}', 'hex')")
                } else {
                    format!("X'{f}'")
                };
                sql.push_str(&format!("({id}, {}, {blob}, '{name}')", p.org_id));
            }
            c.execute(sqlx::AssertSqlSafe(sql)).await.unwrap();
        }
        let detail = r#"[{"id":"svc-5f7d8c9b6-x2x9k","started_at":1700000000000,"attributes":{"namespace":"prod","owner":"ReplicaSet/svc-5f7d8c9b6"}}]"#;
        for chunk in intervals.chunks(300) {
            let mut sql = String::from(
                "INSERT INTO env_intervals (env_id, artifact_id, instances, first_idx, last_idx, node, started_at, ended_at, detail) VALUES ",
            );
            for (i, (a, first, last, node, from, n, to)) in chunk.iter().enumerate() {
                if i > 0 {
                    sql.push(',');
                }
                let to = to.map_or("NULL".to_string(), |t| t.to_string());
                sql.push_str(&format!(
                    "({env_id}, {a}, {n}, {first}, {last}, {node}, {from}, {to}, '{detail}')"
                ));
            }
            c.execute(sqlx::AssertSqlSafe(sql)).await.unwrap();
        }
        let mut upto = 0;
        for chunk in snaps.chunks(500) {
            let mut sql = String::from(
                "INSERT INTO env_snapshots (env_id, idx, ts, artifacts, instances, changes, changes_upto) VALUES ",
            );
            for (i, (n, t, changes)) in chunk.iter().enumerate() {
                if i > 0 {
                    sql.push(',');
                }
                upto += changes;
                sql.push_str(&format!(
                    "({env_id}, {n}, {t}, {SLOTS}, {SLOTS}, {changes}, {upto})"
                ));
            }
            c.execute(sqlx::AssertSqlSafe(sql)).await.unwrap();
        }
        let last_t = T0 + (snapshots_per_env as i64 - 1) * STEP;
        sqlx::query("UPDATE environments SET latest_index = $2, counts_digest = 'x', last_changed_at = $3 WHERE id = $1")
            .bind(env_id)
            .bind(snapshots_per_env as i64)
            .bind(last_t)
            .execute(&mut c)
            .await
            .unwrap();
        c.execute("COMMIT").await.unwrap();
    }
    c.execute("ANALYZE").await.unwrap();
    let loaded = started.elapsed();
    let after = size(&mut c, backend).await;
    let per_event = (after - before) as f64 / total_events as f64;
    println!(
        "## runtime history on {backend}: {ENVS} environments x {SLOTS} workloads, {snapshots_per_env} snapshots each"
    );
    println!(
        "  {total_events} change events loaded in {:.1} s; database grew {:.0} MB: {per_event:.0} bytes per change event (target <= 250)",
        loaded.as_secs_f64(),
        (after - before) as f64 / 1e6
    );

    // What ran in ENV at T, through the store's own query.
    let mut times = Vec::with_capacity(queries);
    for _ in 0..queries {
        let e = rng.below(ENVS);
        let t = T0 + (rng.next() % (snapshots_per_env as u64 * STEP as u64)) as i64;
        let q = Instant::now();
        let snap = store
            .snapshot(p.org_id, &format!("env-{e}"), At::Time(t), "bench")
            .await
            .unwrap();
        times.push(q.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(snap.running.len(), SLOTS, "a snapshot runs every workload");
    }
    times.sort_by(f64::total_cmp);
    println!(
        "  what ran in ENV at T: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms over {queries} random (env, time) (target p99 <= 10 ms)",
        percentile(&times, 0.5),
        percentile(&times, 0.99),
        times[times.len() - 1]
    );

    let mut times = Vec::with_capacity(sample_fps.len());
    for f in &sample_fps {
        let q = Instant::now();
        let occ = store.runtime_occurrences(p.org_id, f).await.unwrap();
        times.push(q.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(occ.len(), 1, "each version ran once");
    }
    times.sort_by(f64::total_cmp);
    if !times.is_empty() {
        println!(
            "  where has SHA run: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms over {} fingerprints (target p99 <= 10 ms)",
            percentile(&times, 0.5),
            percentile(&times, 0.99),
            times[times.len() - 1],
            times.len()
        );
    }
}
