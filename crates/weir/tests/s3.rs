//! Persisted results and the task cache in S3 (moto's server, `WEIR_TEST_AWS_ENDPOINT`):
//! results land under the storage's prefix with the documented keys, a second run (a fresh
//! runner, as a second process would be) hits the cache, two runs racing on one cache key
//! leave one whole entry, and a missing bucket fails the run before any user code runs.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering::SeqCst};
use std::time::Duration;
use weir::Runner;
use weir::StateKind::*;
use weir::local::LocalTracker;
use weir::prelude::*;
use weir::results::ResultStore;
use weir_testkit::moto;

/// A quiet runner whose results go to `url` through moto at `ep`.
fn runner(ep: &str, url: &str) -> (Arc<LocalTracker>, Runner) {
    weir::logging::install(weir::logging::WeirLayer::new().quiet_outside());
    let tracker = Arc::new(LocalTracker::new().quiet());
    let store = ResultStore::open(url).expect("url").with_endpoint(ep);
    (tracker.clone(), Runner::new(tracker).with_results(store))
}

#[task(persist_result = true)]
async fn enrich(x: u32) -> anyhow::Result<Vec<u32>> {
    Ok(vec![x, x * 2])
}

#[flow]
async fn persisting(x: u32) -> anyhow::Result<Vec<u32>> {
    enrich(x).await
}

#[tokio::test]
async fn persisted_results_land_in_the_bucket() {
    let Some(ep) = moto::endpoint("persisted_results_land_in_the_bucket") else {
        return;
    };
    let bucket = moto::create_bucket(&ep, "persist");
    let url = format!("s3://{bucket}/results");
    let (tracker, runner) = runner(&ep, &url);
    assert_eq!(runner.run(persisting(21)).await.expect("run"), [21, 42]);
    let rec = tracker.records();
    let id = rec.flow_runs[0].id;
    let location = rec.task_runs_of("enrich")[0]
        .result_location
        .clone()
        .expect("a persisted result has a location");
    assert_eq!(location, format!("{url}/{id}/enrich/0.json"));
    let object = ResultStore::fetch_via(&location, &ep)
        .await
        .expect("in the bucket");
    assert_eq!(&object.bytes[..], b"[21,42]");
    assert_eq!(object.content_type.as_deref(), Some("application/json"));
}

static LOOKUPS_RUN: AtomicU32 = AtomicU32::new(0);

#[task(cache = true)]
async fn lookup(code: String) -> anyhow::Result<String> {
    LOOKUPS_RUN.fetch_add(1, SeqCst);
    Ok(format!("country {code}"))
}

#[flow]
async fn cached(code: String) -> anyhow::Result<String> {
    lookup(code).await
}

#[tokio::test]
async fn a_second_run_hits_the_cache_in_s3() {
    let Some(ep) = moto::endpoint("a_second_run_hits_the_cache_in_s3") else {
        return;
    };
    let bucket = moto::create_bucket(&ep, "cache");
    let url = format!("s3://{bucket}/weir");
    for _ in 0..2 {
        let (_, r) = runner(&ep, &url);
        assert_eq!(r.run(cached("NL".into())).await.expect("run"), "country NL");
    }
    assert_eq!(
        LOOKUPS_RUN.load(SeqCst),
        1,
        "the second run reuses the entry"
    );
    let (tracker, r) = runner(&ep, &url);
    r.run(cached("NL".into())).await.expect("third run");
    let rec = tracker.records();
    let t = rec.task_runs_of("lookup")[0];
    assert_eq!(t.message(), Some("cache hit"));
    let location = t.result_location.clone().expect("entry location");
    assert!(
        location.starts_with(&format!("{url}/cache/lookup/")),
        "{location}"
    );
    let entries = ResultStore::open(&url)
        .expect("url")
        .with_endpoint(&ep)
        .list("cache/lookup")
        .await
        .expect("list");
    assert_eq!(entries.len(), 1, "one entry: {entries:?}");
}

fn race_key(key: &str, _racer: &u32) -> String {
    key.to_string()
}

static RACERS_RUN: AtomicU32 = AtomicU32::new(0);

/// Slow enough that both racers miss the cache and both write.
#[task(cache_key = race_key)]
async fn contested(key: String, racer: u32) -> anyhow::Result<String> {
    RACERS_RUN.fetch_add(1, SeqCst);
    tokio::time::sleep(Duration::from_millis(300)).await;
    Ok(format!(
        "{key} computed by racer {racer}: {}",
        "x".repeat(32 * 1024)
    ))
}

#[flow]
async fn racing(key: String, racer: u32) -> anyhow::Result<String> {
    contested(key, racer).await
}

#[tokio::test]
async fn two_runs_racing_on_one_key_leave_one_whole_entry() {
    let Some(ep) = moto::endpoint("two_runs_racing_on_one_key_leave_one_whole_entry") else {
        return;
    };
    let bucket = moto::create_bucket(&ep, "cacherace");
    let url = format!("s3://{bucket}/weir");
    let (_, a) = runner(&ep, &url);
    let (_, b) = runner(&ep, &url);
    let (ra, rb) = tokio::join!(a.run(racing("k".into(), 1)), b.run(racing("k".into(), 2)));
    let (ra, rb) = (ra.expect("racer 1"), rb.expect("racer 2"));
    assert_eq!(RACERS_RUN.load(SeqCst), 2, "both missed and computed");
    assert_ne!(ra, rb);
    // A third run reads the entry: one racer's value, whole.
    let (tracker, c) = runner(&ep, &url);
    let cached = c.run(racing("k".into(), 3)).await.expect("third run");
    assert_eq!(RACERS_RUN.load(SeqCst), 2, "the third run hits the cache");
    assert!(cached == ra || cached == rb, "one racer's value");
    assert_eq!(
        tracker.records().task_runs_of("contested")[0].message(),
        Some("cache hit")
    );
}

static BODY_RAN: AtomicBool = AtomicBool::new(false);

#[flow]
async fn never_starts() -> anyhow::Result<u32> {
    BODY_RAN.store(true, SeqCst);
    Ok(1)
}

#[tokio::test]
async fn a_missing_bucket_fails_the_run_before_user_code() {
    let Some(ep) = moto::endpoint("a_missing_bucket_fails_the_run_before_user_code") else {
        return;
    };
    let url = format!("s3://{}/results", moto::bucket_name("absent"));
    let (tracker, r) = runner(&ep, &url);
    let e = r.run(never_starts()).await.expect_err("fails").to_string();
    assert!(!BODY_RAN.load(SeqCst), "no user code ran");
    assert!(
        e.contains("before the flow started") && e.contains(&url),
        "{e}"
    );
    assert!(e.contains("does not exist"), "{e}");
    let rec = tracker.records();
    assert_eq!(rec.flow_runs[0].state(), Failed);
    assert_eq!(rec.flow_runs[0].message(), Some(e.as_str()));
}
