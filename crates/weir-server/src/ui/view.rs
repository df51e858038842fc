//! What the templates show: small view models built from API types, and the page types.

use askama::Template;
use weir_core::Timestamp;
use weir_core::run::Run;

/// The logged-in user, for the header and forms.
pub(crate) struct User {
    pub name: String,
    pub role: String,
    pub project: Option<String>,
    pub admin: bool,
    pub csrf: String,
}

/// A time: machine-readable for the script that shows it in the viewer's zone, and a UTC
/// fallback.
pub(crate) struct Time {
    pub iso: String,
    pub text: String,
}

impl Time {
    pub fn of(t: &Timestamp) -> Time {
        Time {
            iso: t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            text: t.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
        }
    }
}

/// One of a deployment's next fire times, as its page lists it.
pub(crate) struct FireRow {
    /// The instant (RFC 3339, UTC), for the row's `data-at`.
    pub iso: String,
    /// In UTC.
    pub utc: String,
    /// On the schedule's wall clock, with the zone's abbreviation.
    pub local: String,
    /// How it meets a DST change, in one word (`moved`, `repeat`); empty when it does not.
    pub label: &'static str,
    /// How it meets a DST change, in words; empty when it does not.
    pub note: String,
}

/// How many fire times a deployment page lists.
const PAGE_FIRE_TIMES: usize = 5;

/// The next fire times of a deployment's schedules after `now` (`weir_core::schedule`'s
/// rule); none while it is paused or archived, since it does not fire then.
pub(crate) fn fire_rows(d: &weir_core::deployment::Deployment, now: Timestamp) -> Vec<FireRow> {
    if d.paused || d.archived_at.is_some() {
        return Vec::new();
    }
    let Ok(schedules) = weir_core::schedule::parse_all(&d.spec.schedules) else {
        return Vec::new();
    };
    weir_core::schedule::next_fire_times(&schedules, now, PAGE_FIRE_TIMES)
        .into_iter()
        .map(|f| FireRow {
            iso: f.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            utc: f.at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
            local: f.local_text(),
            label: f.dst.as_ref().map(|n| n.label()).unwrap_or_default(),
            note: f.dst.as_ref().map(|n| n.describe()).unwrap_or_default(),
        })
        .collect()
}

/// A duration between two times, short.
pub(crate) fn duration(start: Option<Timestamp>, end: Option<Timestamp>) -> String {
    match (start, end) {
        (Some(s), Some(e)) => {
            let ms = (e - s).num_milliseconds();
            if ms < 1000 {
                format!("{ms} ms")
            } else if ms < 120_000 {
                format!("{:.1} s", ms as f64 / 1000.0)
            } else {
                format!("{:.1} min", ms as f64 / 60_000.0)
            }
        }
        (Some(_), None) => "running".into(),
        _ => String::new(),
    }
}

/// A run in a list.
pub(crate) struct RunRow {
    pub id: String,
    pub name: String,
    pub deployment: String,
    pub state: &'static str,
    pub when: Time,
    pub duration: String,
}

impl RunRow {
    pub fn of(r: &Run) -> RunRow {
        RunRow {
            id: r.id.to_string(),
            name: r.name.clone(),
            deployment: format!(
                "{}/{}",
                r.project,
                r.deployment.clone().unwrap_or_else(|| "(ad hoc)".into())
            ),
            state: r.state.as_str(),
            when: Time::of(&r.scheduled_at),
            duration: duration(r.started_at, r.ended_at),
        }
    }
}

/// An agent in a list.
pub(crate) struct AgentRow {
    pub id: String,
    pub name: String,
    pub queues: String,
    pub running: String,
    pub heartbeat: Time,
}

#[derive(Template)]
#[template(path = "login.html")]
pub(crate) struct LoginPage {
    pub csrf: String,
    pub next: String,
    pub error: Option<String>,
}

#[derive(Template)]
#[template(path = "error.html")]
pub(crate) struct ErrorPage<'a> {
    pub title: &'a str,
    pub message: &'a str,
}

/// Renders the error page (plain text if the template fails).
pub(crate) fn render_error(title: &str, message: &str) -> axum::response::Html<String> {
    axum::response::Html(
        ErrorPage { title, message }
            .render()
            .unwrap_or_else(|_| message.to_string()),
    )
}

#[derive(Template)]
#[template(path = "dashboard.html")]
pub(crate) struct DashboardPage {
    pub user: User,
    pub nav: &'static str,
    /// `24h` or `7d`.
    pub range: &'static str,
    /// "24 hours" or "7 days".
    pub range_words: &'static str,
    /// The runs-over-time SVG (`charts::runs_over_time`).
    pub chart: String,
    pub counts: Vec<(&'static str, u64)>,
    pub problems: Vec<RunRow>,
    pub upcoming: Vec<RunRow>,
    pub agents: Vec<AgentRow>,
}

#[derive(Template)]
#[template(path = "runs.html")]
pub(crate) struct RunsPage {
    pub user: User,
    pub nav: &'static str,
    pub runs: Vec<RunRow>,
    pub projects: Vec<String>,
    pub states: Vec<&'static str>,
    pub filter_project: String,
    pub filter_state: &'static str,
    pub next: Option<String>,
}

/// A row of the state history.
pub(crate) struct HistoryRow {
    pub at: Time,
    pub state: &'static str,
    pub attempt: u32,
    pub message: String,
}

impl HistoryRow {
    pub fn new(
        at: &Timestamp,
        state: weir_core::StateKind,
        attempt: u32,
        message: Option<String>,
    ) -> HistoryRow {
        HistoryRow {
            at: Time::of(at),
            state: state.as_str(),
            attempt,
            message: message.unwrap_or_default(),
        }
    }
}

/// A task run in the run page's table.
pub(crate) struct TaskRow {
    pub id: String,
    pub label: String,
    pub state: &'static str,
    pub duration: String,
    pub result: String,
}

#[derive(Template)]
#[template(path = "run.html")]
pub(crate) struct RunPage {
    pub user: User,
    pub nav: &'static str,
    pub run: Run,
    /// Why a waiting run is not running (`weir_core::why`), one sentence per reason.
    pub why: Vec<String>,
    pub flash: Option<(&'static str, String)>,
    pub deployment_link: Option<(String, String)>,
    pub message: String,
    pub scheduled: Time,
    pub parameters: String,
    pub result: Option<String>,
    pub parent: Option<String>,
    pub can_run: bool,
    pub cancellable: bool,
    pub retriable: bool,
    pub gantt: String,
    pub live: bool,
    pub tasks: Vec<TaskRow>,
    pub more_tasks: u64,
    pub history: Vec<HistoryRow>,
}

#[derive(Template)]
#[template(path = "task_run.html")]
pub(crate) struct TaskRunPage {
    pub user: User,
    pub nav: &'static str,
    pub task: String,
    pub state: &'static str,
    pub flow_run: String,
    pub attempt: u32,
    pub message: String,
    pub duration: String,
    pub fingerprint: String,
    pub cache_key: String,
    pub result: String,
    pub history: Vec<HistoryRow>,
    pub logs: Vec<(&'static str, Time, String)>,
}

/// A deployment in the list.
pub(crate) struct DeploymentRow {
    pub project: String,
    pub name: String,
    pub flow: String,
    pub version: u32,
    pub schedule: String,
    pub next: Option<Time>,
    pub recent: Vec<(String, &'static str, String)>,
    pub paused: bool,
    pub archived: bool,
}

#[derive(Template)]
#[template(path = "deployments.html")]
pub(crate) struct DeploymentsPage {
    pub user: User,
    pub nav: &'static str,
    pub rows: Vec<DeploymentRow>,
}

#[derive(Template)]
#[template(path = "deployment.html")]
pub(crate) struct DeploymentPage {
    pub user: User,
    pub nav: &'static str,
    pub project: String,
    pub name: String,
    pub flow: String,
    pub version: u32,
    pub description: String,
    pub schedule: String,
    pub paused: bool,
    /// When it was archived (removed from its weir.toml), if it was.
    pub archived: Option<Time>,
    pub has_schedule: bool,
    pub next: Option<Time>,
    /// The next fire times of its schedules.
    pub fire_times: Vec<FireRow>,
    pub work_queue: String,
    pub command: String,
    pub secrets: String,
    /// Infrastructure kind, and its settings as (name, value).
    pub infrastructure: String,
    pub infrastructure_settings: Vec<(&'static str, String)>,
    /// Its concurrency limit and what a blocked run does, in words.
    pub concurrency: String,
    pub can_run: bool,
    pub can_deploy: bool,
    pub fields: Vec<super::form::Field>,
    pub runs: Vec<RunRow>,
    /// Success rate and duration trend (`charts::Health`).
    pub health: super::charts::Health,
    pub flash: Option<(&'static str, String)>,
}

#[derive(Template)]
#[template(path = "projects.html")]
pub(crate) struct ProjectsPage {
    pub user: User,
    pub nav: &'static str,
    pub rows: Vec<(String, usize, Time)>,
}

#[derive(Template)]
#[template(path = "agents.html")]
pub(crate) struct AgentsPage {
    pub user: User,
    pub nav: &'static str,
    pub agents: Vec<AgentRow>,
    pub queues: Vec<(String, u64, u64)>,
}

/// A key in the list.
pub(crate) struct KeyRow {
    pub id: String,
    pub name: String,
    pub role: String,
    pub project: String,
    pub created: Time,
    pub status: String,
    pub active: bool,
}

#[derive(Template)]
#[template(path = "keys.html")]
pub(crate) struct KeysPage {
    pub user: User,
    pub nav: &'static str,
    pub keys: Vec<KeyRow>,
    pub secret: Option<String>,
    pub flash: Option<(&'static str, String)>,
}

#[derive(Template)]
#[template(path = "audit.html")]
pub(crate) struct AuditPage {
    pub user: User,
    pub nav: &'static str,
    pub rows: Vec<(Time, String, String, String, String)>,
    pub next: Option<String>,
}
