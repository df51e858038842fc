//! Logging in and out: a valid API key becomes a session cookie.

use super::{Csrf, Page};
use crate::auth::{self, Caller};
use crate::error::ApiError;
use crate::state::AppState;
use crate::ui::view::LoginPage;
use crate::ui::{LOGIN_CSRF_COOKIE, SESSION_COOKIE, UiError, UiUser, clear_cookie, session_cookie};
use askama::Template;
use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse};
use serde::Deserialize;

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

/// `POST /logout`.
pub(crate) async fn logout(user: UiUser, Form(f): Form<Csrf>) -> Page {
    user.check_csrf(f.csrf.as_deref())?;
    Ok((
        StatusCode::SEE_OTHER,
        [
            (header::SET_COOKIE, clear_cookie(SESSION_COOKIE)),
            (header::LOCATION, header::HeaderValue::from_static("/login")),
        ],
    )
        .into_response())
}
