//! Organisations, service accounts and API keys.
//!
//! Who may manage which account or key is decided by the store, inside the
//! write, from the account concerned (see custody-store's `auth.rs`); these
//! handlers check what can be checked before reading a body.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use custody_api::{
    ApiKeyCreated, ApiKeyInfo, ApiKeyRotated, CreateApiKeyRequest, CreateOrgRequest,
    CreateServiceAccountRequest, OrgCreated, OrgSettings, RotateApiKeyRequest, ServiceAccount,
    UpdateServiceAccountRequest, WhoAmI,
};
use custody_domain::{Permission, names};
use custody_store::NewApiKey;
use serde::Deserialize;

use crate::auth::{Caller, generate_key};
use crate::body::LazyJson;
use crate::error::{ApiError, ApiResult};
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
        key_id: p.key_id,
    })
}

/// Creates an organisation and returns its first admin key (shown once).
/// Needs a server-admin key.
#[utoipa::path(post, path = "/api/v1/orgs", tag = "orgs", request_body = CreateOrgRequest,
    responses((status = 201, body = OrgCreated), (status = 403), (status = 409)))]
pub async fn create_org(
    State(s): State<AppState>,
    caller: Caller,
    body: LazyJson<CreateOrgRequest>,
) -> ApiResult<(StatusCode, Json<OrgCreated>)> {
    if !caller.0.server_admin {
        return Err(ApiError::forbidden(
            "creating organisations needs a server-admin key",
        ));
    }
    let req = body.read().await?;
    names::validate("org name", &req.name).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let (key, hash) = generate_key();
    s.store
        .create_org(
            &caller.0,
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

#[utoipa::path(get, path = "/api/v1/orgs/{org}/settings", tag = "orgs",
    params(("org" = String, Path)), responses((status = 200, body = OrgSettings)))]
pub async fn get_settings(
    State(s): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<OrgSettings>> {
    caller.require(Permission::Read)?;
    Ok(Json(s.store.org_settings(caller.0.org_id).await?))
}

/// Sets the organisation's settings (admins).
#[utoipa::path(put, path = "/api/v1/orgs/{org}/settings", tag = "orgs",
    params(("org" = String, Path)), request_body = OrgSettings,
    responses((status = 200, body = OrgSettings), (status = 403), (status = 422)))]
pub async fn put_settings(
    State(s): State<AppState>,
    caller: Caller,
    body: LazyJson<OrgSettings>,
) -> ApiResult<Json<OrgSettings>> {
    caller.require(Permission::ManageServiceAccounts)?;
    let req = body.read().await?;
    Ok(Json(s.store.put_org_settings(&caller.0, req).await?))
}

#[utoipa::path(post, path = "/api/v1/orgs/{org}/service-accounts", tag = "orgs",
    params(("org" = String, Path)), request_body = CreateServiceAccountRequest,
    responses((status = 201, body = ServiceAccount), (status = 403), (status = 409)))]
pub async fn create_service_account(
    State(s): State<AppState>,
    caller: Caller,
    body: LazyJson<CreateServiceAccountRequest>,
) -> ApiResult<(StatusCode, Json<ServiceAccount>)> {
    caller.require(Permission::ManageServiceAccounts)?;
    let req = body.read().await?;
    names::validate("service account name", &req.name)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
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

/// Gives an account another role (admins; not their own account).
#[utoipa::path(patch, path = "/api/v1/orgs/{org}/service-accounts/{account}", tag = "orgs",
    params(("org" = String, Path), ("account" = String, Path)), request_body = UpdateServiceAccountRequest,
    responses((status = 200, body = ServiceAccount), (status = 403), (status = 404)))]
pub async fn update_service_account(
    State(s): State<AppState>,
    caller: Caller,
    Path((_org, account)): Path<(String, String)>,
    body: LazyJson<UpdateServiceAccountRequest>,
) -> ApiResult<Json<ServiceAccount>> {
    caller.require(Permission::ManageServiceAccounts)?;
    let req = body.read().await?;
    Ok(Json(
        s.store
            .update_service_account(&caller.0, &account, req.role)
            .await?,
    ))
}

/// Deletes an account and revokes every key it holds.
#[utoipa::path(delete, path = "/api/v1/orgs/{org}/service-accounts/{account}", tag = "orgs",
    params(("org" = String, Path), ("account" = String, Path)),
    responses((status = 200, body = ServiceAccount), (status = 403), (status = 404)))]
pub async fn delete_service_account(
    State(s): State<AppState>,
    caller: Caller,
    Path((_org, account)): Path<(String, String)>,
) -> ApiResult<Json<ServiceAccount>> {
    caller.require(Permission::ManageServiceAccounts)?;
    Ok(Json(
        s.store.delete_service_account(&caller.0, &account).await?,
    ))
}

/// When a new key expires, from what was asked (an instant, or a lifetime
/// from now); the store bounds it by the organisation's maximum.
fn expiry(at: Option<i64>, within_ms: Option<i64>) -> ApiResult<Option<i64>> {
    let now = custody_store::clock::now_ms();
    match (at, within_ms) {
        (Some(_), Some(_)) => Err(ApiError::bad_request(
            "give expires_at or expires_in_ms, not both",
        )),
        (Some(t), None) if t <= now => Err(ApiError::bad_request("expires_at is in the past")),
        (Some(t), None) => Ok(Some(t)),
        (None, Some(ms)) if ms <= 0 => Err(ApiError::bad_request("expires_in_ms must be positive")),
        (None, Some(ms)) => Ok(Some(now.saturating_add(ms))),
        (None, None) => Ok(None),
    }
}

/// Creates a key for a service account; the secret is in the answer only.
/// Any key may create keys for its own account; only admins for others;
/// the server-admin account's only with its own key.
#[utoipa::path(post, path = "/api/v1/orgs/{org}/service-accounts/{account}/api-keys", tag = "orgs",
    params(("org" = String, Path), ("account" = String, Path)), request_body = CreateApiKeyRequest,
    responses((status = 201, body = ApiKeyCreated), (status = 403), (status = 404)))]
pub async fn create_api_key(
    State(s): State<AppState>,
    caller: Caller,
    Path((_org, account)): Path<(String, String)>,
    body: LazyJson<CreateApiKeyRequest>,
) -> ApiResult<(StatusCode, Json<ApiKeyCreated>)> {
    if account != caller.0.service_account {
        caller.require(Permission::ManageServiceAccounts)?;
    }
    let req = body.read().await?;
    let expires_at = expiry(req.expires_at, req.expires_in_ms)?;
    let (key, hash) = generate_key();
    let stored = s
        .store
        .create_api_key(
            &caller.0,
            &account,
            NewApiKey {
                id: uuid::Uuid::new_v4().to_string(),
                hash,
                description: req.description,
                expires_at,
            },
        )
        .await?;
    Ok((StatusCode::CREATED, Json(created(stored, key))))
}

fn created(k: ApiKeyInfo, key: String) -> ApiKeyCreated {
    ApiKeyCreated {
        id: k.id,
        key,
        service_account: k.service_account,
        description: k.description,
        created_at: k.created_at,
        expires_at: k.expires_at,
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct KeyFilter {
    /// Only this account's keys.
    pub service_account: Option<String>,
}

/// Keys of the organisation: all of them for admins, one's own otherwise.
/// Never a secret.
#[utoipa::path(get, path = "/api/v1/orgs/{org}/api-keys", tag = "orgs",
    params(("org" = String, Path), KeyFilter), responses((status = 200, body = Vec<ApiKeyInfo>), (status = 403)))]
pub async fn list_api_keys(
    State(s): State<AppState>,
    caller: Caller,
    Query(q): Query<KeyFilter>,
) -> ApiResult<Json<Vec<ApiKeyInfo>>> {
    caller.require(Permission::Read)?;
    Ok(Json(
        s.store
            .list_api_keys(&caller.0, q.service_account.as_deref())
            .await?,
    ))
}

/// Revokes a key; the next request made with it is refused.
#[utoipa::path(delete, path = "/api/v1/orgs/{org}/api-keys/{id}", tag = "orgs",
    params(("org" = String, Path), ("id" = String, Path)),
    responses((status = 200, body = ApiKeyInfo), (status = 403), (status = 404), (status = 409)))]
pub async fn revoke_api_key(
    State(s): State<AppState>,
    caller: Caller,
    Path((_org, id)): Path<(String, String)>,
) -> ApiResult<Json<ApiKeyInfo>> {
    caller.require(Permission::Read)?;
    Ok(Json(s.store.revoke_api_key(&caller.0, &id).await?))
}

/// Replaces a key with a new one; the old one works for the grace period.
#[utoipa::path(post, path = "/api/v1/orgs/{org}/api-keys/{id}/rotate", tag = "orgs",
    params(("org" = String, Path), ("id" = String, Path)), request_body = RotateApiKeyRequest,
    responses((status = 201, body = ApiKeyRotated), (status = 403), (status = 404), (status = 409)))]
pub async fn rotate_api_key(
    State(s): State<AppState>,
    caller: Caller,
    Path((_org, id)): Path<(String, String)>,
    body: LazyJson<RotateApiKeyRequest>,
) -> ApiResult<(StatusCode, Json<ApiKeyRotated>)> {
    caller.require(Permission::Read)?;
    let req = body.read().await?;
    let expires_at = expiry(None, req.expires_in_ms)?;
    let (key, hash) = generate_key();
    let (new, old) = s
        .store
        .rotate_api_key(
            &caller.0,
            &id,
            NewApiKey {
                id: uuid::Uuid::new_v4().to_string(),
                hash,
                description: req.description,
                expires_at,
            },
            req.grace_period_ms,
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(ApiKeyRotated {
            new: created(new, key),
            old,
        }),
    ))
}
