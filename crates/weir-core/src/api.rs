//! Wire types of the HTTP API (`/api/v1`), shared by the server, the client, the SDK's
//! transport, the agent and the CLI. Plain serde structs; the server derives its OpenAPI
//! document from the same shapes. One module per resource, all re-exported here, so every
//! type is `weir_core::api::Name`; this module has what every resource shares: the error
//! shape, pages, and the health answer.
//!
//! Every request type rejects unknown fields, so a typo is an error instead of a silent no-op.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

mod agents;
mod deployments;
mod explain;
mod keys;
mod limits;
mod logs;
pub mod notifications;
mod projects;
mod query;
mod runs;
mod schedules;
mod tasks;
pub use agents::*;
pub use deployments::*;
pub use explain::*;
pub use keys::*;
pub use limits::*;
pub use logs::*;
pub use projects::*;
pub use query::*;
pub use runs::*;
pub use schedules::*;
pub use tasks::*;

/// A text with at least one non-space character (JSON Schema pattern).
pub const NOT_BLANK: &str = "\\S";

/// JSON object of parameter values keyed by parameter name.
pub type Parameters = Map<String, Value>;

/// The one error shape every endpoint returns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ErrorBody {
    /// Machine-readable kind: what went wrong, and so whether a retry can help.
    pub error: ErrorKind,
    /// Human-readable message naming what is wrong and what to do.
    pub message: String,
    /// The request field at fault, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// For `conflict` on a state proposal: the run as it is now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current: Option<Box<FlowRun>>,
}

/// The kinds of API error. Only [`ErrorKind::Unavailable`] (and a lost connection) is
/// transient: retrying the same request later may succeed. Every other kind is final for that
/// request, and a `conflict` carries the run as it is now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// 400: the request is malformed or invalid; `field` names the culprit.
    InvalidRequest,
    /// 401: missing, invalid, revoked or expired credentials.
    Unauthorized,
    /// 403: the caller's role may not do this.
    Forbidden,
    /// 404: no such thing, or not visible to the caller.
    NotFound,
    /// 405: the path exists, not with this method.
    MethodNotAllowed,
    /// 409: refused by the orchestration rules or by stored data.
    Conflict,
    /// 413: the body is larger than the server accepts.
    PayloadTooLarge,
    /// 500: a fault on the server that a retry will not mend (e.g. a corrupt stored row).
    Internal,
    /// 503: the database is unavailable or busy right now; retry with backoff.
    Unavailable,
    /// An answer that was not a Weir error body (a proxy's page, say), or a kind this client
    /// does not know.
    #[serde(other)]
    Other,
}

impl ErrorKind {
    /// Whether retrying the same request later may succeed.
    pub fn is_transient(self) -> bool {
        self == ErrorKind::Unavailable
    }
}

/// A page of results and the cursor for the next page, if any.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Page<T> {
    /// The items, newest first unless the endpoint says otherwise.
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// Answer to a batch ingest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct BatchAccepted {
    /// How many items were stored.
    pub accepted: u64,
}

/// `GET /readyz` and `/healthz` body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Health {
    /// Always `ok`: `/readyz` answers an error instead when the database does not answer.
    pub status: String,
    /// The server's Weir version (its crate version, e.g. `0.1.0`).
    pub version: String,
    /// The database backend it runs on: `sqlite` or `postgres`.
    pub database: String,
}
