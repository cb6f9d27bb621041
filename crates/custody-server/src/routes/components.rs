//! Packages listed by SBOM attestations: where is package X?

use axum::Json;
use axum::extract::{Path, Query, State};
use custody_api::ComponentUse;
use custody_domain::Permission;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

#[derive(Debug, Deserialize, IntoParams)]
pub struct ComponentQuery {
    /// Exact component name.
    pub name: Option<String>,
    /// A purl: with a version, that exact package; without, any version.
    pub purl: Option<String>,
    /// Exact version (with `name` or `purl`).
    pub version: Option<String>,
    /// At most 1000; default 100.
    pub limit: Option<u32>,
}

/// SBOM components matching a name or purl, newest first, with the flow,
/// trail and artifact of the SBOM that lists them.
#[utoipa::path(get, path = "/api/v1/orgs/{org}/components", tag = "attestations",
    params(("org" = String, Path), ComponentQuery),
    responses((status = 200, body = Vec<ComponentUse>), (status = 400)))]
pub async fn find_components(
    State(s): State<AppState>,
    caller: Caller,
    Path(_org): Path<String>,
    Query(q): Query<ComponentQuery>,
) -> ApiResult<Json<Vec<ComponentUse>>> {
    caller.require(Permission::Read)?;
    let name = q.name.as_deref().filter(|n| !n.is_empty());
    let purl = q.purl.as_deref().filter(|p| !p.is_empty());
    if name.is_none() && purl.is_none() {
        return Err(ApiError::bad_request("give a component name or a purl"));
    }
    if let Some(p) = purl
        && !p.starts_with("pkg:")
    {
        return Err(ApiError::bad_request(format!(
            "invalid purl '{p}': a package URL starts with pkg:"
        )));
    }
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let found = s
        .store
        .find_components(
            caller.0.org_id,
            name,
            purl,
            q.version.as_deref().filter(|v| !v.is_empty()),
            limit,
        )
        .await?;
    Ok(Json(found))
}

/// The components of one SBOM attestation, in document order.
#[utoipa::path(get, path = "/api/v1/orgs/{org}/attestations/{id}/components", tag = "attestations",
    params(("org" = String, Path), ("id" = String, Path), super::Paging),
    responses((status = 200, body = Object), (status = 404)))]
pub async fn attestation_components(
    State(s): State<AppState>,
    caller: Caller,
    Path((_org, id)): Path<(String, String)>,
    Query(paging): Query<super::Paging>,
) -> ApiResult<Json<custody_api::Page<custody_evidence::sbom::Component>>> {
    caller.require(Permission::Read)?;
    let (page, per_page) = paging.resolve();
    Ok(Json(
        s.store
            .attestation_components(caller.0.org_id, &id, page, per_page)
            .await?,
    ))
}
