//! Each reason of [`explain`], from facts built by hand.

use super::*;
use crate::run::sample as sample_run;

const LEASE: Duration = Duration::seconds(30);

fn agent(name: &str, seen: Timestamp, running: u32, limit: u32) -> Agent {
    Agent {
        id: Uuid::now_v7(),
        name: name.into(),
        queues: vec!["default".into()],
        limit,
        created_at: seen,
        last_heartbeat_at: seen,
        running,
        launchers: vec![InfrastructureKind::Process],
    }
}

fn facts(run: Run, agents: Vec<Agent>) -> Facts {
    Facts {
        run,
        deployment: Some(DeploymentFacts {
            name: "main/etl".into(),
            paused: false,
            kind: InfrastructureKind::Process,
            on_limit: OnLimit::Wait,
        }),
        agents,
        limits: vec![],
    }
}

fn reasons(f: &Facts, now: Timestamp) -> Vec<Reason> {
    let e = explain(f, now, LEASE);
    assert_eq!(e.reasons.len(), e.messages.len());
    e.reasons
}

#[test]
fn a_due_run_with_a_free_agent_is_ready() {
    let now = chrono::Utc::now();
    let f = facts(
        sample_run(StateKind::Scheduled),
        vec![agent("a1", now, 0, 4)],
    );
    assert_eq!(reasons(&f, now), vec![Reason::Ready]);
}

#[test]
fn not_due_and_awaiting_retry() {
    let now = chrono::Utc::now();
    let mut run = sample_run(StateKind::Scheduled);
    run.scheduled_at = now + Duration::minutes(5);
    let f = facts(run.clone(), vec![agent("a1", now, 0, 4)]);
    assert_eq!(
        reasons(&f, now),
        vec![Reason::NotDue {
            at: run.scheduled_at
        }]
    );
    let e = explain(&f, now, LEASE);
    assert!(e.messages[0].contains("in 5 min"), "{}", e.messages[0]);
    run.state = StateKind::AwaitingRetry;
    run.retries_used = 1;
    run.retries = 3;
    let f = facts(run.clone(), vec![agent("a1", now, 0, 4)]);
    assert_eq!(
        reasons(&f, now),
        vec![Reason::AwaitingRetry {
            until: run.scheduled_at,
            used: 1,
            allowed: 3
        }]
    );
}

#[test]
fn agents_dead_missing_launcher_or_full() {
    let now = chrono::Utc::now();
    let run = sample_run(StateKind::Late);
    let stale = now - Duration::minutes(3);
    let f = facts(run.clone(), vec![agent("old", stale, 0, 4)]);
    assert_eq!(
        reasons(&f, now),
        vec![Reason::NoLiveAgent {
            queue: "default".into(),
            last_seen: Some(stale)
        }]
    );
    let f = facts(run.clone(), vec![]);
    assert!(explain(&f, now, LEASE).messages[0].contains("weir agent --queue default"));
    let mut docker_only = agent("d1", now, 0, 4);
    docker_only.launchers = vec![InfrastructureKind::Docker];
    let mut f = facts(run.clone(), vec![docker_only]);
    assert_eq!(
        reasons(&f, now),
        vec![Reason::NoLauncher {
            queue: "default".into(),
            kind: InfrastructureKind::Process,
            agents: vec!["d1".into()]
        }]
    );
    f.agents = vec![agent("a1", now, 2, 2), agent("a2", now, 1, 1)];
    let r = reasons(&f, now);
    assert!(
        matches!(&r[..], [Reason::AgentsAtCapacity { agents }] if agents.len() == 2),
        "{r:?}"
    );
}

#[test]
fn full_limits_name_their_holders_and_paused_is_a_note() {
    let now = chrono::Utc::now();
    let holder = Uuid::now_v7();
    let mut f = facts(
        sample_run(StateKind::Scheduled),
        vec![agent("a1", now, 1, 4)],
    );
    f.limits = vec![
        LimitFacts {
            key: LimitKey::Deployment("main/etl".into()),
            slots: 1,
            holders: vec![holder],
        },
        LimitFacts {
            key: LimitKey::Tag("db".into()),
            slots: 3,
            holders: vec![holder],
        },
    ];
    if let Some(d) = f.deployment.as_mut() {
        d.paused = true;
        d.on_limit = OnLimit::Skip;
    }
    let e = explain(&f, now, LEASE);
    assert_eq!(
        e.reasons,
        vec![
            Reason::LimitFull {
                limit: LimitKey::Deployment("main/etl".into()),
                slots: 1,
                held: 1,
                holders: vec![holder],
                skip: true,
            },
            Reason::SchedulePaused {
                deployment: "main/etl".into()
            },
        ]
    );
    assert!(
        e.messages[0].contains(&holder.to_string()),
        "{}",
        e.messages[0]
    );
    assert!(e.messages[0].contains("skipped"), "{}", e.messages[0]);
    let mut hidden = e.clone();
    hidden.retain_holders(|_| false, now);
    assert!(
        hidden.messages[0].contains("1 run(s) in other projects"),
        "{}",
        hidden.messages[0]
    );
    assert!(!hidden.messages[0].contains(&holder.to_string()));
    // Paused alone does not hold a due run back.
    f.limits.clear();
    assert_eq!(
        reasons(&f, now),
        vec![
            Reason::SchedulePaused {
                deployment: "main/etl".into()
            },
            Reason::Ready
        ]
    );
}

#[test]
fn started_and_ended_runs_are_not_waiting() {
    let now = chrono::Utc::now();
    let f = facts(sample_run(StateKind::Running), vec![]);
    let e = explain(&f, now, LEASE);
    assert!(!e.waiting);
    assert_eq!(
        e.reasons,
        vec![Reason::Started {
            state: StateKind::Running
        }]
    );
    let mut done = sample_run(StateKind::Cancelled);
    done.state_message = Some("skipped".into());
    let e = explain(&facts(done, vec![]), now, LEASE);
    assert!(
        e.messages[0].contains("ended Cancelled: skipped"),
        "{}",
        e.messages[0]
    );
}

#[test]
fn after_an_attempt_says_what_happened() {
    let mut run = sample_run(StateKind::AwaitingRetry);
    run.retries_used = 1;
    run.retries = 2;
    run.attempt = 1;
    let text = after_attempt((&run).into(), 1);
    assert!(
        text.starts_with("attempt 1 failed; retry 1 of 2 is scheduled at "),
        "{text}"
    );
    run.state = StateKind::Cancelled;
    run.state_message = Some("cancellation requested".into());
    assert_eq!(
        after_attempt((&run).into(), 1),
        "attempt 1 is over: the run ended Cancelled: cancellation requested"
    );
    run.state = StateKind::Running;
    run.attempt = 3;
    assert_eq!(
        after_attempt((&run).into(), 2),
        "attempt 2 is over: the run is Running in attempt 3"
    );
}

#[test]
fn why_waiting_names_the_queue_or_the_missing_launcher() {
    let agent = |name: &str, queue: &str, launchers: Vec<InfrastructureKind>| Agent {
        id: uuid::Uuid::nil(),
        name: name.into(),
        queues: vec![queue.into()],
        limit: 1,
        created_at: chrono::DateTime::UNIX_EPOCH,
        last_heartbeat_at: chrono::DateTime::UNIX_EPOCH,
        running: 0,
        launchers,
    };
    let docker = InfrastructureKind::Docker;
    let p = agent("a1", "default", vec![InfrastructureKind::Process]);
    let reason = why_waiting(docker, "default", std::slice::from_ref(&p)).expect("ok");
    assert!(
        reason.contains("can launch docker runs (agents: a1 (process))"),
        "{reason}"
    );
    assert!(
        why_waiting(docker, "gpu", std::slice::from_ref(&p))
            .expect("ok")
            .contains("work queue \"gpu\"")
    );
    let d = agent("a2", "default", vec![docker]);
    assert_eq!(why_waiting(docker, "default", &[p, d]), None);
}
