//! `weir deployments show`: one deployment, everything it is.

use crate::config::split_target;
use crate::output;
use anyhow::Result;
use std::collections::BTreeMap;
use std::process::ExitCode;
use weir_core::api::Deployment;

/// `weir deployments show PROJECT/NAME`.
pub async fn deployment(api: &str, target: &str, json: bool) -> Result<ExitCode> {
    let (project, name) = split_target(target)?;
    let d = super::client(api)?
        .deployment(&project, &name)
        .await
        .map_err(super::explain)?;
    if json {
        output::json(&d);
    } else {
        print!("{}", render(&d));
    }
    Ok(ExitCode::SUCCESS)
}

/// The human-readable form: one `key: value` line per setting, nested settings indented.
fn render(d: &Deployment) -> String {
    let s = &d.spec;
    let mut out = String::new();
    let mut line = |k: &str, v: String| out.push_str(&format!("  {k:<16}{v}\n"));
    let header = format!("{}/{} (v{}, {})\n", d.project, d.name, d.version, d.id);
    line("flow:", s.flow.clone());
    if !s.description.is_empty() {
        line("description:", s.description.clone());
    }
    line("status:", if d.paused { "paused" } else { "active" }.into());
    line("work queue:", s.work_queue.clone());
    let kind = if s.plain_command {
        "plain command"
    } else {
        "flows binary"
    };
    line("command:", format!("{} ({kind})", shell_words(&s.command)));
    line("infrastructure:", s.infrastructure.kind().to_string());
    for (k, v) in s.infrastructure.settings() {
        line(&format!("  {k}:"), v);
    }
    let schedules: Vec<String> = s
        .schedules
        .iter()
        .map(|sc| match weir_core::Schedule::parse(sc) {
            Ok(p) => p.describe(),
            Err(e) => format!("invalid: {e}"),
        })
        .collect();
    line(
        "schedules:",
        if schedules.is_empty() {
            "none (runs start only on request)".into()
        } else {
            schedules.join("; ")
        },
    );
    if !s.schedules.is_empty() {
        line(
            "catchup:",
            format!("{} (ticks missed while no server ran)", s.catchup),
        );
    }
    line(
        "parameters:",
        serde_json::Value::Object(s.parameters.clone()).to_string(),
    );
    line("env:", pairs(&s.env));
    line("secrets:", pairs(&s.secrets));
    line(
        "retries:",
        format!("{} (delay {} s)", s.retries, s.retry_delay_s),
    );
    if !s.tags.is_empty() {
        line("tags:", s.tags.join(", "));
    }
    line(
        "concurrency:",
        match s.concurrency {
            Some(n) => format!("at most {n} at once; when full: {}", s.on_limit.as_str()),
            None => format!(
                "no limit of its own; when a tag limit is full: {}",
                s.on_limit.as_str()
            ),
        },
    );
    line("created:", output::time(&d.created_at));
    line("updated:", output::time(&d.updated_at));
    format!("{header}{out}")
}

fn pairs(m: &BTreeMap<String, String>) -> String {
    if m.is_empty() {
        return "none".into();
    }
    m.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The command as one could type it: arguments with spaces or quotes are quoted.
fn shell_words(argv: &[String]) -> String {
    argv.iter()
        .map(|a| {
            if !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@".contains(c))
            {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}
