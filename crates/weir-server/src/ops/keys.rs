//! Service accounts' API keys and the audit log (admins only).

use crate::access::{Require, perm};
use crate::auth::{Caller, new_key};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use chrono::Utc;
use uuid::Uuid;
use weir_core::api::{ApiKey, AuditEntry, CreateApiKey, CreatedApiKey, MAX_KEY_LIFETIME_S, Page};
use weir_core::audit::AuditAction;
use weir_core::names;

/// Creates a key; its secret is in the answer and nowhere else, ever.
pub(crate) async fn create(
    st: &AppState,
    caller: &Require<perm::Admin>,
    req: CreateApiKey,
) -> ApiResult<CreatedApiKey> {
    if req.name.trim().is_empty() || req.name.chars().count() > 100 {
        return Err(ApiError::field(
            "name",
            "a key's name must be 1-100 characters",
        ));
    }
    if let Some(p) = &req.project {
        names::check("project", p).map_err(|m| ApiError::field("project", m))?;
    }
    let scope = match &**caller {
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
            st,
            AuditAction::KeyCreate,
            &key.id,
            Some(format!("{} ({}{scope})", key.name, key.role)),
        )
        .await;
    Ok(CreatedApiKey { key, secret })
}

/// The keys the caller administers (all, or its project's); never secrets or digests.
pub(crate) async fn list(st: &AppState, caller: &Require<perm::Admin>) -> ApiResult<Vec<ApiKey>> {
    let keys = st.store.api_keys().await?;
    Ok(keys
        .into_iter()
        .filter(|k| {
            caller.projects().is_none() || k.project.as_deref().is_some_and(|p| caller.sees(p))
        })
        .collect())
}

/// Revokes key `id` at once; a key outside the caller's project is not found.
pub(crate) async fn revoke(
    st: &AppState,
    caller: &Require<perm::Admin>,
    id: &str,
) -> ApiResult<ApiKey> {
    let not_found = || ApiError::NotFound(format!("API key {id} not found"));
    let (key, _) = st.store.api_key(id).await?.ok_or_else(not_found)?;
    if caller.projects().is_some() && !key.project.as_deref().is_some_and(|p| caller.sees(p)) {
        return Err(not_found());
    }
    let key = st.store.revoke_api_key(id, Utc::now()).await?;
    caller
        .audit(st, AuditAction::KeyRevoke, &key.id, Some(key.name.clone()))
        .await;
    Ok(key)
}

/// A page of the audit log (`limit` entries, 100 by default), newest first, for unscoped
/// admin keys.
pub(crate) async fn audit_log(
    st: &AppState,
    caller: &Require<perm::Admin>,
    cursor: Option<Uuid>,
    limit: Option<u32>,
) -> ApiResult<Page<AuditEntry>> {
    if caller.projects().is_some() {
        return Err(ApiError::Forbidden(
            "the audit log is for unscoped admin keys".into(),
        ));
    }
    let limit = crate::extract::page_size(limit, 100)?;
    Ok(st.store.audit_log(cursor, limit).await?)
}
