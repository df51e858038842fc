//! Sending one notification to its destination: a signed JSON webhook, a Slack incoming
//! webhook, or an SNS topic.
//!
//! Webhook signature: `X-Weir-Signature: sha256=HEX`, the HMAC-SHA256 under the signing key
//! of `TIMESTAMP.BODY`, where `TIMESTAMP` is the `X-Weir-Timestamp` header (Unix seconds)
//! and `BODY` the exact request body; a receiver recomputes it and rejects old timestamps.
//! Errors never carry a resolved URL (reqwest's are stripped of it) or a secret value.

use super::{Failure, Notifier};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use weir_core::api::notifications::Destination;
use weir_core::notify::Message;
use weir_store::ClaimedDelivery;

/// Longest SNS subject (the service's limit).
const SNS_SUBJECT_MAX: usize = 100;

pub(super) async fn send(n: &Notifier, d: &ClaimedDelivery) -> Result<(), Failure> {
    match &d.destination {
        Destination::Webhook { url, signing_key } => {
            let url = url_of(n, url).await?;
            let body = serde_json::to_vec(&d.message)
                .map_err(|e| Failure::permanent(format!("cannot encode the message: {e}")))?;
            // When this attempt is made, so receivers can refuse replays of old requests.
            let timestamp = chrono::Utc::now().timestamp();
            let mut req = n
                .http()
                .post(&url)
                .header("content-type", "application/json")
                .header("x-weir-event", d.message.event.as_str())
                .header("x-weir-delivery", d.id.to_string())
                .header("x-weir-timestamp", timestamp.to_string());
            if let Some(key) = signing_key {
                let key = resolve(n, key).await?;
                req = req.header("x-weir-signature", signature(&key, timestamp, &body));
            }
            post(req.body(body)).await
        }
        Destination::Slack { url } => {
            let url = url_of(n, url).await?;
            let body = serde_json::to_vec(&slack_body(&d.message))
                .map_err(|e| Failure::permanent(format!("cannot encode the message: {e}")))?;
            post(
                n.http()
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(body),
            )
            .await
        }
        Destination::Sns { topic_arn } => {
            let Some(sns) = &n.hooks.sns else {
                return Err(Failure::permanent(
                    "this server was built without AWS support (the aws feature), so it cannot publish to SNS",
                ));
            };
            let message = serde_json::to_string(&d.message)
                .map_err(|e| Failure::permanent(format!("cannot encode the message: {e}")))?;
            sns.publish(topic_arn, &sns_subject(&d.message.title), &message)
                .await
        }
    }
}

/// The destination URL: as written when plain, else the value of its secret reference.
async fn url_of(n: &Notifier, url: &str) -> Result<String, Failure> {
    if url.starts_with("http://") || url.starts_with("https://") {
        Ok(url.to_string())
    } else {
        resolve(n, url).await
    }
}

async fn resolve(n: &Notifier, reference: &str) -> Result<String, Failure> {
    n.hooks
        .secrets
        .resolve(reference)
        .await
        .map_err(|e| Failure::transient(format!("secret {reference}: {e}")))
}

/// `sha256=HEX` of HMAC-SHA256(key, "TIMESTAMP.BODY").
pub(crate) fn signature(key: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(key.as_bytes()) {
        Ok(m) => m,
        // HMAC takes keys of any length; this arm is never reached.
        Err(_) => return String::new(),
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

/// Slack's incoming-webhook format: a fallback `text` and one mrkdwn section.
pub(crate) fn slack_body(m: &Message) -> serde_json::Value {
    let line = format!("*{}*\n{}", m.title, m.text);
    serde_json::json!({
        "text": format!("{}: {}", m.title, m.text),
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": line}}],
    })
}

fn sns_subject(title: &str) -> String {
    // SNS subjects are ASCII-printable, one line, at most 100 characters.
    let clean: String = title
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect();
    clean.chars().take(SNS_SUBJECT_MAX).collect()
}

async fn post(req: reqwest::RequestBuilder) -> Result<(), Failure> {
    let resp = req.send().await.map_err(|e| {
        Failure::transient(format!("cannot reach the destination: {}", e.without_url()))
    })?;
    let status = resp.status();
    if status.is_success() {
        return Ok(());
    }
    let message = format!("the destination answered {status}");
    if status.as_u16() == 408 || status.as_u16() == 429 || status.is_server_error() {
        Err(Failure::transient(message))
    } else {
        Err(Failure::permanent(message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hmac_sha256_of_timestamp_dot_body() {
        // The value computed independently:
        // printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac key
        let sig = signature("key", 1_700_000_000, br#"{"a":1}"#);
        assert_eq!(
            sig,
            "sha256=a438e398bfafc57e4396bb7fc2304422f0f768e965d073ca313cb52e22e6ad03"
        );
    }

    #[test]
    fn subjects_are_one_short_ascii_line() {
        assert_eq!(sns_subject("a\nb"), "a?b");
        assert_eq!(sns_subject(&"x".repeat(300)).len(), SNS_SUBJECT_MAX);
    }
}
