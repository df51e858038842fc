//! The launch environment: what a flow process learns from the agent that started it.
//!
//! Every variable is named by a constant in [`var`]; [`LaunchEnv::to_vars`] writes them and
//! [`AssignedRun::from_lookup`] reads the part a flow process needs to report on the run it was
//! launched for. A malformed value is an error naming the variable, never a silent fallback: a
//! process that cannot tell which run it is must not create another one.

use crate::Timestamp;
use crate::api::Parameters;
use uuid::Uuid;

/// Names of the environment variables of the launch contract.
pub mod var {
    /// Base URL of the Weir server the process reports to.
    pub const API_URL: &str = "WEIR_API_URL";
    /// Credential for the server: for launched runs, the per-run token (`weirrun_…`).
    pub const API_KEY: &str = "WEIR_API_KEY";
    /// Id (UUID) of the flow run this process was launched for.
    pub const FLOW_RUN_ID: &str = "WEIR_FLOW_RUN_ID";
    /// The run's attempt (a positive integer): the fencing token every report names.
    pub const ATTEMPT: &str = "WEIR_ATTEMPT";
    /// `1`: reuse results persisted by earlier attempts (a retry "from failed").
    pub const RESUME: &str = "WEIR_RESUME";
    /// The run's project.
    pub const PROJECT: &str = "WEIR_PROJECT";
    /// The flow to run.
    pub const FLOW: &str = "WEIR_FLOW";
    /// The deployment's name (empty for ad-hoc runs).
    pub const DEPLOYMENT: &str = "WEIR_DEPLOYMENT";
    /// The run's parameters as one JSON object.
    pub const PARAMETERS: &str = "WEIR_PARAMETERS";
    /// The schedule tick the run is for, RFC 3339 in UTC (`2026-12-01T03:00:00Z`): set for
    /// runs of the scheduler, catch-up and `weir backfill`; unset for runs started by hand.
    pub const TICK_AT: &str = "WEIR_TICK_AT";
    /// Comma-separated names of the variables holding secret values, to redact from output.
    pub const SECRET_VARS: &str = "WEIR_SECRET_VARS";
    /// File the process writes its final state to before proposing it, so its agent can
    /// deliver that state if the process cannot reach the server (JSON `ProposeState`).
    pub const OUTCOME_FILE: &str = "WEIR_OUTCOME_FILE";
    /// Result storage (`file:///path`, a path, or `s3://bucket/prefix`; see
    /// [`crate::storage`]): set from the deployment's `result_storage` or the agent's
    /// `--result-storage`.
    pub const RESULT_STORAGE: &str = "WEIR_RESULT_STORAGE";
    /// Weir's data directory, default [`DEFAULT_HOME`](super::DEFAULT_HOME).
    pub const HOME: &str = "WEIR_HOME";
    /// `1`: no terminal output from a local run.
    pub const QUIET: &str = "WEIR_QUIET";
    /// `1`: the launcher reads the process's stdout and stderr and sends them to the server as
    /// log lines (the process and Docker launchers). Unset where nobody reads them (an ECS
    /// task): `weir exec` then also echoes the command's output for the platform's own logs.
    pub const OUTPUT_FORWARDED: &str = "WEIR_OUTPUT_FORWARDED";
    /// Prefix reserved for Weir: deployments may not set variables starting with it.
    pub const RESERVED_PREFIX: &str = "WEIR_";
}

/// Weir's data directory when `WEIR_HOME` is not set, relative to the working directory.
pub const DEFAULT_HOME: &str = ".weir";

/// The run a flow process was launched for: which run, which attempt, and whether to resume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssignedRun {
    /// The flow run.
    pub flow_run_id: Uuid,
    /// Its attempt; reports naming another attempt are refused.
    pub attempt: u32,
    /// Reuse results persisted by earlier attempts.
    pub resume: bool,
}

/// A launch-environment variable that is missing (an empty `value`) or does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaunchEnvError {
    /// The variable.
    pub var: &'static str,
    /// Its value; empty when the variable is not set.
    pub value: String,
    /// What it should be.
    pub expected: &'static str,
}

impl std::fmt::Display for LaunchEnvError {
    /// `invalid WEIR_ATTEMPT="two": a positive integer`, or `WEIR_API_URL is not set: …`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.value.trim().is_empty() {
            write!(f, "{} is not set: {}", self.var, self.expected)
        } else {
            write!(
                f,
                "invalid {}={:?}: {}",
                self.var, self.value, self.expected
            )
        }
    }
}

impl std::error::Error for LaunchEnvError {}

impl AssignedRun {
    /// Reads the assigned run through `get` (e.g. `|k| std::env::var(k).ok()`). `Ok(None)`
    /// when no run was assigned (`WEIR_FLOW_RUN_ID` unset or empty): the process runs on its
    /// own. An id or attempt that does not parse is an error.
    pub fn from_lookup(
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<AssignedRun>, LaunchEnvError> {
        let Some(raw) = get(var::FLOW_RUN_ID).filter(|v| !v.trim().is_empty()) else {
            return Ok(None);
        };
        let flow_run_id = Uuid::parse_str(raw.trim()).map_err(|_| LaunchEnvError {
            var: var::FLOW_RUN_ID,
            value: raw.clone(),
            expected: "a flow run id (UUID)",
        })?;
        let attempt = match get(var::ATTEMPT).filter(|v| !v.trim().is_empty()) {
            None => 1,
            Some(a) => a
                .trim()
                .parse::<u32>()
                .ok()
                .filter(|n| *n >= 1)
                .ok_or(LaunchEnvError {
                    var: var::ATTEMPT,
                    value: a,
                    expected: "a positive integer",
                })?,
        };
        let resume = match get(var::RESUME).as_deref().map(str::trim) {
            None | Some("" | "0") => false,
            Some("1") => true,
            Some(other) => {
                return Err(LaunchEnvError {
                    var: var::RESUME,
                    value: other.to_string(),
                    expected: "1 or 0",
                });
            }
        };
        Ok(Some(AssignedRun {
            flow_run_id,
            attempt,
            resume,
        }))
    }
}

/// What a process reporting on its assigned run without an SDK (`weir exec`) reads from the
/// launch environment: the run, where to report, the run token, what to redact and where to
/// leave its final state. Every part must be there: such a process has no other way to know.
#[derive(Clone, PartialEq, Eq)]
pub struct ReportingEnv {
    /// The server (`WEIR_API_URL`).
    pub api_url: String,
    /// The per-run token (`WEIR_API_KEY`).
    pub api_key: String,
    /// The run and attempt.
    pub run: AssignedRun,
    /// Names of the variables holding secret values (`WEIR_SECRET_VARS`).
    pub secret_vars: Vec<String>,
    /// Where to write the final state before proposing it (`WEIR_OUTCOME_FILE`).
    pub outcome_file: Option<String>,
    /// Whether the launcher forwards the process's own output (`WEIR_OUTPUT_FORWARDED=1`).
    pub output_forwarded: bool,
}

impl std::fmt::Debug for ReportingEnv {
    /// Never shows the token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReportingEnv")
            .field("api_url", &self.api_url)
            .field("run", &self.run)
            .field("secret_vars", &self.secret_vars)
            .field("outcome_file", &self.outcome_file)
            .field("output_forwarded", &self.output_forwarded)
            .finish_non_exhaustive()
    }
}

impl ReportingEnv {
    /// Reads it through `get`; a missing or malformed variable is an error naming it.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, LaunchEnvError> {
        const SET_BY_AGENT: &str = "set by the agent that launched the run; `weir exec` runs \
                                    a command only for a run an agent launched";
        let required = |name: &'static str, expected: &'static str| {
            get(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
                .ok_or(LaunchEnvError {
                    var: name,
                    value: String::new(),
                    expected,
                })
        };
        let api_url = required(var::API_URL, SET_BY_AGENT)?;
        let api_key = required(var::API_KEY, SET_BY_AGENT)?;
        let run = AssignedRun::from_lookup(&get)?.ok_or(LaunchEnvError {
            var: var::FLOW_RUN_ID,
            value: String::new(),
            expected: SET_BY_AGENT,
        })?;
        let output_forwarded = match get(var::OUTPUT_FORWARDED).as_deref().map(str::trim) {
            None | Some("" | "0") => false,
            Some("1") => true,
            Some(other) => {
                return Err(LaunchEnvError {
                    var: var::OUTPUT_FORWARDED,
                    value: other.to_string(),
                    expected: "1 or 0",
                });
            }
        };
        Ok(ReportingEnv {
            api_url,
            api_key,
            run,
            secret_vars: get(var::SECRET_VARS)
                .map(|v| secret_var_names(&v).map(str::to_string).collect())
                .unwrap_or_default(),
            outcome_file: get(var::OUTCOME_FILE).filter(|p| !p.trim().is_empty()),
            output_forwarded,
        })
    }
}

/// Everything a launcher passes to a flow process it starts for a claimed run.
#[derive(Debug, Clone, PartialEq)]
pub struct LaunchEnv {
    /// The server to report to.
    pub api_url: String,
    /// The per-run token, when the server minted one.
    pub api_key: Option<String>,
    /// The run, attempt and resume flag.
    pub run: AssignedRun,
    /// The run's project.
    pub project: String,
    /// The flow to run.
    pub flow: String,
    /// The deployment's name, if the run came from one.
    pub deployment: Option<String>,
    /// The run's parameters.
    pub parameters: Parameters,
    /// Names of the variables that hold secret values.
    pub secret_vars: Vec<String>,
    /// Where the process leaves its final state for the agent, if the agent reads one.
    pub outcome_file: Option<String>,
    /// The deployment's result storage, when it sets one (over the agent's own).
    pub result_storage: Option<String>,
    /// Whether the launcher forwards the process's stdout and stderr as log lines.
    pub output_forwarded: bool,
    /// The schedule tick the run is for, if it came from a schedule or a backfill.
    pub tick_at: Option<Timestamp>,
}

impl LaunchEnv {
    /// The variables to set, in a stable order. `WEIR_API_KEY` is left out when there is no
    /// token, and `WEIR_SECRET_VARS` when there are no secrets.
    pub fn to_vars(&self) -> Vec<(String, String)> {
        let params = serde_json::Value::Object(self.parameters.clone()).to_string();
        let mut vars = vec![
            (var::API_URL, self.api_url.clone()),
            (var::FLOW_RUN_ID, self.run.flow_run_id.to_string()),
            (var::ATTEMPT, self.run.attempt.to_string()),
            (var::PROJECT, self.project.clone()),
            (var::FLOW, self.flow.clone()),
            (var::DEPLOYMENT, self.deployment.clone().unwrap_or_default()),
            (var::PARAMETERS, params),
            (var::RESUME, if self.run.resume { "1" } else { "0" }.into()),
        ];
        if let Some(key) = &self.api_key {
            vars.push((var::API_KEY, key.clone()));
        }
        if let Some(path) = &self.outcome_file {
            vars.push((var::OUTCOME_FILE, path.clone()));
        }
        if let Some(url) = &self.result_storage {
            vars.push((var::RESULT_STORAGE, url.clone()));
        }
        if !self.secret_vars.is_empty() {
            vars.push((var::SECRET_VARS, self.secret_vars.join(",")));
        }
        if self.output_forwarded {
            vars.push((var::OUTPUT_FORWARDED, "1".into()));
        }
        if let Some(t) = self.tick_at {
            vars.push((var::TICK_AT, format_tick(t)));
        }
        vars.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
    }
}

/// A tick as `WEIR_TICK_AT` writes it: RFC 3339 in UTC, fractions of a second only when
/// there are any.
pub fn format_tick(t: Timestamp) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

/// The tick of the run this process was launched for (`WEIR_TICK_AT`), read through `get`:
/// `Ok(None)` when unset or empty (a run started by hand), an error naming the variable when
/// it is not an RFC 3339 time.
pub fn tick_at_from_lookup(
    get: impl Fn(&str) -> Option<String>,
) -> Result<Option<Timestamp>, LaunchEnvError> {
    let Some(raw) = get(var::TICK_AT).filter(|v| !v.trim().is_empty()) else {
        return Ok(None);
    };
    chrono::DateTime::parse_from_rfc3339(raw.trim())
        .map(|t| Some(t.with_timezone(&chrono::Utc)))
        .map_err(|_| LaunchEnvError {
            var: var::TICK_AT,
            value: raw,
            expected: "an RFC 3339 time, e.g. 2026-12-01T03:00:00Z",
        })
}

/// The names in a `WEIR_SECRET_VARS` value.
pub fn secret_var_names(value: &str) -> impl Iterator<Item = &str> {
    value.split(',').map(str::trim).filter(|n| !n.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn what_the_agent_writes_the_process_reads() {
        let env = LaunchEnv {
            api_url: "http://127.0.0.1:4200".into(),
            api_key: Some("weirrun_x".into()),
            run: AssignedRun {
                flow_run_id: Uuid::now_v7(),
                attempt: 3,
                resume: true,
            },
            project: "dev".into(),
            flow: "etl".into(),
            deployment: Some("etl".into()),
            parameters: serde_json::json!({"rows": 5})
                .as_object()
                .cloned()
                .unwrap_or_default(),
            secret_vars: vec!["DB_PASSWORD".into(), "TOKEN".into()],
            outcome_file: None,
            result_storage: Some("s3://team-results/weir".into()),
            output_forwarded: true,
            tick_at: Some(
                chrono::DateTime::parse_from_rfc3339("2026-12-01T03:00:00Z")
                    .expect("time")
                    .with_timezone(&chrono::Utc),
            ),
        };
        let vars = env.to_vars();
        let get = |k: &str| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        assert_eq!(AssignedRun::from_lookup(get), Ok(Some(env.run.clone())));
        assert_eq!(get(var::PARAMETERS).as_deref(), Some(r#"{"rows":5}"#));
        assert_eq!(get(var::SECRET_VARS).as_deref(), Some("DB_PASSWORD,TOKEN"));
        assert_eq!(
            get(var::RESULT_STORAGE).as_deref(),
            Some("s3://team-results/weir")
        );
        let names: Vec<_> = secret_var_names(" A, ,B ").collect();
        assert_eq!(names, ["A", "B"]);
        let reporting = ReportingEnv::from_lookup(get).expect("complete");
        assert_eq!(reporting.run, env.run);
        assert_eq!(reporting.api_key, "weirrun_x");
        assert_eq!(reporting.secret_vars, ["DB_PASSWORD", "TOKEN"]);
        assert!(reporting.output_forwarded);
        assert!(!format!("{reporting:?}").contains("weirrun_x"));
        assert_eq!(get(var::TICK_AT).as_deref(), Some("2026-12-01T03:00:00Z"));
        assert_eq!(tick_at_from_lookup(get), Ok(env.tick_at));
    }

    #[test]
    fn tick_at_is_optional_but_never_garbage() {
        assert_eq!(tick_at_from_lookup(lookup(&[])), Ok(None));
        assert_eq!(tick_at_from_lookup(lookup(&[(var::TICK_AT, "")])), Ok(None));
        let e = tick_at_from_lookup(lookup(&[(var::TICK_AT, "yesterday")])).expect_err("bad");
        assert_eq!(e.var, var::TICK_AT);
        assert!(e.to_string().contains("\"yesterday\""), "{e}");
        let t = tick_at_from_lookup(lookup(&[(var::TICK_AT, "2026-03-29T03:00:00+02:00")]))
            .expect("valid")
            .expect("set");
        assert_eq!(format_tick(t), "2026-03-29T01:00:00Z");
    }

    #[test]
    fn reporting_env_names_what_is_missing() {
        let id = Uuid::now_v7().to_string();
        let full = [
            (var::API_URL, "http://127.0.0.1:4200"),
            (var::API_KEY, "weirrun_y"),
            (var::FLOW_RUN_ID, id.as_str()),
        ];
        for missing in [var::API_URL, var::API_KEY, var::FLOW_RUN_ID] {
            let pairs: Vec<_> = full
                .iter()
                .copied()
                .filter(|(k, _)| *k != missing)
                .collect();
            let e = ReportingEnv::from_lookup(lookup(&pairs)).expect_err("missing");
            assert_eq!(e.var, missing);
            assert!(
                e.to_string().starts_with(&format!("{missing} is not set")),
                "{e}"
            );
        }
        let mut bad = full.to_vec();
        bad.push((var::OUTPUT_FORWARDED, "yes"));
        let e = ReportingEnv::from_lookup(lookup(&bad)).expect_err("bad flag");
        assert_eq!(e.var, var::OUTPUT_FORWARDED);
        let ok = ReportingEnv::from_lookup(lookup(&full)).expect("ok");
        assert!(!ok.output_forwarded && ok.outcome_file.is_none());
    }

    #[test]
    fn no_run_id_means_no_assigned_run() {
        assert_eq!(AssignedRun::from_lookup(lookup(&[])), Ok(None));
        assert_eq!(
            AssignedRun::from_lookup(lookup(&[(var::FLOW_RUN_ID, " ")])),
            Ok(None)
        );
    }

    #[test]
    fn malformed_values_are_errors_naming_the_variable() {
        let id = Uuid::now_v7().to_string();
        let e =
            AssignedRun::from_lookup(lookup(&[(var::FLOW_RUN_ID, "run-7")])).expect_err("bad id");
        assert_eq!(e.var, var::FLOW_RUN_ID);
        assert!(e.to_string().contains("\"run-7\""), "{e}");
        for bad in ["0", "-1", "two"] {
            let e =
                AssignedRun::from_lookup(lookup(&[(var::FLOW_RUN_ID, &id), (var::ATTEMPT, bad)]))
                    .expect_err("bad attempt");
            assert_eq!(e.var, var::ATTEMPT);
        }
        let e = AssignedRun::from_lookup(lookup(&[(var::FLOW_RUN_ID, &id), (var::RESUME, "yes")]))
            .expect_err("bad resume");
        assert_eq!(e.var, var::RESUME);
        let ok = AssignedRun::from_lookup(lookup(&[(var::FLOW_RUN_ID, &id)]))
            .expect("ok")
            .expect("assigned");
        assert_eq!((ok.attempt, ok.resume), (1, false));
    }
}
