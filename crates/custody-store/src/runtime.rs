//! What ran: reports folded into snapshots and intervals, and the queries
//! over them ("what ran at T", the change log, "where has this run").
//! The table design is explained in the `0003_environments` migration; the
//! tree arithmetic is in [`crate::interval_tree`].

use std::collections::{BTreeMap, HashMap};

use custody_api::{Page, RuntimeOccurrence, SnapshotSummary};
use custody_ledger::EntryKind;
use custody_runtime::{ArtifactKey, At, Change, Counts, EnvironmentKind, Instance, RunningSet};
use serde_json::json;
use sqlx::AnyConnection;
use sqlx::Row;

use crate::environments::{EnvRow, Seen, env_row, members, observe};
use crate::evaluation::{self, Cause};
use crate::interval_tree::{OPEN, fork, path, path_inclusive, sql_list};
use crate::ledger::LedgerWriter;
use crate::util::{Binds, from_json, to_json};
use crate::{Principal, Store, StoreError, StoreResult};

/// A checked report, ready to store.
#[derive(Debug, Clone)]
pub struct NewReport {
    pub kind: EnvironmentKind,
    pub running: RunningSet,
    /// 0 for a one-shot report.
    pub interval_ms: i64,
    pub warnings: Vec<String>,
    /// What the reporter could not observe (a partial report).
    pub unobserved: Vec<custody_runtime::Unobserved>,
    pub reporter: Option<String>,
    /// When it was received (ms); the server's clock.
    pub received_at: i64,
}

/// What a report did.
#[derive(Debug, Clone)]
pub struct ReportStored {
    pub changed: bool,
    pub snapshot: u64,
    pub changes: Vec<Change>,
    pub artifacts: u64,
    pub instances: u64,
    /// What the report said runs, handed back so the caller need not keep
    /// a copy of it.
    pub running: RunningSet,
    /// The evaluation a new snapshot caused, when policies judge the
    /// environment.
    pub compliance: Option<custody_api::EnvironmentCompliance>,
    /// The organisation's ledger size before this write: the marks it set
    /// are above it.
    ledger_before: i64,
}

/// An artifact running in a snapshot.
#[derive(Debug, Clone)]
pub struct RunningArtifact {
    pub key: ArtifactKey,
    pub instances: u32,
    pub detail: Vec<Instance>,
    pub since_snapshot: u64,
    pub running_since: i64,
    /// Which environment it runs in (differs from the snapshot's for a
    /// logical environment).
    pub environment: String,
}

#[derive(Debug, Clone)]
pub struct StoredSnapshot {
    pub environment: String,
    pub kind: EnvironmentKind,
    /// 0 when there is no snapshot at or before the point asked for.
    pub index: u64,
    pub timestamp: i64,
    pub replaced_at: Option<i64>,
    pub running: Vec<RunningArtifact>,
    /// What changed in this snapshot (empty for a logical environment).
    pub changes: Vec<Change>,
    /// For a logical environment: the member snapshots it joins.
    pub members: Vec<(String, u64)>,
    /// The latest evaluation of this snapshot against the environment's
    /// policies; none when no policy judged it.
    pub compliance: Option<custody_api::EnvironmentCompliance>,
    /// Who sent the report that made it.
    pub reported_by: Option<custody_ledger::Actor>,
    /// What that report could not observe.
    pub unobserved: Vec<custody_runtime::Unobserved>,
}

#[derive(Debug, Clone)]
pub struct StoredEvent {
    pub environment: String,
    pub snapshot: u64,
    pub timestamp: i64,
    pub change: Change,
    pub instances: Vec<Instance>,
    /// Who sent the report that recorded the change.
    pub reported_by: Option<custody_ledger::Actor>,
}

/// Open intervals of an environment: what runs now.
pub(crate) async fn open_intervals(
    c: &mut AnyConnection,
    env_id: i64,
) -> StoreResult<Vec<OpenInterval>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT i.id, a.name, a.fingerprint, i.instances, i.first_idx FROM env_intervals i \
         JOIN runtime_artifacts a ON a.id = i.artifact_id \
         WHERE i.env_id = $1 AND i.node IN ({}) AND i.last_idx = {OPEN}",
        sql_list(&path_inclusive(OPEN))
    )))
    .bind(env_id)
    .fetch_all(&mut *c)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(OpenInterval {
                id: r.try_get(0)?,
                key: ArtifactKey {
                    name: r.try_get(1)?,
                    fingerprint: fp_hex(r, 2)?,
                },
                instances: count(r.try_get(3)?),
                first_idx: r.try_get(4)?,
            })
        })
        .collect()
}

pub(crate) struct OpenInterval {
    id: i64,
    pub key: ArtifactKey,
    pub instances: u32,
    first_idx: i64,
}

fn count(v: i64) -> u32 {
    u32::try_from(v.max(0)).unwrap_or(u32::MAX)
}

/// Ids of the runtime artifacts for `keys`, creating those not seen before.
/// The caller holds the organisation's ledger lock, so no other write can
/// add the same artifact in between.
async fn artifact_ids(
    c: &mut AnyConnection,
    org_id: i64,
    keys: &[&ArtifactKey],
) -> StoreResult<HashMap<ArtifactKey, i64>> {
    let mut out = HashMap::with_capacity(keys.len());
    for chunk in keys.chunks(300) {
        let mut b = Binds::new(c);
        let first = b.next();
        let list: Vec<String> = chunk.iter().map(|_| b.next()).collect();
        let sql = format!(
            "SELECT id, fingerprint, name FROM runtime_artifacts WHERE org_id = {first} AND fingerprint IN ({})",
            list.join(",")
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(org_id);
        for k in chunk {
            q = q.bind(fp_bytes(&k.fingerprint)?);
        }
        let wanted: std::collections::HashSet<&ArtifactKey> = chunk.iter().copied().collect();
        for r in q.fetch_all(&mut *c).await? {
            let key = ArtifactKey {
                fingerprint: fp_hex(&r, 1)?,
                name: r.try_get(2)?,
            };
            if wanted.contains(&key) {
                out.insert(key, r.try_get(0)?);
            }
        }
        let missing: Vec<&ArtifactKey> = chunk
            .iter()
            .copied()
            .filter(|k| !out.contains_key(*k))
            .collect();
        if missing.is_empty() {
            continue;
        }
        let mut b = Binds::new(c);
        let mut sql =
            String::from("INSERT INTO runtime_artifacts (org_id, fingerprint, name) VALUES ");
        for (i, _) in missing.iter().enumerate() {
            if i > 0 {
                sql.push(',');
            }
            sql.push_str(&format!("({}, {}, {})", b.next(), b.next(), b.next()));
        }
        sql.push_str(" RETURNING id, fingerprint, name");
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for k in &missing {
            q = q.bind(org_id).bind(fp_bytes(&k.fingerprint)?).bind(&k.name);
        }
        for r in q.fetch_all(&mut *c).await? {
            let key = ArtifactKey {
                fingerprint: fp_hex(&r, 1)?,
                name: r.try_get(2)?,
            };
            out.insert(key, r.try_get(0)?);
        }
    }
    Ok(out)
}

/// Fingerprints are stored as their 32 bytes (empty when unknown).
fn fp_bytes(hex_fp: &str) -> StoreResult<Vec<u8>> {
    hex::decode(hex_fp).map_err(|e| StoreError::Corrupt(format!("fingerprint '{hex_fp}': {e}")))
}

/// A run as the queries of where things ran select it: environment,
/// name, fingerprint, instances, start, end, first and last snapshot.
fn occurrence(r: &sqlx::any::AnyRow) -> StoreResult<RuntimeOccurrence> {
    let last: i64 = r.try_get(7)?;
    Ok(RuntimeOccurrence {
        environment: r.try_get(0)?,
        name: r.try_get(1)?,
        fingerprint: fp_hex(r, 2)?,
        instances: count(r.try_get(3)?),
        from: r.try_get(4)?,
        to: r.try_get(5)?,
        first_snapshot: r.try_get::<i64, _>(6)?.max(0) as u64,
        last_snapshot: (last != OPEN).then_some(last.max(0) as u64),
    })
}

fn fp_hex(r: &sqlx::any::AnyRow, i: usize) -> StoreResult<String> {
    Ok(hex::encode(r.try_get::<Vec<u8>, _>(i)?))
}

/// The range of stored fingerprints that a hex prefix (of any length)
/// covers: [low, high), high absent when nothing above bounds it.
fn prefix_range(prefix: &str) -> StoreResult<(Vec<u8>, Option<Vec<u8>>)> {
    let pad = |c: char| {
        let mut p = prefix.to_string();
        if p.len() % 2 == 1 {
            p.push(c);
        }
        p
    };
    let low = fp_bytes(&pad('0'))?;
    let mut high = fp_bytes(&pad('f'))?;
    // The smallest byte string above every string starting with `high`.
    while let Some(last) = high.pop() {
        if last < 0xff {
            high.push(last + 1);
            return Ok((low, Some(high)));
        }
    }
    Ok((low, None))
}

/// Runs the statement with each chunk of `rows`, inserting intervals.
async fn insert_intervals(
    c: &mut AnyConnection,
    rows: &[(i64, i64, u32, i64, i64, String)],
) -> StoreResult<()> {
    // (env_id, artifact_id, instances, first_idx, started_at, detail)
    for chunk in rows.chunks(100) {
        let mut b = Binds::new(c);
        let mut sql = String::from(
            "INSERT INTO env_intervals (env_id, artifact_id, instances, first_idx, last_idx, node, started_at, detail) VALUES ",
        );
        for (i, r) in chunk.iter().enumerate() {
            if i > 0 {
                sql.push(',');
            }
            // Integers computed here go in as literals; text is bound.
            sql.push_str(&format!(
                "({}, {}, {}, {}, {OPEN}, {}, {}, {})",
                r.0,
                r.1,
                r.2,
                r.3,
                fork(r.3, OPEN),
                r.4,
                b.next()
            ));
        }
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for r in chunk {
            q = q.bind(&r.5);
        }
        q.execute(&mut *c).await?;
    }
    Ok(())
}

/// Closes intervals whose last snapshot is `last`: they are filed anew
/// under the fork node of their now-finite span.
async fn close_intervals(
    c: &mut AnyConnection,
    closing: &[(i64, i64)],
    last: i64,
    ended_at: i64,
) -> StoreResult<()> {
    // (interval id, first_idx)
    for chunk in closing.chunks(200) {
        let cases: String = chunk
            .iter()
            .map(|(id, first)| format!(" WHEN {id} THEN {}", fork(*first, last)))
            .collect();
        let ids: Vec<i64> = chunk.iter().map(|(id, _)| *id).collect();
        let sql = format!(
            "UPDATE env_intervals SET last_idx = {last}, ended_at = {ended_at}, node = CASE id{cases} END \
             WHERE id IN ({})",
            sql_list(&ids)
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&mut *c)
            .await?;
    }
    Ok(())
}

/// The intervals that contain snapshot `q` of an environment.
async fn running_at(
    c: &mut AnyConnection,
    env: &EnvRow,
    q: i64,
) -> StoreResult<Vec<RunningArtifact>> {
    let (left, right) = path(q);
    let select = "SELECT a.name, a.fingerprint, i.instances, i.detail, i.first_idx, i.started_at \
                  FROM env_intervals i JOIN runtime_artifacts a ON a.id = i.artifact_id WHERE i.env_id = $1 AND";
    let sql = format!(
        "{select} i.node IN ({}) AND i.last_idx >= {q} \
         UNION ALL {select} i.node IN ({}) AND i.first_idx <= {q} \
         UNION ALL {select} i.node = {q}",
        sql_list(&left),
        sql_list(&right)
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(env.id)
        .fetch_all(&mut *c)
        .await?;
    let mut out = rows
        .iter()
        .map(|r| {
            let detail: String = r.try_get(3)?;
            Ok(RunningArtifact {
                key: ArtifactKey {
                    name: r.try_get(0)?,
                    fingerprint: fp_hex(r, 1)?,
                },
                instances: count(r.try_get(2)?),
                detail: from_json("interval instances", &detail)?,
                since_snapshot: r.try_get::<i64, _>(4)?.max(0) as u64,
                running_since: r.try_get(5)?,
                environment: env.name.clone(),
            })
        })
        .collect::<StoreResult<Vec<_>>>()?;
    out.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(out)
}

/// What changed at snapshot `n`: intervals that begin at `n` and those
/// whose last snapshot is `n - 1`, paired by artifact; each with the
/// instances of the interval that begins (or, for a stop, that ends).
pub(crate) async fn changes_at(
    c: &mut AnyConnection,
    env_id: i64,
    n: i64,
) -> StoreResult<Vec<(Change, Vec<Instance>)>> {
    let mut by_key: BTreeMap<ArtifactKey, (u32, u32, Option<String>)> = BTreeMap::new();
    let select = "SELECT a.name, a.fingerprint, i.instances, i.detail FROM env_intervals i \
                  JOIN runtime_artifacts a ON a.id = i.artifact_id WHERE i.env_id = $1 AND";
    let key = |r: &sqlx::any::AnyRow| -> StoreResult<ArtifactKey> {
        Ok(ArtifactKey {
            name: r.try_get(0)?,
            fingerprint: fp_hex(r, 1)?,
        })
    };
    let started = sqlx::query(sqlx::AssertSqlSafe(format!(
        "{select} i.node IN ({}) AND i.first_idx = {n}",
        sql_list(&path_inclusive(n))
    )))
    .bind(env_id)
    .fetch_all(&mut *c)
    .await?;
    for r in &started {
        let e = by_key.entry(key(r)?).or_default();
        e.1 = count(r.try_get(2)?);
        e.2 = Some(r.try_get(3)?);
    }
    if n > 1 {
        let ended = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{select} i.node IN ({}) AND i.last_idx = {}",
            sql_list(&path_inclusive(n - 1)),
            n - 1
        )))
        .bind(env_id)
        .fetch_all(&mut *c)
        .await?;
        for r in &ended {
            let e = by_key.entry(key(r)?).or_default();
            e.0 = count(r.try_get(2)?);
            if e.2.is_none() {
                e.2 = Some(r.try_get(3)?);
            }
        }
    }
    by_key
        .into_iter()
        .map(|(key, (was, now, detail))| {
            let instances = match detail {
                Some(d) => from_json("interval instances", &d)?,
                None => vec![],
            };
            Ok((Change { key, was, now }, instances))
        })
        .collect()
}

/// The stored actor of a snapshot (absent on snapshots older than the
/// column).
fn actor_of(text: Option<String>) -> StoreResult<Option<custody_ledger::Actor>> {
    text.map(|t| from_json("snapshot actor", &t)).transpose()
}

/// When a snapshot was taken, when the next replaced it, who reported it,
/// and what that report could not observe.
struct SnapshotTime {
    ts: i64,
    replaced_at: Option<i64>,
    reported_by: Option<custody_ledger::Actor>,
    unobserved: Vec<custody_runtime::Unobserved>,
}

async fn snapshot_time(
    c: &mut AnyConnection,
    env_id: i64,
    idx: i64,
) -> StoreResult<Option<SnapshotTime>> {
    let rows = sqlx::query(
        "SELECT idx, ts, actor, unobserved FROM env_snapshots WHERE env_id = $1 AND idx >= $2 ORDER BY idx LIMIT 2",
    )
    .bind(env_id)
    .bind(idx)
    .fetch_all(&mut *c)
    .await?;
    let mut it = rows.iter();
    let Some(first) = it.next() else {
        return Ok(None);
    };
    if first.try_get::<i64, _>(0)? != idx {
        return Ok(None);
    }
    let next = match it.next() {
        Some(r) => Some(r.try_get::<i64, _>(1)?),
        None => None,
    };
    let unobserved: Option<String> = first.try_get(3)?;
    Ok(Some(SnapshotTime {
        ts: first.try_get(1)?,
        replaced_at: next,
        reported_by: actor_of(first.try_get(2)?)?,
        unobserved: match unobserved {
            Some(u) => from_json("snapshot unobserved", &u)?,
            None => vec![],
        },
    }))
}

/// The number of the snapshot current at `t` (0 if none was yet).
async fn index_at(c: &mut AnyConnection, env_id: i64, t: i64) -> StoreResult<i64> {
    let r = sqlx::query(
        "SELECT idx FROM env_snapshots WHERE env_id = $1 AND ts <= $2 ORDER BY ts DESC, idx DESC LIMIT 1",
    )
    .bind(env_id)
    .bind(t)
    .fetch_optional(&mut *c)
    .await?;
    Ok(match r {
        Some(r) => r.try_get(0)?,
        None => 0,
    })
}

/// The number `at` names among `total` snapshots (0 when there are none
/// yet), or None for a time, which needs a lookup.
fn numbered(at: At, total: i64, env: &str, expr: &str) -> StoreResult<Option<i64>> {
    let not_found = || {
        StoreError::Missing(match total {
            0 => {
                format!("snapshot '{expr}' does not exist: environment '{env}' has no snapshot yet")
            }
            1 => format!(
                "snapshot '{expr}' does not exist: environment '{env}' has one snapshot, #1"
            ),
            n => format!(
                "snapshot '{expr}' does not exist: environment '{env}' has {n} snapshots, #1 to #{n}"
            ),
        })
    };
    let n = match at {
        At::Time(_) => return Ok(None),
        At::Latest => total,
        At::Index(n) => i64::try_from(n).unwrap_or(i64::MAX),
        At::Behind(b) => total.saturating_sub(i64::try_from(b).unwrap_or(i64::MAX)),
    };
    // `~N` reaching before the first snapshot names nothing; `ENV~0` of an
    // environment never reported to is its (empty) latest.
    if n > total || n < 0 || (n == 0 && total > 0) {
        return Err(not_found());
    }
    Ok(Some(n))
}

impl Store {
    /// Records a report. If it changes what runs (artifacts or instance
    /// counts), the environment gets a new snapshot, intervals are closed
    /// and opened, and the ledger gets a `snapshot` entry with the changes;
    /// otherwise only the observation is extended and the ledger gets a
    /// `heartbeat` entry.
    pub async fn report_environment(
        &self,
        p: &Principal,
        env: &str,
        report: NewReport,
    ) -> StoreResult<ReportStored> {
        let (org_id, org, env_name) = (p.org_id, p.org.clone(), env.to_string());
        let actor = p.actor();
        let mut stored = self
            .db
            .write(move |c| {
                let env = env_name;
                Box::pin(async move {
                    let mut ledger = LedgerWriter::lock(c, org_id, &org, &actor).await?;
                    let ledger_before = ledger.size();
                    let e = env_row(c, org_id, &env).await?;
                    if e.kind.is_logical() {
                        return Err(StoreError::Unprocessable(format!(
                            "environment '{env}' is logical: it shows its members' snapshots and cannot be reported to"
                        )));
                    }
                    if e.kind != report.kind {
                        return Err(StoreError::Unprocessable(format!(
                            "environment '{env}' is of type {}; a {} reporter cannot report to it",
                            e.kind, report.kind
                        )));
                    }
                    if e.archived_at.is_some() {
                        return Err(StoreError::Conflict(format!(
                            "environment '{env}' is archived and takes no reports"
                        )));
                    }
                    // Snapshot times never go backwards, whatever the clock does.
                    let now = report.received_at.max(e.last_changed_at.map_or(0, |t| t + 1));
                    let digest = report.running.digest();
                    let artifacts = report.running.len() as u64;
                    let instances = report.running.instance_count();
                    observe(
                        c,
                        &e,
                        Seen {
                            now,
                            interval_ms: report.interval_ms,
                            reporter: report.reporter.as_deref(),
                            warnings: &report.warnings,
                            unobserved: &report.unobserved,
                        },
                    )
                    .await?;

                    if e.latest_index > 0 && e.counts_digest.as_deref() == Some(digest.as_str()) {
                        ledger
                            .append(
                                c,
                                EntryKind::Heartbeat,
                                &json!({
                                    "environment": env,
                                    "snapshot": e.latest_index,
                                    "counts_sha256": digest,
                                    "interval_ms": report.interval_ms,
                                    "reporter": report.reporter,
                                    "warnings": report.warnings,
                                    "unobserved": report.unobserved,
                                }),
                            )
                            .await?;
                        return Ok(ReportStored {
                            changed: false,
                            snapshot: e.latest_index as u64,
                            changes: vec![],
                            artifacts,
                            instances,
                            running: report.running,
                            compliance: None,
                            ledger_before,
                        });
                    }

                    let open = open_intervals(c, e.id).await?;
                    let old = Counts(open.iter().map(|o| (o.key.clone(), o.instances)).collect());
                    let new = report.running.counts();
                    let changes = old.changes_to(&new);
                    let n = e.latest_index + 1;

                    let open_by_key: HashMap<&ArtifactKey, &OpenInterval> =
                        open.iter().map(|o| (&o.key, o)).collect();
                    let closing: Vec<(i64, i64)> = changes
                        .iter()
                        .filter(|ch| ch.was > 0)
                        .filter_map(|ch| open_by_key.get(&ch.key))
                        .map(|o| (o.id, o.first_idx))
                        .collect();
                    close_intervals(c, &closing, n - 1, now).await?;

                    let starting: Vec<&ArtifactKey> =
                        changes.iter().filter(|ch| ch.now > 0).map(|ch| &ch.key).collect();
                    let ids = artifact_ids(c, org_id, &starting).await?;
                    let mut rows = Vec::with_capacity(starting.len());
                    for key in &starting {
                        let running = report.running.get(key).ok_or_else(|| {
                            StoreError::Corrupt("a started artifact is not in the report".into())
                        })?;
                        let id = *ids.get(*key).ok_or_else(|| {
                            StoreError::Corrupt(format!("no id for runtime artifact '{}'", key.name))
                        })?;
                        rows.push((e.id, id, running.count(), n, now, to_json(&running.instances)?));
                    }
                    insert_intervals(c, &rows).await?;

                    sqlx::query(
                        "INSERT INTO env_snapshots (env_id, idx, ts, artifacts, instances, changes, actor, unobserved, changes_upto) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $6 + COALESCE((SELECT p.changes_upto FROM env_snapshots p \
                           WHERE p.env_id = $1 AND p.idx = $2 - 1), 0))",
                    )
                    .bind(e.id)
                    .bind(n)
                    .bind(now)
                    .bind(artifacts as i64)
                    .bind(instances as i64)
                    .bind(changes.len() as i64)
                    .bind(to_json(&actor)?)
                    .bind(if report.unobserved.is_empty() {
                        None
                    } else {
                        Some(to_json(&report.unobserved)?)
                    })
                    .execute(&mut *c)
                    .await?;
                    sqlx::query(
                        "UPDATE environments SET latest_index = $2, counts_digest = $3, last_changed_at = $4 WHERE id = $1",
                    )
                    .bind(e.id)
                    .bind(n)
                    .bind(&digest)
                    .bind(now)
                    .execute(&mut *c)
                    .await?;
                    let recorded: Vec<_> = changes
                        .iter()
                        .map(|ch| {
                            json!({
                                "name": ch.key.name,
                                "fingerprint": ch.key.fingerprint,
                                "was": ch.was,
                                "now": ch.now,
                            })
                        })
                        .collect();
                    ledger
                        .append(
                            c,
                            EntryKind::Snapshot,
                            &json!({
                                "environment": env,
                                "snapshot": n,
                                "counts_sha256": digest,
                                "artifacts": artifacts,
                                "instances": instances,
                                "changes": recorded,
                                "interval_ms": report.interval_ms,
                                "reporter": report.reporter,
                                "warnings": report.warnings,
                                "unobserved": report.unobserved,
                            }),
                        )
                        .await?;
                    evaluation::mark(c, &ledger, &[e.id], Cause::Snapshot).await?;
                    let taken = crate::notifications::SnapshotTaken {
                        org_id,
                        org: &org,
                        env_id: e.id,
                        env: &env,
                        snapshot: n,
                        at: now,
                    };
                    crate::notifications::snapshot_events(c, &taken, &changes).await?;
                    Ok(ReportStored {
                        changed: true,
                        snapshot: n as u64,
                        changes,
                        artifacts,
                        instances,
                        running: report.running,
                        compliance: None,
                        ledger_before,
                    })
                })
            })
            .await?;
        if stored.changed {
            let name = env.to_string();
            stored.compliance = self
                .settle(p.org_id, stored.ledger_before)
                .await
                .into_iter()
                .map(|e| e.now)
                .find(|c| c.environment == name && c.snapshot == stored.snapshot);
            if stored.compliance.is_none() {
                // Judged by a concurrent settle of the same environment.
                stored.compliance = self
                    .latest_evaluation(p.org_id, env)
                    .await?
                    .filter(|c| c.snapshot == stored.snapshot);
            }
        }
        Ok(stored)
    }

    /// The snapshot of `env` that `at` names. For a logical environment,
    /// the union of its members' snapshots at that point.
    pub async fn snapshot(
        &self,
        org_id: i64,
        env: &str,
        at: At,
        expr: &str,
    ) -> StoreResult<StoredSnapshot> {
        let mut c = self.db.read.acquire().await?;
        let e = env_row(&mut c, org_id, env).await?;
        if e.kind.is_logical() {
            return logical_snapshot(&mut c, &e, at, expr).await;
        }
        let idx = match (numbered(at, e.latest_index, &e.name, expr)?, at) {
            (Some(n), _) => n,
            (None, At::Time(t)) => index_at(&mut c, e.id, t).await?,
            (None, _) => 0,
        };
        physical_snapshot(&mut c, &e, idx).await
    }

    /// Snapshots numbered `from..=to`, newest first.
    pub async fn list_snapshots(
        &self,
        org_id: i64,
        env: &str,
        from: u64,
        to: u64,
        page: u32,
        per_page: u32,
    ) -> StoreResult<Page<SnapshotSummary>> {
        let mut c = self.db.read.acquire().await?;
        let e = env_row(&mut c, org_id, env).await?;
        if e.kind.is_logical() {
            return Err(StoreError::Unprocessable(format!(
                "environment '{env}' is logical: list the snapshots of its members ({})",
                members(&mut c, e.id)
                    .await?
                    .iter()
                    .map(|m| m.name.clone())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        let to = to.min(e.latest_index.max(0) as u64);
        // Numbers from a query string: checked, not cast (a u64 past
        // i64::MAX would turn negative).
        let from = i64::try_from(from).map_err(|_| {
            StoreError::Unprocessable(format!("snapshot number {from} is out of range"))
        })?;
        let to = i64::try_from(to).map_err(|_| {
            StoreError::Unprocessable(format!("snapshot number {to} is out of range"))
        })?;
        let total = if to >= from {
            (to - from + 1) as u64
        } else {
            0
        };
        let hi = to - i64::from(page.saturating_sub(1)) * i64::from(per_page);
        // One row past the page's last gives its successor's time.
        let rows = sqlx::query(
            "SELECT idx, ts, artifacts, instances, changes, actor FROM env_snapshots \
             WHERE env_id = $1 AND idx >= $2 AND idx <= $3 ORDER BY idx DESC LIMIT $4",
        )
        .bind(e.id)
        .bind(from)
        .bind(hi + 1)
        .bind(i64::from(per_page) + 1)
        .fetch_all(&mut *c)
        .await?;
        let mut items = vec![];
        let mut next_ts: Option<i64> = None;
        for r in &rows {
            let idx: i64 = r.try_get(0)?;
            let ts: i64 = r.try_get(1)?;
            if idx <= hi && items.len() < per_page as usize {
                items.push(SnapshotSummary {
                    index: idx as u64,
                    timestamp: ts,
                    replaced_at: next_ts,
                    artifacts: r.try_get::<i64, _>(2)?.max(0) as u64,
                    instances: r.try_get::<i64, _>(3)?.max(0) as u64,
                    changes: r.try_get::<i64, _>(4)?.max(0) as u64,
                    reported_by: actor_of(r.try_get(5)?)?,
                });
            }
            next_ts = Some(ts);
        }
        Ok(Page {
            items,
            page,
            per_page,
            total,
        })
    }

    /// Changes of what runs, newest first, between two times.
    pub async fn environment_events(
        &self,
        org_id: i64,
        env: &str,
        since: i64,
        until: i64,
        page: u32,
        per_page: u32,
    ) -> StoreResult<Page<StoredEvent>> {
        let mut c = self.db.read.acquire().await?;
        let e = env_row(&mut c, org_id, env).await?;
        let envs = if e.kind.is_logical() {
            members(&mut c, e.id).await?
        } else {
            vec![e]
        };
        let by_id: HashMap<i64, &EnvRow> = envs.iter().map(|m| (m.id, m)).collect();
        let skip = i64::from(page.saturating_sub(1)) * i64::from(per_page);
        let (total, rows) = match envs.as_slice() {
            [one] => page_by_count(&mut c, one.id, since, until, skip, per_page).await?,
            _ => page_by_sum(&mut c, &envs, since, until, skip, per_page).await?,
        };
        let mut items = vec![];
        for r in rows {
            if items.len() >= per_page as usize {
                break;
            }
            let PageRow {
                env_id,
                idx,
                ts,
                changes: n,
                actor,
                upto,
            } = r;
            let m = by_id.get(&env_id).ok_or_else(|| {
                StoreError::Corrupt(format!("snapshot of unknown environment {env_id}"))
            })?;
            let actor = actor_of(actor)?;
            // Changes of this snapshot that belong to earlier pages.
            let mut seen = upto - n;
            for (ch, instances) in changes_at(&mut c, env_id, idx).await? {
                seen += 1;
                if seen > skip && items.len() < per_page as usize {
                    items.push(StoredEvent {
                        environment: m.name.clone(),
                        snapshot: idx as u64,
                        timestamp: ts,
                        change: ch,
                        instances,
                        reported_by: actor.clone(),
                    });
                }
            }
        }
        Ok(Page {
            items,
            page,
            per_page,
            total: total.max(0) as u64,
        })
    }

    /// Every environment where an artifact whose fingerprint starts with
    /// `prefix` ran, with when; newest first.
    pub async fn runtime_occurrences(
        &self,
        org_id: i64,
        prefix: &str,
    ) -> StoreResult<Vec<RuntimeOccurrence>> {
        let (low, high) = prefix_range(prefix)?;
        // Two forms, so that both ends bound the index range.
        let upper = if high.is_some() {
            "AND a.fingerprint < $3"
        } else {
            ""
        };
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT e.name, a.name, a.fingerprint, i.instances, i.started_at, i.ended_at, i.first_idx, i.last_idx \
             FROM runtime_artifacts a JOIN env_intervals i ON i.artifact_id = a.id \
             JOIN environments e ON e.id = i.env_id \
             WHERE a.org_id = $1 AND a.fingerprint >= $2 {upper} \
             ORDER BY i.started_at DESC, i.id DESC LIMIT 1000"
        )))
        .bind(org_id)
        .bind(low)
        .bind(high.unwrap_or_default())
        .fetch_all(&self.db.read)
        .await?;
        rows.iter().map(occurrence).collect()
    }
}

impl Store {
    /// What ran under a name: each artifact whose reported name starts
    /// with `prefix` (an image reference, a function, a path), known or
    /// not, with its most recently recorded run, newest first; at most
    /// `limit` artifacts, the first by name. Every run of one is on its
    /// fingerprint's page.
    pub async fn runtime_by_name(
        &self,
        org_id: i64,
        prefix: &str,
        limit: u32,
    ) -> StoreResult<Vec<RuntimeOccurrence>> {
        let upper = crate::util::prefix_upper(prefix);
        // Intervals are written as reports come: the highest id of an
        // artifact's is its latest run, found in `env_intervals_by_artifact`
        // without reading its other runs (a long history has many).
        let rows = sqlx::query(
            "SELECT e.name, a.name, a.fingerprint, i.instances, i.started_at, i.ended_at, i.first_idx, i.last_idx \
             FROM (SELECT id, name, fingerprint FROM runtime_artifacts \
                   WHERE org_id = $1 AND name >= $2 AND name < $3 ORDER BY name, id LIMIT $4) a \
             JOIN env_intervals i ON i.id = (SELECT MAX(l.id) FROM env_intervals l WHERE l.artifact_id = a.id) \
             JOIN environments e ON e.id = i.env_id \
             ORDER BY i.started_at DESC, i.id DESC",
        )
        .bind(org_id)
        .bind(prefix)
        .bind(&upper)
        .bind(i64::from(limit))
        .fetch_all(&self.db.read)
        .await?;
        let runs: StoreResult<Vec<RuntimeOccurrence>> = rows.iter().map(occurrence).collect();
        Ok(runs?
            .into_iter()
            .filter(|r| r.name.starts_with(prefix))
            .collect())
    }
}

async fn physical_snapshot(
    c: &mut AnyConnection,
    e: &EnvRow,
    idx: i64,
) -> StoreResult<StoredSnapshot> {
    let empty = StoredSnapshot {
        environment: e.name.clone(),
        kind: e.kind,
        index: 0,
        timestamp: 0,
        replaced_at: None,
        running: vec![],
        changes: vec![],
        members: vec![],
        compliance: None,
        reported_by: None,
        unobserved: vec![],
    };
    if idx <= 0 {
        return Ok(empty);
    }
    let Some(SnapshotTime {
        ts,
        replaced_at,
        reported_by,
        unobserved,
    }) = snapshot_time(c, e.id, idx).await?
    else {
        return Err(StoreError::Corrupt(format!(
            "environment '{}' has no snapshot {idx}",
            e.name
        )));
    };
    let running = running_at(c, e, idx).await?;
    let changes = changes_at(c, e.id, idx)
        .await?
        .into_iter()
        .map(|(ch, _)| ch)
        .collect();
    let compliance = evaluation::for_snapshot(c, e.id, idx).await?;
    Ok(StoredSnapshot {
        index: idx as u64,
        timestamp: ts,
        replaced_at,
        running,
        changes,
        compliance,
        reported_by,
        unobserved,
        ..empty
    })
}

/// A logical environment's snapshots are its members' snapshots in time
/// order; its Nth is the point where the Nth of them was taken.
async fn logical_snapshot(
    c: &mut AnyConnection,
    e: &EnvRow,
    at: At,
    expr: &str,
) -> StoreResult<StoredSnapshot> {
    let ms = members(c, e.id).await?;
    let ids = sql_list(&ms.iter().map(|m| m.id).collect::<Vec<_>>());
    let total: i64 = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT COUNT(*) FROM env_snapshots WHERE env_id IN ({ids})"
    )))
    .fetch_one(&mut *c)
    .await?
    .try_get(0)?;
    let nth = |n: i64| {
        format!(
            "SELECT ts FROM env_snapshots WHERE env_id IN ({ids}) ORDER BY ts, env_id, idx LIMIT 1 OFFSET {}",
            n - 1
        )
    };
    let (index, t) = match (numbered(at, total, &e.name, expr)?, at) {
        (None, At::Time(t)) => {
            let n: i64 = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT COUNT(*) FROM env_snapshots WHERE env_id IN ({ids}) AND ts <= $1"
            )))
            .bind(t)
            .fetch_one(&mut *c)
            .await?
            .try_get(0)?;
            (n, t)
        }
        (n, _) => {
            let n = n.unwrap_or(0);
            if n == 0 {
                (0, 0)
            } else {
                let t: i64 = sqlx::query(sqlx::AssertSqlSafe(nth(n)))
                    .fetch_one(&mut *c)
                    .await?
                    .try_get(0)?;
                (n, t)
            }
        }
    };
    let mut running = vec![];
    let mut member_snaps = vec![];
    let mut timestamp = 0;
    for m in &ms {
        let idx = index_at(c, m.id, t).await?;
        member_snaps.push((m.name.clone(), idx.max(0) as u64));
        if idx > 0 {
            let s = physical_snapshot(c, m, idx).await?;
            timestamp = timestamp.max(s.timestamp);
            running.extend(s.running);
        }
    }
    running.sort_by(|a, b| a.key.cmp(&b.key).then(a.environment.cmp(&b.environment)));
    let replaced_at = if index < total && index > 0 {
        Some(
            sqlx::query(sqlx::AssertSqlSafe(nth(index + 1)))
                .fetch_one(&mut *c)
                .await?
                .try_get(0)?,
        )
    } else {
        None
    };
    Ok(StoredSnapshot {
        environment: e.name.clone(),
        kind: e.kind,
        index: index.max(0) as u64,
        timestamp,
        replaced_at,
        running,
        changes: vec![],
        members: member_snaps,
        compliance: None,
        // Each member snapshot names its own reporter.
        reported_by: None,
        unobserved: vec![],
    })
}

/// A snapshot on a page of the change log: `upto` counts its changes and
/// those of every snapshot after it in the window (newest first).
struct PageRow {
    env_id: i64,
    idx: i64,
    ts: i64,
    changes: i64,
    actor: Option<String>,
    upto: i64,
}

fn page_rows(
    rows: &[sqlx::any::AnyRow],
    upto: impl Fn(&sqlx::any::AnyRow) -> StoreResult<i64>,
) -> StoreResult<Vec<PageRow>> {
    rows.iter()
        .map(|r| {
            Ok(PageRow {
                env_id: r.try_get(0)?,
                idx: r.try_get(1)?,
                ts: r.try_get(2)?,
                changes: r.try_get(3)?,
                actor: r.try_get(4)?,
                upto: upto(r)?,
            })
        })
        .collect()
}

/// One environment's page of changes, newest first, from each snapshot's
/// running count of changes (`changes_upto`): the window's ends and the
/// page's first snapshot are index lookups, so a page costs the same at
/// the start of a long history as at its end.
async fn page_by_count(
    c: &mut AnyConnection,
    env_id: i64,
    since: i64,
    until: i64,
    skip: i64,
    per_page: u32,
) -> StoreResult<(i64, Vec<PageRow>)> {
    let edge = |sql: &'static str, t: i64| sqlx::query(sql).bind(env_id).bind(t);
    let first = edge(
        "SELECT idx, changes_upto - changes FROM env_snapshots WHERE env_id = $1 AND ts >= $2 ORDER BY ts, idx LIMIT 1",
        since,
    )
    .fetch_optional(&mut *c)
    .await?;
    let last = edge(
        "SELECT idx, changes_upto FROM env_snapshots WHERE env_id = $1 AND ts <= $2 ORDER BY ts DESC, idx DESC LIMIT 1",
        until,
    )
    .fetch_optional(&mut *c)
    .await?;
    let (Some(first), Some(last)) = (first, last) else {
        return Ok((0, vec![]));
    };
    let (lo, before): (i64, i64) = (first.try_get(0)?, first.try_get(1)?);
    let (hi, upto_hi): (i64, i64) = (last.try_get(0)?, last.try_get(1)?);
    let total = (upto_hi - before).max(0);
    if lo > hi || skip >= total {
        return Ok((total, vec![]));
    }
    // The page's first change is the (upto_hi - skip)-th of the history.
    let start: i64 = sqlx::query(
        "SELECT idx FROM env_snapshots WHERE env_id = $1 AND changes_upto >= $2 \
         ORDER BY changes_upto, idx LIMIT 1",
    )
    .bind(env_id)
    .bind(upto_hi - skip)
    .fetch_one(&mut *c)
    .await?
    .try_get(0)?;
    // Snapshots that changed nothing hold no event: read on past them.
    let rows = sqlx::query(
        "SELECT env_id, idx, ts, changes, actor, changes_upto FROM env_snapshots \
         WHERE env_id = $1 AND idx <= $2 AND idx >= $3 AND changes > 0 ORDER BY idx DESC LIMIT $4",
    )
    .bind(env_id)
    .bind(start.min(hi))
    .bind(lo)
    .bind(i64::from(per_page))
    .fetch_all(&mut *c)
    .await?;
    let rows = page_rows(&rows, |r| {
        let (n, upto): (i64, i64) = (r.try_get(3)?, r.try_get(5)?);
        Ok(upto_hi - upto + n)
    })?;
    Ok((total, rows))
}

/// Several environments' changes (a logical environment's members),
/// merged by time: the page is found by a running sum in the database,
/// so only a page's worth of rows is read, after one pass over the
/// window's snapshots.
async fn page_by_sum(
    c: &mut AnyConnection,
    envs: &[EnvRow],
    since: i64,
    until: i64,
    skip: i64,
    per_page: u32,
) -> StoreResult<(i64, Vec<PageRow>)> {
    let ids = envs
        .iter()
        .map(|m| m.id.to_string())
        .collect::<Vec<_>>()
        .join(",");
    let total: i64 = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT CAST(COALESCE(SUM(changes), 0) AS BIGINT) FROM env_snapshots WHERE env_id IN ({ids}) AND ts >= $1 AND ts <= $2"
    )))
    .bind(since)
    .bind(until)
    .fetch_one(&mut *c)
    .await?
    .try_get(0)?;
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT env_id, idx, ts, changes, actor, upto FROM ( \
           SELECT env_id, idx, ts, changes, actor, \
             CAST(SUM(changes) OVER (ORDER BY ts DESC, env_id DESC, idx DESC ROWS UNBOUNDED PRECEDING) AS BIGINT) AS upto \
           FROM env_snapshots WHERE env_id IN ({ids}) AND ts >= $1 AND ts <= $2) s \
         WHERE upto > $3 ORDER BY ts DESC, env_id DESC, idx DESC LIMIT $4"
    )))
    .bind(since)
    .bind(until)
    .bind(skip)
    .bind(i64::from(per_page))
    .fetch_all(&mut *c)
    .await?;
    Ok((total, page_rows(&rows, |r| Ok(r.try_get(5)?))?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_become_byte_ranges() {
        assert_eq!(
            prefix_range("abcd").unwrap(),
            (vec![0xab, 0xcd], Some(vec![0xab, 0xce]))
        );
        assert_eq!(
            prefix_range("abc").unwrap(),
            (vec![0xab, 0xc0], Some(vec![0xab, 0xd0]))
        );
        assert_eq!(
            prefix_range("12ff").unwrap(),
            (vec![0x12, 0xff], Some(vec![0x13]))
        );
        assert_eq!(prefix_range("fff").unwrap(), (vec![0xff, 0xf0], None));
    }
}
