//! Notification rules and outbox rows are stored in the store's own versioned shapes, not as
//! the wire types: rows written before versions (the wire JSON, literally) read as version 1,
//! keys this Weir does not know are ignored, and a row of a newer Weir is refused naming it.
//! The rows are written past the store with a connection of its own, as an older or newer
//! Weir would have, on both backends.

use chrono::{Duration, TimeZone, Utc};
use sqlx::AnyPool;
use uuid::Uuid;
use weir_core::StateKind;
use weir_core::Timestamp;
use weir_core::api::ProposeState;
use weir_core::api::notifications::{
    Destination, NotificationEvent, NotificationRuleSpec, RateLimit, RuleSource,
};
use weir_store::{Error, NewFlowRun, Store};
use weir_testkit::TestDb;

weir_testkit::both_backends!(stored_notifications => sqlite_stored_notifications_are_versioned_and_tolerant, postgres_stored_notifications_are_versioned_and_tolerant);

/// Now at the stores' precision (microseconds).
fn now() -> Timestamp {
    Utc.timestamp_micros(Utc::now().timestamp_micros())
        .single()
        .expect("now is a time")
}

/// A rule as Weir wrote it before stored rules had versions: the wire spec's JSON.
const OLD_RULE: &str = r#"{"on":["failed","recovered"],"deployments":["etl"],"destination":{"type":"webhook","url":"https://example.com/hook","signing_key":"env:HOOK_KEY"},"rate_limit":{"count":10,"per_s":60}}"#;

/// What [`OLD_RULE`] says.
fn old_rule() -> NotificationRuleSpec {
    NotificationRuleSpec {
        on: vec![NotificationEvent::Failed, NotificationEvent::Recovered],
        deployments: vec!["etl".into()],
        destination: Destination::Webhook {
            url: "https://example.com/hook".into(),
            signing_key: Some("env:HOOK_KEY".into()),
        },
        rate_limit: RateLimit {
            count: 10,
            per_s: 60,
        },
    }
}

/// An outbox message as Weir wrote it before versions.
const OLD_MESSAGE: &str = r#"{"event":"test","project":"dev","title":"dev: test notification of rule chat","text":"If you can read this, the destination works.","at":"2025-12-01T10:00:00Z"}"#;

/// An outbox destination as Weir wrote it before versions.
const OLD_DESTINATION: &str = r#"{"type":"webhook","url":"https://example.com/hook"}"#;

async fn stored_notifications(db: &TestDb) {
    let store = Store::connect(&db.url).await.expect("open the store");
    sqlx::any::install_default_drivers();
    let raw = AnyPool::connect(&db.url).await.expect("raw connection");
    let delivery = rules_are_versioned(&store, &raw).await;
    outbox_rows_are_versioned(&store, &raw, delivery).await;
    newer_rows_are_refused(&store, &raw, delivery).await;
    unreadable_rows_hold_up_nothing(&store, &raw, delivery).await;
    raw.close().await;
}

/// The first text of `sql` with `id` bound.
async fn text(raw: &AnyPool, sql: &'static str, id: String) -> String {
    let (text,): (String,) = sqlx::query_as(sql)
        .bind(id)
        .fetch_one(raw)
        .await
        .expect("a stored text");
    text
}

/// Sets a column of one row past the store.
async fn set(raw: &AnyPool, sql: &'static str, value: &str, id: String) {
    sqlx::query(sql)
        .bind(value.to_string())
        .bind(id)
        .execute(raw)
        .await
        .expect("a raw write");
}

/// A rule is written as version 1; an old row reads as it was meant and one with unknown keys
/// reads too. Returns the test delivery it queued.
async fn rules_are_versioned(store: &Store, raw: &AnyPool) -> Uuid {
    let spec = NotificationRuleSpec {
        on: vec![NotificationEvent::Failed],
        deployments: vec![],
        destination: Destination::Slack {
            url: "env:SLACK_URL".into(),
        },
        rate_limit: RateLimit::default(),
    };
    let (rule, created) = store
        .upsert_notification_rule("dev", "chat", &spec, RuleSource::Api, now())
        .await
        .expect("upsert a rule");
    assert!(created);
    let spec_of = "SELECT spec FROM notification_rules WHERE id = $1";
    assert_eq!(
        text(raw, spec_of, rule.id.to_string()).await,
        r#"{"v":1,"on":["failed"],"destination":{"type":"slack","url":"env:SLACK_URL"},"rate_limit":{"count":60,"per_s":3600}}"#
    );
    let set_spec = "UPDATE notification_rules SET spec = $1 WHERE id = $2";
    set(raw, set_spec, OLD_RULE, rule.id.to_string()).await;
    let read = store
        .notification_rule("dev", "chat")
        .await
        .expect("an old rule reads");
    assert_eq!(read.spec, old_rule());
    let listed = store.notification_rules(None).await.expect("rules listed");
    assert_eq!(listed.first().map(|r| &r.spec), Some(&old_rule()));

    set(
        raw,
        set_spec,
        r#"{"v":1,"on":["late"],"mute":true,"destination":{"type":"slack","url":"env:SLACK_URL","channel":"ops"}}"#,
        rule.id.to_string(),
    )
    .await;
    let read = store
        .notification_rule("dev", "chat")
        .await
        .expect("unknown keys are ignored");
    assert_eq!(read.spec.on, vec![NotificationEvent::Late]);
    assert_eq!(read.spec.rate_limit, RateLimit::default());
    store
        .enqueue_test_notification(&read, now())
        .await
        .expect("a test notification")
}

/// An outbox row is written as version 1, and one written before versions is delivered as
/// it says.
async fn outbox_rows_are_versioned(store: &Store, raw: &AnyPool, id: Uuid) {
    let message_of = "SELECT message FROM notification_outbox WHERE id = $1";
    let destination_of = "SELECT destination FROM notification_outbox WHERE id = $1";
    assert!(
        text(raw, message_of, id.to_string())
            .await
            .starts_with(r#"{"v":1,"event":"test","project":"dev","#)
    );
    assert_eq!(
        text(raw, destination_of, id.to_string()).await,
        r#"{"v":1,"type":"slack","url":"env:SLACK_URL"}"#
    );
    let set_message = "UPDATE notification_outbox SET message = $1 WHERE id = $2";
    let set_destination = "UPDATE notification_outbox SET destination = $1 WHERE id = $2";
    set(raw, set_message, OLD_MESSAGE, id.to_string()).await;
    set(raw, set_destination, OLD_DESTINATION, id.to_string()).await;
    let claimed = store
        .claim_deliveries("a", 10, Duration::seconds(60), now())
        .await
        .expect("old rows are claimed");
    let [d] = claimed.as_slice() else {
        panic!("expected one delivery, got {claimed:?}");
    };
    assert_eq!(d.id, id);
    assert_eq!(d.message.title, "dev: test notification of rule chat");
    assert_eq!(
        d.message.at,
        Utc.timestamp_opt(1_764_583_200, 0)
            .single()
            .expect("a time")
    );
    assert_eq!(
        d.destination,
        Destination::Webhook {
            url: "https://example.com/hook".into(),
            signing_key: None,
        }
    );
    assert_eq!(
        store.delivery(id).await.expect("the log").destination,
        "webhook"
    );
    // Due again at once, for the next step.
    let retried = store
        .finish_delivery(
            id,
            "a",
            weir_core::api::notifications::DeliveryStatus::Pending,
            Some("try again"),
            Some(now() - Duration::seconds(1)),
            now(),
        )
        .await
        .expect("recorded");
    assert!(retried);
}

/// Rows of a newer format are refused by every read that returns them, naming the row and
/// what to do.
async fn newer_rows_are_refused(store: &Store, raw: &AnyPool, delivery: Uuid) {
    let newer = r#"{"v":99,"when":["failed"],"to":{"kind":"pager"}}"#;
    let (rule,): (String,) =
        sqlx::query_as("SELECT id FROM notification_rules WHERE project = 'dev'")
            .fetch_one(raw)
            .await
            .expect("the rule");
    set(
        raw,
        "UPDATE notification_rules SET spec = $1 WHERE id = $2",
        newer,
        rule,
    )
    .await;
    set(
        raw,
        "UPDATE notification_outbox SET message = $1 WHERE id = $2",
        newer,
        delivery.to_string(),
    )
    .await;
    set(
        raw,
        "UPDATE notification_outbox SET destination = $1 WHERE id = $2",
        newer,
        delivery.to_string(),
    )
    .await;
    let rule_row = "notification rule dev/chat (notification_rules.spec)";
    let delivery_row = format!("delivery {delivery} (notification_outbox.");
    for (what, row, read) in [
        (
            "a rule",
            rule_row.to_string(),
            store.notification_rule("dev", "chat").await.map(|_| ()),
        ),
        (
            "the rules",
            rule_row.to_string(),
            store.notification_rules(None).await.map(|_| ()),
        ),
        (
            "the log",
            delivery_row.clone(),
            store.delivery(delivery).await.map(|_| ()),
        ),
    ] {
        match read {
            Err(e @ Error::NewerFormat { found: 99, .. }) => {
                let message = e.to_string();
                assert!(message.starts_with(&row), "{what}: {message}");
                assert!(
                    message.ends_with("upgrade Weir to read it"),
                    "{what}: {message}"
                );
            }
            other => panic!("{what}: expected a newer-format error, got {other:?}"),
        }
    }
}

/// The claimer of outbox row `id`, read past the store.
async fn claimer(raw: &AnyPool, id: Uuid) -> Option<String> {
    let (claimer,): (Option<String>,) =
        sqlx::query_as("SELECT claimed_by FROM notification_outbox WHERE id = $1")
            .bind(id.to_string())
            .fetch_one(raw)
            .await
            .expect("the outbox row");
    claimer
}

/// A rule and a delivery this Weir cannot read (rule `chat` and `newer`, both of a newer
/// format by now) hold up nothing else: a claim returns the rest of its batch and leaves the
/// unreadable row to its lease, for a Weir that can read it; a state change of the rule's
/// project commits, and a readable rule of the project still gets its notification.
async fn unreadable_rows_hold_up_nothing(store: &Store, raw: &AnyPool, newer: Uuid) {
    let spec = NotificationRuleSpec {
        on: vec![NotificationEvent::Failed],
        deployments: vec![],
        destination: Destination::Slack {
            url: "env:OPS_URL".into(),
        },
        rate_limit: RateLimit::default(),
    };
    let (ops, _) = store
        .upsert_notification_rule("dev", "ops", &spec, RuleSource::Api, now())
        .await
        .expect("a readable rule");
    let readable = store
        .enqueue_test_notification(&ops, now())
        .await
        .expect("a readable delivery");

    let lease = Duration::seconds(60);
    let claimed = store
        .claim_deliveries("b", 10, lease, now())
        .await
        .expect("a claim with an unreadable row in its batch");
    let ids: Vec<Uuid> = claimed.iter().map(|d| d.id).collect();
    assert_eq!(ids, vec![readable], "the readable delivery, and only it");
    assert_eq!(
        claimer(raw, newer).await.as_deref(),
        Some("b"),
        "the unreadable row is held by its lease"
    );
    let sent = store
        .finish_delivery(
            readable,
            "b",
            weir_core::api::notifications::DeliveryStatus::Delivered,
            None,
            None,
            now(),
        )
        .await
        .expect("recorded");
    assert!(sent);
    let again = store
        .claim_deliveries("c", 10, lease, now())
        .await
        .expect("a claim within the lease");
    assert!(again.is_empty(), "nothing due: {again:?}");
    assert_eq!(claimer(raw, newer).await.as_deref(), Some("b"));
    let after = store
        .claim_deliveries("c", 10, lease, now() + lease + Duration::seconds(1))
        .await
        .expect("a claim after the lease");
    assert!(after.is_empty(), "still unreadable here: {after:?}");
    assert_eq!(
        claimer(raw, newer).await.as_deref(),
        Some("c"),
        "another claimer takes it once the lease ends"
    );

    failed_run(store).await;
    let rules: Vec<(String,)> =
        sqlx::query_as("SELECT rule FROM notification_outbox WHERE event = 'failed'")
            .fetch_all(raw)
            .await
            .expect("the run's notifications");
    assert_eq!(
        rules,
        vec![("ops".to_string(),)],
        "only the readable rule is notified"
    );
}

/// An ad-hoc run of project `dev`, claimed, Running, then Failed on its only attempt: each
/// change commits with the project's rules read in its transaction.
async fn failed_run(store: &Store) {
    let lease = Duration::seconds(30);
    let t = now();
    let new = NewFlowRun {
        project: "dev".into(),
        deployment: None,
        flow: "etl".into(),
        parameters: Default::default(),
        work_queue: "default".into(),
        scheduled_at: t,
        tick_at: None,
        state: StateKind::Scheduled,
        retries: 0,
        retry_delay_s: 0,
        idempotency_key: None,
        parent_flow_run_id: None,
        tags: vec![],
        auto_scheduled: false,
    };
    let run = store
        .create_flow_run(new, lease, t)
        .await
        .expect("create a run")
        .run;
    let claimed = store
        .claim(Uuid::now_v7(), &["default".to_string()], 1, lease, t)
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 1, "the run is claimed");
    for state in [StateKind::Running, StateKind::Failed] {
        let report = ProposeState {
            state,
            message: Some(format!("to {state}")),
            attempt: 1,
            transition_id: Some(Uuid::now_v7()),
            result: None,
        };
        let next = store
            .propose_state(run.id, &report, lease, t)
            .await
            .unwrap_or_else(|e| panic!("{state} commits beside an unreadable rule: {e}"));
        assert_eq!(next.state, state);
    }
}
