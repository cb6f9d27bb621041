//! One line per request at the default level — method, path, status,
//! latency and a request id — and the id in the answer's `X-Request-Id`,
//! so that a user can quote it and an operator find the line. An error the
//! server keeps to itself (a 5xx) is logged under the same id.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The id of the request being handled, if any.
pub fn request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// The client's own id when it sends a sane one (so its logs and ours
/// meet), a new one otherwise.
fn id_of(req: &Request) -> String {
    req.headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 64
                && v.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string()[..16].to_string())
}

pub async fn log(req: Request, next: Next) -> Response {
    let id = id_of(&req);
    let (method, path) = (req.method().clone(), req.uri().path().to_string());
    // The route's pattern, not the path: one series per route, however
    // many flows and trails there are.
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |m| m.as_str())
        .to_string();
    let started = Instant::now();
    let mut resp = REQUEST_ID.scope(id.clone(), next.run(req)).await;
    let status = resp.status().as_u16();
    let elapsed = started.elapsed().as_secs_f64();
    let latency_ms = (elapsed * 1000.0 * 100.0).round() / 100.0;
    metrics::counter!("custody_http_requests_total", "method" => method.to_string(), "route" => route.clone(), "status" => status.to_string()).increment(1);
    metrics::histogram!("custody_http_request_duration_seconds", "method" => method.to_string(), "route" => route).record(elapsed);
    // Probes come every few seconds: below the default level.
    if path == "/healthz" || path == "/readyz" {
        tracing::debug!(request_id = %id, %method, path, status, latency_ms, "request");
    } else {
        tracing::info!(request_id = %id, %method, path, status, latency_ms, "request");
    }
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert("x-request-id", v);
    }
    resp
}
