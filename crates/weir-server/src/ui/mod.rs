//! The web UI: server-rendered pages (askama templates, compile-checked) over the same store
//! and the same authorisation as the API, with a little plain JavaScript for live logs.
//!
//! Sessions are signed cookies naming an API key (HttpOnly, SameSite=Strict, Secure behind
//! TLS), so revoking the key ends every session of it. Every form carries a CSRF token
//! derived from the session; the login form uses a double-submit cookie. Pages change state
//! only through the use cases of `ops`, the ones the API's handlers call, so the UI cannot do
//! what the API would refuse.

mod charts;
mod form;
mod gantt;
mod notifications;
mod pages;
mod view;

use crate::auth::{self, Caller};
use crate::error::ApiError;
use crate::state::AppState;
use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

pub(crate) use crate::auth::SESSION_COOKIE;
/// Name of the login form's CSRF cookie.
const LOGIN_CSRF_COOKIE: &str = "weir_login_csrf";
/// How long a session lasts.
const SESSION_HOURS: i64 = 12;

/// The UI's routes.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(pages::dashboard))
        .route("/login", get(pages::login_form).post(pages::login))
        .route("/logout", post(pages::logout))
        .route("/runs", get(pages::runs))
        .route("/runs/{id}", get(pages::run))
        .route("/runs/{id}/cancel", post(pages::cancel))
        .route("/runs/{id}/retry", post(pages::retry))
        .route("/task-runs/{id}", get(pages::task_run))
        .route("/deployments", get(pages::deployments))
        .route("/deployments/{project}/{name}", get(pages::deployment))
        .route("/deployments/{project}/{name}/run", post(pages::quick_run))
        .route("/deployments/{project}/{name}/pause", post(pages::pause))
        .route("/deployments/{project}/{name}/resume", post(pages::resume))
        .route("/projects", get(pages::projects))
        .route("/agents", get(pages::agents))
        .route("/keys", get(pages::keys).post(pages::create_key))
        .route("/keys/{id}/revoke", post(pages::revoke_key))
        .route("/audit", get(pages::audit))
        .route("/notifications", get(notifications::page))
        .route("/static/weir.css", get(stylesheet))
        .route("/static/weir.js", get(script))
}

async fn stylesheet() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        include_str!("../../static/weir.css"),
    )
}

async fn script() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        include_str!("../../static/weir.js"),
    )
}

fn hmac_hex(secret: &[u8], message: &str) -> String {
    let Ok(mut m) = Hmac::<Sha256>::new_from_slice(secret) else {
        return String::new();
    };
    m.update(message.as_bytes());
    m.finalize().into_bytes()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The CSRF token of a session.
fn csrf_for(st: &AppState, session: &str) -> String {
    hmac_hex(&st.run_secret, &format!("csrf:{session}"))
}

/// A logged-in user of the UI: the caller behind the session, and what the pages need to know
/// about it.
pub(crate) struct UiUser {
    /// The caller (always an API key).
    pub caller: Caller,
    /// What templates show.
    pub view: view::User,
}

/// Rejection of [`UiUser`]: a redirect to the login page.
pub(crate) struct ToLogin(String);

impl IntoResponse for ToLogin {
    fn into_response(self) -> Response {
        let next = urlencode(&self.0);
        Redirect::to(&format!("/login?next={next}")).into_response()
    }
}

fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

impl FromRequestParts<AppState> for UiUser {
    type Rejection = ToLogin;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, Self::Rejection> {
        let here = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| "/".into());
        let session = auth::session_from_cookie(parts).ok_or_else(|| ToLogin(here.clone()))?;
        let caller = match auth::authenticate(st, &session).await {
            Ok(Some(c @ Caller::Key { .. })) => c,
            _ => return Err(ToLogin(here)),
        };
        let Caller::Key {
            name,
            role,
            project,
            ..
        } = &caller
        else {
            return Err(ToLogin(here));
        };
        let view = view::User {
            name: name.clone(),
            role: role.to_string(),
            project: project.clone(),
            admin: *role == weir_core::auth::Role::Admin,
            csrf: csrf_for(st, &session),
        };
        Ok(UiUser { caller, view })
    }
}

impl UiUser {
    /// 403 page unless the form's CSRF token matches this session's.
    fn check_csrf(&self, given: Option<&str>) -> Result<(), UiError> {
        let ok = given.is_some_and(|g| {
            use subtle::ConstantTimeEq;
            bool::from(g.as_bytes().ct_eq(self.view.csrf.as_bytes()))
        });
        if ok {
            Ok(())
        } else {
            Err(UiError(ApiError::Forbidden(
                "the form expired or did not come from this site; reload the page and try again"
                    .into(),
            )))
        }
    }
}

/// A session cookie for `key_id`.
fn session_cookie(st: &AppState, key_id: &str) -> HeaderValue {
    let expires = chrono::Utc::now().timestamp() + SESSION_HOURS * 3600;
    let token = auth::session_token(&st.run_secret, key_id, expires);
    let secure = if st.options.tls.is_some() {
        "; Secure"
    } else {
        ""
    };
    let value = format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
        SESSION_HOURS * 3600
    );
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn clear_cookie(name: &str) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{name}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// An error shown as a page (a redirect to login for 401).
pub(crate) struct UiError(pub ApiError);

impl From<ApiError> for UiError {
    fn from(e: ApiError) -> Self {
        UiError(e)
    }
}

impl From<weir_store::Error> for UiError {
    fn from(e: weir_store::Error) -> Self {
        UiError(e.into())
    }
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        let (status, title, message) = match self.0 {
            ApiError::Unauthorized => return ToLogin("/".into()).into_response(),
            ApiError::NotFound(m) => (StatusCode::NOT_FOUND, "Not found", m),
            ApiError::Forbidden(m) => (StatusCode::FORBIDDEN, "Not allowed", m),
            ApiError::BadRequest { message, .. } => {
                (StatusCode::BAD_REQUEST, "Invalid request", message)
            }
            ApiError::Conflict { message, .. } => {
                (StatusCode::CONFLICT, "Not possible now", message)
            }
            other => {
                let r = other.into_response();
                (
                    r.status(),
                    "Something went wrong",
                    "the server could not complete this; retry shortly".into(),
                )
            }
        };
        (status, view::render_error(title, &message)).into_response()
    }
}
