//! The dashboard: runs over time, problems, upcoming runs and live agents.

use super::{Page, html};
use crate::error::ApiError;
use crate::state::AppState;
use crate::ui::charts::{self, Range};
use crate::ui::view::{AgentRow, DashboardPage, RunRow, Time};
use crate::ui::{UiError, UiUser};
use axum::extract::{Query, State};
use chrono::Utc;
use serde::Deserialize;
use weir_core::StateKind;
use weir_core::auth::Permission;
use weir_store::RunFilter;

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

pub(super) async fn agent_rows(st: &AppState) -> Result<Vec<AgentRow>, UiError> {
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
