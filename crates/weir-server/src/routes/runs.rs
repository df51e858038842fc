//! Flow runs: create, read, list, propose states, cancel, retry, heartbeat, task runs, logs,
//! and a live stream of states and logs.

pub(crate) use crate::access::visible_run;
use crate::access::{OnRun, Require, perm};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, OptionalJson, Path, Query};
use crate::openapi::{EventStream, MaybeCreated};
use crate::state::AppState;
use axum::extract::State;
use axum::response::IntoResponse;
use axum::response::sse::{Event, KeepAlive, Sse};
use std::convert::Infallible;
use std::time::Duration;
use uuid::Uuid;
use weir_core::api::{
    CreateFlowRun, FlowRun, FlowRunDetail, FlowRunsQuery, LogLine, LogsQuery, Page, PageQuery,
    ProposeState, RetryFlowRun, RunHeartbeat, RunHeartbeatReply, StreamQuery, TaskRun,
    TaskRunDetail,
};
use weir_core::audit::AuditAction;
use weir_core::auth::Permission;
use weir_core::{StateKind, names};
use weir_store::{NewFlowRun, RunFilter};

/// `POST /api/v1/flow_runs`: from a deployment (an agent launches it) or ad hoc (created
/// Running by the process that executes it). 201 when created, 200 when the idempotency key
/// matched an existing run.
pub(crate) async fn create(
    State(st): State<AppState>,
    caller: OnRun<perm::Run>,
    Json(mut req): Json<CreateFlowRun>,
) -> ApiResult<MaybeCreated<FlowRun>> {
    let now = st.now();
    // A flow process (run token) may create the subflow runs of its own run, in its project.
    if let Caller::Run { .. } = *caller {
        let parent = req.parent_flow_run_id.ok_or_else(|| {
            ApiError::Forbidden("a run token may only create subflow runs of its own run".into())
        })?;
        let parent = visible_run(&st, &caller, parent, Permission::Report).await?;
        if req.deployment_id.is_some() || req.deployment.is_some() {
            return Err(ApiError::Forbidden(
                "a run token may not start deployments".into(),
            ));
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
            return Err(ApiError::field(
                "project",
                "`deployment` by name needs `project`",
            ));
        }
        (None, None, _) => None,
    };
    let new = match deployment {
        Some(d) if d.archived_at.is_some() => {
            return Err(ApiError::Conflict {
                message: format!(
                    "deployment {}/{} is archived (removed from its weir.toml): it takes no new \
                     runs; deploy it again to restore it",
                    d.project, d.name
                ),
                current: None,
            });
        }
        Some(d) => {
            if let Some(state) = req.state
                && state != StateKind::Scheduled
            {
                return Err(ApiError::field(
                    "state",
                    format!(
                        "a deployment's run starts Scheduled (an agent launches it), not {state}"
                    ),
                ));
            }
            let mut parameters = d.spec.parameters.clone();
            parameters.extend(req.parameters.clone());
            if let Some(schema) = &d.spec.parameter_schema
                && let Err(errors) = weir_core::params::validate(schema, &parameters)
                && let Some(first) = errors.first()
            {
                let message = errors
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ");
                return Err(ApiError::field(
                    format!("parameters.{}", first.param),
                    message,
                ));
            }
            NewFlowRun {
                project: d.project.clone(),
                deployment: Some((d.id, d.name.clone())),
                flow: d.spec.flow.clone(),
                parameters,
                work_queue: d.spec.work_queue.clone(),
                scheduled_at: req.scheduled_at.unwrap_or(now),
                state: StateKind::Scheduled,
                retries: d.spec.retries,
                retry_delay_s: d.spec.retry_delay_s,
                idempotency_key: req.idempotency_key.clone(),
                parent_flow_run_id: req.parent_flow_run_id,
                tags: if req.tags.is_empty() {
                    d.spec.tags.clone()
                } else {
                    req.tags.clone()
                },
                auto_scheduled: false,
            }
        }
        None => {
            let project = req.project.clone().ok_or_else(|| {
                ApiError::field(
                    "project",
                    "give `project` (with `flow` for an ad-hoc run, or with `deployment`)",
                )
            })?;
            names::check("project", &project).map_err(|m| ApiError::field("project", m))?;
            // A run token's project is its parent's, checked above.
            if !matches!(*caller, Caller::Run { .. }) && !caller.sees(&project) {
                return Err(ApiError::Forbidden(format!(
                    "this key may only use its own project, not {project:?}"
                )));
            }
            let flow = req
                .flow
                .clone()
                .filter(|f| !f.trim().is_empty())
                .ok_or_else(|| {
                    ApiError::field(
                        "flow",
                        "an ad-hoc run needs `flow`; or give `deployment` to run a deployment",
                    )
                })?;
            if req.state != Some(StateKind::Running) {
                return Err(ApiError::field(
                    "state",
                    "an ad-hoc run (no deployment) is created Running by the process that executes it; to have an agent launch a run, deploy the flow and pass `deployment`",
                ));
            }
            st.store.ensure_project(&project, now).await?;
            NewFlowRun {
                project,
                deployment: None,
                flow,
                parameters: req.parameters.clone(),
                work_queue: weir_core::deployment::DEFAULT_QUEUE.into(),
                scheduled_at: now,
                state: StateKind::Running,
                retries: 0,
                retry_delay_s: 0,
                idempotency_key: req.idempotency_key.clone(),
                parent_flow_run_id: req.parent_flow_run_id,
                tags: req.tags.clone(),
                auto_scheduled: false,
            }
        }
    };
    let (run, created) = st.store.create_flow_run(new, st.lease(), now).await?;
    if created && let Some(d) = &run.deployment {
        caller
            .audit(
                &st,
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
    Ok(MaybeCreated { created, body: run })
}

/// `GET /api/v1/flow_runs`: newest first, with cursor pagination.
pub(crate) async fn list(
    State(st): State<AppState>,
    caller: Require<perm::Read>,
    Query(q): Query<FlowRunsQuery>,
) -> ApiResult<axum::Json<Page<FlowRun>>> {
    let limit = super::page_size(q.limit, 50)?;
    let states = match &q.state {
        None => vec![],
        Some(s) => s
            .split(',')
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.trim()
                    .parse::<StateKind>()
                    .map_err(|e| ApiError::field("state", e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?,
    };
    let deployment_id = match (&q.deployment, &q.project) {
        (Some(d), Some(p)) => {
            caller.check_project(p, || format!("deployment {p}/{d}"))?;
            Some(st.store.deployment(p, d).await?.id)
        }
        (Some(_), None) => {
            return Err(ApiError::field(
                "deployment",
                "filtering by deployment needs `project` too",
            ));
        }
        _ => None,
    };
    let filter = RunFilter {
        projects: caller.narrow(q.project),
        deployment_id,
        flow: q.flow,
        states,
        since: q.since,
        until: q.until,
        before: q.cursor,
        limit,
    };
    Ok(axum::Json(st.store.list_flow_runs(&filter).await?))
}

/// `GET /api/v1/flow_runs/{id}`: the run, its state history and task-run counts.
pub(crate) async fn detail(
    State(st): State<AppState>,
    caller: OnRun<perm::Read>,
    Path(id): Path<Uuid>,
) -> ApiResult<axum::Json<FlowRunDetail>> {
    let run = caller.run(&st, id).await?;
    let history = st.store.flow_run_history(id).await?;
    let task_runs_by_state = st.store.task_run_counts(id).await?;
    Ok(axum::Json(FlowRunDetail {
        run,
        history,
        task_runs_by_state,
    }))
}

/// `POST /api/v1/flow_runs/{id}/state`: 200 with the run when accepted, 409 with the
/// current run when refused.
pub(crate) async fn propose(
    State(st): State<AppState>,
    caller: OnRun<perm::Report>,
    Path(id): Path<Uuid>,
    Json(p): Json<ProposeState>,
) -> ApiResult<axum::Json<FlowRun>> {
    caller.run(&st, id).await?;
    if let Some(m) = &p.message
        && m.len() > 64 * 1024
    {
        return Err(ApiError::field("message", "message is longer than 64 KiB"));
    }
    let now = st.now();
    let run = st.store.propose_state(id, &p, st.lease(), now).await?;
    crate::metrics::run_changed(&run, now);
    after_change(&st, &run);
    Ok(axum::Json(run))
}

fn after_change(st: &AppState, run: &FlowRun) {
    if run.state.is_claimable() {
        st.work_available();
    }
    st.touched();
}

/// `POST /api/v1/flow_runs/{id}/cancel`.
pub(crate) async fn cancel(
    State(st): State<AppState>,
    caller: OnRun<perm::Run>,
    Path(id): Path<Uuid>,
) -> ApiResult<axum::Json<FlowRun>> {
    caller.run(&st, id).await?;
    let run = st.store.cancel_flow_run(id, st.now()).await?;
    caller
        .audit(&st, AuditAction::Cancel, &id.to_string(), None)
        .await;
    after_change(&st, &run);
    Ok(axum::Json(run))
}

/// `POST /api/v1/flow_runs/{id}/retry`: a terminal run goes back to Scheduled.
pub(crate) async fn retry(
    State(st): State<AppState>,
    caller: OnRun<perm::Run>,
    Path(id): Path<Uuid>,
    OptionalJson(body): OptionalJson<RetryFlowRun>,
) -> ApiResult<axum::Json<FlowRun>> {
    let from_failed = body.is_some_and(|b| b.from_failed);
    let run = caller.run(&st, id).await?;
    if run.deployment_id.is_none() {
        return Err(ApiError::Conflict {
            message: "an ad-hoc run has no deployment for an agent to launch again; rerun it the way it was started".into(),
            current: Some(Box::new(run)),
        });
    }
    let run = st.store.retry_flow_run(id, from_failed, st.now()).await?;
    let detail = from_failed.then(|| "from failed".to_string());
    caller
        .audit(&st, AuditAction::Retry, &id.to_string(), detail)
        .await;
    after_change(&st, &run);
    Ok(axum::Json(run))
}

/// `POST /api/v1/flow_runs/{id}/heartbeat`: a flow process renews its run's lease and
/// learns whether to stop.
pub(crate) async fn heartbeat(
    State(st): State<AppState>,
    caller: OnRun<perm::Report>,
    Path(id): Path<Uuid>,
    Json(hb): Json<RunHeartbeat>,
) -> ApiResult<axum::Json<RunHeartbeatReply>> {
    caller.run(&st, id).await?;
    let held = [weir_core::api::HeldRun {
        id,
        attempt: hb.attempt,
    }];
    let (cancel, lost) = st
        .store
        .renew_leases(None, &held, st.lease(), st.now())
        .await?;
    Ok(axum::Json(RunHeartbeatReply {
        cancel: !cancel.is_empty(),
        lost: !lost.is_empty(),
        lease_s: st.options.lease.as_secs(),
    }))
}

/// `GET /api/v1/flow_runs/{id}/task_runs`: in creation order.
pub(crate) async fn task_runs(
    State(st): State<AppState>,
    caller: OnRun<perm::Read>,
    Path(id): Path<Uuid>,
    Query(q): Query<PageQuery>,
) -> ApiResult<axum::Json<Page<TaskRun>>> {
    let limit = super::page_size(q.limit, 200)?;
    caller.run(&st, id).await?;
    Ok(axum::Json(st.store.task_runs(id, q.cursor, limit).await?))
}

/// `GET /api/v1/task_runs/{id}`.
pub(crate) async fn task_run(
    State(st): State<AppState>,
    caller: OnRun<perm::Read>,
    Path(id): Path<Uuid>,
) -> ApiResult<axum::Json<TaskRunDetail>> {
    let detail = st.store.task_run(id).await?;
    caller
        .run(&st, detail.task_run.flow_run_id)
        .await
        .map_err(|_| ApiError::NotFound(format!("task run {id} not found")))?;
    Ok(axum::Json(detail))
}

/// `GET /api/v1/flow_runs/{id}/logs`: oldest first after `after`.
pub(crate) async fn logs(
    State(st): State<AppState>,
    caller: OnRun<perm::Read>,
    Path(id): Path<Uuid>,
    Query(q): Query<LogsQuery>,
) -> ApiResult<axum::Json<Page<LogLine>>> {
    let limit = super::page_size(q.limit, 500)?;
    caller.run(&st, id).await?;
    let items = st
        .store
        .logs(id, q.task_run, q.after.unwrap_or(0), limit)
        .await?;
    let next_cursor = (items.len() == limit as usize)
        .then(|| items.last().map(|l| l.seq.to_string()))
        .flatten();
    Ok(axum::Json(Page { items, next_cursor }))
}

/// Where a stream is.
struct Follow {
    st: AppState,
    id: Uuid,
    after: i64,
    last_state: Option<(StateKind, u32)>,
    activity: tokio::sync::watch::Receiver<u64>,
    pending: std::collections::VecDeque<Event>,
    done: bool,
}

/// `GET /api/v1/flow_runs/{id}/stream`: server-sent events — `state` (the run, whenever its
/// state changes), `log` (each line) and a final `end` once the run is terminal and every
/// line was sent (or `error`, if the run can no longer be read).
pub(crate) async fn stream(
    State(st): State<AppState>,
    caller: OnRun<perm::Read>,
    Path(id): Path<Uuid>,
    Query(q): Query<StreamQuery>,
) -> ApiResult<EventStream> {
    caller.run(&st, id).await?;
    let activity = st.activity.subscribe();
    let follow = Follow {
        st,
        id,
        after: q.after.unwrap_or(0),
        last_state: None,
        activity,
        pending: Default::default(),
        done: false,
    };
    let stream = futures::stream::unfold(follow, |mut f| async move {
        loop {
            if let Some(ev) = f.pending.pop_front() {
                return Some((Ok::<_, Infallible>(ev), f));
            }
            if f.done {
                return None;
            }
            f.activity.borrow_and_update();
            // A database hiccup pauses the stream (no line is skipped: `after` only moves with
            // lines sent); any other failure ends it with an `error` event saying why.
            let read = async {
                let run = f.st.store.flow_run(f.id).await?;
                let lines = f.st.store.logs(f.id, None, f.after, 500).await?;
                Ok::<_, weir_store::Error>((run, lines))
            };
            let (run, lines) = match read.await {
                Ok(read) => read,
                Err(e) if e.is_transient() => {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
                Err(e) => {
                    f.pending
                        .push_back(Event::default().event("error").data(e.to_string()));
                    f.done = true;
                    continue;
                }
            };
            for line in &lines {
                f.after = line.seq;
                if let Ok(ev) = Event::default()
                    .event("log")
                    .id(line.seq.to_string())
                    .json_data(line)
                {
                    f.pending.push_back(ev);
                }
            }
            if f.last_state != Some((run.state, run.attempt)) {
                f.last_state = Some((run.state, run.attempt));
                if let Ok(ev) = Event::default().event("state").json_data(&run) {
                    f.pending.push_back(ev);
                }
            }
            if run.state.is_terminal() && lines.is_empty() {
                f.pending
                    .push_back(Event::default().event("end").data(run.state.as_str()));
                f.done = true;
                continue;
            }
            if f.pending.is_empty() {
                let _ =
                    tokio::time::timeout(Duration::from_millis(500), f.activity.changed()).await;
            }
        }
    });
    Ok(EventStream(
        Sse::new(stream)
            .keep_alive(KeepAlive::default())
            .into_response(),
    ))
}
