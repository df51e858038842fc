//! `weir notifications ls|add|rm|test|log`.

use crate::cli::NotificationsCommand;
use crate::output;
use anyhow::{Context, Result, bail};
use std::process::ExitCode;
use std::time::Duration;
use weir_core::api::notifications::{
    DeliveryQuery, DeliveryStatus, Destination, NotificationEvent, NotificationRuleSpec, RateLimit,
    RuleSource,
};

/// `weir notifications …`.
pub async fn notifications(api: &str, cmd: NotificationsCommand, json: bool) -> Result<ExitCode> {
    let client = super::client(api)?;
    match cmd {
        NotificationsCommand::Ls { project } => return list(&client, project, json).await,
        NotificationsCommand::Add {
            target,
            on,
            deployments,
            webhook,
            signing_key,
            slack,
            sns,
            rate_limit,
        } => {
            let (project, name) = split_rule(&target)?;
            let spec = rule_spec(
                on,
                deployments,
                webhook,
                signing_key,
                slack,
                sns,
                rate_limit,
            )?;
            let rule = client
                .upsert_notification_rule(&project, &name, &spec, RuleSource::Api)
                .await
                .map_err(super::explain)?;
            if json {
                output::json(&rule);
            } else {
                println!(
                    "notification rule {}/{} → {}",
                    rule.project,
                    rule.name,
                    describe(&rule.spec.destination)
                );
            }
        }
        NotificationsCommand::Rm { target } => {
            let (project, name) = split_rule(&target)?;
            let rule = client
                .delete_notification_rule(&project, &name)
                .await
                .map_err(super::explain)?;
            if json {
                output::json(&rule);
            } else {
                println!("deleted notification rule {project}/{name}");
            }
        }
        NotificationsCommand::Test { target } => return test(&client, &target, json).await,
        NotificationsCommand::Log {
            project,
            rule,
            limit,
        } => return log(&client, project, rule, limit, json).await,
    }
    Ok(ExitCode::SUCCESS)
}

/// `weir notifications ls`: the rules of a project (or all), with their destinations.
async fn list(
    client: &weir_client::Client,
    project: Option<String>,
    json: bool,
) -> Result<ExitCode> {
    let rules = client
        .notification_rules(project.as_deref())
        .await
        .map_err(super::explain)?;
    output::list(
        json,
        &rules,
        &rules,
        Some(
            "no notification rules: add one with `weir notifications add PROJECT/NAME --on failed --webhook URL`, or a [[notifications]] table in weir.toml",
        ),
        &["RULE", "ON", "DEPLOYMENTS", "DESTINATION", "RATE", "SOURCE"],
        |r| {
            let on: Vec<&str> = r.spec.on.iter().map(|e| e.as_str()).collect();
            vec![
                format!("{}/{}", r.project, r.name),
                on.join(","),
                if r.spec.deployments.is_empty() {
                    "*".into()
                } else {
                    r.spec.deployments.join(",")
                },
                describe(&r.spec.destination),
                r.spec.rate_limit.to_string(),
                r.source.as_str().into(),
            ]
        },
    );
    Ok(ExitCode::SUCCESS)
}

/// The rule `weir notifications add` describes: its events (`--on`), deployments, one
/// destination (`--webhook` with its signing key, `--slack` or `--sns`) and rate limit,
/// checked by the rules every rule obeys.
fn rule_spec(
    on: Vec<String>,
    deployments: Vec<String>,
    webhook: Option<String>,
    signing_key: Option<String>,
    slack: Option<String>,
    sns: Option<String>,
    rate_limit: Option<String>,
) -> Result<NotificationRuleSpec> {
    let destination = match (webhook, slack, sns) {
        (Some(url), None, None) => Destination::Webhook { url, signing_key },
        (None, Some(url), None) => Destination::Slack { url },
        (None, None, Some(topic_arn)) => Destination::Sns { topic_arn },
        _ => bail!("give exactly one destination: --webhook, --slack or --sns"),
    };
    let on = on
        .iter()
        .map(|e| {
            NotificationEvent::parse(e.trim()).with_context(|| {
                let known: Vec<&str> = NotificationEvent::ALL.iter().map(|e| e.as_str()).collect();
                format!("unknown event {e:?} in --on: use {}", known.join(", "))
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let rate_limit = match rate_limit {
        Some(text) => RateLimit::parse(&text).map_err(anyhow::Error::msg)?,
        None => RateLimit::default(),
    };
    let spec = NotificationRuleSpec {
        on,
        deployments,
        destination,
        rate_limit,
    };
    weir_core::notify::check_rule(&spec).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(spec)
}

/// `weir notifications log`: the latest deliveries, newest first.
async fn log(
    client: &weir_client::Client,
    project: Option<String>,
    rule: Option<String>,
    limit: u32,
    json: bool,
) -> Result<ExitCode> {
    let page = client
        .deliveries(&DeliveryQuery {
            project,
            rule,
            cursor: None,
            limit: Some(limit.clamp(1, 1000)),
        })
        .await
        .map_err(super::explain)?;
    output::list(
        json,
        &page,
        &page.items,
        None,
        &[
            "AT",
            "RULE",
            "EVENT",
            "TO",
            "STATUS",
            "ATTEMPTS",
            "LAST ERROR",
        ],
        |d| {
            vec![
                output::time(&d.created_at),
                format!("{}/{}", d.project, d.rule),
                d.event.as_str().into(),
                d.destination.clone(),
                d.status.as_str().into(),
                d.attempts.to_string(),
                d.last_error.clone().unwrap_or_default(),
            ]
        },
    );
    Ok(ExitCode::SUCCESS)
}

/// Sends a test through the outbox and waits (up to 30 s) for the delivery loop's verdict;
/// exits 0 only when it was delivered.
async fn test(client: &weir_client::Client, target: &str, json: bool) -> Result<ExitCode> {
    let (project, name) = split_rule(target)?;
    let queued = client
        .test_notification(&project, &name)
        .await
        .map_err(super::explain)?;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut last = queued.clone();
    while std::time::Instant::now() < deadline {
        let page = client
            .deliveries(&DeliveryQuery {
                project: Some(project.clone()),
                rule: Some(name.clone()),
                cursor: None,
                limit: Some(50),
            })
            .await
            .map_err(super::explain)?;
        if let Some(d) = page.items.into_iter().find(|d| d.id == queued.id) {
            last = d;
        }
        // A first failure that will be retried is already the answer a person wants.
        if last.status != DeliveryStatus::Pending || last.last_error.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    if json {
        output::json(&last);
    } else {
        match (&last.status, &last.last_error) {
            (DeliveryStatus::Delivered, _) => println!("delivered: {}", last.title),
            (status, Some(e)) => println!("{}: {e}", status.as_str()),
            (status, None) => println!("{} (the server has not attempted it yet)", status.as_str()),
        }
    }
    Ok(if last.status == DeliveryStatus::Delivered {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn split_rule(target: &str) -> Result<(String, String)> {
    match target.split_once('/') {
        Some((p, n)) if !p.is_empty() && !n.is_empty() && !n.contains('/') => {
            Ok((p.to_string(), n.to_string()))
        }
        _ => bail!("expected PROJECT/RULE (e.g. dev/failures), got {target:?}"),
    }
}

/// A destination for tables: its kind and where, references shown as written (never values).
fn describe(d: &Destination) -> String {
    match d {
        Destination::Webhook { url, signing_key } => format!(
            "webhook {url}{}",
            if signing_key.is_some() {
                " (signed)"
            } else {
                ""
            }
        ),
        Destination::Slack { url } => format!("slack {url}"),
        Destination::Sns { topic_arn } => format!("sns {topic_arn}"),
    }
}
