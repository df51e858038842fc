//! Notification rules and the delivery log.
//!
//! Rules hold secret references only; nothing here resolves one, so no response can carry a
//! secret value. Whether a rule is valid is `weir_core::notify::check_rule`'s decision, the
//! one `weir deploy` applies to `weir.toml`.

use crate::access::{Require, perm};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path, Query};
use crate::openapi::{Created, MaybeCreated};
use crate::state::AppState;
use axum::extract::State;
use weir_core::api::notifications::{
    Delivery, DeliveryQuery, NotificationRule, RulePath, UpsertNotificationRule,
};
use weir_core::api::{Page, ProjectQuery};
use weir_core::audit::AuditAction;
use weir_core::names;

/// `GET /api/v1/notifications?project=`.
pub(crate) async fn list(
    State(st): State<AppState>,
    caller: Require<perm::Read>,
    Query(f): Query<ProjectQuery>,
) -> ApiResult<axum::Json<Vec<NotificationRule>>> {
    let projects = caller.narrow(f.project);
    Ok(axum::Json(
        st.store.notification_rules(projects.as_deref()).await?,
    ))
}

/// `GET /api/v1/projects/{project}/notifications/{name}`.
pub(crate) async fn get(
    State(st): State<AppState>,
    caller: Require<perm::Read>,
    Path(RulePath { project, name }): Path<RulePath>,
) -> ApiResult<axum::Json<NotificationRule>> {
    caller.check_project(&project, || format!("notification rule {project}/{name}"))?;
    Ok(axum::Json(
        st.store.notification_rule(&project, &name).await?,
    ))
}

/// `PUT /api/v1/projects/{project}/notifications/{name}`: create or replace.
pub(crate) async fn upsert(
    State(st): State<AppState>,
    caller: Require<perm::Deploy>,
    Path(RulePath { project, name }): Path<RulePath>,
    Json(req): Json<UpsertNotificationRule>,
) -> ApiResult<MaybeCreated<NotificationRule>> {
    caller.check_project(&project, || format!("project {project:?}"))?;
    names::check("project", &project).map_err(|m| ApiError::field("project", m))?;
    names::check("notification rule", &name).map_err(|m| ApiError::field("name", m))?;
    weir_core::notify::check_rule(&req.spec).map_err(|e| ApiError::field(e.field, e.message))?;
    let (rule, created) = st
        .store
        .upsert_notification_rule(&project, &name, &req.spec, req.source, st.now())
        .await?;
    caller
        .audit(
            &st,
            AuditAction::NotificationSet,
            &format!("{project}/{name}"),
            Some(rule.spec.destination.kind().to_string()),
        )
        .await;
    Ok(MaybeCreated {
        created,
        body: rule,
    })
}

/// `DELETE /api/v1/projects/{project}/notifications/{name}`: the rule goes, its log stays.
pub(crate) async fn delete(
    State(st): State<AppState>,
    caller: Require<perm::Deploy>,
    Path(RulePath { project, name }): Path<RulePath>,
) -> ApiResult<axum::Json<NotificationRule>> {
    caller.check_project(&project, || format!("notification rule {project}/{name}"))?;
    let rule = st.store.notification_rule(&project, &name).await?;
    st.store.delete_notification_rule(&project, &name).await?;
    caller
        .audit(
            &st,
            AuditAction::NotificationDelete,
            &format!("{project}/{name}"),
            None,
        )
        .await;
    Ok(axum::Json(rule))
}

/// `POST /api/v1/projects/{project}/notifications/{name}/test`: a test notification through
/// the outbox, like any other (its outcome shows in the delivery log).
pub(crate) async fn test(
    State(st): State<AppState>,
    caller: Require<perm::Deploy>,
    Path(RulePath { project, name }): Path<RulePath>,
) -> ApiResult<Created<Delivery>> {
    caller.check_project(&project, || format!("notification rule {project}/{name}"))?;
    let rule = st.store.notification_rule(&project, &name).await?;
    let id = st.store.enqueue_test_notification(&rule, st.now()).await?;
    Ok(Created(st.store.delivery(id).await?))
}

/// `GET /api/v1/notifications/deliveries`: the delivery log, newest first.
pub(crate) async fn deliveries(
    State(st): State<AppState>,
    caller: Require<perm::Read>,
    Query(q): Query<DeliveryQuery>,
) -> ApiResult<axum::Json<Page<Delivery>>> {
    let limit = super::page_size(q.limit, 50)?;
    if let Some(p) = &q.project {
        names::check("project", p).map_err(|m| ApiError::field("project", m))?;
    }
    if let Some(r) = &q.rule {
        names::check("notification rule", r).map_err(|m| ApiError::field("rule", m))?;
    }
    let projects = caller.narrow(q.project);
    Ok(axum::Json(
        st.store
            .deliveries(projects.as_deref(), q.rule.as_deref(), q.cursor, limit)
            .await?,
    ))
}
