//! The ledger: its size, the latest signed checkpoint and whether its
//! signature holds, the entries a page at a time, each entry with its
//! inclusion proof, and audit bundles to download. The page checks what
//! it can (signatures, proofs) but says how to check it without trusting
//! the server: the CLI does the same offline.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{Redirect, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use custody_api::{AuditBundleRequest, Checkpoint, LedgerKey};
use custody_ledger::merkle::{Hash, verify_inclusion};
use custody_ledger::note::{SignedCheckpoint, VerifierKey};
use maud::{Markup, html};
use serde::Deserialize;

use super::environments::actor;
use crate::error::ApiError;
use crate::routes::{audit, environments, ledger as api};
use crate::state::AppState;
use crate::web::error::{WebError, WebResult};
use crate::web::html::{Section, json_block, org_url, page, when, with_query};
use crate::web::session::Viewer;
use crate::web::time;

const PER_PAGE: u64 = 50;

fn now() -> i64 {
    custody_store::clock::now_ms()
}

/// The latest checkpoint, if one was issued yet.
async fn latest(s: &AppState, v: &Viewer) -> WebResult<Option<Checkpoint>> {
    match api::checkpoint(
        State(s.clone()),
        v.caller(),
        Query(api::CheckpointQuery { size: None }),
    )
    .await
    {
        Ok(Json(c)) => Ok(Some(c)),
        Err(e) if e.status == axum::http::StatusCode::NOT_FOUND => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Whether the note is signed by the log's key and says what the fields
/// say.
fn signature_status(cp: &Checkpoint, key: &LedgerKey) -> Result<String, String> {
    let k = VerifierKey::parse(&key.verifier_key)
        .map_err(|e| format!("the log's key does not read: {e}"))?;
    let opened = SignedCheckpoint::open(&cp.note, &k, &[]).map_err(|e| e.to_string())?;
    if opened.checkpoint.size != cp.size || B64.encode(opened.checkpoint.root) != cp.root {
        return Err("the signed note and the answer's fields differ".into());
    }
    Ok(format!("valid signature by {}", k.name()))
}

#[derive(Debug, Deserialize)]
pub struct LedgerQuery {
    /// Show the entries up to this one (newest first); default the latest.
    pub before: Option<u64>,
}

pub async fn overview(
    State(s): State<AppState>,
    v: Viewer,
    Path(org): Path<String>,
    Query(q): Query<LedgerQuery>,
) -> WebResult<Response> {
    let cp = latest(&s, &v).await?;
    let Json(key) = api::key(State(s.clone()), v.caller()).await?;
    // The size first, then the page of entries below the asked-for one.
    let Json(head) = api::entries(
        State(s.clone()),
        v.caller(),
        Query(api::EntriesQuery {
            from: Some(u64::MAX),
            to: Some(u64::MAX),
        }),
    )
    .await?;
    let size = head.size;
    let top = q.before.unwrap_or(size).min(size);
    let from = top.saturating_sub(PER_PAGE);
    let Json(page_entries) = if top == 0 {
        Json(custody_api::LedgerEntries {
            entries: vec![],
            size,
        })
    } else {
        api::entries(
            State(s.clone()),
            v.caller(),
            Query(api::EntriesQuery {
                from: Some(from),
                to: Some(top - 1),
            }),
        )
        .await?
    };
    let Json(envs) = environments::list_environments(
        State(s),
        v.caller(),
        Query(environments::ListEnvironments { archived: false }),
    )
    .await?;
    let now = now();
    let base = org_url(&org, &["ledger"]);
    let body = html! {
        h1 { "Ledger" }
        p { "Every accepted write is an entry in this append-only log, in the same transaction as the write. "
            "Entries are leaves of a Merkle tree (RFC 6962) whose head the server signs as a checkpoint (C2SP). "
            "Check any of it without trusting this server: " code { "custody ledger prove --seq N --public-key KEY" } "." }
        dl.facts {
            dt { "Entries" } dd { (size) }
            dt { "Log key" } dd { code { (key.verifier_key) } }
            @match &cp {
                None => { dt { "Checkpoint" } dd { "none issued yet (the server signs one shortly after a write)" } },
                Some(c) => {
                    dt { "Latest checkpoint" } dd { "size " (c.size) ", signed " (when(c.created_at, now)) }
                    dt { "Root" } dd { code { (c.root) } }
                    dt { "Signature" } dd { @match signature_status(c, &key) {
                        Ok(ok) => span.status.ok { span aria-hidden="true" { "✔" } " " (ok) },
                        Err(e) => span.status.bad { span aria-hidden="true" { "✖" } " does not verify: " (e) },
                    } }
                    dt { "Witnesses" } dd { @if c.witnesses.is_empty() { "none cosigned it" } @else { (c.witnesses.join(", ")) } }
                }
            }
        }
        @if let Some(c) = &cp { details { summary { "The signed note" } pre { code { (c.note) } } } }
        (bundle_form(&org, &v.csrf, &envs, now))
        h2 id="entries" { "Entries" }
        nav.pager aria-label="Pages" {
            @if top < size { a rel="prev" href=(with_query(&base, &[("before", (top + PER_PAGE).min(size).to_string())])) { "← Newer" } }
            span { "Entries " (from) " to " (top.saturating_sub(1)) " of " (size) }
            @if from > 0 { a rel="next" href=(with_query(&base, &[("before", from.to_string())])) { "Older →" } }
        }
        div.table-wrap { table {
            caption { "Ledger entries, newest first" }
            thead { tr {
                th scope="col" class="num" { "Seq" } th scope="col" { "Kind" } th scope="col" { "When" }
                th scope="col" { "By" } th scope="col" { "Leaf hash" }
            } }
            tbody { @for e in page_entries.entries.iter().rev() {
                @let who = serde_json::from_str::<serde_json::Value>(&e.entry).ok()
                    .and_then(|v| serde_json::from_value::<custody_ledger::Actor>(v["actor"].clone()).ok());
                tr {
                    td.num { a href=(org_url(&org, &["ledger", &e.seq.to_string()])) { (e.seq) } }
                    th scope="row" { (e.kind) }
                    td { (when(e.ts, now)) }
                    td { (actor(&who)) }
                    td { code { (&e.leaf_hash[..e.leaf_hash.len().min(16)]) "…" } }
                }
            } }
        } }
    };
    Ok(page(&v, Section::Ledger, "Ledger", body))
}

fn bundle_form(org: &str, csrf: &str, envs: &[custody_api::Environment], now: i64) -> Markup {
    html! {
        h2 id="bundle" { "Export an audit bundle" }
        p { "An environment's history over a window, every entry proven against the latest checkpoint, with the evidence files. "
            "Verify it offline: " code { "custody audit verify FILE --public-key KEY" } "." }
        @if envs.is_empty() { p.muted { "No environment to export." } } @else {
            form.inline method="post" action=(org_url(org, &["ledger", "bundle"])) {
                input type="hidden" name="csrf" value=(csrf);
                div { label for="b-env" { "Environment" }
                    select id="b-env" name="environment" { @for e in envs { option value=(e.name) { (e.name) } } } }
                div { label for="b-from" { "From" } input id="b-from" name="from" type="text" value=(time::rfc3339(now - 7 * 86_400_000)); }
                div { label for="b-to" { "To" } input id="b-to" name="to" type="text" value=(time::rfc3339(now)); }
                button type="submit" { "Download bundle" }
            }
        }
    }
}

/// "Show in ledger" links land here and go on to the entry's page.
pub async fn locate(
    State(s): State<AppState>,
    v: Viewer,
    Path(org): Path<String>,
    Query(q): Query<api::LocateQuery>,
) -> WebResult<Redirect> {
    let Json(e) = api::locate(State(s), v.caller(), Query(q)).await?;
    Ok(Redirect::to(&org_url(
        &org,
        &["ledger", &e.seq.to_string()],
    )))
}

pub async fn entry(
    State(s): State<AppState>,
    v: Viewer,
    Path((org, seq)): Path<(String, u64)>,
) -> WebResult<Response> {
    let Json(got) = api::entries(
        State(s.clone()),
        v.caller(),
        Query(api::EntriesQuery {
            from: Some(seq),
            to: Some(seq),
        }),
    )
    .await?;
    let e = got.entries.into_iter().next().ok_or_else(|| {
        ApiError::not_found(format!(
            "the ledger has no entry {seq} (it holds {})",
            got.size
        ))
    })?;
    let cp = latest(&s, &v).await?;
    let now = now();
    // Proven against the latest checkpoint, when it covers the entry.
    let proof = match &cp {
        Some(c) if c.size > seq => {
            let Json(p) = api::inclusion(
                State(s.clone()),
                v.caller(),
                Query(api::InclusionQuery {
                    seq: Some(seq),
                    leaf_hash: None,
                    tree_size: Some(c.size),
                }),
            )
            .await?;
            let check = check_inclusion(&p, c);
            Some((p, check))
        }
        _ => None,
    };
    let body = html! {
        p { a href=(org_url(&org, &["ledger"])) { "← Ledger" } }
        h1 { "Ledger entry " (e.seq) }
        dl.facts {
            dt { "Kind" } dd { (e.kind) }
            dt { "Written" } dd { (when(e.ts, now)) }
            dt { "Leaf hash" } dd { code { (e.leaf_hash) } }
        }
        h2 { "Inclusion proof" }
        @match &proof {
            None => p.note { "No checkpoint covers this entry yet; the next one will." },
            Some((p, check)) => {
                p { @match check {
                    Ok(()) => span.status.ok { span aria-hidden="true" { "✔" } " Included in the signed tree of " (p.tree_size) " entries" },
                    Err(e) => span.status.bad { span aria-hidden="true" { "✖" } " The proof does not hold: " (e) },
                } }
                p { "Check it yourself: " code { "custody ledger prove --seq " (e.seq) " --public-key KEY" } }
                ol { @for h in &p.proof { li { code { (h) } } } }
            }
        }
        (json_block("The entry (RFC 8785 canonical JSON; its leaf hash is SHA-256(0x00 ‖ these bytes))", &e.entry))
    };
    Ok(page(
        &v,
        Section::Ledger,
        &format!("Ledger entry {seq}"),
        body,
    ))
}

fn check_inclusion(p: &custody_api::InclusionProof, cp: &Checkpoint) -> Result<(), String> {
    let hash = |b64: &str| -> Result<Hash, String> {
        B64.decode(b64)
            .ok()
            .and_then(|b| Hash::try_from(b).ok())
            .ok_or_else(|| format!("'{b64}' is not a hash"))
    };
    let proof = p
        .proof
        .iter()
        .map(|h| hash(h))
        .collect::<Result<Vec<_>, _>>()?;
    verify_inclusion(
        p.seq,
        p.tree_size,
        &hash(&p.leaf_hash)?,
        &proof,
        &hash(&cp.root)?,
    )
    .map_err(|e| e.to_string())
}

#[derive(Debug, Deserialize)]
pub struct BundleForm {
    #[serde(default)]
    pub csrf: String,
    pub environment: String,
    pub from: String,
    pub to: String,
}

/// The API's audit bundle, downloaded from a form (with its CSRF token).
pub async fn bundle(
    State(s): State<AppState>,
    v: Viewer,
    Path(org): Path<String>,
    axum::Form(f): axum::Form<BundleForm>,
) -> WebResult<Response> {
    v.check_csrf(&f.csrf)?;
    let now = now();
    let at = |t: &str, what: &str| {
        custody_runtime::parse_time(t, now)
            .map_err(|e| WebError::Api(ApiError::bad_request(format!("{what}: {e}"))))
    };
    let req = AuditBundleRequest {
        from: at(&f.from, "from")?,
        to: at(&f.to, "to")?,
        flow: None,
        blobs: true,
        since_checkpoint: None,
        absent: None,
    };
    let mut r: Response<Body> = audit::audit_bundle(
        State(s),
        v.caller(),
        Path((org, f.environment.clone())),
        Json(req),
    )
    .await?;
    let name: String = f
        .environment
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if let Ok(h) = HeaderValue::from_str(&format!("attachment; filename=\"{name}-audit.tar.gz\"")) {
        r.headers_mut().insert(header::CONTENT_DISPOSITION, h);
    }
    Ok(r)
}
