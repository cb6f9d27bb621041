//! Flows → trails → a trail: its compliance and why, its artifacts, and
//! each attestation summarised the way its tool's users read it, with the
//! evidence files to download.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, header};
use axum::response::Response;
use custody_api::{Attestation, GitCommitInfo, TrailView};
use custody_evidence::junit::JunitSummary;
use custody_evidence::sarif::SarifSummary;
use custody_evidence::scan::ScanSummary;
use maud::{Markup, html};
use serde::Deserialize;

use super::environments::actor;
use crate::routes::{Paging, attestations, components, evidence, flows as api};
use crate::state::AppState;
use crate::web::error::WebResult;
use crate::web::html::{
    Section, external, fingerprint, in_ledger, json_block, org_url, page, pager, trail_url,
    verdict, when, with_query,
};
use crate::web::session::Viewer;

fn now() -> i64 {
    custody_store::clock::now_ms()
}

pub async fn list(State(s): State<AppState>, v: Viewer) -> WebResult<Response> {
    let Json(flows) = api::list_flows(State(s), v.caller(), Query(Default::default())).await?;
    let org = v.org().to_string();
    let now = now();
    let body = html! {
        h1 { "Flows" }
        @if flows.is_empty() {
            p.note { "No flow yet. Create one with " code { "custody create flow NAME" } "." }
        } @else {
            div.table-wrap { table {
                caption { "Every flow of " (org) }
                thead { tr {
                    th scope="col" { "Flow" } th scope="col" { "Description" }
                    th scope="col" class="num" { "Template version" } th scope="col" { "Tags" }
                    th scope="col" { "Updated" }
                } }
                tbody { @for f in &flows {
                    tr {
                        th scope="row" { a href=(org_url(&org, &["flows", &f.name])) { (f.name) } }
                        td { (f.description.as_deref().unwrap_or("")) }
                        td.num { @match f.template_version { Some(n) => (n), None => "none" } }
                        td { @for (k, val) in &f.tags { code { (k) "=" (val) } " " } }
                        td { (when(f.updated_at, now)) }
                    }
                } }
            } }
        }
    };
    Ok(page(&v, Section::Flows, "Flows", body))
}

#[derive(Debug, Deserialize)]
pub struct PageQuery {
    pub page: Option<u32>,
}

pub async fn flow(
    State(s): State<AppState>,
    v: Viewer,
    Path((org, flow)): Path<(String, String)>,
    Query(q): Query<PageQuery>,
) -> WebResult<Response> {
    let path = || Path((org.clone(), flow.clone()));
    let Json(f) = api::get_flow(State(s.clone()), v.caller(), path()).await?;
    let Json(trails) = api::list_trails(
        State(s),
        v.caller(),
        path(),
        Query(Paging {
            page: q.page,
            per_page: Some(50),
        }),
    )
    .await?;
    let base = org_url(&org, &["flows", &flow]);
    let now = now();
    let body = html! {
        p { a href=(org_url(&org, &["flows"])) { "← Flows" } }
        h1 { "Flow " (f.name) }
        dl.facts {
            @if let Some(d) = &f.description { dt { "Description" } dd { (d) } }
            dt { "Template" } dd { @match f.template_version { Some(n) => { "version " (n) }, None => "none: any evidence is enough" } }
            @if !f.tags.is_empty() { dt { "Tags" } dd { @for (k, val) in &f.tags { code { (k) "=" (val) } " " } } }
            dt { "Created" } dd { (when(f.created_at, now)) }
        }
        @if let Some(y) = &f.template_yaml {
            details { summary { "Template" } pre { code { (y) } } }
        }
        h2 { "Trails" }
        (pager(&base, &[], trails.page, trails.per_page, trails.total))
        div.table-wrap { table {
            caption { "Trails of " (f.name) ", newest first" }
            thead { tr {
                th scope="col" { "Trail" } th scope="col" { "Description" }
                th scope="col" { "Commit" } th scope="col" { "Begun" } th scope="col" { "Updated" }
            } }
            tbody { @for t in &trails.items {
                tr {
                    th scope="row" { a href=(trail_url(&org, &flow, &t.name)) { (t.name) } }
                    td { (t.description.as_deref().unwrap_or("")) }
                    td { @if let Some(c) = &t.git_commit { code { (&c[..c.len().min(12)]) } } }
                    td { (when(t.created_at, now)) }
                    td { (when(t.updated_at, now)) }
                }
            } }
        } }
        (pager(&base, &[], trails.page, trails.per_page, trails.total))
    };
    Ok(page(&v, Section::Flows, &format!("Flow {flow}"), body))
}

pub async fn trail(
    State(s): State<AppState>,
    v: Viewer,
    Path((org, flow, trail)): Path<(String, String, String)>,
) -> WebResult<Response> {
    let Json(t) = api::get_trail(
        State(s),
        v.caller(),
        Path((org.clone(), flow.clone(), trail.clone())),
    )
    .await?;
    let now = now();
    let body = html! {
        p { a href=(org_url(&org, &["flows", &flow])) { "← Flow " (flow) } }
        h1 { "Trail " (t.name) " " (verdict(t.compliant)) }
        (trail_facts(&org, &t, now))
        @if !t.reasons.is_empty() {
            div.warn role="note" {
                strong { "Why it is not compliant:" }
                ul { @for r in &t.reasons { li { (r) } } }
            }
        }
        h2 { "Artifacts" }
        @if t.artifacts.is_empty() { p.muted { "No artifact reported or required." } } @else {
            div.table-wrap { table {
                caption { "Artifacts of the trail" }
                thead { tr {
                    th scope="col" { "Artifact" } th scope="col" { "Fingerprint" } th scope="col" { "Status" }
                    th scope="col" { "Build" } th scope="col" { "Reported" }
                } }
                tbody { @for a in &t.artifacts {
                    tr class=[(!a.compliant).then_some("flag")] {
                        th scope="row" { (a.name) }
                        td { (fingerprint(&org, a.fingerprint.as_deref())) }
                        td { (verdict(a.compliant)) " " span.muted { (status_word(a.status)) } }
                        td { @if let Some(art) = &a.artifact {
                            @if let Some(b) = &art.build_url { (external(b, "build")) " " }
                            @if let Some(c) = &art.commit_url { (external(c, "commit")) }
                        } }
                        td { @if let Some(art) = &a.artifact {
                            (when(art.created_at, now)) " by " (actor(&art.reported_by)) " · "
                            (in_ledger(&org, "artifact", art.created_at, &[("flow", art.flow.clone()), ("trail", art.trail.clone()), ("fingerprint", art.fingerprint.clone())]))
                        } @else { span.muted { "missing" } } }
                    }
                } }
            } }
        }
        h2 { "Attestations" }
        @if t.attestations.is_empty() { p.muted { "No attestation yet." } }
        @for a in &t.attestations { (attestation(&org, a, now)) }
        @if let Some(u) = &t.trail.user_data { (json_block("User data", u.get())) }
    };
    Ok(page(&v, Section::Flows, &format!("Trail {trail}"), body))
}

fn status_word(s: custody_api::Status) -> &'static str {
    match s {
        custody_api::Status::Compliant => "compliant",
        custody_api::Status::NonCompliant => "non-compliant",
        custody_api::Status::Incomplete => "incomplete",
        custody_api::Status::Missing => "missing",
    }
}

fn commit(c: &GitCommitInfo) -> Markup {
    html! {
        code { (&c.sha1[..c.sha1.len().min(12)]) }
        @if !c.message.is_empty() { " — " (c.message.lines().next().unwrap_or("")) }
        @if !c.author.is_empty() { " · " (c.author) }
        @if !c.branch.is_empty() { " · branch " code { (c.branch) } }
        @if let Some(u) = &c.url { " · " (external(u, "view")) }
    }
}

fn trail_facts(org: &str, t: &TrailView, now: i64) -> Markup {
    let tr = &t.trail;
    html! {
        dl.facts {
            dt { "Status" } dd { (status_word(t.status)) }
            @if let Some(d) = &tr.description { dt { "Description" } dd { (d) } }
            @if let Some(c) = &tr.git_commit_info { dt { "Commit" } dd { (commit(c)) } }
            @if let Some(r) = &tr.repo_info { dt { "Repository" } dd {
                (r.name)
                @if !r.url.is_empty() { " · " (external(&r.url, "open")) }
            } }
            @if let Some(o) = &tr.origin_url { dt { "Origin" } dd { (external(o, o)) } }
            @for (name, u) in &tr.external_urls { dt { (name) } dd { (external(&u.href, &u.href)) } }
            @if !t.missing.is_empty() { dt { "Missing" } dd { (t.missing.join(", ")) } }
            dt { "Begun" } dd { (when(tr.created_at, now)) " by " (actor(&tr.created_by)) }
            dt { "Updated" } dd { (when(tr.updated_at, now)) " · "
                (in_ledger(org, "trail", tr.updated_at, &[("flow", tr.flow.clone()), ("trail", tr.name.clone())])) }
        }
    }
}

fn attestation(org: &str, a: &Attestation, now: i64) -> Markup {
    let title = match &a.artifact {
        Some(art) => format!("{art}.{}", a.name),
        None => a.name.clone(),
    };
    html! {
        section.card aria-labelledby=(format!("att-{}", a.id)) {
            h3 id=(format!("att-{}", a.id)) { (title) " " (verdict(a.compliant)) " " span.muted { "(" (a.kind) ")" } }
            p.muted { "Reported " (when(a.created_at, now)) " by " (actor(&a.reported_by))
                " · " a href=(org_url(org, &["attestations", &a.id])) { "details" }
                " · " (in_ledger(org, "attestation", a.created_at, &[("id", a.id.clone())])) }
            (super::change::override_note(a))
            @if !a.reasons.is_empty() { ul { @for r in &a.reasons { li { (r) } } } }
            @if let Some(d) = &a.description { p { (d) } }
            (summary(org, a))
            @if !a.evidence.is_empty() {
                h4 { "Evidence files" }
                ul.plain { @for e in &a.evidence {
                    li {
                        a href=(evidence_url(org, &e.sha256, &e.filename)) download=(download_name(&e.filename)) { (e.filename) }
                        " " span.muted { "(" (bytes(e.size)) ", sha256 " code { (&e.sha256[..e.sha256.len().min(12)]) "…" } ")" }
                    }
                } }
            }
            @for (name, u) in &a.external_urls { p { (name) ": " (external(&u.href, &u.href)) } }
            @if let Some(u) = &a.user_data { (json_block("User data", u.get())) }
        }
    }
}

pub fn evidence_url(org: &str, sha: &str, filename: &str) -> String {
    with_query(
        &org_url(org, &["evidence", sha]),
        &[("name", filename.to_string())],
    )
}

fn bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 30 => format!("{:.1} GiB", n as f64 / (1u64 << 30) as f64),
        n if n >= 1 << 20 => format!("{:.1} MiB", n as f64 / (1u64 << 20) as f64),
        n if n >= 1 << 10 => format!("{:.1} KiB", n as f64 / 1024.0),
        n => format!("{n} bytes"),
    }
}

/// What the tool's report said, as its users read it.
fn summary(org: &str, a: &Attestation) -> Markup {
    if let Some(m) = super::change::summary(a) {
        return m;
    }
    let results = a.data.get("results");
    let kind = a.kind.as_str();
    match kind {
        "junit" => {
            match results.and_then(|r| serde_json::from_value::<JunitSummary>(r.clone()).ok()) {
                Some(j) => junit(&j),
                None => html! {},
            }
        }
        "sarif" => {
            match results.and_then(|r| serde_json::from_value::<SarifSummary>(r.clone()).ok()) {
                Some(s) => sarif(&s),
                None => html! {},
            }
        }
        "snyk" | "trivy" | "grype" => {
            match results.and_then(|r| serde_json::from_value::<ScanSummary>(r.clone()).ok()) {
                Some(s) => scan(
                    &s,
                    a.data.get("severity_threshold").and_then(|t| t.as_str()),
                ),
                None => html! {},
            }
        }
        "sbom" => sbom(org, a),
        _ if kind.starts_with("custom") => match &a.attestation_data {
            Some(d) => json_block("Attestation data", d.get()),
            None => html! {},
        },
        _ => html! {},
    }
}

fn junit(j: &JunitSummary) -> Markup {
    let t = &j.totals;
    html! {
        p { strong { (t.tests) } " tests: " (t.passed) " passed, " (t.failed) " failed, " (t.errored) " errored, "
            (t.skipped) " skipped" @if t.flaky > 0 { ", " (t.flaky) " flaky" } "." }
        @if !j.failures.is_empty() {
            div.table-wrap { table {
                caption { "Failing tests" }
                thead { tr { th scope="col" { "Test" } th scope="col" { "Outcome" } th scope="col" { "Message" } } }
                tbody { @for c in &j.failures {
                    tr {
                        th scope="row" { (c.classname) @if !c.classname.is_empty() { "." } (c.name) }
                        td { (format!("{:?}", c.outcome).to_lowercase()) }
                        td { (c.message) }
                    }
                } }
            } }
            @if j.failures_not_listed > 0 { p.muted { "and " (j.failures_not_listed) " more failures not listed" } }
        }
    }
}

fn sarif(s: &SarifSummary) -> Markup {
    html! {
        p { "Findings: " strong { (s.totals.error) } " error, " (s.totals.warning) " warning, " (s.totals.note) " note." }
        @for r in &s.runs {
            @if let Some(why) = &r.incomplete { p.warn { (r.tool) ": did not complete — " (why) } }
        }
        @if !s.findings.is_empty() {
            div.table-wrap { table {
                caption { "Top findings" }
                thead { tr { th scope="col" { "Rule" } th scope="col" { "Level" } th scope="col" { "Message" } th scope="col" { "Location" } } }
                tbody { @for f in s.findings.iter().take(20) {
                    tr {
                        th scope="row" { (f.rule) }
                        td { (format!("{:?}", f.level).to_lowercase()) }
                        td { (f.message) }
                        td { (f.location.as_deref().unwrap_or("")) }
                    }
                } }
            } }
        }
    }
}

fn scan(s: &ScanSummary, threshold: Option<&str>) -> Markup {
    let c = &s.totals;
    html! {
        p { (s.tool) ": " strong { (c.critical) } " critical, " strong { (c.high) } " high, " (c.medium) " medium, "
            (c.low) " low" @if c.unknown > 0 { ", " (c.unknown) " unknown" } "."
            @if let Some(t) = threshold { " Fails from " (t) " up." } }
        @if let (Some(what), Some(p)) = (&s.counted, &s.paths) {
            p { "Counted: " (what) ". Vulnerable paths: " (p.critical) " critical, " (p.high) " high, "
                (p.medium) " medium, " (p.low) " low." }
        }
        @for why in &s.incomplete { p.warn { (why) } }
        @if !s.findings.is_empty() {
            div.table-wrap { table {
                caption { "Top findings" }
                thead { tr { th scope="col" { "Id" } th scope="col" { "Severity" } th scope="col" { "Package" } th scope="col" { "Fixed in" } th scope="col" { "Title" } } }
                tbody { @for f in s.findings.iter().take(20) {
                    tr {
                        th scope="row" { (f.id) }
                        td { (f.severity.to_string()) }
                        td { (f.package.as_deref().unwrap_or("")) @if let Some(v) = &f.version { " " (v) } }
                        td { (f.fixed_in.as_deref().unwrap_or("")) }
                        td { (f.title) }
                    }
                } }
            } }
        }
    }
}

fn sbom(org: &str, a: &Attestation) -> Markup {
    let d = &a.data;
    let s = |k: &str| d.get(k).and_then(|v| v.as_str()).unwrap_or("").to_string();
    let count = d
        .get("component_count")
        .and_then(|v| v.as_u64())
        .unwrap_or(0);
    html! {
        p { (s("format")) " " (s("spec_version")) " (" (s("encoding")) "): " strong { (count) } " components"
            @if !s("subject").is_empty() { ", describing " (s("subject")) } "." }
        p { a href=(org_url(org, &["attestations", &a.id])) { "List its components" } }
    }
}

fn download_name(filename: &str) -> String {
    let base = filename.rsplit('/').next().unwrap_or(filename);
    base.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[derive(Debug, Deserialize)]
pub struct EvidenceQuery {
    pub name: Option<String>,
}

/// An evidence file, through the API's download (checked against its
/// SHA-256 as it streams), saved under its own name.
pub async fn download(
    State(s): State<AppState>,
    v: Viewer,
    Path((org, sha)): Path<(String, String)>,
    Query(q): Query<EvidenceQuery>,
) -> WebResult<Response> {
    let mut r: Response<Body> =
        evidence::download(State(s), v.caller(), Path((org, sha.clone()))).await?;
    let name = q
        .name
        .as_deref()
        .map(download_name)
        .filter(|n| !n.is_empty())
        .unwrap_or(sha);
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        r.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(r)
}

pub async fn attestation_page(
    State(s): State<AppState>,
    v: Viewer,
    Path((org, id)): Path<(String, String)>,
    Query(q): Query<PageQuery>,
) -> WebResult<Response> {
    let Json(a) = attestations::get_attestation(
        State(s.clone()),
        v.caller(),
        Path((org.clone(), id.clone())),
    )
    .await?;
    let comps = if a.kind == "sbom" {
        let Json(p) = components::attestation_components(
            State(s),
            v.caller(),
            Path((org.clone(), id.clone())),
            Query(Paging {
                page: q.page,
                per_page: Some(100),
            }),
        )
        .await?;
        Some(p)
    } else {
        None
    };
    let now = now();
    let base = org_url(&org, &["attestations", &id]);
    let body = html! {
        p { a href=(trail_url(&org, &a.flow, &a.trail)) { "← Trail " (a.trail) } }
        h1 { "Attestation " (a.name) " " (verdict(a.compliant)) }
        dl.facts {
            dt { "Type" } dd { (a.kind) }
            dt { "Flow / trail" } dd { a href=(trail_url(&org, &a.flow, &a.trail)) { (a.flow) " / " (a.trail) } }
            @if let Some(art) = &a.artifact { dt { "Artifact" } dd { (art) " " (fingerprint(&org, a.fingerprint.as_deref())) } }
            dt { "Reported" } dd { (when(a.created_at, now)) " by " (actor(&a.reported_by)) }
            dt { "Id" } dd { code { (a.id) } }
        }
        (attestation(&org, &a, now))
        @if let Some(p) = comps {
            h2 { "Components" }
            form.inline method="get" action=(org_url(&org, &["search"])) aria-label="Find a component" {
                div { label for="component" { "Find where a package is used (name or purl)" }
                    input id="component" name="q" type="text" placeholder="pkg:npm/lodash"; }
                button type="submit" { "Search" }
            }
            (pager(&base, &[], p.page, p.per_page, p.total))
            div.table-wrap { table {
                caption { "Components in document order" }
                thead { tr { th scope="col" { "Name" } th scope="col" { "Version" } th scope="col" { "purl" } th scope="col" { "Licenses" } } }
                tbody { @for c in &p.items {
                    tr {
                        th scope="row" { (c.name) }
                        td { (c.version.as_deref().unwrap_or("")) }
                        td { @if let Some(u) = &c.purl { a href=(with_query(&org_url(&org, &["search"]), &[("q", u.clone())])) { code { (u) } } } }
                        td { (c.licenses.join(", ")) }
                    }
                } }
            } }
            (pager(&base, &[], p.page, p.per_page, p.total))
        }
    };
    Ok(page(
        &v,
        Section::Flows,
        &format!("Attestation {}", a.name),
        body,
    ))
}
