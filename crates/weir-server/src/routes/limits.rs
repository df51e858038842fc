//! Tag concurrency limits, and why a run is not running.

use crate::access::{OnRun, Require, perm};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path};
use crate::ops;
use crate::state::AppState;
use axum::extract::State;
use uuid::Uuid;
use weir_core::api::{ConcurrencyLimit, Explanation, SetConcurrencyLimit, TagPath};
use weir_core::audit::AuditAction;
use weir_core::limits::{check_slots, check_tag};

/// Tag limits span projects: a key scoped to one project may not read or change them.
fn unscoped(caller: &Caller) -> ApiResult<()> {
    if caller.projects().is_some() {
        return Err(ApiError::Forbidden(
            "tag concurrency limits span projects: use a key that is not scoped to a project"
                .into(),
        ));
    }
    Ok(())
}

/// `GET /api/v1/concurrency_limits`: every tag limit with the runs holding its slots.
pub(crate) async fn list(
    State(st): State<AppState>,
    caller: Require<perm::Read>,
) -> ApiResult<axum::Json<Vec<ConcurrencyLimit>>> {
    unscoped(&caller)?;
    Ok(axum::Json(st.store.tag_limits(st.now()).await?))
}

/// `PUT /api/v1/concurrency_limits/{tag}`: sets a tag's limit (creating or changing it).
pub(crate) async fn set(
    State(st): State<AppState>,
    caller: Require<perm::Deploy>,
    Path(p): Path<TagPath>,
    Json(req): Json<SetConcurrencyLimit>,
) -> ApiResult<axum::Json<ConcurrencyLimit>> {
    unscoped(&caller)?;
    check_tag(&p.tag).map_err(|m| ApiError::field("tag", m))?;
    check_slots(req.slots).map_err(|m| ApiError::field("slots", m))?;
    let limit = st.store.set_tag_limit(&p.tag, req.slots, st.now()).await?;
    caller
        .audit(
            &st,
            AuditAction::LimitSet,
            &p.tag,
            Some(format!("{} slots", req.slots)),
        )
        .await;
    // A raised limit may free slots for waiting runs.
    st.work_available();
    Ok(axum::Json(limit))
}

/// `DELETE /api/v1/concurrency_limits/{tag}`: removes a tag's limit; answers it as it was.
pub(crate) async fn remove(
    State(st): State<AppState>,
    caller: Require<perm::Deploy>,
    Path(p): Path<TagPath>,
) -> ApiResult<axum::Json<ConcurrencyLimit>> {
    unscoped(&caller)?;
    let limit = st.store.tag_limit(&p.tag, st.now()).await?;
    if !st.store.remove_tag_limit(&p.tag).await? {
        return Err(ApiError::NotFound(format!(
            "concurrency limit of tag {:?} not found",
            p.tag
        )));
    }
    caller
        .audit(&st, AuditAction::LimitRemove, &p.tag, None)
        .await;
    st.work_available();
    Ok(axum::Json(limit))
}

/// `GET /api/v1/flow_runs/{id}/why`: why the run is not running (or that it is).
pub(crate) async fn why(
    State(st): State<AppState>,
    caller: OnRun<perm::Read>,
    Path(id): Path<Uuid>,
) -> ApiResult<axum::Json<Explanation>> {
    Ok(axum::Json(ops::runs::why(&st, &caller, id).await?))
}
