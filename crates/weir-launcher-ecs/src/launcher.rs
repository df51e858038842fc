//! Starting one attempt of a flow run as an ECS task, and taking over tasks after a restart.
//!
//! - The task definition is found by its spec's hash ([`taskdef::find`], cached per hash):
//!   the agent never registers one.
//! - `RunTask` gets per-run overrides (command, environment, cpu, memory), `awsvpc` with the
//!   agent's subnets and security groups (`assignPublicIp` DISABLED unless asked), FARGATE or
//!   FARGATE_SPOT, tags naming run, attempt, project and deployment, `startedBy` derived from
//!   run and attempt ([`started_by`]) and a `clientToken`, so the SDK's own retries of one
//!   call cannot start two tasks.
//! - `failures[]` meaning "no capacity right now" are retried with backoff until the start
//!   deadline; any other failure fails the attempt, quoting AWS.
//! - A restarted agent finds the task of an attempt with `ListTasks(startedBy)`
//!   ([`EcsLauncher::adopt`]); a new agent instance replacing another finds every Weir task
//!   of the cluster by its tags ([`EcsLauncher::discover`]).

use crate::reconciler::{Reconciler, TaskEnd};
use crate::status::{FailureKind, classify_failure};
use crate::taskdef::{self, LogSpec, TaskSpec};
use crate::{Error, describe_error};
use aws_sdk_ecs::types::{
    AssignPublicIp, AwsVpcConfiguration, CapacityProviderStrategyItem, ContainerOverride,
    DesiredStatus, KeyValuePair, NetworkConfiguration, Tag, TaskField, TaskOverride,
};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Tag naming the flow run of a task.
pub const RUN_TAG: &str = "weir:run-id";
/// Tag naming the attempt of a task.
pub const ATTEMPT_TAG: &str = "weir:attempt";
/// Tag naming the work queue the run came from (which agents may take the task over).
pub const QUEUE_TAG: &str = "weir:queue";
/// Tag saying whether the task runs a plain command (`true`; `false` for a flow): an agent
/// that discovers the task settles it by its exit status then, without reading the
/// deployment (its key may not). Tasks without it are flows.
pub const PLAIN_TAG: &str = "weir:plain-command";

/// Agent-side settings: where tasks run.
#[derive(Debug, Clone)]
pub struct EcsOptions {
    /// Cluster name or ARN.
    pub cluster: String,
    /// Subnets of the tasks' network interfaces (private ones, normally).
    pub subnets: Vec<String>,
    /// Security groups of the tasks' network interfaces.
    pub security_groups: Vec<String>,
    /// Give tasks a public IP (needed only in public subnets without NAT).
    pub assign_public_ip: bool,
    /// A task not RUNNING this long after `RunTask` is stopped and its run Crashed; capacity
    /// failures are retried until then.
    pub start_deadline: Duration,
    /// Time between two `DescribeTasks` rounds.
    pub poll_every: Duration,
    /// First wait after a capacity failure (doubled each time, at most 30 s).
    pub capacity_backoff: Duration,
}

impl Default for EcsOptions {
    fn default() -> Self {
        EcsOptions {
            cluster: "weir".into(),
            subnets: Vec::new(),
            security_groups: Vec::new(),
            assign_public_ip: false,
            start_deadline: Duration::from_secs(600),
            poll_every: Duration::from_secs(5),
            capacity_backoff: Duration::from_secs(1),
        }
    }
}

/// Which Fargate capacity a run uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Capacity {
    /// On-demand Fargate (`launchType FARGATE`).
    #[default]
    Fargate,
    /// Spot (`capacityProviderStrategy FARGATE_SPOT`): cheaper, may be interrupted.
    FargateSpot,
}

/// One attempt to start.
#[derive(Debug, Clone)]
pub struct RunRequest {
    /// The flow run the task runs (its `weir:run-id` tag).
    pub flow_run_id: Uuid,
    /// The claim's attempt (its `weir:attempt` tag; with the run, its `startedBy`).
    pub attempt: u32,
    /// Its work queue (tagged, so replacing agents of the same queues take the task over).
    pub queue: String,
    /// Whether it runs a plain command (its `weir:plain-command` tag).
    pub plain_command: bool,
    /// The deployment's task definition spec.
    pub task: TaskSpec,
    /// FARGATE or FARGATE_SPOT.
    pub capacity: Capacity,
    /// The container's command (overrides the image's).
    pub command: Vec<String>,
    /// Environment added for this run: run context and the per-run token, never a secret
    /// value (those are `valueFrom` references in the task definition).
    pub env: BTreeMap<String, String>,
    /// Per-run CPU units, overriding the task definition's.
    pub cpu: Option<u32>,
    /// Per-run memory in MiB, overriding the task definition's.
    pub memory_mib: Option<u32>,
}

/// `startedBy` of an attempt's task: the run id's 32 hex digits, `-`, the attempt in base
/// 36 (three digits: attempts wrap after 46,655) — at most 36 characters of `[0-9a-z-]`, as
/// ECS allows, and the same after a restart.
pub fn started_by(run: Uuid, attempt: u32) -> String {
    let mut n = attempt % 46_656;
    let mut digits = Vec::new();
    loop {
        digits.push(char::from_digit(n % 36, 36).unwrap_or('0'));
        n /= 36;
        if n == 0 {
            break;
        }
    }
    let attempt: String = digits.iter().rev().collect();
    format!("{}-{attempt}", run.simple())
}

/// `clientToken` of one `RunTask` try (≤ 64 characters): the same for the SDK's retries of
/// that call, new for a capacity retry.
fn client_token(run: Uuid, attempt: u32, try_no: u32) -> String {
    format!("weir-{}-{attempt}-{try_no}", run.simple())
}

/// Counters of the launcher's calls (for benchmarks and logs).
#[derive(Debug, Default)]
pub struct LaunchCalls {
    /// `RunTask` calls made, each retry after a capacity shortage counted.
    pub run_task: AtomicU64,
    /// `DescribeTaskDefinition` and `ListTaskDefinitions` calls made to find definitions.
    pub find_task_definition: AtomicU64,
}

/// A task started (or taken over) and watched.
#[derive(Debug)]
pub struct StartedTask {
    /// The task's ARN, as `RunTask` or `ListTasks` returned it.
    pub arn: String,
    /// Its end, once ECS reports it STOPPED.
    pub end: TaskEnd,
}

/// A Weir task found in the cluster by [`EcsLauncher::discover`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundTask {
    /// The task's ARN, which `StopTask` and `DescribeTasks` take.
    pub arn: String,
    /// The flow run it runs, from its `weir:run-id` tag.
    pub flow_run_id: Uuid,
    /// The attempt it runs, from its `weir:attempt` tag.
    pub attempt: u32,
    /// Its work queue, from its `weir:queue` tag (`None`: untagged, an older task).
    pub queue: Option<String>,
    /// Whether it runs a plain command, from its `weir:plain-command` tag (false without).
    pub plain_command: bool,
    /// Its task definition's ARN.
    pub definition: Option<String>,
}

/// Starts and watches ECS tasks for one agent.
pub struct EcsLauncher {
    ecs: aws_sdk_ecs::Client,
    options: EcsOptions,
    reconciler: Reconciler,
    definitions: Mutex<HashMap<String, String>>,
    /// Task definition ARN → its log configuration, for tasks taken over.
    log_specs: Mutex<HashMap<String, Option<LogSpec>>>,
    /// Held while a definition or log configuration is looked up, so launches that start
    /// together make one lookup and the others find its answer.
    lookup: tokio::sync::Mutex<()>,
    calls: LaunchCalls,
}

impl EcsLauncher {
    /// A launcher for `options.cluster`, starting its reconciler.
    pub fn new(ecs: aws_sdk_ecs::Client, options: EcsOptions) -> Arc<EcsLauncher> {
        let reconciler = Reconciler::start(
            ecs.clone(),
            options.cluster.clone(),
            options.poll_every,
            options.start_deadline,
        );
        Arc::new(EcsLauncher {
            ecs,
            options,
            reconciler,
            definitions: Mutex::new(HashMap::new()),
            log_specs: Mutex::new(HashMap::new()),
            lookup: tokio::sync::Mutex::new(()),
            calls: LaunchCalls::default(),
        })
    }

    /// The reconciler watching this launcher's tasks.
    pub fn reconciler(&self) -> &Reconciler {
        &self.reconciler
    }

    /// The calls made so far.
    pub fn calls(&self) -> &LaunchCalls {
        &self.calls
    }

    /// The cluster, network and timings this launcher was made with.
    pub fn options(&self) -> &EcsOptions {
        &self.options
    }

    /// The registered task definition of `spec` (by hash), found once per hash.
    pub async fn task_definition(&self, spec: &TaskSpec) -> Result<String, Error> {
        let hash = spec.hash();
        if let Some(arn) = lock(&self.definitions).get(&hash) {
            return Ok(arn.clone());
        }
        let _one = self.lookup.lock().await;
        if let Some(arn) = lock(&self.definitions).get(&hash) {
            return Ok(arn.clone());
        }
        self.calls
            .find_task_definition
            .fetch_add(1, Ordering::Relaxed);
        let found = taskdef::find(&self.ecs, spec)
            .await?
            .ok_or_else(|| Error::NotRegistered {
                family: spec.family(),
                hash: hash.clone(),
            })?;
        lock(&self.definitions).insert(hash, found.arn.clone());
        Ok(found.arn)
    }

    /// Starts one attempt and watches its task.
    pub async fn run(&self, req: &RunRequest) -> Result<StartedTask, Error> {
        let definition = self.task_definition(&req.task).await?;
        let started = Instant::now();
        let mut backoff = self.options.capacity_backoff;
        for try_no in 1u32.. {
            self.calls.run_task.fetch_add(1, Ordering::Relaxed);
            let out = self
                .run_task_request(req, &definition, try_no)?
                .send()
                .await
                .map_err(|e| describe_error("RunTask", &e))?;
            if let Some(arn) = out.tasks().first().and_then(|t| t.task_arn()) {
                let end = self.reconciler.watch(arn, started.elapsed());
                return Ok(StartedTask {
                    arn: arn.to_string(),
                    end,
                });
            }
            let reasons: Vec<FailureKind> = out.failures().iter().map(classify_failure).collect();
            let permanent: Vec<&str> = reasons
                .iter()
                .filter_map(|r| match r {
                    FailureKind::Permanent(t) => Some(t.as_str()),
                    FailureKind::Capacity(_) => None,
                })
                .collect();
            if !permanent.is_empty() || reasons.is_empty() {
                let why = if reasons.is_empty() {
                    "RunTask started no task and gave no reason".to_string()
                } else {
                    permanent.join("; ")
                };
                return Err(Error::RunTaskFailed(why));
            }
            let text: Vec<&str> = reasons
                .iter()
                .map(|r| match r {
                    FailureKind::Capacity(t) | FailureKind::Permanent(t) => t.as_str(),
                })
                .collect();
            if started.elapsed() + backoff > self.options.start_deadline {
                return Err(Error::RunTaskFailed(format!(
                    "no capacity within the start deadline of {}s: {}",
                    self.options.start_deadline.as_secs(),
                    text.join("; ")
                )));
            }
            tracing::info!(message = "no ECS capacity; retrying", run = %req.flow_run_id, try_no, reason = %text.join("; "), retry_in_ms = backoff.as_millis() as u64);
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(30));
        }
        Err(Error::RunTaskFailed("gave up".into()))
    }

    fn run_task_request(
        &self,
        req: &RunRequest,
        definition: &str,
        try_no: u32,
    ) -> Result<aws_sdk_ecs::operation::run_task::builders::RunTaskFluentBuilder, Error> {
        let o = &self.options;
        let vpc = AwsVpcConfiguration::builder()
            .set_subnets(Some(o.subnets.clone()))
            .set_security_groups(Some(o.security_groups.clone()))
            .assign_public_ip(if o.assign_public_ip {
                AssignPublicIp::Enabled
            } else {
                AssignPublicIp::Disabled
            })
            .build()
            .map_err(Error::build)?;
        let mut container = ContainerOverride::builder()
            .name(taskdef::CONTAINER)
            .set_command((!req.command.is_empty()).then(|| req.command.clone()));
        for (k, v) in &req.env {
            container = container.environment(KeyValuePair::builder().name(k).value(v).build());
        }
        let mut overrides = TaskOverride::builder().container_overrides(container.build());
        if let Some(cpu) = req.cpu {
            overrides = overrides.cpu(cpu.to_string());
        }
        if let Some(mem) = req.memory_mib {
            overrides = overrides.memory(mem.to_string());
        }
        let tag = |k: &str, v: &str| Tag::builder().key(k).value(v).build();
        let mut call = self
            .ecs
            .run_task()
            .cluster(&o.cluster)
            .task_definition(definition)
            .count(1)
            .started_by(started_by(req.flow_run_id, req.attempt))
            .client_token(client_token(req.flow_run_id, req.attempt, try_no))
            .network_configuration(
                NetworkConfiguration::builder()
                    .awsvpc_configuration(vpc)
                    .build(),
            )
            .overrides(overrides.build())
            .tags(tag(RUN_TAG, &req.flow_run_id.to_string()))
            .tags(tag(ATTEMPT_TAG, &req.attempt.to_string()))
            .tags(tag(QUEUE_TAG, &req.queue))
            .tags(tag(
                PLAIN_TAG,
                if req.plain_command { "true" } else { "false" },
            ))
            .tags(tag("weir:project", &req.task.project))
            .tags(tag("weir:deployment", &req.task.deployment));
        call = match req.capacity {
            Capacity::Fargate => call.launch_type(aws_sdk_ecs::types::LaunchType::Fargate),
            Capacity::FargateSpot => call.capacity_provider_strategy(
                CapacityProviderStrategyItem::builder()
                    .capacity_provider("FARGATE_SPOT")
                    .weight(1)
                    .build()
                    .map_err(Error::build)?,
            ),
        };
        Ok(call)
    }

    /// Takes over the task of `run`/`attempt` after a restart, found by its `startedBy`
    /// (running or recently stopped). `None`: no such task (it was never started).
    pub async fn adopt(&self, run: Uuid, attempt: u32) -> Result<Option<StartedTask>, Error> {
        let by = started_by(run, attempt);
        for status in [DesiredStatus::Running, DesiredStatus::Stopped] {
            let out = self
                .ecs
                .list_tasks()
                .cluster(&self.options.cluster)
                .started_by(&by)
                .desired_status(status)
                .send()
                .await
                .map_err(|e| describe_error("ListTasks", &e))?;
            if let Some(arn) = out.task_arns().first() {
                return Ok(Some(self.watch(arn)));
            }
        }
        Ok(None)
    }

    /// The log configuration of task definition `definition` (read once per definition), for
    /// the CloudWatch tail of a task taken over. `None` when it has none or cannot be read.
    pub async fn log_spec(&self, definition: &str) -> Option<LogSpec> {
        if let Some(known) = lock(&self.log_specs).get(definition) {
            return known.clone();
        }
        let _one = self.lookup.lock().await;
        if let Some(known) = lock(&self.log_specs).get(definition) {
            return known.clone();
        }
        match taskdef::log_spec(&self.ecs, definition).await {
            Ok(log) => {
                lock(&self.log_specs).insert(definition.to_string(), log.clone());
                log
            }
            Err(error) => {
                tracing::warn!(message = "cannot read the task definition's log configuration", %definition, %error);
                None
            }
        }
    }

    /// The log configuration of task `arn`'s definition (see [`log_spec`](Self::log_spec)).
    pub async fn log_spec_of_task(&self, arn: &str) -> Option<LogSpec> {
        let out = self
            .ecs
            .describe_tasks()
            .cluster(&self.options.cluster)
            .tasks(arn)
            .send()
            .await
            .ok()?;
        let definition = out.tasks().first()?.task_definition_arn()?.to_string();
        self.log_spec(&definition).await
    }

    /// Watches a task found in the cluster (see [`discover`](Self::discover)).
    pub fn watch(&self, arn: &str) -> StartedTask {
        StartedTask {
            arn: arn.to_string(),
            end: self.reconciler.watch(arn, Duration::ZERO),
        }
    }

    /// Every Weir task of the cluster (running, or stopped within the hour ECS keeps them),
    /// by its tags: how a new agent instance takes over from the one it replaces.
    pub async fn discover(&self) -> Result<Vec<FoundTask>, Error> {
        let mut arns = Vec::new();
        for status in [DesiredStatus::Running, DesiredStatus::Stopped] {
            let mut token = None;
            loop {
                let out = self
                    .ecs
                    .list_tasks()
                    .cluster(&self.options.cluster)
                    .desired_status(status.clone())
                    .set_next_token(token)
                    .send()
                    .await
                    .map_err(|e| describe_error("ListTasks", &e))?;
                arns.extend(out.task_arns().iter().cloned());
                token = out.next_token().map(str::to_string);
                if token.is_none() {
                    break;
                }
            }
        }
        let mut found = Vec::new();
        for batch in arns.chunks(crate::reconciler::DESCRIBE_BATCH) {
            for task in &self.described_with_tags(batch).await? {
                let tag = |k: &str| {
                    task.tags()
                        .iter()
                        .find(|t| t.key() == Some(k))
                        .and_then(|t| t.value())
                };
                let run = tag(RUN_TAG).and_then(|r| Uuid::parse_str(r).ok());
                let attempt = tag(ATTEMPT_TAG).and_then(|a| a.parse().ok());
                if let (Some(arn), Some(flow_run_id), Some(attempt)) =
                    (task.task_arn(), run, attempt)
                {
                    found.push(FoundTask {
                        arn: arn.to_string(),
                        flow_run_id,
                        attempt,
                        queue: tag(QUEUE_TAG).map(str::to_string),
                        plain_command: tag(PLAIN_TAG) == Some("true"),
                        definition: task.task_definition_arn().map(str::to_string),
                    });
                }
            }
        }
        Ok(found)
    }

    /// `DescribeTasks` of `arns` with their tags. A task Weir started (its `startedBy` has
    /// Weir's shape) always carries tags, so such a task answered without any is asked for
    /// again, up to [`TAG_ASKS`] times in all: an answer missing them would leave the task to
    /// no agent. (moto's server, which the tests run against, drops the tags of an answer now
    /// and then when other `DescribeTasks` calls arrive at the same time.)
    async fn described_with_tags(
        &self,
        arns: &[String],
    ) -> Result<Vec<aws_sdk_ecs::types::Task>, Error> {
        let mut tasks = Vec::new();
        let mut ask: Vec<String> = arns.to_vec();
        for asked in 1..=TAG_ASKS {
            let out = self
                .ecs
                .describe_tasks()
                .cluster(&self.options.cluster)
                .set_tasks(Some(ask.clone()))
                .include(TaskField::Tags)
                .send()
                .await
                .map_err(|e| describe_error("DescribeTasks", &e))?;
            ask.clear();
            for task in out.tasks() {
                let untagged =
                    task.tags().is_empty() && task.started_by().is_some_and(weir_started);
                match task.task_arn() {
                    Some(arn) if untagged && asked < TAG_ASKS => ask.push(arn.to_string()),
                    _ => tasks.push(task.clone()),
                }
            }
            if ask.is_empty() {
                break;
            }
        }
        Ok(tasks)
    }
}

/// How many times discovery asks for a Weir task's tags before taking the answer as it is.
const TAG_ASKS: u32 = 3;

/// Whether `started_by` has the shape [`started_by`] gives: 32 hex digits, `-`, base 36.
fn weir_started(started_by: &str) -> bool {
    started_by.split_once('-').is_some_and(|(run, attempt)| {
        run.len() == 32
            && run.bytes().all(|b| b.is_ascii_hexdigit())
            && !attempt.is_empty()
            && attempt
                .bytes()
                .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
    })
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn started_by_fits_ecs_limits() {
        let run = Uuid::now_v7();
        for attempt in [1, 35, 36, 999, 46_655] {
            let s = started_by(run, attempt);
            assert!(s.len() <= 36, "{s}");
            assert!(s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
            assert_eq!(s, started_by(run, attempt));
        }
        assert_ne!(started_by(run, 1), started_by(run, 2));
        assert!(weir_started(&started_by(run, 46_655)));
        assert!(!weir_started("ecs-svc/1234"));
        assert!(!weir_started("someone-else"));
        assert!(started_by(run, 36).ends_with("-10"));
        assert!(client_token(run, 46_655, 99).len() <= 64);
    }
}
