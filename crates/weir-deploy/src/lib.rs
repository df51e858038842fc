//! The deployment file, `weir.toml`: what CI registers with `weir deploy`.
//!
//! A flows repository describes its deployments in one TOML file. [`parse`] reads it into
//! [`DeploymentSpec`]s (the API's wire type), checking everything that can be checked without a
//! server: key names (with a "did you mean" for typos), types, names, cron expressions, time
//! zones, intervals, durations and secret references. Every problem is reported, each with
//! the file, line and column it is at:
//!
//! ```text
//! weir.toml:7:1: unknown key "shedule" in deployment "etl" (did you mean "schedules"?)
//! weir.toml:9:13: invalid schedule in deployment "etl": unknown time zone "Europe/Amsterdan": …
//! ```
//!
//! [`validate_parameters`] checks a deployment's parameters against its flow's schema once the
//! CLI has it, [`diff`] renders what an upsert would change, and [`plan::fire_times`] the next
//! fire times of a created or changed schedule.
//!
//! # Format
//!
//! ```toml
//! project = "dev"                 # default project; `weir deploy --project` overrides
//!
//! [defaults]                      # optional: applies to every deployment that does not set the key
//! command = ["./target/release/example-flows"]
//! work_queue = "default"
//! env = { LOG_LEVEL = "info" }    # tables (env, secrets) merge key by key
//!
//! [deployments.etl]               # deployment name
//! flow = "etl"                    # flow name (default: the deployment name)
//! description = "Nightly ETL"
//! command = ["example-flows"]     # program + args; for a flows binary the agent runs `<command> run <flow>`
//! plain = false                   # true: any program (script, shell); parameters as JSON in WEIR_PARAMETERS
//! infrastructure = { type = "docker", image = "example-flows:latest", memory = "512Mi" }
//!                                 # where runs execute: process (default), docker or ecs
//! work_queue = "default"          # default "default"
//! parameters = { rows = 100 }     # default parameter values (any TOML; dates become strings)
//! schedules = [
//!   { cron = "0 3 * * *", timezone = "Europe/Amsterdam" },
//!   { interval = "15m", anchor = 2026-01-01T00:05:00Z },   # anchor: TOML date-time or RFC 3339 string
//! ]
//! secrets = { DB_PASSWORD = "ssm:/DataFlows/Dev/DB_PASSWORD" }
//! env = { LOG_LEVEL = "debug" }   # strings; integers and booleans are written as text
//! retries = 2
//! retry_delay = "30s"             # duration (500ms is refused: whole seconds) or a number of seconds
//! tags = ["nightly"]
//! concurrency = 2                 # at most 2 runs of this deployment at once (default: no limit)
//! on_limit = "wait"               # a due run when a limit is full: "wait" (default) or "skip"
//! catchup = "latest"              # ticks missed while no server ran: "none", "latest" (default)
//!                                 # or "all" (at most 100, the most recent)
//! ```
//!
//! Variables: `${NAME}` in any string value is replaced by the value `weir deploy --var
//! NAME=VALUE` passes (`--var NAME` alone takes it from the environment), so CI deploys the
//! image it just built: `infrastructure = { type = "docker", image = "${IMAGE}" }`, `weir deploy --var IMAGE=$REPO:$COMMIT`. A
//! variable that is not passed is an error at its line and column; `$${` is a literal `${`;
//! any other `$` stays as written. See [`Vars`].
//!
//! Notification rules of the project (`weir deploy` owns them: a rule it wrote that the file
//! no longer has is deleted):
//!
//! ```toml
//! [[notifications]]
//! name = "chat"                   # rule name (a name like a deployment's)
//! on = ["failed", "crashed", "late", "recovered", "deployment_created", "deployment_changed"]
//! deployments = ["etl"]           # optional: only these deployments of the file (default: all)
//! destination = { type = "sns", topic_arn = "arn:aws:sns:eu-west-1:123456789012:data-chat" }
//! rate_limit = "10/1h"            # optional: at most 10 per hour (default 60/1h)
//! # or { type = "webhook", url = "https://… | ssm:/…", signing_key = "ssm:/…" }
//! # or { type = "slack", url = "ssm:/chat/slack_webhook_url" }   (a secret reference only)
//! ```
//!
//! Rules:
//! - Top-level keys: `project`, `defaults`, `deployments`, `notifications`. At least one
//!   deployment.
//! - Project, deployment and work queue names: 1–63 lowercase letters, digits, `-` and `_`,
//!   starting with a letter or digit (`weir_core::names`, the server's rule).
//! - `[defaults]` takes every deployment key except `flow`, `description` and `parameters`
//!   (those belong to one flow). A deployment's own value replaces the default, except for
//!   `env` and `secrets`, which are merged (the deployment's entries win).
//! - Every deployment needs a non-empty `command`, its own or from `[defaults]`.
//! - A schedule has exactly one of `cron` or `interval`; `timezone` (IANA name, default UTC)
//!   and `anchor` are optional.
//! - Secret references start with `env:`, `file:`, `ssm:` or `secretsmanager:`. Environment
//!   variable names (keys of `env` and `secrets`) match `[A-Z_][A-Z0-9_]*`, do not start with
//!   `WEIR_` (reserved for what the agent passes to runs), and a name is not in both tables.
//! - Schedules may also be written as `[[deployments.etl.schedules]]` tables.
//! - `infrastructure` (also `[defaults.infrastructure]`) has a `type`: `process` (the default
//!   when there is no table) takes no other key; `docker` takes `image` (required), `cpu`
//!   (CPUs, e.g. `0.5`), `memory` (e.g. `"512Mi"`), `network`, `env`, `volumes`
//!   (`"SRC:/target[:ro]"`), `pull` (`"never"`, `"if-missing"`, `"always"`) and `init`
//!   (default true); `ecs` takes `image`, `cpu` and `memory`. A deployment's table of the same
//!   type as `[defaults.infrastructure]` (or with no `type`) is merged over it key by key;
//!   another type replaces it.

mod diff;
mod interpolate;
mod parse;
pub mod plan;
mod suggest;

pub use diff::diff;
pub use interpolate::Vars;
pub use weir_core::params::ParamError;

use std::fmt;
use std::path::{Path, PathBuf};
use weir_core::api::DeploymentSpec;

/// A parsed, checked deployment file.
#[derive(Debug, Clone, PartialEq)]
pub struct DeployFile {
    /// The file's `project`, if it sets one (`weir deploy --project` overrides it).
    pub project: Option<String>,
    /// The deployments, in the order the file lists them.
    pub deployments: Vec<DeploymentEntry>,
    /// The project's notification rules (`[[notifications]]`), in file order.
    pub notifications: Vec<NotificationEntry>,
}

/// One notification rule of a [`DeployFile`].
#[derive(Debug, Clone, PartialEq)]
pub struct NotificationEntry {
    /// The rule's name, unique within its project.
    pub name: String,
    /// What it sends where (checked by `weir_core::notify::check_rule`).
    pub spec: weir_core::api::notifications::NotificationRuleSpec,
    /// Where its table starts.
    pub location: Location,
}

/// One deployment of a [`DeployFile`].
#[derive(Debug, Clone, PartialEq)]
pub struct DeploymentEntry {
    /// The deployment's name (its key under `[deployments]`).
    pub name: String,
    /// What to register, with `[defaults]` applied. `parameter_schema` is `None`: the CLI
    /// fills it from the flows binary's `describe`.
    pub spec: DeploymentSpec,
    /// Where the deployment's name is written, for messages about it.
    pub location: Location,
}

/// A position in a file, both 1-based; the column counts characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Location {
    /// The line, from 1.
    pub line: usize,
    /// The column, from 1, in characters (not bytes).
    pub column: usize,
}

impl Location {
    /// The location of byte `offset` in `text` (clamped to the text).
    pub fn of_offset(text: &str, offset: usize) -> Location {
        let mut offset = offset.min(text.len());
        while !text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &text[..offset];
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        Location {
            line: before.matches('\n').count() + 1,
            column: before[line_start..].chars().count() + 1,
        }
    }
}

/// One problem found in a deployment file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file, as given to [`parse`].
    pub file: PathBuf,
    /// Where the problem is.
    pub location: Location,
    /// What is wrong, and usually what to write instead.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file.display(),
            self.location.line,
            self.location.column,
            self.message
        )
    }
}

/// Why a deployment file was refused.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The path that could not be read, as given.
        path: PathBuf,
        /// The operating system's error (missing file, permission denied).
        source: std::io::Error,
    },
    /// The file has problems: every one found, in file order, one per line when displayed.
    #[error("{}", lines(.0))]
    Invalid(Vec<Diagnostic>),
}

fn lines(diagnostics: &[Diagnostic]) -> String {
    let all: Vec<String> = diagnostics.iter().map(ToString::to_string).collect();
    all.join("\n")
}

/// Parses and checks the text of a deployment file with no variables (any `${NAME}` is an
/// error). `path_for_messages` is only used to name the file in diagnostics.
pub fn parse(path_for_messages: &Path, text: &str) -> Result<DeployFile, Error> {
    parse::parse(path_for_messages, text, &Vars::new())
}

/// [`parse`], filling `${NAME}` references in string values from `vars`.
pub fn parse_with(path_for_messages: &Path, text: &str, vars: &Vars) -> Result<DeployFile, Error> {
    parse::parse(path_for_messages, text, vars)
}

/// Reads and parses the deployment file at `path` with no variables.
pub fn load(path: &Path) -> Result<DeployFile, Error> {
    load_with(path, &Vars::new())
}

/// Reads and parses the deployment file at `path`, filling `${NAME}` from `vars`.
pub fn load_with(path: &Path, vars: &Vars) -> Result<DeployFile, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_with(path, &text, vars)
}

/// Checks a deployment's parameters against its schema: the rule of
/// [`weir_core::deployment::check_parameters`], which the server applies too.
pub fn validate_parameters(spec: &DeploymentSpec) -> Result<(), Vec<ParamError>> {
    weir_core::deployment::check_parameters(spec)
}

#[cfg(test)]
mod tests;
