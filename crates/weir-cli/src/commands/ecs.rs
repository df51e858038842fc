//! ECS in the CLI: `weir deploy` checks and registers the task definitions of `type = "ecs"`
//! deployments (by content hash: an unchanged one is reused, never registered again), and
//! `weir agent --launchers ecs` builds the ECS launcher. Built with the `ecs` feature only.

use crate::cli::AgentArgs;
use anyhow::Result;
use std::sync::Arc;
use std::time::Duration;
use weir_core::api::DeploymentSpec;
use weir_core::infrastructure::Infrastructure;
use weir_launcher_ecs::{Clients, EcsLauncher, EcsOptions, agent::AgentLauncher, taskdef};

/// Checks every ECS deployment's task definition and, unless `plan`, registers those not
/// registered yet. Returns the errors (nothing registered then) or the lines to print.
pub async fn task_definitions(
    project: &str,
    deployments: &[(String, DeploymentSpec)],
    plan: bool,
) -> Result<Vec<String>, Vec<String>> {
    let ecs: Vec<_> = deployments
        .iter()
        .filter_map(|(name, spec)| match &spec.infrastructure {
            Infrastructure::Ecs(infra) => Some((name, infra, &spec.secrets)),
            _ => None,
        })
        .collect();
    if ecs.is_empty() {
        return Ok(Vec::new());
    }
    let config = weir_secrets_aws::config_loader().load().await;
    let region = config.region().map(|r| r.to_string()).unwrap_or_default();
    let mut specs = Vec::new();
    let mut errors = Vec::new();
    for (name, infra, secrets) in ecs {
        match weir_launcher_ecs::deployment::task_spec(project, name, infra, secrets, &region) {
            Ok(s) => specs.push(s),
            Err(e) => errors.push(format!("deployment {name:?}: {e}")),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let clients = Clients::new(&config);
    let mut lines = Vec::new();
    for spec in specs {
        let found = if plan {
            taskdef::find(&clients.ecs, &spec).await
        } else {
            taskdef::ensure(&clients.ecs, &spec).await.map(Some)
        };
        match found {
            Ok(Some(r)) if r.registered => {
                lines.push(format!("task definition {} registered", r.arn))
            }
            Ok(Some(r)) => lines.push(format!("task definition {} unchanged", r.arn)),
            Ok(None) => lines.push(format!(
                "task definition of family {} would be registered (hash {})",
                spec.family(),
                &spec.hash()[..12]
            )),
            Err(e) => errors.push(format!("deployment {:?}: {e}", spec.deployment)),
        }
    }
    if errors.is_empty() {
        Ok(lines)
    } else {
        Err(errors)
    }
}

/// The agent's ECS launcher, from `--ecs-*` options and the default AWS chain.
pub async fn launcher(args: &AgentArgs) -> Result<Arc<AgentLauncher>> {
    if args.ecs_subnets.is_empty() || args.ecs_security_groups.is_empty() {
        anyhow::bail!(
            "--launchers ecs needs --ecs-subnets and --ecs-security-groups: the private subnets \
             and security groups of the flow tasks' network interfaces"
        );
    }
    let config = weir_secrets_aws::config_loader().load().await;
    let region = config.region().map(|r| r.to_string()).unwrap_or_default();
    let clients = Clients::new(&config);
    let options = EcsOptions {
        cluster: args.ecs_cluster.clone(),
        subnets: args.ecs_subnets.clone(),
        security_groups: args.ecs_security_groups.clone(),
        assign_public_ip: args.ecs_assign_public_ip,
        start_deadline: Duration::from_secs(args.ecs_start_deadline_s),
        poll_every: Duration::from_millis(args.ecs_poll_ms),
        ..EcsOptions::default()
    };
    Ok(Arc::new(AgentLauncher::new(
        EcsLauncher::new(clients.ecs, options),
        clients.logs,
        region,
    )))
}
