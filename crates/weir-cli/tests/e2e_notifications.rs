//! Notifications end to end through real `weir server` processes, a real agent and the real
//! `example-flows` binary:
//!
//! - **SNS** (with `--features weir-cli/aws` and moto, `WEIR_TEST_AWS_ENDPOINT`): a server
//!   pointed at moto by `AWS_ENDPOINT_URL` alone, as an AWS deployment is configured, publishes
//!   a failed run's notification to a topic through the official SDK; an SQS queue subscribed
//!   to the topic receives it with the delivery's title as subject and the JSON message as
//!   body. A rule whose topic does not exist is in the delivery log as failed, naming the topic.
//!
//! Needs `cargo build -p weir-cli -p example-flows --bins --features weir-cli/aws`.

#![cfg(feature = "aws")]

mod common;

use common::{ServerOptions, Weir, wait_until};
use std::io::{Read, Write};
use std::time::Duration;
use uuid::Uuid;
use weir_core::StateKind;
use weir_core::api::notifications::{Delivery, DeliveryQuery, DeliveryStatus};

const TOML: &str = r#"project = "dev"

[defaults]
command = ["{flows}"]

[deployments.fails]
"#;

/// The delivery log of rule `rule` of project `dev`.
fn deliveries(w: &Weir, rule: &str) -> Vec<Delivery> {
    w.block_on(w.client.deliveries(&DeliveryQuery {
        project: Some("dev".into()),
        rule: Some(rule.into()),
        ..Default::default()
    }))
    .unwrap_or_else(|e| panic!("the delivery log of rule {rule}: {e}"))
    .items
}

/// SNS through moto: the topic, the SQS queue subscribed to it (SQS's JSON protocol over
/// plain HTTP; moto checks the credential scope, not the signature).
mod sns {
    use super::*;
    use weir_notify_aws::aws_sdk_sns as sns;
    use weir_secrets_aws::aws_config::Region;

    /// moto's default account.
    const ACCOUNT: &str = "123456789012";

    /// One SQS call (`AmazonSQS.<action>`) with a JSON body; its JSON answer.
    fn sqs(endpoint: &str, action: &str, body: serde_json::Value) -> serde_json::Value {
        let authority = endpoint
            .strip_prefix("http://")
            .expect("moto's endpoint is plain http://")
            .trim_end_matches('/');
        let body = body.to_string();
        let mut s = std::net::TcpStream::connect(authority).expect("connect to moto");
        let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
        write!(
            s,
            "POST / HTTP/1.1\r\nHost: {authority}\r\n\
             Authorization: AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/sqs/aws4_request, SignedHeaders=host, Signature=0\r\n\
             X-Amz-Target: AmazonSQS.{action}\r\nContent-Type: application/x-amz-json-1.0\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .expect("send to moto");
        let mut answer = String::new();
        let _ = s.read_to_string(&mut answer);
        let (head, text) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
        assert!(
            head.starts_with("HTTP/1.1 200") || head.starts_with("HTTP/1.0 200"),
            "SQS {action}: {answer}"
        );
        if text.trim().is_empty() {
            return serde_json::Value::Null;
        }
        serde_json::from_str(text).unwrap_or_else(|e| panic!("SQS {action} answered {text}: {e}"))
    }

    /// The SNS envelopes of the messages in `queue_url` (waiting up to 1 s for the first),
    /// deleted from the queue once read, so a later call sees only newer ones.
    fn receive(endpoint: &str, queue_url: &str) -> Vec<serde_json::Value> {
        let got = sqs(
            endpoint,
            "ReceiveMessage",
            serde_json::json!({"QueueUrl": queue_url, "MaxNumberOfMessages": 10, "WaitTimeSeconds": 1}),
        );
        let messages = got["Messages"].as_array().cloned().unwrap_or_default();
        messages
            .iter()
            .map(|m| {
                sqs(
                    endpoint,
                    "DeleteMessage",
                    serde_json::json!({"QueueUrl": queue_url, "ReceiptHandle": m["ReceiptHandle"]}),
                );
                let body = m["Body"].as_str().expect("a message body");
                serde_json::from_str(body).unwrap_or_else(|e| panic!("SNS envelope {body}: {e}"))
            })
            .collect()
    }

    /// A rule with an SNS destination in `weir.toml`: a failed run's notification reaches the
    /// topic (an SQS queue subscribed to it receives it once, with the delivery's title as
    /// subject and the run in the JSON message); `weir notifications test` reaches it too; a
    /// rule naming a topic that does not exist is failed in the delivery log after one
    /// attempt (not retried), the error naming the topic.
    #[test]
    fn sns_topic_receives_the_failed_run_and_a_missing_topic_is_logged() {
        let Some(endpoint) = weir_testkit::moto::endpoint(
            "sns_topic_receives_the_failed_run_and_a_missing_topic_is_logged",
        ) else {
            return;
        };
        let suffix = Uuid::now_v7().simple().to_string();
        let topic_name = format!("weir-chat-{suffix}");
        let queue_name = format!("weir-chat-{suffix}");
        let missing = format!("arn:aws:sns:us-east-1:{ACCOUNT}:weir-missing-{suffix}");

        let queue_url = sqs(
            &endpoint,
            "CreateQueue",
            serde_json::json!({"QueueName": queue_name}),
        )["QueueUrl"]
            .as_str()
            .expect("a queue URL")
            .to_string();
        let queue_arn = format!("arn:aws:sqs:us-east-1:{ACCOUNT}:{queue_name}");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let topic_arn = rt.block_on(async {
            let config = weir_secrets_aws::config_loader()
                .endpoint_url(&endpoint)
                .region(Region::new("us-east-1"))
                .credentials_provider(sns::config::Credentials::new(
                    "test",
                    "test",
                    None,
                    None,
                    "weir-tests",
                ))
                .load()
                .await;
            let client = sns::Client::new(&config);
            let topic = client
                .create_topic()
                .name(&topic_name)
                .send()
                .await
                .unwrap_or_else(|e| {
                    panic!("create topic: {}", sns::error::DisplayErrorContext(&e))
                });
            let arn = topic.topic_arn().expect("a topic ARN").to_string();
            client
                .subscribe()
                .topic_arn(&arn)
                .protocol("sqs")
                .endpoint(&queue_arn)
                .send()
                .await
                .unwrap_or_else(|e| panic!("subscribe: {}", sns::error::DisplayErrorContext(&e)));
            arn
        });

        // The server reaches AWS through the standard environment only, as in production.
        let mut w = Weir::start_env(
            ServerOptions::default(),
            &[],
            &[
                ("AWS_ENDPOINT_URL", &endpoint),
                ("AWS_ACCESS_KEY_ID", "test"),
                ("AWS_SECRET_ACCESS_KEY", "test"),
                ("AWS_REGION", "us-east-1"),
                ("AWS_EC2_METADATA_DISABLED", "true"),
                ("AWS_CONFIG_FILE", "/nonexistent/weir-tests/aws-config"),
                (
                    "AWS_SHARED_CREDENTIALS_FILE",
                    "/nonexistent/weir-tests/aws-credentials",
                ),
            ],
        );
        w.deploy(&format!(
            r#"{TOML}
[[notifications]]
name = "chat"
on = ["failed"]
destination = {{ type = "sns", topic_arn = "{topic_arn}" }}

[[notifications]]
name = "lost"
on = ["failed"]
destination = {{ type = "sns", topic_arn = "{missing}" }}
"#
        ));
        w.start_agent(1);
        let run = w.create_run("dev", "fails", Default::default());
        let failed = w.wait_state(run.id, StateKind::Failed, Duration::from_secs(30));

        let got = wait_until(
            "the notification on the SQS queue",
            Duration::from_secs(30),
            || {
                let got = receive(&endpoint, &queue_url);
                if got.is_empty() {
                    Err(format!("nothing yet; chat: {:?}", deliveries(&w, "chat")))
                } else {
                    Ok(got)
                }
            },
        );
        assert_eq!(got.len(), 1, "one message: {got:#?}");
        let envelope = &got[0];
        let chat = deliveries(&w, "chat");
        assert_eq!(chat.len(), 1, "{chat:#?}");
        assert_eq!(
            (chat[0].status, chat[0].attempts),
            (DeliveryStatus::Delivered, 1),
            "{chat:#?}"
        );
        assert_eq!(envelope["Type"], "Notification");
        assert_eq!(envelope["TopicArn"], topic_arn.as_str());
        let name = &failed.run.name;
        assert_eq!(
            envelope["Subject"],
            format!("dev/fails: run {name} failed").as_str(),
            "the title is the subject"
        );
        assert_eq!(envelope["Subject"], chat[0].title.as_str());
        let message: serde_json::Value = envelope["Message"]
            .as_str()
            .and_then(|m| serde_json::from_str(m).ok())
            .unwrap_or_else(|| panic!("a JSON message: {envelope}"));
        assert_eq!(message["event"], "failed");
        assert_eq!(message["project"], "dev");
        assert_eq!(message["deployment"], "fails");
        assert_eq!(message["run"]["id"], run.id.to_string().as_str());
        assert_eq!(message["run"]["state"], "Failed");
        assert!(
            message["text"]
                .as_str()
                .is_some_and(|t| t.contains("the source table 'orders' does not exist")),
            "the flow's error is the text: {message}"
        );

        // The missing topic: failed for good after one attempt, saying which topic.
        let lost = wait_until(
            "the missing topic's delivery to fail",
            Duration::from_secs(30),
            || {
                let log = deliveries(&w, "lost");
                match log.first() {
                    Some(d) if d.status != DeliveryStatus::Pending => Ok(d.clone()),
                    _ => Err(format!("{log:#?}")),
                }
            },
        );
        assert_eq!(
            (lost.status, lost.attempts),
            (DeliveryStatus::Failed, 1),
            "a missing topic is not retried: {lost:#?}"
        );
        let error = lost.last_error.clone().unwrap_or_default();
        assert!(
            error.contains(&missing) && error.contains("not found") && error.contains("NotFound"),
            "the error names the topic and says it is not found: {error}"
        );
        let log = w.weir(&["notifications", "log", "--rule", "lost"]).ok();
        assert!(
            log.stdout.contains("failed") && log.stdout.contains(&missing),
            "{}",
            log.stdout
        );

        // `weir notifications test` goes through the same path, and exits 0 once delivered.
        let test = w.weir(&["notifications", "test", "dev/chat"]);
        assert_eq!(test.code, 0, "{test:#?}");
        let got = wait_until("the test message", Duration::from_secs(30), || {
            let got = receive(&endpoint, &queue_url);
            if got.is_empty() {
                Err("nothing yet".into())
            } else {
                Ok(got)
            }
        });
        assert_eq!(got.len(), 1, "{got:#?}");
        assert_eq!(got[0]["Subject"], "dev: test notification of rule chat");
        // The failed run's message came once: nothing else is on the queue.
        assert!(receive(&endpoint, &queue_url).is_empty());
        let failing = w.weir(&["notifications", "test", "dev/lost"]);
        assert_ne!(
            failing.code, 0,
            "a test to a missing topic fails: {failing:#?}"
        );
        assert!(failing.stdout.contains(&missing), "{failing:#?}");
    }
}
