//! Where a deployment's runs execute: the `infrastructure` of a deployment spec, and the
//! kinds of infrastructure an agent can launch.
//!
//! A deployment names one kind (`process`, `docker`, `ecs`) with that kind's settings. An
//! agent registers the kinds it has launchers for, and the server hands a run only to an agent
//! that can launch the run's kind.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// A kind of infrastructure: what an agent's launcher can start.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum InfrastructureKind {
    /// A local child process of the agent.
    Process,
    /// A container on the agent's Docker engine.
    Docker,
    /// An AWS ECS task.
    Ecs,
}

impl InfrastructureKind {
    /// Every kind, in a stable order.
    pub const ALL: [InfrastructureKind; 3] = [Self::Process, Self::Docker, Self::Ecs];

    /// The name used in `weir.toml`, on the command line and in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Process => "process",
            Self::Docker => "docker",
            Self::Ecs => "ecs",
        }
    }
}

impl fmt::Display for InfrastructureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not an infrastructure kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown infrastructure type {0:?}: expected process, docker or ecs")]
pub struct UnknownKind(pub String);

impl FromStr for InfrastructureKind {
    type Err = UnknownKind;
    fn from_str(s: &str) -> Result<Self, UnknownKind> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| UnknownKind(s.to_string()))
    }
}

/// Where a deployment's runs execute, with the settings of that kind. Written as a table with
/// a `type` key: `{ "type": "docker", "image": "flows:dev" }`. A spec stored before this
/// field existed reads as [`Infrastructure::Process`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Infrastructure {
    /// A child process of the agent, running the deployment's `command`.
    #[default]
    Process,
    /// A container on the agent's Docker engine.
    Docker(DockerInfrastructure),
    /// An AWS ECS task.
    Ecs(EcsInfrastructure),
}

impl Infrastructure {
    /// Its kind.
    pub fn kind(&self) -> InfrastructureKind {
        match self {
            Self::Process => InfrastructureKind::Process,
            Self::Docker(_) => InfrastructureKind::Docker,
            Self::Ecs(_) => InfrastructureKind::Ecs,
        }
    }

    /// Whether it is the default, a local process (left out of serialized specs, so specs
    /// written before infrastructure existed compare equal).
    pub fn is_process(&self) -> bool {
        matches!(self, Self::Process)
    }

    /// Its settings beyond the kind, as (name, value) in a stable order, for people to read
    /// (`weir deployments show`, the UI). Defaults are shown as what they mean.
    pub fn settings(&self) -> Vec<(&'static str, String)> {
        let mut v = Vec::new();
        match self {
            Self::Process => {}
            Self::Docker(d) => {
                v.push(("image", d.image.clone()));
                if let Some(c) = d.cpu {
                    v.push(("cpu", c.to_string()));
                }
                if let Some(m) = &d.memory {
                    v.push(("memory", m.clone()));
                }
                let network = d.network.clone().unwrap_or_else(|| {
                    "default (host for a server on loopback, else the engine's)".into()
                });
                v.push(("network", network));
                if !d.env.is_empty() {
                    let env: Vec<String> = d.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    v.push(("env", env.join(", ")));
                }
                if !d.volumes.is_empty() {
                    v.push(("volumes", d.volumes.join(", ")));
                }
                v.push(("pull", d.pull.as_str().into()));
                v.push(("init", d.init.to_string()));
            }
            Self::Ecs(e) => {
                v.push(("image", e.image.clone()));
                if let Some(c) = e.cpu {
                    v.push(("cpu", c.to_string()));
                }
                if let Some(m) = &e.memory {
                    v.push(("memory", m.clone()));
                }
            }
        }
        v
    }

    /// The container image, for the kinds that run one.
    pub fn image(&self) -> Option<&str> {
        match self {
            Self::Process => None,
            Self::Docker(d) => Some(&d.image),
            Self::Ecs(e) => Some(&e.image),
        }
    }
}

/// When the Docker launcher pulls the image.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum PullPolicy {
    /// Never: the image must already be on the engine (built locally, or loaded).
    Never,
    /// Only when the engine does not have it.
    #[default]
    IfMissing,
    /// Before every run.
    Always,
}

impl PullPolicy {
    /// Every policy, in a stable order.
    pub const ALL: [PullPolicy; 3] = [Self::Never, Self::IfMissing, Self::Always];

    /// The name used in `weir.toml`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Never => "never",
            Self::IfMissing => "if-missing",
            Self::Always => "always",
        }
    }
}

/// A container on the agent's Docker engine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DockerInfrastructure {
    /// Image to run, e.g. `weir-example-flows:dev`. Its entrypoint is replaced by the
    /// deployment's `command`.
    pub image: String,
    /// CPU limit in CPUs, e.g. `0.5` or `2`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<f64>,
    /// Memory limit, e.g. `512Mi` or `1Gi` (swap is limited to the same amount).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
    /// Docker network to attach to (`host`, `bridge` or a network's name). Default: `host`
    /// when the server the agent talks to is on a loopback address, else the engine's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    /// Environment variables for the container only, over the deployment's `env`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Bind mounts and volumes, `SOURCE:TARGET` or `SOURCE:TARGET:ro`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<String>,
    /// When to pull the image.
    #[serde(default, skip_serializing_if = "is_default_pull")]
    pub pull: PullPolicy,
    /// Run a tiny init process as PID 1 that forwards signals and reaps zombies (default
    /// true: a program running as PID 1 ignores SIGTERM unless it handles it).
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub init: bool,
}

impl DockerInfrastructure {
    /// Docker settings for `image` with every other setting at its default.
    pub fn new(image: impl Into<String>) -> Self {
        DockerInfrastructure {
            image: image.into(),
            cpu: None,
            memory: None,
            network: None,
            env: BTreeMap::new(),
            volumes: Vec::new(),
            pull: PullPolicy::default(),
            init: true,
        }
    }
}

/// An AWS ECS task. The ECS launcher defines the settings beyond the image and size.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EcsInfrastructure {
    /// Image to run.
    pub image: String,
    /// CPUs for the task, e.g. `0.25`, `1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<f64>,
    /// Memory for the task, e.g. `512Mi`, `2Gi`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
    /// Role ECS uses to start the task: pull the image, write its logs, read its `ssm:` and
    /// `secretsmanager:` secrets (injected by ECS; the agent never sees them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_role_arn: Option<String>,
    /// Role the flow's code runs as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_role_arn: Option<String>,
    /// CloudWatch log group of the task's output (stream prefix: the deployment's name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_group: Option<String>,
    /// `FARGATE` (default) or `FARGATE_SPOT`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<String>,
}

/// The ECS keys of an infrastructure table beyond image, cpu and memory, all strings.
pub const ECS_STRING_KEYS: [&str; 4] = [
    "execution_role_arn",
    "task_role_arn",
    "log_group",
    "capacity",
];

fn yes() -> bool {
    true
}
fn is_true(b: &bool) -> bool {
    *b
}
fn is_default_pull(p: &PullPolicy) -> bool {
    *p == PullPolicy::default()
}

/// Reads a memory size such as `512Mi`, `1Gi`, `1.5Gi`, `256M` or `1048576` (bytes) into
/// bytes. Binary units (`Ki`, `Mi`, `Gi`, `Ti`) count in 1024s, decimal ones (`k`, `M`, `G`,
/// `T`) in 1000s.
pub fn parse_memory(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let factor: u64 = match unit {
        "" => 1,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        "Ti" => 1 << 40,
        "k" | "K" => 1_000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        "T" => 1_000_000_000_000,
        other => {
            return Err(format!(
                "unknown unit {other:?} in memory size {s:?}: use Ki, Mi, Gi or Ti (e.g. \"512Mi\")"
            ));
        }
    };
    let value: f64 = number.parse().map_err(|_| {
        format!("invalid memory size {s:?}: write a number and a unit, e.g. \"512Mi\"")
    })?;
    let bytes = value * factor as f64;
    if !bytes.is_finite() || bytes < 1.0 || bytes > u64::MAX as f64 {
        return Err(format!("memory size {s:?} is out of range"));
    }
    Ok(bytes as u64)
}

/// Writes a memory size in bytes as a deployment would: `512Mi`, `1Gi`, or the number of
/// bytes when it is no whole number of KiB (the inverse of [`parse_memory`] for those).
pub fn format_memory(bytes: u64) -> String {
    for (unit, size) in [
        ("Ti", 1u64 << 40),
        ("Gi", 1 << 30),
        ("Mi", 1 << 20),
        ("Ki", 1 << 10),
    ] {
        if bytes >= size && bytes.is_multiple_of(size) {
            return format!("{}{unit}", bytes / size);
        }
    }
    bytes.to_string()
}

/// Checks a volume `SOURCE:TARGET[:ro|rw]`: the target is an absolute path, the source an
/// absolute host path or a volume name.
pub fn check_volume(v: &str) -> Result<(), String> {
    let parts: Vec<&str> = v.split(':').collect();
    let hint = "write SOURCE:TARGET or SOURCE:TARGET:ro, e.g. \"/data/in:/in:ro\"";
    let (source, target) = match parts.as_slice() {
        [s, t] => (*s, *t),
        [s, t, mode] if *mode == "ro" || *mode == "rw" => (*s, *t),
        [_, _, mode] => {
            return Err(format!(
                "volume {v:?}: unknown mode {mode:?} (use ro or rw)"
            ));
        }
        _ => return Err(format!("invalid volume {v:?}: {hint}")),
    };
    if source.is_empty() || !target.starts_with('/') {
        return Err(format!(
            "invalid volume {v:?}: the target must be an absolute path; {hint}"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_specs_read_as_process_and_process_is_left_out() {
        let i: Infrastructure = serde_json::from_str(r#"{"type":"process"}"#).expect("ok");
        assert_eq!(i, Infrastructure::Process);
        assert_eq!(
            serde_json::to_string(&Infrastructure::Process).expect("ok"),
            r#"{"type":"process"}"#
        );
    }

    #[test]
    fn docker_round_trips_with_defaults_left_out() {
        let d = Infrastructure::Docker(DockerInfrastructure::new("flows:dev"));
        let text = serde_json::to_string(&d).expect("ok");
        assert_eq!(text, r#"{"type":"docker","image":"flows:dev"}"#);
        assert_eq!(
            serde_json::from_str::<Infrastructure>(&text).expect("ok"),
            d
        );
        let bad =
            serde_json::from_str::<Infrastructure>(r#"{"type":"docker","image":"x","imag":1}"#);
        assert!(bad.is_err());
    }

    #[test]
    fn memory_sizes() {
        assert_eq!(parse_memory("512Mi"), Ok(512 << 20));
        assert_eq!(parse_memory("1.5Gi"), Ok(3 << 29));
        assert_eq!(parse_memory("256M"), Ok(256_000_000));
        assert_eq!(parse_memory("4096"), Ok(4096));
        assert!(
            parse_memory("512MB")
                .expect_err("an error")
                .contains("unknown unit")
        );
        assert!(parse_memory("Mi").is_err());
        assert!(parse_memory("0Mi").is_err());
    }

    #[test]
    fn volumes() {
        assert!(check_volume("/data:/in:ro").is_ok());
        assert!(check_volume("cache:/cache").is_ok());
        assert!(check_volume("/data").is_err());
        assert!(check_volume("/data:in").is_err());
        assert!(check_volume("/a:/b:rx").is_err());
    }

    #[test]
    fn kinds_parse() {
        assert_eq!("docker".parse(), Ok(InfrastructureKind::Docker));
        assert!("k8s".parse::<InfrastructureKind>().is_err());
    }
}
