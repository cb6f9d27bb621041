//! `GET /metrics`, in Prometheus's text format: what every request, write
//! and delivery recorded as it happened (counters and latency histograms,
//! kept by the `metrics` facade in this process), and, read from the store
//! when scraped, ledger sizes, the outbox's backlog and how long ago each
//! environment was reported. Server-admin keys only: it names every
//! organisation and environment.

use std::sync::OnceLock;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// Latency buckets, in seconds: from a cached read to a slow upload.
const BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// The process's recorder, installed at the first call. Servers started
/// in one process (tests, `custody demo`) share it.
pub fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new();
        let recorder =
            match builder.set_buckets_for_metric(Matcher::Suffix("_seconds".into()), BUCKETS) {
                Ok(b) => b.build_recorder(),
                // Only an empty bucket list is refused, and BUCKETS is not.
                Err(_) => PrometheusBuilder::new().build_recorder(),
            };
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!(
                "a metrics recorder was already installed; /metrics will show nothing of this process"
            );
        }
        handle
    })
}

/// Prometheus's text format (0.0.4).
#[utoipa::path(get, path = "/metrics", tag = "health",
    responses((status = 200, body = String, content_type = "text/plain"), (status = 401), (status = 403)))]
pub async fn metrics(State(s): State<AppState>, caller: Caller) -> ApiResult<impl IntoResponse> {
    if !caller.0.server_admin {
        return Err(ApiError::forbidden("/metrics needs a server-admin key"));
    }
    let ops = s.store.operations().await?;
    let now = custody_store::clock::now_ms();
    for (org, size) in &ops.ledgers {
        metrics::gauge!("custody_ledger_entries", "org" => org.clone()).set(*size as f64);
    }
    metrics::gauge!("custody_outbox_pending").set(ops.outbox_pending as f64);
    metrics::gauge!("custody_outbox_failed").set(ops.outbox_failed as f64);
    metrics::gauge!("custody_outbox_oldest_pending_age_seconds").set(
        ops.outbox_oldest
            .map_or(0.0, |t| (now - t).max(0) as f64 / 1000.0),
    );
    for (org, env, at) in &ops.last_reports {
        metrics::gauge!("custody_environment_last_report_age_seconds", "org" => org.clone(), "environment" => env.clone())
            .set((now - at).max(0) as f64 / 1000.0);
    }
    let h = handle();
    h.run_upkeep();
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        h.render(),
    ))
}
