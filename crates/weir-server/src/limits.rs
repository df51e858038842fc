//! The request-body limit of every route, and closing connections so clients read the answer.
//!
//! Extractors enforce `max_body_bytes` only where a handler reads a body; a handler that
//! takes none (`POST …/cancel`) used to answer while the client was still sending, and the
//! connection was then closed with the rest unread — which the kernel turns into a reset,
//! so the client often lost the answer. This layer reads every body first: up to the limit
//! it is handed on; past it the answer is 413 with `Connection: close`, sent only after the
//! rest of the body was read and discarded (at most [`DRAIN_BYTES`] more, for at most
//! [`DRAIN_TIME`]), so the close is a clean one and an ordinary client reads the 413.

use crate::error::ApiError;
use crate::state::AppState;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use std::time::Duration;

/// Most bytes past the limit read and discarded before answering 413.
const DRAIN_BYTES: usize = 64 * 1024 * 1024;
/// Longest time spent discarding them.
const DRAIN_TIME: Duration = Duration::from_secs(10);

/// The middleware; see the module docs.
pub(crate) async fn body(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let limit = st.options.max_body_bytes;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let (parts, body) = req.into_parts();
    let mut body = body.into_data_stream();
    if declared.is_some_and(|n| n > limit as u64) {
        drain(body).await;
        return too_large(limit);
    }
    let mut buf: Vec<u8> = Vec::new();
    while let Some(data) = body.next().await {
        let Ok(data) = data else {
            return ApiError::bad("the request body could not be read").into_response();
        };
        if buf.len() + data.len() > limit {
            drain(body).await;
            return too_large(limit);
        }
        buf.extend_from_slice(&data);
    }
    let req = Request::from_parts(parts, Body::from(Bytes::from(buf)));
    next.run(req).await
}

fn too_large(limit: usize) -> Response {
    let mut resp = ApiError::PayloadTooLarge(limit).into_response();
    resp.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    resp
}

/// Reads and drops what is left of `body`, within [`DRAIN_BYTES`] and [`DRAIN_TIME`].
async fn drain(mut body: axum::body::BodyDataStream) {
    let discard = async {
        let mut seen = 0usize;
        while let Some(Ok(data)) = body.next().await {
            seen += data.len();
            if seen > DRAIN_BYTES {
                return;
            }
        }
    };
    let _ = tokio::time::timeout(DRAIN_TIME, discard).await;
}
