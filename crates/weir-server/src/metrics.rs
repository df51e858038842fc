//! Prometheus metrics: API latency by route, claim latency, runs by state, scheduler lag.

use crate::state::AppState;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;
use std::time::Instant;

/// The process-wide recorder (one per process, shared by every server in it).
fn handle() -> Option<&'static PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| PrometheusBuilder::new().install_recorder().ok())
        .as_ref()
}

/// Installs the recorder early so metrics recorded before the first scrape are kept.
pub(crate) fn init() {
    let _ = handle();
}

/// Middleware recording each request's latency and status by route template.
pub(crate) async fn track(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = req.method().to_string();
    let started = Instant::now();
    let response = next.run(req).await;
    let status = response.status().as_u16().to_string();
    metrics::histogram!("weir_api_request_seconds", "route" => route.clone(), "method" => method.clone())
        .record(started.elapsed().as_secs_f64());
    metrics::counter!("weir_api_requests_total", "route" => route, "method" => method, "status" => status)
        .increment(1);
    response
}

/// `GET /metrics`: Prometheus text format.
pub(crate) async fn render(State(st): State<AppState>) -> crate::openapi::PrometheusText {
    let since = chrono::Utc::now() - chrono::Duration::hours(24);
    if let Ok(counts) = st.store.count_flow_runs_by_state(None, Some(since)).await {
        for state in weir_core::StateKind::ALL {
            let n = counts.get(&state).copied().unwrap_or(0);
            metrics::gauge!("weir_flow_runs_24h", "state" => state.as_str()).set(n as f64);
        }
    }
    crate::openapi::PrometheusText(match handle() {
        Some(h) => (
            [(
                axum::http::header::CONTENT_TYPE,
                "text/plain; version=0.0.4",
            )],
            h.render(),
        )
            .into_response(),
        None => crate::ApiError::Unavailable("metrics recorder unavailable".into()).into_response(),
    })
}
