//! Deployments in the domain: [`Deployment`], what the store returns and the rules read, and
//! the rules a deployment spec must satisfy, checked once for every way one arrives.
//!
//! `weir deploy` checks a `weir.toml` with positions for each key, and the server checks every
//! spec it is sent; both call these functions, so the API accepts exactly what the CLI does.
//!
//! [`Deployment`] is not serialised: the API's [`api::Deployment`] is built from it in one
//! conversion at the edge (`From`), and the store keeps its spec in a stored shape of its own.

use crate::Timestamp;
use crate::api::{self, DeploymentSpec, UpsertOutcome};
use crate::contract::launch::var;
use crate::schedule::{Schedule, ScheduleError};
use crate::secret::{SecretRef, SecretRefError};
use crate::{names, params};
use uuid::Uuid;

pub use crate::names::DEFAULT_QUEUE;

/// One problem with a spec: which field (a path such as `spec.secrets.TOKEN`) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct SpecError {
    /// Path of the field, from `spec`.
    pub field: String,
    /// What is wrong and what to write instead.
    pub message: String,
}

impl SpecError {
    fn new(field: impl Into<String>, message: impl Into<String>) -> SpecError {
        SpecError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// A deployment: a flow registered under a name in a project, with its current spec.
#[derive(Debug, Clone, PartialEq)]
pub struct Deployment {
    /// Its id, which runs and versions refer to; stays when the spec changes.
    pub id: Uuid,
    /// The project it belongs to.
    pub project: String,
    /// Its name, unique within the project (`weir.toml`'s table name).
    pub name: String,
    /// The number of its current spec: 1 when created, one more for each changed spec.
    pub version: u32,
    /// What it runs, when and how.
    pub spec: DeploymentSpec,
    /// Whether its schedules are paused (manual runs are still accepted).
    pub paused: bool,
    /// When it was first created.
    pub created_at: Timestamp,
    /// When its spec, pause or archive state last changed.
    pub updated_at: Timestamp,
    /// When it was archived, if it is: it schedules nothing and gets no new runs.
    pub archived_at: Option<Timestamp>,
}

impl Deployment {
    /// Whether it is archived (removed from its file, or by `weir deployments rm`).
    pub fn is_archived(&self) -> bool {
        self.archived_at.is_some()
    }
}

impl From<Deployment> for api::Deployment {
    fn from(d: Deployment) -> Self {
        let Deployment {
            id,
            project,
            name,
            version,
            spec,
            paused,
            created_at,
            updated_at,
            archived_at,
        } = d;
        api::Deployment {
            id,
            project,
            name,
            version,
            spec,
            paused,
            created_at,
            updated_at,
            archived_at,
        }
    }
}

/// What an upsert of a deployment did (or, for a dry run, would do).
#[derive(Debug, Clone, PartialEq)]
pub struct Upserted {
    /// Created, updated, unchanged or restored.
    pub outcome: UpsertOutcome,
    /// The deployment after the upsert (before it, for a dry run that would change it;
    /// absent for a dry run that would create it).
    pub deployment: Option<Deployment>,
    /// The spec it had before, when the upsert changed or would change it.
    pub previous: Option<DeploymentSpec>,
}

impl From<Upserted> for api::UpsertResult {
    fn from(u: Upserted) -> Self {
        api::UpsertResult {
            outcome: u.outcome,
            deployment: u.deployment.map(api::Deployment::from),
            previous: u.previous,
        }
    }
}

/// Checks a variable name a deployment sets (in `env` or `secrets`): upper-case letters,
/// digits and `_`, not starting with a digit, and not in Weir's reserved `WEIR_` space.
pub fn check_env_name(name: &str) -> Result<(), String> {
    let valid = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_uppercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
    if !valid {
        return Err(format!(
            "invalid environment variable name {name:?}: use upper-case letters, digits and \
             \"_\", not starting with a digit"
        ));
    }
    if name.starts_with(var::RESERVED_PREFIX) {
        return Err(format!(
            "{name:?}: names starting with WEIR_ are reserved for Weir itself"
        ));
    }
    Ok(())
}

/// The schedule field a [`ScheduleError`] is about (`cron`, `timezone`, `interval`; empty when
/// it is about the schedule as a whole).
pub fn schedule_error_field(e: &ScheduleError) -> &'static str {
    match e {
        ScheduleError::InvalidCron { .. } => "cron",
        ScheduleError::InvalidTimezone(_) => "timezone",
        ScheduleError::InvalidInterval(_) => "interval",
        ScheduleError::Ambiguous => "",
    }
}

/// Checks a deployment's parameters against `spec.parameter_schema`, when it is known
/// (nothing to check otherwise): unknown parameters, types and ranges always; missing required
/// parameters only when the deployment has schedules, since scheduled runs get no parameters
/// but the deployment's (a manual run may still supply them for an unscheduled deployment).
pub fn check_parameters(spec: &DeploymentSpec) -> Result<(), Vec<params::ParamError>> {
    match &spec.parameter_schema {
        None => Ok(()),
        Some(schema) if spec.schedules.is_empty() => {
            params::validate_present(schema, &spec.parameters)
        }
        Some(schema) => params::validate(schema, &spec.parameters),
    }
}

/// Checks a whole spec; the first problem found, in field order.
pub fn check_spec(spec: &DeploymentSpec) -> Result<(), SpecError> {
    if spec.flow.trim().is_empty() {
        return Err(SpecError::new(
            "spec.flow",
            "the flow name must not be empty",
        ));
    }
    names::check("work queue", &spec.work_queue)
        .map_err(|m| SpecError::new("spec.work_queue", m))?;
    if spec.retry_delay_s > crate::api::MAX_RETRY_DELAY_S {
        return Err(SpecError::new(
            "spec.retry_delay_s",
            format!(
                "retry_delay_s {} is longer than a year ({} s): use a shorter delay",
                spec.retry_delay_s,
                crate::api::MAX_RETRY_DELAY_S
            ),
        ));
    }
    if let Some(n) = spec.concurrency {
        crate::limits::check_slots(n).map_err(|m| SpecError::new("spec.concurrency", m))?;
    }
    if let Some(url) = &spec.result_storage {
        crate::storage::StorageUrl::parse(url)
            .map_err(|e| SpecError::new("spec.result_storage", e.to_string()))?;
    }
    for (i, s) in spec.schedules.iter().enumerate() {
        Schedule::parse(s).map_err(|e| {
            let part = match schedule_error_field(&e) {
                "" => String::new(),
                f => format!(".{f}"),
            };
            SpecError::new(format!("spec.schedules[{i}]{part}"), e.to_string())
        })?;
    }
    for name in spec.env.keys() {
        check_env_name(name).map_err(|m| SpecError::new(format!("spec.env.{name}"), m))?;
    }
    for (name, reference) in &spec.secrets {
        let field = format!("spec.secrets.{name}");
        check_env_name(name).map_err(|m| SpecError::new(&field, m))?;
        // The message never repeats what was sent: it may be a value pasted by mistake.
        SecretRef::parse(reference).map_err(|e| {
            let problem = match e {
                SecretRefError::UnknownScheme(_) => {
                    "must start with env:, file:, ssm: or secretsmanager: (a reference, never a value)"
                        .to_string()
                }
                SecretRefError::EmptyPath(_, scheme) => format!("has nothing after \"{scheme}:\""),
            };
            SpecError::new(&field, format!("secret reference for {name} {problem}"))
        })?;
        if spec.env.contains_key(name) {
            return Err(SpecError::new(
                field,
                format!("{name:?} is set in both env and secrets: keep one"),
            ));
        }
    }
    if let Err(errors) = check_parameters(spec)
        && let Some(first) = errors.first()
    {
        return Err(SpecError::new(
            format!("spec.parameters.{}", first.param),
            first.to_string(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> DeploymentSpec {
        DeploymentSpec {
            flow: "etl".into(),
            command: vec!["example-flows".into()],
            work_queue: DEFAULT_QUEUE.into(),
            ..DeploymentSpec::default()
        }
    }

    #[test]
    fn what_the_file_refuses_the_api_refuses() {
        assert_eq!(check_spec(&spec()), Ok(()));
        let mut s = spec();
        s.concurrency = Some(0);
        assert_eq!(
            check_spec(&s).map_err(|e| e.field),
            Err("spec.concurrency".to_string())
        );
        let mut s = spec();
        s.env.insert("WEIR_API_URL".into(), "x".into());
        assert_eq!(
            check_spec(&s).map_err(|e| e.field),
            Err("spec.env.WEIR_API_URL".into())
        );
        let mut s = spec();
        s.env.insert("log_level".into(), "x".into());
        assert!(check_spec(&s).is_err_and(|e| e.message.contains("upper-case")));
        let mut s = spec();
        s.secrets.insert("TOKEN".into(), "hunter2".into());
        let e = check_spec(&s).expect_err("a value, not a reference");
        assert_eq!(e.field, "spec.secrets.TOKEN");
        assert!(!e.message.contains("hunter2"), "{e}");
        let mut s = spec();
        s.secrets.insert("TOKEN".into(), "env:TOKEN".into());
        s.env.insert("TOKEN".into(), "x".into());
        assert!(check_spec(&s).is_err_and(|e| e.message.contains("keep one")));
        let mut s = spec();
        s.work_queue = "Bad Queue".into();
        assert_eq!(
            check_spec(&s).map_err(|e| e.field),
            Err("spec.work_queue".into())
        );
    }

    #[test]
    fn required_parameters_are_needed_only_by_schedules() {
        let mut s = spec();
        s.parameter_schema = Some(serde_json::json!({
            "type": "object",
            "properties": {"bucket": {"type": "string"}, "key": {"type": "string"}},
            "required": ["bucket", "key"],
            "additionalProperties": false
        }));
        s.parameters.insert("key".into(), "hello.txt".into());
        assert_eq!(check_spec(&s), Ok(()), "a manual run may supply the bucket");
        s.schedules.push(crate::api::ScheduleSpec {
            interval: Some("1h".into()),
            ..Default::default()
        });
        let e = check_spec(&s).expect_err("scheduled runs get no parameters of their own");
        assert_eq!(e.field, "spec.parameters.bucket");
        s.schedules.clear();
        s.parameters.insert("key".into(), 7.into());
        assert!(check_spec(&s).is_err(), "a given value is still checked");
    }
}
