//! Task behaviour inside flows: retries and delays, retry_if, timeout, panics, cache, map,
//! submit, subflows, log attribution, run records.

mod common;

use common::setup;
use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::time::{Duration, Instant};
use weir::StateKind::{self, *};
use weir::prelude::*;

// ---------------------------------------------------------------- retries

static TWICE: AtomicU32 = AtomicU32::new(0);

#[task(retries = 3, retry_delay = "50ms")]
async fn fails_twice() -> anyhow::Result<u32> {
    let n = TWICE.fetch_add(1, SeqCst) + 1;
    if n <= 2 {
        anyhow::bail!("transient {n}");
    }
    Ok(n)
}

#[flow]
async fn retry_flow() -> anyhow::Result<u32> {
    fails_twice().await
}

#[tokio::test]
async fn retries_until_success_and_respect_the_delay() {
    let s = setup();
    let t0 = Instant::now();
    let v = s.runner.run(retry_flow()).await.expect("flow succeeds");
    assert_eq!(v, 3);
    assert!(
        t0.elapsed() >= Duration::from_millis(100),
        "{:?}",
        t0.elapsed()
    );
    let rec = s.tracker.records();
    let runs = rec.task_runs_of("fails_twice");
    assert_eq!(runs.len(), 1, "one task run, several attempts");
    let r = runs[0];
    assert_eq!(
        r.states(),
        vec![
            Running,
            AwaitingRetry,
            Running,
            AwaitingRetry,
            Running,
            Completed
        ]
    );
    assert_eq!(r.attempts(), 3);
    // Each retry started at least retry_delay after the failure.
    for w in r.history.windows(2) {
        if w[0].state == AwaitingRetry {
            let gap = (w[1].at - w[0].at).to_std().expect("ordered");
            assert!(gap >= Duration::from_millis(50), "gap {gap:?}");
        }
    }
    assert_eq!(rec.flow_runs_of("retry_flow")[0].state(), Completed);
}

#[task(name = "extract", retries = 2, retry_delay = "40ms", backoff = 2.0)]
async fn always_refused() -> anyhow::Result<u32> {
    anyhow::bail!("connection refused")
}

#[flow]
async fn backoff_flow() -> anyhow::Result<u32> {
    always_refused().await
}

#[tokio::test]
async fn exponential_backoff_and_failure_message() {
    let s = setup();
    let t0 = Instant::now();
    let err = s.runner.run(backoff_flow()).await.expect_err("must fail");
    // 40ms then 80ms.
    assert!(
        t0.elapsed() >= Duration::from_millis(120),
        "{:?}",
        t0.elapsed()
    );
    assert_eq!(
        err.to_string(),
        "task 'extract' failed after 3 attempts: connection refused"
    );
    let te = err.downcast_ref::<weir::TaskError>().expect("a TaskError");
    assert_eq!(te.attempts, 3);
    let rec = s.tracker.records();
    let flow = rec.flow_runs_of("backoff_flow")[0];
    assert_eq!(flow.state(), Failed);
    assert_eq!(
        flow.message(),
        Some("task 'extract' failed after 3 attempts: connection refused")
    );
    let task = rec.task_runs_of("extract")[0];
    assert_eq!(task.state(), Failed);
    assert_eq!(task.message(), Some("connection refused"));
    let retry_msgs: Vec<_> = task
        .history
        .iter()
        .filter(|h| h.state == AwaitingRetry)
        .filter_map(|h| h.message.clone())
        .collect();
    assert_eq!(
        retry_msgs,
        vec![
            "connection refused; retry in 40ms".to_string(),
            "connection refused; retry in 80ms".to_string()
        ]
    );
}

// ---------------------------------------------------------------- retry_if

fn is_transient(e: &anyhow::Error) -> bool {
    e.to_string().contains("transient")
}

static PERMANENT_CALLS: AtomicU32 = AtomicU32::new(0);
static TRANSIENT_CALLS: AtomicU32 = AtomicU32::new(0);

#[task(retries = 3, retry_delay = "10ms", retry_if = is_transient)]
async fn permanent_failure() -> anyhow::Result<()> {
    PERMANENT_CALLS.fetch_add(1, SeqCst);
    anyhow::bail!("permanent: bad credentials")
}

#[task(retries = 3, retry_delay = "10ms", retry_if = is_transient)]
async fn transient_once() -> anyhow::Result<u32> {
    if TRANSIENT_CALLS.fetch_add(1, SeqCst) == 0 {
        anyhow::bail!("transient: 503");
    }
    Ok(7)
}

#[flow]
async fn retry_if_flow() -> anyhow::Result<(bool, u32)> {
    let permanent = permanent_failure().await.is_err();
    let v = transient_once().await?;
    Ok((permanent, v))
}

#[tokio::test]
async fn retry_if_decides_which_errors_are_retried() {
    let s = setup();
    let (permanent_failed, v) = s.runner.run(retry_if_flow()).await.expect("flow");
    assert!(permanent_failed);
    assert_eq!(v, 7);
    assert_eq!(
        PERMANENT_CALLS.load(SeqCst),
        1,
        "non-retryable: one attempt"
    );
    assert_eq!(TRANSIENT_CALLS.load(SeqCst), 2, "retryable: retried");
    let rec = s.tracker.records();
    assert_eq!(
        rec.task_runs_of("permanent_failure")[0].states(),
        vec![Running, Failed]
    );
}

// ---------------------------------------------------------------- timeout and panic

#[task(timeout = "50ms", retries = 1)]
async fn too_slow() -> anyhow::Result<()> {
    tokio::time::sleep(Duration::from_secs(10)).await;
    Ok(())
}

#[flow]
async fn timeout_flow() -> anyhow::Result<()> {
    too_slow().await
}

#[tokio::test]
async fn timeout_fails_each_attempt() {
    let s = setup();
    let t0 = Instant::now();
    let err = s.runner.run(timeout_flow()).await.expect_err("times out");
    assert!(t0.elapsed() < Duration::from_secs(2));
    assert_eq!(
        err.to_string(),
        "task 'too_slow' failed after 2 attempts: timed out after 50ms"
    );
    let rec = s.tracker.records();
    let r = rec.task_runs_of("too_slow")[0];
    assert_eq!(r.states(), vec![Running, AwaitingRetry, Running, Failed]);
    assert_eq!(r.message(), Some("timed out after 50ms"));
}

#[task]
async fn explodes(x: u32) -> anyhow::Result<u32> {
    if x > 0 {
        panic!("kaboom {x}");
    }
    Ok(x)
}

#[flow]
async fn panic_flow() -> anyhow::Result<u32> {
    let submitted = explodes(2).submit().await;
    assert!(submitted.is_err());
    explodes(1).await
}

#[tokio::test]
async fn a_panic_becomes_a_failed_task_run() {
    let s = setup();
    let err = s.runner.run(panic_flow()).await.expect_err("fails");
    assert_eq!(
        err.to_string(),
        "task 'explodes' failed after 1 attempt: panicked: kaboom 1"
    );
    let rec = s.tracker.records();
    let runs = rec.task_runs_of("explodes");
    assert_eq!(runs.len(), 2);
    assert!(runs.iter().all(|r| r.state() == Failed));
    let msgs: Vec<_> = runs.iter().filter_map(|r| r.message()).collect();
    assert!(msgs.contains(&"panicked: kaboom 2"), "{msgs:?}");
    assert!(msgs.contains(&"panicked: kaboom 1"), "{msgs:?}");
    assert_eq!(rec.flow_runs_of("panic_flow")[0].state(), Failed);
}

#[flow]
async fn panicking_flow() -> anyhow::Result<u32> {
    panic!("flow body broke")
}

#[tokio::test]
async fn a_panic_in_a_flow_body_fails_the_flow_run() {
    let s = setup();
    let err = s.runner.run(panicking_flow()).await.expect_err("fails");
    assert_eq!(err.to_string(), "panicked: flow body broke");
    let rec = s.tracker.records();
    let f = rec.flow_runs_of("panicking_flow")[0];
    assert_eq!(f.state(), Failed);
    assert_eq!(f.message(), Some("flow panicked: flow body broke"));
}

// ---------------------------------------------------------------- cache

static EXPENSIVE_RUNS: AtomicU32 = AtomicU32::new(0);

#[task(cache = true, cache_expiration = "300ms")]
async fn expensive(x: u32) -> anyhow::Result<u32> {
    EXPENSIVE_RUNS.fetch_add(1, SeqCst);
    Ok(x * 2)
}

#[flow]
async fn cache_flow(x: u32) -> anyhow::Result<u32> {
    expensive(x).await
}

#[tokio::test]
async fn cache_hit_miss_and_expiry() {
    let s = setup();
    assert_eq!(s.runner.run(cache_flow(1)).await.expect("run"), 2);
    assert_eq!(EXPENSIVE_RUNS.load(SeqCst), 1);
    // Same inputs, another flow run: hit.
    assert_eq!(s.runner.run(cache_flow(1)).await.expect("run"), 2);
    assert_eq!(
        EXPENSIVE_RUNS.load(SeqCst),
        1,
        "cache hit must not run the body"
    );
    // Other inputs: miss.
    assert_eq!(s.runner.run(cache_flow(2)).await.expect("run"), 4);
    assert_eq!(EXPENSIVE_RUNS.load(SeqCst), 2);
    // Expired.
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(s.runner.run(cache_flow(1)).await.expect("run"), 2);
    assert_eq!(
        EXPENSIVE_RUNS.load(SeqCst),
        3,
        "expired entry must be recomputed"
    );

    let rec = s.tracker.records();
    let runs = rec.task_runs_of("expensive");
    assert_eq!(runs.len(), 4);
    assert_eq!(runs[1].states(), vec![Completed]);
    assert_eq!(runs[1].message(), Some("cache hit"));
    assert_eq!(runs[0].cache_key, runs[1].cache_key);
    assert_ne!(runs[0].cache_key, runs[2].cache_key);
    assert!(
        runs[1]
            .result_location
            .as_deref()
            .is_some_and(|l| l.starts_with("file://") && l.contains("/cache/expensive/"))
    );
    assert_eq!(runs[3].states(), vec![Running, Completed]);
}

static BY_LEN_RUNS: AtomicU32 = AtomicU32::new(0);

fn length_key(s: &str) -> String {
    format!("len={}", s.len())
}

#[task(cache_key = length_key)]
async fn by_length(s: String) -> anyhow::Result<usize> {
    BY_LEN_RUNS.fetch_add(1, SeqCst);
    Ok(s.len())
}

#[flow]
async fn custom_key_flow() -> anyhow::Result<Vec<usize>> {
    Ok(vec![
        by_length("ab".into()).await?,
        by_length("cd".into()).await?,
        by_length("xyz".into()).await?,
    ])
}

#[tokio::test]
async fn custom_cache_key() {
    let s = setup();
    assert_eq!(
        s.runner.run(custom_key_flow()).await.expect("run"),
        vec![2, 2, 3]
    );
    assert_eq!(BY_LEN_RUNS.load(SeqCst), 2, "\"cd\" has the key of \"ab\"");
    let rec = s.tracker.records();
    assert_eq!(
        rec.task_runs_of("by_length")[1].cache_key.as_deref(),
        Some("len=2")
    );
}

// ---------------------------------------------------------------- map and submit

#[task]
async fn double_later(x: u64) -> anyhow::Result<u64> {
    // Later items finish first.
    tokio::time::sleep(Duration::from_millis(30 - 3 * x)).await;
    Ok(x * 2)
}

#[task]
async fn reject_odd(x: u64) -> anyhow::Result<u64> {
    tokio::time::sleep(Duration::from_millis(10 - x)).await;
    if x % 2 == 1 {
        anyhow::bail!("odd input {x}");
    }
    Ok(x)
}

#[flow]
async fn map_flow() -> anyhow::Result<(Vec<u64>, String, usize)> {
    let doubled = weir::map(0..10, double_later).await?;
    let err = weir::map(0..6, reject_odd)
        .await
        .expect_err("odd items fail");
    let settled = weir::map_settled(0..6, reject_odd).await;
    let ok = settled.iter().filter(|r| r.is_ok()).count();
    Ok((doubled, format!("{err:#}"), ok))
}

#[tokio::test]
async fn map_keeps_order_and_reports_every_item() {
    let s = setup();
    let (doubled, err, ok) = s.runner.run(map_flow()).await.expect("flow");
    assert_eq!(doubled, (0..10).map(|x| x * 2).collect::<Vec<_>>());
    assert_eq!(err, "task 'reject_odd' failed after 1 attempt: odd input 1");
    assert_eq!(ok, 3);
    let rec = s.tracker.records();
    let doubles = rec.task_runs_of("double_later");
    assert_eq!(doubles.len(), 10);
    let mut idx: Vec<u32> = doubles.iter().filter_map(|r| r.map_index).collect();
    idx.sort_unstable();
    assert_eq!(idx, (0..10).collect::<Vec<u32>>());
    assert!(doubles.iter().all(|r| r.state() == Completed));
    let rejects = rec.task_runs_of("reject_odd");
    assert_eq!(rejects.len(), 12);
    assert_eq!(rejects.iter().filter(|r| r.state() == Failed).count(), 6);
    assert_eq!(rejects.iter().filter(|r| r.state() == Completed).count(), 6);
    for r in rejects {
        let i = r.map_index.expect("mapped");
        let expected: StateKind = if i % 2 == 1 { Failed } else { Completed };
        assert_eq!(r.state(), expected, "item {i}");
    }
}

#[task]
async fn nap_ms(ms: u64) -> anyhow::Result<u64> {
    tokio::time::sleep(Duration::from_millis(ms)).await;
    Ok(ms)
}

#[flow]
async fn submit_flow() -> anyhow::Result<u64> {
    let a = nap_ms(150).submit();
    let b = weir::submit(nap_ms(150));
    let c = nap_ms(1).await?;
    Ok(a.await? + b.await? + c)
}

#[tokio::test]
async fn submitted_tasks_run_concurrently() {
    let s = setup();
    let t0 = Instant::now();
    assert_eq!(s.runner.run(submit_flow()).await.expect("flow"), 301);
    let elapsed = t0.elapsed();
    assert!(
        elapsed < Duration::from_millis(290),
        "not concurrent: {elapsed:?}"
    );
    let rec = s.tracker.records();
    let runs = rec.task_runs_of("nap_ms");
    assert_eq!(runs.len(), 3);
    assert!(runs.iter().all(|r| r.state() == Completed));
}

// ---------------------------------------------------------------- subflows

#[task]
async fn child_step(x: u32) -> anyhow::Result<u32> {
    Ok(x + 1)
}

#[flow]
async fn child(x: u32) -> anyhow::Result<u32> {
    child_step(x).await
}

#[flow]
async fn failing_child() -> anyhow::Result<u32> {
    anyhow::bail!("child broke")
}

#[task]
async fn calls_child_in_task(x: u32) -> anyhow::Result<u32> {
    child(x).await
}

#[flow]
async fn parent() -> anyhow::Result<(u32, u32, String)> {
    let a = child(1).await?;
    let b = calls_child_in_task(10).await?;
    let e = failing_child().await.expect_err("fails");
    Ok((a, b, format!("{e:#}")))
}

#[tokio::test]
async fn subflows_are_child_flow_runs() {
    let s = setup();
    let (a, b, e) = s.runner.run(parent()).await.expect("flow");
    assert_eq!((a, b), (2, 11));
    assert_eq!(e, "subflow 'failing_child' failed: child broke");
    let rec = s.tracker.records();
    let p = rec.flow_runs_of("parent")[0];
    assert_eq!(p.parent_flow_run_id, None);
    let children = rec.flow_runs_of("child");
    assert_eq!(children.len(), 2);
    assert!(children.iter().all(|c| c.parent_flow_run_id == Some(p.id)));
    assert_eq!(children[0].parent_task_run_id, None);
    let wrapper = rec.task_runs_of("calls_child_in_task")[0];
    assert_eq!(children[1].parent_task_run_id, Some(wrapper.id));
    assert_eq!(children[0].parameters.get("x"), Some(&serde_json::json!(1)));
    // The child's task runs belong to the child flow run.
    let steps = rec.task_runs_of("child_step");
    assert_eq!(steps[0].flow_run_id, children[0].id);
    assert_eq!(rec.flow_runs_of("failing_child")[0].state(), Failed);
    assert_eq!(p.state(), Completed);
}

// ---------------------------------------------------------------- records and logs

#[task]
async fn chatty(x: u32) -> anyhow::Result<u32> {
    tracing::info!("hello from task {x}");
    tracing::warn!(rows = 3, "careful");
    Ok(x)
}

#[flow]
async fn records_flow() -> anyhow::Result<u32> {
    tracing::info!("in the flow body");
    let a = chatty(7).await?;
    let b = chatty(7).await?;
    let c = chatty(8).await?;
    Ok(a + b + c)
}

#[tokio::test]
async fn run_records_ids_history_fingerprints_and_logs() {
    let s = setup();
    assert_eq!(s.runner.run(records_flow()).await.expect("flow"), 22);
    let rec = s.tracker.records();
    let flow = rec.flow_runs_of("records_flow")[0];
    assert_eq!(flow.id.get_version_num(), 7);
    assert_eq!(flow.result, Some(serde_json::json!(22)));
    assert_eq!(
        flow.history.iter().map(|h| h.state).collect::<Vec<_>>(),
        vec![Running, Completed]
    );
    let runs = rec.task_runs_of("chatty");
    assert_eq!(runs.len(), 3);
    for r in &runs {
        assert_eq!(r.id.get_version_num(), 7);
        assert_eq!(r.flow_run_id, flow.id);
        assert!(r.history.windows(2).all(|w| w[0].at <= w[1].at));
        assert!(r.inputs_fingerprint.is_some());
        let logs = rec.logs_of_task_run(r.id);
        assert_eq!(logs.len(), 2, "each task run gets its own lines");
        assert_eq!(logs[1].message, "careful rows=3");
    }
    assert_eq!(runs[0].inputs_fingerprint, runs[1].inputs_fingerprint);
    assert_ne!(runs[0].inputs_fingerprint, runs[2].inputs_fingerprint);
    assert_eq!(
        rec.logs_of_task_run(runs[2].id)[0].message,
        "hello from task 8"
    );
    let flow_lines: Vec<_> = rec
        .logs
        .iter()
        .filter(|l| l.flow_run_id == flow.id && l.task_run_id.is_none())
        .collect();
    assert_eq!(flow_lines.len(), 1);
    assert_eq!(flow_lines[0].message, "in the flow body");
}

#[tokio::test]
async fn tasks_awaited_outside_a_flow_just_run() {
    assert_eq!(child_step(1).await.expect("runs"), 2);
    let err = explodes(3).await.expect_err("panics");
    assert_eq!(
        err.to_string(),
        "task 'explodes' failed after 1 attempt: panicked: kaboom 3"
    );
}
