//! The projects and agents pages.

use super::dashboard::agent_rows;
use super::{Page, html};
use crate::state::AppState;
use crate::ui::UiUser;
use crate::ui::view::{AgentsPage, ProjectsPage, Time};
use axum::extract::State;
use chrono::Utc;
use weir_core::auth::Permission;

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
