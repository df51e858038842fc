//! Task definitions by content hash.
//!
//! A deployment's ECS infrastructure becomes a [`TaskSpec`]: everything a task definition
//! holds (image, size, roles, log configuration, secret references). Its [`TaskSpec::hash`]
//! is a SHA-256 over a canonical serialisation. The task definition lives in family
//! `weir-<project>-<deployment>` and carries the hash as tag [`HASH_TAG`]; it is reused when
//! the family's newest revision carries the same tag — never by comparing fields, since AWS
//! adds and normalises fields on its own (what makes Prefect register a new revision per run).
//!
//! `weir deploy` (from CI, which holds `ecs:RegisterTaskDefinition`) calls [`ensure`]; the
//! agent only [`find`]s, so it needs no permission to register anything, and 100 runs of one
//! deployment cost exactly one registration.
//!
//! Per-run values (command, environment, cpu and memory) are never in the task definition:
//! they are `RunTask` overrides. Secrets are: ECS resolves `secrets[].valueFrom` with the
//! execution role when the task starts, so neither the agent nor `DescribeTasks` readers
//! ever see a value.

use crate::{Error, describe_error};
use aws_sdk_ecs::types::{
    Compatibility, ContainerDefinition, LogConfiguration, LogDriver, NetworkMode, Secret, Tag,
    TaskDefinitionField,
};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// Tag holding the [`TaskSpec::hash`] of the spec a revision was registered from.
pub const HASH_TAG: &str = "weir:spec-hash";
/// Tag marking task definitions Weir registered (the CI policy requires it on registration).
pub const MANAGED_TAG: &str = "weir:managed";
/// Name of the one container of a Weir task definition.
pub const CONTAINER: &str = "flow";
/// Bumped when the serialisation below changes meaning, so old hashes stop matching.
const LAYOUT: &str = "weir-ecs-task-definition/1";
/// How many recent revisions [`find`] looks through when the newest has another hash (a
/// run claimed just before CI registered a newer version of its deployment).
const RECENT_REVISIONS: i32 = 10;

/// Where the container's output goes: the `awslogs` driver. The stream of a task is
/// `<stream_prefix>/flow/<task id>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogSpec {
    /// CloudWatch log group, e.g. `/weir/flows`.
    pub group: String,
    /// Region of the log group.
    pub region: String,
    /// Stream prefix (the deployment's name by default).
    pub stream_prefix: String,
}

impl LogSpec {
    /// The log stream of task `task_id` (the last part of its ARN).
    pub fn stream(&self, task_id: &str) -> String {
        format!("{}/{CONTAINER}/{task_id}", self.stream_prefix)
    }
}

/// Everything that goes into a deployment's task definition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TaskSpec {
    /// The project the deployment lives in.
    pub project: String,
    /// The deployment's name, part of the task definition family.
    pub deployment: String,
    /// Container image (ideally by digest).
    pub image: String,
    /// Task CPU units (256 = ¼ vCPU).
    pub cpu: u32,
    /// Task memory in MiB.
    pub memory_mib: u32,
    /// Role ECS uses to pull the image, write logs and read the secrets.
    pub execution_role_arn: String,
    /// Role the flow's code runs as (e.g. S3 access to its result prefix).
    pub task_role_arn: Option<String>,
    /// Log configuration; without it the task's output is not kept anywhere.
    pub log: Option<LogSpec>,
    /// Environment variable → `valueFrom` (an SSM parameter name or ARN, or a Secrets
    /// Manager ARN with an optional `:json-key::`), resolved by ECS.
    pub secrets: BTreeMap<String, String>,
}

impl TaskSpec {
    /// The family: `weir-<project>-<deployment>`.
    pub fn family(&self) -> String {
        family(&self.project, &self.deployment)
    }

    /// SHA-256 (hex) of the spec's canonical JSON form.
    pub fn hash(&self) -> String {
        // Field order is declaration order and maps are sorted: the text is canonical.
        let body = serde_json::to_string(self).unwrap_or_default();
        let mut h = Sha256::new();
        h.update(LAYOUT.as_bytes());
        h.update([0]);
        h.update(body.as_bytes());
        h.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }

    fn container(&self) -> Result<ContainerDefinition, Error> {
        let mut c = ContainerDefinition::builder()
            .name(CONTAINER)
            .image(&self.image)
            // A soft reservation, not a hard limit: a per-run memory override of the task
            // still takes effect.
            .memory_reservation(i32::try_from(self.memory_mib).unwrap_or(i32::MAX))
            .essential(true);
        for (name, from) in &self.secrets {
            c = c.secrets(
                Secret::builder()
                    .name(name)
                    .value_from(from)
                    .build()
                    .map_err(Error::build)?,
            );
        }
        if let Some(log) = &self.log {
            c = c.log_configuration(
                LogConfiguration::builder()
                    .log_driver(LogDriver::Awslogs)
                    .options("awslogs-group", &log.group)
                    .options("awslogs-region", &log.region)
                    .options("awslogs-stream-prefix", &log.stream_prefix)
                    .build()
                    .map_err(Error::build)?,
            );
        }
        Ok(c.build())
    }

    fn tags(&self, hash: &str) -> Vec<Tag> {
        [
            (HASH_TAG, hash),
            (MANAGED_TAG, "true"),
            ("weir:project", &self.project),
            ("weir:deployment", &self.deployment),
        ]
        .into_iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
    }
}

/// The family of a deployment's task definitions: `weir-<project>-<deployment>`.
pub fn family(project: &str, deployment: &str) -> String {
    format!("weir-{project}-{deployment}")
}

/// A registered task definition matching a spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registered {
    /// `arn:aws:ecs:…:task-definition/<family>:<revision>`.
    pub arn: String,
    /// Whether this call registered it (false: an existing revision was reused).
    pub registered: bool,
}

/// The `awslogs` configuration of registered task definition `definition` (an ARN or
/// `family:revision`), as [`LogSpec`]; `None` without one.
pub async fn log_spec(
    ecs: &aws_sdk_ecs::Client,
    definition: &str,
) -> Result<Option<LogSpec>, Error> {
    let out = ecs
        .describe_task_definition()
        .task_definition(definition)
        .send()
        .await
        .map_err(|e| describe_error("DescribeTaskDefinition", &e))?;
    let Some(log) = out
        .task_definition()
        .and_then(|d| {
            d.container_definitions()
                .iter()
                .find(|c| c.name() == Some(CONTAINER))
        })
        .and_then(|c| c.log_configuration())
        .filter(|l| l.log_driver() == &LogDriver::Awslogs)
        .and_then(|l| l.options())
    else {
        return Ok(None);
    };
    let get = |k: &str| log.get(k).cloned();
    Ok(match (get("awslogs-group"), get("awslogs-stream-prefix")) {
        (Some(group), Some(stream_prefix)) => Some(LogSpec {
            group,
            region: get("awslogs-region").unwrap_or_default(),
            stream_prefix,
        }),
        _ => None,
    })
}

/// Finds the revision of `spec`'s family registered from the same spec (by its hash tag),
/// looking at the newest revision first, then a few recent ones. `None` when there is none.
pub async fn find(ecs: &aws_sdk_ecs::Client, spec: &TaskSpec) -> Result<Option<Registered>, Error> {
    let family = spec.family();
    let hash = spec.hash();
    if let Some(arn) = revision_with_hash(ecs, &family, &hash).await? {
        return Ok(Some(Registered {
            arn,
            registered: false,
        }));
    }
    // The newest revision is another spec: look through the recent ACTIVE ones.
    let listed = ecs
        .list_task_definitions()
        .family_prefix(&family)
        .status(aws_sdk_ecs::types::TaskDefinitionStatus::Active)
        .sort(aws_sdk_ecs::types::SortOrder::Desc)
        .max_results(RECENT_REVISIONS)
        .send()
        .await
        .map_err(|e| describe_error("ListTaskDefinitions", &e))?;
    for arn in listed.task_definition_arns() {
        if let Some(found) = revision_with_hash(ecs, arn, &hash).await? {
            return Ok(Some(Registered {
                arn: found,
                registered: false,
            }));
        }
    }
    Ok(None)
}

/// The ARN of task definition `which` (a family or `family:revision`) if it is ACTIVE and
/// tagged with `hash`.
async fn revision_with_hash(
    ecs: &aws_sdk_ecs::Client,
    which: &str,
    hash: &str,
) -> Result<Option<String>, Error> {
    let out = match ecs
        .describe_task_definition()
        .task_definition(which)
        .include(TaskDefinitionField::Tags)
        .send()
        .await
    {
        Ok(out) => out,
        // A family never registered is a ClientException ("Unable to describe task definition").
        Err(e) if is_client_exception(&e) => return Ok(None),
        Err(e) => return Err(describe_error("DescribeTaskDefinition", &e)),
    };
    let Some(td) = out.task_definition() else {
        return Ok(None);
    };
    let active = td
        .status()
        .is_none_or(|s| *s == aws_sdk_ecs::types::TaskDefinitionStatus::Active);
    let tagged = out
        .tags()
        .iter()
        .any(|t| t.key() == Some(HASH_TAG) && t.value() == Some(hash));
    Ok((active && tagged)
        .then(|| td.task_definition_arn().map(str::to_string))
        .flatten())
}

fn is_client_exception<E, R>(e: &aws_sdk_ecs::error::SdkError<E, R>) -> bool
where
    E: aws_sdk_ecs::error::ProvideErrorMetadata,
{
    e.as_service_error()
        .and_then(|s| s.code())
        .is_some_and(|c| c == "ClientException")
}

/// Registers `spec` unless a revision with its hash exists: what `weir deploy` does.
pub async fn ensure(ecs: &aws_sdk_ecs::Client, spec: &TaskSpec) -> Result<Registered, Error> {
    if let Some(found) = find(ecs, spec).await? {
        return Ok(found);
    }
    let hash = spec.hash();
    let mut req = ecs
        .register_task_definition()
        .family(spec.family())
        .network_mode(NetworkMode::Awsvpc)
        .requires_compatibilities(Compatibility::Fargate)
        .cpu(spec.cpu.to_string())
        .memory(spec.memory_mib.to_string())
        .execution_role_arn(&spec.execution_role_arn)
        .container_definitions(spec.container()?)
        .set_tags(Some(spec.tags(&hash)));
    if let Some(role) = &spec.task_role_arn {
        req = req.task_role_arn(role);
    }
    let out = req
        .send()
        .await
        .map_err(|e| describe_error("RegisterTaskDefinition", &e))?;
    let arn = out
        .task_definition()
        .and_then(|t| t.task_definition_arn())
        .ok_or_else(|| Error::Unexpected("RegisterTaskDefinition returned no ARN".into()))?;
    Ok(Registered {
        arn: arn.to_string(),
        registered: true,
    })
}

/// Checks a Fargate task size (CPU units, MiB) against the combinations AWS accepts, so
/// `weir deploy --plan` fails where `RegisterTaskDefinition` would.
pub fn check_fargate_size(cpu: u32, memory_mib: u32) -> Result<(), String> {
    let gib = |g: u32| g * 1024;
    let ok = match cpu {
        256 => [512, 1024, 2048].contains(&memory_mib),
        512 => (gib(1)..=gib(4)).contains(&memory_mib) && memory_mib.is_multiple_of(1024),
        1024 => (gib(2)..=gib(8)).contains(&memory_mib) && memory_mib.is_multiple_of(1024),
        2048 => (gib(4)..=gib(16)).contains(&memory_mib) && memory_mib.is_multiple_of(1024),
        4096 => (gib(8)..=gib(30)).contains(&memory_mib) && memory_mib.is_multiple_of(1024),
        8192 => (gib(16)..=gib(60)).contains(&memory_mib) && memory_mib.is_multiple_of(gib(4)),
        16384 => (gib(32)..=gib(120)).contains(&memory_mib) && memory_mib.is_multiple_of(gib(8)),
        _ => {
            return Err(format!(
                "cpu {cpu} is not a Fargate size: use 256, 512, 1024, 2048, 4096, 8192 or 16384 CPU units"
            ));
        }
    };
    if ok {
        return Ok(());
    }
    let allowed = match cpu {
        256 => "512, 1024 or 2048 MiB",
        512 => "1024-4096 MiB in 1024 MiB steps",
        1024 => "2048-8192 MiB in 1024 MiB steps",
        2048 => "4096-16384 MiB in 1024 MiB steps",
        4096 => "8192-30720 MiB in 1024 MiB steps",
        8192 => "16384-61440 MiB in 4096 MiB steps",
        _ => "32768-122880 MiB in 8192 MiB steps",
    };
    Err(format!(
        "memory {memory_mib} MiB does not fit cpu {cpu} on Fargate: with cpu {cpu} use {allowed}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> TaskSpec {
        TaskSpec {
            project: "dev".into(),
            deployment: "etl".into(),
            image: "weir-example-flows:dev".into(),
            cpu: 256,
            memory_mib: 512,
            execution_role_arn: "arn:aws:iam::123456789012:role/weir-flow-execution".into(),
            task_role_arn: None,
            log: None,
            secrets: BTreeMap::from([("DB_PASSWORD".into(), "/dev/db".into())]),
        }
    }

    #[test]
    fn hash_is_stable_and_covers_every_field() {
        let a = spec();
        assert_eq!(a.hash(), spec().hash());
        assert_eq!(a.hash().len(), 64);
        let mut b = spec();
        b.image = "weir-example-flows:other".into();
        assert_ne!(a.hash(), b.hash());
        let mut c = spec();
        c.secrets.insert("TOKEN".into(), "/dev/token".into());
        assert_ne!(a.hash(), c.hash());
        let mut d = spec();
        d.memory_mib = 1024;
        assert_ne!(a.hash(), d.hash());
        assert_eq!(a.family(), "weir-dev-etl");
    }

    #[test]
    fn fargate_sizes() {
        assert!(check_fargate_size(256, 512).is_ok());
        assert!(check_fargate_size(1024, 3072).is_ok());
        assert!(check_fargate_size(16384, 122880).is_ok());
        let e = check_fargate_size(256, 4096).expect_err("too much");
        assert!(e.contains("512, 1024 or 2048"), "{e}");
        let e = check_fargate_size(300, 512).expect_err("no such cpu");
        assert!(e.contains("cpu 300"), "{e}");
        assert!(check_fargate_size(8192, 20480).is_ok());
        assert!(check_fargate_size(8192, 18432).is_err());
    }
}
