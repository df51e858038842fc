//! The deployments list and a deployment's page (health, next fire times, the quick-run form
//! checked against the flow's schema) with its pause and resume forms.

use super::{Csrf, Page, allows, html};
use crate::access::{OnRun, Require};
use crate::error::ApiError;
use crate::ops;
use crate::state::AppState;
use crate::ui::view::{DeploymentPage, DeploymentRow, DeploymentsPage, RunRow, Time, fire_rows};
use crate::ui::{UiUser, charts, form};
use axum::extract::{Form, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use chrono::Utc;
use serde::Deserialize;
use std::collections::HashMap;
use weir_core::api::CreateFlowRun;
use weir_core::auth::Permission;
use weir_store::RunFilter;

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
        fire_times: fire_rows(&d, st.now()),
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
        Ok(new) => return Ok(Redirect::to(&format!("/runs/{}", new.run.id)).into_response()),
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
