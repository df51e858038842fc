//! The stored shape of a deployment spec: what `deployments.spec` and
//! `deployment_versions.spec` hold. It is the store's own, versioned and tolerant, so the
//! wire spec ([`DeploymentSpec`], the API's and `weir deploy`'s) can change without turning
//! stored rows into errors.
//!
//! A row is a JSON object with its format version in `v`. Version 1 has the keys the wire spec
//! had when versions began; rows written before then carry no `v` and are version 1. Reading
//! ignores keys it does not know (at every level: schedules and infrastructure have stored
//! shapes of their own here) and gives absent ones their defaults; only `flow`, and a
//! container's `image`, are required. A version newer than this Weir knows is refused with
//! [`crate::Error::NewerFormat`], naming the row: a newer Weir wrote it, and reading it as
//! version 1 could lose what it says. The conversions to and from the wire spec destructure every field,
//! so a field added to the wire spec does not compile until it has a stored home; renaming one
//! changes only a conversion here, never the stored key.

use crate::Result;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use weir_core::Timestamp;
use weir_core::api::{DeploymentSpec, ScheduleSpec};
use weir_core::infrastructure::{
    DockerInfrastructure, EcsInfrastructure, Infrastructure, PullPolicy,
};
use weir_core::limits::OnLimit;
use weir_core::schedule::Catchup;

/// The newest format version this Weir writes and reads.
pub(crate) const VERSION: u64 = 1;

/// Encodes `spec` as a stored row (the newest version).
pub(crate) fn encode(spec: &DeploymentSpec) -> String {
    crate::codec::to_json(&SpecV1::from(spec))
}

/// Decodes the stored spec `text` of `column`; `row` names the row for errors (`deployment
/// dev/etl`).
pub(crate) fn decode(
    text: &str,
    column: &'static str,
    row: impl Fn() -> String,
) -> Result<DeploymentSpec> {
    let v1: SpecV1 = crate::codec::versioned(text, column, VERSION, row)?;
    Ok(v1.into())
}

/// Version 1 of a stored spec.
#[derive(Debug, Serialize, Deserialize)]
struct SpecV1 {
    /// The format version: 1 (absent in rows written before versions).
    #[serde(default = "one")]
    v: u64,
    flow: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    description: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    command: Vec<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    plain_command: bool,
    #[serde(default, skip_serializing_if = "InfrastructureV1::is_process")]
    infrastructure: InfrastructureV1,
    #[serde(default = "default_queue")]
    work_queue: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    schedules: Vec<ScheduleV1>,
    #[serde(default, skip_serializing_if = "CatchupV1::is_latest")]
    catchup: CatchupV1,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    parameters: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    parameter_schema: Option<Value>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    secrets: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    env: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "is_zero")]
    retries: u32,
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    retry_delay_s: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    concurrency: Option<u32>,
    #[serde(default, skip_serializing_if = "OnLimitV1::is_wait")]
    on_limit: OnLimitV1,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    result_storage: Option<String>,
}

impl From<&DeploymentSpec> for SpecV1 {
    fn from(spec: &DeploymentSpec) -> Self {
        let DeploymentSpec {
            flow,
            description,
            command,
            plain_command,
            infrastructure,
            work_queue,
            schedules,
            catchup,
            parameters,
            parameter_schema,
            secrets,
            env,
            retries,
            retry_delay_s,
            tags,
            concurrency,
            on_limit,
            result_storage,
        } = spec.clone();
        SpecV1 {
            v: VERSION,
            flow,
            description,
            command,
            plain_command,
            infrastructure: infrastructure.into(),
            work_queue,
            schedules: schedules.into_iter().map(ScheduleV1::from).collect(),
            catchup: catchup.into(),
            parameters,
            parameter_schema,
            secrets,
            env,
            retries,
            retry_delay_s,
            tags,
            concurrency,
            on_limit: on_limit.into(),
            result_storage,
        }
    }
}

impl From<SpecV1> for DeploymentSpec {
    fn from(s: SpecV1) -> Self {
        let SpecV1 {
            v: _,
            flow,
            description,
            command,
            plain_command,
            infrastructure,
            work_queue,
            schedules,
            catchup,
            parameters,
            parameter_schema,
            secrets,
            env,
            retries,
            retry_delay_s,
            tags,
            concurrency,
            on_limit,
            result_storage,
        } = s;
        DeploymentSpec {
            flow,
            description,
            command,
            plain_command,
            infrastructure: infrastructure.into(),
            work_queue,
            schedules: schedules.into_iter().map(ScheduleSpec::from).collect(),
            catchup: catchup.into(),
            parameters,
            parameter_schema,
            secrets,
            env,
            retries,
            retry_delay_s,
            tags,
            concurrency,
            on_limit: on_limit.into(),
            result_storage,
        }
    }
}

/// Version 1 of a stored schedule.
#[derive(Debug, Serialize, Deserialize)]
struct ScheduleV1 {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cron: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    interval: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    timezone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    anchor: Option<Timestamp>,
}

impl From<ScheduleSpec> for ScheduleV1 {
    fn from(s: ScheduleSpec) -> Self {
        let ScheduleSpec {
            cron,
            interval,
            timezone,
            anchor,
        } = s;
        ScheduleV1 {
            cron,
            interval,
            timezone,
            anchor,
        }
    }
}

impl From<ScheduleV1> for ScheduleSpec {
    fn from(s: ScheduleV1) -> Self {
        let ScheduleV1 {
            cron,
            interval,
            timezone,
            anchor,
        } = s;
        ScheduleSpec {
            cron,
            interval,
            timezone,
            anchor,
        }
    }
}

/// Version 1 of stored infrastructure: a `type` key and that kind's settings.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum InfrastructureV1 {
    #[default]
    Process,
    Docker(DockerV1),
    Ecs(EcsV1),
}

impl InfrastructureV1 {
    fn is_process(&self) -> bool {
        matches!(self, Self::Process)
    }
}

impl From<Infrastructure> for InfrastructureV1 {
    fn from(i: Infrastructure) -> Self {
        match i {
            Infrastructure::Process => Self::Process,
            Infrastructure::Docker(d) => Self::Docker(d.into()),
            Infrastructure::Ecs(e) => Self::Ecs(e.into()),
        }
    }
}

impl From<InfrastructureV1> for Infrastructure {
    fn from(i: InfrastructureV1) -> Self {
        match i {
            InfrastructureV1::Process => Self::Process,
            InfrastructureV1::Docker(d) => Self::Docker(d.into()),
            InfrastructureV1::Ecs(e) => Self::Ecs(e.into()),
        }
    }
}

/// Version 1 of stored Docker settings.
#[derive(Debug, Serialize, Deserialize)]
struct DockerV1 {
    image: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cpu: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    memory: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    network: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    env: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    volumes: Vec<String>,
    #[serde(default, skip_serializing_if = "PullV1::is_if_missing")]
    pull: PullV1,
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    init: bool,
}

impl From<DockerInfrastructure> for DockerV1 {
    fn from(d: DockerInfrastructure) -> Self {
        let DockerInfrastructure {
            image,
            cpu,
            memory,
            network,
            env,
            volumes,
            pull,
            init,
        } = d;
        DockerV1 {
            image,
            cpu,
            memory,
            network,
            env,
            volumes,
            pull: pull.into(),
            init,
        }
    }
}

impl From<DockerV1> for DockerInfrastructure {
    fn from(d: DockerV1) -> Self {
        let DockerV1 {
            image,
            cpu,
            memory,
            network,
            env,
            volumes,
            pull,
            init,
        } = d;
        DockerInfrastructure {
            image,
            cpu,
            memory,
            network,
            env,
            volumes,
            pull: pull.into(),
            init,
        }
    }
}

/// Version 1 of stored ECS settings.
#[derive(Debug, Serialize, Deserialize)]
struct EcsV1 {
    image: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cpu: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    memory: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    execution_role_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    task_role_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    log_group: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    capacity: Option<String>,
}

impl From<EcsInfrastructure> for EcsV1 {
    fn from(e: EcsInfrastructure) -> Self {
        let EcsInfrastructure {
            image,
            cpu,
            memory,
            execution_role_arn,
            task_role_arn,
            log_group,
            capacity,
        } = e;
        EcsV1 {
            image,
            cpu,
            memory,
            execution_role_arn,
            task_role_arn,
            log_group,
            capacity,
        }
    }
}

impl From<EcsV1> for EcsInfrastructure {
    fn from(e: EcsV1) -> Self {
        let EcsV1 {
            image,
            cpu,
            memory,
            execution_role_arn,
            task_role_arn,
            log_group,
            capacity,
        } = e;
        EcsInfrastructure {
            image,
            cpu,
            memory,
            execution_role_arn,
            task_role_arn,
            log_group,
            capacity,
        }
    }
}

/// Version 1 of a stored pull policy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum PullV1 {
    Never,
    #[default]
    IfMissing,
    Always,
}

impl PullV1 {
    fn is_if_missing(&self) -> bool {
        *self == Self::IfMissing
    }
}

impl From<PullPolicy> for PullV1 {
    fn from(p: PullPolicy) -> Self {
        match p {
            PullPolicy::Never => Self::Never,
            PullPolicy::IfMissing => Self::IfMissing,
            PullPolicy::Always => Self::Always,
        }
    }
}

impl From<PullV1> for PullPolicy {
    fn from(p: PullV1) -> Self {
        match p {
            PullV1::Never => Self::Never,
            PullV1::IfMissing => Self::IfMissing,
            PullV1::Always => Self::Always,
        }
    }
}

/// Version 1 of a stored catch-up policy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum CatchupV1 {
    None,
    #[default]
    Latest,
    All,
}

impl CatchupV1 {
    fn is_latest(&self) -> bool {
        *self == Self::Latest
    }
}

impl From<Catchup> for CatchupV1 {
    fn from(c: Catchup) -> Self {
        match c {
            Catchup::None => Self::None,
            Catchup::Latest => Self::Latest,
            Catchup::All => Self::All,
        }
    }
}

impl From<CatchupV1> for Catchup {
    fn from(c: CatchupV1) -> Self {
        match c {
            CatchupV1::None => Self::None,
            CatchupV1::Latest => Self::Latest,
            CatchupV1::All => Self::All,
        }
    }
}

/// Version 1 of a stored `on_limit`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum OnLimitV1 {
    #[default]
    Wait,
    Skip,
}

impl OnLimitV1 {
    fn is_wait(&self) -> bool {
        *self == Self::Wait
    }
}

impl From<OnLimit> for OnLimitV1 {
    fn from(o: OnLimit) -> Self {
        match o {
            OnLimit::Wait => Self::Wait,
            OnLimit::Skip => Self::Skip,
        }
    }
}

impl From<OnLimitV1> for OnLimit {
    fn from(o: OnLimitV1) -> Self {
        match o {
            OnLimitV1::Wait => Self::Wait,
            OnLimitV1::Skip => Self::Skip,
        }
    }
}

fn one() -> u64 {
    1
}
fn default_queue() -> String {
    weir_core::names::DEFAULT_QUEUE.to_string()
}
fn yes() -> bool {
    true
}
fn is_true(b: &bool) -> bool {
    *b
}
fn is_false(b: &bool) -> bool {
    !*b
}
fn is_zero(n: &u32) -> bool {
    *n == 0
}
fn is_zero_u64(n: &u64) -> bool {
    *n == 0
}

#[cfg(test)]
mod tests;
