//! The page shell and the small pieces every page uses: status badges
//! (always text and an icon, never colour alone), times, fingerprints,
//! links with escaped segments, pagers.

use std::sync::LazyLock;

use axum::http::{HeaderValue, header};
use axum::response::{Html, IntoResponse, Response};
use custody_api::ComplianceStatus;
use maud::{DOCTYPE, Markup, html};
use sha2::{Digest, Sha256};

use super::session::Viewer;
use super::time;

pub const STYLE: &str = include_str!("style.css");

/// The stylesheet's address: named by its content, so browsers may keep
/// it for good and a new release is fetched at once.
pub static STYLE_PATH: LazyLock<String> = LazyLock::new(|| {
    let h = hex::encode(Sha256::digest(STYLE.as_bytes()));
    format!("/assets/style-{}.css", &h[..12])
});

/// The parts of the UI, for the navigation bar.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Environments,
    Flows,
    Search,
    Controls,
    Ledger,
    Dora,
}

impl Section {
    const ALL: [Section; 6] = [
        Section::Environments,
        Section::Flows,
        Section::Search,
        Section::Controls,
        Section::Ledger,
        Section::Dora,
    ];

    fn label(self) -> &'static str {
        match self {
            Section::Environments => "Environments",
            Section::Flows => "Flows",
            Section::Search => "Search",
            Section::Controls => "Controls",
            Section::Ledger => "Ledger",
            Section::Dora => "DORA metrics",
        }
    }

    fn path(self) -> &'static str {
        match self {
            Section::Environments => "environments",
            Section::Flows => "flows",
            Section::Search => "search",
            Section::Controls => "controls",
            Section::Ledger => "ledger",
            Section::Dora => "dora",
        }
    }
}

fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · Custody" }
            link rel="stylesheet" href=(STYLE_PATH.as_str());
        }
    }
}

/// A page of the signed-in UI.
pub fn page(v: &Viewer, section: Section, title: &str, body: Markup) -> Response {
    let org = v.org();
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    nav aria-label="Main" {
                        a.brand href=(org_url(org, &[])) { "Custody" }
                        ul {
                            @for s in Section::ALL {
                                li {
                                    @if s == section {
                                        a href=(org_url(org, &[s.path()])) aria-current="page" { (s.label()) }
                                    } @else {
                                        a href=(org_url(org, &[s.path()])) { (s.label()) }
                                    }
                                }
                            }
                        }
                    }
                    div.who {
                        span { "Org " strong { (org) } " · " (v.principal.service_account) " (" (v.role()) ")" }
                        form method="post" action="/signout" {
                            input type="hidden" name="csrf" value=(v.csrf);
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main id="main" tabindex="-1" {
                    (body)
                }
                footer { "Times are UTC. " a href="/api/v1/openapi.json" { "API" } }
            }
        }
    };
    no_store(Html(markup.into_string()).into_response())
}

/// A page outside the signed-in UI (sign-in, errors).
pub fn bare_page(title: &str, body: Markup) -> Html<String> {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body.bare {
                main id="main" { (body) }
            }
        }
    };
    Html(markup.into_string())
}

/// Pages show live records: never cached.
pub fn no_store(mut r: Response) -> Response {
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// Percent-encodes everything but RFC 3986's unreserved characters, so
/// any name fits in a path segment or a query value.
pub fn path_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn segment(s: &str) -> String {
    path_escape(s).replace('/', "%2F")
}

/// `/orgs/{org}/{parts...}`, each part escaped as one segment.
pub fn org_url(org: &str, parts: &[&str]) -> String {
    let mut u = format!("/orgs/{}", segment(org));
    for p in parts {
        u.push('/');
        u.push_str(&segment(p));
    }
    u
}

/// `path?k=v&...`, values escaped; empty values left out.
pub fn with_query(path: &str, pairs: &[(&str, String)]) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    let mut any = false;
    for (k, v) in pairs {
        if !v.is_empty() {
            q.append_pair(k, v);
            any = true;
        }
    }
    if any {
        format!("{path}?{}", q.finish())
    } else {
        path.to_string()
    }
}

pub fn trail_url(org: &str, flow: &str, trail: &str) -> String {
    org_url(org, &["flows", flow, "trails", trail])
}

pub fn artifact_url(org: &str, fingerprint: &str) -> String {
    org_url(org, &["artifacts", fingerprint])
}

/// "Show in ledger": the entry that wrote a record, located by the
/// server from what the link says of the record.
pub fn in_ledger(org: &str, kind: &str, at: i64, fields: &[(&str, String)]) -> Markup {
    let mut pairs = vec![("kind", kind.to_string()), ("at", at.to_string())];
    pairs.extend(fields.iter().cloned());
    let href = with_query(&org_url(org, &["ledger", "locate"]), &pairs);
    html! { a.ledger href=(href) { "Show in ledger" } }
}

pub fn env_url(org: &str, env: &str) -> String {
    org_url(org, &["environments", env])
}

/// An environment's compliance: icon and word, coloured as a third cue.
pub fn status(s: ComplianceStatus) -> Markup {
    let (class, icon, word) = match s {
        ComplianceStatus::Compliant => ("ok", "✔", "Compliant"),
        ComplianceStatus::NonCompliant => ("bad", "✖", "Non-compliant"),
        ComplianceStatus::Unknown => ("unknown", "?", "Unknown"),
    };
    html! { span class={"status " (class)} { span aria-hidden="true" { (icon) } " " (word) } }
}

/// A yes/no verdict (a trail, an attestation, an artifact).
pub fn verdict(compliant: bool) -> Markup {
    status(if compliant {
        ComplianceStatus::Compliant
    } else {
        ComplianceStatus::NonCompliant
    })
}

/// Running with no provenance at all.
pub fn unknown_badge() -> Markup {
    html! { span class="status bad" { span aria-hidden="true" { "⚠" } " Unknown artifact" } }
}

/// A time, in UTC and relative to now.
pub fn when(ms: i64, now: i64) -> Markup {
    html! {
        time datetime=(time::rfc3339(ms)) {
            (time::utc(ms)) " " span.rel { "(" (time::relative(ms, now)) ")" }
        }
    }
}

pub fn when_opt(ms: Option<i64>, now: i64) -> Markup {
    match ms {
        Some(t) => when(t, now),
        None => html! { span.muted { "never" } },
    }
}

/// A fingerprint, shortened, with the whole in its title and link.
pub fn fingerprint(org: &str, fp: Option<&str>) -> Markup {
    match fp {
        Some(f) if !f.is_empty() => html! {
            a.fp href=(artifact_url(org, f)) title=(f) { code { (&f[..f.len().min(12)]) "…" } }
        },
        _ => html! { span.muted { "no fingerprint" } },
    }
}

/// Previous/next links for a paged list whose state is in the URL.
pub fn pager(base: &str, extra: &[(&str, String)], page: u32, per_page: u32, total: u64) -> Markup {
    let pages = total.div_ceil(u64::from(per_page.max(1))).max(1);
    let link = |p: u64| {
        let mut q: Vec<(&str, String)> = extra.to_vec();
        q.push(("page", p.to_string()));
        with_query(base, &q)
    };
    let page = u64::from(page);
    html! {
        nav.pager aria-label="Pages" {
            @if page > 1 { a rel="prev" href=(link(page - 1)) { "← Newer" } } @else { span.muted { "← Newer" } }
            span { "Page " (page) " of " (pages) " · " (total) " in all" }
            @if page < pages { a rel="next" href=(link(page + 1)) { "Older →" } } @else { span.muted { "Older →" } }
        }
    }
}

/// Text that was JSON, shown as it was sent.
pub fn json_block(label: &str, raw: &str) -> Markup {
    let pretty = serde_json::from_str::<serde_json::Value>(raw)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| raw.to_string());
    html! { figure { figcaption { (label) } pre { code { (pretty) } } } }
}

/// A link that leaves for another site (a build, a commit): marked, and
/// kept from learning where it was followed from.
pub fn external(href: &str, text: &str) -> Markup {
    let safe = href.starts_with("https://") || href.starts_with("http://");
    html! {
        @if safe {
            a href=(href) rel="noopener noreferrer" { (text) " " span aria-hidden="true" { "↗" } }
        } @else {
            code { (href) }
        }
    }
}
