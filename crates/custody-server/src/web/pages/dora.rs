//! DORA metrics from what was observed running, per environment, with the
//! definitions written out, and one environment's deployments.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use custody_runtime::dora::Dora;
use futures::future::join_all;
use maud::{Markup, html};
use serde::Deserialize;

use crate::routes::environments as api;
use crate::state::AppState;
use crate::web::error::{WebError, WebResult};
use crate::web::html::{Section, env_url, fingerprint, org_url, page, when, with_query};
use crate::web::session::Viewer;
use crate::web::time;

#[derive(Debug, Deserialize, Default)]
pub struct DoraQuery {
    pub environment: Option<String>,
    pub since: Option<String>,
    pub failure_window_hours: Option<u32>,
}

fn span(ms: Option<i64>) -> String {
    ms.map_or("—".to_string(), time::duration)
}

fn rate(d: &Dora) -> String {
    d.change_failure_rate
        .map_or("—".to_string(), |r| format!("{:.0}%", r * 100.0))
}

pub async fn overview(
    State(s): State<AppState>,
    v: Viewer,
    Path(org): Path<String>,
    Query(q): Query<DoraQuery>,
) -> WebResult<Response> {
    let Json(envs) = api::list_environments(
        State(s.clone()),
        v.caller(),
        Query(api::ListEnvironments { archived: false }),
    )
    .await?;
    let since = q.since.clone().unwrap_or_else(|| "30.days.ago".to_string());
    let hours = q.failure_window_hours.unwrap_or(24);
    let all = join_all(envs.iter().filter(|e| !e.kind.is_logical()).map(|e| {
        let (s, v, org, name, since) = (
            s.clone(),
            v.clone(),
            org.clone(),
            e.name.clone(),
            since.clone(),
        );
        async move {
            let Json(d) = api::dora(
                State(s),
                v.caller(),
                Path((org, name)),
                Query(api::DoraQuery {
                    since: Some(since),
                    until: None,
                    failure_window_hours: Some(hours),
                }),
            )
            .await?;
            Ok::<_, WebError>(d)
        }
    }))
    .await
    .into_iter()
    .collect::<Result<Vec<_>, _>>()?;
    let chosen = q
        .environment
        .as_deref()
        .and_then(|e| all.iter().find(|d| d.environment == e))
        .or_else(|| all.first());
    let now = custody_store::clock::now_ms();
    let base = org_url(&org, &["dora"]);
    let body = html! {
        h1 { "DORA metrics" }
        p { "From what was observed running in each environment — not from what pipelines say they deployed." }
        form.inline method="get" action=(base) aria-label="Window" {
            div { label for="since" { "Since (a time, or N.unit.ago)" } input id="since" name="since" type="text" value=(since); }
            div { label for="fw" { "Failure window (hours)" } input id="fw" name="failure_window_hours" type="number" min="1" max="2160" value=(hours); }
            @if let Some(e) = &q.environment { input type="hidden" name="environment" value=(e); }
            button type="submit" { "Show" }
        }
        @if all.is_empty() { p.note { "No environment yet." } } @else {
            div.table-wrap { table {
                caption { "The four key metrics per environment" }
                thead { tr {
                    th scope="col" { "Environment" }
                    th scope="col" class="num" { "Deployments" }
                    th scope="col" class="num" { "Per day" }
                    th scope="col" { "Lead time (median)" }
                    th scope="col" class="num" { "Change failure rate" }
                    th scope="col" { "Time to restore (median)" }
                } }
                tbody { @for d in &all {
                    tr {
                        th scope="row" { a href=(with_query(&base, &[("environment", d.environment.clone()), ("since", since.clone()), ("failure_window_hours", hours.to_string())])) { (d.environment) } }
                        td.num { (d.deployments) }
                        td.num { (format!("{:.2}", d.deployments_per_day)) }
                        td { (span(d.lead_time.median_ms)) " " span.muted { "(" (d.lead_time.count) " with a known commit)" } }
                        td.num { (rate(d)) " " span.muted { "(" (d.failed_deployments) ")" } }
                        td { (span(d.time_to_restore.median_ms)) @if d.unrestored > 0 { " " span.muted { "(" (d.unrestored) " open)" } } }
                    }
                } }
            } }
        }
        @if let Some(d) = chosen { (deployments(&org, d, now)) }
        (definitions(hours))
    };
    Ok(page(&v, Section::Dora, "DORA metrics", body))
}

fn deployments(org: &str, d: &Dora, now: i64) -> Markup {
    html! {
        h2 { "Deployments in " a href=(env_url(org, &d.environment)) { (d.environment) } }
        p { "From " (when(d.since, now)) " to " (when(d.until, now)) "."
            @if d.truncated { " " strong { "The window holds more runs than are read; choose a shorter one." } } }
        @if d.recent.is_empty() { p.muted { "None in this window." } } @else {
            div.table-wrap { table {
                caption { "Deployments, newest first" }
                thead { tr {
                    th scope="col" { "Deployed" } th scope="col" { "Running as" } th scope="col" { "Fingerprint" }
                    th scope="col" { "Replaced" } th scope="col" { "Lead time" } th scope="col" { "Failed" } th scope="col" { "Restored after" }
                } }
                tbody { @for x in &d.recent {
                    tr class=[x.failure.is_some().then_some("flag")] {
                        td { (when(x.at, now)) }
                        th scope="row" { (x.name) }
                        td { (fingerprint(org, Some(&x.fingerprint))) }
                        td { @match &x.replaced { Some(r) => (fingerprint(org, Some(r))), None => span.muted { "nothing: first seen" } } }
                        td { (span(x.lead_time_ms)) }
                        td { @match &x.failure { Some(f) => { span.status.bad { span aria-hidden="true" { "✖" } " Failed" } " " (f) }, None => "no" } }
                        td { @if x.failure.is_some() { (span(x.restored_after_ms)) } }
                    }
                } }
            } }
        }
    }
}

fn definitions(hours: u32) -> Markup {
    html! {
        h2 id="definitions" { "How these are counted" }
        dl.facts {
            dt { "Service" } dd { "An artifact name without its tag or digest: " code { "registry/payments-api:2" } " is service " code { "registry/payments-api" } "." }
            dt { "Deployment" } dd { "A fingerprint starting to run under a service where, before it, another one ran (or none yet). Rescaling or restarting the same fingerprint is not a deployment." }
            dt { "Deployment frequency" } dd { "Deployments in the window, per day." }
            dt { "Lead time for changes" } dd { "From the commit's time (as the trail that built the fingerprint reported it) to the deployment; median and 90th percentile of the deployments whose commit is known." }
            dt { "Change failure rate" } dd { "The share of deployments that failed: within " (hours) " hours after it, the service rolled back to the fingerprint it replaced, or the deployment itself put something non-compliant in the environment (an artifact no flow knows, or one whose provenance is not compliant)." }
            dt { "Time to restore" } dd { "For each failed deployment, how long the failing version ran — until it was replaced (by a fix or a rollback) or stopped; median. A failing version still running is counted as open." }
        }
    }
}
