//! The server's background loops over real HTTP and real databases: the scheduler
//! (materialising runs, idempotent across restarts and replicas) and the crash detector
//! (expired leases, cancellation, lateness).

mod common;

use common::*;
use std::collections::HashMap;
use std::time::Duration;
use weir_core::StateKind;
use weir_core::api::{FlowRun, Heartbeat, HeldRun, ProposeState};
use weir_testkit::TestDb;

both! {
    scheduler_survives_restart => sqlite_scheduler_survives_restart, postgres_scheduler_survives_restart;
    scheduler_replicas => sqlite_scheduler_replicas, postgres_scheduler_replicas;
    crash_after_lease => sqlite_crash_after_lease, postgres_crash_after_lease;
    heartbeats_keep_runs_alive => sqlite_heartbeats_keep_runs_alive, postgres_heartbeats_keep_runs_alive;
    cancelling_run_ends_cancelled => sqlite_cancelling_run_ends_cancelled, postgres_cancelling_run_ends_cancelled;
    overdue_runs_become_late => sqlite_overdue_runs_become_late, postgres_overdue_runs_become_late;
}

/// Asserts no two runs share a scheduled time and returns how many there are.
fn assert_unique_times(runs: &[FlowRun]) -> usize {
    let mut by_time: HashMap<_, Vec<_>> = HashMap::new();
    for r in runs {
        by_time.entry(r.scheduled_at).or_default().push(r.id);
    }
    let dups: Vec<_> = by_time.iter().filter(|(_, ids)| ids.len() > 1).collect();
    assert!(dups.is_empty(), "duplicate scheduled runs: {dups:?}");
    runs.len()
}

async fn scheduler_survives_restart(db: &TestDb) {
    let s = TestServer::start(options(db)).await;
    let mut sp = spec("tick");
    sp.schedules = vec![every("1s")];
    deploy(&s.client, "ticker", sp).await;
    // The first scheduler pass fills the window ahead (10 runs by default).
    let first = eventually(
        "runs to be materialised",
        Duration::from_secs(5),
        || async {
            let runs = runs_of(&s.client, "ticker").await;
            (runs.len() >= 10).then_some(runs)
        },
    )
    .await;
    assert_unique_times(&first);
    assert!(
        first
            .iter()
            .all(|r| r.state == StateKind::Scheduled
                && r.scheduled_at.timestamp_subsec_micros() == 0)
    );
    let last_before = first.iter().map(|r| r.scheduled_at).max().expect("runs");
    let key = s.admin_key.clone();
    s.stop().await;

    // A new server on the same database picks up where the old one stopped: no duplicates
    // of times already materialised, and new times beyond them.
    let s = TestServer::start_with_key(options(db), &key).await;
    let after = eventually(
        "the new server to schedule further ahead",
        Duration::from_secs(5),
        || async {
            let runs = runs_of(&s.client, "ticker").await;
            runs.iter()
                .any(|r| r.scheduled_at > last_before)
                .then_some(runs)
        },
    )
    .await;
    assert_unique_times(&after);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_unique_times(&runs_of(&s.client, "ticker").await);
    s.stop().await;
}

async fn scheduler_replicas(db: &TestDb) {
    // Two servers at once on one database, each scheduling 30 runs ahead of five
    // deployments every 100 ms: each time still gets exactly one run.
    let mut opts = options(db);
    opts.schedule_max_runs = 30;
    let a = TestServer::start(opts.clone()).await;
    let b = TestServer::start_with_key(opts, &a.admin_key).await;
    let names = ["r0", "r1", "r2", "r3", "r4"];
    for (i, name) in names.iter().enumerate() {
        let mut sp = spec("tick");
        sp.schedules = vec![every("1s")];
        let c = if i % 2 == 0 { &a.client } else { &b.client };
        deploy(c, name, sp).await;
    }
    for name in names {
        // Both replicas fill the window (30 runs ahead) within a few ticks; on a loaded
        // machine that can take longer than 1.5 s, so wait for it rather than sleeping.
        let runs = eventually(
            &format!("{name} to have 30 runs scheduled ahead"),
            Duration::from_secs(30),
            || async {
                let runs = runs_of(&a.client, name).await;
                (runs.len() >= 30).then_some(runs)
            },
        )
        .await;
        assert!(
            assert_unique_times(&runs) >= 30,
            "{name}: {} runs",
            runs.len()
        );
        // Read later through the other replica (the window may have moved on meanwhile).
        let later = runs_of(&b.client, name).await;
        assert_unique_times(&later);
        let later: std::collections::HashSet<_> = later.iter().map(|r| r.id).collect();
        assert!(
            runs.iter().all(|r| later.contains(&r.id)),
            "both replicas see the same runs"
        );
    }
    a.stop().await;
    b.stop().await;
}

fn propose(state: StateKind, attempt: u32) -> ProposeState {
    ProposeState {
        state,
        message: None,
        attempt,
        transition_id: None,
        result: None,
    }
}

async fn crash_after_lease(db: &TestDb) {
    let s = TestServer::start(options(db)).await;
    let c = &s.client;
    let mut sp = spec("fragile");
    sp.retries = 1;
    deploy(c, "fragile", sp).await;
    let run = run_of(c, "fragile").await;
    let agent = agent(c).await;
    let claimed = c.claim(agent, 1, Duration::ZERO).await.expect("claim");
    assert_eq!(claimed.len(), 1);
    assert_eq!((claimed[0].run.id, claimed[0].run.attempt), (run.id, 1));
    // The agent never heartbeats: after the 1 s lease the run crashes, and with a retry
    // left it awaits its retry (due at once: no retry delay)...
    let r = wait_state(c, run.id, StateKind::AwaitingRetry, Duration::from_secs(5)).await;
    assert_eq!(r.retries_used, 1);
    let msg = r.state_message.unwrap_or_default();
    assert!(
        msg.contains("Crashed") && msg.contains("no heartbeat"),
        "{msg}"
    );
    // ...and is claimable again as a new attempt.
    let again = c
        .claim(agent, 1, Duration::from_secs(2))
        .await
        .expect("claim");
    assert_eq!(again.len(), 1);
    assert_eq!((again[0].run.id, again[0].run.attempt), (run.id, 2));
    // No retries left: the second silent attempt ends Crashed.
    let r = wait_state(c, run.id, StateKind::Crashed, Duration::from_secs(5)).await;
    assert!(r.ended_at.is_some());
    assert_eq!(r.lease_expires_at, None);
    // A straggler report from the dead first attempt is refused.
    let e = c
        .propose_state(run.id, &propose(StateKind::Completed, 1))
        .await
        .expect_err("stale");
    assert_eq!(e.status().map(|s| s.as_u16()), Some(409));
    let history: Vec<StateKind> = c
        .flow_run(run.id)
        .await
        .expect("get")
        .history
        .into_iter()
        .map(|h| h.state)
        .collect();
    assert_eq!(
        history,
        vec![
            StateKind::Scheduled,
            StateKind::Pending,
            StateKind::AwaitingRetry,
            StateKind::Pending,
            StateKind::Crashed
        ]
    );
    s.stop().await;
}

async fn heartbeats_keep_runs_alive(db: &TestDb) {
    // A 2 s lease, renewed every 250 ms: generous for a loaded machine.
    let mut opts = options(db);
    opts.lease = Duration::from_secs(2);
    let s = TestServer::start(opts).await;
    let c = &s.client;
    deploy(c, "steady", spec("steady")).await;
    let run = run_of(c, "steady").await;
    let agent = agent(c).await;
    let claimed = c.claim(agent, 1, Duration::ZERO).await.expect("claim");
    assert_eq!(claimed.len(), 1);
    c.propose_state(run.id, &propose(StateKind::Running, 1))
        .await
        .expect("running");
    let hb = Heartbeat {
        runs: vec![HeldRun {
            id: run.id,
            attempt: 1,
        }],
    };
    // Heartbeating for 2.5 s (more than a lease) keeps the run Running.
    for _ in 0..10 {
        let reply = c.agent_heartbeat(agent, &hb).await.expect("heartbeat");
        assert!(
            reply.cancel.is_empty() && reply.lost.is_empty(),
            "{reply:?}"
        );
        assert_eq!(reply.lease_s, 2);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(
        c.flow_run(run.id).await.expect("get").run.state,
        StateKind::Running
    );
    // So does the run's own process heartbeating without an agent.
    for _ in 0..10 {
        let reply = c.run_heartbeat(run.id, 1).await.expect("heartbeat");
        assert!(!reply.cancel && !reply.lost);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(
        c.flow_run(run.id).await.expect("get").run.state,
        StateKind::Running
    );
    // Silence: it crashes.
    wait_state(c, run.id, StateKind::Crashed, Duration::from_secs(5)).await;
    let reply = c.agent_heartbeat(agent, &hb).await.expect("heartbeat");
    assert_eq!(reply.lost, vec![run.id], "a crashed run is no longer held");
    s.stop().await;
}

async fn cancelling_run_ends_cancelled(db: &TestDb) {
    let s = TestServer::start(options(db)).await;
    let c = &s.client;
    let mut sp = spec("stuck");
    sp.retries = 3;
    deploy(c, "stuck", sp).await;
    let run = run_of(c, "stuck").await;
    let agent = agent(c).await;
    assert_eq!(
        c.claim(agent, 1, Duration::ZERO)
            .await
            .expect("claim")
            .len(),
        1
    );
    c.propose_state(run.id, &propose(StateKind::Running, 1))
        .await
        .expect("running");
    let r = c.cancel(run.id).await.expect("cancel");
    assert_eq!(r.state, StateKind::Cancelling);
    let reply = c
        .agent_heartbeat(
            agent,
            &Heartbeat {
                runs: vec![HeldRun {
                    id: run.id,
                    attempt: 1,
                }],
            },
        )
        .await
        .expect("heartbeat");
    assert_eq!(
        reply.cancel,
        vec![run.id],
        "the heartbeat carries the cancellation"
    );
    // The agent dies before stopping it: the lease expires and the run ends Cancelled (not
    // Crashed, and not retried, although retries are left).
    let r = wait_state(c, run.id, StateKind::Cancelled, Duration::from_secs(5)).await;
    assert_eq!(r.retries_used, 0);
    assert!(r.ended_at.is_some());
    // A scheduled run is cancelled at once.
    let queued = run_of(c, "stuck").await;
    assert_eq!(
        c.cancel(queued.id).await.expect("cancel").state,
        StateKind::Cancelled
    );
    assert!(
        c.claim(agent, 5, Duration::ZERO)
            .await
            .expect("claim")
            .is_empty()
    );
    s.stop().await;
}

async fn overdue_runs_become_late(db: &TestDb) {
    let mut opts = options(db);
    opts.late_after = Duration::from_millis(300);
    let s = TestServer::start(opts).await;
    let c = &s.client;
    deploy(c, "slow", spec("slow")).await;
    let run = run_of(c, "slow").await;
    let future = c
        .create_flow_run(&weir_core::api::CreateFlowRun {
            project: Some("dev".into()),
            deployment: Some("slow".into()),
            scheduled_at: Some(chrono::Utc::now() + chrono::Duration::hours(1)),
            ..Default::default()
        })
        .await
        .expect("create");
    let late = wait_state(c, run.id, StateKind::Late, Duration::from_secs(5)).await;
    assert!(
        late.state_message
            .unwrap_or_default()
            .contains("not started")
    );
    assert_eq!(late.attempt, 0);
    assert_eq!(
        c.flow_run(future.id).await.expect("get").run.state,
        StateKind::Scheduled,
        "not due yet"
    );
    // Late runs are still launched.
    let agent = agent(c).await;
    let claimed = c.claim(agent, 5, Duration::ZERO).await.expect("claim");
    assert_eq!(
        claimed.iter().map(|c| c.run.id).collect::<Vec<_>>(),
        vec![run.id]
    );
    s.stop().await;
}
