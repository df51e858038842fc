//! Delivering notifications from the outbox.
//!
//! The store writes an outbox row in the same transaction as the run state change or
//! deployment write it is about. The delivery loop here (one per server replica, every tick)
//! claims due rows with a lease, resolves the destination's secret references *now* — from
//! this server's environment and secret stores, never from the database — sends, and records
//! the outcome: delivered; retried with exponential backoff
//! (`weir_core::notify::backoff`) after a transient failure; failed for good after a
//! permanent one or [`weir_core::notify::MAX_ATTEMPTS`]; or suppressed by the rule's rate
//! limit. A replica that dies mid-delivery leaves its lease to expire and another one
//! delivers: at least once (webhooks get `X-Weir-Delivery`, the row's id, to drop repeats).
//!
//! Cloud destinations plug in through [`Hooks`]: `weir-cli` gives the server its AWS secret
//! stores and an SNS publisher when built with the `aws` feature.

mod send;

use futures::future::BoxFuture;
use std::sync::Arc;
use weir_core::Timestamp;
use weir_core::api::notifications::DeliveryStatus;
use weir_core::notify;
use weir_store::{ClaimedDelivery, Store};

/// Deliveries claimed per pass.
const BATCH: u32 = 32;
/// How long a claim lasts: longer than one attempt may take (HTTP times out after 10 s).
const CLAIM_LEASE_S: i64 = 60;

/// Why a delivery attempt failed. The text never holds a secret value or a secret URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// What went wrong, for the delivery log (no secret value or URL in it).
    pub message: String,
    /// Whether retrying cannot help (a 4xx answer, a malformed destination).
    pub permanent: bool,
}

impl Failure {
    /// A failure worth retrying.
    pub fn transient(message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            permanent: false,
        }
    }

    /// A failure no retry will fix.
    pub fn permanent(message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            permanent: true,
        }
    }
}

/// Resolves secret references (`env:`, `file:`, `ssm:`, `secretsmanager:`) at delivery time.
pub trait SecretSource: Send + Sync + 'static {
    /// The value `reference` names. The error names the reference, never a value.
    fn resolve<'a>(&'a self, reference: &'a str) -> BoxFuture<'a, Result<String, String>>;
}

/// Publishes to Amazon SNS (the `aws` leaf crate implements it).
pub trait SnsPublisher: Send + Sync + 'static {
    /// Publishes `message` with `subject` to `topic_arn`.
    fn publish<'a>(
        &'a self,
        topic_arn: &'a str,
        subject: &'a str,
        message: &'a str,
    ) -> BoxFuture<'a, Result<(), Failure>>;
}

/// What the delivery loop resolves secrets with and publishes to SNS with.
#[derive(Clone)]
pub struct Hooks {
    /// Secret references; by default `env:` and `file:` only.
    pub secrets: Arc<dyn SecretSource>,
    /// SNS; `None` in a server built without AWS support (SNS deliveries then fail, saying so).
    pub sns: Option<Arc<dyn SnsPublisher>>,
}

impl Default for Hooks {
    fn default() -> Self {
        Hooks {
            secrets: Arc::new(LocalSecrets),
            sns: None,
        }
    }
}

impl std::fmt::Debug for Hooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hooks")
            .field("sns", &self.sns.is_some())
            .finish_non_exhaustive()
    }
}

/// `env:` and `file:` references, from this server's environment and files.
struct LocalSecrets;

impl SecretSource for LocalSecrets {
    fn resolve<'a>(&'a self, reference: &'a str) -> BoxFuture<'a, Result<String, String>> {
        Box::pin(async move {
            use weir_core::secret::{SecretRef, SecretScheme};
            let r = SecretRef::parse(reference).map_err(|e| e.to_string())?;
            match r.scheme {
                SecretScheme::Env => std::env::var(r.path).map_err(|_| {
                    format!("environment variable {} is not set on the server", r.path)
                }),
                SecretScheme::File => tokio::fs::read_to_string(r.path)
                    .await
                    .map(|s| s.trim_end_matches(['\n', '\r']).to_string())
                    .map_err(|e| format!("cannot read {}: {e}", r.path)),
                other => Err(format!(
                    "this server has no `{other}` secret store (built without the aws feature)"
                )),
            }
        })
    }
}

/// The delivery side of a server: its claimer name, HTTP client and hooks.
#[derive(Clone)]
pub(crate) struct Notifier {
    /// Names this replica's claims.
    pub(crate) claimer: String,
    /// Built at the first webhook or Slack delivery (see [`Notifier::http`]).
    http: std::sync::OnceLock<reqwest::Client>,
    pub(crate) hooks: Hooks,
}

impl Notifier {
    pub(crate) fn new(hooks: Hooks) -> Notifier {
        Notifier {
            claimer: uuid::Uuid::now_v7().to_string(),
            http: std::sync::OnceLock::new(),
            hooks,
        }
    }

    /// The HTTP client of webhook and Slack deliveries, built when the first one is sent:
    /// building it reads and parses the system's root certificates (~7 ms of CPU at boot
    /// here), which a server that sends no notification never needs.
    pub(crate) fn http(&self) -> &reqwest::Client {
        self.http.get_or_init(|| {
            crate::tls::install_crypto_provider();
            reqwest::Client::builder()
                .connect_timeout(std::time::Duration::from_secs(5))
                .timeout(std::time::Duration::from_secs(10))
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap_or_default()
        })
    }
}

/// Registers the outbox metrics so they are exported from the start.
pub(crate) fn describe_metrics() {
    for outcome in ["delivered", "retried", "failed", "suppressed"] {
        metrics::counter!("weir_notifications_total", "outcome" => outcome).increment(0);
    }
    metrics::gauge!("weir_notification_outbox_pending").set(0.0);
}

/// The clock deliveries are dated by (the server's database clock).
pub(crate) type Clock<'a> = &'a (dyn Fn() -> Timestamp + Sync);

/// One pass of the delivery loop: claim due deliveries and attempt each, concurrently.
pub(crate) async fn deliver(
    store: &Store,
    notifier: &Notifier,
    now: Clock<'_>,
) -> Result<(), weir_store::Error> {
    let lease = chrono::Duration::seconds(CLAIM_LEASE_S);
    let claimed = store
        .claim_deliveries(&notifier.claimer, BATCH, lease, now())
        .await?;
    if !claimed.is_empty() {
        let attempts = claimed
            .into_iter()
            .map(|d| attempt(store, notifier, now, d));
        for r in futures::future::join_all(attempts).await {
            r?;
        }
    }
    if let Ok(counts) = store.delivery_counts().await {
        let pending = counts.get(&DeliveryStatus::Pending).copied().unwrap_or(0);
        metrics::gauge!("weir_notification_outbox_pending").set(pending as f64);
    }
    Ok(())
}

/// Attempts one claimed delivery and records how it went.
async fn attempt(
    store: &Store,
    notifier: &Notifier,
    clock: Clock<'_>,
    d: ClaimedDelivery,
) -> Result<(), weir_store::Error> {
    let now = clock();
    let claimer = notifier.claimer.as_str();
    let sent = store
        .delivered_since(d.rule_id, now - d.rate_limit.window())
        .await?;
    if !d.rate_limit.allows(sent) {
        let why = format!("rate limit of rule {} reached ({})", d.rule, d.rate_limit);
        store
            .finish_delivery(
                d.id,
                claimer,
                DeliveryStatus::Suppressed,
                Some(&why),
                None,
                now,
            )
            .await?;
        metrics::counter!("weir_notifications_total", "outcome" => "suppressed").increment(1);
        return Ok(());
    }
    let outcome = send::send(notifier, &d).await;
    let now = clock();
    let (status, error, retry_at, label) = match &outcome {
        Ok(()) => (DeliveryStatus::Delivered, None, None, "delivered"),
        Err(f) if f.permanent || d.attempt >= notify::MAX_ATTEMPTS => (
            DeliveryStatus::Failed,
            Some(f.message.as_str()),
            None,
            "failed",
        ),
        Err(f) => (
            DeliveryStatus::Pending,
            Some(f.message.as_str()),
            Some(now + notify::backoff(d.attempt)),
            "retried",
        ),
    };
    if let Some(e) = error {
        tracing::warn!(
            message = "notification not delivered",
            delivery = %d.id, rule = %d.rule, attempt = d.attempt, outcome = label, error = e
        );
    }
    store
        .finish_delivery(d.id, claimer, status, error, retry_at, now)
        .await?;
    metrics::counter!("weir_notifications_total", "outcome" => label).increment(1);
    Ok(())
}
