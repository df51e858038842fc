//! A deployment's spec: its own keys over `[defaults]`, and what is missing or contradictory
//! once they are merged.

use super::infrastructure::InfraPartial;
use super::{EnvTable, Parser, Partial};
use weir_core::api::DeploymentSpec;

impl Parser<'_> {
    /// A deployment's spec: its own keys over `[defaults]`; `None` if something required is
    /// missing (reported).
    pub(super) fn merge(
        &mut self,
        name: &str,
        at: usize,
        defaults: &Partial,
        own: Partial,
    ) -> Option<DeploymentSpec> {
        let command = own.command.or_else(|| defaults.command.clone());
        if command.is_none() && !own.command_written && !defaults.command_written {
            self.error(
                at,
                format!(
                    "deployment {name:?} has no command: set command = [\"program\", \"arg\", …] \
                     in it or in [defaults]"
                ),
            );
        }
        let merged = |d: &Option<EnvTable>, o: Option<EnvTable>| {
            let mut m = d.clone().unwrap_or_default();
            m.extend(o.unwrap_or_default());
            m
        };
        let env = merged(&defaults.env, own.env);
        let secrets = merged(&defaults.secrets, own.secrets);
        for (var, (_, var_at)) in &secrets {
            if env.contains_key(var) {
                self.error(
                    *var_at,
                    format!(
                        "{var:?} is set in both env and secrets of deployment {name:?}: keep one"
                    ),
                );
            }
        }
        let strip = |m: EnvTable| m.into_iter().map(|(k, (v, _))| (k, v)).collect();
        let infrastructure =
            InfraPartial::merge(defaults.infrastructure.as_ref(), own.infrastructure);
        let infrastructure = self.build_infrastructure(name, infrastructure)?;
        let d = DeploymentSpec::default();
        Some(DeploymentSpec {
            flow: own.flow.unwrap_or_else(|| name.to_string()),
            description: own.description.unwrap_or_default(),
            command: command?,
            plain_command: own.plain.or(defaults.plain).unwrap_or(false),
            infrastructure,
            work_queue: own
                .work_queue
                .or_else(|| defaults.work_queue.clone())
                .unwrap_or_else(|| weir_core::deployment::DEFAULT_QUEUE.to_string()),
            schedules: own
                .schedules
                .or_else(|| defaults.schedules.clone())
                .unwrap_or_default(),
            parameters: own.parameters.unwrap_or_default(),
            parameter_schema: None,
            secrets: strip(secrets),
            env: strip(env),
            retries: own.retries.or(defaults.retries).unwrap_or(d.retries),
            retry_delay_s: own
                .retry_delay_s
                .or(defaults.retry_delay_s)
                .unwrap_or(d.retry_delay_s),
            tags: own
                .tags
                .or_else(|| defaults.tags.clone())
                .unwrap_or_default(),
            result_storage: own
                .result_storage
                .or_else(|| defaults.result_storage.clone()),
            concurrency: own.concurrency.or(defaults.concurrency),
            on_limit: own.on_limit.or(defaults.on_limit).unwrap_or_default(),
            catchup: own.catchup.or(defaults.catchup).unwrap_or_default(),
        })
    }
}
