//! Task runs and logs: reports in any order, closing with the flow run, pages, and log batches
//! (sent again among them).

use crate::common::now;
use crate::helpers::*;

use chrono::Duration;
use std::collections::BTreeMap;
use uuid::Uuid;
use weir_core::api::{LogLevel, NewLogLine, TaskRunReport};
use weir_core::{StateKind, Timestamp};
use weir_store::{Error, Store};

fn report(id: Uuid, flow_run: Uuid, task: &str, state: StateKind, at: Timestamp) -> TaskRunReport {
    TaskRunReport {
        id,
        flow_run_id: flow_run,
        task: task.into(),
        state,
        at,
        message: Some(format!("{task} {state}")),
        attempt: 1,
        inputs_fingerprint: None,
        cache_key: None,
        result_location: None,
        map_index: None,
        tags: vec![],
    }
}

pub(crate) async fn case_task_runs(store: Store) {
    let d = deploy(&store, "dev", "etl", spec("etl")).await;
    let t = now();
    let run = create(&store, &d, t, t).await;
    let a = Uuid::now_v7();
    let b = Uuid::now_v7();
    let s = |n: i64| t + Duration::milliseconds(n);
    let mut completed = report(a, run.id, "extract", StateKind::Completed, s(30));
    completed.result_location = Some("file:///tmp/r/extract".into());
    let mut pending = report(a, run.id, "extract", StateKind::Pending, s(10));
    pending.inputs_fingerprint = Some("fp1".into());
    pending.map_index = Some(3);
    // One batch, out of order: the newest report wins; every report is history.
    let batch = vec![
        completed.clone(),
        report(a, run.id, "extract", StateKind::Running, s(20)),
        pending,
        report(b, run.id, "load", StateKind::Completed, s(50)),
    ];
    assert_eq!(store.ingest_task_runs(&batch).await.expect("ingest"), 4);
    assert_eq!(store.ingest_task_runs(&[]).await.expect("empty"), 0);
    let weir_core::api::TaskRunDetail {
        task_run: tr,
        history,
    } = store.task_run(a).await.expect("task run");
    assert_eq!(
        (tr.state, tr.task.as_str(), tr.flow_run_id),
        (StateKind::Completed, "extract", run.id)
    );
    assert_eq!((tr.started_at, tr.ended_at), (Some(s(20)), Some(s(30))));
    assert_eq!(tr.inputs_fingerprint.as_deref(), Some("fp1"));
    assert_eq!(tr.result_location.as_deref(), Some("file:///tmp/r/extract"));
    assert_eq!(tr.map_index, Some(3));
    assert_eq!(tr.created_at, s(10));
    let states: Vec<StateKind> = history.iter().map(|h| h.state).collect();
    assert_eq!(
        states,
        vec![StateKind::Pending, StateKind::Running, StateKind::Completed]
    );
    // A later batch with an older report (a straggler) never overwrites the newer state.
    store
        .ingest_task_runs(&[report(a, run.id, "extract", StateKind::Running, s(25))])
        .await
        .expect("ingest");
    let weir_core::api::TaskRunDetail {
        task_run: tr,
        history,
    } = store.task_run(a).await.expect("task run");
    assert_eq!(tr.state, StateKind::Completed);
    assert_eq!(tr.message.as_deref(), Some("extract Completed"));
    assert_eq!(
        history.len(),
        4,
        "the straggler is still kept in the history"
    );
    reverse_batches_then_a_retry(&store, run.id, t).await;

    let counts = store.task_run_counts(run.id).await.expect("counts");
    assert_eq!(
        counts,
        BTreeMap::from([(StateKind::Completed, 2), (StateKind::Running, 1)])
    );
    assert!(matches!(
        store.task_run(Uuid::now_v7()).await,
        Err(Error::NotFound(_))
    ));
    let owners = store
        .flow_run_owners(&[run.id, Uuid::now_v7()])
        .await
        .expect("owners");
    assert_eq!(owners.len(), 1);
    assert_eq!(
        owners.get(&run.id),
        Some(&("dev".to_string(), 0, StateKind::Scheduled))
    );
}

/// A task run of `run` reported Failed, then (in a later batch) Running from earlier: it
/// ends in its newest state, created by its earliest report; then a newer report of its
/// second attempt moves it to Running. `t` is the run's creation.
async fn reverse_batches_then_a_retry(store: &Store, run: Uuid, t: Timestamp) {
    let s = |n: i64| t + Duration::milliseconds(n);
    // Across batches in reverse order: the task run ends in its newest state.
    let c = Uuid::now_v7();
    store
        .ingest_task_runs(&[report(c, run, "fit", StateKind::Failed, s(90))])
        .await
        .expect("ingest");
    store
        .ingest_task_runs(&[report(c, run, "fit", StateKind::Running, s(60))])
        .await
        .expect("ingest");
    let tr = store.task_run(c).await.expect("task run").task_run;
    assert_eq!(
        (tr.state, tr.started_at, tr.ended_at),
        (StateKind::Failed, Some(s(60)), Some(s(90)))
    );
    assert_eq!(
        tr.created_at,
        s(60),
        "created by its earliest report, not the first to arrive"
    );
    // A newer report moves it (a task retry).
    let mut again = report(c, run, "fit", StateKind::Running, s(100));
    again.attempt = 2;
    store.ingest_task_runs(&[again]).await.expect("ingest");
    let tr = store.task_run(c).await.expect("task run").task_run;
    assert_eq!((tr.state, tr.attempt), (StateKind::Running, 2));
}

/// A flow run that ends (here Crashed, its process gone) closes the task runs it left open,
/// with a history row each; finished task runs keep their state; a straggler report older
/// than the end changes nothing.
pub(crate) async fn case_task_runs_close_with_flow_run(store: Store) {
    let d = deploy(&store, "dev", "etl", spec("etl")).await;
    let t = now();
    let run = create(&store, &d, t, t).await;
    claim_one(&store, Uuid::now_v7(), t).await;
    let s = |n: i64| t + Duration::milliseconds(n);
    store
        .propose_state(run.id, &propose(StateKind::Running, 1), LEASE, s(1))
        .await
        .expect("running");
    let (open, done) = (Uuid::now_v7(), Uuid::now_v7());
    store
        .ingest_task_runs(&[
            report(open, run.id, "nap", StateKind::Running, s(10)),
            report(done, run.id, "load", StateKind::Completed, s(20)),
        ])
        .await
        .expect("ingest");
    store
        .propose_state(run.id, &propose(StateKind::Crashed, 1), LEASE, s(100))
        .await
        .expect("crashed");
    let detail = store.task_run(open).await.expect("task run");
    assert_eq!(detail.task_run.state, StateKind::Crashed);
    assert_eq!(detail.task_run.ended_at, Some(s(100)));
    assert!(
        detail
            .task_run
            .message
            .as_deref()
            .is_some_and(|m| m.contains("Crashed")),
        "{:?}",
        detail.task_run.message
    );
    let states: Vec<StateKind> = detail.history.iter().map(|h| h.state).collect();
    assert_eq!(states, vec![StateKind::Running, StateKind::Crashed]);
    let done_run = store.task_run(done).await.expect("task run").task_run;
    assert_eq!(
        done_run.state,
        StateKind::Completed,
        "finished ones are kept"
    );
    store
        .ingest_task_runs(&[report(open, run.id, "nap", StateKind::Running, s(50))])
        .await
        .expect("straggler");
    let tr = store.task_run(open).await.expect("task run").task_run;
    assert_eq!(
        tr.state,
        StateKind::Crashed,
        "an older report never reopens it"
    );
}

pub(crate) async fn case_task_run_pagination(store: Store) {
    let d = deploy(&store, "dev", "etl", spec("etl")).await;
    let t = now();
    let run = create(&store, &d, t, t).await;
    let other = create(&store, &d, t, t).await;
    let ids: Vec<Uuid> = (0..250).map(|_| Uuid::now_v7()).collect();
    // 250 task runs, two reports each, in one batch (more than one statement chunk).
    let mut batch = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let mut r = report(*id, run.id, "map", StateKind::Running, t);
        r.map_index = Some(i as u32);
        batch.push(r);
        batch.push(report(
            *id,
            run.id,
            "map",
            StateKind::Completed,
            t + Duration::seconds(1),
        ));
    }
    batch.push(report(Uuid::now_v7(), other.id, "x", StateKind::Running, t));
    assert_eq!(store.ingest_task_runs(&batch).await.expect("ingest"), 501);
    let mut seen = Vec::new();
    let mut after = None;
    let mut sizes = Vec::new();
    loop {
        let page = store.task_runs(run.id, after, 100).await.expect("page");
        sizes.push(page.items.len());
        seen.extend(page.items.iter().map(|t| t.id));
        assert!(page.items.iter().all(|t| t.state == StateKind::Completed));
        match page.next_cursor {
            Some(c) => after = Some(c.parse().expect("uuid cursor")),
            None => break,
        }
    }
    assert_eq!(sizes, vec![100, 100, 50]);
    assert_eq!(seen, ids, "creation order, no gaps or duplicates");
    let counts = store.task_run_counts(run.id).await.expect("counts");
    assert_eq!(counts, BTreeMap::from([(StateKind::Completed, 250)]));
}

pub(crate) async fn case_logs(store: Store) {
    let d = deploy(&store, "dev", "etl", spec("etl")).await;
    let t = now();
    let run = create(&store, &d, t, t).await;
    let other = create(&store, &d, t, t).await;
    let task = Uuid::now_v7();
    let lines: Vec<NewLogLine> = (0..30)
        .map(|i| NewLogLine {
            flow_run_id: if i % 10 == 9 { other.id } else { run.id },
            task_run_id: (i % 3 == 0).then_some(task),
            at: t + Duration::milliseconds(i),
            level: if i % 5 == 0 {
                LogLevel::Warn
            } else {
                LogLevel::Info
            },
            message: format!("line {i} ✓"),
            attempt: None,
            stream: None,
            seq: None,
        })
        .collect();
    assert_eq!(store.ingest_logs(&lines).await.expect("ingest"), 30);
    assert_eq!(store.ingest_logs(&[]).await.expect("empty"), 0);
    let mut after = 0;
    let mut got = Vec::new();
    loop {
        let page = store.logs(run.id, None, after, 10).await.expect("read");
        if page.is_empty() {
            break;
        }
        assert!(page.windows(2).all(|w| w[0].seq < w[1].seq));
        assert!(page[0].seq > after);
        after = page.last().map(|l| l.seq).unwrap_or(after);
        got.extend(page);
    }
    let want: Vec<&NewLogLine> = lines.iter().filter(|l| l.flow_run_id == run.id).collect();
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(
            (&g.message, g.level, g.at, g.task_run_id),
            (&w.message, w.level, w.at, w.task_run_id)
        );
    }
    let of_task = store
        .logs(run.id, Some(task), 0, 100)
        .await
        .expect("task logs");
    assert_eq!(
        of_task.len(),
        want.iter().filter(|l| l.task_run_id == Some(task)).count()
    );
    assert_eq!(
        store
            .logs(other.id, None, 0, 100)
            .await
            .expect("other")
            .len(),
        3
    );
    assert!(
        store
            .logs(run.id, None, after, 10)
            .await
            .expect("tail")
            .is_empty()
    );
}

/// #10: a log batch sent again because its answer was lost (the server died after committing
/// it) is stored once; lines are told apart by (run, attempt, stream, seq) only, and lines
/// without them (older senders) are never merged.
pub(crate) async fn case_logs_sent_again(store: Store) {
    let d = deploy(&store, "dev", "etl", spec("etl")).await;
    let t = now();
    let run = create(&store, &d, t, t).await;
    let line = |attempt: u32, stream: Option<u32>, seq: u64| NewLogLine {
        flow_run_id: run.id,
        task_run_id: None,
        at: t + Duration::milliseconds(seq as i64),
        level: LogLevel::Info,
        message: format!("tick {seq}"),
        attempt: Some(attempt),
        stream,
        seq: stream.map(|_| seq),
    };
    let batch: Vec<NewLogLine> = (0..10).map(|i| line(1, Some(7), i)).collect();
    assert_eq!(store.ingest_logs(&batch).await.expect("first send"), 10);
    assert_eq!(
        store.ingest_logs(&batch).await.expect("sent again"),
        0,
        "every line of the batch sent again is already stored"
    );
    let overlapping: Vec<NewLogLine> = (5..15).map(|i| line(1, Some(7), i)).collect();
    assert_eq!(store.ingest_logs(&overlapping).await.expect("overlap"), 5);
    let mut within: Vec<NewLogLine> = (20..23).map(|i| line(1, Some(7), i)).collect();
    within.push(line(1, Some(7), 20));
    assert_eq!(
        store
            .ingest_logs(&within)
            .await
            .expect("a repeat inside one batch"),
        3
    );
    // The same numbers from another stream, or of another attempt, are other lines.
    assert_eq!(
        store
            .ingest_logs(&[line(1, Some(8), 0)])
            .await
            .expect("stream"),
        1
    );
    assert_eq!(
        store
            .ingest_logs(&[line(2, Some(7), 0)])
            .await
            .expect("attempt"),
        1
    );
    let legacy = [line(1, None, 0)];
    assert_eq!(store.ingest_logs(&legacy).await.expect("legacy"), 1);
    assert_eq!(store.ingest_logs(&legacy).await.expect("legacy again"), 1);
    let stored = store.logs(run.id, None, 0, 1000).await.expect("read");
    assert_eq!(stored.len(), 15 + 3 + 2 + 2);
    for seq in 0..15 {
        let n = stored
            .iter()
            .filter(|l| l.message == format!("tick {seq}"))
            .count();
        // tick 0 also from stream 8, attempt 2 and the two legacy lines.
        let want = if seq == 0 { 5 } else { 1 };
        assert_eq!(n, want, "tick {seq} stored {n} times");
    }
    let too_big = NewLogLine {
        seq: Some(u64::MAX),
        ..line(1, Some(9), 0)
    };
    assert!(
        store.ingest_logs(&[too_big]).await.is_err(),
        "a seq beyond BIGINT is refused"
    );
}
