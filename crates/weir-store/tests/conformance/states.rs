//! State proposals: the rules, transition ids, concurrent proposals, retries, cancelling,
//! retrying and resuming.

use crate::common::now;
use crate::helpers::*;

use chrono::Duration;
use uuid::Uuid;
use weir_core::run::Run;
use weir_core::{StateKind, Timestamp};
use weir_store::{Error, Store};

pub(crate) async fn case_propose_state(store: Store) {
    let d = deploy(&store, "dev", "etl", spec("etl")).await;
    let t = now();
    let run = create(&store, &d, t, t).await;
    let agent = Uuid::now_v7();
    // Illegal from Scheduled: straight to Completed.
    let (reason, current) = refused(&store, run.id, StateKind::Completed, 0, t).await;
    assert!(
        reason.contains("Scheduled") && reason.contains("Completed"),
        "{reason}"
    );
    assert_eq!(current.state, StateKind::Scheduled);

    let (claimed, _) = claim_one(&store, agent, t).await;
    assert_eq!((claimed.state, claimed.attempt), (StateKind::Pending, 1));
    let t1 = t + Duration::seconds(1);
    let running = store
        .propose_state(run.id, &propose(StateKind::Running, 1), LEASE, t1)
        .await
        .expect("running");
    assert_eq!(running.state, StateKind::Running);
    assert_eq!(running.started_at, Some(t1));
    assert_eq!(running.lease_expires_at, Some(t1 + LEASE));
    assert_eq!(running.agent_id, Some(agent));
    assert_eq!(
        store.flow_run(run.id).await.expect("get"),
        running,
        "what is returned is what is stored"
    );

    // Stale attempt: refused with the current run.
    let (reason, current) = refused(&store, run.id, StateKind::Completed, 0, t1).await;
    assert!(reason.contains("stale"), "{reason}");
    assert_eq!((current.state, current.attempt), (StateKind::Running, 1));
    // Illegal from Running.
    let (_, current) = refused(&store, run.id, StateKind::Scheduled, 1, t1).await;
    assert_eq!(current.state, StateKind::Running);

    let t2 = t + Duration::seconds(2);
    let mut done = propose(StateKind::Completed, 1);
    let result = weir_core::api::ResultRef {
        location: "file:///tmp/r/run/result.json".into(),
        size: 10,
    };
    done.result = Some(result.clone());
    let completed = store
        .propose_state(run.id, &done, LEASE, t2)
        .await
        .expect("complete");
    assert_eq!(completed.state, StateKind::Completed);
    assert_eq!(completed.ended_at, Some(t2));
    assert_eq!(completed.lease_expires_at, None);
    assert_eq!(completed.result, Some(result));
    // Terminal: nothing moves it.
    for s in StateKind::ALL {
        expect_rejected(store.propose_state(run.id, &propose(s, 1), LEASE, t2).await);
    }
    assert_eq!(
        states_and_attempts(&store, run.id).await,
        vec![
            (StateKind::Scheduled, 0),
            (StateKind::Pending, 1),
            (StateKind::Running, 1),
            (StateKind::Completed, 1)
        ]
    );
    assert!(matches!(
        store
            .propose_state(Uuid::now_v7(), &propose(StateKind::Running, 1), LEASE, t)
            .await,
        Err(Error::NotFound(_))
    ));
}

/// Proposes `state` for attempt `attempt` of run `id` at `at`, which the rules must refuse;
/// the reason and the run as it is.
async fn refused(
    store: &Store,
    id: Uuid,
    state: StateKind,
    attempt: u32,
    at: Timestamp,
) -> (String, Run) {
    expect_rejected(
        store
            .propose_state(id, &propose(state, attempt), LEASE, at)
            .await,
    )
}

/// Run `id`'s history as (state, attempt), oldest first.
async fn states_and_attempts(store: &Store, id: Uuid) -> Vec<(StateKind, u32)> {
    store
        .flow_run_history(id)
        .await
        .expect("history")
        .into_iter()
        .map(|h| (h.state, h.attempt))
        .collect()
}

pub(crate) async fn case_transition_id_idempotent(store: Store) {
    let d = deploy(&store, "dev", "etl", spec("etl")).await;
    let t = now();
    let run = create(&store, &d, t, t).await;
    claim_one(&store, Uuid::now_v7(), t).await;
    let tid = Uuid::now_v7();
    let mut p = propose(StateKind::Running, 1);
    p.transition_id = Some(tid);
    let first = store
        .propose_state(run.id, &p, LEASE, t)
        .await
        .expect("first");
    let before = store.flow_run_history(run.id).await.expect("history");
    assert_eq!(
        before.last().map(|h| h.id),
        Some(tid),
        "the history entry carries the transition id"
    );
    // The retried request (e.g. after a lost response) returns the run, not a 409.
    let again = store
        .propose_state(run.id, &p, LEASE, t + Duration::seconds(3))
        .await
        .expect("again");
    assert_eq!(again, first);
    assert_eq!(
        store.flow_run_history(run.id).await.expect("history"),
        before,
        "no second history entry"
    );
    // Even after the run moved on, the repeat is answered with the current run.
    store
        .propose_state(run.id, &propose(StateKind::Completed, 1), LEASE, t)
        .await
        .expect("complete");
    let late = store
        .propose_state(run.id, &p, LEASE, t)
        .await
        .expect("late repeat");
    assert_eq!(late.state, StateKind::Completed);
    assert_eq!(
        store.flow_run_history(run.id).await.expect("history").len(),
        before.len() + 1
    );
}

/// Proposals sent at once are group-committed: each is decided in order against the run as the
/// earlier ones left it, a repeated transition id is applied once, and a refused proposal
/// does not affect the others in its batch.
pub(crate) async fn case_concurrent_proposals(store: Store) {
    let d = deploy(&store, "dev", "etl", spec("etl")).await;
    let t = now();
    let mut runs = Vec::new();
    for _ in 0..40 {
        runs.push(create(&store, &d, t, t).await);
    }
    let agent = Uuid::now_v7();
    let claimed = store
        .claim(agent, &["default".to_string()], 100, LEASE, t)
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 40);
    let mut tasks = Vec::new();
    for run in &runs {
        // The same transition three times (a client retrying) and one from a stale attempt,
        // all at once.
        let tid = Uuid::now_v7();
        for (attempt, tid) in [(1, Some(tid)), (1, Some(tid)), (1, Some(tid)), (2, None)] {
            let store = store.clone();
            let id = run.id;
            let mut p = propose(StateKind::Running, attempt);
            p.transition_id = tid;
            tasks.push(tokio::spawn(async move {
                store.propose_state(id, &p, LEASE, t).await
            }));
        }
    }
    let mut refused = 0;
    for task in tasks {
        match task.await.expect("join") {
            Ok(run) => assert_eq!(run.state, StateKind::Running),
            Err(weir_store::Error::Rejected { .. }) => refused += 1,
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    assert_eq!(refused, 40, "exactly the stale proposals are refused");
    for run in &runs {
        let r = store.flow_run(run.id).await.expect("run");
        assert_eq!(r.state, StateKind::Running);
        let history = store.flow_run_history(run.id).await.expect("history");
        let states: Vec<StateKind> = history.iter().map(|h| h.state).collect();
        assert_eq!(
            states,
            vec![StateKind::Scheduled, StateKind::Pending, StateKind::Running],
            "applied once"
        );
    }
}

pub(crate) async fn case_failed_with_retries(store: Store) {
    let mut s = spec("etl");
    s.retries = 1;
    s.retry_delay_s = 60;
    let d = deploy(&store, "dev", "etl", s).await;
    let t = now();
    let run = create(&store, &d, t, t).await;
    assert_eq!(run.retries, 1);
    let agent = Uuid::now_v7();
    claim_one(&store, agent, t).await;
    store
        .propose_state(run.id, &propose(StateKind::Running, 1), LEASE, t)
        .await
        .expect("running");
    let t1 = t + Duration::seconds(5);
    let failed = store
        .propose_state(run.id, &propose(StateKind::Failed, 1), LEASE, t1)
        .await
        .expect("fail");
    assert_eq!(failed.state, StateKind::AwaitingRetry);
    assert_eq!(failed.retries_used, 1);
    assert_eq!(failed.scheduled_at, t1 + Duration::seconds(60));
    assert_eq!((failed.agent_id, failed.lease_expires_at), (None, None));
    assert!(
        failed
            .state_message
            .as_deref()
            .unwrap_or_default()
            .contains("retry 1 of 1")
    );
    // Not claimable before its delay...
    let early = store
        .claim(
            agent,
            &queues(&["default"]),
            5,
            LEASE,
            t1 + Duration::seconds(59),
        )
        .await
        .expect("claim");
    assert!(early.is_empty());
    // ...claimable after, as a new attempt.
    let (again, _) = claim_one(&store, agent, t1 + Duration::seconds(60)).await;
    assert_eq!(
        (again.id, again.attempt, again.state),
        (run.id, 2, StateKind::Pending)
    );
    let t2 = t1 + Duration::seconds(61);
    store
        .propose_state(run.id, &propose(StateKind::Running, 2), LEASE, t2)
        .await
        .expect("running");
    // Retries spent: Failed is final.
    let failed = store
        .propose_state(run.id, &propose(StateKind::Failed, 2), LEASE, t2)
        .await
        .expect("fail");
    assert_eq!(failed.state, StateKind::Failed);
    assert_eq!(failed.ended_at, Some(t2));
}

pub(crate) async fn case_cancel(store: Store) {
    let d = deploy(&store, "dev", "etl", spec("etl")).await;
    let t = now();
    let scheduled = create(&store, &d, t + Duration::hours(1), t).await;
    let c = store
        .cancel_flow_run(scheduled.id, t)
        .await
        .expect("cancel");
    assert_eq!(c.state, StateKind::Cancelled);
    assert_eq!(c.ended_at, Some(t));
    assert_eq!(
        store.flow_run(scheduled.id).await.expect("get").state,
        StateKind::Cancelled
    );
    let (_, current) = expect_rejected(store.cancel_flow_run(scheduled.id, t).await);
    assert_eq!(current.state, StateKind::Cancelled);

    let run = create(&store, &d, t, t).await;
    let agent = Uuid::now_v7();
    claim_one(&store, agent, t).await;
    store
        .propose_state(run.id, &propose(StateKind::Running, 1), LEASE, t)
        .await
        .expect("running");
    let c = store.cancel_flow_run(run.id, t).await.expect("cancel");
    assert_eq!(c.state, StateKind::Cancelling);
    assert_eq!(
        c.agent_id,
        Some(agent),
        "the agent keeps the run until it is stopped"
    );
    assert_eq!(c.ended_at, None);
    let (cancel, lost) = store
        .renew_leases(Some(agent), &[held(run.id, 1)], LEASE, t)
        .await
        .expect("renew");
    assert_eq!((cancel, lost), (vec![run.id], vec![]));
    let done = store
        .propose_state(run.id, &propose(StateKind::Cancelled, 1), LEASE, t)
        .await
        .expect("cancelled");
    assert_eq!(done.state, StateKind::Cancelled);
    // A crash while cancelling ends Cancelled.
    let run = create(&store, &d, t, t).await;
    claim_one(&store, agent, t).await;
    store
        .cancel_flow_run(run.id, t)
        .await
        .expect("cancel pending");
    let r = store
        .propose_state(run.id, &propose(StateKind::Crashed, 1), LEASE, t)
        .await
        .expect("crash");
    assert_eq!(r.state, StateKind::Cancelled);
    assert!(matches!(
        store.cancel_flow_run(Uuid::now_v7(), t).await,
        Err(Error::NotFound(_))
    ));
}

pub(crate) async fn case_retry_and_resume(store: Store) {
    let d = deploy(&store, "dev", "etl", spec("etl")).await;
    let t = now();
    let run = create(&store, &d, t, t).await;
    let agent = Uuid::now_v7();
    // Not terminal: no retry.
    let (_, current) = expect_rejected(store.retry_flow_run(run.id, false, t).await);
    assert_eq!(current.state, StateKind::Scheduled);
    let (_, resume) = claim_one(&store, agent, t).await;
    assert!(!resume);
    store
        .propose_state(run.id, &propose(StateKind::Running, 1), LEASE, t)
        .await
        .expect("running");
    store
        .propose_state(run.id, &propose(StateKind::Failed, 1), LEASE, t)
        .await
        .expect("failed");

    let t1 = t + Duration::seconds(10);
    let retried = store.retry_flow_run(run.id, true, t1).await.expect("retry");
    assert_eq!(retried.state, StateKind::Scheduled);
    assert_eq!(retried.scheduled_at, t1);
    assert_eq!(
        (retried.ended_at, retried.started_at, retried.agent_id),
        (None, None, None)
    );
    let (claimed, resume) = claim_one(&store, agent, t1).await;
    assert!(
        resume,
        "a retry from failed tasks tells the agent to resume"
    );
    assert_eq!(claimed.attempt, 2);
    store
        .propose_state(run.id, &propose(StateKind::Crashed, 2), LEASE, t1)
        .await
        .expect("crashed");
    store
        .retry_flow_run(run.id, false, t1)
        .await
        .expect("retry");
    let (claimed, resume) = claim_one(&store, agent, t1).await;
    assert!(!resume, "a plain retry starts from scratch");
    assert_eq!(claimed.attempt, 3);
    let history = store.flow_run_history(run.id).await.expect("history");
    assert_eq!(
        history
            .iter()
            .filter(|h| h.state == StateKind::Scheduled)
            .count(),
        3
    );
}
