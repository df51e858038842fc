//! The UI's handlers, one module per part of the UI: read through the store (filtered by what
//! the caller may see), change through the use cases of `ops`, the same the API's handlers
//! call.

mod dashboard;
mod deployments;
mod keys;
mod login;
mod projects;
mod runs;

pub(crate) use dashboard::dashboard;
pub(crate) use deployments::{deployment, deployments, pause, quick_run, resume};
pub(crate) use keys::{audit, create_key, keys, revoke_key};
pub(crate) use login::{login, login_form, logout};
pub(crate) use projects::{agents, projects};
pub(crate) use runs::{cancel, retry, run, runs, task_run};

use super::UiError;
use crate::auth::Caller;
use crate::error::ApiError;
use askama::Template;
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use weir_core::StateKind;
use weir_core::auth::Permission;

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

/// A form with only a CSRF token (and perhaps a flag).
#[derive(Deserialize)]
pub(crate) struct Csrf {
    csrf: Option<String>,
    from_failed: Option<String>,
}
