use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use custody_api::{AttestationType, CreateAttestationTypeRequest};
use custody_domain::{Permission, custom_type, names};

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, json_rejection};
use crate::state::AppState;

/// Creates a custom attestation type, or its next version.
#[utoipa::path(post, path = "/api/v1/orgs/{org}/attestation-types", tag = "attestations",
    params(("org" = String, Path)), request_body = CreateAttestationTypeRequest,
    responses((status = 201, body = AttestationType), (status = 422)))]
pub async fn create_type(
    State(s): State<AppState>,
    caller: Caller,
    body: Result<Json<CreateAttestationTypeRequest>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<AttestationType>)> {
    caller.require(Permission::ManageAttestationTypes)?;
    let Json(req) = body.map_err(json_rejection)?;
    names::validate("attestation type name", &req.name)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    custom_type::validate_definition(&req.schema, &req.jq_rules)
        .map_err(|e| ApiError::unprocessable(e.to_string()))?;
    let t = s.store.create_attestation_type(&caller.0, req).await?;
    Ok((StatusCode::CREATED, Json(t)))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/attestation-types", tag = "attestations",
    params(("org" = String, Path)), responses((status = 200, body = Vec<AttestationType>)))]
pub async fn list_types(
    State(s): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<Vec<AttestationType>>> {
    caller.require(Permission::Read)?;
    Ok(Json(s.store.list_attestation_types(caller.0.org_id).await?))
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
