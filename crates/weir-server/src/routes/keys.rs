//! Service accounts' API keys and the audit log (admins only).

use crate::access::{Require, perm};
use crate::error::ApiResult;
use crate::extract::{Json, Path, Query};
use crate::openapi::Created;
use crate::ops;
use crate::state::AppState;
use axum::extract::State;
use weir_core::api::{ApiKey, AuditEntry, CreateApiKey, CreatedApiKey, Page, PageQuery};

/// `POST /api/v1/keys`: the secret is in this answer and nowhere else, ever.
pub(crate) async fn create(
    State(st): State<AppState>,
    caller: Require<perm::Admin>,
    Json(req): Json<CreateApiKey>,
) -> ApiResult<Created<CreatedApiKey>> {
    Ok(Created(ops::keys::create(&st, &caller, req).await?))
}

/// `GET /api/v1/keys`: never secrets or digests.
pub(crate) async fn list(
    State(st): State<AppState>,
    caller: Require<perm::Admin>,
) -> ApiResult<axum::Json<Vec<ApiKey>>> {
    Ok(axum::Json(ops::keys::list(&st, &caller).await?))
}

/// `POST /api/v1/keys/{id}/revoke`: takes effect at once.
pub(crate) async fn revoke(
    State(st): State<AppState>,
    caller: Require<perm::Admin>,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<ApiKey>> {
    Ok(axum::Json(ops::keys::revoke(&st, &caller, &id).await?))
}

/// `GET /api/v1/audit`: newest first.
pub(crate) async fn audit(
    State(st): State<AppState>,
    caller: Require<perm::Admin>,
    Query(q): Query<PageQuery>,
) -> ApiResult<axum::Json<Page<AuditEntry>>> {
    let page = ops::keys::audit_log(&st, &caller, q.cursor, q.limit).await?;
    Ok(axum::Json(page))
}
