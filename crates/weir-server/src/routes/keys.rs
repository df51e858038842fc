//! Service accounts' API keys and the audit log (admins only).

use crate::access::{Require, perm};
use crate::auth::{Caller, new_key};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path, Query};
use crate::openapi::Created;
use crate::state::AppState;
use axum::extract::State;
use chrono::Utc;
use weir_core::api::{
    ApiKey, AuditEntry, CreateApiKey, CreatedApiKey, MAX_KEY_LIFETIME_S, Page, PageQuery,
};
use weir_core::audit::AuditAction;
use weir_core::names;

/// `POST /api/v1/keys`: the secret is in this answer and nowhere else, ever.
pub(crate) async fn create(
    State(st): State<AppState>,
    caller: Require<perm::Admin>,
    Json(req): Json<CreateApiKey>,
) -> ApiResult<Created<CreatedApiKey>> {
    if req.name.trim().is_empty() || req.name.chars().count() > 100 {
        return Err(ApiError::field(
            "name",
            "a key's name must be 1-100 characters",
        ));
    }
    if let Some(p) = &req.project {
        names::check("project", p).map_err(|m| ApiError::field("project", m))?;
    }
    let scope = match &*caller {
        Caller::Key { project, .. } => project.clone(),
        Caller::Run { .. } => None,
    };
    let role = caller
        .role()
        .ok_or_else(|| ApiError::Forbidden("only admins create keys".into()))?;
    if !role.may_grant(scope.as_deref(), req.role, req.project.as_deref()) {
        return Err(ApiError::Forbidden(format!(
            "a key scoped to project {:?} may only create keys for that project",
            scope.unwrap_or_default()
        )));
    }
    let lifetime = match req.expires_in_s {
        Some(0) => return Err(ApiError::field("expires_in_s", "must be at least 1 second")),
        Some(s) if s > MAX_KEY_LIFETIME_S => {
            return Err(ApiError::field("expires_in_s", "must be at most ten years"));
        }
        Some(s) => Some(chrono::Duration::seconds(
            i64::try_from(s).unwrap_or(i64::MAX),
        )),
        None => None,
    };
    let (key, digest, secret) = new_key(
        &req.name,
        req.role,
        req.project.clone(),
        lifetime,
        &caller.actor(),
    )?;
    st.store.create_api_key(&key, &digest).await?;
    let scope = key
        .project
        .as_deref()
        .map(|p| format!(" in {p}"))
        .unwrap_or_default();
    caller
        .audit(
            &st,
            AuditAction::KeyCreate,
            &key.id,
            Some(format!("{} ({}{scope})", key.name, key.role)),
        )
        .await;
    Ok(Created(CreatedApiKey { key, secret }))
}

/// `GET /api/v1/keys`: never secrets or digests.
pub(crate) async fn list(
    State(st): State<AppState>,
    caller: Require<perm::Admin>,
) -> ApiResult<axum::Json<Vec<ApiKey>>> {
    let keys = st.store.api_keys().await?;
    Ok(axum::Json(
        keys.into_iter()
            .filter(|k| {
                caller.projects().is_none() || k.project.as_deref().is_some_and(|p| caller.sees(p))
            })
            .collect(),
    ))
}

/// `POST /api/v1/keys/{id}/revoke`: takes effect at once.
pub(crate) async fn revoke(
    State(st): State<AppState>,
    caller: Require<perm::Admin>,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<ApiKey>> {
    let not_found = || ApiError::NotFound(format!("API key {id} not found"));
    let (key, _) = st.store.api_key(&id).await?.ok_or_else(not_found)?;
    if caller.projects().is_some() && !key.project.as_deref().is_some_and(|p| caller.sees(p)) {
        return Err(not_found());
    }
    let key = st.store.revoke_api_key(&id, Utc::now()).await?;
    caller
        .audit(&st, AuditAction::KeyRevoke, &key.id, Some(key.name.clone()))
        .await;
    Ok(axum::Json(key))
}

/// `GET /api/v1/audit`: newest first.
pub(crate) async fn audit(
    State(st): State<AppState>,
    caller: Require<perm::Admin>,
    Query(q): Query<PageQuery>,
) -> ApiResult<axum::Json<Page<AuditEntry>>> {
    if caller.projects().is_some() {
        return Err(ApiError::Forbidden(
            "the audit log is for unscoped admin keys".into(),
        ));
    }
    let limit = super::page_size(q.limit, 100)?;
    Ok(axum::Json(st.store.audit_log(q.cursor, limit).await?))
}
