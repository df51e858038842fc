//! The ECS Fargate launcher of Weir's agent: each flow run attempt is one ECS task.
//!
//! | module | job |
//! |---|---|
//! | [`deployment`] | a deployment's ECS infrastructure and secrets → its task definition spec |
//! | [`agent`] | the agent's [`weir_agent::launcher::Launcher`] for `type = "ecs"` |
//! | [`taskdef`] | task definitions by content hash: registered by `weir deploy`, found by the agent |
//! | [`launcher`] | `RunTask` with per-run overrides, capacity retries, re-adoption after a restart |
//! | [`reconciler`] | one loop per agent batching `DescribeTasks`, start deadline, cancel |
//! | [`status`] | what a described task or a `RunTask` failure means (pure, tested on recorded responses) |
//! | [`logs`] | the CloudWatch tail of a task that died without reporting itself |
//! | [`requests`] | counting the ECS requests really sent, by operation (an SDK interceptor) |
//!
//! **Invariants.** The agent never calls `RegisterTaskDefinition` and never sees a secret
//! value: secrets are `valueFrom` references resolved by ECS with the execution role. The only
//! credential in `RunTask` overrides (readable by anyone with `ecs:DescribeTasks`) is the
//! per-run token, valid for one run attempt. Logs and the final state come from the flow
//! process itself over HTTP (the SDK or `weir exec`); CloudWatch is read only to diagnose a
//! task that died silently.
//!
//! A leaf crate: aws-sdk-ecs is one of the heaviest builds of the workspace, so only
//! `weir-cli` and `weir-bench` (behind their `ecs` features) depend on it. HTTPS is the
//! workspace's one client ([`weir_secrets_aws::config_loader`]: hyper 1, rustls on ring).

pub mod agent;
pub mod deployment;
pub mod launcher;
pub mod logs;
pub mod reconciler;
pub mod requests;
pub mod status;
pub mod taskdef;

pub use aws_sdk_cloudwatchlogs;
pub use aws_sdk_ecs;
pub use launcher::{Capacity, EcsLauncher, EcsOptions, RunRequest, StartedTask, started_by};
pub use taskdef::{LogSpec, TaskSpec};

use aws_sdk_ecs::error::{ProvideErrorMetadata, SdkError};

/// Why an ECS operation failed. Never contains a secret value: requests carry only
/// references and the per-run token, and errors quote AWS's codes and messages.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The deployment's task definition was not registered (the agent never registers).
    #[error(
        "no task definition of family {family} is tagged with this deployment's hash {hash}: \
         run `weir deploy` (from CI, which may register task definitions) and retry the run"
    )]
    NotRegistered {
        /// The family looked in.
        family: String,
        /// The spec hash looked for.
        hash: String,
    },
    /// `RunTask` started no task; AWS's reasons quoted.
    #[error("RunTask failed: {0}")]
    RunTaskFailed(String),
    /// An AWS call failed (after the SDK's retries).
    #[error("{operation} failed: {detail}")]
    Aws {
        /// The operation, e.g. `DescribeTasks`.
        operation: &'static str,
        /// The service's code and message, or the transport error.
        detail: String,
    },
    /// A request could not be built (a required field is missing).
    #[error("cannot build the request: {0}")]
    Build(String),
    /// AWS answered something Weir cannot use.
    #[error("unexpected answer from AWS: {0}")]
    Unexpected(String),
}

impl Error {
    fn build(e: aws_sdk_ecs::error::BuildError) -> Error {
        Error::Build(e.to_string())
    }
}

/// An [`Error::Aws`] for `operation`, with the service's code and message when there is one.
pub(crate) fn describe_error<E, R>(operation: &'static str, err: &SdkError<E, R>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    let detail = match err.as_service_error() {
        Some(service) => {
            let code = service.code().unwrap_or("unknown error");
            match service.message() {
                Some(m) => format!("{code}: {m}"),
                None => code.to_string(),
            }
        }
        None => weir_secrets_aws::error_chain(err),
    };
    Error::Aws { operation, detail }
}

/// ECS and CloudWatch Logs clients sharing one configuration.
#[derive(Debug, Clone)]
pub struct Clients {
    /// The ECS client (its requests counted in `requests`).
    pub ecs: aws_sdk_ecs::Client,
    /// The CloudWatch Logs client, for tailing tasks' `awslogs` output.
    pub logs: aws_sdk_cloudwatchlogs::Client,
    /// The ECS requests sent through `ecs`, by operation.
    pub requests: requests::Requests,
}

impl Clients {
    /// Both clients from one SDK configuration, the ECS one counting its requests.
    pub fn new(config: &weir_secrets_aws::aws_config::SdkConfig) -> Clients {
        let requests = requests::Requests::default();
        let ecs_config = requests.attach(aws_sdk_ecs::config::Builder::from(config));
        Clients {
            ecs: aws_sdk_ecs::Client::from_conf(ecs_config.build()),
            logs: aws_sdk_cloudwatchlogs::Client::new(config),
            requests,
        }
    }

    /// Both clients from the default AWS chain (region, credentials, `AWS_ENDPOINT_URL*`)
    /// with Weir's HTTPS client and timeouts.
    pub async fn from_env() -> Clients {
        Clients::new(&weir_secrets_aws::config_loader().load().await)
    }
}
