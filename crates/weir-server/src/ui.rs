//! The web UI: server-rendered pages over the same store and the same authorisation as the
//! API. Sessions are signed cookies naming an API key, so revoking the key ends them.

use axum::http::request::Parts;

/// Name of the session cookie.
pub(crate) const SESSION_COOKIE: &str = "weir_session";

/// The session cookie's value, if the request has one.
pub(crate) fn session_token(parts: &Parts) -> Option<String> {
    let cookies = parts.headers.get(axum::http::header::COOKIE)?.to_str().ok()?;
    cookies.split(';').find_map(|c| {
        let (name, value) = c.trim().split_once('=')?;
        (name == SESSION_COOKIE).then(|| value.to_string())
    })
}
