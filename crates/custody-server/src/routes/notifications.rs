//! Notification actions and their deliveries.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use custody_api::{Action, Delivery, PutActionRequest, Saved};
use custody_domain::Permission;
use serde::Deserialize;

use crate::auth::Caller;
use crate::body::LazyJson;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// Creates or replaces an action.
#[utoipa::path(put, path = "/api/v1/orgs/{org}/actions/{name}", tag = "notifications",
    params(("org" = String, Path), ("name" = String, Path)), request_body = PutActionRequest,
    responses((status = 201, body = Saved<Action>), (status = 200, body = Saved<Action>), (status = 422)))]
pub async fn put_action(
    State(s): State<AppState>,
    caller: Caller,
    Path((_org, name)): Path<(String, String)>,
    body: LazyJson<PutActionRequest>,
) -> ApiResult<(StatusCode, Json<Saved<Action>>)> {
    caller.require(Permission::ManageRequirements)?;
    let mut req = body.read().await?;
    // Checked now and again at every send (the name may come to resolve
    // elsewhere).
    s.egress
        .check_target(&req.target.url)
        .await
        .map_err(|e| ApiError::unprocessable(e.0))?;
    if let Some(secret) = req.secret.take() {
        req.secret = Some(s.secrets.seal(&secret).map_err(ApiError::internal)?);
    }
    let saved = s.store.put_action(&caller.0, &name, req).await?;
    let status = if saved.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(saved)))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/actions", tag = "notifications",
    params(("org" = String, Path)), responses((status = 200, body = Vec<Action>)))]
pub async fn list_actions(
    State(s): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<Vec<Action>>> {
    caller.require(Permission::Read)?;
    Ok(Json(s.store.list_actions(caller.0.org_id).await?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct DeliveriesQuery {
    /// Only this action's deliveries.
    pub action: Option<String>,
    /// At most this many, newest first (default 50, up to 1000).
    pub limit: Option<u32>,
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/deliveries", tag = "notifications",
    params(("org" = String, Path), DeliveriesQuery), responses((status = 200, body = Vec<Delivery>)))]
pub async fn list_deliveries(
    State(s): State<AppState>,
    caller: Caller,
    Query(q): Query<DeliveriesQuery>,
) -> ApiResult<Json<Vec<Delivery>>> {
    caller.require(Permission::Read)?;
    Ok(Json(
        s.store
            .list_deliveries(caller.0.org_id, q.action.as_deref(), q.limit.unwrap_or(50))
            .await?,
    ))
}
