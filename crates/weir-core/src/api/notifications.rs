//! Wire types of notification rules and their deliveries (`/api/v1/…/notifications`).
//!
//! A rule says which events of a project (or of some of its deployments) go to which
//! destination. Destinations hold secret *references* only (`ssm:/chat/webhook`), never the
//! URL or key itself: the server resolves them when it delivers.

use crate::{Timestamp, names};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A secret reference with something after its scheme (JSON Schema pattern): what
/// `weir_core::secret::SecretRef::parse` accepts.
pub const SECRET_REF_PATTERN: &str = "^(env|file|ssm|secretsmanager):\\s*\\S";

/// A plain `http(s)://` URL without spaces, or a secret reference to one (JSON Schema
/// pattern).
pub const URL_OR_SECRET_PATTERN: &str = "^(https?://\\S+$|(env|file|ssm|secretsmanager):\\s*\\S)";

/// An SNS topic ARN (JSON Schema pattern).
pub const TOPIC_ARN_PATTERN: &str = "^arn:[a-z-]+:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]{1,256}$";

/// What happened, as a rule's `on` names it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum NotificationEvent {
    /// A run ended Failed (no retry left).
    Failed,
    /// A run ended Crashed: its process or agent died (no retry left).
    Crashed,
    /// A scheduled run was not started within the grace period.
    Late,
    /// A run was cancelled.
    Cancelled,
    /// A run Completed.
    Completed,
    /// A run Completed after an earlier attempt of it failed or crashed.
    Recovered,
    /// `weir deploy` (or the API) created a deployment.
    DeploymentCreated,
    /// A deployment got a new version, or was restored from the archive.
    DeploymentChanged,
    /// A deployment was archived (`weir deploy --prune`, `weir deployments rm`).
    DeploymentArchived,
    /// Sent on request (`weir notifications test`) to check a destination.
    Test,
}

impl NotificationEvent {
    /// Every event a rule may name.
    pub const ALL: [NotificationEvent; 10] = [
        NotificationEvent::Failed,
        NotificationEvent::Crashed,
        NotificationEvent::Late,
        NotificationEvent::Cancelled,
        NotificationEvent::Completed,
        NotificationEvent::Recovered,
        NotificationEvent::DeploymentCreated,
        NotificationEvent::DeploymentChanged,
        NotificationEvent::DeploymentArchived,
        NotificationEvent::Test,
    ];

    /// The name used in `weir.toml`, the API and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            NotificationEvent::Failed => "failed",
            NotificationEvent::Crashed => "crashed",
            NotificationEvent::Late => "late",
            NotificationEvent::Cancelled => "cancelled",
            NotificationEvent::Completed => "completed",
            NotificationEvent::Recovered => "recovered",
            NotificationEvent::DeploymentCreated => "deployment_created",
            NotificationEvent::DeploymentChanged => "deployment_changed",
            NotificationEvent::DeploymentArchived => "deployment_archived",
            NotificationEvent::Test => "test",
        }
    }

    /// Parses [`Self::as_str`]'s names.
    pub fn parse(name: &str) -> Option<NotificationEvent> {
        Self::ALL.into_iter().find(|e| e.as_str() == name)
    }
}

impl std::fmt::Display for NotificationEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a rule's notifications go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Destination {
    /// An HTTP POST of the JSON notification, signed with HMAC-SHA256 when a key is given
    /// (headers `X-Weir-Timestamp` and `X-Weir-Signature: sha256=HEX` over `TIMESTAMP.BODY`).
    Webhook {
        /// The URL, or a secret reference to it (`ssm:/team/webhook_url`).
        #[schemars(pattern(URL_OR_SECRET_PATTERN))]
        url: String,
        /// Secret reference to the signing key.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(pattern(SECRET_REF_PATTERN))]
        signing_key: Option<String>,
    },
    /// A Slack incoming webhook (`{"text": …}`). Its URL is a credential, so only a secret
    /// reference to it is accepted.
    Slack {
        /// Secret reference to the incoming-webhook URL.
        #[schemars(pattern(SECRET_REF_PATTERN))]
        url: String,
    },
    /// An Amazon SNS topic (needs a server built with the `aws` feature).
    Sns {
        /// The topic's ARN; its region is the region published to.
        #[schemars(pattern(TOPIC_ARN_PATTERN))]
        topic_arn: String,
    },
}

impl Destination {
    /// `webhook`, `slack` or `sns`.
    pub fn kind(&self) -> &'static str {
        match self {
            Destination::Webhook { .. } => "webhook",
            Destination::Slack { .. } => "slack",
            Destination::Sns { .. } => "sns",
        }
    }
}

/// At most `count` deliveries per `per_s` seconds for one rule; the rest are suppressed
/// (logged, not sent), so a failing hourly job cannot flood a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Deliveries allowed in a window.
    #[schemars(range(min = 1, max = 100000))]
    pub count: u32,
    /// The window, in seconds.
    #[schemars(range(min = 1, max = 2592000))]
    pub per_s: u64,
}

impl Default for RateLimit {
    fn default() -> Self {
        RateLimit {
            count: 60,
            per_s: 3600,
        }
    }
}

/// Where a rule was written: `weir deploy` owns the rules of its file (and removes the ones
/// the file no longer has); rules added through the CLI or API are left alone by it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RuleSource {
    /// `weir notifications add`, the API.
    #[default]
    Api,
    /// A `[[notifications]]` table of `weir.toml`.
    File,
}

impl RuleSource {
    /// `api` or `file`.
    pub fn as_str(self) -> &'static str {
        match self {
            RuleSource::Api => "api",
            RuleSource::File => "file",
        }
    }
}

/// Most events one rule may name (the `on` list's schema says the same).
pub const MAX_RULE_EVENTS: usize = 10;

/// Most deployments one rule may be narrowed to (the `deployments` list's schema says the same).
pub const MAX_RULE_DEPLOYMENTS: usize = 100;

/// What a rule sends where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NotificationRuleSpec {
    /// Events that trigger it (at most [`MAX_RULE_EVENTS`]).
    #[schemars(length(min = 1, max = 10))]
    pub on: Vec<NotificationEvent>,
    /// Only events of these deployments; empty: every deployment of the project (and its
    /// ad-hoc runs).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 100), inner(pattern(names::PATTERN)))]
    pub deployments: Vec<String>,
    /// Where its notifications are sent: one webhook, Slack channel or SNS topic.
    pub destination: Destination,
    /// Most deliveries per window.
    #[serde(default)]
    pub rate_limit: RateLimit,
}

/// A notification rule as stored, with its name and where it came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct NotificationRule {
    /// The rule's id, kept when the rule is replaced (deliveries point at it).
    pub id: Uuid,
    /// The project whose runs and deployments it watches.
    pub project: String,
    /// Its name, unique within the project.
    pub name: String,
    /// Which events it sends, for which deployments, where, at what rate.
    pub spec: NotificationRuleSpec,
    /// Whether `weir deploy` wrote it from a weir.toml's `[[notifications]]` or the API
    /// did (`weir notifications add`).
    pub source: RuleSource,
    /// When the rule was first created (kept when it is replaced).
    pub created_at: Timestamp,
    /// When its spec last changed.
    pub updated_at: Timestamp,
}

/// Body of `PUT /projects/{project}/notifications/{name}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpsertNotificationRule {
    /// What the rule does.
    pub spec: NotificationRuleSpec,
    /// Who writes it (`weir deploy` says `file`).
    #[serde(default)]
    pub source: RuleSource,
}

/// Path of one rule: `/projects/{project}/notifications/{name}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RulePath {
    /// The project the rule belongs to.
    #[schemars(pattern(names::PATTERN))]
    pub project: String,
    /// The rule's name in it.
    #[schemars(pattern(names::PATTERN))]
    pub name: String,
}

/// Where a delivery stands.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Waiting to be sent (or to be retried at `next_attempt_at`).
    Pending,
    /// The destination accepted it.
    Delivered,
    /// Given up after the last retry, or refused for good (e.g. 4xx, an unresolvable secret).
    Failed,
    /// Not sent: the rule's rate limit was reached.
    Suppressed,
}

impl DeliveryStatus {
    /// Every status, in the order a delivery may pass through them.
    pub const ALL: [DeliveryStatus; 4] = [
        DeliveryStatus::Pending,
        DeliveryStatus::Delivered,
        DeliveryStatus::Failed,
        DeliveryStatus::Suppressed,
    ];

    /// The stored and shown name.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
            DeliveryStatus::Suppressed => "suppressed",
        }
    }

    /// Parses [`Self::as_str`]'s names.
    pub fn parse(name: &str) -> Option<DeliveryStatus> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

/// What a delivery's `destination` says when the server cannot read the stored destination
/// (written by a newer Weir, or corrupt).
pub const UNREADABLE_DESTINATION: &str = "unreadable";

/// One notification in the outbox: the delivery log's entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Delivery {
    /// Stable id (creation order).
    pub id: Uuid,
    /// The rule that made it.
    pub rule_id: Uuid,
    /// The rule's name when the delivery was made.
    pub rule: String,
    /// The project of the run or deployment it is about.
    pub project: String,
    /// The event that made it: a run's state change, a deployment write, or a test.
    pub event: NotificationEvent,
    /// The one-line summary sent.
    pub title: String,
    /// `webhook`, `slack` or `sns`; `unreadable` when the server cannot read the stored
    /// destination (written by a newer Weir, or corrupt: then the delivery is `failed`, and its
    /// last error says so).
    pub destination: String,
    /// Where it stands: pending (maybe awaiting a retry), delivered, failed for good, or
    /// suppressed by the rule's rate limit.
    pub status: DeliveryStatus,
    /// Attempts made so far.
    pub attempts: u32,
    /// When the next attempt is due (pending deliveries).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<Timestamp>,
    /// Why the last attempt failed (never a secret value).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// When the event happened.
    pub created_at: Timestamp,
    /// When the destination accepted it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered_at: Option<Timestamp>,
}

/// Query of `GET /notifications/deliveries`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeliveryQuery {
    /// Only deliveries of this project's rules; absent: every project the caller
    /// may see.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(names::PATTERN))]
    pub project: Option<String>,
    /// Only this rule (needs `project`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(names::PATTERN))]
    pub rule: Option<String>,
    /// The previous page's `next_cursor`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<Uuid>,
    /// Page size (default 50).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1000))]
    pub limit: Option<u32>,
}
