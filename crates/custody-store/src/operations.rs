//! What an operator watches, read when `/metrics` is scraped: each
//! organisation's ledger size, the notification outbox's backlog, and how
//! long ago each environment was last reported. A handful of aggregate
//! queries over indexed columns, whatever the history's length.

use sqlx::Row;

use crate::{Store, StoreResult};

#[derive(Debug, Clone, Default)]
pub struct Operations {
    /// (organisation, ledger entries).
    pub ledgers: Vec<(String, i64)>,
    /// Notifications waiting to be delivered, and when the oldest was made.
    pub outbox_pending: i64,
    pub outbox_oldest: Option<i64>,
    /// Notifications whose retries ran out.
    pub outbox_failed: i64,
    /// (organisation, environment, last report's time) of every
    /// environment not archived that has been reported.
    pub last_reports: Vec<(String, String, i64)>,
}

impl Store {
    pub async fn operations(&self) -> StoreResult<Operations> {
        let mut c = self.db.read.acquire().await?;
        let ledgers = sqlx::query(
            "SELECT o.name, h.size FROM ledger_heads h JOIN orgs o ON o.id = h.org_id ORDER BY o.name",
        )
        .fetch_all(&mut *c)
        .await?
        .iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect::<StoreResult<Vec<_>>>()?;
        let pending =
            sqlx::query("SELECT COUNT(*), MIN(created_at) FROM outbox WHERE state = 'pending'")
                .fetch_one(&mut *c)
                .await?;
        let failed: i64 = sqlx::query("SELECT COUNT(*) FROM outbox WHERE state = 'failed'")
            .fetch_one(&mut *c)
            .await?
            .try_get(0)?;
        let last_reports = sqlx::query(
            "SELECT o.name, e.name, e.last_reported_at FROM environments e JOIN orgs o ON o.id = e.org_id \
             WHERE e.archived_at IS NULL AND e.last_reported_at IS NOT NULL ORDER BY o.name, e.name",
        )
        .fetch_all(&mut *c)
        .await?
        .iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
        .collect::<StoreResult<Vec<_>>>()?;
        Ok(Operations {
            ledgers,
            outbox_pending: pending.try_get(0)?,
            outbox_oldest: pending.try_get(1)?,
            outbox_failed: failed,
            last_reports,
        })
    }
}
