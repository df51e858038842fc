//! The stored shapes of notifications: what `notification_rules.spec` and an outbox row's
//! `message` and `destination` hold. They are the store's own, versioned and tolerant like
//! stored deployment specs (`deployments/stored.rs`), so the wire rule
//! ([`NotificationRuleSpec`], its [`Destination`]) and the message a webhook receives
//! ([`Message`]) can change without turning stored rows into errors, and a field they rename
//! does not change what a stored row means.
//!
//! Each column holds a JSON object with its format version in `v`. Version 1 has the keys the
//! wire types had when versions began; rows written before then carry no `v` and are version 1.
//! Reading ignores keys it does not know, at every level, and gives absent ones their
//! defaults — version 1's own, pinned here, not whatever the wire types default to later. A
//! rule's `on` and `destination`, a destination's `type` and address, and a message's `event`,
//! `project` and `at` (and its run's `id` and `state`) are required. A version newer than this
//! Weir knows is refused with [`crate::Error::NewerFormat`], naming the row. The conversions
//! destructure every field, so a field added to a wire type does not compile until it has a
//! stored home.

use crate::Result;
use crate::codec::{to_json, versioned};
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use weir_core::api::notifications::{
    Destination, NotificationEvent, NotificationRuleSpec, RateLimit,
};
use weir_core::notify::{Message, RunSummary};
use weir_core::{StateKind, Timestamp};

/// The newest format version this Weir writes and reads, of each of the three columns.
pub(crate) const VERSION: u64 = 1;

/// Encodes a rule's spec as a stored `notification_rules.spec` (the newest version).
pub(crate) fn encode_rule(spec: &NotificationRuleSpec) -> String {
    to_json(&RuleV1::from(spec.clone()))
}

/// Decodes a stored `notification_rules.spec`; `row` names the rule for errors
/// (`notification rule dev/chat`).
pub(crate) fn decode_rule(text: &str, row: impl Fn() -> String) -> Result<NotificationRuleSpec> {
    let v1: RuleV1 = versioned(text, "notification_rules.spec", VERSION, row)?;
    Ok(v1.into())
}

/// Encodes a message as a stored `notification_outbox.message` (the newest version).
pub(crate) fn encode_message(message: &Message) -> String {
    to_json(&MessageV1::from(message.clone()))
}

/// Decodes a stored `notification_outbox.message`; `row` names the delivery for errors.
pub(crate) fn decode_message(text: &str, row: impl Fn() -> String) -> Result<Message> {
    let v1: MessageV1 = versioned(text, "notification_outbox.message", VERSION, row)?;
    Ok(v1.into())
}

/// Encodes a destination as a stored `notification_outbox.destination` (the newest version).
pub(crate) fn encode_destination(destination: &Destination) -> String {
    to_json(&DestinationRowV1 {
        v: VERSION,
        destination: destination.clone().into(),
    })
}

/// Decodes a stored `notification_outbox.destination`; `row` names the delivery for errors.
pub(crate) fn decode_destination(text: &str, row: impl Fn() -> String) -> Result<Destination> {
    let v1: DestinationRowV1 = versioned(text, "notification_outbox.destination", VERSION, row)?;
    Ok(v1.destination.into())
}

/// Version 1 of a stored rule spec.
#[derive(Debug, Serialize, Deserialize)]
struct RuleV1 {
    /// The format version: 1 (absent in rows written before versions).
    #[serde(default = "one")]
    v: u64,
    on: Vec<EventV1>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    deployments: Vec<String>,
    destination: DestinationV1,
    /// Always written: a row keeps the limit it was given, whatever a later default is.
    #[serde(default)]
    rate_limit: RateLimitV1,
}

impl From<NotificationRuleSpec> for RuleV1 {
    fn from(spec: NotificationRuleSpec) -> Self {
        let NotificationRuleSpec {
            on,
            deployments,
            destination,
            rate_limit,
        } = spec;
        RuleV1 {
            v: VERSION,
            on: on.into_iter().map(EventV1::from).collect(),
            deployments,
            destination: destination.into(),
            rate_limit: rate_limit.into(),
        }
    }
}

impl From<RuleV1> for NotificationRuleSpec {
    fn from(r: RuleV1) -> Self {
        let RuleV1 {
            v: _,
            on,
            deployments,
            destination,
            rate_limit,
        } = r;
        NotificationRuleSpec {
            on: on.into_iter().map(NotificationEvent::from).collect(),
            deployments,
            destination: destination.into(),
            rate_limit: rate_limit.into(),
        }
    }
}

/// Version 1 of a stored destination inside a rule: a `type` key and that kind's address.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum DestinationV1 {
    Webhook {
        url: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        signing_key: Option<String>,
    },
    Slack {
        url: String,
    },
    Sns {
        topic_arn: String,
    },
}

/// Version 1 of an outbox row's destination: a destination with its format version beside
/// its `type`.
#[derive(Debug, Serialize, Deserialize)]
struct DestinationRowV1 {
    /// The format version: 1 (absent in rows written before versions).
    #[serde(default = "one")]
    v: u64,
    #[serde(flatten)]
    destination: DestinationV1,
}

impl From<Destination> for DestinationV1 {
    fn from(d: Destination) -> Self {
        match d {
            Destination::Webhook { url, signing_key } => Self::Webhook { url, signing_key },
            Destination::Slack { url } => Self::Slack { url },
            Destination::Sns { topic_arn } => Self::Sns { topic_arn },
        }
    }
}

impl From<DestinationV1> for Destination {
    fn from(d: DestinationV1) -> Self {
        match d {
            DestinationV1::Webhook { url, signing_key } => Self::Webhook { url, signing_key },
            DestinationV1::Slack { url } => Self::Slack { url },
            DestinationV1::Sns { topic_arn } => Self::Sns { topic_arn },
        }
    }
}

/// Version 1 of a stored rate limit; a key it lacks is version 1's default (60 per hour).
#[derive(Debug, Serialize, Deserialize)]
struct RateLimitV1 {
    #[serde(default = "default_count")]
    count: u32,
    #[serde(default = "default_per_s")]
    per_s: u64,
}

impl Default for RateLimitV1 {
    fn default() -> Self {
        RateLimitV1 {
            count: default_count(),
            per_s: default_per_s(),
        }
    }
}

impl From<RateLimit> for RateLimitV1 {
    fn from(l: RateLimit) -> Self {
        let RateLimit { count, per_s } = l;
        RateLimitV1 { count, per_s }
    }
}

impl From<RateLimitV1> for RateLimit {
    fn from(l: RateLimitV1) -> Self {
        let RateLimitV1 { count, per_s } = l;
        RateLimit { count, per_s }
    }
}

/// Version 1 of a stored event name.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum EventV1 {
    Failed,
    Crashed,
    Late,
    Cancelled,
    Completed,
    Recovered,
    DeploymentCreated,
    DeploymentChanged,
    DeploymentArchived,
    Test,
}

impl From<NotificationEvent> for EventV1 {
    fn from(e: NotificationEvent) -> Self {
        use NotificationEvent as E;
        match e {
            E::Failed => Self::Failed,
            E::Crashed => Self::Crashed,
            E::Late => Self::Late,
            E::Cancelled => Self::Cancelled,
            E::Completed => Self::Completed,
            E::Recovered => Self::Recovered,
            E::DeploymentCreated => Self::DeploymentCreated,
            E::DeploymentChanged => Self::DeploymentChanged,
            E::DeploymentArchived => Self::DeploymentArchived,
            E::Test => Self::Test,
        }
    }
}

impl From<EventV1> for NotificationEvent {
    fn from(e: EventV1) -> Self {
        use EventV1 as E;
        match e {
            E::Failed => Self::Failed,
            E::Crashed => Self::Crashed,
            E::Late => Self::Late,
            E::Cancelled => Self::Cancelled,
            E::Completed => Self::Completed,
            E::Recovered => Self::Recovered,
            E::DeploymentCreated => Self::DeploymentCreated,
            E::DeploymentChanged => Self::DeploymentChanged,
            E::DeploymentArchived => Self::DeploymentArchived,
            E::Test => Self::Test,
        }
    }
}

/// Version 1 of a stored message.
#[derive(Debug, Serialize, Deserialize)]
struct MessageV1 {
    /// The format version: 1 (absent in rows written before versions).
    #[serde(default = "one")]
    v: u64,
    event: EventV1,
    project: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    deployment: Option<String>,
    #[serde(default)]
    title: String,
    #[serde(default)]
    text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    run: Option<RunSummaryV1>,
    at: Timestamp,
}

impl From<Message> for MessageV1 {
    fn from(m: Message) -> Self {
        let Message {
            event,
            project,
            deployment,
            title,
            text,
            run,
            at,
        } = m;
        MessageV1 {
            v: VERSION,
            event: event.into(),
            project,
            deployment,
            title,
            text,
            run: run.map(RunSummaryV1::from),
            at,
        }
    }
}

impl From<MessageV1> for Message {
    fn from(m: MessageV1) -> Self {
        let MessageV1 {
            v: _,
            event,
            project,
            deployment,
            title,
            text,
            run,
            at,
        } = m;
        Message {
            event: event.into(),
            project,
            deployment,
            title,
            text,
            run: run.map(RunSummary::from),
            at,
        }
    }
}

/// Version 1 of the run a stored message is about; its state by the name the store's state
/// columns hold (`Failed`).
#[derive(Debug, Serialize, Deserialize)]
struct RunSummaryV1 {
    id: Uuid,
    #[serde(default)]
    name: String,
    #[serde(default)]
    flow: String,
    #[serde(with = "state_name")]
    state: StateKind,
    #[serde(default)]
    attempt: u32,
    #[serde(default)]
    path: String,
}

impl From<RunSummary> for RunSummaryV1 {
    fn from(r: RunSummary) -> Self {
        let RunSummary {
            id,
            name,
            flow,
            state,
            attempt,
            path,
        } = r;
        RunSummaryV1 {
            id,
            name,
            flow,
            state,
            attempt,
            path,
        }
    }
}

impl From<RunSummaryV1> for RunSummary {
    fn from(r: RunSummaryV1) -> Self {
        let RunSummaryV1 {
            id,
            name,
            flow,
            state,
            attempt,
            path,
        } = r;
        RunSummary {
            id,
            name,
            flow,
            state,
            attempt,
            path,
        }
    }
}

/// A state as its name ([`StateKind::as_str`]), read back by [`StateKind`]'s `FromStr`.
mod state_name {
    use serde::{Deserialize, Deserializer, Serializer};
    use weir_core::StateKind;

    pub(super) fn serialize<S: Serializer>(s: &StateKind, ser: S) -> Result<S::Ok, S::Error> {
        ser.serialize_str(s.as_str())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(de: D) -> Result<StateKind, D::Error> {
        let name = String::deserialize(de)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

fn one() -> u64 {
    1
}
fn default_count() -> u32 {
    60
}
fn default_per_s() -> u64 {
    3600
}

#[cfg(test)]
mod tests;
