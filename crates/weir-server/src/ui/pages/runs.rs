//! The runs list, a run's page (history, task timeline, why it waits) with its cancel and
//! retry forms, and a task run's page.

use super::{Csrf, Page, allows, html, state_name, states};
use crate::access::{OnRun, visible_run};
use crate::error::ApiError;
use crate::ops;
use crate::state::AppState;
use crate::ui::UiUser;
use crate::ui::gantt;
use crate::ui::view::{
    HistoryRow, RunPage, RunRow, RunsPage, TaskRow, TaskRunPage, Time, duration,
};
use axum::extract::{Form, Path, Query, State};
use axum::response::{IntoResponse, Redirect};
use chrono::Utc;
use serde::Deserialize;
use uuid::Uuid;
use weir_core::api::LogLevel;
use weir_core::auth::Permission;
use weir_core::run::Run;
use weir_store::RunFilter;

/// Filters of the runs page.
#[derive(Deserialize)]
pub(crate) struct RunsQuery {
    project: Option<String>,
    state: Option<String>,
    cursor: Option<Uuid>,
}

/// `GET /runs`.
pub(crate) async fn runs(
    State(st): State<AppState>,
    user: UiUser,
    Query(q): Query<RunsQuery>,
) -> Page {
    user.caller.require(Permission::Read)?;
    let project = q.project.filter(|p| !p.is_empty());
    let state = q.state.as_deref().map(state_name).unwrap_or("");
    let page = st
        .store
        .list_flow_runs(&RunFilter {
            projects: user.caller.narrow(project.clone()),
            states: state.parse().map(|s| vec![s]).unwrap_or_default(),
            before: q.cursor,
            limit: 50,
            ..Default::default()
        })
        .await?;
    let next = page.next_cursor.map(|c| {
        let mut url = format!("/runs?cursor={c}");
        if let Some(p) = &project {
            url.push_str(&format!("&project={p}"));
        }
        if !state.is_empty() {
            url.push_str(&format!("&state={state}"));
        }
        url
    });
    let mut projects: Vec<String> = st
        .store
        .projects()
        .await?
        .into_iter()
        .map(|p| p.name)
        .collect();
    projects.retain(|p| user.caller.sees(p));
    html(RunsPage {
        user: user.view,
        nav: "runs",
        runs: page.items.iter().map(RunRow::of).collect(),
        projects,
        states: states(),
        filter_project: project.unwrap_or_default(),
        filter_state: state,
        next,
    })
}

/// `GET /runs/{id}`.
pub(crate) async fn run(State(st): State<AppState>, user: UiUser, Path(id): Path<Uuid>) -> Page {
    run_page(&st, user, id, None).await
}

async fn run_page(
    st: &AppState,
    user: UiUser,
    id: Uuid,
    flash: Option<(&'static str, String)>,
) -> Page {
    let run = visible_run(st, &user.caller, id, Permission::Read).await?;
    let history = st.store.flow_run_history(id).await?;
    let counts = st.store.task_run_counts(id).await?;
    let total: u64 = counts.values().sum();
    let (gantt, tasks) = if total as usize <= gantt::MAX_BARS {
        let tasks = st
            .store
            .task_runs(id, None, gantt::MAX_BARS as u32)
            .await?
            .items;
        (gantt::per_task(&tasks, Utc::now()), tasks)
    } else {
        let groups = st.store.task_groups(id).await?;
        let first = st.store.task_runs(id, None, 50).await?.items;
        (gantt::grouped(&groups), first)
    };
    let task_rows: Vec<TaskRow> = tasks
        .iter()
        .map(|t| TaskRow {
            id: t.id.to_string(),
            label: match t.map_index {
                Some(i) => format!("{}[{i}]", t.task),
                None => t.task.clone(),
            },
            state: t.state.as_str(),
            duration: duration(t.started_at, t.ended_at),
            result: t.result_location.clone().unwrap_or_default(),
        })
        .collect();
    let more_tasks = total.saturating_sub(task_rows.len() as u64);
    let can_run = allows(&user.caller, Permission::Run) && run.deployment_id.is_some();
    let why = if run.state.is_claimable() {
        ops::runs::why(st, &OnRun::new(user.caller.clone()), id)
            .await?
            .messages
    } else {
        Vec::new()
    };
    let page = RunParts {
        history,
        gantt,
        tasks: task_rows,
        more_tasks,
        can_run,
        why,
    };
    page_for_run(user, run, page, flash)
}

/// What the run page shows besides the run.
struct RunParts {
    history: Vec<weir_core::api::StateChange>,
    gantt: String,
    tasks: Vec<TaskRow>,
    more_tasks: u64,
    can_run: bool,
    why: Vec<String>,
}

fn page_for_run(
    user: UiUser,
    run: Run,
    parts: RunParts,
    flash: Option<(&'static str, String)>,
) -> Page {
    let RunParts {
        history,
        gantt,
        tasks,
        more_tasks,
        can_run,
        why,
    } = parts;
    let deployment_link = run.deployment.as_ref().map(|d| {
        (
            format!("/deployments/{}/{d}", run.project),
            format!("{}/{d}", run.project),
        )
    });
    html(RunPage {
        user: user.view,
        nav: "runs",
        why,
        flash,
        deployment_link,
        message: run.state_message.clone().unwrap_or_default(),
        scheduled: Time::of(&run.scheduled_at),
        parameters: serde_json::Value::Object(run.parameters.clone()).to_string(),
        result: run
            .result
            .as_ref()
            .map(|r| format!("{} ({} bytes)", r.location, r.size)),
        parent: run.parent_flow_run_id.map(|p| p.to_string()),
        cancellable: weir_core::orchestration::cancel_target(run.state).is_some(),
        retriable: ops::runs::retriable(&run),
        can_run,
        gantt,
        live: !run.state.is_terminal(),
        tasks,
        more_tasks,
        history: history
            .into_iter()
            .map(|h| HistoryRow::new(&h.at, h.state, h.attempt, h.message))
            .collect(),
        run,
    })
}

/// `POST /runs/{id}/cancel`.
pub(crate) async fn cancel(
    State(st): State<AppState>,
    user: UiUser,
    Path(id): Path<Uuid>,
    Form(f): Form<Csrf>,
) -> Page {
    user.check_csrf(f.csrf.as_deref())?;
    ops::runs::cancel(&st, &OnRun::new(user.caller.clone()), id).await?;
    Ok(Redirect::to(&format!("/runs/{id}")).into_response())
}

/// `POST /runs/{id}/retry` (with `from_failed=1` to reuse completed tasks' results).
pub(crate) async fn retry(
    State(st): State<AppState>,
    user: UiUser,
    Path(id): Path<Uuid>,
    Form(f): Form<Csrf>,
) -> Page {
    user.check_csrf(f.csrf.as_deref())?;
    let caller = OnRun::new(user.caller.clone());
    ops::runs::retry(&st, &caller, id, f.from_failed.is_some()).await?;
    Ok(Redirect::to(&format!("/runs/{id}")).into_response())
}

/// `GET /task-runs/{id}`.
pub(crate) async fn task_run(
    State(st): State<AppState>,
    user: UiUser,
    Path(id): Path<Uuid>,
) -> Page {
    let weir_core::api::TaskRunDetail {
        task_run: t,
        history,
    } = st.store.task_run(id).await?;
    visible_run(&st, &user.caller, t.flow_run_id, Permission::Read)
        .await
        .map_err(|_| ApiError::NotFound(format!("task run {id} not found")))?;
    let logs = st
        .store
        .logs(t.flow_run_id, Some(id), 0, 1000)
        .await?
        .into_iter()
        .map(|l| {
            let class = match l.level {
                LogLevel::Warn => "warn",
                LogLevel::Error => "error",
                _ => "",
            };
            (class, Time::of(&l.at), l.message)
        })
        .collect();
    html(TaskRunPage {
        user: user.view,
        nav: "runs",
        task: t.task.clone(),
        state: t.state.as_str(),
        flow_run: t.flow_run_id.to_string(),
        attempt: t.attempt,
        message: t.message.clone().unwrap_or_default(),
        duration: duration(t.started_at, t.ended_at),
        fingerprint: t.inputs_fingerprint.clone().unwrap_or_default(),
        cache_key: t.cache_key.clone().unwrap_or_default(),
        result: t.result_location.clone().unwrap_or_default(),
        history: history
            .into_iter()
            .map(|h| HistoryRow::new(&h.at, h.state, h.attempt, h.message))
            .collect(),
        logs,
    })
}
