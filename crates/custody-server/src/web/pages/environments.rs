//! Environments: the overview, one environment (what runs, its timeline,
//! its recent changes, its policies), its change log, and the difference
//! of two snapshots.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use custody_api::{
    ComplianceStatus, Coverage, EnvironmentCompliance, EnvironmentView, Page, Snapshot,
    SnapshotArtifact, Timeline,
};
use custody_ledger::Actor;
use futures::future::join_all;
use maud::{Markup, html};
use serde::Deserialize;

use crate::routes::{controls, environments as api};
use crate::state::AppState;
use crate::web::error::{WebError, WebResult};
use crate::web::html::{
    Section, env_url, external, fingerprint, in_ledger, page, pager, status, trail_url,
    unknown_badge, verdict, when, when_opt, with_query,
};
use crate::web::session::Viewer;
use crate::web::{time, timeline};

fn now() -> i64 {
    custody_store::clock::now_ms()
}

pub fn actor(a: &Option<Actor>) -> String {
    match a {
        Some(Actor::Key {
            service_account, ..
        }) => service_account.clone(),
        Some(Actor::Server { task }) => format!("server ({task})"),
        None => "-".into(),
    }
}

/// How well the environment is watched, in a few words.
fn health(view: &EnvironmentView, now: i64) -> Markup {
    let e = &view.environment;
    let c = &view.coverage;
    let partial = e
        .last_report
        .as_ref()
        .is_some_and(|r| !r.unobserved.is_empty());
    let recent_gaps = recent_gaps(c, now);
    html! {
        @if e.last_reported_at.is_none() {
            span.status.unknown { span aria-hidden="true" { "?" } " No report yet" }
        } @else if c.overdue {
            span.status.bad { span aria-hidden="true" { "⏸" } " Silent: report overdue" }
        } @else if partial {
            span.status.bad { span aria-hidden="true" { "◐" } " Partly observed" }
        } @else {
            span.status.ok { span aria-hidden="true" { "●" } " Reporting" }
        }
        @if recent_gaps > 0 {
            br; span { (recent_gaps) " gap" @if recent_gaps != 1 { "s" } " in observation, last 7 days" }
        }
    }
}

/// The latest periods nobody observed, with how long each lasted.
fn gaps(c: &Coverage, now: i64) -> Markup {
    const SHOWN: usize = 5;
    let latest: Vec<_> = c.gaps.iter().rev().take(SHOWN).collect();
    html! {
        @if !latest.is_empty() {
            details {
                summary { "Periods not observed (" (c.gaps.len()) @if c.earlier_stretches > 0 { "+" } ")" }
                ul { @for g in latest {
                    li {
                        (when(g.from, now)) " to "
                        @match g.to { Some(t) => (when(t, now)), None => "now" }
                        " — " (time::duration(g.to.unwrap_or(now) - g.from))
                        @if !g.partial.is_empty() { ": reports could not see "
                            (g.partial.iter().flat_map(|p| p.unobserved.iter().map(|u| u.scope.as_str())).collect::<std::collections::BTreeSet<_>>().into_iter().collect::<Vec<_>>().join(", ")) }
                    }
                } }
            }
        }
    }
}

fn recent_gaps(c: &Coverage, now: i64) -> usize {
    const WEEK: i64 = 7 * 86_400_000;
    c.gaps
        .iter()
        .filter(|g| g.to.is_none_or(|t| t > now - WEEK))
        .count()
}

pub async fn overview(State(s): State<AppState>, v: Viewer) -> WebResult<Response> {
    let Json(envs) = api::list_environments(
        State(s.clone()),
        v.caller(),
        Query(api::ListEnvironments { archived: false }),
    )
    .await?;
    let org = v.org().to_string();
    // Each environment's view and latest snapshot, read side by side.
    let details = join_all(envs.iter().map(|e| {
        let (s, v, org, name) = (s.clone(), v.clone(), org.clone(), e.name.clone());
        async move {
            let view = api::get_environment(
                State(s.clone()),
                v.caller(),
                Path((org.clone(), name.clone())),
            )
            .await?;
            let snap = api::get_snapshot(
                State(s),
                v.caller(),
                Path((org, name)),
                Query(api::SnapshotQuery { at: None }),
            )
            .await?;
            Ok::<_, WebError>((view.0, snap.0))
        }
    }))
    .await
    .into_iter()
    .collect::<Result<Vec<_>, _>>()?;
    let now = now();
    let body = html! {
        h1 { "Environments" }
        @if details.is_empty() {
            p.note { "No environment yet. Report one with " code { "custody snapshot docker ENV" } " (or k8s, ecs, lambda, s3, paths)." }
        } @else {
            div.table-wrap {
                table {
                    caption { "Every environment of " (org) ", with what runs there now" }
                    thead { tr {
                        th scope="col" { "Environment" }
                        th scope="col" { "Type" }
                        th scope="col" { "Compliance" }
                        th scope="col" class="num" { "Running" }
                        th scope="col" class="num" { "Unknown" }
                        th scope="col" { "Last report" }
                        th scope="col" { "Reporter health" }
                    } }
                    tbody {
                        @for (view, snap) in &details {
                            @let e = &view.environment;
                            tr class=[(snap.unknown > 0 || e.compliance == ComplianceStatus::NonCompliant).then_some("flag")] {
                                th scope="row" { a href=(env_url(&org, &e.name)) { (e.name) } }
                                td { (e.kind) }
                                td { (status(e.compliance)) }
                                td.num { (snap.artifacts.len()) }
                                td.num {
                                    @if snap.unknown > 0 { strong { (snap.unknown) } " " span aria-hidden="true" { "⚠" } } @else { "0" }
                                }
                                td { (when_opt(e.last_reported_at, now)) }
                                td { (health(view, now)) }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(page(&v, Section::Environments, "Environments", body))
}

#[derive(Debug, Deserialize, Default)]
pub struct EnvQuery {
    /// A snapshot: `12`, `#12`, `~1`, or a time.
    pub snapshot: Option<String>,
    /// The timeline's window.
    pub from: Option<String>,
    pub to: Option<String>,
}

/// Runs one chart draws at most: more are not readable as bars, and each
/// needs its provenance judged.
const CHART_RUNS: u32 = 500;

/// A snapshot as typed in the picker, as the API's `at` expression.
pub fn snapshot_expr(s: &str) -> Option<String> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    Some(if s.chars().all(|c| c.is_ascii_digit()) {
        format!("#{s}")
    } else if s.starts_with('#') || s.starts_with('~') || s.starts_with('@') {
        s.to_string()
    } else {
        format!("@{{{s}}}")
    })
}

pub async fn environment(
    State(s): State<AppState>,
    v: Viewer,
    Path((org, env)): Path<(String, String)>,
    Query(q): Query<EnvQuery>,
) -> WebResult<Response> {
    let at = q.snapshot.as_deref().and_then(snapshot_expr);
    let path = || Path((org.clone(), env.clone()));
    let Json(view) = api::get_environment(State(s.clone()), v.caller(), path()).await?;
    let Json(snap) = api::get_snapshot(
        State(s.clone()),
        v.caller(),
        path(),
        Query(api::SnapshotQuery { at: at.clone() }),
    )
    .await?;
    let Json(tl) = api::timeline(
        State(s.clone()),
        v.caller(),
        path(),
        Query(api::TimelineQuery {
            from: q.from.clone(),
            to: q.to.clone(),
            limit: Some(CHART_RUNS),
        }),
    )
    .await?;
    let Json(events) = api::environment_events(
        State(s.clone()),
        v.caller(),
        path(),
        Query(api::EventsQuery {
            since: None,
            until: None,
            page: Some(1),
            per_page: Some(10),
        }),
    )
    .await?;
    let evaluation = match controls::compliance(State(s.clone()), v.caller(), path()).await {
        Ok(Json(c)) => Some(c),
        Err(e) if e.status == axum::http::StatusCode::NOT_FOUND => None,
        Err(e) => return Err(e.into()),
    };
    let now = now();
    let e = &view.environment;
    let title = format!("Environment {}", e.name);
    let body = html! {
        h1 { (e.name) " " (status(e.compliance)) }
        dl.facts {
            dt { "Type" } dd { (e.kind) }
            @if let Some(d) = &e.description { dt { "Description" } dd { (d) } }
            @if !e.included_environments.is_empty() {
                dt { "Joins" } dd { @for (i, m) in e.included_environments.iter().enumerate() {
                    @if i > 0 { ", " } a href=(env_url(&org, m)) { (m) } } }
            }
            dt { "Last report" } dd { (when_opt(e.last_reported_at, now))
                @if let Some(r) = &e.last_report { @if let Some(by) = &r.reporter { " by " (by) } } }
            dt { "Last change" } dd { (when_opt(e.last_changed_at, now)) }
            dt { "Reporter" } dd { (health(&view, now)) }
            dt { "Snapshots" } dd { (e.latest_snapshot) " · " a href=(format!("{}/snapshots", env_url(&org, &e.name))) { "list them" } }
        }
        @if let Some(r) = &e.last_report {
            @if !r.unobserved.is_empty() {
                div.warn role="note" {
                    strong { "The last report could not observe everything:" }
                    ul { @for u in &r.unobserved { li { strong { (u.scope) } ": " (u.reason) } } }
                }
            }
        }
        (gaps(&view.coverage, now))
        (running(&org, &env, &snap, evaluation.as_ref(), now, q.snapshot.as_deref()))
        (timeline_section(&org, &env, &tl, &q, now))
        h2 id="changes" { "Recent changes" }
        (events_table(&org, &events.items, now, false))
        p { a href=(format!("{}/events", env_url(&org, &env))) { "Every change (" (events.total) ")" } }
        (diff_form(&org, &env, snap.index))
        (policies_section(&org, evaluation.as_ref(), now))
    };
    Ok(page(&v, Section::Environments, &title, body))
}

fn running(
    org: &str,
    env: &str,
    snap: &Snapshot,
    evaluation: Option<&EnvironmentCompliance>,
    now: i64,
    asked: Option<&str>,
) -> Markup {
    let latest = snap.replaced_at.is_none();
    html! {
        h2 id="running" {
            @if latest { "Running now" } @else { "Running in snapshot #" (snap.index) }
        }
        form.inline method="get" action=(env_url(org, env)) aria-label="Choose a snapshot" {
            div {
                label for="snapshot" { "Snapshot (number, or a time such as 2026-03-01T03:12:00 or 3.hours.ago)" }
                input id="snapshot" name="snapshot" type="text" value=[asked] placeholder=(snap.index.to_string());
            }
            button type="submit" { "Show" }
            @if !latest { a href=(env_url(org, env)) { "Back to now" } }
        }
        @if snap.index == 0 {
            p.note { "Nothing has been reported yet." }
        } @else {
            p {
                "Snapshot #" (snap.index) ", taken " (when(snap.timestamp, now))
                @if let Some(r) = snap.replaced_at { ", replaced " (when(r, now)) }
                " · reported by " (actor(&snap.reported_by)) " · "
                (snap.artifacts.len()) " artifacts, " (snap.unknown) " unknown."
                // A logical environment's snapshots are joined from its
                // members' when read; only physical ones are written.
                @if snap.members.is_empty() {
                    " · " (in_ledger(org, "snapshot", snap.timestamp, &[("environment", env.to_string()), ("snapshot", snap.index.to_string())]))
                }
            }
            @if !snap.unobserved.is_empty() {
                div.warn role="note" {
                    strong { "This snapshot is only what its report could see; not observed:" }
                    ul { @for u in &snap.unobserved { li { strong { (u.scope) } ": " (u.reason) } } }
                }
            }
            div.table-wrap {
                table {
                    caption { "Artifacts in snapshot #" (snap.index) }
                    thead { tr {
                        th scope="col" { "Artifact" }
                        th scope="col" { "Fingerprint" }
                        th scope="col" class="num" { "Instances" }
                        th scope="col" { "Provenance" }
                        th scope="col" { "Compliance" }
                        th scope="col" { "Running since" }
                    } }
                    tbody {
                        @for a in &snap.artifacts {
                            tr class=[(a.unknown || !artifact_ok(a, evaluation)).then_some("flag")] {
                                th scope="row" { (a.name) }
                                td { (fingerprint(org, a.fingerprint.as_deref())) }
                                td.num { (a.instance_count) }
                                td { (provenance(org, a)) }
                                td { (artifact_compliance(a, evaluation)) }
                                td { (when(a.running_since, now)) }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn provenance(org: &str, a: &SnapshotArtifact) -> Markup {
    html! {
        @if a.unknown {
            (unknown_badge())
        } @else {
            ul.plain {
                @for p in a.provenance.iter().take(3) {
                    li {
                        a href=(trail_url(org, &p.flow, &p.trail)) { (p.flow) " / " (p.trail) }
                        @if let Some(c) = &p.git_commit {
                            " · commit "
                            @match &p.commit_url {
                                Some(u) => (external(u, &c[..c.len().min(8)])),
                                None => code { (&c[..c.len().min(8)]) },
                            }
                        }
                    }
                }
                @if a.provenance.len() > 3 { li.muted { "and " (a.provenance.len() - 3) " more trails" } }
            }
        }
    }
}

/// The policies' verdict for a running artifact in the evaluation of this
/// snapshot, when there is one.
fn policy_verdicts<'a>(
    a: &SnapshotArtifact,
    evaluation: Option<&'a EnvironmentCompliance>,
) -> Vec<&'a custody_api::ArtifactVerdict> {
    let Some(ev) = evaluation else { return vec![] };
    let fp = a.fingerprint.as_deref().unwrap_or("");
    ev.policies
        .iter()
        .flat_map(|p| p.artifacts.iter())
        .filter(|v| v.fingerprint == fp && v.name == a.name)
        .collect()
}

fn artifact_ok(a: &SnapshotArtifact, evaluation: Option<&EnvironmentCompliance>) -> bool {
    let verdicts = policy_verdicts(a, evaluation);
    if !verdicts.is_empty() {
        return verdicts.iter().all(|v| v.compliant);
    }
    a.provenance
        .iter()
        .any(|p| p.compliant && p.trail_compliant)
}

fn artifact_compliance(a: &SnapshotArtifact, evaluation: Option<&EnvironmentCompliance>) -> Markup {
    let verdicts = policy_verdicts(a, evaluation);
    let reasons: Vec<&str> = verdicts.iter().flat_map(|v| v.reasons()).collect();
    html! {
        @if !verdicts.is_empty() {
            (verdict(verdicts.iter().all(|v| v.compliant))) " " span.muted { "by policy" }
            @if !reasons.is_empty() { ul { @for r in &reasons { li { (r) } } } }
        } @else if a.unknown {
            (status(ComplianceStatus::NonCompliant)) ul { li { "no flow reported this fingerprint" } }
        } @else {
            (verdict(artifact_ok(a, None))) " " span.muted { "by its trail" }
        }
    }
}

fn timeline_section(org: &str, env: &str, tl: &Timeline, q: &EnvQuery, now: i64) -> Markup {
    let base = env_url(org, env);
    let keep = |from: &str| {
        let mut pairs = vec![("from", from.to_string())];
        if let Some(snap) = &q.snapshot {
            pairs.push(("snapshot", snap.clone()));
        }
        format!("{}#timeline", with_query(&base, &pairs))
    };
    html! {
        h2 id="timeline" { "Timeline" }
        form.inline method="get" action=(base) aria-label="Timeline window" {
            @if let Some(snap) = &q.snapshot { input type="hidden" name="snapshot" value=(snap); }
            div { label for="from" { "From" } input id="from" name="from" type="text" value=(time::rfc3339(tl.from)); }
            div { label for="to" { "To" } input id="to" name="to" type="text" value=(time::rfc3339(tl.to)); }
            button type="submit" { "Show window" }
            span { "Last: "
                a href=(keep("6.hours.ago")) { "6 hours" } " · "
                a href=(keep("1.days.ago")) { "day" } " · "
                a href=(keep("7.days.ago")) { "week" } " · "
                a href=(keep("30.days.ago")) { "30 days" }
            }
        }
        p { "From " (when(tl.from, now)) " to " (when(tl.to, now)) "." }
        @if tl.truncated {
            p.warn { "More ran in this window than one chart shows; choose a shorter window to see it all." }
        }
        figure {
            div.chart { (timeline::chart(tl, env)) }
        }
        details {
            summary { "Runs in this window, as a table (" (tl.runs.len()) ")" }
            div.table-wrap {
                table {
                    caption { "Runs overlapping the window" }
                    thead { tr {
                        th scope="col" { "Artifact" } th scope="col" { "Fingerprint" }
                        th scope="col" class="num" { "Instances" } th scope="col" { "From" }
                        th scope="col" { "To" } th scope="col" { "Standing" }
                    } }
                    tbody {
                        @for r in &tl.runs {
                            tr {
                                th scope="row" { (r.name) @if r.environment != env { " (" (r.environment) ")" } }
                                td { (fingerprint(org, Some(&r.fingerprint))) }
                                td.num { (r.instances) }
                                td { (when(r.from, now)) }
                                td { @match r.to { Some(t) => (when(t, now)), None => "still running" } }
                                td { @match timeline::standing(tl, r) {
                                    timeline::Standing::Known => "provenance compliant",
                                    timeline::Standing::NonCompliant => (status(ComplianceStatus::NonCompliant)),
                                    timeline::Standing::Unknown => (unknown_badge()),
                                } }
                            }
                        }
                    }
                }
            }
        }
    }
}

pub fn events_table(
    org: &str,
    events: &[custody_api::EnvironmentEvent],
    now: i64,
    env_col: bool,
) -> Markup {
    html! {
        @if events.is_empty() {
            p.note { "No change recorded." }
        } @else {
            div.table-wrap {
                table {
                    caption { "Changes of what runs, newest first" }
                    thead { tr {
                        th scope="col" { "When" }
                        @if env_col { th scope="col" { "Environment" } }
                        th scope="col" { "Snapshot" }
                        th scope="col" { "Artifact" }
                        th scope="col" { "Change" }
                        th scope="col" { "Fingerprint" }
                        th scope="col" { "Known to" }
                        th scope="col" class="hide-narrow" { "Reported by" }
                    } }
                    tbody {
                        @for ev in events {
                            tr class=[ev.flows.is_empty().then_some("flag")] {
                                td { (when(ev.timestamp, now)) }
                                @if env_col { td { (ev.environment) } }
                                td { a href=(with_query(&env_url(org, &ev.environment), &[("snapshot", ev.snapshot.to_string())])) { "#" (ev.snapshot) } }
                                th scope="row" { (ev.name) }
                                td { (ev.description) }
                                td { (fingerprint(org, ev.fingerprint.as_deref())) }
                                td { @if ev.flows.is_empty() { (unknown_badge()) } @else { (ev.flows.join(", ")) } }
                                td.hide-narrow { (actor(&ev.reported_by)) }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn diff_form(org: &str, env: &str, latest: u64) -> Markup {
    html! {
        h2 id="compare" { "Compare two snapshots" }
        form.inline method="get" action=(format!("{}/diff", env_url(org, env))) aria-label="Compare snapshots" {
            div { label for="first" { "First" } input id="first" name="first" type="text" value=(latest.saturating_sub(1).max(1)); }
            div { label for="second" { "Second" } input id="second" name="second" type="text" value=(latest.max(1)); }
            button type="submit" { "Compare" }
        }
    }
}

fn policies_section(org: &str, evaluation: Option<&EnvironmentCompliance>, now: i64) -> Markup {
    html! {
        h2 id="policies" { "Policies and the latest evaluation" }
        @match evaluation {
            None => p.note { "No policy judges this environment, so its compliance is unknown. Attach one with "
                code { "custody attach-policy POLICY --environment ENV" } "." },
            Some(ev) => {
                p { (status(ev.status)) " — evaluation " (ev.evaluation) " of snapshot #" (ev.snapshot) ", "
                    (when(ev.evaluated_at, now)) ", because of: " (ev.cause) "." }
                div.table-wrap { table {
                    caption { "Policies applied" }
                    thead { tr { th scope="col" { "Policy" } th scope="col" class="num" { "Version" } th scope="col" { "Verdict" } th scope="col" { "Failing artifacts" } } }
                    tbody {
                        @for p in &ev.policies {
                            tr {
                                th scope="row" { a href=(crate::web::html::org_url(org, &["controls"])) { (p.policy) } }
                                td.num { (p.version) }
                                td { (verdict(p.compliant)) }
                                td { ul.plain { @for a in p.artifacts.iter().filter(|a| !a.compliant) {
                                    li { strong { (a.name) } ": " (a.reasons().collect::<Vec<_>>().join("; ")) }
                                } } }
                            }
                        }
                    }
                } }
            }
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct PageQuery {
    pub page: Option<u32>,
}

pub async fn events(
    State(s): State<AppState>,
    v: Viewer,
    Path((org, env)): Path<(String, String)>,
    Query(q): Query<PageQuery>,
) -> WebResult<Response> {
    const PER_PAGE: u32 = 50;
    let Json(events): Json<Page<custody_api::EnvironmentEvent>> = api::environment_events(
        State(s),
        v.caller(),
        Path((org.clone(), env.clone())),
        Query(api::EventsQuery {
            since: None,
            until: None,
            page: q.page,
            per_page: Some(PER_PAGE),
        }),
    )
    .await?;
    let base = format!("{}/events", env_url(&org, &env));
    let body = html! {
        p { a href=(env_url(&org, &env)) { "← " (env) } }
        h1 { "Changes in " (env) }
        (pager(&base, &[], events.page, events.per_page, events.total))
        (events_table(&org, &events.items, now(), false))
        (pager(&base, &[], events.page, events.per_page, events.total))
    };
    Ok(page(
        &v,
        Section::Environments,
        &format!("Changes in {env}"),
        body,
    ))
}

pub async fn snapshots(
    State(s): State<AppState>,
    v: Viewer,
    Path((org, env)): Path<(String, String)>,
    Query(q): Query<PageQuery>,
) -> WebResult<Response> {
    let Json(list) = api::list_snapshots(
        State(s),
        v.caller(),
        Path((org.clone(), env.clone())),
        Query(api::SnapshotsQuery {
            interval: None,
            page: q.page,
            per_page: Some(50),
        }),
    )
    .await?;
    let base = format!("{}/snapshots", env_url(&org, &env));
    let now = now();
    let body = html! {
        p { a href=(env_url(&org, &env)) { "← " (env) } }
        h1 { "Snapshots of " (env) }
        (pager(&base, &[], list.page, list.per_page, list.total))
        div.table-wrap { table {
            caption { "Snapshots, newest first" }
            thead { tr {
                th scope="col" { "Snapshot" } th scope="col" { "Taken" } th scope="col" { "Replaced" }
                th scope="col" class="num" { "Artifacts" } th scope="col" class="num" { "Instances" }
                th scope="col" class="num" { "Changes" } th scope="col" { "Reported by" } th scope="col" { "Compare" }
            } }
            tbody {
                @for sn in &list.items {
                    tr {
                        th scope="row" { a href=(with_query(&env_url(&org, &env), &[("snapshot", sn.index.to_string())])) { "#" (sn.index) } }
                        td { (when(sn.timestamp, now)) }
                        td { (when_opt(sn.replaced_at, now)) }
                        td.num { (sn.artifacts) } td.num { (sn.instances) } td.num { (sn.changes) }
                        td { (actor(&sn.reported_by)) }
                        td { @if sn.index > 1 {
                            a href=(with_query(&format!("{}/diff", env_url(&org, &env)), &[("first", (sn.index - 1).to_string()), ("second", sn.index.to_string())])) { "with #" (sn.index - 1) }
                        } }
                    }
                }
            }
        } }
        (pager(&base, &[], list.page, list.per_page, list.total))
    };
    Ok(page(
        &v,
        Section::Environments,
        &format!("Snapshots of {env}"),
        body,
    ))
}

#[derive(Debug, Deserialize)]
pub struct DiffQuery {
    pub first: Option<String>,
    pub second: Option<String>,
}

pub async fn diff(
    State(s): State<AppState>,
    v: Viewer,
    Path((org, env)): Path<(String, String)>,
    Query(q): Query<DiffQuery>,
) -> WebResult<Response> {
    let side = |x: &Option<String>, default: &str| {
        let e = x
            .as_deref()
            .and_then(snapshot_expr)
            .unwrap_or_else(|| default.to_string());
        format!("{env}{e}")
    };
    let (first, second) = (side(&q.first, "~1"), side(&q.second, ""));
    let Json(d) = api::diff_snapshots(
        State(s),
        v.caller(),
        Query(api::DiffQuery {
            first,
            second,
            unchanged: true,
        }),
    )
    .await?;
    let now = now();
    let section = |title: &str, entries: &[custody_api::DiffEntry]| {
        html! {
            h2 { (title) " (" (entries.len()) ")" }
            @if entries.is_empty() { p.muted { "None." } } @else {
                div.table-wrap { table {
                    caption { (title) }
                    thead { tr {
                        th scope="col" { "Artifact" } th scope="col" { "Fingerprint" }
                        th scope="col" class="num" { "Instances in #" (d.first.index) }
                        th scope="col" class="num" { "Instances in #" (d.second.index) }
                        th scope="col" { "Known to" }
                    } }
                    tbody { @for e in entries {
                        tr class=[e.flows.is_empty().then_some("flag")] {
                            th scope="row" { (e.name) }
                            td { (fingerprint(&org, e.fingerprint.as_deref())) }
                            td.num { (e.first_instances) } td.num { (e.second_instances) }
                            td { @if e.flows.is_empty() { (unknown_badge()) } @else { (e.flows.join(", ")) } }
                        }
                    } }
                } }
            }
        }
    };
    let body = html! {
        p { a href=(env_url(&org, &env)) { "← " (env) } }
        h1 { (env) ": snapshot #" (d.first.index) " compared with #" (d.second.index) }
        p { "#" (d.first.index) " was taken " (when(d.first.timestamp, now)) "; #" (d.second.index) " " (when(d.second.timestamp, now)) "." }
        (diff_form(&org, &env, d.second.index))
        (section(&format!("Only in #{}", d.first.index), &d.only_in_first))
        (section(&format!("Only in #{}", d.second.index), &d.only_in_second))
        (section("Scaled", &d.scaled))
        (section("Unchanged", &d.unchanged))
    };
    Ok(page(
        &v,
        Section::Environments,
        &format!("{env}: compare snapshots"),
        body,
    ))
}

#[cfg(test)]
mod tests {
    use super::snapshot_expr;

    #[test]
    fn the_picker_takes_numbers_and_times() {
        assert_eq!(snapshot_expr("12").as_deref(), Some("#12"));
        assert_eq!(snapshot_expr("#3").as_deref(), Some("#3"));
        assert_eq!(snapshot_expr("~1").as_deref(), Some("~1"));
        assert_eq!(
            snapshot_expr("3.hours.ago").as_deref(),
            Some("@{3.hours.ago}")
        );
        assert_eq!(snapshot_expr(" "), None);
    }
}
