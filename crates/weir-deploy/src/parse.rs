//! Reading `weir.toml` from the spanned TOML tree, collecting every problem with its position.

mod catchup;
mod fields;
mod infrastructure;
mod limits;
mod merge;
mod notifications;
mod schedules;
mod values;

use crate::suggest::suggest;
use crate::{DeployFile, DeploymentEntry, Diagnostic, Error, Location, Vars};
use infrastructure::InfraPartial;
use std::collections::BTreeMap;
use std::path::Path;
use toml::Spanned;
use toml::de::{DeTable, DeValue};
use weir_core::api::{Parameters, ScheduleSpec};

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
}
