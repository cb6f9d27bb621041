use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use custody_api::Health;

use crate::state::AppState;

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "health", security(()), responses((status = 200, body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
        checks: Default::default(),
        version: None,
    })
}

/// The server can serve requests: the database and the blob store answer.
#[utoipa::path(get, path = "/readyz", tag = "health", security(()),
    responses((status = 200, body = Health), (status = 503, body = Health)))]
pub async fn readyz(State(s): State<AppState>) -> (StatusCode, Json<Health>) {
    let mut checks = std::collections::BTreeMap::new();
    // Why a check failed can name hosts and paths: it goes to the log,
    // and anyone (this route needs no key) is told only that it failed.
    let db = match s.store.ping().await {
        Ok(()) => "ok".to_string(),
        Err(e) => {
            tracing::warn!(error = %e, "readiness: the database does not answer");
            "unavailable".to_string()
        }
    };
    let blobs = match s.blobs.ping().await {
        Ok(()) => "ok".to_string(),
        Err(e) => {
            tracing::warn!(error = %e, "readiness: the blob store does not answer");
            "unavailable".to_string()
        }
    };
    let ok = db == "ok" && blobs == "ok";
    checks.insert("database".to_string(), db);
    checks.insert("blob_store".to_string(), blobs);
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(Health {
            status: if ok { "ready" } else { "not ready" }.into(),
            checks,
            version: Some(env!("CARGO_PKG_VERSION").into()),
        }),
    )
}
