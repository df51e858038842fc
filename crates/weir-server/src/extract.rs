//! Extractors whose rejections use [`ApiError`], so malformed input gets the one error shape
//! and names the field at fault.

use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use bytes::Bytes;
use serde::de::DeserializeOwned;
use weir_core::api::MAX_PAGE;

/// Checks a requested page size: absent means `default`; 0 or more than [`MAX_PAGE`] is an
/// error naming the parameter.
pub(crate) fn page_size(limit: Option<u32>, default: u32) -> Result<u32, ApiError> {
    match limit {
        None => Ok(default),
        Some(n) if (1..=MAX_PAGE).contains(&n) => Ok(n),
        Some(n) => Err(ApiError::field(
            "limit",
            format!(
                "limit {n} is out of range: use 1 to {MAX_PAGE} and follow next_cursor for more"
            ),
        )),
    }
}

/// The request body as bytes, at most `max_body_bytes` long; a longer one is a 413 in the
/// one error shape, naming the limit.
pub struct Body(pub Bytes);

impl FromRequest<AppState> for Body {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        Bytes::from_request(req, state)
            .await
            .map(Body)
            .map_err(|e| {
                if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::PayloadTooLarge(state.options.max_body_bytes)
                } else {
                    ApiError::bad(format!("could not read the request body: {e}"))
                }
            })
    }
}

/// A JSON body, deserialised strictly (unknown fields are errors), with the failing field's
/// path in the error.
pub struct Json<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        if let Some(ct) = req.headers().get(axum::http::header::CONTENT_TYPE) {
            let ct = ct.to_str().unwrap_or_default();
            if !ct.starts_with("application/json") {
                return Err(ApiError::bad(format!(
                    "unsupported content type {ct:?}: send `Content-Type: application/json`"
                )));
            }
        }
        let Body(bytes) = Body::from_request(req, state).await?;
        parse_json(&bytes).map(Json)
    }
}

/// An optional JSON body: `None` when the body is empty, otherwise parsed like [`Json`].
pub struct OptionalJson<T>(pub Option<T>);

impl<T: DeserializeOwned> FromRequest<AppState> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let Body(bytes) = Body::from_request(req, state).await?;
        if bytes.is_empty() {
            return Ok(OptionalJson(None));
        }
        parse_json(&bytes).map(|v| OptionalJson(Some(v)))
    }
}

/// The path of a failed field as the API names it (`spec.schedules[0].cron`), or `None` when
/// the error is not about a field (malformed JSON, the body as a whole).
fn field_of(path: &serde_path_to_error::Path) -> Option<String> {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Unknown => break,
        }
    }
    (!out.is_empty()).then_some(out)
}

/// serde reports a missing field at the struct that lacks it: name the field itself.
fn with_missing(field: Option<String>, message: &str) -> Option<String> {
    let missing = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next())
        .filter(|name| !name.is_empty());
    match (field, missing) {
        (Some(f), Some(m)) => Some(format!("{f}.{m}")),
        (None, Some(m)) => Some(m.to_string()),
        (f, None) => f,
    }
}

/// Deserialises JSON, naming the path of the first bad field. A number with a zero fraction
/// (`3.0`) is an integer in JSON (and in JSON Schema), so where the first try fails on one, a
/// second reads it as the integer it is; the error named is the first try's.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // Every request body of the API is a JSON object. serde also reads a struct from an array
    // of its fields in order, which the API's schema does not allow: refuse it here, once.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
        return Err(ApiError::bad(
            "invalid request body: expected a JSON object `{…}`, found an array",
        ));
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    let first = serde_path_to_error::deserialize(de);
    let error = match first {
        Ok(v) => return Ok(v),
        Err(e) => e,
    };
    if let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(bytes)
        && integral_floats_to_integers(&mut value)
        && let Ok(v) = serde_json::from_value(value)
    {
        return Ok(v);
    }
    Err(body_error(error))
}

/// Rewrites every `N.0` in `value` as the integer `N`; whether any was rewritten.
fn integral_floats_to_integers(value: &mut serde_json::Value) -> bool {
    use serde_json::Value;
    match value {
        Value::Number(n) if n.is_f64() => {
            let f = n.as_f64().unwrap_or(f64::NAN);
            let integer = if f.fract() != 0.0 {
                None
            } else if f >= 0.0 && f < u64::MAX as f64 {
                Some(Value::from(f as u64))
            } else if f < 0.0 && f >= i64::MIN as f64 {
                Some(Value::from(f as i64))
            } else {
                None
            };
            match integer {
                Some(i) => {
                    *value = i;
                    true
                }
                None => false,
            }
        }
        // Every item is rewritten (no short circuit).
        Value::Array(items) => {
            let mut any = false;
            for v in items {
                any |= integral_floats_to_integers(v);
            }
            any
        }
        Value::Object(map) => {
            let mut any = false;
            for v in map.values_mut() {
                any |= integral_floats_to_integers(v);
            }
            any
        }
        _ => false,
    }
}

fn body_error(e: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let inner = e.inner().to_string();
    let field = with_missing(field_of(e.path()), &inner);
    let message = match &field {
        Some(p) => format!("invalid request body at {p:?}: {inner}"),
        None => format!("invalid request body: {inner}"),
    };
    ApiError::BadRequest { message, field }
}

/// Query-string parameters, with errors naming the parameter.
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let q = parts.uri.query().unwrap_or_default();
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(q.as_bytes()));
        serde_path_to_error::deserialize(de)
            .map(Query)
            .map_err(|e| {
                let inner = e.inner().to_string();
                let field = with_missing(field_of(e.path()), &inner);
                let given = field.as_ref().and_then(|f| {
                    form_urlencoded::parse(q.as_bytes())
                        .find(|(k, _)| k == f)
                        .map(|(_, v)| v.into_owned())
                });
                let message = match (&field, given) {
                    (Some(p), Some(v)) => {
                        format!("invalid query parameter {p:?} (given {v:?}): {inner}")
                    }
                    (Some(p), None) => format!("invalid query parameter {p:?}: {inner}"),
                    (None, _) => format!("invalid query string: {inner}"),
                };
                ApiError::BadRequest { message, field }
            })
    }
}

/// A path parameter parsed as `T`, with an error naming the parameter and the expected form.
pub struct Path<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| Path(p.0))
            .map_err(|e| {
                use axum::extract::path::ErrorKind;
                use axum::extract::rejection::PathRejection;
                let field = match &e {
                    PathRejection::FailedToDeserializePathParams(f) => match f.kind() {
                        ErrorKind::ParseErrorAtKey { key, .. }
                        | ErrorKind::DeserializeError { key, .. }
                        | ErrorKind::InvalidUtf8InPathParam { key } => Some(key.clone()),
                        _ => None,
                    },
                    _ => None,
                };
                ApiError::BadRequest {
                    message: format!("invalid path: {}", e.body_text()),
                    field,
                }
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir_core::api::RegisterAgent;

    #[test]
    fn integers_with_a_zero_fraction_are_integers() {
        let body = br#"{"name": "a", "queues": ["default"], "limit": 3.0}"#;
        let agent: RegisterAgent = parse_json(body).expect("3.0 is the integer 3");
        assert_eq!(agent.limit, 3);
        let Err(ApiError::BadRequest { field, message }) =
            parse_json::<RegisterAgent>(br#"{"name": "a", "queues": ["default"], "limit": 3.5}"#)
        else {
            panic!("3.5 is not an integer");
        };
        assert_eq!(field.as_deref(), Some("limit"));
        assert!(message.contains("3.5"), "{message}");
    }

    #[test]
    fn a_body_is_an_object_never_an_array_of_fields() {
        use weir_core::api::RetryFlowRun;
        for body in [&b"[]"[..], b" [true]", b"\n[\"a\", [\"default\"], 3]"] {
            let Err(ApiError::BadRequest { message, .. }) = parse_json::<RetryFlowRun>(body) else {
                panic!("{} was accepted", String::from_utf8_lossy(body));
            };
            assert!(message.contains("JSON object"), "{message}");
        }
        assert!(parse_json::<RegisterAgent>(b"[\"a\", [\"default\"], 3]").is_err());
        assert_eq!(
            parse_json::<RetryFlowRun>(b"{}").ok(),
            Some(RetryFlowRun::default())
        );
    }
}
