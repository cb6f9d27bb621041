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
mod blobs;
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
mod notifications;
mod policies;
mod runtime;
mod util;

pub use auth::{NewApiKey, Principal};
pub use blobs::{BlobStore, StoredBlob};
pub use db::Backend;
pub use environments::NewEnvironment;
pub use error::{StoreError, StoreResult};
pub use evaluation::Judgement;
pub use evidence::{AttestationBinding, NewAttestation, NewEvidence};
pub use flows::{NewTrail, TrailData};
pub use notifications::{DueDelivery, Outcome};
pub use policies::NewPolicy;
pub use runtime::{NewReport, ReportStored, RunningArtifact, StoredEvent, StoredSnapshot};

use std::sync::Arc;

/// The storage interface: organisations, accounts, flows, trails,
/// artifacts, attestations, attestation types, evidence references and the
/// ledger, over SQLite or PostgreSQL.
#[derive(Clone)]
pub struct Store {
    db: Arc<db::Db>,
    /// Notified after writes that may have enqueued deliveries.
    outbox: Arc<tokio::sync::Notify>,
}

impl Store {
    /// Opens (and migrates) the database at `url`: `sqlite://PATH` or
    /// `postgres://...`.
    pub async fn open(url: &str) -> StoreResult<Self> {
        let db = db::Db::open(url).await?;
        Ok(Store {
            outbox: db.committed.clone(),
            db: Arc::new(db),
        })
    }

    pub fn backend(&self) -> Backend {
        self.db.backend
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
