use super::*;
use crate::api::notifications::NotificationEvent as E;

/// A run of project `dev` (of `deployment`, or ad hoc) at `attempt`, its message `boom`.
fn run(state: StateKind, attempt: u32, deployment: Option<&str>) -> Run {
    let mut r = crate::run::sample(state);
    r.project = "dev".into();
    r.deployment = deployment.map(str::to_string);
    r.state_message = Some("boom".into());
    r.attempt = attempt;
    r
}

fn rule(on: &[E], deployments: &[&str]) -> NotificationRuleSpec {
    NotificationRuleSpec {
        on: on.to_vec(),
        deployments: deployments.iter().map(|d| d.to_string()).collect(),
        destination: Destination::Webhook {
            url: "https://example.com/hook".into(),
            signing_key: Some("env:HOOK_KEY".into()),
        },
        rate_limit: RateLimit::default(),
    }
}

#[test]
fn transitions_are_the_events_a_user_names() {
    let running = run(StateKind::Running, 1, None);
    let events = |to: StateKind, attempt: u32| run_events(&running, &run(to, attempt, None));
    assert_eq!(events(StateKind::Failed, 1), vec![E::Failed]);
    assert_eq!(events(StateKind::Crashed, 1), vec![E::Crashed]);
    assert_eq!(events(StateKind::Cancelled, 1), vec![E::Cancelled]);
    assert_eq!(events(StateKind::Completed, 1), vec![E::Completed]);
    assert_eq!(
        events(StateKind::Completed, 2),
        vec![E::Completed, E::Recovered]
    );
    // A failed attempt that will be retried is not a failure yet.
    assert!(events(StateKind::AwaitingRetry, 1).is_empty());
    assert!(events(StateKind::Paused, 1).is_empty());
    let scheduled = run(StateKind::Scheduled, 0, None);
    assert_eq!(
        run_events(&scheduled, &run(StateKind::Late, 0, None)),
        vec![E::Late]
    );
    // No change of state, no event.
    assert!(run_events(&running, &running).is_empty());
    let mut retried = run(StateKind::Completed, 1, None);
    retried.retries_used = 1;
    assert!(run_events(&running, &retried).contains(&E::Recovered));
}

#[test]
fn rules_see_their_events_and_deployments_only() {
    let all = rule(&[E::Failed, E::Crashed], &[]);
    assert!(wants(&all, E::Failed, Some("etl")));
    assert!(wants(&all, E::Crashed, None));
    assert!(!wants(&all, E::Completed, Some("etl")));
    let etl = rule(&[E::Failed], &["etl"]);
    assert!(wants(&etl, E::Failed, Some("etl")));
    assert!(!wants(&etl, E::Failed, Some("report")));
    assert!(
        !wants(&etl, E::Failed, None),
        "ad-hoc runs have no deployment"
    );
    assert!(wants(&etl, E::Test, Some("etl")));
    assert!(wants(&all, E::Test, None));
}

#[test]
fn backoff_doubles_and_is_capped() {
    assert_eq!(backoff(1), Duration::seconds(2));
    assert_eq!(backoff(2), Duration::seconds(4));
    assert_eq!(backoff(5), Duration::seconds(32));
    assert_eq!(backoff(30), Duration::seconds(1800));
    assert_eq!(backoff(0), Duration::seconds(2));
}

#[test]
fn rate_limits_parse_and_allow_up_to_their_count() {
    let l = RateLimit::parse("3/1m").expect("valid");
    assert_eq!(
        l,
        RateLimit {
            count: 3,
            per_s: 60
        }
    );
    assert!(l.allows(2));
    assert!(!l.allows(3));
    assert_eq!(l.window(), Duration::seconds(60));
    for bad in ["3", "x/1m", "0/1m", "3/0s", "3/1y", "3/90d"] {
        let e = RateLimit::parse(bad).expect_err(bad);
        assert!(e.contains("rate limit"), "{e}");
    }
}

#[test]
fn rules_with_credentials_in_plain_text_are_refused() {
    assert_eq!(check_rule(&rule(&[E::Failed], &[])), Ok(()));
    let mut r = rule(&[], &[]);
    assert_eq!(check_rule(&r).map_err(|e| e.field), Err("spec.on".into()));
    r.on = vec![E::Failed];
    r.destination = Destination::Slack {
        url: "https://hooks.slack.com/services/T0/B0/XYZ".into(),
    };
    let e = check_rule(&r).expect_err("plain Slack URL");
    assert_eq!(e.field, "spec.destination.url");
    assert!(e.message.contains("credential"), "{}", e.message);
    assert!(!e.message.contains("XYZ") || e.message.contains("invalid secret reference"));
    r.destination = Destination::Webhook {
        url: "env:HOOK_URL".into(),
        signing_key: Some("hunter2".into()),
    };
    let e = check_rule(&r).expect_err("plain key");
    assert_eq!(e.field, "spec.destination.signing_key");
    r.destination = Destination::Sns {
        topic_arn: "arn:aws:sns:eu-west-1:123456789012:chat".into(),
    };
    assert_eq!(check_rule(&r), Ok(()));
    r.destination = Destination::Sns {
        topic_arn: "chat".into(),
    };
    assert_eq!(
        check_rule(&r).map_err(|e| e.field),
        Err("spec.destination.topic_arn".into())
    );
    r.destination = Destination::Webhook {
        url: "https://example.com/x".into(),
        signing_key: None,
    };
    r.deployments = vec!["Bad Name".into()];
    assert_eq!(
        check_rule(&r).map_err(|e| e.field),
        Err("spec.deployments[0]".into())
    );
}

#[test]
fn messages_say_what_happened_to_what() {
    let r = run(StateKind::Failed, 1, Some("etl"));
    let m = run_message(E::Failed, &r);
    assert_eq!(m.title, "dev/etl: run etl-1 failed");
    assert_eq!(m.text, "boom");
    assert_eq!(
        m.run.as_ref().map(|s| s.path.clone()),
        Some(format!("/ui/runs/{}", r.id))
    );
    let m = run_message(E::Recovered, &run(StateKind::Completed, 2, None));
    assert_eq!(m.title, "dev: run etl-1 recovered (Completed on attempt 2)");
    assert!(is_topic_arn("arn:aws:sns:us-east-1:123456789012:weir-chat"));
    assert_eq!(
        topic_region("arn:aws:sns:us-east-1:123456789012:x"),
        Some("us-east-1")
    );
}
