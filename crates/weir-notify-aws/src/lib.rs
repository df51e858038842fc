//! The SNS destination of Weir's notifications: [`SnsTopics`] publishes a notification to a
//! topic with the official AWS SDK (one client per region, the region taken from the topic's
//! ARN), configured by the default AWS chain through `weir_secrets_aws::config_loader` (the
//! workspace's one HTTPS client on ring). As for the secret stores and the ECS launcher, the
//! endpoint is the standard chain's: `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_SNS` in the
//! server's environment point it at another endpoint (moto's server, in
//! `crates/weir-cli/tests/e2e_notifications.rs`); nothing else overrides it. The server calls
//! it from its delivery loop.
//!
//! Failures are classified for the loop's retries: throttling, 5xx and network errors are
//! transient; a missing topic, a refused authorization or an invalid parameter is permanent.
//! Messages name the topic and the service's code, never a credential.

use aws_sdk_sns::error::{ProvideErrorMetadata, SdkError};
use futures::future::BoxFuture;
use std::collections::HashMap;
use tokio::sync::{Mutex, OnceCell};
use weir_secrets_aws::aws_config::{Region, SdkConfig};
use weir_server::notify::{Failure, SnsPublisher};

/// The SNS SDK, re-exported so callers and tests use the same version.
pub use aws_sdk_sns;

/// Publishes to SNS topics; loads the AWS configuration on first use.
#[derive(Debug, Default)]
pub struct SnsTopics {
    config: OnceCell<SdkConfig>,
    given: Option<SdkConfig>,
    clients: Mutex<HashMap<String, aws_sdk_sns::Client>>,
}

impl SnsTopics {
    /// Topics reached with the default AWS chain (loaded on the first publish).
    pub fn from_env() -> SnsTopics {
        SnsTopics::default()
    }

    /// Topics reached with `config` (tests point it at moto).
    pub fn with_config(config: SdkConfig) -> SnsTopics {
        SnsTopics {
            given: Some(config),
            ..SnsTopics::default()
        }
    }

    async fn client(&self, region: &str) -> aws_sdk_sns::Client {
        let config = self
            .config
            .get_or_init(|| async {
                match &self.given {
                    Some(c) => c.clone(),
                    None => weir_secrets_aws::config_loader().load().await,
                }
            })
            .await;
        let mut clients = self.clients.lock().await;
        clients
            .entry(region.to_string())
            .or_insert_with(|| {
                let conf = aws_sdk_sns::config::Builder::from(config)
                    .region(Region::new(region.to_string()))
                    .build();
                aws_sdk_sns::Client::from_conf(conf)
            })
            .clone()
    }

    /// Publishes `message` with `subject` to `topic_arn`.
    pub async fn publish_to(
        &self,
        topic_arn: &str,
        subject: &str,
        message: &str,
    ) -> Result<(), Failure> {
        let region = topic_arn
            .split(':')
            .nth(3)
            .filter(|r| !r.is_empty())
            .ok_or_else(|| Failure::permanent(format!("{topic_arn:?} is not an SNS topic ARN")))?;
        let client = self.client(region).await;
        client
            .publish()
            .topic_arn(topic_arn)
            .subject(subject)
            .message(message)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify(topic_arn, &e))
    }
}

impl SnsPublisher for SnsTopics {
    fn publish<'a>(
        &'a self,
        topic_arn: &'a str,
        subject: &'a str,
        message: &'a str,
    ) -> BoxFuture<'a, Result<(), Failure>> {
        Box::pin(self.publish_to(topic_arn, subject, message))
    }
}

fn classify<E, R>(topic: &str, err: &SdkError<E, R>) -> Failure
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    match err.as_service_error() {
        Some(service) => {
            let code = service.code().unwrap_or("unknown error");
            let said = match service.message() {
                Some(m) => format!("{code}: {m}"),
                None => code.to_string(),
            };
            let text = match code {
                // The service's own words vary ("Topic does not exist", "Endpoint does not
                // exist"): say plainly what is wrong and what to check.
                "NotFound" => format!(
                    "SNS topic {topic} not found ({said}): check the topic's name, region and \
                     account in the ARN"
                ),
                "AuthorizationError" | "AccessDenied" | "AccessDeniedException" => format!(
                    "SNS topic {topic}: not allowed to publish ({said}): the server's AWS \
                     credentials need sns:Publish on the topic"
                ),
                _ => format!("SNS topic {topic}: {said}"),
            };
            let transient = code.contains("Throttl")
                || code.contains("InternalError")
                || code.contains("ServiceUnavailable")
                || code.contains("KMSThrottling");
            if transient {
                Failure::transient(text)
            } else {
                Failure::permanent(text)
            }
        }
        None => Failure::transient(format!(
            "SNS topic {topic}: {}",
            weir_secrets_aws::error_chain(err)
        )),
    }
}
