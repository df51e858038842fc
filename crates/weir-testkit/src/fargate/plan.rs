//! From a described ECS task to what its container runs: image, command, environment with
//! the secrets resolved, and where its logs go — as Fargate would start it.

use super::{Error, Inner, err};
use std::collections::BTreeMap;
use weir_launcher_ecs::aws_sdk_ecs::types::{ContainerDefinition, LogDriver, Task};

/// What one task's container runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The container definition's image, pulled by the engine if it is missing.
    pub image: String,
    /// The command (the image's when empty).
    pub command: Vec<String>,
    /// The environment: the definition's, the overrides', the resolved secrets, the task env.
    pub env: BTreeMap<String, String>,
    /// CloudWatch log group and stream, with the `awslogs` driver.
    pub log: Option<(String, String)>,
}

/// The plan of `task`, reading its task definition and resolving its secrets.
pub(crate) async fn plan(inner: &Inner, task: &Task) -> Result<Plan, Error> {
    let def_arn = task
        .task_definition_arn()
        .ok_or_else(|| err("the task has no task definition"))?;
    let out = inner
        .ecs
        .describe_task_definition()
        .task_definition(def_arn)
        .send()
        .await
        .map_err(|e| err(format!("DescribeTaskDefinition {def_arn}: {e}")))?;
    let def = out
        .task_definition()
        .ok_or_else(|| err(format!("no task definition {def_arn}")))?;
    let container = def
        .container_definitions()
        .iter()
        .find(|c| c.essential() != Some(false))
        .ok_or_else(|| {
            err(format!(
                "task definition {def_arn} has no essential container"
            ))
        })?;
    let name = container.name().unwrap_or_default();
    let over = task
        .overrides()
        .into_iter()
        .flat_map(|o| o.container_overrides())
        .find(|o| o.name() == Some(name));
    let mut env: BTreeMap<String, String> = container
        .environment()
        .iter()
        .filter_map(|kv| Some((kv.name()?.to_string(), kv.value()?.to_string())))
        .collect();
    let mut command = container.command().to_vec();
    if let Some(o) = over {
        if !o.command().is_empty() {
            command = o.command().to_vec();
        }
        for kv in o.environment() {
            if let (Some(k), Some(v)) = (kv.name(), kv.value()) {
                env.insert(k.to_string(), v.to_string());
            }
        }
    }
    for s in container.secrets() {
        env.insert(s.name().to_string(), resolve(inner, s.value_from()).await?);
    }
    env.extend(inner.options.task_env.clone());
    let task_id = task
        .task_arn()
        .and_then(|a| a.rsplit('/').next())
        .unwrap_or_default();
    Ok(Plan {
        image: container.image().unwrap_or_default().to_string(),
        command,
        env,
        log: log_target(container, task_id),
    })
}

/// The `awslogs` group and stream of the container in task `task_id`.
fn log_target(c: &ContainerDefinition, task_id: &str) -> Option<(String, String)> {
    let log = c.log_configuration()?;
    if log.log_driver() != &LogDriver::Awslogs {
        return None;
    }
    let options = log.options()?;
    let group = options.get("awslogs-group")?.clone();
    let prefix = options.get("awslogs-stream-prefix")?;
    Some((
        group,
        format!("{prefix}/{}/{task_id}", c.name().unwrap_or_default()),
    ))
}

/// The value of one `valueFrom`: an SSM parameter (name or ARN) or a Secrets Manager secret
/// ARN with an optional `:json-key:version-stage:version-id` suffix.
async fn resolve(inner: &Inner, value_from: &str) -> Result<String, Error> {
    let failed = |e: weir_secrets_aws::Error| {
        err(format!(
            "ResourceInitializationError: unable to pull secrets: {e}"
        ))
    };
    if let Some(rest) = value_from.strip_prefix("arn:") {
        let parts: Vec<&str> = rest.splitn(6, ':').collect();
        if parts.get(1) == Some(&"secretsmanager") && parts.len() == 6 {
            // `secret:NAME[:key:stage:id]`
            let mut tail = parts[5].split(':');
            let (kind, name) = (tail.next(), tail.next());
            let key = tail.next().filter(|k| !k.is_empty());
            let (Some("secret"), Some(name)) = (kind, name) else {
                return Err(err(format!(
                    "malformed Secrets Manager valueFrom {value_from}"
                )));
            };
            let arn = format!("arn:{}:secret:{name}", parts[..5].join(":"));
            let reference = match key {
                Some(k) => format!("{arn}#{k}"),
                None => arn,
            };
            return inner.secrets.get(&reference).await.map_err(failed);
        }
        if parts.get(1) == Some(&"ssm") && parts.len() == 6 {
            let name = parts[5].strip_prefix("parameter").unwrap_or(parts[5]);
            return inner.ssm.get(name).await.map_err(failed);
        }
        return Err(err(format!("unsupported valueFrom {value_from}")));
    }
    inner.ssm.get(value_from).await.map_err(failed)
}
