use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use custody_api::{AttestationType, CreateAttestationTypeRequest};
use custody_domain::{Permission, names};

use crate::auth::Caller;
use crate::body::LazyJson;
use crate::error::{ApiError, ApiResult};
use crate::programs::refused;
use crate::state::AppState;

/// Creates a custom attestation type, or its next version.
#[utoipa::path(post, path = "/api/v1/orgs/{org}/attestation-types", tag = "attestations",
    params(("org" = String, Path)), request_body = CreateAttestationTypeRequest,
    responses((status = 201, body = AttestationType), (status = 422)))]
pub async fn create_type(
    State(s): State<AppState>,
    caller: Caller,
    body: LazyJson<CreateAttestationTypeRequest>,
) -> ApiResult<(StatusCode, Json<AttestationType>)> {
    caller.require(Permission::ManageRequirements)?;
    let req = body.read().await?;
    names::validate("attestation type name", &req.name)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    s.sandbox
        .check_type(caller.0.org_id, &req.schema, &req.jq_rules)
        .await
        .map_err(|e| refused(&format!("attestation type '{}'", req.name), e))?
        .map_err(|e| ApiError::unprocessable(e.to_string()))?;
    let t = s.store.create_attestation_type(&caller.0, req).await?;
    Ok((StatusCode::CREATED, Json(t)))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/attestation-types", tag = "attestations",
    params(("org" = String, Path), super::Archived), responses((status = 200, body = Vec<AttestationType>)))]
pub async fn list_types(
    State(s): State<AppState>,
    caller: Caller,
    axum::extract::Query(q): axum::extract::Query<super::Archived>,
) -> ApiResult<Json<Vec<AttestationType>>> {
    caller.require(Permission::Read)?;
    Ok(Json(
        s.store
            .list_attestation_types(caller.0.org_id, q.archived)
            .await?,
    ))
}

/// An archived type takes no new attestations until a new version of it
/// is created; what was attested with it stays.
#[utoipa::path(post, path = "/api/v1/orgs/{org}/attestation-types/{name}/archive", tag = "attestations",
    params(("org" = String, Path), ("name" = String, Path)),
    responses((status = 200, body = AttestationType), (status = 404)))]
pub async fn archive_type(
    State(s): State<AppState>,
    caller: Caller,
    Path((_org, name)): Path<(String, String)>,
) -> ApiResult<Json<AttestationType>> {
    caller.require(Permission::ManageRequirements)?;
    Ok(Json(
        s.store.archive_attestation_type(&caller.0, &name).await?,
    ))
}

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
pub struct VersionQuery {
    /// A version number; the latest when absent.
    pub version: Option<i64>,
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/attestation-types/{name}", tag = "attestations",
    params(("org" = String, Path), ("name" = String, Path), VersionQuery),
    responses((status = 200, body = AttestationType), (status = 404)))]
pub async fn get_type(
    State(s): State<AppState>,
    caller: Caller,
    Path((_org, name)): Path<(String, String)>,
    Query(q): Query<VersionQuery>,
) -> ApiResult<Json<AttestationType>> {
    caller.require(Permission::Read)?;
    Ok(Json(
        s.store
            .get_attestation_type(caller.0.org_id, &name, q.version)
            .await?,
    ))
}
