//! Wire types of projects and their retention.

use crate::Timestamp;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A namespace for deployments and runs, such as `dev` or `main`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Project {
    /// Its name, unique on the server: lowercase letters, digits, `-` and `_`, at most 63.
    pub name: String,
    /// When it was created.
    pub created_at: Timestamp,
    /// The project's own retention in days (`0`: keep runs forever); absent: the server's
    /// default applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retain_days: Option<u32>,
    /// The retention in force: the project's own, else the server's default; absent: finished
    /// runs are kept forever. Finished runs whose last state change is older are deleted with
    /// their task runs, states and logs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effective_retain_days: Option<u32>,
    /// Finished runs deleted by retention so far.
    #[serde(default)]
    pub pruned_runs: u64,
    /// When retention last deleted runs of this project.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pruned_at: Option<Timestamp>,
}

/// Body of `PUT /api/v1/projects/{project}/retention`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SetRetention {
    /// Days finished runs are kept (`0`: forever); `null`: use the server's default.
    #[schemars(range(max = 36500))]
    pub retain_days: Option<u32>,
}

/// Body of `POST /api/v1/projects`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateProject {
    /// Name: lowercase letters, digits, `-` and `_`, at most 63 characters.
    #[schemars(pattern(crate::names::PATTERN))]
    pub name: String,
}
