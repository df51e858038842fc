//! The one error type of the API and its JSON shape ([`weir_core::api::ErrorBody`]).

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use weir_core::api::{ErrorBody, ErrorKind, FlowRun};
use weir_core::run::Run;

/// An API error: a status and a body naming what is wrong.
#[derive(Debug)]
pub enum ApiError {
    /// 400: the request is malformed or invalid.
    BadRequest {
        /// What is wrong and what to do.
        message: String,
        /// The field at fault.
        field: Option<String>,
    },
    /// 401: no valid credentials.
    Unauthorized,
    /// 403: the caller may not do this.
    Forbidden(String),
    /// 404: no such thing (or not visible to the caller).
    NotFound(String),
    /// 409: refused by the orchestration rules; carries the run as it is now.
    Conflict {
        /// The rules' verdict, as the answer's message.
        message: String,
        /// The run now (answered as its wire shape).
        current: Option<Box<Run>>,
    },
    /// 405: the path exists but not with this method.
    MethodNotAllowed(String),
    /// 413: the body is larger than allowed.
    PayloadTooLarge(usize),
    /// 500: a fault a retry will not mend.
    Internal(String),
    /// 503: the database is unavailable or busy; the client retries.
    Unavailable(String),
}

impl ApiError {
    /// A 400 about a named field.
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> ApiError {
        ApiError::BadRequest {
            message: message.into(),
            field: Some(field.into()),
        }
    }

    /// A 400 without a field.
    pub fn bad(message: impl Into<String>) -> ApiError {
        ApiError::BadRequest {
            message: message.into(),
            field: None,
        }
    }
}

impl From<weir_store::Error> for ApiError {
    fn from(e: weir_store::Error) -> Self {
        use weir_store::Error as E;
        match e {
            E::NotFound(what) => ApiError::NotFound(format!("{what} not found")),
            E::Rejected { reason, current } => ApiError::Conflict {
                message: reason,
                current: Some(current),
            },
            E::Invalid(message) => ApiError::Conflict {
                message,
                current: None,
            },
            other if other.is_transient() => {
                tracing::warn!(message = "database unavailable", error = %other);
                ApiError::Unavailable(format!(
                    "the database is unavailable ({other}); retry shortly"
                ))
            }
            other => {
                tracing::error!(message = "storage failure", error = %other);
                ApiError::Internal(format!("storage failure: {other}"))
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, kind, message, field, current) = match self {
            ApiError::BadRequest { message, field } => {
                (StatusCode::BAD_REQUEST, ErrorKind::InvalidRequest, message, field, None)
            }
            ApiError::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                ErrorKind::Unauthorized,
                "missing, invalid, revoked or expired API key: pass a valid key as `Authorization: Bearer <key>`".into(),
                None,
                None,
            ),
            ApiError::Forbidden(m) => (StatusCode::FORBIDDEN, ErrorKind::Forbidden, m, None, None),
            ApiError::NotFound(m) => (StatusCode::NOT_FOUND, ErrorKind::NotFound, m, None, None),
            ApiError::Conflict { message, current } => {
                let current = current.map(|run| Box::new(FlowRun::from(*run)));
                (StatusCode::CONFLICT, ErrorKind::Conflict, message, None, current)
            }
            ApiError::MethodNotAllowed(m) => (
                StatusCode::METHOD_NOT_ALLOWED,
                ErrorKind::MethodNotAllowed,
                m,
                None,
                None,
            ),
            ApiError::PayloadTooLarge(limit) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                ErrorKind::PayloadTooLarge,
                format!("request body is larger than {limit} bytes; send smaller batches"),
                None,
                None,
            ),
            ApiError::Internal(m) => {
                (StatusCode::INTERNAL_SERVER_ERROR, ErrorKind::Internal, m, None, None)
            }
            ApiError::Unavailable(m) => {
                let body = ErrorBody {
                    error: ErrorKind::Unavailable,
                    message: m,
                    field: None,
                    current: None,
                };
                // Tells clients (and proxies) that this is worth retrying soon.
                return (
                    StatusCode::SERVICE_UNAVAILABLE,
                    [(axum::http::header::RETRY_AFTER, "1")],
                    Json(body),
                )
                    .into_response();
            }
        };
        (
            status,
            Json(ErrorBody {
                error: kind,
                message,
                field,
                current,
            }),
        )
            .into_response()
    }
}

/// Result of a handler.
pub type ApiResult<T> = Result<T, ApiError>;
