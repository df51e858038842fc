//! Flow runs: create, cancel, retry, and why a run is not running.

use crate::access::{OnRun, perm, visible_run};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use std::collections::BTreeSet;
use uuid::Uuid;
use weir_core::api::{CreateFlowRun, Explanation};
use weir_core::audit::AuditAction;
use weir_core::auth::Permission;
use weir_core::create::{self, RunRequest};
use weir_core::run::Run;
use weir_core::why::Reason;
use weir_core::{StateKind, names};
use weir_store::Created;

/// Agents silent for longer than this are not considered for an explanation at all.
const AGENTS_SEEN_FOR: chrono::Duration = chrono::Duration::hours(24);

/// Why a run was not created: a verdict of the creation rule (`weir_core::create`), which a
/// form shows beside its fields, or any other refusal.
#[derive(Debug)]
pub(crate) enum CreateError {
    /// The request breaks the creation rule.
    Rule(create::Error),
    /// Not found, not allowed, or the database failed.
    Api(ApiError),
}

impl From<ApiError> for CreateError {
    fn from(e: ApiError) -> Self {
        CreateError::Api(e)
    }
}

impl From<weir_store::Error> for CreateError {
    fn from(e: weir_store::Error) -> Self {
        CreateError::Api(e.into())
    }
}

impl From<CreateError> for ApiError {
    fn from(e: CreateError) -> Self {
        match e {
            CreateError::Api(e) => e,
            CreateError::Rule(e @ create::Error::Archived { .. }) => ApiError::Conflict {
                message: e.to_string(),
                current: None,
            },
            CreateError::Rule(e @ create::Error::Parameters(_)) => {
                ApiError::field(e.field().unwrap_or_default(), e.to_string())
            }
            CreateError::Rule(create::Error::Field { field, message }) => {
                ApiError::field(field, message)
            }
        }
    }
}

/// Creates a run: of a deployment (an agent launches it) or ad hoc (created Running by the
/// process that executes it). [`Created::created`] is false when the idempotency key matched
/// an existing run, which is returned.
pub(crate) async fn create(
    st: &AppState,
    caller: &OnRun<perm::Run>,
    mut req: CreateFlowRun,
) -> Result<Created, CreateError> {
    let now = st.now();
    // A flow process (run token) may create the subflow runs of its own run, in its project.
    if let Caller::Run { .. } = **caller {
        let parent = req.parent_flow_run_id.ok_or_else(|| {
            ApiError::Forbidden("a run token may only create subflow runs of its own run".into())
        })?;
        let parent = visible_run(st, caller, parent, Permission::Report).await?;
        if req.deployment_id.is_some() || req.deployment.is_some() {
            return Err(ApiError::Forbidden("a run token may not start deployments".into()).into());
        }
        req.project = Some(parent.project);
    } else {
        caller.require(caller.permission())?;
    }
    let deployment = match (&req.deployment_id, &req.deployment, &req.project) {
        (Some(id), _, _) => {
            let d = st.store.deployment_by_id(*id).await?;
            caller.check_project(&d.project, || format!("deployment {id}"))?;
            Some(d)
        }
        (None, Some(name), Some(project)) => {
            caller.check_project(project, || format!("deployment {project}/{name}"))?;
            Some(st.store.deployment(project, name).await?)
        }
        (None, Some(_), None) => {
            return Err(ApiError::field("project", "`deployment` by name needs `project`").into());
        }
        (None, None, _) => None,
    };
    let new = match deployment {
        Some(d) => {
            create::of_deployment(&d, RunRequest::of(&req), now).map_err(CreateError::Rule)?
        }
        None => {
            // A run token's project is its parent's, checked above.
            if let Some(project) = &req.project
                && names::check("project", project).is_ok()
                && !matches!(**caller, Caller::Run { .. })
                && !caller.sees(project)
            {
                return Err(ApiError::Forbidden(format!(
                    "this key may only use its own project, not {project:?}"
                ))
                .into());
            }
            let new = create::ad_hoc(
                req.project.as_deref(),
                req.flow.as_deref(),
                RunRequest::of(&req),
                now,
            )
            .map_err(CreateError::Rule)?;
            st.store.ensure_project(&new.project, now).await?;
            new
        }
    };
    let new = st.store.create_flow_run(new, st.lease(), now).await?;
    let (run, created) = (&new.run, new.created);
    if created && let Some(d) = &run.deployment {
        caller
            .audit(
                st,
                AuditAction::Run,
                &run.id.to_string(),
                Some(format!("{}/{d}", run.project)),
            )
            .await;
    }
    if created && run.state == StateKind::Scheduled {
        st.work_available();
    }
    st.touched();
    Ok(new)
}

/// Requests the cancellation of run `id` (`weir_core::orchestration::cancel` decides what
/// that does).
pub(crate) async fn cancel(st: &AppState, caller: &OnRun<perm::Run>, id: Uuid) -> ApiResult<Run> {
    caller.run(st, id).await?;
    let run = st.store.cancel_flow_run(id, st.now()).await?;
    caller
        .audit(st, AuditAction::Cancel, &id.to_string(), None)
        .await;
    changed(st, &run);
    Ok(run)
}

/// Whether `run` can be retried by hand: it ended, and it has a deployment for an agent to
/// launch again.
pub(crate) fn retriable(run: &Run) -> bool {
    run.state.is_terminal() && run.deployment_id.is_some()
}

/// Sends ended run `id` back to Scheduled (`from_failed`: its completed tasks' results are
/// reused).
pub(crate) async fn retry(
    st: &AppState,
    caller: &OnRun<perm::Run>,
    id: Uuid,
    from_failed: bool,
) -> ApiResult<Run> {
    let run = caller.run(st, id).await?;
    if run.deployment_id.is_none() {
        return Err(ApiError::Conflict {
            message: "an ad-hoc run has no deployment for an agent to launch again; rerun it the way it was started".into(),
            current: Some(Box::new(run)),
        });
    }
    let run = st.store.retry_flow_run(id, from_failed, st.now()).await?;
    let detail = from_failed.then(|| "from failed".to_string());
    caller
        .audit(st, AuditAction::Retry, &id.to_string(), detail)
        .await;
    changed(st, &run);
    Ok(run)
}

/// After a run's state changed: wakes agents when it can be claimed, and streams.
pub(crate) fn changed(st: &AppState, run: &Run) {
    if run.state.is_claimable() {
        st.work_available();
    }
    st.touched();
}

/// Why run `id` is not running (or that it is), for `caller`: slot holders it may not see are
/// counted, not named.
pub(crate) async fn why(
    st: &AppState,
    caller: &OnRun<perm::Read>,
    id: Uuid,
) -> ApiResult<Explanation> {
    caller.run(st, id).await?;
    let now = st.now();
    let facts = st.store.why_facts(id, now, now - AGENTS_SEEN_FOR).await?;
    let mut e = weir_core::why::explain(&facts, now, st.lease());
    if caller.projects().is_some() {
        let mut visible = BTreeSet::new();
        for r in &e.reasons {
            if let Reason::LimitFull { holders, .. } = r {
                for h in holders {
                    match st.store.flow_run(*h).await {
                        Ok(run) if caller.sees(&run.project) => {
                            visible.insert(*h);
                        }
                        Ok(_) | Err(weir_store::Error::NotFound(_)) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
            }
        }
        e.retain_holders(|h| visible.contains(h), now);
    }
    Ok(e)
}
