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
use std::collections::BTreeSet;
use std::sync::{Mutex, OnceLock};
use std::time::Instant;
use weir_core::StateKind;
use weir_core::run::Run;

/// The histogram of run durations, by project, deployment and final state.
const RUN_DURATION: &str = "weir_flow_run_duration_seconds";

/// Its buckets: a second to six hours.
const DURATION_BUCKETS: &[f64] = &[
    1.0, 5.0, 15.0, 30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 21600.0,
];

/// Records a run that ended at `now` in this process (a repeated proposal that changed
/// nothing is not counted again): its duration from start to end, by deployment.
pub(crate) fn run_changed(run: &Run, now: chrono::DateTime<chrono::Utc>) {
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

/// The queue gauges: a queue no longer named by a deployment, a waiting run or a live agent
/// is reported at zero (not at its last value) from then on.
const QUEUE_GAUGES: [&str; 4] = [
    "weir_queue_runs_waiting",
    "weir_queue_oldest_waiting_seconds",
    "weir_queue_live_agents",
    "weir_queue_free_slots",
];

/// Sets the gauges read from the database: queues, agents, late runs.
async fn gauges(st: &AppState) -> Result<(), weir_store::Error> {
    static SEEN: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());
    let now = st.now();
    let loads = st.store.queue_loads(now, st.lease()).await?;
    let late = st.store.late_runs().await?;
    let mut gone = SEEN.lock().map(|s| s.clone()).unwrap_or_default();
    for q in &loads {
        gone.remove(&q.queue);
        let oldest = q
            .oldest_due
            .map(|t| (now - t).num_milliseconds().max(0) as f64 / 1000.0)
            .unwrap_or(0.0);
        let values = [
            q.waiting as f64,
            oldest,
            q.live_agents as f64,
            q.free_slots as f64,
        ];
        for (name, v) in QUEUE_GAUGES.into_iter().zip(values) {
            metrics::gauge!(name, "queue" => q.queue.clone()).set(v);
        }
    }
    for q in &gone {
        for name in QUEUE_GAUGES {
            metrics::gauge!(name, "queue" => q.clone()).set(0.0);
        }
    }
    if let Ok(mut seen) = SEEN.lock() {
        seen.extend(loads.into_iter().map(|q| q.queue));
    }
    metrics::gauge!("weir_flow_runs_late").set(late as f64);
    Ok(())
}

/// HELP lines of every family, and the crash detector's counters at zero, so an alert on
/// their rate has a series before the first event.
fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_histogram!(
        "weir_api_request_seconds",
        "API request latency by route and method"
    );
    describe_counter!(
        "weir_api_requests_total",
        "API requests by route, method and status"
    );
    describe_histogram!("weir_claim_seconds", "latency of agents' claim requests");
    describe_gauge!(
        "weir_flow_runs_24h",
        "runs created in the last 24 hours, by their state now"
    );
    describe_gauge!(
        "weir_scheduler_lag_seconds",
        "how long the most overdue due run has waited"
    );
    describe_counter!("weir_log_lines_total", "log lines accepted");
    describe_counter!("weir_task_run_reports_total", "task-run reports accepted");
    describe_gauge!(
        "weir_queue_runs_waiting",
        "runs due and not yet claimed, per work queue"
    );
    describe_gauge!(
        "weir_queue_oldest_waiting_seconds",
        "how long the oldest waiting run of the queue has been due"
    );
    describe_gauge!(
        "weir_queue_live_agents",
        "agents serving the queue heard from within a lease"
    );
    describe_gauge!(
        "weir_queue_free_slots",
        "runs the queue's live agents could still take"
    );
    describe_gauge!("weir_flow_runs_late", "runs Late now");
    describe_histogram!(
        RUN_DURATION,
        "seconds from start to end of runs that ended in this process, by deployment and final state"
    );
    describe_counter!(
        "weir_crash_detector_expired_leases_total",
        "silent runs the crash detector ended (outcome Crashed) or retried (outcome retry)"
    );
    describe_counter!(
        "weir_crash_detector_late_total",
        "runs the crash detector marked Late"
    );
    describe_counter!(
        "weir_background_passes_total",
        "passes of each background loop"
    );
    describe_counter!(
        "weir_background_errors_total",
        "failed passes of each background loop"
    );
    describe_counter!(
        "weir_notifications_total",
        "notification delivery attempts by outcome (delivered, retried, failed, suppressed)"
    );
    describe_gauge!(
        "weir_notification_outbox_pending",
        "notifications in the outbox waiting to be delivered"
    );
    for outcome in [StateKind::Crashed.as_str(), "retry"] {
        metrics::counter!("weir_crash_detector_expired_leases_total", "outcome" => outcome)
            .increment(0);
    }
    metrics::counter!("weir_crash_detector_late_total").increment(0);
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
    static DESCRIBED: OnceLock<()> = OnceLock::new();
    if handle().is_some() {
        DESCRIBED.get_or_init(describe);
    }
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
    init();
    let since = st.now() - chrono::Duration::hours(24);
    if let Ok(counts) = st.store.count_flow_runs_by_state(None, Some(since)).await {
        for state in StateKind::ALL {
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
