//! What ran in an environment over a window of time: the runs (intervals)
//! that overlap it and the snapshots taken in it, for the timeline the web
//! UI draws and `/environments/{env}/timeline` answers.
//!
//! A run overlaps the window [from, to] when it was running at `from` (a
//! stab of the interval tree at the snapshot current then) or began in a
//! snapshot taken inside the window (`env_intervals_by_start`): two index
//! ranges, whatever the length of the history.

use custody_api::{RuntimeOccurrence, SnapshotTick};
use sqlx::AnyConnection;
use sqlx::Row;

use crate::environments::{EnvRow, env_row, members};
use crate::interval_tree::{OPEN, path, sql_list};
use crate::{Store, StoreResult};

/// The runs and snapshots of a window; either list stops at its limit.
#[derive(Debug, Clone, Default)]
pub struct StoredTimeline {
    pub runs: Vec<RuntimeOccurrence>,
    pub snapshots: Vec<SnapshotTick>,
    /// More runs overlap the window than were read.
    pub runs_truncated: bool,
    /// More snapshots were taken in it than were read.
    pub snapshots_truncated: bool,
}

impl Store {
    /// What ran in `env` (for a logical one, in its members) between
    /// `from` and `to` (ms), at most `limit` runs and `limit` snapshots
    /// per environment.
    pub async fn timeline(
        &self,
        org_id: i64,
        env: &str,
        from: i64,
        to: i64,
        limit: u32,
    ) -> StoreResult<StoredTimeline> {
        let mut c = self.db.read.acquire().await?;
        let e = env_row(&mut c, org_id, env).await?;
        let envs = if e.kind.is_logical() {
            members(&mut c, e.id).await?
        } else {
            vec![e]
        };
        let mut out = StoredTimeline::default();
        for m in &envs {
            window(&mut c, m, from, to, limit, &mut out).await?;
        }
        out.runs.sort_by(|a, b| {
            (a.from, &a.name, &a.environment).cmp(&(b.from, &b.name, &b.environment))
        });
        out.snapshots.sort_by_key(|s| s.timestamp);
        Ok(out)
    }
}

async fn window(
    c: &mut AnyConnection,
    e: &EnvRow,
    from: i64,
    to: i64,
    limit: u32,
    out: &mut StoredTimeline,
) -> StoreResult<()> {
    // The snapshot current at `from`, and the last one taken by `to`.
    let at = |t: i64| {
        sqlx::query(
            "SELECT idx FROM env_snapshots WHERE env_id = $1 AND ts <= $2 ORDER BY ts DESC, idx DESC LIMIT 1",
        )
        .bind(e.id)
        .bind(t)
    };
    let first: i64 = match at(from).fetch_optional(&mut *c).await? {
        Some(r) => r.try_get(0)?,
        None => 0,
    };
    let last: i64 = match at(to).fetch_optional(&mut *c).await? {
        Some(r) => r.try_get(0)?,
        None => 0,
    };
    let select = "SELECT a.name, a.fingerprint, i.instances, i.started_at, i.ended_at, i.first_idx, i.last_idx \
                  FROM env_intervals i JOIN runtime_artifacts a ON a.id = i.artifact_id WHERE i.env_id = $1 AND";
    let limit = i64::from(limit);
    let mut sql = String::new();
    if first > 0 {
        let (left, right) = path(first);
        sql = format!(
            "{select} i.node IN ({}) AND i.last_idx >= {first} \
             UNION ALL {select} i.node IN ({}) AND i.first_idx <= {first} \
             UNION ALL {select} i.node = {first} UNION ALL ",
            sql_list(&left),
            sql_list(&right)
        );
    }
    sql.push_str(&format!(
        "SELECT * FROM ({select} i.first_idx > {first} AND i.first_idx <= {last} \
         ORDER BY i.first_idx LIMIT {limit}) later",
        limit = limit + 1
    ));
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(e.id)
        .fetch_all(&mut *c)
        .await?;
    let mut runs = rows
        .iter()
        .map(|r| {
            let last_idx: i64 = r.try_get(6)?;
            Ok(RuntimeOccurrence {
                environment: e.name.clone(),
                name: r.try_get(0)?,
                fingerprint: hex::encode(r.try_get::<Vec<u8>, _>(1)?),
                instances: u32::try_from(r.try_get::<i64, _>(2)?.max(0)).unwrap_or(u32::MAX),
                from: r.try_get(3)?,
                to: r.try_get(4)?,
                first_snapshot: r.try_get::<i64, _>(5)?.max(0) as u64,
                last_snapshot: (last_idx != OPEN).then_some(last_idx.max(0) as u64),
            })
        })
        .collect::<StoreResult<Vec<_>>>()?;
    // A run that ended exactly at `from` did not overlap the window.
    runs.retain(|r| r.to.is_none_or(|t| t > from));
    if runs.len() as i64 > limit {
        runs.truncate(limit as usize);
        out.runs_truncated = true;
    }
    out.runs.extend(runs);
    let ticks = sqlx::query(
        "SELECT idx, ts, changes FROM env_snapshots WHERE env_id = $1 AND ts >= $2 AND ts <= $3 \
         ORDER BY ts, idx LIMIT $4",
    )
    .bind(e.id)
    .bind(from)
    .bind(to)
    .bind(limit + 1)
    .fetch_all(&mut *c)
    .await?;
    for (n, r) in ticks.iter().enumerate() {
        if n as i64 == limit {
            out.snapshots_truncated = true;
            break;
        }
        out.snapshots.push(SnapshotTick {
            environment: e.name.clone(),
            index: r.try_get::<i64, _>(0)?.max(0) as u64,
            timestamp: r.try_get(1)?,
            changes: r.try_get::<i64, _>(2)?.max(0) as u64,
        });
    }
    Ok(())
}
