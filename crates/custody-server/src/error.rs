//! Every error leaves the server the same way: a status and
//! `{"error": "...", "detail": ...}`.
//!
//! What went wrong inside the server (a database error, a corrupt row, a
//! panic) is the operator's business, not the caller's: its text can name
//! hosts, paths and queries. Such an error is logged with a reference, and
//! the caller gets a generic message with that reference to quote.

use std::time::Duration;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use custody_api::ErrorBody;
use custody_store::StoreError;
use serde_json::Value;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub detail: Option<Value>,
    /// For 429 and 503: when to try again.
    pub retry_after: Option<Duration>,
    /// Whether `message` is about the server's insides: then it is logged
    /// and not sent.
    internal: bool,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            detail: None,
            retry_after: None,
            internal: false,
        }
    }
    /// A failure inside the server; its text is logged, not answered.
    pub fn internal(message: impl Into<String>) -> Self {
        ApiError {
            internal: true,
            ..Self::new(StatusCode::INTERNAL_SERVER_ERROR, message)
        }
    }
    pub fn bad_request(m: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, m)
    }
    pub fn unprocessable(m: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, m)
    }
    pub fn not_found(m: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, m)
    }
    pub fn unauthorized(m: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, m)
    }
    pub fn forbidden(m: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, m)
    }
    pub fn too_large(m: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, m)
    }
    pub fn too_many(m: impl Into<String>, wait: Duration) -> Self {
        ApiError {
            retry_after: Some(wait),
            ..Self::new(StatusCode::TOO_MANY_REQUESTS, m)
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        let status = match &e {
            StoreError::NotFound { .. } | StoreError::Missing(_) => StatusCode::NOT_FOUND,
            StoreError::Conflict(_) => StatusCode::CONFLICT,
            StoreError::Forbidden(_) => StatusCode::FORBIDDEN,
            StoreError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            StoreError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            StoreError::Full => {
                tracing::error!("the blob store is full: an upload was refused");
                StatusCode::INSUFFICIENT_STORAGE
            }
            StoreError::Upload(_) => StatusCode::BAD_REQUEST,
            StoreError::Judge(_) => {
                return ApiError {
                    retry_after: Some(Duration::from_secs(5)),
                    internal: true,
                    ..Self::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
                };
            }
            StoreError::Database(_)
            | StoreError::Commit(_)
            | StoreError::Blob(_)
            | StoreError::Integrity(_)
            | StoreError::Corrupt(_)
            | StoreError::Ledger(_) => return ApiError::internal(e.to_string()),
        };
        ApiError::new(status, e.to_string())
    }
}

impl ApiError {
    /// The message the caller may see: for a failure inside the server, a
    /// reference to the log line that says what it was.
    pub fn public_message(&self) -> String {
        if self.internal {
            // The request's id, which the answer's X-Request-Id carries and
            // the access log names.
            let reference = crate::access_log::request_id()
                .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string()[..16].to_string());
            let reference = reference.as_str();
            tracing::error!(reference, status = %self.status, error = %self.message, "request failed");
            match self.status {
                StatusCode::SERVICE_UNAVAILABLE => format!(
                    "the server cannot do this right now; try again later (reference {reference})"
                ),
                _ => format!(
                    "the server failed to handle the request (reference {reference}); its log says why"
                ),
            }
        } else {
            self.message.clone()
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let message = self.public_message();
        let body = ErrorBody {
            error: message,
            detail: self.detail,
        };
        let mut r = (self.status, Json(body)).into_response();
        if let Some(wait) = self.retry_after {
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            if let Ok(v) = HeaderValue::from_str(&secs.max(1).to_string()) {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        r
    }
}

/// Every error in the API's shape, including those answered before a
/// handler runs (a query string or path that does not parse, a method the
/// route does not have, a request that ran out of time): those come from
/// the framework as plain text, and are wrapped here.
pub async fn json_errors(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let resp = next.run(req).await;
    let status = resp.status();
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let is_html = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if status.as_u16() < 400 || is_json || is_html {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let text = axum::body::to_bytes(body, 64 << 10)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let message = if !text.is_empty() {
        text
    } else if status == StatusCode::SERVICE_UNAVAILABLE || status == StatusCode::REQUEST_TIMEOUT {
        "the request took longer than the server allows; try again".to_string()
    } else {
        status.canonical_reason().unwrap_or("error").to_lowercase()
    };
    let mut r = ApiError::new(status, message).into_response();
    for (name, value) in parts.headers.iter() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            r.headers_mut().insert(name.clone(), value.clone());
        }
    }
    r
}

/// The answer to a handler that panicked.
pub fn panic_response(p: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let what = p
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    ApiError::internal(format!("a handler panicked: {what}")).into_response()
}

/// Turns a JSON body rejection (bad syntax, wrong field type, wrong
/// content type) into the API's error shape, keeping serde's location.
pub fn json_rejection(r: axum::extract::rejection::JsonRejection) -> ApiError {
    let status = match r.status() {
        StatusCode::PAYLOAD_TOO_LARGE => StatusCode::PAYLOAD_TOO_LARGE,
        StatusCode::UNSUPPORTED_MEDIA_TYPE => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        _ => StatusCode::BAD_REQUEST,
    };
    ApiError::new(status, r.body_text())
}
