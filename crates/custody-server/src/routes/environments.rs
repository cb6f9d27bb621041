//! Environments and the reports, snapshots, differences and change log of
//! what runs in them. Running artifacts are joined to their provenance by
//! fingerprint when read, so evidence reported later is always reflected.

use std::collections::{BTreeMap, HashMap, HashSet};

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use custody_api::{
    ArtifactChange, DiffEntry, Environment, EnvironmentEvent, EnvironmentView, MemberSnapshot,
    Page, Provenance, PutEnvironmentRequest, RenameRequest, Report, ReportOutcome, Saved, Snapshot,
    SnapshotArtifact, SnapshotDiff, SnapshotId, SnapshotSummary, Timeline,
};
use custody_domain::Permission;
use custody_runtime::{ArtifactKey, Change, Range, SnapshotRef, parse_time};
use custody_store::{NewEnvironment, NewReport, StoredSnapshot};
use serde::Deserialize;

use super::Paging;
use super::flows::trail_view;
use crate::auth::Caller;
use crate::body::LazyJson;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

fn now_ms() -> i64 {
    custody_store::clock::now_ms()
}

fn bad(e: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(e.to_string())
}

/// Creates an environment, or updates its description (or, for a logical
/// one, its members).
#[utoipa::path(put, path = "/api/v1/orgs/{org}/environments/{env}", tag = "environments",
    params(("org" = String, Path), ("env" = String, Path)), request_body = PutEnvironmentRequest,
    responses((status = 201, body = Saved<Environment>), (status = 200, body = Saved<Environment>),
        (status = 409), (status = 422)))]
pub async fn put_environment(
    State(s): State<AppState>,
    caller: Caller,
    Path((_org, env)): Path<(String, String)>,
    body: LazyJson<PutEnvironmentRequest>,
) -> ApiResult<(StatusCode, Json<Saved<Environment>>)> {
    // Snapshotters may create the environments they report to
    // (`--auto-environment`); the store refuses them a change to one that
    // exists.
    caller.require(Permission::CreateEnvironments)?;
    let req = body.read().await?;
    custody_runtime::validate_environment_name(&env).map_err(bad)?;
    let saved = s
        .store
        .put_environment(
            &caller.0,
            NewEnvironment {
                name: env,
                kind: req.kind,
                description: req.description,
                included: req.included_environments,
            },
        )
        .await?;
    let status = if saved.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(saved)))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct ListEnvironments {
    /// Include archived environments.
    #[serde(default)]
    pub archived: bool,
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/environments", tag = "environments",
    params(("org" = String, Path), ListEnvironments), responses((status = 200, body = Vec<Environment>)))]
pub async fn list_environments(
    State(s): State<AppState>,
    caller: Caller,
    Query(q): Query<ListEnvironments>,
) -> ApiResult<Json<Vec<Environment>>> {
    caller.require(Permission::Read)?;
    Ok(Json(
        s.store
            .list_environments(caller.0.org_id, q.archived)
            .await?,
    ))
}

/// An environment, with when it was observed and the gaps in between.
#[utoipa::path(get, path = "/api/v1/orgs/{org}/environments/{env}", tag = "environments",
    params(("org" = String, Path), ("env" = String, Path)),
    responses((status = 200, body = EnvironmentView), (status = 404)))]
pub async fn get_environment(
    State(s): State<AppState>,
    caller: Caller,
    Path((_org, env)): Path<(String, String)>,
) -> ApiResult<Json<EnvironmentView>> {
    caller.require(Permission::Read)?;
    let environment = s.store.get_environment(caller.0.org_id, &env).await?;
    let coverage = s.store.coverage(caller.0.org_id, &env, now_ms()).await?;
    Ok(Json(EnvironmentView {
        environment,
        coverage,
    }))
}

#[utoipa::path(post, path = "/api/v1/orgs/{org}/environments/{env}/rename", tag = "environments",
    params(("org" = String, Path), ("env" = String, Path)), request_body = RenameRequest,
    responses((status = 200, body = Environment), (status = 404), (status = 409)))]
pub async fn rename_environment(
    State(s): State<AppState>,
    caller: Caller,
    Path((_org, env)): Path<(String, String)>,
    body: LazyJson<RenameRequest>,
) -> ApiResult<Json<Environment>> {
    caller.require(Permission::ManageEnvironments)?;
    let req = body.read().await?;
    custody_runtime::validate_environment_name(&req.new_name).map_err(bad)?;
    Ok(Json(
        s.store
            .rename_environment(&caller.0, &env, &req.new_name)
            .await?,
    ))
}

/// Adds a physical environment to a logical one.
#[utoipa::path(post, path = "/api/v1/orgs/{org}/environments/{env}/join", tag = "environments",
    params(("org" = String, Path), ("env" = String, Path)), request_body = custody_api::MembershipRequest,
    responses((status = 200, body = Environment), (status = 404), (status = 422)))]
pub async fn join_environment(
    State(s): State<AppState>,
    caller: Caller,
    Path((_org, env)): Path<(String, String)>,
    body: LazyJson<custody_api::MembershipRequest>,
) -> ApiResult<Json<Environment>> {
    membership(s, caller, env, body, true).await
}

/// Takes a physical environment out of a logical one.
#[utoipa::path(post, path = "/api/v1/orgs/{org}/environments/{env}/leave", tag = "environments",
    params(("org" = String, Path), ("env" = String, Path)), request_body = custody_api::MembershipRequest,
    responses((status = 200, body = Environment), (status = 404), (status = 422)))]
pub async fn leave_environment(
    State(s): State<AppState>,
    caller: Caller,
    Path((_org, env)): Path<(String, String)>,
    body: LazyJson<custody_api::MembershipRequest>,
) -> ApiResult<Json<Environment>> {
    membership(s, caller, env, body, false).await
}

async fn membership(
    s: AppState,
    caller: Caller,
    env: String,
    body: LazyJson<custody_api::MembershipRequest>,
    join: bool,
) -> ApiResult<Json<Environment>> {
    caller.require(Permission::ManageEnvironments)?;
    let req = body.read().await?;
    Ok(Json(
        s.store
            .set_membership(&caller.0, &env, &req.physical_env_name, join)
            .await?,
    ))
}

/// Hides an environment and refuses reports to it; its history stays.
#[utoipa::path(post, path = "/api/v1/orgs/{org}/environments/{env}/archive", tag = "environments",
    params(("org" = String, Path), ("env" = String, Path)),
    responses((status = 200, body = Environment), (status = 404)))]
pub async fn archive_environment(
    State(s): State<AppState>,
    caller: Caller,
    Path((_org, env)): Path<(String, String)>,
) -> ApiResult<Json<Environment>> {
    caller.require(Permission::ManageEnvironments)?;
    Ok(Json(s.store.archive_environment(&caller.0, &env).await?))
}

/// Reports what runs. A report that changes the running artifacts or
/// their instance counts makes a snapshot; any other only extends the
/// time the environment counts as observed.
#[utoipa::path(put, path = "/api/v1/orgs/{org}/environments/{env}/report", tag = "environments",
    params(("org" = String, Path), ("env" = String, Path)), request_body = Report,
    responses((status = 200, body = ReportOutcome), (status = 400), (status = 404), (status = 409), (status = 422)))]
pub async fn report(
    State(s): State<AppState>,
    caller: Caller,
    Path((_org, env)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> ApiResult<Json<ReportOutcome>> {
    caller.require(Permission::ReportSnapshots)?;
    // Parsed straight from the bytes: a 1,000-workload report is a third
    // of a megabyte, and this is the hot path of every heartbeat.
    let report: Report =
        serde_json::from_slice(&body).map_err(|e| bad(format!("invalid report: {e}")))?;
    let (kind, interval_s, reporter) = (report.kind, report.interval_s, report.reporter.clone());
    let warnings = report.warnings.clone();
    let unobserved = report.unobserved.clone();
    let running = report.into_running_set().map_err(bad)?;
    let stored = s
        .store
        .report_environment(
            &caller.0,
            &env,
            NewReport {
                kind,
                running,
                interval_ms: interval_s.map_or(0, |i| i as i64 * 1000),
                warnings,
                unobserved,
                reporter,
                received_at: now_ms(),
            },
        )
        .await?;
    // Who knows what only matters when what runs changed.
    let unknown = if stored.changed {
        let fps: Vec<String> = stored
            .running
            .iter()
            .map(|(k, _)| k.fingerprint.clone())
            .filter(|f| !f.is_empty())
            .collect();
        let known = flows_by_fingerprint(&s, caller.0.org_id, &fps).await?;
        stored
            .running
            .iter()
            .filter(|(k, _)| !known.contains_key(&k.fingerprint))
            .map(|(k, _)| k.name.clone())
            .collect()
    } else {
        vec![]
    };
    Ok(Json(ReportOutcome {
        environment: env,
        changed: stored.changed,
        snapshot: stored.snapshot,
        changes: stored.changes.iter().map(change).collect(),
        unknown,
        artifacts: stored.artifacts,
        instances: stored.instances,
    }))
}

fn change(c: &Change) -> ArtifactChange {
    ArtifactChange {
        name: c.key.name.clone(),
        fingerprint: fingerprint(&c.key),
        kind: c.kind(),
        was: c.was,
        now: c.now,
        description: c.describe(),
    }
}

fn fingerprint(k: &ArtifactKey) -> Option<String> {
    (!k.fingerprint.is_empty()).then(|| k.fingerprint.clone())
}

/// How many of the trails that reported a running artifact are shown with
/// it (the newest): each is judged when shown.
const PROVENANCE_SHOWN: u32 = 20;

/// Fingerprint → the flows that reported it.
async fn flows_by_fingerprint(
    s: &AppState,
    org_id: i64,
    fps: &[String],
) -> ApiResult<HashMap<String, Vec<String>>> {
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    for a in s
        .store
        .artifacts_with_fingerprints(org_id, fps, PROVENANCE_SHOWN)
        .await?
    {
        let flows = out.entry(a.fingerprint).or_default();
        if !flows.contains(&a.flow) {
            flows.push(a.flow);
        }
    }
    Ok(out)
}

/// Fingerprint → every trail that reported it, with its compliance now.
async fn provenance(
    s: &AppState,
    org_id: i64,
    fps: &[String],
) -> ApiResult<HashMap<String, Vec<Provenance>>> {
    let artifacts = s
        .store
        .artifacts_with_fingerprints(org_id, fps, PROVENANCE_SHOWN)
        .await?;
    judged(s, org_id, artifacts).await
}

/// Fingerprint → the earliest time of a commit that built it (ms).
fn commit_times(artifacts: &[custody_api::Artifact]) -> HashMap<String, i64> {
    let mut commits: HashMap<String, i64> = HashMap::new();
    for a in artifacts {
        let at = a
            .git_commit_info
            .as_ref()
            .map(|c| c.timestamp)
            .filter(|t| *t > 0)
            .map(|t| t.saturating_mul(1000));
        if let Some(at) = at {
            let e = commits.entry(a.fingerprint.clone()).or_insert(at);
            *e = (*e).min(at);
        }
    }
    commits
}

/// The provenance of these artifact reports, with their trails judged.
async fn judged(
    s: &AppState,
    org_id: i64,
    artifacts: Vec<custody_api::Artifact>,
) -> ApiResult<HashMap<String, Vec<Provenance>>> {
    // Each trail is read and judged once, however many of its artifacts
    // run, and all of them in one go.
    let keys: HashSet<(String, String)> = artifacts
        .iter()
        .map(|a| (a.flow.clone(), a.trail.clone()))
        .collect();
    let keys: Vec<(String, String)> = keys.into_iter().collect();
    let mut trails: HashMap<(String, String), custody_api::TrailView> = HashMap::new();
    for data in s.store.get_trails(org_id, &keys).await? {
        let key = (data.trail.flow.clone(), data.trail.name.clone());
        trails.insert(key, trail_view(data)?);
    }
    let mut out: HashMap<String, Vec<Provenance>> = HashMap::new();
    for a in artifacts {
        let key = (a.flow.clone(), a.trail.clone());
        let Some(view) = trails.get(&key) else {
            continue;
        };
        let compliant = view
            .artifacts
            .iter()
            .filter(|t| t.fingerprint.as_deref() == Some(a.fingerprint.as_str()))
            .all(|t| t.compliant);
        let list = out.entry(a.fingerprint.clone()).or_default();
        if list
            .iter()
            .any(|p| p.flow == a.flow && p.trail == a.trail && p.artifact == a.name)
        {
            continue;
        }
        list.push(Provenance {
            flow: a.flow,
            trail: a.trail,
            artifact: a.name,
            git_commit: a.git_commit,
            commit_url: a.commit_url,
            build_url: a.build_url,
            compliant,
            trail_compliant: view.compliant,
        });
    }
    Ok(out)
}

fn parse_ref(env: &str, at: Option<&str>) -> ApiResult<(SnapshotRef, String)> {
    let expr = format!("{env}{}", at.unwrap_or(""));
    let r = SnapshotRef::parse(&expr, now_ms()).map_err(bad)?;
    if r.environment != env {
        return Err(bad(format!(
            "'{}' is not a snapshot of environment '{env}'",
            at.unwrap_or("")
        )));
    }
    Ok((r, expr))
}

async fn snapshot_view(s: &AppState, org_id: i64, snap: StoredSnapshot) -> ApiResult<Snapshot> {
    let fps: Vec<String> = snap
        .running
        .iter()
        .map(|r| r.key.fingerprint.clone())
        .filter(|f| !f.is_empty())
        .collect();
    let prov = provenance(s, org_id, &fps).await?;
    let changed: HashMap<&ArtifactKey, &Change> =
        snap.changes.iter().map(|c| (&c.key, c)).collect();
    let artifacts: Vec<SnapshotArtifact> = snap
        .running
        .iter()
        .map(|r| {
            let provenance = prov.get(&r.key.fingerprint).cloned().unwrap_or_default();
            SnapshotArtifact {
                name: r.key.name.clone(),
                fingerprint: fingerprint(&r.key),
                instance_count: r.instances,
                instances: r.detail.clone(),
                since_snapshot: r.since_snapshot,
                running_since: r.running_since,
                unknown: provenance.is_empty(),
                provenance,
                change: changed.get(&r.key).map(|c| c.kind()),
            }
        })
        .collect();
    let unknown = artifacts.iter().filter(|a| a.unknown).count() as u64;
    Ok(Snapshot {
        reported_by: snap.reported_by,
        unobserved: snap.unobserved,
        environment: snap.environment,
        kind: snap.kind,
        index: snap.index,
        timestamp: snap.timestamp,
        replaced_at: snap.replaced_at,
        stopped: snap
            .changes
            .iter()
            .filter(|c| c.now == 0)
            .map(change)
            .collect(),
        artifacts,
        unknown,
        members: snap
            .members
            .into_iter()
            .map(|(environment, index)| MemberSnapshot { environment, index })
            .collect(),
        compliance: snap.compliance,
    })
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct SnapshotQuery {
    /// `#N`, `~N`, `@{2026-03-01T03:12:00}` or `@{3.hours.ago}`; the
    /// latest when absent.
    pub at: Option<String>,
}

/// One snapshot: what ran, each artifact with its provenance.
#[utoipa::path(get, path = "/api/v1/orgs/{org}/environments/{env}/snapshot", tag = "environments",
    params(("org" = String, Path), ("env" = String, Path), SnapshotQuery),
    responses((status = 200, body = Snapshot), (status = 400), (status = 404)))]
pub async fn get_snapshot(
    State(s): State<AppState>,
    caller: Caller,
    Path((_org, env)): Path<(String, String)>,
    Query(q): Query<SnapshotQuery>,
) -> ApiResult<Json<Snapshot>> {
    caller.require(Permission::Read)?;
    let (r, expr) = parse_ref(&env, q.at.as_deref())?;
    let snap = s
        .store
        .snapshot(caller.0.org_id, &r.environment, r.at, &expr)
        .await?;
    Ok(Json(snapshot_view(&s, caller.0.org_id, snap).await?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct SnapshotsQuery {
    /// `A..B` with `N`, `~N` or `NOW` at each end.
    pub interval: Option<String>,
    pub page: Option<u32>,
    pub per_page: Option<u32>,
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/environments/{env}/snapshots", tag = "environments",
    params(("org" = String, Path), ("env" = String, Path), SnapshotsQuery),
    responses((status = 200, body = Page<SnapshotSummary>), (status = 404)))]
pub async fn list_snapshots(
    State(s): State<AppState>,
    caller: Caller,
    Path((_org, env)): Path<(String, String)>,
    Query(q): Query<SnapshotsQuery>,
) -> ApiResult<Json<Page<SnapshotSummary>>> {
    caller.require(Permission::Read)?;
    let (page, per_page) = Paging {
        page: q.page,
        per_page: q.per_page,
    }
    .resolve();
    let latest = s
        .store
        .get_environment(caller.0.org_id, &env)
        .await?
        .latest_snapshot;
    let (from, to) = match q.interval.as_deref() {
        Some(i) => Range::parse(i).map_err(bad)?.resolve(latest),
        None => (1, latest),
    };
    Ok(Json(
        s.store
            .list_snapshots(caller.0.org_id, &env, from, to, page, per_page)
            .await?,
    ))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct DiffQuery {
    /// A snapshot expression: `ENV`, `ENV#N`, `ENV~N`, `ENV@{...}`.
    pub first: String,
    pub second: String,
    /// Also list what runs unchanged in both.
    #[serde(default)]
    pub unchanged: bool,
}

/// How two snapshots differ; they may be of different environments.
#[utoipa::path(get, path = "/api/v1/orgs/{org}/snapshot-diff", tag = "environments",
    params(("org" = String, Path), DiffQuery),
    responses((status = 200, body = SnapshotDiff), (status = 400), (status = 404)))]
pub async fn diff_snapshots(
    State(s): State<AppState>,
    caller: Caller,
    Query(q): Query<DiffQuery>,
) -> ApiResult<Json<SnapshotDiff>> {
    caller.require(Permission::Read)?;
    let now = now_ms();
    let a = SnapshotRef::parse(&q.first, now).map_err(bad)?;
    let b = SnapshotRef::parse(&q.second, now).map_err(bad)?;
    let sa = s
        .store
        .snapshot(caller.0.org_id, &a.environment, a.at, &q.first)
        .await?;
    let sb = s
        .store
        .snapshot(caller.0.org_id, &b.environment, b.at, &q.second)
        .await?;
    let count = |snap: &StoredSnapshot| {
        let mut m: BTreeMap<ArtifactKey, u32> = BTreeMap::new();
        for r in &snap.running {
            *m.entry(r.key.clone()).or_default() += r.instances;
        }
        m
    };
    let (ca, cb) = (count(&sa), count(&sb));
    let fps: Vec<String> = ca
        .keys()
        .chain(cb.keys())
        .map(|k| k.fingerprint.clone())
        .filter(|f| !f.is_empty())
        .collect();
    let flows = flows_by_fingerprint(&s, caller.0.org_id, &fps).await?;
    let entry = |k: &ArtifactKey, x: u32, y: u32| DiffEntry {
        name: k.name.clone(),
        fingerprint: fingerprint(k),
        first_instances: x,
        second_instances: y,
        flows: flows.get(&k.fingerprint).cloned().unwrap_or_default(),
    };
    let mut diff = SnapshotDiff {
        first: id(&sa),
        second: id(&sb),
        only_in_first: vec![],
        only_in_second: vec![],
        scaled: vec![],
        unchanged: vec![],
    };
    for (k, &x) in &ca {
        match cb.get(k) {
            None => diff.only_in_first.push(entry(k, x, 0)),
            Some(&y) if y != x => diff.scaled.push(entry(k, x, y)),
            Some(&y) if q.unchanged => diff.unchanged.push(entry(k, x, y)),
            Some(_) => {}
        }
    }
    for (k, &y) in &cb {
        if !ca.contains_key(k) {
            diff.only_in_second.push(entry(k, 0, y));
        }
    }
    Ok(Json(diff))
}

fn id(s: &StoredSnapshot) -> SnapshotId {
    SnapshotId {
        environment: s.environment.clone(),
        index: s.index,
        timestamp: s.timestamp,
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct EventsQuery {
    /// A time: RFC 3339, `2026-03-01T03:12:00` (UTC), seconds since the
    /// epoch, `NOW` or `N.unit.ago`.
    pub since: Option<String>,
    pub until: Option<String>,
    pub page: Option<u32>,
    pub per_page: Option<u32>,
}

/// Every change of what runs, newest first.
#[utoipa::path(get, path = "/api/v1/orgs/{org}/environments/{env}/events", tag = "environments",
    params(("org" = String, Path), ("env" = String, Path), EventsQuery),
    responses((status = 200, body = Page<EnvironmentEvent>), (status = 400), (status = 404)))]
pub async fn environment_events(
    State(s): State<AppState>,
    caller: Caller,
    Path((_org, env)): Path<(String, String)>,
    Query(q): Query<EventsQuery>,
) -> ApiResult<Json<Page<EnvironmentEvent>>> {
    caller.require(Permission::Read)?;
    let now = now_ms();
    let time = |t: &Option<String>, default: i64| -> ApiResult<i64> {
        match t {
            Some(t) => parse_time(t, now).map_err(bad),
            None => Ok(default),
        }
    };
    let (since, until) = (time(&q.since, 0)?, time(&q.until, i64::MAX)?);
    let (page, per_page) = Paging {
        page: q.page,
        per_page: q.per_page,
    }
    .resolve();
    let events = s
        .store
        .environment_events(caller.0.org_id, &env, since, until, page, per_page)
        .await?;
    let fps: Vec<String> = events
        .items
        .iter()
        .map(|e| e.change.key.fingerprint.clone())
        .filter(|f| !f.is_empty())
        .collect();
    let flows = flows_by_fingerprint(&s, caller.0.org_id, &fps).await?;
    Ok(Json(Page {
        items: events
            .items
            .into_iter()
            .map(|e| EnvironmentEvent {
                flows: flows
                    .get(&e.change.key.fingerprint)
                    .cloned()
                    .unwrap_or_default(),
                environment: e.environment,
                snapshot: e.snapshot,
                timestamp: e.timestamp,
                name: e.change.key.name.clone(),
                fingerprint: fingerprint(&e.change.key),
                kind: e.change.kind(),
                was: e.change.was,
                now: e.change.now,
                description: e.change.describe(),
                instances: e.instances,
                reported_by: e.reported_by,
            })
            .collect(),
        page: events.page,
        per_page: events.per_page,
        total: events.total,
    }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct TimelineQuery {
    /// The window's start: RFC 3339, `2026-03-01T03:12:00` (UTC), seconds
    /// since the epoch, `NOW` or `N.unit.ago`; default a day before `to`.
    pub from: Option<String>,
    /// The window's end; default now.
    pub to: Option<String>,
    /// How many runs, and snapshots, to list at most (the earliest in the
    /// window first); default and most 2000.
    pub limit: Option<u32>,
}

/// How many runs, and snapshots, a timeline lists at most.
pub const TIMELINE_LIMIT: u32 = 2000;

/// What ran over a window of time: the runs that overlap it, the
/// snapshots taken in it, which runs are unknown or non-compliant, and
/// when the environment was not observed.
#[utoipa::path(get, path = "/api/v1/orgs/{org}/environments/{env}/timeline", tag = "environments",
    params(("org" = String, Path), ("env" = String, Path), TimelineQuery),
    responses((status = 200, body = Timeline), (status = 400), (status = 404)))]
pub async fn timeline(
    State(s): State<AppState>,
    caller: Caller,
    Path((_org, env)): Path<(String, String)>,
    Query(q): Query<TimelineQuery>,
) -> ApiResult<Json<Timeline>> {
    const DAY_MS: i64 = 86_400_000;
    caller.require(Permission::Read)?;
    let now = now_ms();
    let to = match &q.to {
        Some(t) => parse_time(t, now).map_err(bad)?,
        None => now,
    };
    let from = match &q.from {
        Some(t) => parse_time(t, now).map_err(bad)?,
        None => to.saturating_sub(DAY_MS),
    };
    if from >= to {
        return Err(bad(format!(
            "the window must end after it starts ('from' {from} ms is not before 'to' {to} ms)"
        )));
    }
    let limit = match q.limit {
        None => TIMELINE_LIMIT,
        Some(n @ 1..=TIMELINE_LIMIT) => n,
        Some(n) => {
            return Err(bad(format!(
                "limit must be between 1 and {TIMELINE_LIMIT}, not {n}"
            )));
        }
    };
    let org_id = caller.0.org_id;
    let t = s.store.timeline(org_id, &env, from, to, limit).await?;
    let coverage = s.store.coverage_until(org_id, &env, now, to).await?;
    let mut fps: Vec<String> = t
        .runs
        .iter()
        .map(|r| r.fingerprint.clone())
        .filter(|f| !f.is_empty())
        .collect();
    fps.sort();
    fps.dedup();
    let prov = provenance(&s, org_id, &fps).await?;
    let mut unknown: Vec<String> = t
        .runs
        .iter()
        .filter(|r| !prov.contains_key(&r.fingerprint))
        .map(|r| r.fingerprint.clone())
        .collect();
    unknown.sort();
    unknown.dedup();
    let non_compliant = prov
        .iter()
        .filter(|(_, p)| !p.iter().any(|p| p.compliant && p.trail_compliant))
        .map(|(f, _)| f.clone())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let gaps = coverage
        .gaps
        .into_iter()
        .filter(|g| g.from < to && g.to.is_none_or(|e| e > from))
        .map(|g| custody_api::Gap {
            from: g.from.max(from),
            to: Some(g.to.unwrap_or(now).min(to)),
            partial: g.partial,
        })
        .collect();
    Ok(Json(Timeline {
        environment: env,
        from,
        to,
        truncated: t.runs_truncated || t.snapshots_truncated,
        runs: t.runs,
        snapshots: t.snapshots,
        unknown,
        non_compliant,
        gaps,
    }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct DoraQuery {
    /// The window's start (a time as for `timeline`); default 30 days
    /// before `until`.
    pub since: Option<String>,
    /// The window's end; default now.
    pub until: Option<String>,
    /// How long after a deployment a rollback or a non-compliant state
    /// counts against it, in hours; default 24.
    pub failure_window_hours: Option<u32>,
}

/// How many runs DORA metrics read at most.
const DORA_RUNS: u32 = 50_000;

/// DORA's four key metrics of an environment, from what was observed
/// running there (definitions in `custody_runtime::dora`).
#[utoipa::path(get, path = "/api/v1/orgs/{org}/environments/{env}/dora", tag = "environments",
    params(("org" = String, Path), ("env" = String, Path), DoraQuery),
    responses((status = 200, body = custody_runtime::dora::Dora), (status = 400), (status = 404)))]
pub async fn dora(
    State(s): State<AppState>,
    caller: Caller,
    Path((_org, env)): Path<(String, String)>,
    Query(q): Query<DoraQuery>,
) -> ApiResult<Json<custody_runtime::dora::Dora>> {
    use custody_runtime::dora::{Known, Run, compute};
    const DAY_MS: i64 = 86_400_000;
    caller.require(Permission::Read)?;
    let now = now_ms();
    let until = match &q.until {
        Some(t) => parse_time(t, now).map_err(bad)?,
        None => now,
    };
    let since = match &q.since {
        Some(t) => parse_time(t, now).map_err(bad)?,
        None => until.saturating_sub(30 * DAY_MS),
    };
    if since >= until {
        return Err(bad(format!(
            "the window must end after it starts ('since' {since} ms is not before 'until' {until} ms)"
        )));
    }
    let hours = q.failure_window_hours.unwrap_or(24);
    if hours == 0 || hours > 24 * 90 {
        return Err(bad(format!(
            "failure_window_hours must be between 1 and 2160, not {hours}"
        )));
    }
    let window = i64::from(hours) * 3_600_000;
    let org_id = caller.0.org_id;
    // A failure shows after the deployment: read on past the window's end.
    let read_to = until.saturating_add(window).min(now.max(until));
    let t = s
        .store
        .timeline(org_id, &env, since, read_to, DORA_RUNS)
        .await?;
    let runs: Vec<Run> = t
        .runs
        .iter()
        .map(|r| Run {
            name: r.name.clone(),
            fingerprint: r.fingerprint.clone(),
            from: r.from,
            to: r.to,
        })
        .collect();
    let mut fps: Vec<String> = runs
        .iter()
        .map(|r| r.fingerprint.clone())
        .filter(|f| !f.is_empty())
        .collect();
    fps.sort();
    fps.dedup();
    let artifacts = s
        .store
        .artifacts_with_fingerprints(org_id, &fps, PROVENANCE_SHOWN)
        .await?;
    // The earliest commit that built it is the change's start.
    let commits = commit_times(&artifacts);
    let prov = judged(&s, org_id, artifacts).await?;
    let mut m = compute(&env, &runs, since, until, window, |fp| {
        let p = prov.get(fp);
        Known {
            known: p.is_some_and(|p| !p.is_empty()),
            compliant: p.is_some_and(|p| p.iter().any(|p| p.compliant && p.trail_compliant)),
            commit_at: commits.get(fp).copied(),
        }
    });
    m.truncated = t.runs_truncated;
    Ok(Json(m))
}
