//! Query strings and path parameters of the HTTP API: the client builds them and the server
//! parses them from the same types, so the two cannot disagree, and the OpenAPI document
//! gives each parameter its type, format and range from them.

use crate::{Timestamp, names};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Largest page any list endpoint returns.
pub const MAX_PAGE: u32 = 1000;

/// A comma-separated list of state names (empty items are ignored).
pub const STATE_LIST_PATTERN: &str = "^((Scheduled|Late|Pending|Running|Completed|Failed|Crashed|Cancelling|Cancelled|AwaitingRetry|Paused)?,)*(Scheduled|Late|Pending|Running|Completed|Failed|Crashed|Cancelling|Cancelled|AwaitingRetry|Paused)?$";

/// Filters and page of `GET /api/v1/flow_runs`, newest first.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FlowRunsQuery {
    /// Only this project's runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// Only this deployment's runs (needs `project`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment: Option<String>,
    /// Only runs of this flow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flow: Option<String>,
    /// Only runs in these states, comma-separated (`Failed,Crashed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(STATE_LIST_PATTERN))]
    pub state: Option<String>,
    /// Only runs created at or after this time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<Timestamp>,
    /// Only runs created before this time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<Timestamp>,
    /// The previous page's `next_cursor`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<Uuid>,
    /// Page size (default 50).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = MAX_PAGE))]
    pub limit: Option<u32>,
}

/// A page of a cursor-paged list (task runs of a run, the audit log).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    /// The previous page's `next_cursor`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<Uuid>,
    /// Page size (default 200 for task runs, 100 for the audit log).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = MAX_PAGE))]
    pub limit: Option<u32>,
}

/// Which log lines of a run to read (or stream), oldest first.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LogsQuery {
    /// Lines after this sequence number (the previous page's `next_cursor`; default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<i64>,
    /// Page size (default 500).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = MAX_PAGE))]
    pub limit: Option<u32>,
    /// Only this task run's lines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_run: Option<Uuid>,
}

/// Where a run's event stream starts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StreamQuery {
    /// Send log lines after this sequence number (default 0: all of them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<i64>,
}

/// Filter of the deployment and flow lists.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProjectQuery {
    /// Only this project's; absent: every project the caller may see.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
}

/// Path of the deployment endpoints: `/projects/{project}/deployments/{name}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct DeploymentPath {
    /// The deployment's project.
    #[schemars(pattern(names::PATTERN))]
    pub project: String,
    /// The deployment's name in it.
    #[schemars(pattern(names::PATTERN))]
    pub name: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_pattern_names_every_state() {
        for s in crate::StateKind::ALL {
            assert!(STATE_LIST_PATTERN.contains(s.as_str()), "{s}");
        }
        let states = STATE_LIST_PATTERN.matches('|').count();
        assert_eq!(
            states + 2,
            2 * crate::StateKind::ALL.len(),
            "no extra names"
        );
    }
}
