use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::Response;
use custody_domain::Permission;
use futures::TryStreamExt;

use crate::auth::Caller;
use crate::error::ApiResult;
use crate::state::AppState;

/// Downloads an evidence file. The content is checked against its SHA-256
/// while it streams; a corrupt file ends the response with an error.
#[utoipa::path(get, path = "/api/v1/orgs/{org}/evidence/{sha256}", tag = "evidence",
    params(("org" = String, Path), ("sha256" = String, Path)),
    responses((status = 200, content_type = "application/octet-stream"), (status = 404)))]
pub async fn download(
    State(s): State<AppState>,
    caller: Caller,
    Path((_org, sha)): Path<(String, String)>,
) -> ApiResult<Response> {
    caller.require(Permission::Read)?;
    let size = s.store.evidence_size(caller.0.org_id, &sha).await?;
    let stream = s.blobs.read(&sha).await?;
    let body = Body::from_stream(stream.map_err(|e| std::io::Error::other(e.to_string())));
    let mut resp = Response::new(body);
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
    if let Ok(v) = HeaderValue::from_str(&sha) {
        h.insert("x-custody-sha256", v);
    }
    Ok(resp)
}
