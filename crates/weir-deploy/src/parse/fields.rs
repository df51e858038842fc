//! The keys of one deployment table (or of `[defaults]`): which are known, and each value
//! read by its own checker.

use super::{DEPLOYMENT_KEYS, Item, NOT_IN_DEFAULTS, Parser, Partial, entries, integer};
use toml::de::{DeTable, DeValue};
use weir_core::api::Parameters;

impl Parser<'_> {
    /// The keys of a deployment (or of `[defaults]`), each checked.
    pub(super) fn fields(&mut self, table: &DeTable<'_>, ctx: &str, defaults: bool) -> Partial {
        let mut p = Partial::default();
        for (key, key_at, item) in entries(table) {
            if defaults && NOT_IN_DEFAULTS.contains(&key) {
                self.error(
                    key_at,
                    format!("key {key:?} cannot be set in [defaults]: set it in each deployment"),
                );
                continue;
            }
            match key {
                "flow" => p.flow = self.non_empty_string(key, item, ctx),
                "description" => p.description = self.string(key, item, ctx),
                "command" => {
                    p.command_written = true;
                    p.command = self.command(key, item, ctx);
                }
                "plain" => match item.get_ref() {
                    DeValue::Boolean(b) => p.plain = Some(*b),
                    _ => self.wrong_type(key, item, ctx, "true or false"),
                },
                "infrastructure" => p.infrastructure = self.infrastructure(item, ctx),
                "image" => self.error(
                    key_at,
                    format!(
                        "key \"image\" {ctx} belongs in the infrastructure table: \
                         infrastructure = {{ type = \"docker\", image = \"…\" }}"
                    ),
                ),
                "work_queue" => {
                    p.work_queue = self
                        .string(key, item, ctx)
                        .filter(|q| self.check_name("work queue", q, item.span().start));
                }
                "parameters" => {
                    if let Some(t) = self.table(key, item, ctx) {
                        p.parameters = self.parameters(t, ctx);
                    }
                }
                "schedules" => p.schedules = self.schedules(item, ctx),
                "secrets" => p.secrets = self.env_table(key, item, ctx, true),
                "env" => p.env = self.env_table(key, item, ctx, false),
                "retries" => {
                    if let Some(n) = self.retries(key, item, ctx) {
                        p.retries = Some(n);
                    }
                }
                "retry_delay" => p.retry_delay_s = self.retry_delay(item, ctx),
                "tags" => p.tags = self.strings(key, item, ctx),
                "result_storage" => p.result_storage = self.storage_url(key, item, ctx),
                "concurrency" => p.concurrency = self.concurrency(item, ctx),
                "on_limit" => p.on_limit = self.on_limit(item, ctx),
                "catchup" => p.catchup = self.catchup(item, ctx),
                other => {
                    let known: Vec<&str> = DEPLOYMENT_KEYS
                        .iter()
                        .copied()
                        .filter(|k| !defaults || !NOT_IN_DEFAULTS.contains(k))
                        .collect();
                    self.unknown(other, key_at, ctx, &known);
                }
            }
        }
        p
    }

    /// `command`: the program and its arguments; an empty list is an error (`None`).
    fn command(&mut self, key: &str, item: &Item<'_>, ctx: &str) -> Option<Vec<String>> {
        let command = self.strings(key, item, ctx)?;
        if command.is_empty() {
            self.invalid(
                key,
                item.span().start,
                ctx,
                "is empty: give the program to run and its arguments, e.g. \
                 [\"./target/release/flows\"]",
            );
            return None;
        }
        Some(command)
    }

    /// The `parameters` table as JSON values; `None` when any value is not one (each such
    /// value reported at its own key).
    fn parameters(&mut self, table: &DeTable<'_>, ctx: &str) -> Option<Parameters> {
        let mut ok = true;
        let mut map = Parameters::new();
        for (name, _, v) in entries(table) {
            let path = format!("parameters.{name}");
            if let Some(json) = self.json(&path, v, ctx) {
                map.insert(name.to_string(), json);
            } else {
                ok = false;
            }
        }
        ok.then_some(map)
    }

    /// `retries`: a whole number that fits in a `u32` (`None`, reported, otherwise).
    fn retries(&mut self, key: &str, item: &Item<'_>, ctx: &str) -> Option<u32> {
        match integer(item.get_ref()).map(u32::try_from) {
            Some(Ok(n)) => Some(n),
            Some(Err(_)) => {
                self.invalid(
                    key,
                    item.span().start,
                    ctx,
                    "must be a whole number from 0 to 4294967295",
                );
                None
            }
            None => {
                self.wrong_type(key, item, ctx, "a whole number");
                None
            }
        }
    }
}
