use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use custody_api::{
    ApiKeyCreated, CreateApiKeyRequest, CreateOrgRequest, CreateServiceAccountRequest, OrgCreated,
    ServiceAccount, WhoAmI,
};
use custody_domain::{Permission, names};
use custody_store::NewApiKey;

use crate::auth::{Caller, generate_key};
use crate::error::{ApiError, ApiResult, json_rejection};
use crate::state::AppState;

/// The organisation, account and role of the calling key.
#[utoipa::path(get, path = "/api/v1/whoami", tag = "orgs", responses((status = 200, body = WhoAmI)))]
pub async fn whoami(caller: Caller) -> Json<WhoAmI> {
    let p = caller.0;
    Json(WhoAmI {
        org: p.org,
        service_account: p.service_account,
        role: p.role,
        server_admin: p.server_admin,
    })
}

/// Creates an organisation and returns its first admin key (shown once).
/// Needs a server-admin key.
#[utoipa::path(post, path = "/api/v1/orgs", tag = "orgs", request_body = CreateOrgRequest,
    responses((status = 201, body = OrgCreated), (status = 403), (status = 409)))]
pub async fn create_org(
    State(s): State<AppState>,
    caller: Caller,
    body: Result<Json<CreateOrgRequest>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<(StatusCode, Json<OrgCreated>)> {
    if !caller.0.server_admin {
        return Err(ApiError::forbidden(
            "creating organisations needs a server-admin key",
        ));
    }
    let Json(req) = body.map_err(json_rejection)?;
    names::validate("org name", &req.name).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let (key, hash) = generate_key();
    s.store
        .create_org(
            &req.name,
            NewApiKey {
                id: uuid::Uuid::new_v4().to_string(),
                hash,
                description: Some("first admin key".into()),
                expires_at: None,
            },
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(OrgCreated {
            org: req.name,
            api_key: key,
        }),
    ))
}

#[utoipa::path(post, path = "/api/v1/orgs/{org}/service-accounts", tag = "orgs",
    params(("org" = String, Path)), request_body = CreateServiceAccountRequest,
    responses((status = 201, body = ServiceAccount), (status = 403), (status = 409)))]
pub async fn create_service_account(
    State(s): State<AppState>,
    caller: Caller,
    body: Result<Json<CreateServiceAccountRequest>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<(StatusCode, Json<ServiceAccount>)> {
    caller.require(Permission::ManageServiceAccounts)?;
    let Json(req) = body.map_err(json_rejection)?;
    names::validate("service account name", &req.name)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    if !caller.role().can_grant(req.role) {
        return Err(ApiError::forbidden(format!(
            "a {} cannot create a service account with role {}",
            caller.role(),
            req.role
        )));
    }
    let sa = s.store.create_service_account(&caller.0, req).await?;
    Ok((StatusCode::CREATED, Json(sa)))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/service-accounts", tag = "orgs",
    params(("org" = String, Path)), responses((status = 200, body = Vec<ServiceAccount>)))]
pub async fn list_service_accounts(
    State(s): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<Vec<ServiceAccount>>> {
    caller.require(Permission::Read)?;
    Ok(Json(s.store.list_service_accounts(caller.0.org_id).await?))
}

/// Creates a key for a service account. The secret is in the answer only.
#[utoipa::path(post, path = "/api/v1/orgs/{org}/service-accounts/{account}/api-keys", tag = "orgs",
    params(("org" = String, Path), ("account" = String, Path)), request_body = CreateApiKeyRequest,
    responses((status = 201, body = ApiKeyCreated), (status = 403), (status = 404)))]
pub async fn create_api_key(
    State(s): State<AppState>,
    caller: Caller,
    Path((_org, account)): Path<(String, String)>,
    body: Result<Json<CreateApiKeyRequest>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<(StatusCode, Json<ApiKeyCreated>)> {
    caller.require(Permission::ManageServiceAccounts)?;
    let Json(req) = body.map_err(json_rejection)?;
    let target = s
        .store
        .get_service_account(caller.0.org_id, &account)
        .await?;
    if !caller.role().can_grant(target.role) {
        return Err(ApiError::forbidden(format!(
            "a {} cannot create keys for a service account with role {}",
            caller.role(),
            target.role
        )));
    }
    if let Some(t) = req.expires_at
        && t <= jiff::Timestamp::now().as_millisecond()
    {
        return Err(ApiError::bad_request("expires_at is in the past"));
    }
    let (key, hash) = generate_key();
    let id = uuid::Uuid::new_v4().to_string();
    let created_at = s
        .store
        .create_api_key(
            &caller.0,
            &account,
            NewApiKey {
                id: id.clone(),
                hash,
                description: req.description.clone(),
                expires_at: req.expires_at,
            },
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(ApiKeyCreated {
            id,
            key,
            service_account: account,
            description: req.description,
            created_at,
            expires_at: req.expires_at,
        }),
    ))
}
