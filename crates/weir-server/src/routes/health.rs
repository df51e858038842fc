//! Liveness and readiness.

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use weir_core::api::Health;

fn health(state: &AppState) -> Health {
    Health {
        status: "ok".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        database: state.store.dialect().as_str().into(),
    }
}

/// `GET /healthz`: the process is up.
pub(crate) async fn healthz(State(state): State<AppState>) -> Json<Health> {
    Json(health(&state))
}

/// `GET /readyz`: the process is up and its database answers.
pub(crate) async fn readyz(State(state): State<AppState>) -> ApiResult<Json<Health>> {
    state.store.ping().await?;
    Ok(Json(health(&state)))
}

/// Any unknown path.
pub(crate) async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::NotFound(format!(
        "no endpoint at {}; see /api/openapi.json",
        uri.path()
    ))
}

/// A known path with a method it does not support.
pub(crate) async fn method_not_allowed(
    method: axum::http::Method,
    uri: axum::http::Uri,
) -> ApiError {
    ApiError::MethodNotAllowed(format!(
        "{method} is not supported on {}; see /api/openapi.json",
        uri.path()
    ))
}
