//! Persisted results: the key layout, and reuse on a resumed flow run (same id, later attempt)
//! without running the persisted task again.

mod common;

use common::with_tracker;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering::SeqCst};
use uuid::Uuid;
use weir::StateKind::*;
use weir::local::LocalTracker;
use weir::prelude::*;

static STEP1_RUNS: AtomicU32 = AtomicU32::new(0);
static DOWNSTREAM_DOWN: AtomicBool = AtomicBool::new(true);

#[task(persist_result = true)]
async fn step1(x: u32) -> anyhow::Result<u32> {
    STEP1_RUNS.fetch_add(1, SeqCst);
    Ok(x + 100)
}

#[task]
async fn step2(v: u32) -> anyhow::Result<u32> {
    if DOWNSTREAM_DOWN.load(SeqCst) {
        anyhow::bail!("downstream unavailable");
    }
    Ok(v * 2)
}

#[flow]
async fn resumable(x: u32) -> anyhow::Result<u32> {
    let a = step1(x).await?;
    step2(a).await
}

#[tokio::test]
async fn a_resumed_run_reuses_persisted_results() {
    let dir = tempfile::tempdir().expect("tempdir");
    let id = Uuid::now_v7();

    // Attempt 1: step1 runs and persists, step2 fails.
    let (t1, r1) = with_tracker(
        LocalTracker::new().quiet().assign_run(id, 1, false),
        dir.path(),
    );
    let err = r1.run(resumable(1)).await.expect_err("attempt 1 fails");
    assert!(err.to_string().contains("downstream unavailable"), "{err}");
    assert_eq!(STEP1_RUNS.load(SeqCst), 1);
    let file = dir.path().join(id.to_string()).join("step1").join("0.json");
    assert_eq!(std::fs::read_to_string(&file).expect("persisted"), "101");
    let rec1 = t1.records();
    assert_eq!(rec1.flow_runs[0].id, id);
    let loc = rec1.task_runs_of("step1")[0]
        .result_location
        .clone()
        .expect("location");
    assert_eq!(
        loc,
        format!("file://{}/{id}/step1/0.json", dir.path().display())
    );

    // Attempt 2, resumed: step1 is not run again, its result is reused.
    DOWNSTREAM_DOWN.store(false, SeqCst);
    let (t2, r2) = with_tracker(
        LocalTracker::new().quiet().assign_run(id, 2, true),
        dir.path(),
    );
    assert_eq!(r2.run(resumable(1)).await.expect("attempt 2 succeeds"), 202);
    assert_eq!(
        STEP1_RUNS.load(SeqCst),
        1,
        "the persisted task must not run again"
    );
    let rec2 = t2.records();
    let f = &rec2.flow_runs[0];
    assert_eq!((f.id, f.attempt, f.resume), (id, 2, true));
    assert_eq!(f.state(), Completed);
    let s1 = rec2.task_runs_of("step1")[0];
    assert_eq!(s1.states(), vec![Completed]);
    assert!(
        s1.message().is_some_and(|m| m.contains("result reused")),
        "{:?}",
        s1.message()
    );
    assert_eq!(s1.result_location.as_deref(), Some(loc.as_str()));
    assert_eq!(
        rec2.task_runs_of("step2")[0].states(),
        vec![Running, Completed]
    );
}

static INDEXED_RUNS: AtomicU32 = AtomicU32::new(0);

#[task(persist_result = true)]
async fn indexed(x: u32) -> anyhow::Result<u32> {
    INDEXED_RUNS.fetch_add(1, SeqCst);
    Ok(x)
}

#[flow]
async fn many_calls() -> anyhow::Result<Vec<u32>> {
    let first = indexed(0).await?;
    let mapped = weir::map(1..4, indexed).await?;
    let last = indexed(4).submit().await?;
    let mut all = vec![first];
    all.extend(mapped);
    all.push(last);
    Ok(all)
}

#[tokio::test]
async fn result_keys_follow_program_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let id = Uuid::now_v7();
    let (_t, r) = with_tracker(
        LocalTracker::new().quiet().assign_run(id, 1, false),
        dir.path(),
    );
    assert_eq!(
        r.run(many_calls()).await.expect("flow"),
        vec![0, 1, 2, 3, 4]
    );
    for i in 0..5u32 {
        let file = dir
            .path()
            .join(id.to_string())
            .join("indexed")
            .join(format!("{i}.json"));
        let content = std::fs::read_to_string(&file).expect("persisted result");
        assert_eq!(
            content,
            i.to_string(),
            "call {i} stored under its call index"
        );
    }
    // A non-resumed later attempt runs everything again.
    let before = INDEXED_RUNS.load(SeqCst);
    let (_t, r) = with_tracker(
        LocalTracker::new().quiet().assign_run(id, 2, false),
        dir.path(),
    );
    r.run(many_calls()).await.expect("flow");
    assert_eq!(INDEXED_RUNS.load(SeqCst), before + 5);
}
