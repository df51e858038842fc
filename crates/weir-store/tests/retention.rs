//! Retention in the store, on both backends (an SQLite file; a fresh PostgreSQL database):
//! which runs are past a window, what an export holds, what a delete removes (the run, its
//! task runs, both state histories, its logs — and nothing of anyone else's), that a run
//! retried between selection and deletion stays, and that pruning in batches never blocks
//! writers nor double-deletes when two pruners race.

#[macro_use]
mod common;

use common::now;

use chrono::Duration;
use std::collections::HashSet;
use std::sync::Arc;
use uuid::Uuid;
use weir_core::api::{DeploymentSpec, LogLevel, NewLogLine, TaskRunReport};
use weir_core::run::{Run, sample};
use weir_core::{StateKind, Timestamp};
use weir_store::{Error, NewFlowRun, Pruned, Store};

both_backends! {
    case_prunes_only_finished_runs_past_the_window => sqlite_prunes_only_finished_runs_past_the_window, postgres_prunes_only_finished_runs_past_the_window;
    case_a_run_retried_meanwhile_stays => sqlite_a_run_retried_meanwhile_stays, postgres_a_run_retried_meanwhile_stays;
    case_project_retention_setting => sqlite_project_retention_setting, postgres_project_retention_setting;
    case_batches_beside_writers_and_racing_pruners => sqlite_batches_beside_writers_and_racing_pruners, postgres_batches_beside_writers_and_racing_pruners;
}

/// Deploys `project/etl` and returns its id.
async fn deployment(store: &Store, project: &str) -> Uuid {
    let spec = DeploymentSpec {
        flow: "etl".into(),
        work_queue: "default".into(),
        ..Default::default()
    };
    store
        .upsert_deployment(project, "etl", &spec, false, now())
        .await
        .expect("upsert")
        .deployment
        .expect("deployment")
        .id
}

/// A run of `project/etl` created at `at`, in `state` since `at + 1 min`.
fn run(project: &str, d: Uuid, at: Timestamp, state: StateKind) -> Run {
    let id = Uuid::now_v7();
    let finished = state.is_terminal();
    Run {
        id,
        project: project.into(),
        deployment_id: Some(d),
        name: format!("etl-{}", &id.simple().to_string()[26..]),
        state_at: at + Duration::minutes(1),
        attempt: 1,
        scheduled_at: at,
        created_at: at,
        started_at: Some(at),
        ended_at: finished.then(|| at + Duration::minutes(1)),
        lease_expires_at: (!finished).then(|| now() + Duration::days(1)),
        ..sample(state)
    }
}

/// Two task runs (each Running then its end state) and three log lines for `r`.
async fn add_tasks_and_logs(store: &Store, r: &Run) {
    let mut reports = Vec::new();
    let mut lines = Vec::new();
    for (k, task) in ["extract", "load"].into_iter().enumerate() {
        let id = Uuid::now_v7();
        let at = r.created_at + Duration::seconds(k as i64 + 1);
        for (state, when) in [
            (StateKind::Running, at),
            (StateKind::Completed, at + Duration::milliseconds(500)),
        ] {
            reports.push(TaskRunReport {
                id,
                flow_run_id: r.id,
                task: task.into(),
                state,
                at: when,
                message: None,
                attempt: 1,
                inputs_fingerprint: None,
                cache_key: None,
                result_location: None,
                map_index: None,
                tags: vec![],
            });
        }
        lines.push(NewLogLine {
            flow_run_id: r.id,
            task_run_id: Some(id),
            at,
            level: LogLevel::Info,
            message: format!("{task} done"),
            attempt: None,
            stream: None,
            seq: None,
        });
    }
    lines.push(NewLogLine {
        flow_run_id: r.id,
        task_run_id: None,
        at: r.created_at,
        level: LogLevel::Warn,
        message: "flow-level line".into(),
        attempt: None,
        stream: None,
        seq: None,
    });
    store.ingest_task_runs(&reports).await.expect("task runs");
    store.ingest_logs(&lines).await.expect("logs");
}

fn ids(v: &[&Run]) -> HashSet<Uuid> {
    v.iter().map(|r| r.id).collect()
}

async fn case_prunes_only_finished_runs_past_the_window(store: Store) {
    let d = deployment(&store, "ret").await;
    let other = deployment(&store, "keep").await;
    let t = now();
    let cutoff = t - Duration::days(30);
    let old = t - Duration::days(40);
    let old_done = run("ret", d, old, StateKind::Completed);
    let old_failed = run("ret", d, old, StateKind::Failed);
    let old_running = run("ret", d, old, StateKind::Running);
    let recent = run("ret", d, t - Duration::days(2), StateKind::Completed);
    let other_old = run("keep", other, old, StateKind::Completed);
    let all = [&old_done, &old_failed, &old_running, &recent, &other_old];
    let runs: Vec<Run> = all.iter().map(|r| (*r).clone()).collect();
    store.import_flow_runs(&runs).await.expect("import");
    for r in all {
        add_tasks_and_logs(&store, r).await;
    }

    let expired = only_finished_runs_expire(&store, cutoff, &[&old_done, &old_failed]).await;
    let batch: Vec<Uuid> = expired.iter().copied().collect();
    export_holds_the_runs(&store, &batch, &[&old_done, &old_failed]).await;
    delete_removes_only_them(
        &store,
        &batch,
        cutoff,
        &[&old_done, &old_failed],
        &[&old_running, &recent, &other_old],
    )
    .await;
}

/// Exactly `finished` (finished and past the window) are expired, and the limit is kept.
async fn only_finished_runs_expire(
    store: &Store,
    cutoff: Timestamp,
    finished: &[&Run],
) -> HashSet<Uuid> {
    let expired: HashSet<Uuid> = store
        .expired_runs("ret", cutoff, 100)
        .await
        .expect("expired")
        .into_iter()
        .collect();
    assert_eq!(expired, ids(finished), "finished and past the window");
    assert_eq!(
        store
            .expired_runs("ret", cutoff, 1)
            .await
            .expect("limit")
            .len(),
        1
    );
    expired
}

/// The export holds everything the delete removes: each run of `batch` (one of `runs`), its
/// history, its task runs with theirs, and its logs in order.
async fn export_holds_the_runs(store: &Store, batch: &[Uuid], runs: &[&Run]) {
    let archived = store.archive_runs(batch).await.expect("archive");
    assert_eq!(archived.len(), 2);
    for a in &archived {
        let original = runs
            .iter()
            .find(|r| r.id == a.run.id)
            .expect("an archived run of the batch");
        assert_eq!(&a.run, *original);
        assert_eq!(a.history.len(), 1, "the imported history row");
        assert_eq!(a.task_runs.len(), 2);
        for t in &a.task_runs {
            assert_eq!(
                t.history.len(),
                2,
                "Running and Completed of {}",
                t.task_run.task
            );
        }
        assert_eq!(a.logs.len(), 3);
        assert!(
            a.logs.windows(2).all(|w| w[0].seq < w[1].seq),
            "logs in order"
        );
    }
}

/// Deleting `batch` removes the runs of `gone` with their task runs, histories and logs,
/// keeps every run of `kept` whole, leaves nothing expired, and deletes nothing a second time.
async fn delete_removes_only_them(
    store: &Store,
    batch: &[Uuid],
    cutoff: Timestamp,
    gone: &[&Run],
    kept: &[&Run],
) {
    let pruned = store
        .delete_runs("ret", batch, cutoff, now())
        .await
        .expect("delete");
    assert_eq!(
        pruned,
        Pruned {
            runs: 2,
            task_runs: 4,
            states: 2 + 8,
            logs: 6
        }
    );
    for r in gone {
        assert!(matches!(
            store.flow_run(r.id).await,
            Err(Error::NotFound(_))
        ));
        assert!(
            store
                .flow_run_history(r.id)
                .await
                .expect("history")
                .is_empty()
        );
        assert!(
            store
                .logs(r.id, None, 0, 100)
                .await
                .expect("logs")
                .is_empty()
        );
        let tasks = store.task_runs(r.id, None, 100).await.expect("task runs");
        assert!(tasks.items.is_empty(), "task runs deleted");
    }
    for r in kept {
        assert_eq!(&store.flow_run(r.id).await.expect("kept"), *r);
        assert_eq!(store.logs(r.id, None, 0, 100).await.expect("logs").len(), 3);
        let tasks = store.task_runs(r.id, None, 100).await.expect("task runs");
        assert_eq!(tasks.items.len(), 2);
        for t in &tasks.items {
            let detail = store.task_run(t.id).await.expect("task run");
            assert_eq!(detail.history.len(), 2, "task states kept");
        }
    }
    assert!(
        store
            .expired_runs("ret", cutoff, 100)
            .await
            .expect("none left")
            .is_empty()
    );
    // Deleting again deletes nothing.
    assert_eq!(
        store
            .delete_runs("ret", batch, cutoff, now())
            .await
            .expect("again"),
        Pruned::default()
    );
}

async fn case_a_run_retried_meanwhile_stays(store: Store) {
    let d = deployment(&store, "ret").await;
    let t = now();
    let cutoff = t - Duration::days(7);
    let r = run("ret", d, t - Duration::days(10), StateKind::Failed);
    store
        .import_flow_runs(std::slice::from_ref(&r))
        .await
        .expect("import");
    let batch = store
        .expired_runs("ret", cutoff, 10)
        .await
        .expect("expired");
    assert_eq!(batch, vec![r.id]);
    // Someone retries it before the pruner deletes: it is no longer finished.
    let retried = store.retry_flow_run(r.id, false, t).await.expect("retry");
    assert_eq!(retried.state, StateKind::Scheduled);
    let pruned = store
        .delete_runs("ret", &batch, cutoff, now())
        .await
        .expect("delete");
    assert_eq!(pruned, Pruned::default());
    assert_eq!(
        store.flow_run(r.id).await.expect("still there").state,
        StateKind::Scheduled
    );
    // A wrong project deletes nothing either.
    let old = run("ret", d, t - Duration::days(10), StateKind::Completed);
    store
        .import_flow_runs(std::slice::from_ref(&old))
        .await
        .expect("import");
    let pruned = store
        .delete_runs("other", &[old.id], cutoff, now())
        .await
        .expect("delete");
    assert_eq!(pruned.runs, 0);
    store.flow_run(old.id).await.expect("kept");
}

async fn case_project_retention_setting(store: Store) {
    deployment(&store, "ret").await;
    let p = store.set_retention("ret", Some(14)).await.expect("set");
    assert_eq!((p.name.as_str(), p.retain_days), ("ret", Some(14)));
    assert_eq!(p.pruned_runs, 0);
    assert_eq!(p.pruned_at, None);
    // Deletes count in the project, in the deleting transaction.
    let d = deployment(&store, "ret").await;
    let t = now();
    let old: Vec<Run> = (0..12)
        .map(|_| run("ret", d, t - Duration::days(20), StateKind::Completed))
        .collect();
    store.import_flow_runs(&old).await.expect("import");
    let cutoff = t - Duration::days(14);
    let ids: Vec<Uuid> = old.iter().map(|r| r.id).collect();
    for part in [&ids[..5], &ids[5..]] {
        store
            .delete_runs("ret", part, cutoff, t)
            .await
            .expect("delete");
    }
    let p = store
        .set_retention("ret", None)
        .await
        .expect("back to default");
    assert_eq!(p.retain_days, None);
    assert_eq!((p.pruned_runs, p.pruned_at), (12, Some(t)));
    assert_eq!(
        store
            .set_retention("ret", Some(0))
            .await
            .expect("forever")
            .retain_days,
        Some(0)
    );
    assert!(matches!(
        store.set_retention("nope", Some(3)).await,
        Err(Error::NotFound(_))
    ));
}

/// 1,500 old runs pruned in batches of 50 by two racing pruners while a writer creates runs:
/// every run goes exactly once, the writer never fails, and its runs stay.
async fn case_batches_beside_writers_and_racing_pruners(store: Store) {
    let d = deployment(&store, "ret").await;
    let t = now();
    let cutoff = t - Duration::days(30);
    let old: Vec<Run> = (0..1500)
        .map(|i| {
            let state = if i % 5 == 0 {
                StateKind::Cancelled
            } else {
                StateKind::Completed
            };
            run(
                "ret",
                d,
                t - Duration::days(60) + Duration::seconds(i),
                state,
            )
        })
        .collect();
    store.import_flow_runs(&old).await.expect("import");
    let store = Arc::new(store);
    let writer = tokio::spawn(write_runs(store.clone(), d));
    let (a, b) = tokio::join!(
        tokio::spawn(prune_all(store.clone(), cutoff)),
        tokio::spawn(prune_all(store.clone(), cutoff))
    );
    let (a, b) = (a.expect("pruner a"), b.expect("pruner b"));
    assert_eq!(
        a.runs + b.runs,
        1500,
        "every old run deleted exactly once: {a:?} {b:?}"
    );
    for id in writer.await.expect("writer") {
        store.flow_run(id).await.expect("the writer's runs stay");
    }
    assert!(
        store
            .expired_runs("ret", cutoff, 10)
            .await
            .expect("none")
            .is_empty()
    );
}

/// A pruner: deletes `ret`'s expired runs in batches of 50 until none is left, and returns
/// what it deleted.
async fn prune_all(store: Arc<Store>, cutoff: Timestamp) -> Pruned {
    let mut total = Pruned::default();
    loop {
        let batch = store
            .expired_runs("ret", cutoff, 50)
            .await
            .expect("expired");
        if batch.is_empty() {
            return total;
        }
        total += store
            .delete_runs("ret", &batch, cutoff, now())
            .await
            .expect("delete");
    }
}

/// A writer: creates 100 runs of deployment `d` one after another, none refused, and returns
/// their ids.
async fn write_runs(store: Arc<Store>, d: Uuid) -> Vec<Uuid> {
    let mut made = Vec::new();
    for _ in 0..100 {
        let new = NewFlowRun {
            project: "ret".into(),
            deployment: Some((d, "etl".into())),
            flow: "etl".into(),
            parameters: Default::default(),
            work_queue: "default".into(),
            scheduled_at: now(),
            tick_at: None,
            state: StateKind::Scheduled,
            retries: 0,
            retry_delay_s: 0,
            idempotency_key: None,
            parent_flow_run_id: None,
            tags: vec![],
            auto_scheduled: false,
        };
        let weir_store::Created { run: r, .. } = store
            .create_flow_run(new, Duration::seconds(30), now())
            .await
            .expect("a writer is never refused while pruning runs");
        made.push(r.id);
    }
    made
}
