//! The UI's handlers: read through the store (filtered by what the caller may see), change
//! through the use cases of `ops`, the same the API's handlers call.

use super::charts::{self, Range};
use super::form;
use super::view::*;
use super::{LOGIN_CSRF_COOKIE, UiError, UiUser, clear_cookie, session_cookie};
use crate::access::{OnRun, Require, visible_run};
use crate::auth::{self, Caller};
use crate::error::ApiError;
use crate::ops;
use crate::state::AppState;
use askama::Template;
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use chrono::Utc;
use serde::Deserialize;
use std::collections::HashMap;
use uuid::Uuid;
use weir_core::StateKind;
use weir_core::api::{CreateApiKey, CreateFlowRun, FlowRun, LogLevel};
use weir_core::auth::{Permission, Role};
use weir_store::RunFilter;

type Page = Result<Response, UiError>;

fn html(t: impl Template) -> Page {
    t.render().map(|s| Html(s).into_response()).map_err(|e| {
        UiError(ApiError::Internal(format!(
            "page could not be rendered: {e}"
        )))
    })
}

fn states() -> Vec<&'static str> {
    StateKind::ALL.iter().map(|s| s.as_str()).collect()
}

fn state_name(s: &str) -> &'static str {
    s.parse::<StateKind>().map(StateKind::as_str).unwrap_or("")
}

fn allows(caller: &Caller, p: Permission) -> bool {
    caller.require(p).is_ok()
}

// ---- login ----

/// Where to go after logging in.
#[derive(Deserialize)]
pub(crate) struct Next {
    next: Option<String>,
}

fn safe_next(next: Option<String>) -> String {
    next.filter(|n| n.starts_with('/') && !n.starts_with("//"))
        .unwrap_or_else(|| "/".into())
}

fn random_token() -> String {
    let mut buf = [0u8; 16];
    let _ = getrandom::fill(&mut buf);
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

fn login_page(next: String, error: Option<String>, status: StatusCode) -> Page {
    let csrf = random_token();
    let page = LoginPage {
        csrf: csrf.clone(),
        next,
        error,
    }
    .render()
    .map_err(|e| UiError(ApiError::Internal(e.to_string())))?;
    let cookie =
        format!("{LOGIN_CSRF_COOKIE}={csrf}; Path=/login; HttpOnly; SameSite=Strict; Max-Age=3600");
    Ok((status, [(header::SET_COOKIE, cookie)], Html(page)).into_response())
}

/// `GET /login`.
pub(crate) async fn login_form(Query(q): Query<Next>) -> Page {
    login_page(safe_next(q.next), None, StatusCode::OK)
}

/// The login form.
#[derive(Deserialize)]
pub(crate) struct LoginForm {
    key: String,
    csrf: String,
    next: Option<String>,
}

/// `POST /login`: a valid API key becomes a session.
pub(crate) async fn login(
    State(st): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Page {
    let next = safe_next(f.next);
    let expected = headers
        .get(header::COOKIE)
        .and_then(|c| c.to_str().ok())
        .and_then(|c| {
            c.split(';').find_map(|kv| {
                let (n, v) = kv.trim().split_once('=')?;
                (n == LOGIN_CSRF_COOKIE).then(|| v.to_string())
            })
        });
    if expected.as_deref() != Some(f.csrf.as_str()) || f.csrf.is_empty() {
        return login_page(
            next,
            Some("The login form expired; try again.".into()),
            StatusCode::FORBIDDEN,
        );
    }
    let key = f.key.trim();
    if key.starts_with(auth::SESSION_PREFIX) {
        return login_page(
            next,
            Some("That is not an API key.".into()),
            StatusCode::UNAUTHORIZED,
        );
    }
    match auth::authenticate(&st, key).await {
        Ok(Some(Caller::Key { id, .. })) => Ok((
            StatusCode::SEE_OTHER,
            axum::response::AppendHeaders([
                (header::SET_COOKIE, session_cookie(&st, &id)),
                (header::SET_COOKIE, clear_cookie(LOGIN_CSRF_COOKIE)),
                (
                    header::LOCATION,
                    next.parse()
                        .unwrap_or_else(|_| header::HeaderValue::from_static("/")),
                ),
            ]),
        )
            .into_response()),
        _ => login_page(
            next,
            Some("That key is not valid (wrong, revoked or expired).".into()),
            StatusCode::UNAUTHORIZED,
        ),
    }
}

/// A form with only a CSRF token (and perhaps a flag).
#[derive(Deserialize)]
pub(crate) struct Csrf {
    csrf: Option<String>,
    from_failed: Option<String>,
}

/// `POST /logout`.
pub(crate) async fn logout(user: UiUser, Form(f): Form<Csrf>) -> Page {
    user.check_csrf(f.csrf.as_deref())?;
    Ok((
        StatusCode::SEE_OTHER,
        [
            (header::SET_COOKIE, clear_cookie(super::SESSION_COOKIE)),
            (header::LOCATION, header::HeaderValue::from_static("/login")),
        ],
    )
        .into_response())
}

// ---- dashboard ----

/// The dashboard's query: `range=24h` (default) or `range=7d`.
#[derive(Deserialize)]
pub(crate) struct DashboardQuery {
    range: Option<String>,
}

/// `GET /`.
pub(crate) async fn dashboard(
    State(st): State<AppState>,
    user: UiUser,
    Query(q): Query<DashboardQuery>,
) -> Page {
    user.caller.require(Permission::Read)?;
    let range = Range::parse(q.range.as_deref()).map_err(|m| ApiError::field("range", m))?;
    let projects = user.caller.projects();
    let now = Utc::now();
    let from = now - range.span();
    let hours = st
        .store
        .runs_by_hour(projects.as_deref(), from, now)
        .await?;
    let buckets = charts::buckets(&hours, from, now, range.hours_per_bar());
    let counts = StateKind::ALL
        .iter()
        .filter_map(|s| {
            let n: u64 = buckets.iter().filter_map(|b| b.counts.get(s)).sum();
            (n > 0).then_some((s.as_str(), n))
        })
        .collect();
    let chart = charts::runs_over_time(&buckets);
    let problems = st
        .store
        .list_flow_runs(&RunFilter {
            projects: projects.clone(),
            states: vec![StateKind::Failed, StateKind::Crashed, StateKind::Late],
            limit: 10,
            ..Default::default()
        })
        .await?
        .items
        .iter()
        .map(RunRow::of)
        .collect();
    let upcoming = st
        .store
        .upcoming_runs(projects.as_deref(), 10)
        .await?
        .iter()
        .map(RunRow::of)
        .collect();
    let agents = agent_rows(&st).await?;
    html(DashboardPage {
        user: user.view,
        nav: "dashboard",
        range: range.param(),
        range_words: range.words(),
        chart,
        counts,
        problems,
        upcoming,
        agents,
    })
}

async fn agent_rows(st: &AppState) -> Result<Vec<AgentRow>, UiError> {
    Ok(st
        .store
        .agents(Utc::now() - chrono::Duration::hours(24))
        .await?
        .into_iter()
        .map(|a| AgentRow {
            id: a.id.to_string(),
            name: a.name,
            queues: a.queues.join(", "),
            running: format!("{}/{}", a.running, a.limit),
            heartbeat: Time::of(&a.last_heartbeat_at),
        })
        .collect())
}

// ---- runs ----

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
    let (gantt, tasks) = if total as usize <= super::gantt::MAX_BARS {
        let tasks = st
            .store
            .task_runs(id, None, super::gantt::MAX_BARS as u32)
            .await?
            .items;
        (super::gantt::per_task(&tasks, Utc::now()), tasks)
    } else {
        let groups = st.store.task_groups(id).await?;
        let first = st.store.task_runs(id, None, 50).await?.items;
        (super::gantt::grouped(&groups), first)
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
    run: FlowRun,
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

// ---- deployments ----

fn schedule_words(spec: &weir_core::api::DeploymentSpec) -> String {
    let words: Vec<String> = spec
        .schedules
        .iter()
        .filter_map(|s| weir_core::Schedule::parse(s).ok().map(|s| s.describe()))
        .collect();
    if words.is_empty() {
        "on demand".into()
    } else {
        words.join("; ")
    }
}

/// Filter of the deployments page.
#[derive(Deserialize)]
pub(crate) struct ProjectQuery {
    project: Option<String>,
}

/// `GET /deployments`.
pub(crate) async fn deployments(
    State(st): State<AppState>,
    user: UiUser,
    Query(q): Query<ProjectQuery>,
) -> Page {
    user.caller.require(Permission::Read)?;
    let projects = user.caller.narrow(q.project.filter(|p| !p.is_empty()));
    let mut rows = Vec::new();
    for d in st.store.deployments(projects.as_deref()).await? {
        let recent = st
            .store
            .list_flow_runs(&RunFilter {
                deployment_id: Some(d.id),
                limit: 10,
                ..Default::default()
            })
            .await?
            .items
            .iter()
            .rev()
            .map(|r| (r.id.to_string(), r.state.as_str(), r.name.clone()))
            .collect();
        let next = st
            .store
            .next_scheduled(d.id)
            .await?
            .map(|r| Time::of(&r.scheduled_at));
        rows.push(DeploymentRow {
            schedule: schedule_words(&d.spec),
            project: d.project,
            name: d.name,
            flow: d.spec.flow.clone(),
            version: d.version,
            next,
            recent,
            paused: d.paused,
            archived: d.archived_at.is_some(),
        });
    }
    html(DeploymentsPage {
        user: user.view,
        nav: "deployments",
        rows,
    })
}

/// `GET /deployments/{project}/{name}`.
pub(crate) async fn deployment(
    State(st): State<AppState>,
    user: UiUser,
    Path((project, name)): Path<(String, String)>,
) -> Page {
    deployment_page(
        &st,
        user,
        &project,
        &name,
        HashMap::new(),
        HashMap::new(),
        None,
        StatusCode::OK,
    )
    .await
}

#[allow(clippy::too_many_arguments)]
async fn deployment_page(
    st: &AppState,
    user: UiUser,
    project: &str,
    name: &str,
    values: HashMap<String, String>,
    errors: HashMap<String, String>,
    flash: Option<(&'static str, String)>,
    status: StatusCode,
) -> Page {
    user.caller.require(Permission::Read)?;
    user.caller
        .check_project(project, || format!("deployment {project}/{name}"))?;
    let d = st.store.deployment(project, name).await?;
    let runs = st
        .store
        .list_flow_runs(&RunFilter {
            deployment_id: Some(d.id),
            limit: 20,
            ..Default::default()
        })
        .await?
        .items
        .iter()
        .map(RunRow::of)
        .collect();
    let next = st
        .store
        .next_scheduled(d.id)
        .await?
        .map(|r| Time::of(&r.scheduled_at));
    let since = Utc::now() - chrono::Duration::days(charts::RATE_DAYS);
    let outcomes = st.store.deployment_outcomes(d.id, since).await?;
    let ended = st.store.last_ended_runs(d.id, charts::TREND_RUNS).await?;
    let health = charts::Health::of(&weir_core::trend::Outcomes::of(&outcomes), &ended);
    let fields = form::fields(
        d.spec.parameter_schema.as_ref(),
        &d.spec.parameters,
        &values,
        &errors,
    );
    let page = DeploymentPage {
        can_run: allows(&user.caller, Permission::Run),
        can_deploy: allows(&user.caller, Permission::Deploy),
        user: user.view,
        nav: "deployments",
        project: d.project.clone(),
        name: d.name.clone(),
        flow: d.spec.flow.clone(),
        version: d.version,
        description: d.spec.description.clone(),
        schedule: schedule_words(&d.spec),
        paused: d.paused,
        archived: d.archived_at.as_ref().map(Time::of),
        has_schedule: !d.spec.schedules.is_empty(),
        next,
        fire_times: super::view::fire_rows(&d, st.now()),
        work_queue: d.spec.work_queue.clone(),
        command: d.spec.command.join(" "),
        secrets: d
            .spec
            .secrets
            .iter()
            .map(|(k, v)| format!("{k} ← {v}"))
            .collect::<Vec<_>>()
            .join(", "),
        infrastructure: d.spec.infrastructure.kind().to_string(),
        infrastructure_settings: d.spec.infrastructure.settings(),
        concurrency: weir_core::limits::describe(d.spec.concurrency, d.spec.on_limit),
        fields,
        runs,
        health,
        flash,
    };
    let mut resp = html(page)?;
    *resp.status_mut() = status;
    Ok(resp)
}

/// `POST /deployments/{project}/{name}/run`: validates the form against the flow's schema;
/// on errors the form comes back with each beside its field and nothing is created.
pub(crate) async fn quick_run(
    State(st): State<AppState>,
    user: UiUser,
    Path((project, name)): Path<(String, String)>,
    Form(form_values): Form<HashMap<String, String>>,
) -> Page {
    user.check_csrf(form_values.get("csrf").map(String::as_str))?;
    user.caller
        .check_project(&project, || format!("deployment {project}/{name}"))?;
    let d = st.store.deployment(&project, &name).await?;
    let use_defaults = form_values.contains_key("defaults");
    let parameters = if use_defaults {
        Default::default()
    } else {
        form::parameters(d.spec.parameter_schema.as_ref(), &form_values)
    };
    let req = CreateFlowRun {
        project: Some(project.clone()),
        deployment: Some(name.clone()),
        parameters,
        ..Default::default()
    };
    let caller = OnRun::new(user.caller.clone());
    let problems = match ops::runs::create(&st, &caller, req).await {
        Ok((run, _)) => return Ok(Redirect::to(&format!("/runs/{}", run.id)).into_response()),
        Err(ops::runs::CreateError::Rule(weir_core::create::Error::Parameters(problems))) => {
            problems
        }
        Err(e) => return Err(ApiError::from(e).into()),
    };
    let errors: HashMap<String, String> = problems
        .into_iter()
        .map(|p| {
            (
                p.param
                    .split(['.', '['])
                    .next()
                    .unwrap_or_default()
                    .to_string(),
                p.message,
            )
        })
        .collect();
    let values = form_values
        .iter()
        .filter_map(|(k, v)| k.strip_prefix("p.").map(|n| (n.to_string(), v.clone())))
        .collect();
    let flash = Some((
        "error",
        "Fix the parameters below; no run was created.".to_string(),
    ));
    deployment_page(
        &st,
        user,
        &project,
        &name,
        values,
        errors,
        flash,
        StatusCode::BAD_REQUEST,
    )
    .await
}

/// `POST /deployments/{project}/{name}/pause`.
pub(crate) async fn pause(
    st: State<AppState>,
    user: UiUser,
    path: Path<(String, String)>,
    f: Form<Csrf>,
) -> Page {
    set_paused(st, user, path, f, true).await
}

/// `POST /deployments/{project}/{name}/resume`.
pub(crate) async fn resume(
    st: State<AppState>,
    user: UiUser,
    path: Path<(String, String)>,
    f: Form<Csrf>,
) -> Page {
    set_paused(st, user, path, f, false).await
}

async fn set_paused(
    State(st): State<AppState>,
    user: UiUser,
    Path((project, name)): Path<(String, String)>,
    Form(f): Form<Csrf>,
    paused: bool,
) -> Page {
    user.check_csrf(f.csrf.as_deref())?;
    let caller = Require::new(user.caller.clone())?;
    ops::deployments::set_paused(&st, &caller, &project, &name, paused).await?;
    Ok(Redirect::to(&format!("/deployments/{project}/{name}")).into_response())
}

// ---- projects, agents ----

/// `GET /projects`.
pub(crate) async fn projects(State(st): State<AppState>, user: UiUser) -> Page {
    user.caller.require(Permission::Read)?;
    let deployments = st
        .store
        .deployments(user.caller.projects().as_deref())
        .await?;
    let rows = st
        .store
        .projects()
        .await?
        .into_iter()
        .filter(|p| user.caller.sees(&p.name))
        .map(|p| {
            let n = deployments.iter().filter(|d| d.project == p.name).count();
            (p.name, n, Time::of(&p.created_at))
        })
        .collect();
    html(ProjectsPage {
        user: user.view,
        nav: "projects",
        rows,
    })
}

/// `GET /agents`.
pub(crate) async fn agents(State(st): State<AppState>, user: UiUser) -> Page {
    user.caller.require(Permission::Read)?;
    let now = Utc::now();
    let queues = if user.caller.projects().is_none() {
        st.store
            .work_queues(now, now - chrono::Duration::hours(24))
            .await?
            .into_iter()
            .map(|q| (q.name, q.ready, q.running))
            .collect()
    } else {
        vec![]
    };
    html(AgentsPage {
        user: user.view,
        nav: "agents",
        agents: agent_rows(&st).await?,
        queues,
    })
}

// ---- keys and audit (admins) ----

async fn keys_page(
    st: &AppState,
    user: UiUser,
    secret: Option<String>,
    flash: Option<(&'static str, String)>,
) -> Page {
    let admin = Require::new(user.caller.clone())?;
    let keys = ops::keys::list(st, &admin).await?;
    let now = Utc::now();
    let keys = keys
        .into_iter()
        .map(|k| {
            let (status, active) = match (k.revoked_at, k.expires_at) {
                (Some(_), _) => ("revoked".to_string(), false),
                (None, Some(e)) if e <= now => ("expired".to_string(), false),
                (None, Some(e)) => (format!("expires {}", e.format("%Y-%m-%d")), true),
                (None, None) => ("active".to_string(), true),
            };
            KeyRow {
                id: k.id,
                name: k.name,
                role: k.role.to_string(),
                project: k.project.unwrap_or_else(|| "all".into()),
                created: Time::of(&k.created_at),
                status,
                active,
            }
        })
        .collect();
    html(KeysPage {
        user: user.view,
        nav: "keys",
        keys,
        secret,
        flash,
    })
}

/// `GET /keys`.
pub(crate) async fn keys(State(st): State<AppState>, user: UiUser) -> Page {
    keys_page(&st, user, None, None).await
}

/// The key creation form.
#[derive(Deserialize)]
pub(crate) struct KeyForm {
    csrf: Option<String>,
    name: String,
    role: String,
    project: Option<String>,
    expires: Option<String>,
}

/// `POST /keys`: shows the new key once.
pub(crate) async fn create_key(
    State(st): State<AppState>,
    user: UiUser,
    Form(f): Form<KeyForm>,
) -> Page {
    user.check_csrf(f.csrf.as_deref())?;
    let role: Role = match f.role.parse() {
        Ok(r) => r,
        Err(e) => return keys_page(&st, user, None, Some(("error", e))).await,
    };
    let expires_in_s = match f
        .expires
        .as_deref()
        .map(str::trim)
        .filter(|e| !e.is_empty())
    {
        None => None,
        Some(text) => match weir_core::retry::parse_duration(text) {
            Ok(d) if d.as_secs() > 0 => Some(d.as_secs()),
            _ => {
                return keys_page(
                    &st,
                    user,
                    None,
                    Some(("error", format!("invalid expiry {text:?}: use e.g. 90d"))),
                )
                .await;
            }
        },
    };
    let req = CreateApiKey {
        name: f.name,
        role,
        project: f.project.filter(|p| !p.trim().is_empty()),
        expires_in_s,
    };
    let admin = Require::new(user.caller.clone())?;
    match ops::keys::create(&st, &admin, req).await {
        Ok(created) => keys_page(&st, user, Some(created.secret), None).await,
        Err(ApiError::BadRequest { message, .. }) => {
            keys_page(&st, user, None, Some(("error", message))).await
        }
        Err(e) => Err(e.into()),
    }
}

/// `POST /keys/{id}/revoke`.
pub(crate) async fn revoke_key(
    State(st): State<AppState>,
    user: UiUser,
    Path(id): Path<String>,
    Form(f): Form<Csrf>,
) -> Page {
    user.check_csrf(f.csrf.as_deref())?;
    let admin = Require::new(user.caller.clone())?;
    let k = ops::keys::revoke(&st, &admin, &id).await?;
    keys_page(
        &st,
        user,
        None,
        Some(("ok", format!("Revoked key {} ({}).", k.id, k.name))),
    )
    .await
}

/// Pagination of the audit page.
#[derive(Deserialize)]
pub(crate) struct AuditQuery {
    cursor: Option<Uuid>,
}

/// `GET /audit`.
pub(crate) async fn audit(
    State(st): State<AppState>,
    user: UiUser,
    Query(q): Query<AuditQuery>,
) -> Page {
    let admin = Require::new(user.caller.clone())?;
    let page = ops::keys::audit_log(&st, &admin, q.cursor, None).await?;
    let rows = page
        .items
        .into_iter()
        .map(|e| {
            (
                Time::of(&e.at),
                e.actor,
                e.action,
                e.target,
                e.detail.unwrap_or_default(),
            )
        })
        .collect();
    html(AuditPage {
        user: user.view,
        nav: "audit",
        rows,
        next: page.next_cursor.map(|c| format!("/audit?cursor={c}")),
    })
}
