//! A run's state history is read in the order its changes were committed, not by their
//! times: a change is stamped no earlier than the state it leaves
//! (`weir_core::orchestration::stamp`), so changes of one run can share a time, and the
//! transition ids a client sends say nothing of order. Every case runs against both backends
//! (see `common`); the transition ids are chosen to sort against the order of the changes,
//! so reading by time and id would put them out of order.

#[macro_use]
mod common;

use chrono::Duration;
use common::{connect, create_run, deploy_etl, now};
use uuid::Uuid;
use weir_core::api::{ProposeState, StateChange};
use weir_core::run::Run;
use weir_core::{StateKind, Timestamp};
use weir_store::Store;
use weir_testkit::{Backend, TestDb};

both_backends! {
    case_tied_changes_keep_their_order => sqlite_tied_changes_keep_their_order, postgres_tied_changes_keep_their_order;
    case_one_group_commit_keeps_its_order => sqlite_one_group_commit_keeps_its_order, postgres_one_group_commit_keeps_its_order;
}

const LEASE: Duration = Duration::seconds(30);

use StateKind::{AwaitingRetry, Completed, Pending, Running, Scheduled};

/// A report of attempt 1 reaching `state`, under transition id `tid` (`None`: the server's
/// own, as the crash detector's).
fn report(state: StateKind, tid: Option<u128>) -> ProposeState {
    ProposeState {
        state,
        message: Some(format!("to {state}")),
        attempt: 1,
        transition_id: tid.map(Uuid::from_u128),
        result: None,
    }
}

/// Proposes `p` for `run` at `at`, expecting it applied.
async fn apply(store: &Store, run: &Run, p: &ProposeState, at: Timestamp) -> Run {
    match store.propose_state(run.id, p, LEASE, at).await {
        Ok(r) => r,
        Err(e) => panic!("{} at {at}: {e}", p.state),
    }
}

/// `(state, attempt)` of each entry.
fn steps(history: &[StateChange]) -> Vec<(StateKind, u32)> {
    history.iter().map(|h| (h.state, h.attempt)).collect()
}

/// The run, as the crash detector found it after its lease expired (it retries it:
/// AwaitingRetry on the same attempt), reported Running and Completed by its still-living
/// process with a clock behind the database's. Every change is stamped `t`; the history and
/// the retention export read them back in the order they were made.
async fn case_tied_changes_keep_their_order(store: Store) {
    let d = deploy_etl(&store, 1).await;
    let t = now();
    let run = create_run(&store, &d, t).await;
    let claimed = store
        .claim(Uuid::now_v7(), &["default".to_string()], 1, LEASE, t)
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 1, "the run is claimed");
    // Ids that sort against the order of the changes.
    apply(&store, &run, &report(Running, Some(u128::MAX)), t).await;
    let retried = apply(&store, &run, &report(StateKind::Crashed, None), t).await;
    assert_eq!((retried.state, retried.attempt), (AwaitingRetry, 1));
    let behind = t - Duration::seconds(2);
    apply(&store, &run, &report(Running, Some(u128::MAX - 1)), behind).await;
    let done = apply(&store, &run, &report(Completed, Some(1)), behind).await;
    assert_eq!((done.state, done.attempt, done.state_at), (Completed, 1, t));
    let expected = vec![
        (Scheduled, 0),
        (Pending, 1),
        (Running, 1),
        (AwaitingRetry, 1),
        (Running, 1),
        (Completed, 1),
    ];
    let history = store.flow_run_history(run.id).await.expect("history");
    assert_eq!(
        steps(&history),
        expected,
        "history in the order of its changes"
    );
    assert!(
        history.iter().all(|h| h.at == t),
        "every change stamped {t}"
    );
    let archived = store.archive_runs(&[run.id]).await.expect("archive");
    assert_eq!(archived.len(), 1);
    assert_eq!(
        steps(&archived[0].history),
        expected,
        "the export keeps the order"
    );
}

/// Running and Completed proposed at once for one run go through group commit together
/// (or one batch after the other), under ids that sort against their order and at one time:
/// the history has them in the order they were applied.
async fn case_one_group_commit_keeps_its_order(store: Store) {
    let d = deploy_etl(&store, 1).await;
    let t = now();
    let mut runs = Vec::new();
    for _ in 0..8 {
        runs.push(create_run(&store, &d, t).await);
    }
    let claimed = store
        .claim(Uuid::now_v7(), &["default".to_string()], 8, LEASE, t)
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 8, "every run is claimed");
    let mut proposals = Vec::new();
    for (i, run) in runs.iter().enumerate() {
        let running = report(Running, Some(u128::MAX - i as u128));
        let completed = report(Completed, Some(i as u128 + 1));
        let store = store.clone();
        let id = run.id;
        proposals.push(async move {
            let (a, b) = tokio::join!(
                store.propose_state(id, &running, LEASE, t),
                store.propose_state(id, &completed, LEASE, t)
            );
            (a.expect("running"), b.expect("completed"))
        });
    }
    futures_join(proposals).await;
    for run in &runs {
        let history = store.flow_run_history(run.id).await.expect("history");
        assert_eq!(
            steps(&history),
            vec![(Scheduled, 0), (Pending, 1), (Running, 1), (Completed, 1)],
            "run {}",
            run.id
        );
    }
}

/// Runs every future at once and waits for all of them.
async fn futures_join<F: std::future::Future + Send + 'static>(futures: Vec<F>)
where
    F::Output: Send,
{
    let tasks: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
    for task in tasks {
        task.await.expect("task");
    }
}

/// Two replicas (two stores over one database) change the same runs at once, every change
/// stamped the same time: the crash detector on one retries each run while its process,
/// through the other, reports Running and Completed. Whichever order the database applied
/// them in, each run's history is a legal chain ending in the run's state.
async fn replicas_race(db: &TestDb) {
    let a = connect(db).await;
    let b = connect(db).await;
    let d = deploy_etl(&a, 1).await;
    let t = now();
    let mut runs = Vec::new();
    for _ in 0..16 {
        runs.push(create_run(&a, &d, t).await);
    }
    let claimed = a
        .claim(Uuid::now_v7(), &["default".to_string()], 16, LEASE, t)
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 16, "every run is claimed");
    let mut tasks = Vec::new();
    for (i, run) in runs.iter().enumerate() {
        let (a, b, id) = (a.clone(), b.clone(), run.id);
        let high = u128::MAX - 4 * i as u128;
        tasks.push(tokio::spawn(async move {
            // Refusals are verdicts of the rules (the run moved on first): expected here.
            let _ = b
                .propose_state(id, &report(Running, Some(high)), LEASE, t)
                .await;
            let (crashed, running) = (
                report(StateKind::Crashed, None),
                report(Running, Some(high - 1)),
            );
            let crash = a.propose_state(id, &crashed, LEASE, t);
            let again = b.propose_state(id, &running, LEASE, t);
            let _ = tokio::join!(crash, again);
            let _ = b
                .propose_state(id, &report(Completed, Some(high - 2)), LEASE, t)
                .await;
        }));
    }
    for task in tasks {
        task.await.expect("race task");
    }
    for run in &runs {
        let current = a.flow_run(run.id).await.expect("run");
        let history = a.flow_run_history(run.id).await.expect("history");
        for w in history.windows(2) {
            let legal = w[0].state.can_become(w[1].state)
                || (w[1].attempt > w[0].attempt && !w[0].state.is_terminal());
            assert!(legal, "run {}: {:?}", run.id, steps(&history));
        }
        let last = history.last().map(|h| (h.state, h.attempt));
        assert_eq!(
            last,
            Some((current.state, current.attempt)),
            "run {}",
            run.id
        );
    }
    a.close().await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_replicas_race() {
    if let Some(db) = TestDb::new(Backend::Sqlite, "sqlite_history_replicas_race").await {
        replicas_race(&db).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_replicas_race() {
    if let Some(db) = TestDb::new(Backend::Postgres, "postgres_history_replicas_race").await {
        replicas_race(&db).await;
    }
}
