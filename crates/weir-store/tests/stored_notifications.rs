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
    Destination, NotificationEvent, NotificationRule, NotificationRuleSpec, RateLimit, RuleSource,
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
    other_projects_list_past_it(&store).await;
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

/// Rules of a newer format are refused by every read that returns them, naming the row and
/// what to do; the delivery log shows a delivery of a newer format with its destination
/// `unreadable`, so that one row does not fail its page.
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
            "dev's rules",
            rule_row.to_string(),
            store
                .notification_rules(Some(&["dev".to_string(), "prod".to_string()]))
                .await
                .map(|_| ()),
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
    let logged = store.delivery(delivery).await.expect("the log reads it");
    assert_eq!(
        logged.destination,
        weir_core::api::notifications::UNREADABLE_DESTINATION,
        "{logged:?}"
    );
}

/// While project dev has a rule of a newer format, a listing of another project's rules reads
/// only that project's rows and succeeds.
async fn other_projects_list_past_it(store: &Store) {
    let prod = NotificationRuleSpec {
        on: vec![NotificationEvent::Failed],
        deployments: vec![],
        destination: Destination::Slack {
            url: "env:PROD_URL".into(),
        },
        rate_limit: RateLimit::default(),
    };
    store
        .upsert_notification_rule("prod", "pager", &prod, RuleSource::Api, now())
        .await
        .expect("a rule of another project");
    let listed = store
        .notification_rules(Some(&["prod".to_string()]))
        .await
        .expect("another project's listing reads past dev's newer rule");
    let names: Vec<(&str, &str)> = listed
        .iter()
        .map(|r| (r.project.as_str(), r.name.as_str()))
        .collect();
    assert_eq!(names, vec![("prod", "pager")]);
    assert!(
        store
            .notification_rules(Some(&[]))
            .await
            .expect("no projects")
            .is_empty()
    );
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

/// The attempts, status and last error of outbox row `id`, read past the store.
async fn outcome(raw: &AnyPool, id: Uuid) -> (i64, String, Option<String>) {
    sqlx::query_as("SELECT attempts, status, last_error FROM notification_outbox WHERE id = $1")
        .bind(id.to_string())
        .fetch_one(raw)
        .await
        .expect("the outbox row")
}

/// A rule and a delivery this Weir cannot read (rule `chat` and `newer`, both of a newer
/// format by now) hold up nothing else: a claim returns the rest of its batch and releases
/// the newer row with its attempt given back, due when the lease would have ended, for a Weir
/// that can read it; corrupt rows fail; a state change of the rule's project commits, and a
/// readable rule of the project still gets its notification, past a rule whose id is corrupt.
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

    newer_delivery_is_released(store, raw, newer, readable).await;
    corrupt_rows_fail(store, raw, &ops).await;

    // A rule whose id is not a UUID is skipped like one whose spec cannot be read.
    sqlx::query(
        "INSERT INTO notification_rules (id, project, name, spec, source, created_at, \
         updated_at) VALUES ('not-a-uuid', 'dev', 'bad-id', $1, 'api', 0, 0)",
    )
    .bind(r#"{"v":1,"on":["failed"],"destination":{"type":"slack","url":"env:BAD_URL"}}"#)
    .execute(raw)
    .await
    .expect("a rule with a corrupt id");
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

/// Claims with the newer delivery `newer` and the readable one `readable` due: an old Weir
/// returns `readable`, gives `newer` its attempt back and releases it until the lease would
/// have ended; a Weir that reads it then takes it as the next attempt.
async fn newer_delivery_is_released(store: &Store, raw: &AnyPool, newer: Uuid, readable: Uuid) {
    let lease = Duration::seconds(60);
    let (attempts, ..) = outcome(raw, newer).await;
    let t = now();
    let claimed = store
        .claim_deliveries("b", 10, lease, t)
        .await
        .expect("a claim with an unreadable row in its batch");
    let ids: Vec<Uuid> = claimed.iter().map(|d| d.id).collect();
    assert_eq!(ids, vec![readable], "the readable delivery, and only it");
    assert_eq!(
        outcome(raw, newer).await,
        (
            attempts,
            "pending".to_string(),
            Some("try again".to_string())
        ),
        "the newer row is given its attempt back"
    );
    assert_eq!(claimer(raw, newer).await, None, "and released");
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
        .claim_deliveries("c", 10, lease, t)
        .await
        .expect("a claim within the lease");
    assert!(again.is_empty(), "nothing due: {again:?}");
    let t = t + lease + Duration::seconds(1);
    let after = store
        .claim_deliveries("c", 10, lease, t)
        .await
        .expect("a claim after the lease");
    assert!(after.is_empty(), "still unreadable here: {after:?}");
    assert_eq!(
        outcome(raw, newer).await.0,
        attempts,
        "an old Weir's claims use up none of its attempts"
    );
    // A Weir that reads it (here: the row made readable again) takes it after the lease, as
    // the attempt after the last one that was made.
    let set_message = "UPDATE notification_outbox SET message = $1 WHERE id = $2";
    let set_destination = "UPDATE notification_outbox SET destination = $1 WHERE id = $2";
    set(raw, set_message, OLD_MESSAGE, newer.to_string()).await;
    set(raw, set_destination, OLD_DESTINATION, newer.to_string()).await;
    let within = store
        .claim_deliveries("d", 10, lease, t)
        .await
        .expect("a claim within the lease");
    assert!(within.is_empty(), "not before the lease ends: {within:?}");
    let taken = store
        .claim_deliveries("d", 10, lease, t + lease + Duration::seconds(1))
        .await
        .expect("a claim after the lease");
    let [d] = taken.as_slice() else {
        panic!("expected the once-newer delivery, got {taken:?}");
    };
    assert_eq!((d.id, i64::from(d.attempt)), (newer, attempts + 1));
    assert_eq!(claimer(raw, newer).await.as_deref(), Some("d"));
    let sent = store
        .finish_delivery(
            newer,
            "d",
            weir_core::api::notifications::DeliveryStatus::Delivered,
            None,
            None,
            now(),
        )
        .await
        .expect("recorded");
    assert!(sent);
}

/// Outbox rows no Weir can read (a destination of an unknown type, a message that is not
/// JSON) are marked failed by the claim that finds them, with a last error naming the column
/// and quoting nothing of what is stored; they are not claimed again.
async fn corrupt_rows_fail(store: &Store, raw: &AnyPool, rule: &NotificationRule) {
    let unknown = store
        .enqueue_test_notification(rule, now())
        .await
        .expect("a delivery");
    let not_json = store
        .enqueue_test_notification(rule, now())
        .await
        .expect("a delivery");
    set(
        raw,
        "UPDATE notification_outbox SET destination = $1 WHERE id = $2",
        r#"{"v":1,"type":"pager","url":"https://pager.example/hook-7f3a"}"#,
        unknown.to_string(),
    )
    .await;
    set(
        raw,
        "UPDATE notification_outbox SET message = $1 WHERE id = $2",
        "pager https://pager.example/hook-7f3a",
        not_json.to_string(),
    )
    .await;
    let t = now();
    let claimed = store
        .claim_deliveries("e", 10, Duration::seconds(60), t)
        .await
        .expect("a claim with corrupt rows in its batch");
    assert!(claimed.is_empty(), "nothing readable: {claimed:?}");
    for (id, column) in [
        (unknown, "notification_outbox.destination"),
        (not_json, "notification_outbox.message"),
    ] {
        let (attempts, status, last_error) = outcome(raw, id).await;
        assert_eq!((attempts, status.as_str()), (1, "failed"), "{column}");
        let last_error = last_error.expect("a last error");
        assert!(last_error.contains(column), "{last_error}");
        assert!(last_error.contains("cannot be read"), "{last_error}");
        assert!(
            !last_error.contains("pager") && !last_error.contains("hook-7f3a"),
            "the stored text is not quoted: {last_error}"
        );
        assert_eq!(claimer(raw, id).await, None, "{column}");
    }
    let later = store
        .claim_deliveries("e", 10, Duration::seconds(60), t + Duration::hours(1))
        .await
        .expect("a later claim");
    assert!(
        later.is_empty(),
        "failed rows are not claimed again: {later:?}"
    );
    let page = store
        .deliveries(None, None, None, 100)
        .await
        .expect("the delivery log holds its unreadable rows");
    let unreadable = page
        .items
        .iter()
        .find(|d| d.id == unknown)
        .expect("the row with a corrupt destination is listed");
    assert_eq!(
        unreadable.destination,
        weir_core::api::notifications::UNREADABLE_DESTINATION
    );
    assert_eq!(unreadable.status.as_str(), "failed");
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
