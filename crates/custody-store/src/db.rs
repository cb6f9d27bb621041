//! Connections, migrations, and how writes reach the database.
//!
//! SQLite allows one writer at a time and makes every commit durable with
//! an fsync (`synchronous=FULL`). Rather than queueing writers on a lock, a
//! single writer task takes every write waiting for it, runs each inside a
//! savepoint of one transaction and commits once: one fsync for the whole
//! group (group commit). A write that fails rolls back to its savepoint
//! and leaves the others untouched; nobody is answered before the commit.
//!
//! PostgreSQL handles concurrent writers itself: each write is its own
//! transaction on the pool.

use futures::FutureExt;
use futures::future::BoxFuture;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyConnection, AnyPool};
use sqlx::{Connection, Executor};
use std::panic::AssertUnwindSafe;
use std::str::FromStr;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

use crate::{StoreError, StoreResult};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The most writes committed together; bounds how long a batch holds the
/// write lock.
const MAX_BATCH: usize = 512;

pub(crate) struct Db {
    pub backend: Backend,
    pub read: AnyPool,
    /// Notified after every commit: the delivery worker waits on it, so an
    /// enqueued event is sent as soon as its transaction is durable.
    pub committed: std::sync::Arc<tokio::sync::Notify>,
    writer: Writer,
}

enum Writer {
    Pool(AnyPool),
    Batched(mpsc::Sender<Job>),
}

/// What a write reports back after its part of the batch ran: whether it
/// succeeded, and how to answer its caller once the commit is known (a
/// failed write has its own error; a successful one waits for the commit).
type Deliver = Box<dyn FnOnce(Option<&str>) + Send>;
type Job = Box<dyn for<'c> FnOnce(&'c mut AnyConnection) -> BoxFuture<'c, (bool, Deliver)> + Send>;

const SQLITE_PRAGMAS: &str =
    "PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000; PRAGMA synchronous = FULL;";

impl Db {
    pub async fn open(url: &str) -> StoreResult<Db> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            return Err(StoreError::Unprocessable(format!(
                "unsupported database URL '{url}': use sqlite://PATH or postgres://..."
            )));
        };
        match backend {
            Backend::Sqlite => Self::open_sqlite(url).await,
            Backend::Postgres => Self::open_postgres(url).await,
        }
    }

    async fn open_sqlite(url: &str) -> StoreResult<Db> {
        let url = if url.contains('?') {
            url.to_string()
        } else {
            format!("{url}?mode=rwc")
        };
        let opts = AnyConnectOptions::from_str(&url)?;
        let mut writer = AnyConnection::connect_with(&opts).await?;
        // WAL lets readers run while the writer writes; it is a property of
        // the database file, so setting it once is enough.
        writer.execute("PRAGMA journal_mode = WAL;").await?;
        writer.execute(SQLITE_PRAGMAS).await?;
        crate::migrations::migrator(crate::migrations::SQLITE)
            .run(&mut writer)
            .await
            .map_err(|e| StoreError::Unprocessable(format!("migration failed: {e}")))?;
        let read = AnyPoolOptions::new()
            .max_connections(8)
            .min_connections(1)
            .after_connect(|conn, _| {
                Box::pin(async move {
                    conn.execute("PRAGMA busy_timeout = 10000; PRAGMA query_only = ON;")
                        .await?;
                    Ok(())
                })
            })
            .connect_with(opts)
            .await?;
        let (tx, rx) = mpsc::channel::<Job>(4096);
        tokio::spawn(run_writer(writer, rx));
        Ok(Db {
            backend: Backend::Sqlite,
            read,
            committed: Default::default(),
            writer: Writer::Batched(tx),
        })
    }

    async fn open_postgres(url: &str) -> StoreResult<Db> {
        let opts = AnyConnectOptions::from_str(url)?;
        let pool = AnyPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(opts)
            .await?;
        crate::migrations::migrator(crate::migrations::POSTGRES)
            .run(&pool)
            .await
            .map_err(|e| StoreError::Unprocessable(format!("migration failed: {e}")))?;
        Ok(Db {
            backend: Backend::Postgres,
            read: pool.clone(),
            committed: Default::default(),
            writer: Writer::Pool(pool),
        })
    }

    /// Runs `f` in a write transaction and returns its result once it is
    /// committed. If `f` fails, nothing it did is kept.
    pub async fn write<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut AnyConnection) -> BoxFuture<'c, StoreResult<T>> + Send + 'static,
    {
        let started = std::time::Instant::now();
        let out = self.write_now(f).await;
        // Queueing for the writer included: what a request waits for.
        metrics::histogram!(
            "custody_store_write_seconds",
            "result" => if out.is_ok() { "ok" } else { "error" }
        )
        .record(started.elapsed().as_secs_f64());
        out
    }

    async fn write_now<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut AnyConnection) -> BoxFuture<'c, StoreResult<T>> + Send + 'static,
    {
        match &self.writer {
            Writer::Pool(pool) => {
                let mut tx = pool.begin().await?;
                let result = AssertUnwindSafe(f(&mut tx))
                    .catch_unwind()
                    .await
                    .unwrap_or_else(|p| Err(panicked(p)));
                match result {
                    Ok(v) => {
                        tx.commit()
                            .await
                            .map_err(|e| StoreError::Commit(e.to_string()))?;
                        self.committed.notify_one();
                        Ok(v)
                    }
                    Err(e) => {
                        // Dropping the transaction rolls it back; say so explicitly
                        // so the connection is clean before it returns to the pool.
                        let _ = tx.rollback().await;
                        Err(e)
                    }
                }
            }
            Writer::Batched(jobs) => {
                let (reply, answer) = oneshot::channel::<StoreResult<T>>();
                let job: Job = Box::new(move |conn| {
                    Box::pin(async move {
                        // A bug that panics inside one write fails that
                        // write; the writer task, and every write after
                        // it, carry on.
                        let result = AssertUnwindSafe(f(conn))
                            .catch_unwind()
                            .await
                            .unwrap_or_else(|p| Err(panicked(p)));
                        let ok = result.is_ok();
                        let deliver: Deliver = Box::new(move |commit_error| {
                            let out = match (result, commit_error) {
                                (Ok(v), None) => Ok(v),
                                (Ok(_), Some(e)) => Err(StoreError::Commit(e.to_string())),
                                (Err(e), _) => Err(e),
                            };
                            let _ = reply.send(out);
                        });
                        (ok, deliver)
                    })
                });
                jobs.send(job)
                    .await
                    .map_err(|_| StoreError::Commit("the writer has stopped".into()))?;
                let out = answer.await.map_err(|_| {
                    StoreError::Commit("the write could not be started; see the server log".into())
                })?;
                if out.is_ok() {
                    self.committed.notify_one();
                }
                out
            }
        }
    }

    pub async fn close(&self) {
        self.read.close().await;
        if let Writer::Pool(p) = &self.writer {
            p.close().await;
        }
    }
}

/// A write that panicked, as an error for its caller; the panic's message
/// goes to the log, not to the client.
fn panicked(p: Box<dyn std::any::Any + Send>) -> StoreError {
    let what = p
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    tracing::error!(panic = %what, "a write panicked; it was rolled back");
    StoreError::Commit("the write failed on an internal error and was rolled back".into())
}

async fn run_writer(mut conn: AnyConnection, mut jobs: mpsc::Receiver<Job>) {
    let mut batch: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = jobs.recv().await {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(j) => batch.push(j),
                Err(_) => break,
            }
        }
        run_batch(&mut conn, &mut batch).await;
    }
    let _ = conn.close().await;
}

async fn run_batch(conn: &mut AnyConnection, batch: &mut Vec<Job>) {
    if let Err(e) = conn.execute("BEGIN IMMEDIATE").await {
        // Dropping the jobs drops their reply channels: each caller hears
        // that its write did not happen.
        tracing::error!(error = %e, writes = batch.len(), "cannot begin a write transaction");
        batch.clear();
        return;
    }
    let mut delivers: Vec<Deliver> = Vec::with_capacity(batch.len());
    // Set when a savepoint could not be ended: the transaction's state is
    // then unknown, so nothing of the batch may be committed.
    let mut poisoned: Option<String> = None;
    for job in batch.drain(..) {
        if poisoned.is_some() {
            // Dropping the job answers its caller that it did not happen.
            continue;
        }
        if let Err(e) = conn.execute("SAVEPOINT w").await {
            tracing::error!(error = %e, "cannot open a savepoint; the write is refused");
            continue;
        }
        let (ok, deliver) = job(conn).await;
        let end = if ok {
            "RELEASE w"
        } else {
            "ROLLBACK TO w; RELEASE w"
        };
        if let Err(e) = conn.execute(end).await {
            tracing::error!(error = %e, "savepoint handling failed; the batch is rolled back");
            poisoned = Some(e.to_string());
        }
        delivers.push(deliver);
    }
    let commit_error = match poisoned {
        Some(e) => {
            let _ = conn.execute("ROLLBACK").await;
            Some(e)
        }
        None => match conn.execute("COMMIT").await {
            Ok(_) => None,
            Err(e) => {
                tracing::error!(error = %e, "group commit failed; rolling back the batch");
                let _ = conn.execute("ROLLBACK").await;
                Some(e.to_string())
            }
        },
    };
    for deliver in delivers {
        deliver(commit_error.as_deref());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn count(db: &Db) -> i64 {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM orgs")
            .fetch_one(&db.read)
            .await
            .unwrap()
    }

    fn insert(
        name: &'static str,
    ) -> impl for<'c> FnOnce(&'c mut AnyConnection) -> BoxFuture<'c, StoreResult<()>> + Send + 'static
    {
        move |c| {
            Box::pin(async move {
                sqlx::query("INSERT INTO orgs (name, created_at) VALUES ($1, 0)")
                    .bind(name)
                    .execute(&mut *c)
                    .await?;
                Ok(())
            })
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_write_that_panics_fails_alone() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&format!("sqlite://{}", dir.path().join("t.db").display()))
            .await
            .unwrap();
        // A panic after the write's first statement: its row must not stay.
        let r = db
            .write(|c| {
                Box::pin(async move {
                    sqlx::query("INSERT INTO orgs (name, created_at) VALUES ('half', 0)")
                        .execute(&mut *c)
                        .await?;
                    panic!("a bug in a write");
                    #[allow(unreachable_code)]
                    Ok(())
                })
            })
            .await;
        assert!(matches!(r, Err(StoreError::Commit(_))), "{r:?}");
        assert_eq!(count(&db).await, 0);
        // The writer lives on: later writes, alone or batched, commit.
        db.write(insert("a")).await.unwrap();
        let (x, y) = tokio::join!(db.write(insert("b")), db.write(insert("c")));
        x.unwrap();
        y.unwrap();
        assert_eq!(count(&db).await, 3);
    }
}
