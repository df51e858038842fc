use super::{
    decode_destination, decode_message, decode_rule, encode_destination, encode_message,
    encode_rule,
};
use crate::Error;
use chrono::{TimeZone, Utc};
use serde_json::{Value, json};
use uuid::Uuid;
use weir_core::StateKind;
use weir_core::api::notifications::{
    Destination, NotificationEvent as E, NotificationRuleSpec, RateLimit,
};
use weir_core::notify::{Message, RunSummary};

const RUN_ID: &str = "0190a3f0-0000-7000-8000-000000000001";

/// A rule with every field away from its default.
fn rule() -> NotificationRuleSpec {
    NotificationRuleSpec {
        on: vec![E::Failed, E::Recovered, E::DeploymentArchived],
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

/// A run event's message.
fn message() -> Message {
    Message {
        event: E::Failed,
        project: "dev".into(),
        deployment: Some("etl".into()),
        title: "dev/etl: run etl-1 failed".into(),
        text: "boom".into(),
        run: Some(RunSummary {
            id: Uuid::parse_str(RUN_ID).expect("a uuid"),
            name: "etl-1".into(),
            flow: "etl".into(),
            state: StateKind::Failed,
            attempt: 1,
            path: format!("/ui/runs/{RUN_ID}"),
        }),
        at: Utc
            .timestamp_opt(1_764_583_200, 0)
            .single()
            .expect("a time"),
    }
}

fn row() -> String {
    "notification rule dev/chat".into()
}

fn parsed(text: &str) -> Value {
    serde_json::from_str(text).expect("JSON")
}

/// The stored text of version 1 of each column is pinned: changing it needs a new version.
#[test]
fn version_1_is_pinned() {
    assert_eq!(
        parsed(&encode_rule(&rule())),
        json!({
            "v": 1,
            "on": ["failed", "recovered", "deployment_archived"],
            "deployments": ["etl"],
            "destination": {
                "type": "webhook", "url": "https://example.com/hook",
                "signing_key": "env:HOOK_KEY"
            },
            "rate_limit": {"count": 10, "per_s": 60}
        })
    );
    assert_eq!(
        parsed(&encode_message(&message())),
        json!({
            "v": 1,
            "event": "failed",
            "project": "dev",
            "deployment": "etl",
            "title": "dev/etl: run etl-1 failed",
            "text": "boom",
            "run": {
                "id": RUN_ID, "name": "etl-1", "flow": "etl", "state": "Failed",
                "attempt": 1, "path": format!("/ui/runs/{RUN_ID}")
            },
            "at": "2025-12-01T10:00:00Z"
        })
    );
    assert_eq!(
        encode_destination(&Destination::Sns {
            topic_arn: "arn:aws:sns:us-east-1:123456789012:chat".into()
        }),
        r#"{"v":1,"type":"sns","topic_arn":"arn:aws:sns:us-east-1:123456789012:chat"}"#
    );
    // Defaults are written too: a row keeps what it was given.
    let plain = NotificationRuleSpec {
        on: vec![E::Failed],
        deployments: vec![],
        destination: Destination::Slack {
            url: "env:SLACK_URL".into(),
        },
        rate_limit: RateLimit::default(),
    };
    assert_eq!(
        encode_rule(&plain),
        r#"{"v":1,"on":["failed"],"destination":{"type":"slack","url":"env:SLACK_URL"},"rate_limit":{"count":60,"per_s":3600}}"#
    );
}

/// What the store wrote before versions (the wire types' JSON, literally) reads as version 1.
#[test]
fn rows_from_before_versions_read_as_version_1() {
    let old_rule = r#"{"on":["failed","recovered","deployment_archived"],"deployments":["etl"],"destination":{"type":"webhook","url":"https://example.com/hook","signing_key":"env:HOOK_KEY"},"rate_limit":{"count":10,"per_s":60}}"#;
    assert_eq!(decode_rule(old_rule, row).expect("an old rule"), rule());
    let old_message = format!(
        r#"{{"event":"failed","project":"dev","deployment":"etl","title":"dev/etl: run etl-1 failed","text":"boom","run":{{"id":"{RUN_ID}","name":"etl-1","flow":"etl","state":"Failed","attempt":1,"path":"/ui/runs/{RUN_ID}"}},"at":"2025-12-01T10:00:00Z"}}"#
    );
    assert_eq!(
        decode_message(&old_message, row).expect("an old message"),
        message()
    );
    let test_message = r#"{"event":"test","project":"dev","title":"dev: test notification of rule chat","text":"sent by weir notifications test","at":"2025-12-01T10:00:00.123456Z"}"#;
    let m = decode_message(test_message, row).expect("an old test message");
    assert_eq!((m.event, m.deployment, m.run), (E::Test, None, None));
    for (old, destination) in [
        (
            r#"{"type":"webhook","url":"https://example.com/hook"}"#,
            Destination::Webhook {
                url: "https://example.com/hook".into(),
                signing_key: None,
            },
        ),
        (
            r#"{"type":"slack","url":"env:SLACK_URL"}"#,
            Destination::Slack {
                url: "env:SLACK_URL".into(),
            },
        ),
        (
            r#"{"type":"sns","topic_arn":"arn:aws:sns:us-east-1:123456789012:chat"}"#,
            Destination::Sns {
                topic_arn: "arn:aws:sns:us-east-1:123456789012:chat".into(),
            },
        ),
    ] {
        assert_eq!(
            decode_destination(old, row).expect("an old destination"),
            destination
        );
    }
}

/// Everything written reads back as it was, for every event and destination.
#[test]
fn every_value_round_trips() {
    let destinations = [
        rule().destination,
        Destination::Slack {
            url: "ssm:/chat/url".into(),
        },
        Destination::Sns {
            topic_arn: "arn:aws:sns:eu-west-1:123456789012:ops".into(),
        },
    ];
    for destination in destinations {
        let spec = NotificationRuleSpec {
            on: E::ALL.to_vec(),
            destination: destination.clone(),
            ..rule()
        };
        assert_eq!(decode_rule(&encode_rule(&spec), row).expect("a rule"), spec);
        let text = encode_destination(&destination);
        assert_eq!(
            decode_destination(&text, row).expect("a destination"),
            destination
        );
    }
    for state in StateKind::ALL {
        let mut m = message();
        if let Some(r) = m.run.as_mut() {
            r.state = state;
        }
        assert_eq!(
            decode_message(&encode_message(&m), row).expect("a message"),
            m
        );
    }
}

/// Keys this Weir does not know are ignored at every level, and absent ones take version 1's
/// defaults.
#[test]
fn unknown_keys_are_ignored_and_absent_ones_defaulted() {
    let spec = decode_rule(
        r#"{"v":1,"on":["failed"],"colour":"blue","destination":{"type":"webhook","url":"https://example.com/hook","retries":3},"rate_limit":{"count":5,"burst":2}}"#,
        row,
    )
    .expect("unknown keys are ignored");
    assert_eq!(spec.deployments, Vec::<String>::new());
    assert_eq!(
        spec.destination,
        Destination::Webhook {
            url: "https://example.com/hook".into(),
            signing_key: None,
        }
    );
    assert_eq!(
        spec.rate_limit,
        RateLimit {
            count: 5,
            per_s: 3600
        }
    );
    let spec = decode_rule(
        r#"{"on":["late"],"destination":{"type":"slack","url":"env:U"}}"#,
        row,
    )
    .expect("no rate limit");
    assert_eq!(
        spec.rate_limit,
        RateLimit {
            count: 60,
            per_s: 3600
        }
    );
    let m = decode_message(
        r#"{"v":1,"event":"late","project":"dev","at":"2025-12-01T10:00:00Z","priority":"high","run":{"id":"0190a3f0-0000-7000-8000-000000000001","state":"Late","host":"a"}}"#,
        row,
    )
    .expect("unknown keys are ignored");
    assert_eq!((m.title.as_str(), m.text.as_str()), ("", ""));
    assert_eq!(
        m.run.map(|r| (r.state, r.attempt)),
        Some((StateKind::Late, 0))
    );
    let d = decode_destination(
        r#"{"v":1,"type":"slack","url":"env:U","channel":"ops"}"#,
        row,
    )
    .expect("unknown keys are ignored");
    assert_eq!(d.kind(), "slack");
}

/// A row of a newer format is refused, naming the row, its column and what to do.
#[test]
fn newer_versions_are_refused() {
    let newer = r#"{"v":2,"when":["failed"],"to":{"kind":"pager"}}"#;
    for (column, result) in [
        (
            "notification_rules.spec",
            decode_rule(newer, row).map(|_| ()),
        ),
        (
            "notification_outbox.message",
            decode_message(newer, row).map(|_| ()),
        ),
        (
            "notification_outbox.destination",
            decode_destination(newer, row).map(|_| ()),
        ),
    ] {
        match result {
            Err(
                e @ Error::NewerFormat {
                    found: 2, known: 1, ..
                },
            ) => assert_eq!(
                e.to_string(),
                format!(
                    "notification rule dev/chat ({column}) was stored by a newer Weir (format \
                     version 2; this Weir reads up to 1): upgrade Weir to read it"
                )
            ),
            other => panic!("{column}: expected a newer-format error, got {other:?}"),
        }
    }
}

/// A version that is no positive integer, a required key missing or a value of the wrong kind
/// is a corrupt row, named.
#[test]
fn malformed_rows_are_corrupt() {
    for text in [
        r#"{"v":0,"on":["failed"],"destination":{"type":"slack","url":"env:U"}}"#,
        r#"{"v":"1","on":["failed"],"destination":{"type":"slack","url":"env:U"}}"#,
        r#"{"v":1,"destination":{"type":"slack","url":"env:U"}}"#,
        r#"{"v":1,"on":["exploded"],"destination":{"type":"slack","url":"env:U"}}"#,
        r#"{"v":1,"on":["failed"],"destination":{"type":"pager","url":"env:U"}}"#,
        "not json",
    ] {
        match decode_rule(text, row) {
            Err(Error::Corrupt { column, reason }) => {
                assert_eq!(column, "notification_rules.spec");
                assert!(
                    reason.starts_with("notification rule dev/chat: "),
                    "{reason}"
                );
            }
            other => panic!("{text}: expected a corrupt row, got {other:?}"),
        }
    }
    let bad_state = r#"{"event":"failed","project":"dev","at":"2025-12-01T10:00:00Z","run":{"id":"0190a3f0-0000-7000-8000-000000000001","state":"Exploded"}}"#;
    assert!(matches!(
        decode_message(bad_state, row),
        Err(Error::Corrupt {
            column: "notification_outbox.message",
            ..
        })
    ));
}
