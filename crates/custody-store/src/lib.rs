//! Custody's storage: the only crate that knows SQL.
//!
//! [`Store`] is the one storage interface. Behind it, SQLite (the embedded
//! default) and PostgreSQL (scale-out) run the same queries through sqlx's
//! Any driver; what differs between them (pragmas, migrations, how writes
//! are serialised) is confined to [`db`]. Evidence files live in the
//! content-addressed [`BlobStore`].
//!
//! Invariants:
//! - Every write is one transaction that also appends its ledger entries
//!   (see [`ledger`]); a caller hears back only after the commit.
//! - Ledger sequence numbers are gap-free per organisation: the first thing
//!   a write does is lock its organisation's ledger head, which also
//!   serialises that organisation's writes on PostgreSQL.
//! - Reads never see half a write.

mod auth;
pub mod backup;
mod blobs;
mod bundle;
pub mod clock;
mod components;
mod db;
mod environments;
mod error;
mod evaluation;
mod evidence;
mod facts;
mod flows;
pub mod interval_tree;
pub mod ledger;
mod migrations;
mod notifications;
mod operations;
mod policies;
mod repos;
mod runtime;
mod sessions;
mod timeline;
mod tree;
mod util;
mod verify;

pub use auth::{NewApiKey, Principal};
pub use blobs::{BlobStore, StoredBlob};
pub use bundle::{BundlePlan, BundleRequest};
pub use db::Backend;
pub use environments::NewEnvironment;
pub use error::{StoreError, StoreResult};
pub use evaluation::{InProcessRego, Judgement, RegoRunner};
pub use evidence::{AttestationBinding, NewAttestation, NewEvidence};
pub use flows::{NewTrail, TrailData};
pub use notifications::{DueDelivery, Outcome};
pub use operations::Operations;
pub use policies::AttachedPolicy;
pub use policies::NewPolicy;
pub use runtime::{NewReport, ReportStored, RunningArtifact, StoredEvent, StoredSnapshot};
pub use sessions::Session;
pub use timeline::StoredTimeline;
pub use tree::{StoredCheckpoint, TreeHead, Unpublished};

use std::collections::HashMap;
use std::sync::Arc;

/// The storage interface: organisations, accounts, flows, trails,
/// artifacts, attestations, attestation types, evidence references and the
/// ledger, over SQLite or PostgreSQL.
#[derive(Clone)]
pub struct Store {
    db: Arc<db::Db>,
    /// Notified after writes that may have enqueued deliveries.
    outbox: Arc<tokio::sync::Notify>,
    /// Runs environments' Rego policies (the server's sandbox).
    rego: evaluation::Runner,
    /// One judgement of an environment at a time, by environment id.
    judging: Arc<std::sync::Mutex<HashMap<i64, Arc<tokio::sync::Mutex<()>>>>>,
}

impl Store {
    /// Opens (and migrates) the database at `url`: `sqlite://PATH` or
    /// `postgres://...`.
    pub async fn open(url: &str) -> StoreResult<Self> {
        let db = db::Db::open(url).await?;
        let store = Store {
            outbox: db.committed.clone(),
            db: Arc::new(db),
            rego: Arc::new(InProcessRego),
            judging: Default::default(),
        };
        store.build_missing_trees().await?;
        Ok(store)
    }

    /// This store with `runner` running environments' Rego policies. The
    /// default runs them in this process, which suits tools and tests; a
    /// server hands its tenants' policies to its sandbox.
    pub fn with_rego(mut self, runner: Arc<dyn RegoRunner>) -> Self {
        self.rego = runner;
        self
    }

    /// A write that may mark environments for judgement, then their
    /// judgement (see `evaluation.rs`): the caller hears back once both
    /// are done, so it sees the consequences of its own change.
    pub(crate) async fn write_judged<T, F>(&self, org_id: i64, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(
                &'c mut sqlx::AnyConnection,
            ) -> futures::future::BoxFuture<'c, StoreResult<T>>
            + Send
            + 'static,
    {
        let before = self.ledger_head(org_id).await?;
        let v = self.db.write(f).await?;
        self.settle(org_id, before).await;
        Ok(v)
    }

    /// The size of an organisation's ledger now: writes after this mark
    /// environments with a larger number.
    pub(crate) async fn ledger_head(&self, org_id: i64) -> StoreResult<i64> {
        use sqlx::Row;
        Ok(
            sqlx::query("SELECT size FROM ledger_heads WHERE org_id = $1")
                .bind(org_id)
                .fetch_one(&self.db.read)
                .await?
                .try_get(0)?,
        )
    }

    pub fn backend(&self) -> Backend {
        self.db.backend
    }

    /// Whether no organisation exists yet (before the first start's
    /// bootstrap).
    pub async fn is_empty(&self) -> StoreResult<bool> {
        use sqlx::Row;
        let n: i64 = sqlx::query("SELECT COUNT(*) FROM orgs")
            .fetch_one(&self.db.read)
            .await?
            .try_get(0)?;
        Ok(n == 0)
    }

    /// A cheap query that fails when the database cannot be reached.
    pub async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.db.read).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.db.close().await;
    }
}
