//! Controls: policies (every version, their text, where attached), the
//! allowlists, controls, and notification actions with their deliveries.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use futures::future::join_all;
use maud::html;
use serde::Deserialize;

use crate::routes::{controls as api, environments, notifications};
use crate::state::AppState;
use crate::web::error::{WebError, WebResult};
use crate::web::html::{Section, env_url, external, fingerprint, org_url, page, when, with_query};
use crate::web::session::Viewer;

fn now() -> i64 {
    custody_store::clock::now_ms()
}

pub async fn overview(State(s): State<AppState>, v: Viewer) -> WebResult<Response> {
    let org = v.org().to_string();
    let Json(policies) = api::list_policies(State(s.clone()), v.caller()).await?;
    let Json(controls) =
        api::list_controls(State(s.clone()), v.caller(), Query(Default::default())).await?;
    let Json(actions) = notifications::list_actions(State(s.clone()), v.caller()).await?;
    let Json(deliveries) = notifications::list_deliveries(
        State(s.clone()),
        v.caller(),
        Query(notifications::DeliveriesQuery {
            action: None,
            limit: Some(50),
        }),
    )
    .await?;
    let Json(envs) = environments::list_environments(
        State(s.clone()),
        v.caller(),
        Query(environments::ListEnvironments { archived: false }),
    )
    .await?;
    let allowlists = join_all(envs.iter().map(|e| {
        let (s, v, org, name) = (s.clone(), v.clone(), org.clone(), e.name.clone());
        async move {
            let Json(list) = api::allowlist(State(s), v.caller(), Path((org, name))).await?;
            Ok::<_, WebError>(list)
        }
    }))
    .await
    .into_iter()
    .collect::<Result<Vec<_>, _>>()?;
    let allowed: Vec<_> = allowlists.into_iter().flatten().collect();
    let now = now();
    let body = html! {
        h1 { "Controls" }
        h2 id="policies" { "Policies" }
        @if policies.is_empty() {
            p.note { "No policy yet: every environment's compliance is unknown. Create one with " code { "custody create policy NAME FILE" } "." }
        } @else {
            div.table-wrap { table {
                caption { "Policies, at their latest version" }
                thead { tr {
                    th scope="col" { "Policy" } th scope="col" { "Type" } th scope="col" class="num" { "Version" }
                    th scope="col" { "Attached to" } th scope="col" { "Created" }
                } }
                tbody { @for p in &policies {
                    tr {
                        th scope="row" { a href=(org_url(&org, &["policies", &p.name])) { (p.name) } }
                        td { (p.kind.as_str()) }
                        td.num { (p.version) }
                        td { @if p.environments.is_empty() { span.muted { "nowhere" } } @else {
                            @for (i, e) in p.environments.iter().enumerate() { @if i > 0 { ", " } a href=(env_url(&org, e)) { (e) } }
                        } }
                        td { (when(p.created_at, now)) }
                    }
                } }
            } }
        }
        h2 id="allowlist" { "Allowlisted artifacts" }
        @if allowed.is_empty() { p.muted { "None." } } @else {
            div.table-wrap { table {
                caption { "Artifacts allowed to run without provenance" }
                thead { tr {
                    th scope="col" { "Environment" } th scope="col" { "Artifact" } th scope="col" { "Fingerprint" }
                    th scope="col" { "Reason" } th scope="col" { "By" } th scope="col" { "When" }
                } }
                tbody { @for a in &allowed {
                    tr {
                        th scope="row" { a href=(env_url(&org, &a.environment)) { (a.environment) } }
                        td { (a.artifact_name.as_deref().unwrap_or("")) }
                        td { (fingerprint(&org, Some(&a.fingerprint))) }
                        td { (a.reason) }
                        td { (a.created_by) }
                        td { (when(a.created_at, now)) }
                    }
                } }
            } }
        }
        h2 id="controls" { "Controls" }
        @if controls.is_empty() { p.muted { "None." } } @else {
            div.table-wrap { table {
                caption { "Controls, at their latest version" }
                thead { tr {
                    th scope="col" { "Control" } th scope="col" { "Name" } th scope="col" class="num" { "Version" }
                    th scope="col" { "Description" } th scope="col" { "Links" } th scope="col" { "Updated" }
                } }
                tbody { @for c in &controls {
                    tr {
                        th scope="row" { (c.identifier) @if c.archived { " " span.muted { "(archived)" } } }
                        td { (c.fields.name) }
                        td.num { (c.version) }
                        td { (c.fields.description.as_deref().unwrap_or("")) }
                        td { @for l in &c.fields.links { (external(l, l)) " " } }
                        td { (when(c.updated_at, now)) }
                    }
                } }
            } }
        }
        h2 id="actions" { "Notification actions" }
        @if actions.is_empty() { p.muted { "None." } } @else {
            div.table-wrap { table {
                caption { "Where alerts go" }
                thead { tr {
                    th scope="col" { "Action" } th scope="col" { "Environments" } th scope="col" { "Triggers" }
                    th scope="col" { "Target" } th scope="col" { "Signed" }
                } }
                tbody { @for a in &actions {
                    tr {
                        th scope="row" { (a.name) }
                        td { (a.environments.join(", ")) }
                        td { (a.triggers.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(", ")) }
                        td { (format!("{:?}", a.target.kind).to_lowercase()) " " code { (a.target.url) } }
                        td { @if a.signed { "yes" } @else { "no" } }
                    }
                } }
            } }
            h3 { "Latest deliveries" }
            @if deliveries.is_empty() { p.muted { "None yet." } } @else {
                div.table-wrap { table {
                    caption { "Deliveries, newest first" }
                    thead { tr {
                        th scope="col" { "Created" } th scope="col" { "Action" } th scope="col" { "Trigger" }
                        th scope="col" { "Environment" } th scope="col" { "State" } th scope="col" class="num" { "Attempts" }
                        th scope="col" { "Last answer" }
                    } }
                    tbody { @for d in &deliveries {
                        tr class=[(d.state == custody_api::DeliveryState::Failed).then_some("flag")] {
                            td { (when(d.created_at, now)) }
                            th scope="row" { (d.action) }
                            td { (d.trigger.as_str()) }
                            td { (d.environment) }
                            td { (d.state.as_str())
                                @if let Some(t) = d.next_attempt_at { br; span.muted { "next try " (when(t, now)) } } }
                            td.num { (d.attempts.len()) }
                            td { @if let Some(a) = d.attempts.last() {
                                @if let Some(c) = a.status_code { "HTTP " (c) }
                                @if let Some(e) = &a.error { " " (e) }
                            } }
                        }
                    } }
                } }
            }
        }
    };
    Ok(page(&v, Section::Controls, "Controls", body))
}

#[derive(Debug, Deserialize)]
pub struct VersionQuery {
    pub version: Option<i64>,
}

pub async fn policy(
    State(s): State<AppState>,
    v: Viewer,
    Path((org, name)): Path<(String, String)>,
    Query(q): Query<VersionQuery>,
) -> WebResult<Response> {
    let Json(p) = api::get_policy(
        State(s.clone()),
        v.caller(),
        Path((org.clone(), name.clone())),
        Query(api::VersionQuery { version: q.version }),
    )
    .await?;
    let Json(latest) = api::get_policy(
        State(s),
        v.caller(),
        Path((org.clone(), name.clone())),
        Query(api::VersionQuery { version: None }),
    )
    .await?;
    let now = now();
    let base = org_url(&org, &["policies", &name]);
    let body = html! {
        p { a href=(org_url(&org, &["controls"])) { "← Controls" } }
        h1 { "Policy " (p.name) " · version " (p.version) }
        dl.facts {
            dt { "Type" } dd { (p.kind.as_str()) }
            @if let Some(d) = &p.description { dt { "Description" } dd { (d) } }
            dt { "SHA-256" } dd { code { (p.sha256) } }
            dt { "Created" } dd { (when(p.created_at, now)) }
            dt { "Attached to" } dd { @if latest.environments.is_empty() { "nowhere" } @else {
                @for (i, e) in latest.environments.iter().enumerate() { @if i > 0 { ", " } a href=(env_url(&org, e)) { (e) } } } }
            dt { "Versions" } dd {
                @for n in (1..=latest.version).rev() {
                    @if n == p.version { strong { "v" (n) } } @else { a href=(with_query(&base, &[("version", n.to_string())])) { "v" (n) } }
                    " "
                }
            }
        }
        h2 { "Text" }
        pre { code { (p.content) } }
    };
    Ok(page(&v, Section::Controls, &format!("Policy {name}"), body))
}
