//! `POST /projects/{project}/deployments/{name}/backfill` (the use case is
//! `ops::schedules::backfill`).

use crate::access::{Require, perm};
use crate::error::ApiResult;
use crate::extract::{Json, Path};
use crate::ops;
use crate::state::AppState;
use axum::extract::State;
use weir_core::api::{Backfill, BackfillResult, DeploymentPath};

/// Needs the permission that starts runs. Every tick `from ≤ t ≤ to` gets its run unless it
/// has one; `dry_run` only reports. A window in the future, reversed, or holding more than
/// `max` ticks is refused (400), creating nothing.
pub(crate) async fn backfill(
    State(st): State<AppState>,
    caller: Require<perm::Run>,
    Path(DeploymentPath { project, name }): Path<DeploymentPath>,
    Json(req): Json<Backfill>,
) -> ApiResult<axum::Json<BackfillResult>> {
    Ok(axum::Json(
        ops::schedules::backfill(&st, &caller, &project, &name, &req).await?,
    ))
}
