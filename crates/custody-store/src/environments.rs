//! Environments: creating, renaming, archiving, and their coverage (when
//! they were observed).

use custody_api::{Coverage, Environment, Gap, LastReport, Observed, PartialReport, Saved};
use custody_ledger::EntryKind;
use custody_runtime::coverage::allowance;
use custody_runtime::{EnvironmentKind, Unobserved};
use serde_json::json;
use sqlx::AnyConnection;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::ledger::LedgerWriter;
use crate::util::{from_json, now_ms, to_json};
use crate::{Principal, Store, StoreError, StoreResult};

#[derive(Debug, Clone)]
pub struct NewEnvironment {
    pub name: String,
    pub kind: EnvironmentKind,
    pub description: Option<String>,
    /// For a logical environment.
    pub included: Option<Vec<String>>,
}

/// An environment row as reports and queries need it.
#[derive(Debug, Clone)]
pub(crate) struct EnvRow {
    pub id: i64,
    pub name: String,
    pub kind: EnvironmentKind,
    pub description: Option<String>,
    pub archived_at: Option<i64>,
    pub latest_index: i64,
    pub counts_digest: Option<String>,
    pub last_reported_at: Option<i64>,
    pub last_changed_at: Option<i64>,
    pub observed_from: Option<i64>,
    pub observed_to: Option<i64>,
    pub observed_interval_ms: Option<i64>,
    pub observed_reports: i64,
    pub last_reporter: Option<String>,
    pub last_warnings: Option<String>,
    pub last_unobserved: Option<String>,
    pub created_at: i64,
    /// What runs in the latest snapshot: artifacts and instances.
    pub latest_counts: Option<(i64, i64)>,
    pub compliance: Option<String>,
}

/// Every environment query reads the same columns, with the latest
/// snapshot's counts joined in: showing a list costs one query, not one a
/// row.
const ENV_SELECT: &str = "SELECT e.id, e.name, e.kind, e.description, e.archived_at, e.latest_index, \
     e.counts_digest, e.last_reported_at, e.last_changed_at, e.observed_from, e.observed_to, \
     e.observed_interval_ms, e.observed_reports, e.created_at, e.last_reporter, e.last_warnings, \
     s.artifacts, s.instances, e.compliance, e.last_unobserved FROM environments e \
     LEFT JOIN env_snapshots s ON s.env_id = e.id AND s.idx = e.latest_index";

fn env_from_row(r: &AnyRow) -> StoreResult<EnvRow> {
    let kind: String = r.try_get(2)?;
    Ok(EnvRow {
        id: r.try_get(0)?,
        name: r.try_get(1)?,
        kind: EnvironmentKind::parse(&kind)
            .ok_or_else(|| StoreError::Corrupt(format!("environment type '{kind}'")))?,
        description: r.try_get(3)?,
        archived_at: r.try_get(4)?,
        latest_index: r.try_get(5)?,
        counts_digest: r.try_get(6)?,
        last_reported_at: r.try_get(7)?,
        last_changed_at: r.try_get(8)?,
        observed_from: r.try_get(9)?,
        observed_to: r.try_get(10)?,
        observed_interval_ms: r.try_get(11)?,
        observed_reports: r.try_get(12)?,
        created_at: r.try_get(13)?,
        last_reporter: r.try_get(14)?,
        last_warnings: r.try_get(15)?,
        last_unobserved: r.try_get(19)?,
        latest_counts: match (
            r.try_get::<Option<i64>, _>(16)?,
            r.try_get::<Option<i64>, _>(17)?,
        ) {
            (Some(a), Some(i)) => Some((a, i)),
            _ => None,
        },
        compliance: r.try_get(18)?,
    })
}

pub(crate) async fn env_row(c: &mut AnyConnection, org_id: i64, name: &str) -> StoreResult<EnvRow> {
    let r = sqlx::query(sqlx::AssertSqlSafe(format!(
        "{ENV_SELECT} WHERE e.org_id = $1 AND e.name = $2"
    )))
    .bind(org_id)
    .bind(name)
    .fetch_optional(&mut *c)
    .await?
    .ok_or_else(|| StoreError::not_found("environment", name))?;
    env_from_row(&r)
}

/// The physical members of a logical environment, by name.
pub(crate) async fn members(c: &mut AnyConnection, logical_id: i64) -> StoreResult<Vec<EnvRow>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "{ENV_SELECT} JOIN environment_members m ON m.physical_id = e.id \
         WHERE m.logical_id = $1 ORDER BY e.name"
    )))
    .bind(logical_id)
    .fetch_all(&mut *c)
    .await?;
    rows.iter().map(env_from_row).collect()
}

async fn view(c: &mut AnyConnection, e: &EnvRow) -> StoreResult<Environment> {
    let included = if e.kind.is_logical() {
        members(c, e.id)
            .await?
            .into_iter()
            .map(|m| m.name)
            .collect()
    } else {
        vec![]
    };
    // A logical environment's snapshots are its members' taken together.
    let latest = if e.kind.is_logical() {
        let n: i64 = sqlx::query(
            "SELECT COUNT(*) FROM env_snapshots s JOIN environment_members m ON m.physical_id = s.env_id \
             WHERE m.logical_id = $1",
        )
        .bind(e.id)
        .fetch_one(&mut *c)
        .await?
        .try_get(0)?;
        n
    } else {
        e.latest_index
    };
    let last_report = match (e.last_reported_at, e.kind.is_logical()) {
        (Some(at), false) => {
            let (artifacts, instances) = e.latest_counts.unwrap_or((0, 0));
            Some(LastReport {
                at,
                reporter: e.last_reporter.clone(),
                warnings: match &e.last_warnings {
                    Some(w) => from_json("last warnings", w)?,
                    None => vec![],
                },
                unobserved: match &e.last_unobserved {
                    Some(u) => from_json("last unobserved", u)?,
                    None => vec![],
                },
                artifacts: artifacts.max(0) as u64,
                instances: instances.max(0) as u64,
            })
        }
        _ => None,
    };
    Ok(Environment {
        last_report,
        name: e.name.clone(),
        kind: e.kind,
        description: e.description.clone(),
        included_environments: included,
        archived: e.archived_at.is_some(),
        latest_snapshot: latest.max(0) as u64,
        last_reported_at: e.last_reported_at,
        last_changed_at: e.last_changed_at,
        compliance: e
            .compliance
            .as_deref()
            .and_then(custody_api::ComplianceStatus::parse)
            .unwrap_or(custody_api::ComplianceStatus::Unknown),
        created_at: e.created_at,
    })
}

/// Files the current stretch of observation, if there is one.
async fn file_stretch(c: &mut AnyConnection, e: &EnvRow) -> StoreResult<()> {
    if let (Some(from), Some(to)) = (e.observed_from, e.observed_to) {
        sqlx::query(
            "INSERT INTO env_coverage (env_id, from_ts, to_ts, interval_ms, reports) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(e.id)
        .bind(from)
        .bind(to)
        .bind(e.observed_interval_ms.unwrap_or(0))
        .bind(e.observed_reports)
        .execute(&mut *c)
        .await?;
    }
    Ok(())
}

/// What a report says of how it saw the environment.
pub(crate) struct Seen<'a> {
    pub now: i64,
    pub interval_ms: i64,
    pub reporter: Option<&'a str>,
    pub warnings: &'a [String],
    /// What it could not observe: non-empty makes it a partial report.
    pub unobserved: &'a [Unobserved],
}

/// Extends the current stretch of observation to `now`, or files it and
/// starts a new one when the report came too late. A partial report
/// extends nothing: it ends the stretch (the environment is not observed
/// from the last complete report on) and is kept, with what it missed, so
/// the gap can say why.
pub(crate) async fn observe(c: &mut AnyConnection, e: &EnvRow, seen: Seen<'_>) -> StoreResult<()> {
    let now = seen.now;
    let warnings = if seen.warnings.is_empty() {
        None
    } else {
        Some(to_json(&seen.warnings)?)
    };
    let unobserved = if seen.unobserved.is_empty() {
        None
    } else {
        Some(to_json(&seen.unobserved)?)
    };
    if let Some(u) = &unobserved {
        file_stretch(c, e).await?;
        sqlx::query(
            "INSERT INTO env_partial (env_id, at, reporter, unobserved) VALUES ($1, $2, $3, $4)",
        )
        .bind(e.id)
        .bind(now)
        .bind(seen.reporter)
        .bind(u)
        .execute(&mut *c)
        .await?;
        sqlx::query(
            "UPDATE environments SET observed_from = NULL, observed_to = NULL, observed_reports = 0, \
             observed_interval_ms = $3, last_reported_at = $2, last_reporter = $4, last_warnings = $5, \
             last_unobserved = $6 WHERE id = $1",
        )
        .bind(e.id)
        .bind(now)
        .bind(seen.interval_ms)
        .bind(seen.reporter)
        .bind(warnings)
        .bind(u)
        .execute(&mut *c)
        .await?;
        return Ok(());
    }
    let in_time = match (e.observed_to, e.observed_interval_ms) {
        (Some(to), Some(i)) => custody_runtime::coverage::in_time(to, i, now),
        _ => false,
    };
    if !in_time {
        file_stretch(c, e).await?;
    }
    // One statement a heartbeat: in time, the stretch grows; late, a new
    // one starts here.
    let stretch = if in_time {
        "observed_reports = observed_reports + 1"
    } else {
        "observed_from = $2, observed_reports = 1"
    };
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE environments SET {stretch}, observed_to = $2, observed_interval_ms = $3, \
         last_reported_at = $2, last_reporter = $4, last_warnings = $5, last_unobserved = NULL WHERE id = $1"
    )))
    .bind(e.id)
    .bind(now)
    .bind(seen.interval_ms)
    .bind(seen.reporter)
    .bind(warnings)
    .execute(&mut *c)
    .await?;
    Ok(())
}

fn check_name(name: &str) -> StoreResult<()> {
    custody_runtime::validate_environment_name(name)
        .map_err(|e| StoreError::Unprocessable(e.to_string()))
}

impl Store {
    /// Creates an environment, or updates its description (and, for a
    /// logical one, its members). Its type cannot change once it has been
    /// reported to.
    pub async fn put_environment(
        &self,
        p: &Principal,
        req: NewEnvironment,
    ) -> StoreResult<Saved<Environment>> {
        check_name(&req.name)?;
        if req.included.is_some() && !req.kind.is_logical() {
            return Err(StoreError::Unprocessable(format!(
                "only a logical environment includes others; '{}' is of type {}",
                req.name, req.kind
            )));
        }
        let (org_id, org) = (p.org_id, p.org.clone());
        let actor = p.actor();
        // Creating a missing environment is part of reporting to it
        // (`--auto-environment`); changing one that exists is not.
        let may_change = p
            .role
            .allows(custody_domain::Permission::ManageEnvironments);
        let who = (p.service_account.clone(), p.role);
        self.db
            .write(move |c| {
                Box::pin(async move {
                    let mut ledger = LedgerWriter::lock(c, org_id, &org, &actor).await?;
                    let now = now_ms();
                    let existing = env_row(c, org_id, &req.name).await;
                    let (row, created) = match existing {
                        Ok(e) => {
                            let unchanged = e.kind == req.kind
                                && req.included.is_none()
                                && req.description.as_ref().is_none_or(|d| Some(d) == e.description.as_ref());
                            if unchanged {
                                let value = view(c, &e).await?;
                                return Ok(Saved { created: false, value });
                            }
                            if !may_change {
                                return Err(StoreError::Forbidden(format!(
                                    "environment '{}' exists: a {} ('{}') may create environments but not change them",
                                    e.name, who.1, who.0
                                )));
                            }
                            if e.kind != req.kind {
                                if e.latest_index > 0 || e.kind.is_logical() || req.kind.is_logical() {
                                    return Err(StoreError::Conflict(format!(
                                        "environment '{}' is of type {}; its type cannot become {}",
                                        e.name, e.kind, req.kind
                                    )));
                                }
                                sqlx::query("UPDATE environments SET kind = $2 WHERE id = $1")
                                    .bind(e.id)
                                    .bind(req.kind.as_str())
                                    .execute(&mut *c)
                                    .await?;
                            }
                            if req.description.is_some() {
                                sqlx::query("UPDATE environments SET description = $2 WHERE id = $1")
                                    .bind(e.id)
                                    .bind(req.description.clone())
                                    .execute(&mut *c)
                                    .await?;
                            }
                            (e.id, false)
                        }
                        Err(StoreError::NotFound { .. }) => {
                            let id: i64 = sqlx::query(
                                "INSERT INTO environments (org_id, name, kind, description, created_at) \
                                 VALUES ($1, $2, $3, $4, $5) RETURNING id",
                            )
                            .bind(org_id)
                            .bind(&req.name)
                            .bind(req.kind.as_str())
                            .bind(req.description.clone())
                            .bind(now)
                            .fetch_one(&mut *c)
                            .await?
                            .try_get(0)?;
                            (id, true)
                        }
                        Err(e) => return Err(e),
                    };
                    if let Some(included) = &req.included {
                        sqlx::query("DELETE FROM environment_members WHERE logical_id = $1")
                            .bind(row)
                            .execute(&mut *c)
                            .await?;
                        for m in included {
                            let member = env_row(c, org_id, m).await.map_err(|e| match e {
                                StoreError::NotFound { .. } => StoreError::Unprocessable(format!(
                                    "included environment '{m}' does not exist"
                                )),
                                other => other,
                            })?;
                            if member.kind.is_logical() {
                                return Err(StoreError::Unprocessable(format!(
                                    "'{m}' is a logical environment: a logical environment includes physical ones only"
                                )));
                            }
                            sqlx::query(
                                "INSERT INTO environment_members (logical_id, physical_id) VALUES ($1, $2) \
                                 ON CONFLICT DO NOTHING",
                            )
                            .bind(row)
                            .bind(member.id)
                            .execute(&mut *c)
                            .await?;
                        }
                    }
                    let e = env_row(c, org_id, &req.name).await?;
                    let value = view(c, &e).await?;
                    ledger
                        .append(
                            c,
                            EntryKind::Environment,
                            &json!({
                                "name": value.name,
                                "type": value.kind,
                                "description": value.description,
                                "included_environments": value.included_environments,
                            }),
                        )
                        .await?;
                    Ok(Saved { created, value })
                })
            })
            .await
    }

    pub async fn get_environment(&self, org_id: i64, name: &str) -> StoreResult<Environment> {
        let mut c = self.db.read.acquire().await?;
        let e = env_row(&mut c, org_id, name).await?;
        view(&mut c, &e).await
    }

    /// Archived environments are listed only when asked for.
    pub async fn list_environments(
        &self,
        org_id: i64,
        include_archived: bool,
    ) -> StoreResult<Vec<Environment>> {
        let mut c = self.db.read.acquire().await?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{ENV_SELECT} WHERE e.org_id = $1 AND ($2 = 1 OR e.archived_at IS NULL) ORDER BY e.name"
        )))
        .bind(org_id)
        .bind(i64::from(include_archived))
        .fetch_all(&mut *c)
        .await?;
        let mut out = vec![];
        for r in &rows {
            let e = env_from_row(r)?;
            out.push(view(&mut c, &e).await?);
        }
        Ok(out)
    }

    pub async fn rename_environment(
        &self,
        p: &Principal,
        old: &str,
        new: &str,
    ) -> StoreResult<Environment> {
        check_name(new)?;
        let (org_id, org, old, new) = (p.org_id, p.org.clone(), old.to_string(), new.to_string());
        let actor = p.actor();
        self.db
            .write(move |c| {
                Box::pin(async move {
                    let mut ledger = LedgerWriter::lock(c, org_id, &org, &actor).await?;
                    let e = env_row(c, org_id, &old).await?;
                    if env_row(c, org_id, &new).await.is_ok() {
                        return Err(StoreError::Conflict(format!(
                            "environment '{new}' already exists"
                        )));
                    }
                    sqlx::query("UPDATE environments SET name = $2 WHERE id = $1")
                        .bind(e.id)
                        .bind(&new)
                        .execute(&mut *c)
                        .await?;
                    ledger
                        .append(
                            c,
                            EntryKind::Environment,
                            &json!({"name": old, "renamed_to": new}),
                        )
                        .await?;
                    let e = env_row(c, org_id, &new).await?;
                    view(c, &e).await
                })
            })
            .await
    }

    /// Adds a physical environment to a logical one (`join`), or takes it
    /// out (`leave`). The logical one shows its members' history as it is
    /// read, so nothing else changes.
    pub async fn set_membership(
        &self,
        p: &Principal,
        logical: &str,
        physical: &str,
        join: bool,
    ) -> StoreResult<Environment> {
        let (org_id, org) = (p.org_id, p.org.clone());
        let (logical, physical) = (logical.to_string(), physical.to_string());
        let actor = p.actor();
        self.db
            .write(move |c| {
                Box::pin(async move {
                    let mut ledger = LedgerWriter::lock(c, org_id, &org, &actor).await?;
                    let l = env_row(c, org_id, &logical).await?;
                    if !l.kind.is_logical() {
                        return Err(StoreError::Unprocessable(format!(
                            "'{logical}' is a {} environment, not a logical one",
                            l.kind.as_str()
                        )));
                    }
                    let m = env_row(c, org_id, &physical).await?;
                    if m.kind.is_logical() {
                        return Err(StoreError::Unprocessable(format!(
                            "'{physical}' is a logical environment: a logical environment includes physical ones only"
                        )));
                    }
                    let sql = if join {
                        "INSERT INTO environment_members (logical_id, physical_id) VALUES ($1, $2) ON CONFLICT DO NOTHING"
                    } else {
                        "DELETE FROM environment_members WHERE logical_id = $1 AND physical_id = $2"
                    };
                    let changed = sqlx::query(sql)
                        .bind(l.id)
                        .bind(m.id)
                        .execute(&mut *c)
                        .await?
                        .rows_affected();
                    if changed > 0 {
                        let what = if join { "joined" } else { "left" };
                        ledger
                            .append(c, EntryKind::Environment, &json!({"name": logical, what: physical}))
                            .await?;
                    } else if !join {
                        return Err(StoreError::Unprocessable(format!(
                            "'{physical}' is not in logical environment '{logical}'"
                        )));
                    }
                    view(c, &l).await
                })
            })
            .await
    }

    /// Archiving hides an environment from lists and refuses reports to
    /// it; its history is kept and still answers queries.
    pub async fn archive_environment(&self, p: &Principal, name: &str) -> StoreResult<Environment> {
        let (org_id, org, name) = (p.org_id, p.org.clone(), name.to_string());
        let actor = p.actor();
        self.db
            .write(move |c| {
                Box::pin(async move {
                    let mut ledger = LedgerWriter::lock(c, org_id, &org, &actor).await?;
                    let e = env_row(c, org_id, &name).await?;
                    if e.archived_at.is_none() {
                        sqlx::query("UPDATE environments SET archived_at = $2 WHERE id = $1")
                            .bind(e.id)
                            .bind(now_ms())
                            .execute(&mut *c)
                            .await?;
                        ledger
                            .append(
                                c,
                                EntryKind::Environment,
                                &json!({"name": name, "archived": true}),
                            )
                            .await?;
                    }
                    let e = env_row(c, org_id, &name).await?;
                    view(c, &e).await
                })
            })
            .await
    }

    /// When the environment was observed, as of `now`: the latest
    /// [`COVERAGE_SHOWN`] stretches, and how many came before them.
    pub async fn coverage(&self, org_id: i64, name: &str, now: i64) -> StoreResult<Coverage> {
        self.coverage_until(org_id, name, now, i64::MAX).await
    }

    /// When the environment was observed up to `until`, as of `now`: the
    /// [`COVERAGE_SHOWN`] stretches that began last by then (a window's
    /// worth, for a timeline), and how many came before them.
    pub async fn coverage_until(
        &self,
        org_id: i64,
        name: &str,
        now: i64,
        until: i64,
    ) -> StoreResult<Coverage> {
        let mut c = self.db.read.acquire().await?;
        let e = env_row(&mut c, org_id, name).await?;
        let mut rows = sqlx::query(
            "SELECT from_ts, to_ts, interval_ms, reports FROM env_coverage \
             WHERE env_id = $1 AND from_ts <= $2 ORDER BY from_ts DESC LIMIT $3",
        )
        .bind(e.id)
        .bind(until)
        .bind(COVERAGE_SHOWN)
        .fetch_all(&mut *c)
        .await?;
        rows.reverse();
        // Counted only when the list is cut: a count is a scan.
        let earlier = if rows.len() as i64 == COVERAGE_SHOWN {
            let first: i64 = rows.first().map_or(Ok(0), |r| r.try_get(0))?;
            let n: i64 =
                sqlx::query("SELECT COUNT(*) FROM env_coverage WHERE env_id = $1 AND from_ts < $2")
                    .bind(e.id)
                    .bind(first)
                    .fetch_one(&mut *c)
                    .await?
                    .try_get(0)?;
            n.max(0) as u64
        } else {
            0
        };
        let mut observed = rows
            .iter()
            .map(|r| {
                Ok(Observed {
                    from: r.try_get(0)?,
                    to: r.try_get(1)?,
                    interval_s: (r.try_get::<i64, _>(2)? / 1000).max(0) as u64,
                    reports: r.try_get::<i64, _>(3)?.max(0) as u64,
                })
            })
            .collect::<StoreResult<Vec<_>>>()?;
        if let (Some(from), Some(to)) = (e.observed_from, e.observed_to) {
            observed.push(Observed {
                from,
                to,
                interval_s: (e.observed_interval_ms.unwrap_or(0) / 1000).max(0) as u64,
                reports: e.observed_reports.max(0) as u64,
            });
        }
        let since = observed.first().map_or(0, |o| o.from);
        let partial = sqlx::query(
            "SELECT at, reporter, unobserved FROM env_partial WHERE env_id = $1 AND at >= $2 \
             ORDER BY at DESC LIMIT $3",
        )
        .bind(e.id)
        .bind(since)
        .bind(COVERAGE_SHOWN)
        .fetch_all(&mut *c)
        .await?
        .iter()
        .rev()
        .map(|r| {
            Ok(PartialReport {
                at: r.try_get(0)?,
                reporter: r.try_get(1)?,
                unobserved: from_json("unobserved", &r.try_get::<String, _>(2)?)?,
            })
        })
        .collect::<StoreResult<Vec<_>>>()?;
        let mut coverage = coverage_of(observed, e.observed_to, e.observed_interval_ms, now);
        // The last report was partial: the environment is not observed
        // from the end of the last complete stretch (or the first partial
        // report) on.
        if e.observed_to.is_none()
            && e.last_unobserved.is_some()
            && let Some(first) = partial.first()
        {
            let from = coverage.observed.last().map_or(first.at, |o| o.to);
            if coverage.gaps.last().is_none_or(|g| g.to.is_some()) {
                coverage.gaps.push(Gap {
                    from,
                    to: None,
                    partial: vec![],
                });
            }
        }
        for g in &mut coverage.gaps {
            let within: Vec<&PartialReport> = partial
                .iter()
                .filter(|p| p.at >= g.from && g.to.is_none_or(|to| p.at <= to))
                .collect();
            g.partial = within[within.len().saturating_sub(PARTIAL_SHOWN)..]
                .iter()
                .map(|p| (*p).clone())
                .collect();
        }
        coverage.earlier_stretches = earlier;
        Ok(coverage)
    }
}

/// How many stretches of observation an environment view lists.
pub const COVERAGE_SHOWN: i64 = 1000;
/// How many partial reports a gap lists (the latest).
const PARTIAL_SHOWN: usize = 20;

/// The gaps between stretches of observation, and whether the last
/// reporter is late.
pub(crate) fn coverage_of(
    observed: Vec<Observed>,
    last_to: Option<i64>,
    last_interval_ms: Option<i64>,
    now: i64,
) -> Coverage {
    let mut gaps: Vec<Gap> = observed
        .windows(2)
        .map(|w| Gap {
            from: w[0].to,
            to: Some(w[1].from),
            partial: vec![],
        })
        .collect();
    let overdue = match (last_to, last_interval_ms) {
        (Some(to), Some(i)) if i > 0 => now - to > allowance(i),
        _ => false,
    };
    if overdue && let Some(to) = last_to {
        gaps.push(Gap {
            from: to,
            to: None,
            partial: vec![],
        });
    }
    Coverage {
        observed,
        gaps,
        overdue,
        earlier_stretches: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_lie_between_stretches_and_after_a_late_reporter() {
        let o = |from, to| Observed {
            from,
            to,
            reports: 1,
            interval_s: 60,
        };
        let c = coverage_of(vec![o(0, 100), o(500, 600)], Some(600), Some(60_000), 650);
        assert_eq!(
            c.gaps,
            vec![Gap {
                from: 100,
                to: Some(500),
                partial: vec![],
            }]
        );
        assert!(!c.overdue);
        let late = 600 + allowance(60_000) + 1;
        let c = coverage_of(vec![o(0, 600)], Some(600), Some(60_000), late);
        assert!(c.overdue);
        assert_eq!(
            c.gaps,
            vec![Gap {
                from: 600,
                to: None,
                partial: vec![],
            }]
        );
        // One-shot reports promise nothing, so they are never late.
        let c = coverage_of(vec![o(0, 0)], Some(0), Some(0), i64::MAX);
        assert!(!c.overdue && c.gaps.is_empty());
    }
}
