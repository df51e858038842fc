//! Notifications end to end through real `weir server` processes, a real agent and the real
//! `example-flows` binary:
//!
//! - **Durability across `kill -9`.** A run fails; its notification is committed with the
//!   state change, and the webhook receiver (a real HTTP server in the test) answers its first
//!   attempts with 500. The server is SIGKILLed while the delivery waits for its retry, started
//!   again on the same database, and the receiver, healthy now, gets the notification: every
//!   request of a delivery carries the same `X-Weir-Delivery` id and body, and exactly one of
//!   them is answered 200 (on SQLite and PostgreSQL).
//! - **SNS** (with `--features weir-cli/aws` and moto, `WEIR_TEST_AWS_ENDPOINT`): a server
//!   pointed at moto by `AWS_ENDPOINT_URL` alone, as an AWS deployment is configured, publishes
//!   a failed run's notification to a topic through the official SDK; an SQS queue subscribed
//!   to the topic receives it with the delivery's title as subject and the JSON message as
//!   body. A rule whose topic does not exist is in the delivery log as failed, naming the topic.
//!
//! Needs `cargo build -p weir-cli -p weir --bins` (with `--features weir-cli/aws` for SNS).

mod common;

use common::{ServerOptions, Weir, wait_until};
use std::io::{Read, Write};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use uuid::Uuid;
use weir_core::StateKind;
use weir_core::api::notifications::{Delivery, DeliveryQuery, DeliveryStatus};

const TOML: &str = r#"project = "dev"

[defaults]
command = ["{flows}"]

[deployments.fails]
"#;

/// One request the receiver got, and what it answered.
#[derive(Debug, Clone)]
struct Hit {
    /// `X-Weir-Delivery`.
    delivery: String,
    /// `X-Weir-Event`.
    event: String,
    body: Vec<u8>,
    /// The status it answered.
    answered: u16,
}

/// A webhook receiver on 127.0.0.1 (plain threads and sockets, so it needs no runtime): it
/// answers every request with the status `answer` holds at that moment and records it.
struct Receiver {
    url: String,
    answer: Arc<AtomicU16>,
    hits: Arc<Mutex<Vec<Hit>>>,
}

impl Receiver {
    fn start(status: u16) -> Receiver {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the receiver");
        let url = format!(
            "http://{}/hook",
            listener.local_addr().expect("receiver address")
        );
        let answer = Arc::new(AtomicU16::new(status));
        let hits: Arc<Mutex<Vec<Hit>>> = Arc::default();
        let (status, sink) = (answer.clone(), hits.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let Some((head, body)) = read_request(&mut conn) else {
                    continue;
                };
                let header = |name: &str| {
                    head.lines()
                        .find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.trim()
                                .eq_ignore_ascii_case(name)
                                .then(|| v.trim().to_string())
                        })
                        .unwrap_or_default()
                };
                let answered = status.load(Ordering::SeqCst);
                sink.lock().expect("receiver lock").push(Hit {
                    delivery: header("x-weir-delivery"),
                    event: header("x-weir-event"),
                    body,
                    answered,
                });
                let _ = conn.write_all(
                    format!(
                        "HTTP/1.1 {answered} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                    )
                    .as_bytes(),
                );
            }
        });
        Receiver { url, answer, hits }
    }

    fn hits(&self) -> Vec<Hit> {
        self.hits.lock().expect("receiver lock").clone()
    }
}

/// Reads one HTTP/1.1 request: its head and the body its `Content-Length` announces.
fn read_request(conn: &mut std::net::TcpStream) -> Option<(String, Vec<u8>)> {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let n = conn.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&buf[..end]).to_string();
        let length = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.trim()
                    .eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse::<usize>().ok())?
            })
            .unwrap_or(0);
        if buf.len() >= end + 4 + length {
            return Some((head, buf[end + 4..end + 4 + length].to_vec()));
        }
    }
}

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

/// Two runs fail while the receiver answers 500; the server is SIGKILLed with both
/// deliveries waiting for their retry, and restarted; each is then delivered once (one 200)
/// under its own id, every repeat carrying that id and the same body.
fn delivered_once_across_a_sigkill(db: Option<&str>) {
    let mut extra = Vec::new();
    if let Some(url) = db {
        extra.extend(["--db", url]);
    }
    let mut w = Weir::start_with(ServerOptions::default(), &extra);
    w.deploy(TOML);
    let rx = Receiver::start(500);
    w.weir(&[
        "notifications",
        "add",
        "dev/hook",
        "--on",
        "failed",
        "--webhook",
        &rx.url,
    ])
    .ok();
    w.start_agent(2);
    let runs: Vec<Uuid> = (0..2)
        .map(|_| w.create_run("dev", "fails", Default::default()).id)
        .collect();
    for id in &runs {
        w.wait_state(*id, StateKind::Failed, Duration::from_secs(30));
    }
    let waiting = both_wait_for_a_retry(&w);
    w.kill_server();
    let refused = rx.hits();
    assert!(
        refused.len() >= 2 && refused.iter().all(|h| h.answered == 500),
        "each delivery was attempted and refused before the kill: {refused:#?}"
    );

    rx.answer.store(200, Ordering::SeqCst);
    w.restart_server_with(ServerOptions::default(), &extra);
    let done = wait_until(
        "both deliveries delivered after the restart",
        Duration::from_secs(90),
        || {
            let log = deliveries(&w, "hook");
            if log.len() == 2 && log.iter().all(|d| d.status == DeliveryStatus::Delivered) {
                Ok(log)
            } else {
                Err(format!("{log:#?}"))
            }
        },
    );
    // A delivered notification is never sent again: nothing more arrives.
    std::thread::sleep(Duration::from_secs(3));
    let hits = rx.hits();

    the_same_two_deliveries(&done, &waiting, &hits);
    let mut notified: Vec<Uuid> = done.iter().map(|d| accepted_once(d, &hits)).collect();
    notified.sort();
    let mut runs = runs;
    runs.sort();
    assert_eq!(notified, runs, "one notification for each failed run");

    // The CLI's delivery log says the same.
    let log = w.weir(&["notifications", "log", "--rule", "hook"]).ok();
    assert_eq!(log.stdout.matches("delivered").count(), 2, "{}", log.stdout);
}

/// Both notifications are committed and tried; each failed (500) and waits for its retry,
/// with no attempt in flight for at least half a second (when the server is killed). The
/// delivery log then.
fn both_wait_for_a_retry(w: &Weir) -> Vec<Delivery> {
    wait_until(
        "both deliveries to wait for a retry after a 500",
        Duration::from_secs(30),
        || {
            let log = deliveries(w, "hook");
            let soon = chrono::Utc::now() + chrono::Duration::milliseconds(500);
            let ready = log.len() == 2
                && log.iter().all(|d| {
                    d.status == DeliveryStatus::Pending
                        && d.attempts >= 1
                        && d.last_error.as_deref().is_some_and(|e| e.contains("500"))
                        && d.next_attempt_at.is_some_and(|t| t > soon)
                });
            if ready {
                Ok(log)
            } else {
                Err(format!("{log:#?}"))
            }
        },
    )
}

/// The deliveries `done` are those `waiting` before the kill (none added by the restart), and
/// every request the receiver got names one of them.
fn the_same_two_deliveries(done: &[Delivery], waiting: &[Delivery], hits: &[Hit]) {
    let mut ids: Vec<Uuid> = done.iter().map(|d| d.id).collect();
    let mut before: Vec<Uuid> = waiting.iter().map(|d| d.id).collect();
    ids.sort();
    before.sort();
    assert_eq!(
        ids, before,
        "the same two deliveries, none added by the restart"
    );
    assert!(
        hits.iter()
            .all(|h| ids.iter().any(|id| h.delivery == id.to_string())),
        "every request names one of the two deliveries: {hits:#?}"
    );
}

/// Delivery `d` was refused before the kill, repeated after the restart and accepted exactly
/// once, every repeat with the same event and body, the failed run's; the run's id.
fn accepted_once(d: &Delivery, hits: &[Hit]) -> Uuid {
    let mine: Vec<&Hit> = hits
        .iter()
        .filter(|h| h.delivery == d.id.to_string())
        .collect();
    let accepted = mine.iter().filter(|h| h.answered == 200).count();
    assert_eq!(
        accepted, 1,
        "delivery {} accepted exactly once: {mine:#?}",
        d.id
    );
    assert!(
        mine.len() >= 2 && mine.last().is_some_and(|h| h.answered == 200),
        "delivery {} refused before the kill, repeated after the restart, then accepted: {mine:#?}",
        d.id
    );
    assert!(
        mine.iter()
            .all(|h| h.body == mine[0].body && h.event == "failed"),
        "every repeat of delivery {} carries the same event and body",
        d.id
    );
    assert_eq!(d.last_error, None, "{d:?}");
    let body: serde_json::Value =
        serde_json::from_slice(&mine[0].body).expect("a JSON webhook body");
    assert_eq!(body["event"], "failed");
    assert_eq!(body["run"]["state"], "Failed");
    assert!(
        body["text"]
            .as_str()
            .is_some_and(|t| t.contains("the source table 'orders' does not exist")),
        "the flow's error is the text: {body}"
    );
    body["run"]["id"]
        .as_str()
        .and_then(|id| Uuid::parse_str(id).ok())
        .expect("the run's id")
}

#[test]
fn delivered_once_across_a_sigkill_sqlite() {
    delivered_once_across_a_sigkill(None);
}

#[test]
fn delivered_once_across_a_sigkill_postgres() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let Some(url) = rt.block_on(weir_testkit::postgres_url()) else {
        eprintln!(
            "delivered_once_across_a_sigkill_postgres: skipped: WEIR_TEST_POSTGRES_URL not set"
        );
        return;
    };
    delivered_once_across_a_sigkill(Some(&url));
}

/// SNS through moto: the topic, the SQS queue subscribed to it (SQS's JSON protocol over
/// plain HTTP; moto checks the credential scope, not the signature).
#[cfg(feature = "aws")]
mod sns {
    use super::*;
    use weir_notify_aws::aws_sdk_sns as sns;

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

    /// A topic named `topic_name` with the queue `queue_arn` subscribed to it; its ARN.
    fn topic_with_queue(endpoint: &str, topic_name: &str, queue_arn: &str) -> String {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let config = weir_testkit::moto::sdk_config(endpoint).await;
            let client = sns::Client::new(&config);
            let topic = client
                .create_topic()
                .name(topic_name)
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
                .endpoint(queue_arn)
                .send()
                .await
                .unwrap_or_else(|e| panic!("subscribe: {}", sns::error::DisplayErrorContext(&e)));
            arn
        })
    }

    /// Messages on `queue_url`, once there are any (waiting `what` at most 30 s; `waiting`
    /// says what there is meanwhile).
    fn wait_messages(
        endpoint: &str,
        queue_url: &str,
        what: &str,
        waiting: impl Fn() -> String,
    ) -> Vec<serde_json::Value> {
        wait_until(what, Duration::from_secs(30), || {
            let got = receive(endpoint, queue_url);
            if got.is_empty() {
                Err(waiting())
            } else {
                Ok(got)
            }
        })
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
        let topic_arn = topic_with_queue(&endpoint, &topic_name, &queue_arn);

        // The server reaches AWS through the standard environment only, as in production.
        let mut w = Weir::start_env(
            ServerOptions::default(),
            &[],
            &weir_testkit::moto::client_env(&endpoint),
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

        let got = wait_messages(
            &endpoint,
            &queue_url,
            "the notification on the SQS queue",
            || format!("nothing yet; chat: {:?}", deliveries(&w, "chat")),
        );
        assert_eq!(got.len(), 1, "one message: {got:#?}");
        the_topic_got_the_run(&w, &got[0], &topic_arn, &failed.run.name, run.id);
        the_missing_topic_is_logged(&w, &missing);
        notifications_test_reaches_the_topic(&w, &endpoint, &queue_url, &missing);
    }

    /// `envelope`, the one message on the queue, is the failed run `id`'s notification: its
    /// title (of run `name`) is the subject and the run is in the JSON message; the `chat`
    /// rule's delivery is delivered after one attempt.
    fn the_topic_got_the_run(
        w: &Weir,
        envelope: &serde_json::Value,
        topic_arn: &str,
        name: &str,
        id: Uuid,
    ) {
        let chat = deliveries(w, "chat");
        assert_eq!(chat.len(), 1, "{chat:#?}");
        assert_eq!(
            (chat[0].status, chat[0].attempts),
            (DeliveryStatus::Delivered, 1),
            "{chat:#?}"
        );
        assert_eq!(envelope["Type"], "Notification");
        assert_eq!(envelope["TopicArn"], topic_arn);
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
        assert_eq!(message["run"]["id"], id.to_string().as_str());
        assert_eq!(message["run"]["state"], "Failed");
        assert!(
            message["text"]
                .as_str()
                .is_some_and(|t| t.contains("the source table 'orders' does not exist")),
            "the flow's error is the text: {message}"
        );
    }

    /// The missing topic: failed for good after one attempt, saying which topic, in the
    /// delivery log and in `weir notifications log`.
    fn the_missing_topic_is_logged(w: &Weir, missing: &str) {
        let lost = wait_until(
            "the missing topic's delivery to fail",
            Duration::from_secs(30),
            || {
                let log = deliveries(w, "lost");
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
            error.contains(missing) && error.contains("not found") && error.contains("NotFound"),
            "the error names the topic and says it is not found: {error}"
        );
        let log = w.weir(&["notifications", "log", "--rule", "lost"]).ok();
        assert!(
            log.stdout.contains("failed") && log.stdout.contains(missing),
            "{}",
            log.stdout
        );
    }

    /// `weir notifications test` goes through the same path, and exits 0 once delivered; to
    /// the missing topic it fails, naming it.
    fn notifications_test_reaches_the_topic(
        w: &Weir,
        endpoint: &str,
        queue_url: &str,
        missing: &str,
    ) {
        let test = w.weir(&["notifications", "test", "dev/chat"]);
        assert_eq!(test.code, 0, "{test:#?}");
        let got = wait_messages(endpoint, queue_url, "the test message", || {
            "nothing yet".into()
        });
        assert_eq!(got.len(), 1, "{got:#?}");
        assert_eq!(got[0]["Subject"], "dev: test notification of rule chat");
        // The failed run's message came once: nothing else is on the queue.
        assert!(receive(endpoint, queue_url).is_empty());
        let failing = w.weir(&["notifications", "test", "dev/lost"]);
        assert_ne!(
            failing.code, 0,
            "a test to a missing topic fails: {failing:#?}"
        );
        assert!(failing.stdout.contains(missing), "{failing:#?}");
    }
}
