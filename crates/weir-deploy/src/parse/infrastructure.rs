//! The `infrastructure` table of a deployment (or of `[defaults]`): where its runs execute.
//!
//! Each key is checked where it is written; which keys a `type` takes, and that `image` is
//! there for container types, is checked once `[defaults]` and the deployment are merged.

use super::{EnvTable, Item, Parser, entries, integer, kind};
use toml::de::{DeTable, DeValue};
use weir_core::infrastructure::{
    DockerInfrastructure, ECS_STRING_KEYS, EcsInfrastructure, Infrastructure, InfrastructureKind,
    PullPolicy, check_volume, parse_memory,
};

/// Every key an infrastructure table may have, for "did you mean".
const KEYS: &[&str] = &[
    "type",
    "image",
    "cpu",
    "memory",
    "network",
    "env",
    "volumes",
    "pull",
    "init",
    "execution_role_arn",
    "task_role_arn",
    "log_group",
    "capacity",
];

/// The keys each type takes besides `type`.
fn keys_of(kind: InfrastructureKind) -> &'static [&'static str] {
    match kind {
        InfrastructureKind::Process => &[],
        InfrastructureKind::Docker => &[
            "image", "cpu", "memory", "network", "env", "volumes", "pull", "init",
        ],
        InfrastructureKind::Ecs => &[
            "image",
            "cpu",
            "memory",
            "execution_role_arn",
            "task_role_arn",
            "log_group",
            "capacity",
        ],
    }
}

/// The checked keys of one infrastructure table, each with the offset of its key.
#[derive(Default, Clone)]
pub(super) struct InfraPartial {
    /// Offset of the table itself.
    at: usize,
    /// Whether a key of it was refused (reported): the merged table is then not checked
    /// again, so one mistake gives one message.
    broken: bool,
    kind: Option<(InfrastructureKind, usize)>,
    image: Option<(String, usize)>,
    cpu: Option<(f64, usize)>,
    memory: Option<(String, usize)>,
    network: Option<(String, usize)>,
    env: Option<(EnvTable, usize)>,
    volumes: Option<(Vec<String>, usize)>,
    pull: Option<(PullPolicy, usize)>,
    init: Option<(bool, usize)>,
    /// The ECS string keys ([`ECS_STRING_KEYS`]).
    ecs: std::collections::BTreeMap<&'static str, (String, usize)>,
}

impl InfraPartial {
    /// The keys set besides `type`, with their offsets.
    fn set_keys(&self) -> Vec<(&'static str, usize)> {
        let mut v = Vec::new();
        let mut add = |k: &'static str, at: Option<usize>| {
            if let Some(at) = at {
                v.push((k, at));
            }
        };
        add("image", self.image.as_ref().map(|x| x.1));
        add("cpu", self.cpu.map(|x| x.1));
        add("memory", self.memory.as_ref().map(|x| x.1));
        add("network", self.network.as_ref().map(|x| x.1));
        add("env", self.env.as_ref().map(|x| x.1));
        add("volumes", self.volumes.as_ref().map(|x| x.1));
        add("pull", self.pull.map(|x| x.1));
        add("init", self.init.map(|x| x.1));
        for (k, (_, at)) in &self.ecs {
            v.push((k, *at));
        }
        v
    }

    /// `own` over `defaults`: the same type (or none) merges key by key, `env` entry by
    /// entry; a different type replaces the defaults' table whole.
    pub(super) fn merge(
        defaults: Option<&InfraPartial>,
        own: Option<InfraPartial>,
    ) -> Option<Self> {
        let (d, o) = match (defaults, own) {
            (None, o) => return o,
            (Some(d), None) => return Some(d.clone()),
            (Some(d), Some(o)) => (d, o),
        };
        if let (Some((a, _)), Some((b, _))) = (d.kind, o.kind)
            && a != b
        {
            return Some(o);
        }
        let env = match (&d.env, o.env) {
            (Some((de, _)), Some((oe, at))) => {
                let mut m = de.clone();
                m.extend(oe);
                Some((m, at))
            }
            (de, oe) => oe.or_else(|| de.clone()),
        };
        Some(InfraPartial {
            at: o.at,
            broken: o.broken || d.broken,
            kind: o.kind.or(d.kind),
            image: o.image.or_else(|| d.image.clone()),
            cpu: o.cpu.or(d.cpu),
            memory: o.memory.or_else(|| d.memory.clone()),
            network: o.network.or_else(|| d.network.clone()),
            env,
            volumes: o.volumes.or_else(|| d.volumes.clone()),
            pull: o.pull.or(d.pull),
            init: o.init.or(d.init),
            ecs: {
                let mut m = d.ecs.clone();
                m.extend(o.ecs);
                m
            },
        })
    }
}

impl Parser<'_> {
    /// Reads an `infrastructure` table, reporting every bad key.
    pub(super) fn infrastructure(&mut self, item: &Item<'_>, ctx: &str) -> Option<InfraPartial> {
        let table: &DeTable<'_> = self.table("infrastructure", item, ctx)?;
        let ctx = format!("in the infrastructure {ctx}");
        let mut p = InfraPartial {
            at: item.span().start,
            ..Default::default()
        };
        let errors_before = self.diagnostics.len();
        for (key, key_at, v) in entries(table) {
            match key {
                "type" => {
                    if let Some(s) = self.string(key, v, &ctx) {
                        match s.parse() {
                            Ok(k) => p.kind = Some((k, key_at)),
                            Err(e) => self.invalid(key, v.span().start, &ctx, &e.to_string()),
                        }
                    }
                }
                "image" => p.image = self.non_empty_string(key, v, &ctx).map(|s| (s, key_at)),
                "cpu" => p.cpu = self.cpu(v, &ctx).map(|c| (c, key_at)),
                "memory" => p.memory = self.memory(v, &ctx).map(|m| (m, key_at)),
                "network" => p.network = self.non_empty_string(key, v, &ctx).map(|s| (s, key_at)),
                "env" => p.env = self.env_table(key, v, &ctx, false).map(|e| (e, key_at)),
                "volumes" => p.volumes = self.volumes(v, &ctx).map(|l| (l, key_at)),
                "pull" => {
                    if let Some(policy) = self.pull(v, &ctx) {
                        p.pull = Some((policy, key_at));
                    }
                }
                "init" => match v.get_ref() {
                    DeValue::Boolean(b) => p.init = Some((*b, key_at)),
                    _ => self.wrong_type(key, v, &ctx, "true or false"),
                },
                "capacity" => {
                    if let Some(c) = self.capacity(v, &ctx) {
                        p.ecs.insert("capacity", (c, key_at));
                    }
                }
                other if ECS_STRING_KEYS.contains(&other) => {
                    if let (Some(s), Some(k)) = (
                        self.non_empty_string(key, v, &ctx),
                        ECS_STRING_KEYS.iter().find(|k| **k == other),
                    ) {
                        p.ecs.insert(k, (s, key_at));
                    }
                }
                other => self.unknown(other, key_at, &ctx, KEYS),
            }
        }
        p.broken = self.diagnostics.len() > errors_before;
        Some(p)
    }

    /// `memory`: a size such as `"512Mi"` or `"2Gi"`, kept as written.
    fn memory(&mut self, v: &Item<'_>, ctx: &str) -> Option<String> {
        let m = self.string("memory", v, ctx)?;
        match parse_memory(&m) {
            Ok(_) => Some(m),
            Err(e) => {
                self.invalid("memory", v.span().start, ctx, &e);
                None
            }
        }
    }

    /// `volumes`: Docker volume specs, each checked (every bad one reported at its place).
    fn volumes(&mut self, v: &Item<'_>, ctx: &str) -> Option<Vec<String>> {
        let list = self.strings("volumes", v, ctx)?;
        let mut ok = true;
        if let DeValue::Array(items) = v.get_ref() {
            for (vol, el) in list.iter().zip(items.iter()) {
                if let Err(e) = check_volume(vol) {
                    self.invalid("volumes", el.span().start, ctx, &e);
                    ok = false;
                }
            }
        }
        ok.then_some(list)
    }

    /// `pull`: one of the image pull policies, by its name.
    fn pull(&mut self, v: &Item<'_>, ctx: &str) -> Option<PullPolicy> {
        let s = self.string("pull", v, ctx)?;
        let policy = PullPolicy::ALL.into_iter().find(|p| p.as_str() == s);
        if policy.is_none() {
            self.invalid(
                "pull",
                v.span().start,
                ctx,
                &format!(
                    "unknown pull policy {s:?}: expected \"never\", \"if-missing\" or \"always\""
                ),
            );
        }
        policy
    }

    /// `capacity`: the ECS capacity provider, `FARGATE` or `FARGATE_SPOT`.
    fn capacity(&mut self, v: &Item<'_>, ctx: &str) -> Option<String> {
        let c = self.string("capacity", v, ctx)?;
        if c == "FARGATE" || c == "FARGATE_SPOT" {
            return Some(c);
        }
        let problem = format!("unknown capacity {c:?}: expected \"FARGATE\" or \"FARGATE_SPOT\"");
        self.invalid("capacity", v.span().start, ctx, &problem);
        None
    }

    fn cpu(&mut self, v: &Item<'_>, ctx: &str) -> Option<f64> {
        let n = match v.get_ref() {
            DeValue::Float(f) => f.as_str().parse::<f64>().ok(),
            DeValue::Integer(_) => integer(v.get_ref()).map(|i| i as f64),
            other => {
                let problem = format!(
                    "expected a number of CPUs such as 0.5 or 2, got {}",
                    kind(other)
                );
                self.invalid("cpu", v.span().start, ctx, &problem);
                return None;
            }
        };
        match n {
            Some(n) if n.is_finite() && n > 0.0 && n <= 1024.0 => Some(n),
            _ => {
                self.invalid(
                    "cpu",
                    v.span().start,
                    ctx,
                    "must be a number of CPUs above 0, e.g. 0.5",
                );
                None
            }
        }
    }

    /// The merged table as the wire type; `None` (reported) when it is incomplete or has keys
    /// its type does not take.
    pub(super) fn build_infrastructure(
        &mut self,
        name: &str,
        merged: Option<InfraPartial>,
    ) -> Option<Infrastructure> {
        let Some(p) = merged else {
            return Some(Infrastructure::Process);
        };
        if p.broken {
            return None;
        }
        let Some((kind, _)) = p.kind else {
            self.error(
                p.at,
                format!(
                    "the infrastructure of deployment {name:?} has no type: add type = \
                     \"process\", \"docker\" or \"ecs\" (here or in [defaults.infrastructure])"
                ),
            );
            return None;
        };
        let allowed = keys_of(kind);
        let mut ok = true;
        for (key, at) in p.set_keys() {
            if !allowed.contains(&key) {
                let takes = if allowed.is_empty() {
                    "takes no other keys".to_string()
                } else {
                    format!("takes {}", allowed.join(", "))
                };
                self.error(
                    at,
                    format!(
                        "key {key:?} is not a setting of {kind} infrastructure (deployment \
                         {name:?}; type {kind:?} {takes})",
                        kind = kind.as_str()
                    ),
                );
                ok = false;
            }
        }
        if kind != InfrastructureKind::Process && p.image.is_none() {
            self.error(
                p.at,
                format!(
                    "the {kind} infrastructure of deployment {name:?} needs an image, e.g. \
                     image = \"weir-example-flows:dev\""
                ),
            );
            ok = false;
        }
        if !ok {
            return None;
        }
        let image = p.image.map(|i| i.0).unwrap_or_default();
        Some(match kind {
            InfrastructureKind::Process => Infrastructure::Process,
            InfrastructureKind::Docker => Infrastructure::Docker(DockerInfrastructure {
                image,
                cpu: p.cpu.map(|c| c.0),
                memory: p.memory.map(|m| m.0),
                network: p.network.map(|n| n.0),
                env: p
                    .env
                    .map(|(e, _)| e.into_iter().map(|(k, (v, _))| (k, v)).collect())
                    .unwrap_or_default(),
                volumes: p.volumes.map(|v| v.0).unwrap_or_default(),
                pull: p.pull.map(|x| x.0).unwrap_or_default(),
                init: p.init.is_none_or(|i| i.0),
            }),
            InfrastructureKind::Ecs => {
                let mut ecs = p.ecs;
                let mut take = |k: &str| ecs.remove(k).map(|v| v.0);
                Infrastructure::Ecs(EcsInfrastructure {
                    image,
                    cpu: p.cpu.map(|c| c.0),
                    memory: p.memory.map(|m| m.0),
                    execution_role_arn: take("execution_role_arn"),
                    task_role_arn: take("task_role_arn"),
                    log_group: take("log_group"),
                    capacity: take("capacity"),
                })
            }
        })
    }
}
