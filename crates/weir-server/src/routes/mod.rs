//! The HTTP surface: one module per resource, assembled into one router.

mod agents;
pub(crate) mod deployments;
mod health;
mod ingest;
pub(crate) mod keys;
pub(crate) mod runs;

use crate::state::AppState;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post, put};

/// Largest page any list endpoint returns.
pub(crate) const MAX_PAGE: u32 = 1000;

/// Checks a requested page size: absent means `default`; 0 or more than [`MAX_PAGE`] is an
/// error naming the parameter.
pub(crate) fn page_size(limit: Option<u32>, default: u32) -> Result<u32, crate::ApiError> {
    match limit {
        None => Ok(default),
        Some(n) if (1..=MAX_PAGE).contains(&n) => Ok(n),
        Some(n) => Err(crate::ApiError::field(
            "limit",
            format!(
                "limit {n} is out of range: use 1 to {MAX_PAGE} and follow next_cursor for more"
            ),
        )),
    }
}

pub(crate) fn router(state: AppState) -> Router {
    let limit = state.options.max_body_bytes;
    let api = Router::new()
        .route(
            "/projects",
            get(deployments::list_projects).post(deployments::create_project),
        )
        .route("/projects/{project}", get(deployments::get_project))
        .route("/deployments", get(deployments::list_deployments))
        .route("/flows", get(deployments::list_flows))
        .route(
            "/projects/{project}/deployments/{name}",
            put(deployments::upsert).get(deployments::get_deployment),
        )
        .route(
            "/projects/{project}/deployments/{name}/pause",
            post(deployments::pause),
        )
        .route(
            "/projects/{project}/deployments/{name}/resume",
            post(deployments::resume),
        )
        .route("/flow_runs", get(runs::list).post(runs::create))
        .route("/flow_runs/{id}", get(runs::detail))
        .route("/flow_runs/{id}/state", post(runs::propose))
        .route("/flow_runs/{id}/cancel", post(runs::cancel))
        .route("/flow_runs/{id}/retry", post(runs::retry))
        .route("/flow_runs/{id}/heartbeat", post(runs::heartbeat))
        .route("/flow_runs/{id}/task_runs", get(runs::task_runs))
        .route("/flow_runs/{id}/logs", get(runs::logs))
        .route("/flow_runs/{id}/stream", get(runs::stream))
        .route("/task_runs/batch", post(ingest::task_runs))
        .route("/task_runs/{id}", get(runs::task_run))
        .route("/logs/batch", post(ingest::logs))
        .route("/work_queues", get(agents::queues))
        .route("/agents", get(agents::list).post(agents::register))
        .route("/agents/{id}/heartbeat", post(agents::heartbeat))
        .route("/agents/{id}/claim", post(agents::claim))
        .route("/keys", get(keys::list).post(keys::create))
        .route("/keys/{id}/revoke", post(keys::revoke))
        .route("/audit", get(keys::audit));
    Router::new()
        .nest("/api/v1", api)
        .merge(crate::ui::routes())
        .route("/api/openapi.json", get(crate::openapi::document))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(crate::metrics::render))
        .fallback(health::not_found)
        .method_not_allowed_fallback(health::method_not_allowed)
        .layer(axum::middleware::from_fn(crate::metrics::track))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}
