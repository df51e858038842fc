//! Deployments: pausing and resuming their schedules.

use crate::access::{Require, perm};
use crate::error::ApiResult;
use crate::state::AppState;
use chrono::Utc;
use weir_core::audit::AuditAction;
use weir_core::deployment::Deployment;

/// Pauses (`paused`) or resumes the schedules of deployment `project/name`; answers it as it
/// is now.
pub(crate) async fn set_paused(
    st: &AppState,
    caller: &Require<perm::Deploy>,
    project: &str,
    name: &str,
    paused: bool,
) -> ApiResult<Deployment> {
    caller.check_project(project, || format!("deployment {project}/{name}"))?;
    let d = st.store.deployment(project, name).await?;
    st.store.set_paused(d.id, paused, Utc::now()).await?;
    let action = if paused {
        AuditAction::SchedulePause
    } else {
        AuditAction::ScheduleResume
    };
    caller
        .audit(st, action, &format!("{project}/{name}"), None)
        .await;
    Ok(st.store.deployment(project, name).await?)
}
