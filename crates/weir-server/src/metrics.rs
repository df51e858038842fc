//! Prometheus metrics: API latency by route, claim latency, runs by state, scheduler lag; and
//! what an operator alerts on: runs waiting per work queue and how long the oldest has waited,
//! live agents and their free slots per queue, late runs, run durations per deployment, and
//! the crash detector's and background loops' counters.
//!
//! Gauges of the database's contents are read at each scrape (every replica answers the same);
//! counters and the duration histogram count what happened in this process (sum them across
//! replicas).

use crate::state::AppState;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;
use std::time::Instant;
use weir_core::api::FlowRun;

/// The histogram of run durations, by project, deployment and final state.
const RUN_DURATION: &str = "weir_flow_run_duration_seconds";

/// Its buckets: a second to six hours.
const DURATION_BUCKETS: &[f64] = &[
    1.0, 5.0, 15.0, 30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 21600.0,
];

/// Records a run that ended at `now` in this process (a repeated proposal that changed
/// nothing is not counted again): its duration from start to end, by deployment.
pub(crate) fn run_changed(run: &FlowRun, now: chrono::DateTime<chrono::Utc>) {
    let (Some(started), Some(ended)) = (run.started_at, run.ended_at) else {
        return;
    };
    if !run.state.is_terminal() || ended < now - chrono::Duration::milliseconds(1) {
        return;
    }
    let seconds = (ended - started).num_microseconds().unwrap_or(0) as f64 / 1e6;
    metrics::histogram!(
        RUN_DURATION,
        "project" => run.project.clone(),
        "deployment" => run.deployment.clone().unwrap_or_default(),
        "state" => run.state.as_str()
    )
    .record(seconds.max(0.0));
}

/// Sets the gauges read from the database: queues, agents, late runs.
async fn gauges(st: &AppState) -> Result<(), weir_store::Error> {
    let now = st.now();
    for q in st.store.queue_loads(now, st.lease()).await? {
        let oldest = q
            .oldest_due
            .map(|t| (now - t).num_milliseconds().max(0) as f64 / 1000.0)
            .unwrap_or(0.0);
        metrics::gauge!("weir_queue_runs_waiting", "queue" => q.queue.clone())
            .set(q.waiting as f64);
        metrics::gauge!("weir_queue_oldest_waiting_seconds", "queue" => q.queue.clone())
            .set(oldest);
        metrics::gauge!("weir_queue_live_agents", "queue" => q.queue.clone())
            .set(q.live_agents as f64);
        metrics::gauge!("weir_queue_free_slots", "queue" => q.queue).set(q.free_slots as f64);
    }
    metrics::gauge!("weir_flow_runs_late").set(st.store.late_runs().await? as f64);
    Ok(())
}

/// The process-wide recorder (one per process, shared by every server in it).
fn handle() -> Option<&'static PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Full(RUN_DURATION.into()), DURATION_BUCKETS)
                .ok()?
                .install_recorder()
                .ok()
        })
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
    if let Err(error) = gauges(&st).await {
        tracing::warn!(message = "metrics: cannot read queue gauges", %error);
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
