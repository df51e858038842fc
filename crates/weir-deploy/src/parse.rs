//! Reading `weir.toml` from the spanned TOML tree, collecting every problem with its position.

mod catchup;
mod infrastructure;
mod limits;
mod notifications;

use crate::suggest::suggest;
use crate::{DeployFile, DeploymentEntry, Diagnostic, Error, Location, Vars};
use infrastructure::InfraPartial;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use toml::Spanned;
use toml::de::{DeTable, DeValue};
use weir_core::Schedule;
use weir_core::api::{DeploymentSpec, Parameters, ScheduleSpec};

const TOP_KEYS: &[&str] = &["project", "defaults", "deployments", "notifications"];
const DEPLOYMENT_KEYS: &[&str] = &[
    "flow",
    "description",
    "command",
    "plain",
    "infrastructure",
    "work_queue",
    "parameters",
    "schedules",
    "secrets",
    "env",
    "retries",
    "retry_delay",
    "tags",
    "result_storage",
    "concurrency",
    "on_limit",
    "catchup",
];
/// Deployment keys that make no sense for every deployment at once.
const NOT_IN_DEFAULTS: &[&str] = &["flow", "description", "parameters"];
const SCHEDULE_KEYS: &[&str] = &["cron", "interval", "timezone", "anchor"];

type Item<'i> = Spanned<DeValue<'i>>;

/// An environment-variable table: name → (value, offset of the name).
type EnvTable = BTreeMap<String, (String, usize)>;

/// The keys one table (`[defaults]` or a deployment) sets, each already checked.
#[derive(Default)]
struct Partial {
    flow: Option<String>,
    description: Option<String>,
    command: Option<Vec<String>>,
    /// Whether `command` was written at all (possibly wrongly, already reported).
    command_written: bool,
    plain: Option<bool>,
    infrastructure: Option<InfraPartial>,
    work_queue: Option<String>,
    parameters: Option<Parameters>,
    schedules: Option<Vec<ScheduleSpec>>,
    secrets: Option<EnvTable>,
    env: Option<EnvTable>,
    retries: Option<u32>,
    retry_delay_s: Option<u64>,
    tags: Option<Vec<String>>,
    result_storage: Option<String>,
    concurrency: Option<u32>,
    on_limit: Option<weir_core::limits::OnLimit>,
    catchup: Option<weir_core::schedule::Catchup>,
}

struct Parser<'t> {
    file: &'t Path,
    text: &'t str,
    diagnostics: Vec<Diagnostic>,
}

pub(crate) fn parse(file: &Path, text: &str, vars: &Vars) -> Result<DeployFile, Error> {
    let mut p = Parser {
        file,
        text,
        diagnostics: Vec::new(),
    };
    let (mut root, syntax_errors) = DeTable::parse_recoverable(text);
    if !syntax_errors.is_empty() {
        for e in syntax_errors {
            let offset = e.span().map_or(0, |s| s.start);
            p.error(offset, e.message().to_string());
        }
        return Err(p.finish());
    }
    crate::interpolate::apply(root.get_mut(), text, vars, &mut |at, m| p.error(at, m));
    let mut project = None;
    let mut defaults = Partial::default();
    let mut deployments = None;
    let mut deployments_wrong = false;
    let mut rules = None;
    for (key, key_at, item) in entries(root.get_ref()) {
        match key {
            "project" => {
                if let Some(name) = p.string(key, item, "at the top level") {
                    let _ = p.check_name("project", &name, item.span().start);
                    project = Some(name);
                }
            }
            "defaults" => {
                if let Some(table) = p.table(key, item, "at the top level") {
                    defaults = p.fields(table, "in [defaults]", true);
                }
            }
            "deployments" => {
                deployments = p.table(key, item, "at the top level");
                deployments_wrong = deployments.is_none();
            }
            "notifications" => rules = Some(item),
            other => p.unknown(other, key_at, "at the top level", TOP_KEYS),
        }
    }
    let mut out = Vec::new();
    let listed = deployments.map(entries).unwrap_or_default();
    if listed.is_empty() && !deployments_wrong {
        p.error(
            0,
            "no deployments: add a [deployments.NAME] table for each flow to deploy".into(),
        );
    }
    for (name, key_at, item) in listed {
        let _ = p.check_name("deployment", name, key_at);
        let ctx = format!("in deployment {name:?}");
        let Some(table) = p.table(name, item, "in [deployments]") else {
            continue;
        };
        let own = p.fields(table, &ctx, false);
        if let Some(spec) = p.merge(name, key_at, &defaults, own) {
            out.push(DeploymentEntry {
                name: name.to_string(),
                spec,
                location: Location::of_offset(text, key_at),
            });
        }
    }
    let names: Vec<&str> = out.iter().map(|d| d.name.as_str()).collect();
    let notifications = match rules {
        Some(item) => p.notifications(item, &names),
        None => vec![],
    };
    if p.diagnostics.is_empty() {
        Ok(DeployFile {
            project,
            deployments: out,
            notifications,
        })
    } else {
        Err(p.finish())
    }
}

/// A table's entries in file order: key, offset of the key, value.
fn entries<'a, 'i>(table: &'a DeTable<'i>) -> Vec<(&'a str, usize, &'a Item<'i>)> {
    let mut v: Vec<_> = table
        .iter()
        .map(|(k, v)| (k.get_ref().as_ref(), k.span().start, v))
        .collect();
    v.sort_by_key(|(_, at, _)| *at);
    v
}

fn kind(v: &DeValue<'_>) -> &'static str {
    match v {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date-time",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

fn integer(v: &DeValue<'_>) -> Option<i64> {
    v.as_integer()
        .and_then(|i| i64::from_str_radix(i.as_str(), i.radix()).ok())
}

impl<'t> Parser<'t> {
    fn error(&mut self, offset: usize, message: String) {
        self.diagnostics.push(Diagnostic {
            file: self.file.to_path_buf(),
            location: Location::of_offset(self.text, offset),
            message,
        });
    }

    fn finish(mut self) -> Error {
        self.diagnostics.sort_by_key(|d| d.location);
        self.diagnostics.dedup();
        Error::Invalid(self.diagnostics)
    }

    fn unknown(&mut self, key: &str, at: usize, ctx: &str, known: &[&str]) {
        let hint = match suggest(key, known) {
            Some(s) => format!(" (did you mean {s:?}?)"),
            None => format!(" (expected one of: {})", known.join(", ")),
        };
        self.error(at, format!("unknown key {key:?} {ctx}{hint}"));
    }

    fn wrong_type(&mut self, key: &str, item: &Item<'_>, ctx: &str, expected: &str) {
        let got = kind(item.get_ref());
        self.error(
            item.span().start,
            format!("key {key:?} {ctx}: expected {expected}, got {got}"),
        );
    }

    fn invalid(&mut self, key: &str, at: usize, ctx: &str, problem: &str) {
        self.error(at, format!("key {key:?} {ctx}: {problem}"));
    }

    /// Project, deployment and queue names follow the server's rule.
    fn check_name(&mut self, what: &str, name: &str, at: usize) -> bool {
        match weir_core::names::check(what, name) {
            Ok(()) => true,
            Err(message) => {
                self.error(at, message);
                false
            }
        }
    }

    fn string(&mut self, key: &str, item: &Item<'_>, ctx: &str) -> Option<String> {
        match item.get_ref() {
            DeValue::String(s) => Some(s.to_string()),
            _ => {
                self.wrong_type(key, item, ctx, "a string");
                None
            }
        }
    }

    fn non_empty_string(&mut self, key: &str, item: &Item<'_>, ctx: &str) -> Option<String> {
        let s = self.string(key, item, ctx)?;
        if s.trim().is_empty() {
            self.invalid(key, item.span().start, ctx, "must not be empty");
            return None;
        }
        Some(s)
    }

    fn table<'a, 'i>(
        &mut self,
        key: &str,
        item: &'a Item<'i>,
        ctx: &str,
    ) -> Option<&'a DeTable<'i>> {
        match item.get_ref() {
            DeValue::Table(t) => Some(t),
            _ => {
                self.wrong_type(key, item, ctx, "a table");
                None
            }
        }
    }

    /// An array of strings; each bad element is reported.
    fn strings(&mut self, key: &str, item: &Item<'_>, ctx: &str) -> Option<Vec<String>> {
        let DeValue::Array(items) = item.get_ref() else {
            self.wrong_type(key, item, ctx, "an array of strings");
            return None;
        };
        let mut out = Vec::new();
        let mut ok = true;
        for (i, el) in items.iter().enumerate() {
            match el.get_ref() {
                DeValue::String(s) if !s.trim().is_empty() => out.push(s.to_string()),
                DeValue::String(_) => {
                    self.invalid(key, el.span().start, ctx, &format!("item {i} is empty"));
                    ok = false;
                }
                other => {
                    let problem = format!("item {i}: expected a string, got {}", kind(other));
                    self.invalid(key, el.span().start, ctx, &problem);
                    ok = false;
                }
            }
        }
        ok.then_some(out)
    }

    /// The keys of a deployment (or of `[defaults]`), each checked.
    fn fields(&mut self, table: &DeTable<'_>, ctx: &str, defaults: bool) -> Partial {
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
                    p.command = self.strings(key, item, ctx);
                    if p.command.as_ref().is_some_and(Vec::is_empty) {
                        self.invalid(
                            key,
                            item.span().start,
                            ctx,
                            "is empty: give the program to run and its arguments, e.g. \
                             [\"./target/release/flows\"]",
                        );
                        p.command = None;
                    }
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
                        let mut ok = true;
                        let mut map = Parameters::new();
                        for (name, _, v) in entries(t) {
                            let path = format!("parameters.{name}");
                            if let Some(json) = self.json(&path, v, ctx) {
                                map.insert(name.to_string(), json);
                            } else {
                                ok = false;
                            }
                        }
                        p.parameters = ok.then_some(map);
                    }
                }
                "schedules" => p.schedules = self.schedules(item, ctx),
                "secrets" => p.secrets = self.env_table(key, item, ctx, true),
                "env" => p.env = self.env_table(key, item, ctx, false),
                "retries" => match integer(item.get_ref()).map(u32::try_from) {
                    Some(Ok(n)) => p.retries = Some(n),
                    Some(Err(_)) => self.invalid(
                        key,
                        item.span().start,
                        ctx,
                        "must be a whole number from 0 to 4294967295",
                    ),
                    None => self.wrong_type(key, item, ctx, "a whole number"),
                },
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

    /// A result-storage URL, checked by weir-core's rule and kept in its canonical form.
    fn storage_url(&mut self, key: &str, item: &Item<'_>, ctx: &str) -> Option<String> {
        let text = self.string(key, item, ctx)?;
        match weir_core::storage::StorageUrl::parse(&text) {
            Ok(url) => Some(url.to_string()),
            Err(e) => {
                self.invalid(key, item.span().start, ctx, &e.to_string());
                None
            }
        }
    }

    fn retry_delay(&mut self, item: &Item<'_>, ctx: &str) -> Option<u64> {
        const KEY: &str = "retry_delay";
        let at = item.span().start;
        let secs = match item.get_ref() {
            DeValue::String(s) => match weir_core::retry::parse_duration(s) {
                Ok(d) if d.subsec_nanos() == 0 => d.as_secs(),
                Ok(_) => {
                    self.invalid(KEY, at, ctx, "must be a whole number of seconds");
                    return None;
                }
                Err(e) => {
                    self.invalid(KEY, at, ctx, &e);
                    return None;
                }
            },
            v => match integer(v).map(u64::try_from) {
                Some(Ok(n)) => n,
                Some(Err(_)) => {
                    self.invalid(KEY, at, ctx, "must not be negative");
                    return None;
                }
                None => {
                    self.wrong_type(KEY, item, ctx, "a duration such as \"30s\" or \"5m\"");
                    return None;
                }
            },
        };
        Some(secs)
    }

    /// `env` or `secrets`: variable names to strings (secret references for `secrets`).
    fn env_table(
        &mut self,
        key: &str,
        item: &Item<'_>,
        ctx: &str,
        secrets: bool,
    ) -> Option<EnvTable> {
        let table = self.table(key, item, ctx)?;
        let mut out = EnvTable::new();
        let mut ok = true;
        for (name, name_at, v) in entries(table) {
            if let Err(problem) = weir_core::deployment::check_env_name(name) {
                self.invalid(key, name_at, ctx, &problem);
                ok = false;
                continue;
            }
            let value = match v.get_ref() {
                DeValue::String(s) => s.to_string(),
                DeValue::Integer(i) if !secrets => i.to_string(),
                DeValue::Float(f) if !secrets => f.to_string(),
                DeValue::Boolean(b) if !secrets => b.to_string(),
                other => {
                    let expected = if secrets {
                        "a secret reference string"
                    } else {
                        "a string"
                    };
                    let problem = format!("{name}: expected {expected}, got {}", kind(other));
                    self.invalid(key, v.span().start, ctx, &problem);
                    ok = false;
                    continue;
                }
            };
            if secrets {
                let problem = weir_core::secret::SecretRef::parse(&value)
                    .err()
                    .map(|e| format!("{name}: {e}"));
                if let Some(problem) = problem {
                    self.invalid(key, v.span().start, ctx, &problem);
                    ok = false;
                    continue;
                }
            }
            out.insert(name.to_string(), (value, name_at));
        }
        ok.then_some(out)
    }

    /// Any TOML value as JSON, for parameters.
    fn json(&mut self, path: &str, item: &Item<'_>, ctx: &str) -> Option<Value> {
        Some(match item.get_ref() {
            DeValue::String(s) => Value::String(s.to_string()),
            DeValue::Integer(_) => match integer(item.get_ref()) {
                Some(i) => Value::from(i),
                None => {
                    self.invalid(path, item.span().start, ctx, "integer out of range");
                    return None;
                }
            },
            DeValue::Float(f) => match f
                .as_str()
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
            {
                Some(n) => Value::Number(n),
                None => {
                    let problem = format!("{f} cannot be written in JSON");
                    self.invalid(path, item.span().start, ctx, &problem);
                    return None;
                }
            },
            DeValue::Boolean(b) => Value::Bool(*b),
            DeValue::Datetime(d) => Value::String(d.to_string()),
            DeValue::Array(items) => {
                let mut out = Vec::new();
                for (i, el) in items.iter().enumerate() {
                    out.push(self.json(&format!("{path}[{i}]"), el, ctx)?);
                }
                Value::Array(out)
            }
            DeValue::Table(t) => {
                let mut out = serde_json::Map::new();
                for (k, _, v) in entries(t) {
                    out.insert(k.to_string(), self.json(&format!("{path}.{k}"), v, ctx)?);
                }
                Value::Object(out)
            }
        })
    }

    fn schedules(&mut self, item: &Item<'_>, ctx: &str) -> Option<Vec<ScheduleSpec>> {
        const EXPECTED: &str = "an array of tables such as [{ cron = \"0 3 * * *\" }]";
        let DeValue::Array(items) = item.get_ref() else {
            self.wrong_type("schedules", item, ctx, EXPECTED);
            return None;
        };
        let mut out = Vec::new();
        let mut ok = true;
        for (i, el) in items.iter().enumerate() {
            let sctx = format!("in schedules[{i}] {ctx}");
            let DeValue::Table(t) = el.get_ref() else {
                self.wrong_type(&format!("schedules[{i}]"), el, ctx, "a table");
                ok = false;
                continue;
            };
            let mut spec = ScheduleSpec::default();
            let mut at = BTreeMap::new();
            let errors_before = self.diagnostics.len();
            for (key, key_at, v) in entries(t) {
                at.insert(key, v.span().start);
                match key {
                    "cron" => spec.cron = self.string(key, v, &sctx),
                    "interval" => {
                        spec.interval = match v.get_ref() {
                            // A bare number of seconds.
                            DeValue::Integer(_) => integer(v.get_ref()).map(|n| format!("{n}s")),
                            _ => self.string(key, v, &sctx),
                        }
                    }
                    "timezone" => spec.timezone = self.string(key, v, &sctx),
                    "anchor" => {
                        let text = match v.get_ref() {
                            DeValue::Datetime(d) => Some(d.to_string()),
                            DeValue::String(s) => Some(s.to_string()),
                            _ => {
                                self.wrong_type(key, v, &sctx, "a date-time");
                                None
                            }
                        };
                        if let Some(text) = text {
                            match serde_json::from_value(Value::String(text.clone())) {
                                Ok(ts) => spec.anchor = Some(ts),
                                Err(_) => {
                                    let problem = format!(
                                        "{text:?} is not a date-time with an offset, e.g. \
                                         2026-01-01T00:00:00Z"
                                    );
                                    self.invalid(key, v.span().start, &sctx, &problem);
                                }
                            }
                        }
                    }
                    other => self.unknown(other, key_at, &sctx, SCHEDULE_KEYS),
                }
            }
            if self.diagnostics.len() > errors_before {
                ok = false;
                continue;
            }
            if let Err(e) = Schedule::parse(&spec) {
                let key = weir_core::deployment::schedule_error_field(&e);
                let offset = at.get(key).copied().unwrap_or(el.span().start);
                self.error(offset, format!("invalid schedule {ctx}: {e}"));
                ok = false;
                continue;
            }
            out.push(spec);
        }
        ok.then_some(out)
    }

    /// A deployment's spec: its own keys over `[defaults]`; `None` if something required is
    /// missing (reported).
    fn merge(
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
