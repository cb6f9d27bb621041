use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use custody_api::{
    Artifact, BeginTrailRequest, Flow, Page, PutFlowRequest, ReportArtifactRequest, Saved,
    SearchResult, Trail, TrailArtifact, TrailSummary, TrailView,
};
use custody_domain::compliance::{self, ReportedArtifact, ReportedAttestation};
use custody_domain::fingerprint::is_search_prefix;
use custody_domain::provenance::{validate_annotations, validate_external_urls};
use custody_domain::{AttestationKind, Fingerprint, FlowTemplate, Permission, names};
use custody_store::TrailData;

use super::{Archived, Paging};
use crate::auth::Caller;
use crate::body::LazyJson;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

fn bad(e: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(e.to_string())
}

/// A template must parse, and the custom types it requires must exist: a
/// requirement no attestation could ever meet is a typo found too late.
async fn check_template(s: &AppState, org_id: i64, yaml: &Option<String>) -> ApiResult<()> {
    let Some(y) = yaml else {
        return Ok(());
    };
    let t = FlowTemplate::from_yaml(y).map_err(|e| ApiError::unprocessable(e.to_string()))?;
    let wanted = t.custom_types();
    if wanted.is_empty() {
        return Ok(());
    }
    let known: std::collections::HashSet<String> = s
        .store
        .list_attestation_types(org_id, true)
        .await?
        .into_iter()
        .map(|t| t.name)
        .collect();
    let unknown: Vec<String> = wanted
        .iter()
        .filter(|(name, _)| !known.contains(*name))
        .map(|(name, at)| format!("custom:{name} (attestation {at})"))
        .collect();
    if unknown.is_empty() {
        return Ok(());
    }
    Err(ApiError::unprocessable(format!(
        "invalid template: it requires {}, but the organisation has no such attestation type; create it first (custody create attestation-type NAME --schema FILE)",
        unknown.join(", ")
    )))
}

fn saved_status<T>(s: &Saved<T>) -> StatusCode {
    if s.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    }
}

/// Creates a flow or updates it; a changed template becomes a new version.
#[utoipa::path(put, path = "/api/v1/orgs/{org}/flows", tag = "flows", params(("org" = String, Path)),
    request_body = PutFlowRequest,
    responses((status = 201, body = Saved<Flow>), (status = 200, body = Saved<Flow>), (status = 422)))]
pub async fn put_flow(
    State(s): State<AppState>,
    caller: Caller,
    body: LazyJson<PutFlowRequest>,
) -> ApiResult<(StatusCode, Json<Saved<Flow>>)> {
    caller.require(Permission::ManageRequirements)?;
    let req = body.read().await?;
    names::validate("flow name", &req.name).map_err(bad)?;
    check_template(&s, caller.0.org_id, &req.template_yaml).await?;
    let saved = s
        .store
        .put_flow(&caller.0, &req.name, req.description, req.template_yaml)
        .await?;
    Ok((saved_status(&saved), Json(saved)))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/flows", tag = "flows", params(("org" = String, Path), Archived),
    responses((status = 200, body = Vec<Flow>)))]
pub async fn list_flows(
    State(s): State<AppState>,
    caller: Caller,
    Query(q): Query<Archived>,
) -> ApiResult<Json<Vec<Flow>>> {
    caller.require(Permission::Read)?;
    Ok(Json(s.store.list_flows(caller.0.org_id, q.archived).await?))
}

/// Keeps a flow's history and refuses new trails, artifacts and
/// attestations in it.
#[utoipa::path(post, path = "/api/v1/orgs/{org}/flows/{flow}/archive", tag = "flows",
    params(("org" = String, Path), ("flow" = String, Path)),
    responses((status = 200, body = Flow), (status = 404)))]
pub async fn archive_flow(
    State(s): State<AppState>,
    caller: Caller,
    Path((_org, flow)): Path<(String, String)>,
) -> ApiResult<Json<Flow>> {
    caller.require(Permission::ManageRequirements)?;
    Ok(Json(s.store.archive_flow(&caller.0, &flow).await?))
}

#[utoipa::path(post, path = "/api/v1/orgs/{org}/flows/{flow}/rename", tag = "flows",
    params(("org" = String, Path), ("flow" = String, Path)), request_body = custody_api::RenameRequest,
    responses((status = 200, body = Flow), (status = 404), (status = 409)))]
pub async fn rename_flow(
    State(s): State<AppState>,
    caller: Caller,
    Path((_org, flow)): Path<(String, String)>,
    body: crate::body::LazyJson<custody_api::RenameRequest>,
) -> ApiResult<Json<Flow>> {
    caller.require(Permission::ManageRequirements)?;
    let req = body.read().await?;
    Ok(Json(
        s.store.rename_flow(&caller.0, &flow, &req.new_name).await?,
    ))
}

/// Source repositories named by the trails' repo info.
#[utoipa::path(get, path = "/api/v1/orgs/{org}/repos", tag = "flows",
    params(("org" = String, Path)), responses((status = 200, body = Vec<custody_api::Repo>)))]
pub async fn list_repos(
    State(s): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<Vec<custody_api::Repo>>> {
    caller.require(Permission::Read)?;
    Ok(Json(s.store.list_repos(caller.0.org_id).await?))
}

/// A repository by name (`acme/shop`) and its latest trails.
#[utoipa::path(get, path = "/api/v1/orgs/{org}/repos/{name}", tag = "flows",
    params(("org" = String, Path), ("name" = String, Path)),
    responses((status = 200, body = custody_api::RepoDetail), (status = 404)))]
pub async fn get_repo(
    State(s): State<AppState>,
    caller: Caller,
    Path((_org, name)): Path<(String, String)>,
) -> ApiResult<Json<custody_api::RepoDetail>> {
    caller.require(Permission::Read)?;
    Ok(Json(s.store.get_repo(caller.0.org_id, &name).await?))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/flows/{flow}", tag = "flows",
    params(("org" = String, Path), ("flow" = String, Path)), responses((status = 200, body = Flow), (status = 404)))]
pub async fn get_flow(
    State(s): State<AppState>,
    caller: Caller,
    Path((_org, flow)): Path<(String, String)>,
) -> ApiResult<Json<Flow>> {
    caller.require(Permission::Read)?;
    Ok(Json(s.store.get_flow(caller.0.org_id, &flow).await?))
}

/// Begins a trail, or updates the fields given for an existing one.
#[utoipa::path(put, path = "/api/v1/orgs/{org}/flows/{flow}/trails", tag = "trails",
    params(("org" = String, Path), ("flow" = String, Path)), request_body = BeginTrailRequest,
    responses((status = 201, body = Saved<Trail>), (status = 200, body = Saved<Trail>), (status = 404), (status = 422)))]
pub async fn begin_trail(
    State(s): State<AppState>,
    caller: Caller,
    Path((_org, flow)): Path<(String, String)>,
    body: LazyJson<BeginTrailRequest>,
) -> ApiResult<(StatusCode, Json<Saved<Trail>>)> {
    caller.require(Permission::ReportEvidence)?;
    let req = body.read().await?;
    names::validate("trail name", &req.name).map_err(bad)?;
    if req.template_yaml.is_some() && !caller.role().allows(Permission::ManageRequirements) {
        // A trail's own template replaces its flow's requirements: the key
        // that reports evidence must not be able to lower the bar.
        return Err(ApiError::forbidden(format!(
            "a trail's own template changes what it requires: the role '{}' of '{}' does not allow it (policy-admin or admin does)",
            caller.role(),
            caller.0.service_account
        )));
    }
    check_template(&s, caller.0.org_id, &req.template_yaml).await?;
    if let Some(u) = &req.user_data {
        super::attestations::free_form("user_data", u, &s.limits)?;
    }
    validate_external_urls(&req.external_urls).map_err(bad)?;
    let saved = s.store.begin_trail(&caller.0, &flow, req).await?;
    Ok((saved_status(&saved), Json(saved)))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/flows/{flow}/trails", tag = "trails",
    params(("org" = String, Path), ("flow" = String, Path), Paging),
    responses((status = 200, body = Page<TrailSummary>)))]
pub async fn list_trails(
    State(s): State<AppState>,
    caller: Caller,
    Path((_org, flow)): Path<(String, String)>,
    Query(paging): Query<Paging>,
) -> ApiResult<Json<Page<TrailSummary>>> {
    caller.require(Permission::Read)?;
    let (page, per_page) = paging.resolve();
    Ok(Json(
        s.store
            .list_trails(caller.0.org_id, &flow, page, per_page)
            .await?,
    ))
}

/// A trail with its latest evidence and its compliance, computed now.
#[utoipa::path(get, path = "/api/v1/orgs/{org}/flows/{flow}/trails/{trail}", tag = "trails",
    params(("org" = String, Path), ("flow" = String, Path), ("trail" = String, Path)),
    responses((status = 200, body = TrailView), (status = 404)))]
pub async fn get_trail(
    State(s): State<AppState>,
    caller: Caller,
    Path((_org, flow, trail)): Path<(String, String, String)>,
) -> ApiResult<Json<TrailView>> {
    caller.require(Permission::Read)?;
    let data = s.store.get_trail(caller.0.org_id, &flow, &trail).await?;
    Ok(Json(trail_view(data)?))
}

pub(crate) fn trail_view(data: TrailData) -> ApiResult<TrailView> {
    let template = match data.template_yaml() {
        Some(y) => Some(FlowTemplate::from_yaml(y).map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("stored template is invalid: {e}"),
            )
        })?),
        None => None,
    };
    let artifacts: Vec<ReportedArtifact> = data
        .artifacts
        .iter()
        .map(|a| ReportedArtifact {
            template_name: a.name.clone(),
            fingerprint: a.fingerprint.clone(),
        })
        .collect();
    let attestations = data
        .attestations
        .iter()
        .map(|a| {
            Ok(ReportedAttestation {
                id: a.id.clone(),
                name: a.name.clone(),
                kind: AttestationKind::parse(&a.kind).map_err(|e| {
                    ApiError::new(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        format!("stored attestation {}: {e}", a.id),
                    )
                })?,
                artifact: a.artifact.clone(),
                fingerprint: a.fingerprint.clone(),
                compliant: a.compliant,
                reasons: a.reasons.clone(),
            })
        })
        .collect::<ApiResult<Vec<_>>>()?;
    let c = compliance::evaluate(template.as_ref(), &artifacts, &attestations);
    let current: std::collections::HashSet<&str> = c
        .attestations
        .iter()
        .chain(c.artifacts.iter().flat_map(|a| a.attestations.iter()))
        .filter_map(|slot| slot.attestation_id.as_deref())
        .collect();
    let latest: Vec<_> = data
        .attestations
        .iter()
        .filter(|a| current.contains(a.id.as_str()))
        .cloned()
        .collect();
    let trail_artifacts = c
        .artifacts
        .iter()
        .map(|st| TrailArtifact {
            name: st.name.clone(),
            fingerprint: st.fingerprint.clone(),
            compliant: st.compliant,
            status: st.status,
            artifact: data
                .artifacts
                .iter()
                .rev()
                .find(|a| a.name == st.name)
                .cloned(),
        })
        .collect();
    Ok(TrailView {
        name: data.trail.name.clone(),
        flow: data.trail.flow.clone(),
        compliant: c.compliant,
        status: c.status,
        attestations: latest,
        artifacts: trail_artifacts,
        missing: c.missing.clone(),
        reasons: c.reasons.clone(),
        compliance: c,
        trail: data.trail,
    })
}

/// Records an artifact (by fingerprint) in a trail.
#[utoipa::path(post, path = "/api/v1/orgs/{org}/flows/{flow}/trails/{trail}/artifacts", tag = "artifacts",
    params(("org" = String, Path), ("flow" = String, Path), ("trail" = String, Path)),
    request_body = ReportArtifactRequest, responses((status = 201, body = Artifact), (status = 404)))]
pub async fn report_artifact(
    State(s): State<AppState>,
    caller: Caller,
    Path((_org, flow, trail)): Path<(String, String, String)>,
    body: LazyJson<ReportArtifactRequest>,
) -> ApiResult<(StatusCode, Json<Artifact>)> {
    caller.require(Permission::ReportEvidence)?;
    let req = body.read().await?;
    Fingerprint::parse(&req.fingerprint).map_err(bad)?;
    names::validate("artifact name", &req.name).map_err(bad)?;
    validate_annotations(&req.annotations).map_err(bad)?;
    validate_external_urls(&req.external_urls).map_err(bad)?;
    let a = s
        .store
        .report_artifact(&caller.0, &flow, &trail, req)
        .await?;
    Ok((StatusCode::CREATED, Json(a)))
}

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
pub struct ArtifactQuery {
    /// Only this flow's artifacts.
    pub flow: Option<String>,
    pub page: Option<u32>,
    pub per_page: Option<u32>,
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/artifacts", tag = "artifacts",
    params(("org" = String, Path), ArtifactQuery), responses((status = 200, body = Page<Artifact>)))]
pub async fn list_artifacts(
    State(s): State<AppState>,
    caller: Caller,
    Query(q): Query<ArtifactQuery>,
) -> ApiResult<Json<Page<Artifact>>> {
    caller.require(Permission::Read)?;
    let (page, per_page) = Paging {
        page: q.page,
        per_page: q.per_page,
    }
    .resolve();
    Ok(Json(
        s.store
            .list_artifacts(caller.0.org_id, q.flow.as_deref(), page, per_page)
            .await?,
    ))
}

/// Reports of artifacts in a flow whose fingerprint or commit starts with
/// the given hex.
#[utoipa::path(get, path = "/api/v1/orgs/{org}/flows/{flow}/artifacts/{sha}", tag = "artifacts",
    params(("org" = String, Path), ("flow" = String, Path), ("sha" = String, Path)),
    responses((status = 200, body = Vec<Artifact>), (status = 404)))]
pub async fn get_artifact(
    State(s): State<AppState>,
    caller: Caller,
    Path((_org, flow, sha)): Path<(String, String, String)>,
) -> ApiResult<Json<Vec<Artifact>>> {
    caller.require(Permission::Read)?;
    let q = sha.to_ascii_lowercase();
    if !is_search_prefix(&q) {
        return Err(bad(format!(
            "'{sha}' is not a fingerprint or commit (4 to 64 hex characters)"
        )));
    }
    s.store.get_flow(caller.0.org_id, &flow).await?;
    let found = s.store.search(caller.0.org_id, &q, Some(&flow)).await?;
    if found.is_empty() {
        return Err(ApiError::not_found(format!(
            "no artifact in flow '{flow}' matches '{sha}'"
        )));
    }
    Ok(Json(found))
}

/// Finds artifacts by (partial) fingerprint or git commit.
#[utoipa::path(get, path = "/api/v1/orgs/{org}/search/{sha}", tag = "artifacts",
    params(("org" = String, Path), ("sha" = String, Path)), responses((status = 200, body = SearchResult)))]
pub async fn search(
    State(s): State<AppState>,
    caller: Caller,
    Path((_org, sha)): Path<(String, String)>,
) -> ApiResult<Json<SearchResult>> {
    caller.require(Permission::Read)?;
    let q = sha.to_ascii_lowercase();
    if !is_search_prefix(&q) {
        return Err(bad(format!(
            "'{sha}' is not a fingerprint or commit (4 to 64 hex characters)"
        )));
    }
    let artifacts = s.store.search(caller.0.org_id, &q, None).await?;
    let runtime = s.store.runtime_occurrences(caller.0.org_id, &q).await?;
    Ok(Json(SearchResult {
        query: sha,
        artifacts,
        runtime,
    }))
}

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
pub struct NameSearch {
    /// The start of a name: an artifact's name in its template, or what a
    /// reporter saw running (an image reference, a function, a path).
    pub name: String,
}

/// How many artifacts of each kind a name search lists at most.
const NAME_SEARCH_LIMIT: u32 = 200;

/// Finds artifacts by the start of their name: those pipelines reported,
/// and what ran under such a name (known or not), each with its latest
/// run, newest first.
#[utoipa::path(get, path = "/api/v1/orgs/{org}/search", tag = "artifacts",
    params(("org" = String, Path), NameSearch), responses((status = 200, body = SearchResult), (status = 400)))]
pub async fn search_names(
    State(s): State<AppState>,
    caller: Caller,
    Query(q): Query<NameSearch>,
) -> ApiResult<Json<SearchResult>> {
    caller.require(Permission::Read)?;
    let name = q.name.trim();
    if name.is_empty() {
        return Err(bad("give the start of a name to search for"));
    }
    let artifacts = s
        .store
        .search_artifact_names(caller.0.org_id, name, NAME_SEARCH_LIMIT)
        .await?;
    let runtime = s
        .store
        .runtime_by_name(caller.0.org_id, name, NAME_SEARCH_LIMIT)
        .await?;
    Ok(Json(SearchResult {
        query: name.to_string(),
        artifacts,
        runtime,
    }))
}
