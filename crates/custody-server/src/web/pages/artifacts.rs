//! An artifact (by fingerprint): every trail that made it, its
//! attestations, and where it runs and has run; and search, by
//! fingerprint or commit, name, or package.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use custody_api::{Artifact, ComponentUse, RuntimeOccurrence, SearchResult, Timeline};
use custody_domain::fingerprint::is_search_prefix;
use maud::{Markup, html};
use serde::Deserialize;

use super::environments::actor;
use crate::routes::{components, flows as api};
use crate::state::AppState;
use crate::web::error::WebResult;
use crate::web::html::{
    Section, env_url, external, fingerprint, in_ledger, org_url, page, trail_url, verdict, when,
    with_query,
};
use crate::web::session::Viewer;
use crate::web::timeline;

fn now() -> i64 {
    custody_store::clock::now_ms()
}

pub async fn artifact(
    State(s): State<AppState>,
    v: Viewer,
    Path((org, fp)): Path<(String, String)>,
) -> WebResult<Response> {
    let Json(found) = api::search(
        State(s.clone()),
        v.caller(),
        Path((org.clone(), fp.clone())),
    )
    .await?;
    // Exactly this fingerprint: a prefix is what search is for.
    let reports: Vec<&Artifact> = found
        .artifacts
        .iter()
        .filter(|a| a.fingerprint == fp)
        .collect();
    let runs: Vec<&RuntimeOccurrence> = found
        .runtime
        .iter()
        .filter(|r| r.fingerprint == fp)
        .collect();
    // Each trail that made it, as the API judges it now.
    let mut trails = vec![];
    for a in &reports {
        if trails
            .iter()
            .any(|t: &custody_api::TrailView| t.flow == a.flow && t.name == a.trail)
        {
            continue;
        }
        let Json(t) = api::get_trail(
            State(s.clone()),
            v.caller(),
            Path((org.clone(), a.flow.clone(), a.trail.clone())),
        )
        .await?;
        trails.push(t);
    }
    let now = now();
    let name = reports
        .first()
        .map(|a| a.display_name.clone())
        .or_else(|| runs.first().map(|r| r.name.clone()))
        .unwrap_or_else(|| "Unknown artifact".into());
    let body = html! {
        h1 { (name) }
        p { "Fingerprint " code { (fp) } }
        @if reports.is_empty() {
            p.warn { "No flow reported this fingerprint: it has no provenance." }
        }
        h2 { "Provenance" }
        @if !trails.is_empty() {
            div.table-wrap { table {
                caption { "Trails that reported this artifact" }
                thead { tr {
                    th scope="col" { "Flow / trail" } th scope="col" { "As" } th scope="col" { "Artifact" }
                    th scope="col" { "Trail" } th scope="col" { "Commit" } th scope="col" { "Reported" }
                } }
                tbody { @for a in &reports {
                    @let t = trails.iter().find(|t| t.flow == a.flow && t.name == a.trail);
                    @let ok = t.map(|t| t.artifacts.iter().filter(|x| x.fingerprint.as_deref() == Some(fp.as_str())).all(|x| x.compliant));
                    tr {
                        th scope="row" { a href=(trail_url(&org, &a.flow, &a.trail)) { (a.flow) " / " (a.trail) } }
                        td { (a.name) }
                        td { @if let Some(ok) = ok { (verdict(ok)) } }
                        td { @if let Some(t) = t { (verdict(t.compliant)) } }
                        td { @if let Some(c) = &a.git_commit {
                            @match &a.commit_url { Some(u) => (external(u, &c[..c.len().min(12)])), None => code { (&c[..c.len().min(12)]) } }
                        } }
                        td { (when(a.created_at, now)) " by " (actor(&a.reported_by)) " · "
                            (in_ledger(&org, "artifact", a.created_at, &[("flow", a.flow.clone()), ("trail", a.trail.clone()), ("fingerprint", a.fingerprint.clone())])) }
                    }
                } }
            } }
            h2 { "Attestations" }
            div.table-wrap { table {
                caption { "Attestations that count for this artifact, in its trails" }
                thead { tr { th scope="col" { "Attestation" } th scope="col" { "Trail" } th scope="col" { "Type" } th scope="col" { "Verdict" } th scope="col" { "Reported" } } }
                tbody { @for t in &trails { @for at in t.attestations.iter().filter(|at| at.fingerprint.is_none() || at.fingerprint.as_deref() == Some(fp.as_str())) {
                    tr {
                        th scope="row" { a href=(org_url(&org, &["attestations", &at.id])) { @if let Some(art) = &at.artifact { (art) "." } (at.name) } }
                        td { (t.flow) " / " (t.name) }
                        td { (at.kind) }
                        td { (verdict(at.compliant)) }
                        td { (when(at.created_at, now)) " · " (in_ledger(&org, "attestation", at.created_at, &[("id", at.id.clone())])) }
                    }
                } } }
            } }
        }
        h2 { "Where it runs and has run" }
        @if runs.is_empty() {
            p.muted { "No reporter has seen it running." }
        } @else {
            (where_it_ran(&org, &runs, now))
        }
    };
    Ok(page(&v, Section::Search, &name, body))
}

fn where_it_ran(org: &str, runs: &[&RuntimeOccurrence], now: i64) -> Markup {
    let from = runs.iter().map(|r| r.from).min().unwrap_or(now);
    // One lane per environment, drawn by the environment timeline.
    let t = Timeline {
        environment: String::new(),
        from: from.min(now - 3_600_000),
        to: now,
        runs: runs
            .iter()
            .map(|r| RuntimeOccurrence {
                name: String::new(),
                ..(*r).clone()
            })
            .collect(),
        snapshots: vec![],
        truncated: false,
        unknown: vec![],
        non_compliant: vec![],
        gaps: vec![],
    };
    html! {
        figure { div.chart { (timeline::chart(&t, "")) } }
        div.table-wrap { table {
            caption { "Runs, newest first" }
            thead { tr {
                th scope="col" { "Environment" } th scope="col" { "As" } th scope="col" class="num" { "Instances" }
                th scope="col" { "From" } th scope="col" { "To" } th scope="col" { "Snapshots" }
            } }
            tbody { @for r in runs {
                tr {
                    th scope="row" { a href=(env_url(org, &r.environment)) { (r.environment) } }
                    td { (r.name) }
                    td.num { (r.instances) }
                    td { (when(r.from, now)) }
                    td { @match r.to { Some(t) => (when(t, now)), None => strong { "running now" } } }
                    td { a href=(with_query(&env_url(org, &r.environment), &[("snapshot", r.first_snapshot.to_string())])) { "#" (r.first_snapshot) }
                        @if let Some(l) = r.last_snapshot { "–#" (l) } }
                }
            } }
        } }
    }
}

#[derive(Debug, Deserialize)]
pub struct SearchQuery {
    pub q: Option<String>,
}

/// What was asked for, as one of the searches the API answers.
enum Asked {
    Hex(String),
    Purl(String),
    Name(String),
}

fn classify(q: &str) -> Asked {
    let lower = q.to_ascii_lowercase();
    let hex = lower.strip_prefix("sha256:").unwrap_or(&lower);
    if is_search_prefix(hex) {
        Asked::Hex(hex.to_string())
    } else if q.starts_with("pkg:") {
        Asked::Purl(q.to_string())
    } else {
        Asked::Name(q.to_string())
    }
}

pub async fn search(
    State(s): State<AppState>,
    v: Viewer,
    Path(org): Path<String>,
    Query(q): Query<SearchQuery>,
) -> WebResult<Response> {
    let text = q.q.as_deref().map(str::trim).unwrap_or("").to_string();
    let now = now();
    let (found, packages): (Option<SearchResult>, Vec<ComponentUse>) = match classify(&text) {
        _ if text.is_empty() => (None, vec![]),
        Asked::Hex(h) => {
            let Json(r) = api::search(State(s), v.caller(), Path((org.clone(), h))).await?;
            (Some(r), vec![])
        }
        Asked::Purl(p) => {
            let Json(c) = components::find_components(
                State(s),
                v.caller(),
                Path(org.clone()),
                Query(components::ComponentQuery {
                    name: None,
                    purl: Some(p),
                    version: None,
                    limit: Some(200),
                }),
            )
            .await?;
            (None, c)
        }
        Asked::Name(n) => {
            let Json(r) = api::search_names(
                State(s.clone()),
                v.caller(),
                Query(api::NameSearch { name: n.clone() }),
            )
            .await?;
            let Json(c) = components::find_components(
                State(s),
                v.caller(),
                Path(org.clone()),
                Query(components::ComponentQuery {
                    name: Some(n),
                    purl: None,
                    version: None,
                    limit: Some(200),
                }),
            )
            .await?;
            (Some(r), c)
        }
    };
    let body = html! {
        h1 { "Search" }
        form.inline method="get" action=(org_url(&org, &["search"])) role="search" {
            div {
                label for="q" { "Fingerprint or prefix, git commit, artifact name, or package (purl)" }
                input id="q" name="q" type="search" value=(text) size="48";
            }
            button type="submit" { "Search" }
        }
        @if let Some(r) = &found {
            h2 { "Artifacts reported by pipelines (" (r.artifacts.len()) ")" }
            @if r.artifacts.is_empty() { p.muted { "None." } } @else {
                div.table-wrap { table {
                    caption { "Artifacts matching '" (text) "'" }
                    thead { tr { th scope="col" { "Artifact" } th scope="col" { "Fingerprint" } th scope="col" { "Flow / trail" } th scope="col" { "Commit" } th scope="col" { "Reported" } } }
                    tbody { @for a in &r.artifacts {
                        tr {
                            th scope="row" { (a.display_name) }
                            td { (fingerprint(&org, Some(&a.fingerprint))) }
                            td { a href=(trail_url(&org, &a.flow, &a.trail)) { (a.flow) " / " (a.trail) } }
                            td { @if let Some(c) = &a.git_commit { code { (&c[..c.len().min(12)]) } } }
                            td { (when(a.created_at, now)) }
                        }
                    } }
                } }
            }
            h2 { "Seen running (" (r.runtime.len()) ")" }
            @if r.runtime.is_empty() { p.muted { "None." } } @else {
                div.table-wrap { table {
                    caption { "Runs matching '" (text) "': each artifact's latest, newest first" }
                    thead { tr { th scope="col" { "Running as" } th scope="col" { "Fingerprint" } th scope="col" { "Environment" } th scope="col" { "From" } th scope="col" { "To" } } }
                    tbody { @for o in &r.runtime {
                        tr {
                            th scope="row" { (o.name) }
                            td { (fingerprint(&org, Some(&o.fingerprint))) }
                            td { a href=(env_url(&org, &o.environment)) { (o.environment) } }
                            td { (when(o.from, now)) }
                            td { @match o.to { Some(t) => (when(t, now)), None => strong { "running now" } } }
                        }
                    } }
                } }
            }
        }
        @if !text.is_empty() && (!packages.is_empty() || matches!(classify(&text), Asked::Purl(_))) {
            h2 { "Packages in SBOMs (" (packages.len()) ")" }
            @if packages.is_empty() { p.muted { "None." } } @else {
                div.table-wrap { table {
                    caption { "SBOM components matching '" (text) "'" }
                    thead { tr { th scope="col" { "Package" } th scope="col" { "Version" } th scope="col" { "Artifact" } th scope="col" { "Flow / trail" } th scope="col" { "SBOM" } } }
                    tbody { @for c in &packages {
                        tr {
                            th scope="row" { (c.name) @if let Some(p) = &c.purl { br; code { (p) } } }
                            td { (c.version.as_deref().unwrap_or("")) }
                            td { (c.artifact.as_deref().unwrap_or("")) " " (fingerprint(&org, c.fingerprint.as_deref())) }
                            td { a href=(trail_url(&org, &c.flow, &c.trail)) { (c.flow) " / " (c.trail) } }
                            td { a href=(org_url(&org, &["attestations", &c.attestation_id])) { (c.attestation_name) } }
                        }
                    } }
                } }
            }
        }
    };
    Ok(page(&v, Section::Search, "Search", body))
}
