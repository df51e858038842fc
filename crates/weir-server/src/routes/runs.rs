//! Flow runs: create, read, list, propose states, cancel, retry, heartbeat, task runs, logs,
//! and a live stream of states and logs.

use crate::access::{OnRun, Require, perm};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, OptionalJson, Path, Query};
use crate::openapi::{EventStream, MaybeCreated};
use crate::ops;
use crate::state::AppState;
use axum::extract::State;
use axum::response::IntoResponse;
use axum::response::sse::{Event, KeepAlive, Sse};
use std::convert::Infallible;
use std::time::Duration;
use uuid::Uuid;
use weir_core::StateKind;
use weir_core::api::{
    CreateFlowRun, FlowRun, FlowRunDetail, FlowRunsQuery, LogLine, LogsQuery, Page, PageQuery,
    ProposeState, RetryFlowRun, RunHeartbeat, RunHeartbeatReply, StreamQuery, TaskRun,
    TaskRunDetail,
};
use weir_store::RunFilter;

/// `POST /api/v1/flow_runs`: from a deployment (an agent launches it) or ad hoc (created
/// Running by the process that executes it). 201 when created, 200 when the idempotency key
/// matched an existing run.
pub(crate) async fn create(
    State(st): State<AppState>,
    caller: OnRun<perm::Run>,
    Json(req): Json<CreateFlowRun>,
) -> ApiResult<MaybeCreated<FlowRun>> {
    let new = ops::runs::create(&st, &caller, req).await?;
    Ok(MaybeCreated {
        created: new.created,
        body: new.run.into(),
    })
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
    let page = st.store.list_flow_runs(&filter).await?;
    Ok(axum::Json(Page {
        items: page.items.into_iter().map(FlowRun::from).collect(),
        next_cursor: page.next_cursor,
    }))
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
        run: run.into(),
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
    ops::runs::changed(&st, &run);
    Ok(axum::Json(run.into()))
}

/// `POST /api/v1/flow_runs/{id}/cancel`.
pub(crate) async fn cancel(
    State(st): State<AppState>,
    caller: OnRun<perm::Run>,
    Path(id): Path<Uuid>,
) -> ApiResult<axum::Json<FlowRun>> {
    Ok(axum::Json(
        ops::runs::cancel(&st, &caller, id).await?.into(),
    ))
}

/// `POST /api/v1/flow_runs/{id}/retry`: a terminal run goes back to Scheduled.
pub(crate) async fn retry(
    State(st): State<AppState>,
    caller: OnRun<perm::Run>,
    Path(id): Path<Uuid>,
    OptionalJson(body): OptionalJson<RetryFlowRun>,
) -> ApiResult<axum::Json<FlowRun>> {
    let from_failed = body.is_some_and(|b| b.from_failed);
    Ok(axum::Json(
        ops::runs::retry(&st, &caller, id, from_failed)
            .await?
            .into(),
    ))
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
                if let Ok(ev) = Event::default()
                    .event("state")
                    .json_data(FlowRun::from(&run))
                {
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
