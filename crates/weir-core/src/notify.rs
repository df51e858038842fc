//! Notifications: which events a state change or a deployment write is, whether a rule wants
//! one, what the message says, when a failed delivery is tried again, and what a rule must
//! satisfy. Pure: the store calls [`run_events`] and [`wants`] inside the transaction that
//! makes the change, and the server's delivery loop calls [`backoff`] and
//! [`RateLimit::allows`].

use crate::api::notifications::{
    Destination, MAX_RULE_DEPLOYMENTS, MAX_RULE_EVENTS, NotificationEvent, NotificationRuleSpec,
    RateLimit, TOPIC_ARN_PATTERN,
};
use crate::deployment::{Deployment, SpecError};
use crate::run::Run;
use crate::secret::SecretRef;
use crate::{StateKind, Timestamp, names};
use chrono::Duration;
use serde::{Deserialize, Serialize};

/// Attempts before a delivery is given up (about 3.5 hours of backoff in all).
pub const MAX_ATTEMPTS: u32 = 12;

/// The events a run's change from `prev` to `next` is. Nothing for a change that stays in
/// the same state; `Completed` is also `Recovered` when an earlier attempt of the run did
/// not succeed (it was retried, automatically or by hand).
pub fn run_events(prev: &Run, next: &Run) -> Vec<NotificationEvent> {
    use NotificationEvent as E;
    if prev.state == next.state {
        return vec![];
    }
    match next.state {
        StateKind::Failed => vec![E::Failed],
        StateKind::Crashed => vec![E::Crashed],
        StateKind::Late => vec![E::Late],
        StateKind::Cancelled => vec![E::Cancelled],
        StateKind::Completed if next.attempt > 1 || next.retries_used > 0 => {
            vec![E::Completed, E::Recovered]
        }
        StateKind::Completed => vec![E::Completed],
        _ => vec![],
    }
}

/// Whether `rule` wants `event` of a run or deployment named `deployment` (`None`: an ad-hoc
/// run). A rule naming deployments sees only theirs; a test event goes to the rule it is
/// sent to, whatever its `on`.
pub fn wants(
    rule: &NotificationRuleSpec,
    event: NotificationEvent,
    deployment: Option<&str>,
) -> bool {
    let on = event == NotificationEvent::Test || rule.on.contains(&event);
    let scoped = rule.deployments.is_empty()
        || deployment.is_some_and(|d| rule.deployments.iter().any(|r| r == d));
    on && scoped
}

impl RateLimit {
    /// Whether one more delivery fits when `sent` were delivered in the current window.
    pub fn allows(&self, sent: u64) -> bool {
        sent < u64::from(self.count)
    }

    /// The window as a duration.
    pub fn window(&self) -> Duration {
        Duration::seconds(i64::try_from(self.per_s).unwrap_or(i64::MAX / 1_000_000))
    }

    /// Parses `COUNT/DURATION` (`10/1h`, `3/30s`).
    pub fn parse(text: &str) -> Result<RateLimit, String> {
        let bad = || format!("invalid rate limit {text:?}: write COUNT/WINDOW, e.g. \"10/1h\"");
        let (count, per) = text.split_once('/').ok_or_else(bad)?;
        let count: u32 = count.trim().parse().map_err(|_| bad())?;
        let per = crate::retry::parse_duration(per).map_err(|e| format!("{}: {e}", bad()))?;
        let limit = RateLimit {
            count,
            per_s: per.as_secs(),
        };
        check_rate_limit(&limit).map_err(|e| format!("invalid rate limit {text:?}: {e}"))?;
        Ok(limit)
    }
}

impl std::fmt::Display for RateLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}s", self.count, self.per_s)
    }
}

fn check_rate_limit(l: &RateLimit) -> Result<(), String> {
    if !(1..=100_000).contains(&l.count) {
        return Err("the count must be 1 to 100000".into());
    }
    if !(1..=2_592_000).contains(&l.per_s) {
        return Err("the window must be 1 s to 30 days, in whole seconds".into());
    }
    Ok(())
}

/// How long to wait before attempt `attempt + 1` after attempt `attempt` (1-based) failed:
/// 2 s, 4 s, 8 s, … capped at 30 minutes.
pub fn backoff(attempt: u32) -> Duration {
    let exp = attempt.saturating_sub(1).min(20);
    Duration::seconds((2i64 << exp).min(1800))
}

/// A notification as sent: the JSON body of a webhook, the message of an SNS publish; Slack
/// gets `title` and `text` as its text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// The event the notification reports.
    pub event: NotificationEvent,
    /// The project of the run or deployment it is about.
    pub project: String,
    /// The deployment, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment: Option<String>,
    /// One line: what happened to what.
    pub title: String,
    /// Details: the state message, the version.
    pub text: String,
    /// The run, for run events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<RunSummary>,
    /// When the event happened: the state change's or the deployment write's time.
    pub at: Timestamp,
}

/// The run a run event is about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    /// The flow run's id.
    pub id: uuid::Uuid,
    /// The run's readable name, such as `etl-7f3a`.
    pub name: String,
    /// The flow it executes.
    pub flow: String,
    /// The state it entered, the one the event is about.
    pub state: StateKind,
    /// The attempt that entered it (the first claim is attempt 1).
    pub attempt: u32,
    /// Its page, relative to the server's address.
    pub path: String,
}

/// The message of `event` of `run` (after the change).
pub fn run_message(event: NotificationEvent, run: &Run) -> Message {
    let what = match event {
        NotificationEvent::Recovered => format!("recovered (Completed on attempt {})", run.attempt),
        other => other.as_str().to_string(),
    };
    let scope = run
        .deployment
        .as_deref()
        .map(|d| format!("{}/{d}", run.project))
        .unwrap_or_else(|| run.project.clone());
    Message {
        event,
        project: run.project.clone(),
        deployment: run.deployment.clone(),
        title: format!("{scope}: run {} {what}", run.name),
        text: run
            .state_message
            .clone()
            .unwrap_or_else(|| format!("{} is {}", run.name, run.state)),
        run: Some(RunSummary {
            id: run.id,
            name: run.name.clone(),
            flow: run.flow.clone(),
            state: run.state,
            attempt: run.attempt,
            path: format!("/ui/runs/{}", run.id),
        }),
        at: run.state_at,
    }
}

/// The message of a deployment event of `d` (after the write).
pub fn deployment_message(event: NotificationEvent, d: &Deployment, at: Timestamp) -> Message {
    let what = match event {
        NotificationEvent::DeploymentCreated => "created",
        NotificationEvent::DeploymentArchived => "archived",
        _ => "changed",
    };
    Message {
        event,
        project: d.project.clone(),
        deployment: Some(d.name.clone()),
        title: format!(
            "{}/{}: deployment {what} (v{})",
            d.project, d.name, d.version
        ),
        text: format!(
            "flow {}, work queue {}, version {}",
            d.spec.flow, d.spec.work_queue, d.version
        ),
        run: None,
        at,
    }
}

/// The message `weir notifications test` sends through rule `rule`.
pub fn test_message(project: &str, rule: &str, at: Timestamp) -> Message {
    Message {
        event: NotificationEvent::Test,
        project: project.to_string(),
        deployment: None,
        title: format!("{project}: test notification of rule {rule}"),
        text: "If you can read this, the destination works.".into(),
        run: None,
        at,
    }
}

/// Checks a rule spec (the server's and `weir deploy`'s one rule): at least one event;
/// deployment names valid; a webhook URL plain `http(s)://` or a secret reference; a Slack
/// URL and every signing key a secret reference (they are credentials); an SNS topic an ARN;
/// a rate limit in range.
pub fn check_rule(spec: &NotificationRuleSpec) -> Result<(), SpecError> {
    let err = |field: &str, message: String| SpecError {
        field: field.to_string(),
        message,
    };
    if spec.on.is_empty() {
        return Err(err(
            "spec.on",
            "name at least one event (e.g. [\"failed\", \"crashed\"])".into(),
        ));
    }
    if spec.on.len() > MAX_RULE_EVENTS {
        return Err(err(
            "spec.on",
            format!(
                "names {} events; a rule names at most {MAX_RULE_EVENTS}",
                spec.on.len()
            ),
        ));
    }
    if spec.deployments.len() > MAX_RULE_DEPLOYMENTS {
        return Err(err(
            "spec.deployments",
            format!(
                "names {} deployments; a rule names at most {MAX_RULE_DEPLOYMENTS}",
                spec.deployments.len()
            ),
        ));
    }
    for (i, d) in spec.deployments.iter().enumerate() {
        names::check("deployment", d).map_err(|m| err(&format!("spec.deployments[{i}]"), m))?;
    }
    match &spec.destination {
        Destination::Webhook { url, signing_key } => {
            let plain = url.starts_with("http://") || url.starts_with("https://");
            if plain {
                if url.contains(char::is_whitespace) || url.split("://").nth(1) == Some("") {
                    return Err(err("spec.destination.url", format!("invalid URL {url:?}")));
                }
            } else {
                check_reference("spec.destination.url", url).map_err(|m| {
                    err(
                        "spec.destination.url",
                        format!("{m}; or write a plain http:// or https:// URL"),
                    )
                })?;
            }
            if let Some(key) = signing_key {
                check_reference("spec.destination.signing_key", key).map_err(|m| {
                    err(
                        "spec.destination.signing_key",
                        format!("{m} (a signing key is a credential: name where it is kept)"),
                    )
                })?;
            }
        }
        Destination::Slack { url } => {
            check_reference("spec.destination.url", url).map_err(|m| {
                err(
                    "spec.destination.url",
                    format!(
                        "{m} (a Slack webhook URL is a credential: keep it in a secret store, e.g. \"ssm:/chat/slack_url\")"
                    ),
                )
            })?;
        }
        Destination::Sns { topic_arn } => {
            if !is_topic_arn(topic_arn) {
                return Err(err(
                    "spec.destination.topic_arn",
                    format!(
                        "invalid SNS topic ARN {topic_arn:?}: expected arn:aws:sns:REGION:ACCOUNT:NAME (pattern {TOPIC_ARN_PATTERN})"
                    ),
                ));
            }
        }
    }
    check_rate_limit(&spec.rate_limit).map_err(|m| err("spec.rate_limit", m))
}

fn check_reference(_field: &str, reference: &str) -> Result<(), String> {
    SecretRef::parse(reference)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Whether `arn` is `arn:PARTITION:sns:REGION:ACCOUNT(12 digits):NAME`, as [`TOPIC_ARN_PATTERN`].
pub fn is_topic_arn(arn: &str) -> bool {
    let parts: Vec<&str> = arn.split(':').collect();
    let [arn_, partition, sns, region, account, name] = parts.as_slice() else {
        return false;
    };
    *arn_ == "arn"
        && !partition.is_empty()
        && partition
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b == b'-')
        && *sns == "sns"
        && !region.is_empty()
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && account.len() == 12
        && account.bytes().all(|b| b.is_ascii_digit())
        && (1..=256).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The region of a topic ARN (its fourth part).
pub fn topic_region(arn: &str) -> Option<&str> {
    arn.split(':').nth(3)
}

#[cfg(test)]
mod tests;
