//! Notifications end to end on a real server over a real database, delivered over real HTTP
//! to a receiver (a small axum server in the test) that checks what arrives: the webhook's
//! HMAC signature and body, Slack's format, retries while the receiver is down, a restart
//! with deliveries still in the outbox, the rate limit, deployment events, and (PostgreSQL)
//! two replicas sharing one outbox.

mod common;

use axum::http::{HeaderMap, StatusCode};
use common::*;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::Sha256;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use uuid::Uuid;
use weir_client::Client;
use weir_core::StateKind;
use weir_core::api::notifications::{
    DeliveryQuery, DeliveryStatus, Destination, NotificationEvent as E, NotificationRuleSpec,
    RateLimit, RuleSource,
};
use weir_core::api::{CreateFlowRun, ProposeState};
use weir_testkit::{Backend, TestDb};

both! {
    webhook_is_signed_and_slack_formatted => sqlite_webhook_is_signed_and_slack_formatted, postgres_webhook_is_signed_and_slack_formatted;
    retried_until_the_receiver_is_up => sqlite_retried_until_the_receiver_is_up, postgres_retried_until_the_receiver_is_up;
    a_restart_loses_no_delivery => sqlite_a_restart_loses_no_delivery, postgres_a_restart_loses_no_delivery;
    rate_limit_suppresses_the_rest => sqlite_rate_limit_suppresses_the_rest, postgres_rate_limit_suppresses_the_rest;
    deployment_events_are_notified => sqlite_deployment_events_are_notified, postgres_deployment_events_are_notified;
    bad_rules_are_refused => sqlite_bad_rules_are_refused, postgres_bad_rules_are_refused;
}

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Received {
    path: String,
    headers: HeaderMap,
    body: Vec<u8>,
}

/// A webhook receiver on 127.0.0.1 that records every POST and answers 200.
struct Receiver {
    port: u16,
    got: Arc<Mutex<Vec<Received>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    /// Listens on `port` (0: any free one).
    async fn start(port: u16) -> Receiver {
        let got: Arc<Mutex<Vec<Received>>> = Arc::default();
        let sink = got.clone();
        let app = axum::Router::new().fallback(
            move |uri: axum::http::Uri, headers: HeaderMap, body: axum::body::Bytes| {
                let sink = sink.clone();
                async move {
                    sink.lock().expect("receiver lock").push(Received {
                        path: uri.path().to_string(),
                        headers,
                        body: body.to_vec(),
                    });
                    StatusCode::OK
                }
            },
        );
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("bind the receiver");
        let port = listener.local_addr().expect("receiver address").port();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver { port, got, task }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn received(&self, path: &str) -> Vec<Received> {
        let all = self.got.lock().expect("receiver lock").clone();
        all.into_iter().filter(|r| r.path == path).collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A port nothing listens on (bound, then released).
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

fn rule(on: &[E], destination: Destination) -> NotificationRuleSpec {
    NotificationRuleSpec {
        on: on.to_vec(),
        deployments: vec![],
        destination,
        rate_limit: RateLimit::default(),
    }
}

fn webhook(url: String) -> Destination {
    Destination::Webhook {
        url,
        signing_key: None,
    }
}

/// An ad-hoc run of project `dev` that failed.
async fn failed_run(c: &Client) -> Uuid {
    let run = c
        .create_flow_run(&CreateFlowRun {
            project: Some("dev".into()),
            flow: Some("etl".into()),
            state: Some(StateKind::Running),
            ..Default::default()
        })
        .await
        .expect("create a running run");
    let failed = ProposeState {
        state: StateKind::Failed,
        message: Some("boom: division by zero".into()),
        attempt: run.attempt,
        transition_id: None,
        result: None,
    };
    c.propose_state(run.id, &failed).await.expect("fail it");
    run.id
}

/// Waits until every delivery of rule `rule` is no longer pending and there are `n`.
async fn settled(c: &Client, rule: &str, n: usize) -> Vec<weir_core::api::notifications::Delivery> {
    eventually(
        &format!("{n} settled deliveries of rule {rule}"),
        Duration::from_secs(30),
        || async {
            let page = c
                .deliveries(&DeliveryQuery {
                    project: Some("dev".into()),
                    rule: Some(rule.into()),
                    ..Default::default()
                })
                .await
                .expect("delivery log");
            let done = page.items.len() == n
                && page
                    .items
                    .iter()
                    .all(|d| d.status != DeliveryStatus::Pending);
            done.then_some(page.items)
        },
    )
    .await
}

async fn webhook_is_signed_and_slack_formatted(db: &TestDb) {
    let rx = Receiver::start(0).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let key_file = dir.path().join("hook.key");
    let key = format!("key-{}", Uuid::now_v7().simple());
    std::fs::write(&key_file, format!("{key}\n")).expect("write key");
    let slack_file = dir.path().join("slack.url");
    std::fs::write(&slack_file, rx.url("/slack")).expect("write slack url");
    let s = TestServer::start(options(db)).await;
    let signed = Destination::Webhook {
        url: rx.url("/hook"),
        signing_key: Some(format!("file:{}", key_file.display())),
    };
    let c = &s.client;
    c.upsert_notification_rule("dev", "hook", &rule(&[E::Failed], signed), RuleSource::Api)
        .await
        .expect("webhook rule");
    let slack = Destination::Slack {
        url: format!("file:{}", slack_file.display()),
    };
    c.upsert_notification_rule("dev", "chat", &rule(&[E::Failed], slack), RuleSource::Api)
        .await
        .expect("slack rule");
    // Neither the key nor the Slack URL is in what the API answers.
    let listed = s
        .http
        .get(s.url("/api/v1/notifications"))
        .send()
        .await
        .expect("list")
        .text()
        .await
        .expect("body");
    assert!(
        !listed.contains(&key) && !listed.contains(&rx.url("/slack")),
        "{listed}"
    );

    let run = failed_run(c).await;
    let hook = settled(c, "hook", 1).await;
    assert_eq!(hook[0].status, DeliveryStatus::Delivered, "{hook:?}");
    assert_eq!((hook[0].attempts, hook[0].event), (1, E::Failed));
    let got = rx.received("/hook");
    assert_eq!(got.len(), 1, "{got:?}");
    let r = &got[0];
    let header = |n: &str| {
        r.headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    };
    let ts = header("x-weir-timestamp");
    let hex = signature(&key, ts, &r.body);
    assert_eq!(header("x-weir-signature"), format!("sha256={hex}"));
    assert_eq!(header("x-weir-event"), "failed");
    assert_eq!(header("x-weir-delivery"), hook[0].id.to_string());
    let now = chrono::Utc::now().timestamp();
    let ts: i64 = ts.parse().expect("a Unix timestamp");
    assert!((now - ts).abs() < 60, "timestamp {ts} vs now {now}");
    let body: Value = serde_json::from_slice(&r.body).expect("JSON body");
    assert_eq!(body["event"], "failed");
    assert_eq!(body["project"], "dev");
    assert_eq!(body["run"]["id"], run.to_string());
    assert_eq!(body["run"]["state"], "Failed");
    assert_eq!(body["text"], "boom: division by zero");

    let chat = settled(c, "chat", 1).await;
    assert_eq!(chat[0].status, DeliveryStatus::Delivered, "{chat:?}");
    let got = rx.received("/slack");
    assert_eq!(got.len(), 1);
    let body: Value = serde_json::from_slice(&got[0].body).expect("JSON body");
    let text = body["text"].as_str().expect("Slack text");
    assert!(text.contains("failed") && text.contains("boom"), "{text}");
    assert_eq!(body["blocks"][0]["type"], "section");
    assert_eq!(body["blocks"][0]["text"]["type"], "mrkdwn");
    assert!(got[0].headers.get("x-weir-signature").is_none());
    s.stop().await;
}

/// The hex HMAC-SHA256 with `key` of `{timestamp}.{body}`: what a webhook's
/// `X-Weir-Signature` must carry after `sha256=`.
fn signature(key: &str, timestamp: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("hmac");
    mac.update(format!("{timestamp}.").as_bytes());
    mac.update(body);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

async fn retried_until_the_receiver_is_up(db: &TestDb) {
    let port = free_port();
    let s = TestServer::start(options(db)).await;
    let c = &s.client;
    let url = format!("http://127.0.0.1:{port}/hook");
    c.upsert_notification_rule(
        "dev",
        "hook",
        &rule(&[E::Failed], webhook(url)),
        RuleSource::Api,
    )
    .await
    .expect("rule");
    failed_run(c).await;
    // The first attempt fails (nothing listens) and is scheduled again.
    eventually(
        "a failed first attempt",
        Duration::from_secs(15),
        || async {
            let page = c.deliveries(&DeliveryQuery::default()).await.expect("log");
            page.items
                .first()
                .filter(|d| d.status == DeliveryStatus::Pending && d.last_error.is_some())
                .cloned()
        },
    )
    .await;
    let rx = Receiver::start(port).await;
    let done = settled(c, "hook", 1).await;
    assert_eq!(done[0].status, DeliveryStatus::Delivered, "{done:?}");
    assert!(done[0].attempts >= 2, "{done:?}");
    assert_eq!(done[0].last_error, None);
    // Delivered once: no attempt after the one that succeeded.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(rx.received("/hook").len(), 1);
    s.stop().await;
}

async fn a_restart_loses_no_delivery(db: &TestDb) {
    let port = free_port();
    let s = TestServer::start(options(db)).await;
    let key = s.admin_key.clone();
    let url = format!("http://127.0.0.1:{port}/hook");
    let c = s.client.clone();
    c.upsert_notification_rule(
        "dev",
        "hook",
        &rule(&[E::Failed], webhook(url)),
        RuleSource::Api,
    )
    .await
    .expect("rule");
    let run = failed_run(&c).await;
    s.stop().await;
    // The receiver comes up while no server runs; the restarted one delivers.
    let rx = Receiver::start(port).await;
    let s = TestServer::start_with_key(options(db), &key).await;
    let done = settled(&s.client, "hook", 1).await;
    assert_eq!(done[0].status, DeliveryStatus::Delivered, "{done:?}");
    let got = rx.received("/hook");
    assert_eq!(got.len(), 1);
    let body: Value = serde_json::from_slice(&got[0].body).expect("JSON");
    assert_eq!(body["run"]["id"], run.to_string());
    s.stop().await;
}

async fn rate_limit_suppresses_the_rest(db: &TestDb) {
    let rx = Receiver::start(0).await;
    let s = TestServer::start(options(db)).await;
    let c = &s.client;
    let mut spec = rule(&[E::Failed], webhook(rx.url("/hook")));
    spec.rate_limit = RateLimit::parse("2/1h").expect("rate");
    c.upsert_notification_rule("dev", "hook", &spec, RuleSource::Api)
        .await
        .expect("rule");
    for _ in 0..4 {
        failed_run(c).await;
        // One at a time, so the window sees each delivery before the next is attempted.
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    let all = settled(c, "hook", 4).await;
    let count = |st: DeliveryStatus| all.iter().filter(|d| d.status == st).count();
    assert_eq!(count(DeliveryStatus::Delivered), 2, "{all:?}");
    assert_eq!(count(DeliveryStatus::Suppressed), 2, "{all:?}");
    let why = all
        .iter()
        .find(|d| d.status == DeliveryStatus::Suppressed)
        .and_then(|d| d.last_error.clone())
        .unwrap_or_default();
    assert!(why.contains("rate limit"), "{why}");
    assert_eq!(rx.received("/hook").len(), 2);
    s.stop().await;
}

async fn deployment_events_are_notified(db: &TestDb) {
    let rx = Receiver::start(0).await;
    let s = TestServer::start(options(db)).await;
    let c = &s.client;
    let on = [
        E::DeploymentCreated,
        E::DeploymentChanged,
        E::DeploymentArchived,
    ];
    let mut spec = rule(&on, webhook(rx.url("/hook")));
    spec.deployments = vec!["etl".into()];
    c.upsert_notification_rule("dev", "deploys", &spec, RuleSource::File)
        .await
        .expect("rule");
    deploy(c, "etl", common::spec("etl")).await;
    deploy(c, "etl", common::spec("etl")).await; // unchanged: no event
    let mut changed = common::spec("etl");
    changed.retries = 3;
    deploy(c, "etl", changed).await;
    deploy(c, "other", common::spec("etl")).await; // not this rule's deployment
    c.archive_deployment("dev", "etl").await.expect("archive");
    let all = settled(c, "deploys", 3).await;
    let mut events: Vec<E> = all.iter().map(|d| d.event).collect();
    events.reverse();
    assert_eq!(events, on.to_vec(), "{all:?}");
    assert!(all.iter().all(|d| d.status == DeliveryStatus::Delivered));
    let got = rx.received("/hook");
    assert_eq!(got.len(), 3);
    let titles: Vec<String> = got
        .iter()
        .map(|r| {
            let v: Value = serde_json::from_slice(&r.body).expect("JSON");
            v["title"].as_str().unwrap_or_default().to_string()
        })
        .collect();
    assert!(
        titles
            .iter()
            .any(|t| t == "dev/etl: deployment changed (v2)"),
        "{titles:?}"
    );
    s.stop().await;
}

async fn bad_rules_are_refused(db: &TestDb) {
    let s = TestServer::start(options(db)).await;
    let put = |body: Value| {
        let s = &s;
        async move {
            let r = s
                .http
                .put(s.url("/api/v1/projects/dev/notifications/chat"))
                .json(&body)
                .send()
                .await
                .expect("put");
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.expect("JSON"))
        }
    };
    let plain_slack = serde_json::json!({"spec": {"on": ["failed"], "destination":
        {"type": "slack", "url": "https://hooks.slack.com/services/T0/B0/SECRET"}}});
    let (status, body) = put(plain_slack).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["field"], "spec.destination.url");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("secret reference"),
        "{body}"
    );
    let unknown_event = serde_json::json!({"spec": {"on": ["exploded"], "destination":
        {"type": "sns", "topic_arn": "arn:aws:sns:us-east-1:123456789012:chat"}}});
    let (status, body) = put(unknown_event).await;
    assert_eq!(status, 400, "{body}");
    let (status, _) = put(serde_json::json!({"spec": {"on": [], "destination":
        {"type": "sns", "topic_arn": "arn:aws:sns:us-east-1:123456789012:chat"}}}))
    .await;
    assert_eq!(status, 400);
    // Nothing was stored.
    let rules = s.client.notification_rules(None).await.expect("list");
    assert!(rules.is_empty(), "{rules:?}");
    let r = s
        .http
        .get(s.url("/api/v1/projects/dev/notifications/nope"))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status().as_u16(), 404);
    s.stop().await;
}

/// Two replicas on one PostgreSQL database share the outbox: every notification is
/// delivered once, by one of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_replicas_deliver_each_notification_once() {
    let Some(db) = TestDb::new(
        Backend::Postgres,
        "postgres_replicas_deliver_each_notification_once",
    )
    .await
    else {
        return;
    };
    let rx = Receiver::start(0).await;
    let a = TestServer::start(options(&db)).await;
    let b = TestServer::start_with_key(options(&db), &a.admin_key).await;
    let c = &a.client;
    c.upsert_notification_rule(
        "dev",
        "hook",
        &rule(&[E::Failed], webhook(rx.url("/hook"))),
        RuleSource::Api,
    )
    .await
    .expect("rule");
    for i in 0..20 {
        let client = if i % 2 == 0 { &a.client } else { &b.client };
        failed_run(client).await;
    }
    let all = settled(c, "hook", 20).await;
    assert!(
        all.iter()
            .all(|d| d.status == DeliveryStatus::Delivered && d.attempts == 1),
        "{all:?}"
    );
    let mut ids: Vec<String> = rx
        .received("/hook")
        .iter()
        .map(|r| {
            r.headers
                .get("x-weir-delivery")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    assert_eq!(ids.len(), 20);
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 20, "a notification was delivered twice");
    b.stop().await;
    a.stop().await;
}
