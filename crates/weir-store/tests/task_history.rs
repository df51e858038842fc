//! A task run's state history is read by the reports' times, and where times tie, in the
//! order the reports were stored (`task_run_states.seq`, migration 0015). Times are the
//! reporting process's clock, so reports of one task run share one when they come fast (a
//! task retried and done within one microsecond); before `seq` they were read `ORDER BY at`
//! and ties came back in whatever order the database's plan gave. Time comes first because a
//! task run's state is its report with the latest time: the history ends in that state,
//! whatever order reports were stored in. Every case runs against both backends (see
//! `common`), through the API's read (`Store::task_run`) and retention's export
//! (`Store::archive_runs`).

#[macro_use]
mod common;

use chrono::Duration;
use common::{create_run, deploy_etl, now};
use uuid::Uuid;
use weir_core::api::{ProposeState, TaskRunDetail, TaskRunReport, TaskRunState};
use weir_core::run::Run;
use weir_core::{StateKind, Timestamp};
use weir_store::Store;

both_backends! {
    case_tied_reports_keep_their_order => sqlite_tied_reports_keep_their_order, postgres_tied_reports_keep_their_order;
    case_a_late_report_takes_its_time => sqlite_a_late_report_takes_its_time, postgres_a_late_report_takes_its_time;
    case_closing_never_goes_back => sqlite_closing_never_goes_back, postgres_closing_never_goes_back;
}

const LEASE: Duration = Duration::seconds(30);

use StateKind::{AwaitingRetry, Completed, Crashed, Pending, Running};

/// A report of task run `id` of `run` entering `state` on `attempt` at `at`; its message
/// names it (`step`), so an entry read back says which report it was.
fn report(
    id: Uuid,
    run: Uuid,
    step: &str,
    state: StateKind,
    attempt: u32,
    at: Timestamp,
) -> TaskRunReport {
    TaskRunReport {
        id,
        flow_run_id: run,
        task: "fit".into(),
        state,
        at,
        message: Some(step.into()),
        attempt,
        inputs_fingerprint: None,
        cache_key: None,
        result_location: None,
        map_index: None,
        tags: vec![],
    }
}

/// `(message, state, attempt)` of each entry.
fn steps(history: &[TaskRunState]) -> Vec<(String, StateKind, u32)> {
    history
        .iter()
        .map(|h| (h.message.clone().unwrap_or_default(), h.state, h.attempt))
        .collect()
}

/// The history of task run `id` as the API reads it and as retention's export of `run`
/// holds it; asserts both are `expected` and end in the state the task run shows.
async fn check(
    store: &Store,
    run: Uuid,
    id: Uuid,
    expected: &[(&str, StateKind, u32)],
) -> TaskRunDetail {
    let expected: Vec<(String, StateKind, u32)> = expected
        .iter()
        .map(|(m, s, a)| ((*m).to_string(), *s, *a))
        .collect();
    let detail = store.task_run(id).await.expect("task run");
    assert_eq!(steps(&detail.history), expected, "task run {id}, API read");
    let last = detail.history.last().map(|h| (h.state, h.attempt));
    assert_eq!(
        last,
        Some((detail.task_run.state, detail.task_run.attempt)),
        "task run {id}: the history ends in its state"
    );
    let archived = store.archive_runs(&[run]).await.expect("archive");
    assert_eq!(archived.len(), 1);
    let exported = archived[0]
        .task_runs
        .iter()
        .find(|t| t.task_run.id == id)
        .expect("task run exported");
    assert_eq!(
        steps(&exported.history),
        expected,
        "task run {id}, retention's export"
    );
    detail
}

/// The batches of `case_tied_reports_keep_their_order`, as the SDK would ship them: task
/// runs `fast` and `quick` of run `r` report every state at `t` (`fast` but a straggler of
/// an earlier time, stored last), `slow` and `early` at times around it.
fn tied_batches(
    r: Uuid,
    [fast, quick, slow, early]: [Uuid; 4],
    t: Timestamp,
) -> Vec<Vec<TaskRunReport>> {
    let ms = |n: i64| t + Duration::milliseconds(n);
    vec![
        vec![
            report(slow, r, "slow runs", Running, 1, ms(-5)),
            report(fast, r, "fast runs 1", Running, 1, t),
            report(early, r, "early runs", Running, 1, ms(-9)),
            report(fast, r, "fast waits 1", AwaitingRetry, 1, t),
        ],
        vec![
            report(early, r, "early done", Completed, 1, ms(-8)),
            report(fast, r, "fast runs 2", Running, 2, t),
            report(slow, r, "slow waits", AwaitingRetry, 1, ms(5)),
        ],
        vec![
            report(fast, r, "fast waits 2", AwaitingRetry, 2, t),
            report(quick, r, "quick runs 1", Running, 1, t),
            report(slow, r, "slow runs again", Running, 2, ms(7)),
            report(fast, r, "fast runs 3", Running, 3, t),
            report(quick, r, "quick waits 1", AwaitingRetry, 1, t),
            report(quick, r, "quick runs 2", Running, 2, t),
            report(fast, r, "fast done", Completed, 3, t),
            report(quick, r, "quick done", Completed, 2, t),
            report(slow, r, "slow done", Completed, 2, ms(9)),
            report(fast, r, "fast pending", Pending, 1, ms(-1)),
        ],
    ]
}

/// A task retried twice and done, every report stamped the same microsecond (a fast task),
/// sent in three batches as the SDK ships them, beside other task runs whose reports come
/// earlier and later in time, interleaved in the same batches. Its history reads back in the
/// order the reports were made (after a straggler stored last with an earlier time: its
/// Pending), and so does a second task run whose reports all came in one batch; the task run
/// is Completed on attempt 3 (a tie goes to the report stored later).
async fn case_tied_reports_keep_their_order(store: Store) {
    let d = deploy_etl(&store, 0).await;
    let t = now();
    let run = create_run(&store, &d, t).await;
    let (fast, quick, slow, early) = (
        Uuid::now_v7(),
        Uuid::now_v7(),
        Uuid::now_v7(),
        Uuid::now_v7(),
    );
    let r = run.id;
    let batches = tied_batches(r, [fast, quick, slow, early], t);
    for batch in &batches {
        let stored = store.ingest_task_runs(batch).await.expect("ingest");
        assert_eq!(stored, batch.len() as u64);
    }
    let detail = check(
        &store,
        r,
        fast,
        &[
            ("fast pending", Pending, 1),
            ("fast runs 1", Running, 1),
            ("fast waits 1", AwaitingRetry, 1),
            ("fast runs 2", Running, 2),
            ("fast waits 2", AwaitingRetry, 2),
            ("fast runs 3", Running, 3),
            ("fast done", Completed, 3),
        ],
    )
    .await;
    assert!(
        detail.history[1..].iter().all(|h| h.at == t),
        "every report but the straggler stamped {t}"
    );
    assert_eq!(
        (detail.task_run.state, detail.task_run.attempt),
        (Completed, 3)
    );
    check(
        &store,
        r,
        quick,
        &[
            ("quick runs 1", Running, 1),
            ("quick waits 1", AwaitingRetry, 1),
            ("quick runs 2", Running, 2),
            ("quick done", Completed, 2),
        ],
    )
    .await;
    check(
        &store,
        r,
        slow,
        &[
            ("slow runs", Running, 1),
            ("slow waits", AwaitingRetry, 1),
            ("slow runs again", Running, 2),
            ("slow done", Completed, 2),
        ],
    )
    .await;
}

/// Reports stored after newer ones take their place by time, as the task run's state does
/// (an older report changes nothing): a straggler Running stored after Completed, and the
/// process's Completed of a task run the store had closed when its flow run crashed, stored
/// after the close with a time before it. Each history ends in the state its task run shows.
async fn case_a_late_report_takes_its_time(store: Store) {
    let d = deploy_etl(&store, 0).await;
    let t = now();
    let run = create_run(&store, &d, t).await;
    let claimed = store
        .claim(Uuid::now_v7(), &["default".to_string()], 1, LEASE, t)
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 1, "the run is claimed");
    let (r, ms) = (run.id, |n: i64| t + Duration::milliseconds(n));
    let propose = |state| ProposeState {
        state,
        message: Some(format!("to {state}")),
        attempt: 1,
        transition_id: None,
        result: None,
    };
    store
        .propose_state(r, &propose(Running), LEASE, ms(1))
        .await
        .expect("running");
    let (done, open) = (Uuid::now_v7(), Uuid::now_v7());
    store
        .ingest_task_runs(&[
            report(done, r, "done runs", Running, 1, ms(20)),
            report(done, r, "done done", Completed, 1, ms(30)),
            report(open, r, "open runs", Running, 1, ms(40)),
        ])
        .await
        .expect("ingest");
    store
        .ingest_task_runs(&[report(done, r, "done straggler", Running, 1, ms(10))])
        .await
        .expect("straggler");
    // The flow run crashes at 100 ms: the store closes `open`; its process's Completed, made
    // at 90 ms, arrives after.
    store
        .propose_state(r, &propose(Crashed), LEASE, ms(100))
        .await
        .expect("crashed");
    store
        .ingest_task_runs(&[report(open, r, "open done", Completed, 1, ms(90))])
        .await
        .expect("late report");
    let detail = check(
        &store,
        r,
        done,
        &[
            ("done straggler", Running, 1),
            ("done runs", Running, 1),
            ("done done", Completed, 1),
        ],
    )
    .await;
    assert_eq!(detail.task_run.state, Completed);
    let closed = "its flow run ended Crashed first";
    let detail = check(
        &store,
        r,
        open,
        &[
            ("open runs", Running, 1),
            ("open done", Completed, 1),
            (closed, Crashed, 1),
        ],
    )
    .await;
    assert_eq!(detail.task_run.state, Crashed);
}

/// A flow run, claimed at `t` and Running at `t + 1 ms`.
async fn running(store: &Store, t: Timestamp) -> Run {
    let d = deploy_etl(store, 0).await;
    let run = create_run(store, &d, t).await;
    let claimed = store
        .claim(Uuid::now_v7(), &["default".to_string()], 1, LEASE, t)
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 1, "the run is claimed");
    apply(store, run.id, Running, t + Duration::milliseconds(1)).await
}

/// Proposes `state` on attempt 1 of run `id` at `at`, expecting it applied.
async fn apply(store: &Store, id: Uuid, state: StateKind, at: Timestamp) -> Run {
    let p = ProposeState {
        state,
        message: Some(format!("to {state}")),
        attempt: 1,
        transition_id: None,
        result: None,
    };
    match store.propose_state(id, &p, LEASE, at).await {
        Ok(r) => r,
        Err(e) => panic!("{state} at {at}: {e}"),
    }
}

/// A task run the store closes when its flow run crashes is stamped no earlier than its own
/// state: its process's clock ran 100 ms ahead of the server's, so its Running is later than
/// the crash. Its Crashed is stamped with that Running's time, after it in its history, and
/// it ends when it started, not before; a task run of a process behind is closed at the
/// crash.
async fn case_closing_never_goes_back(store: Store) {
    let t = now();
    let ms = |n: i64| t + Duration::milliseconds(n);
    let run = running(&store, t).await;
    let (ahead, behind) = (Uuid::now_v7(), Uuid::now_v7());
    store
        .ingest_task_runs(&[
            report(ahead, run.id, "ahead runs", Running, 1, ms(200)),
            report(behind, run.id, "behind runs", Running, 1, ms(10)),
        ])
        .await
        .expect("ingest");
    apply(&store, run.id, Crashed, ms(100)).await;
    let closed = "its flow run ended Crashed first";
    let detail = check(
        &store,
        run.id,
        ahead,
        &[("ahead runs", Running, 1), (closed, Crashed, 1)],
    )
    .await;
    let times: Vec<Timestamp> = detail.history.iter().map(|h| h.at).collect();
    assert_eq!(times, [ms(200), ms(200)]);
    let tr = detail.task_run;
    assert_eq!(
        (tr.state, tr.started_at, tr.ended_at),
        (Crashed, Some(ms(200)), Some(ms(200)))
    );
    let detail = check(
        &store,
        run.id,
        behind,
        &[("behind runs", Running, 1), (closed, Crashed, 1)],
    )
    .await;
    assert_eq!(detail.history[1].at, ms(100));
    assert_eq!(detail.task_run.ended_at, Some(ms(100)));
}

/// Two replicas (two stores over one database): through one, each task run's process
/// reports Completed; through the other, its flow run crashes at the same moment, closing
/// the task runs still open. Whichever commits first, each task run has one final state,
/// and its history ends in it: no Crashed entry for a task run whose Completed was stored
/// while the close waited for it.
async fn replicas_close_and_report(db: &weir_testkit::TestDb) {
    let a = common::connect(db).await;
    let b = common::connect(db).await;
    let t = now();
    let ms = move |n: i64| t + Duration::milliseconds(n);
    let mut pairs = Vec::new();
    for _ in 0..24 {
        let run = running(&a, t).await;
        let task = Uuid::now_v7();
        a.ingest_task_runs(&[report(task, run.id, "runs", Running, 1, ms(10))])
            .await
            .expect("ingest");
        pairs.push((run.id, task));
    }
    let mut tasks = Vec::new();
    for &(run, task) in &pairs {
        let (a, b) = (a.clone(), b.clone());
        tasks.push(tokio::spawn(async move {
            let done = [report(task, run, "done", Completed, 1, ms(50))];
            let (crashed, reported) =
                tokio::join!(apply(&a, run, Crashed, ms(100)), b.ingest_task_runs(&done));
            assert_eq!(crashed.state, Crashed);
            reported.expect("report");
        }));
    }
    for task in tasks {
        task.await.expect("race task");
    }
    for &(run, task) in &pairs {
        let detail = a.task_run(task).await.expect("task run");
        let finals: Vec<StateKind> = detail
            .history
            .iter()
            .map(|h| h.state)
            .filter(|s| s.is_terminal())
            .collect();
        let state = detail.task_run.state;
        assert!(
            finals == [Completed] || finals == [Crashed] || finals == [Completed, Crashed],
            "task run {task} of {run}: {:?}",
            steps(&detail.history)
        );
        assert_eq!(
            detail.history.last().map(|h| h.state),
            Some(state),
            "task run {task} of {run}: {:?}",
            steps(&detail.history)
        );
        if state == Completed {
            assert_eq!(finals, [Completed], "task run {task} of {run}");
        }
    }
    a.close().await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_replicas_close_and_report() {
    let db = weir_testkit::TestDb::new(weir_testkit::Backend::Sqlite, "sqlite_close_and_report");
    if let Some(db) = db.await {
        replicas_close_and_report(&db).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_replicas_close_and_report() {
    let db =
        weir_testkit::TestDb::new(weir_testkit::Backend::Postgres, "postgres_close_and_report");
    if let Some(db) = db.await {
        replicas_close_and_report(&db).await;
    }
}
