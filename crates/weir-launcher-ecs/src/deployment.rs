//! From a deployment to its task definition spec: the one derivation `weir deploy` (which
//! registers) and the agent (which finds by hash) share, so both compute the same hash.

use crate::launcher::Capacity;
use crate::taskdef::{LogSpec, TaskSpec};
use std::collections::BTreeMap;
use weir_core::infrastructure::{EcsInfrastructure, parse_memory};
use weir_core::secret::{SecretRef, SecretScheme};

/// Default task size: ¼ vCPU and 512 MiB.
const DEFAULT_CPU: u32 = 256;
const DEFAULT_MEMORY_MIB: u32 = 512;

/// The task definition spec of deployment `project/deployment` with ECS infrastructure
/// `infra` and `secrets` (variable → reference); `region` is where its logs go. Errors say
/// what to change in `weir.toml`.
pub fn task_spec(
    project: &str,
    deployment: &str,
    infra: &EcsInfrastructure,
    secrets: &BTreeMap<String, String>,
    region: &str,
) -> Result<TaskSpec, String> {
    let cpu = match infra.cpu {
        Some(c) => (c * 1024.0).round() as u32,
        None => DEFAULT_CPU,
    };
    let memory_mib = match &infra.memory {
        Some(m) => u32::try_from(parse_memory(m)? >> 20).unwrap_or(u32::MAX),
        None => DEFAULT_MEMORY_MIB,
    };
    crate::taskdef::check_fargate_size(cpu, memory_mib).map_err(|e| {
        format!(
            "{e} (infrastructure cpu = {}, memory)",
            f64::from(cpu) / 1024.0
        )
    })?;
    let execution_role_arn = infra.execution_role_arn.clone().ok_or_else(|| {
        "ECS infrastructure needs execution_role_arn: the role ECS uses to pull the image, \
         write logs and inject secrets (see deploy/iam/ecs-task-execution.json)"
            .to_string()
    })?;
    let mut value_from = BTreeMap::new();
    for (name, reference) in secrets {
        value_from.insert(name.clone(), value_from_of(name, reference)?);
    }
    Ok(TaskSpec {
        project: project.to_string(),
        deployment: deployment.to_string(),
        image: infra.image.clone(),
        cpu,
        memory_mib,
        execution_role_arn,
        task_role_arn: infra.task_role_arn.clone(),
        log: infra.log_group.as_ref().map(|group| LogSpec {
            group: group.clone(),
            region: region.to_string(),
            stream_prefix: deployment.to_string(),
        }),
        secrets: value_from,
    })
}

/// The capacity a deployment asks for.
pub fn capacity(infra: &EcsInfrastructure) -> Capacity {
    match infra.capacity.as_deref() {
        Some("FARGATE_SPOT") => Capacity::FargateSpot,
        _ => Capacity::Fargate,
    }
}

/// The `valueFrom` of one secret reference: an SSM parameter name or ARN as is; a Secrets
/// Manager secret by ARN, with `#key` as ECS's `:key::` suffix.
fn value_from_of(name: &str, reference: &str) -> Result<String, String> {
    let r = SecretRef::parse(reference).map_err(|e| format!("secret {name}: {e}"))?;
    match r.scheme {
        SecretScheme::Ssm => Ok(r.path.to_string()),
        SecretScheme::SecretsManager => {
            let (secret, key) = match r.path.split_once('#') {
                Some((s, k)) => (s, Some(k)),
                None => (r.path, None),
            };
            if !secret.starts_with("arn:") {
                return Err(format!(
                    "secret {name}: on ECS a Secrets Manager secret is named by its ARN (ECS \
                     resolves it): write secretsmanager:arn:aws:secretsmanager:REGION:ACCOUNT:secret:{secret}{}",
                    key.map(|k| format!("#{k}")).unwrap_or_default()
                ));
            }
            Ok(match key {
                Some(k) => format!("{secret}:{k}::"),
                None => secret.to_string(),
            })
        }
        SecretScheme::Env | SecretScheme::File => Err(format!(
            "secret {name}: {reference:?} is read from the agent's machine, which an ECS task \
             cannot see: store it in SSM Parameter Store (ssm:/path) or Secrets Manager"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn infra() -> EcsInfrastructure {
        EcsInfrastructure {
            image: "flows:dev".into(),
            cpu: Some(0.5),
            memory: Some("1Gi".into()),
            execution_role_arn: Some("arn:aws:iam::1:role/e".into()),
            task_role_arn: None,
            log_group: Some("/weir/flows".into()),
            capacity: None,
        }
    }

    #[test]
    fn secrets_become_value_from_references() {
        let secrets = BTreeMap::from([
            ("A".to_string(), "ssm:/DataFlows/Dev/A".to_string()),
            (
                "B".to_string(),
                "secretsmanager:arn:aws:secretsmanager:us-east-1:1:secret:Shared/DockerHub#password".to_string(),
            ),
        ]);
        let spec = task_spec("dev", "etl", &infra(), &secrets, "us-east-1").expect("spec");
        assert_eq!(spec.secrets["A"], "/DataFlows/Dev/A");
        assert_eq!(
            spec.secrets["B"],
            "arn:aws:secretsmanager:us-east-1:1:secret:Shared/DockerHub:password::"
        );
        assert_eq!((spec.cpu, spec.memory_mib), (512, 1024));
        assert_eq!(spec.log.expect("log").stream("abc"), "etl/flow/abc");
    }

    #[test]
    fn what_ecs_cannot_do_is_refused_with_the_fix() {
        let env = BTreeMap::from([("A".to_string(), "env:A".to_string())]);
        let e = task_spec("dev", "etl", &infra(), &env, "r").expect_err("env refused");
        assert!(e.contains("ssm:/path"), "{e}");
        let sm = BTreeMap::from([("A".to_string(), "secretsmanager:Shared/X#k".to_string())]);
        let e = task_spec("dev", "etl", &infra(), &sm, "r").expect_err("name refused");
        assert!(e.contains("by its ARN"), "{e}");
        let mut big = infra();
        big.memory = Some("16Gi".into());
        let e = task_spec("dev", "etl", &big, &BTreeMap::new(), "r").expect_err("size");
        assert!(e.contains("does not fit cpu 512"), "{e}");
        let mut no_role = infra();
        no_role.execution_role_arn = None;
        assert!(task_spec("dev", "etl", &no_role, &BTreeMap::new(), "r").is_err());
    }
}
