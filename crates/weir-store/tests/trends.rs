//! The UI's history queries on both backends (an SQLite file; a fresh PostgreSQL database):
//! runs per hour by state within an exact window and a project filter — kept by the hourly
//! counts through state changes, deletions and their fold —, a deployment's outcomes since a
//! time, and its last runs to end.

#[macro_use]
mod common;

use chrono::{Duration, TimeZone, Utc};
use std::collections::BTreeMap;
use uuid::Uuid;
use weir_core::api::DeploymentSpec;
use weir_core::run::{Run, sample};
use weir_core::{StateKind, Timestamp};
use weir_store::{HourCounts, Store};

both_backends! {
    case_runs_by_hour => sqlite_runs_by_hour, postgres_runs_by_hour;
    case_runs_by_hour_follows_changes => sqlite_runs_by_hour_follows_changes, postgres_runs_by_hour_follows_changes;
    case_deployment_outcomes_and_last_ended => sqlite_deployment_outcomes_and_last_ended, postgres_deployment_outcomes_and_last_ended;
}

async fn deployment(store: &Store, project: &str, name: &str) -> Uuid {
    let spec = DeploymentSpec {
        flow: name.into(),
        work_queue: "default".into(),
        ..Default::default()
    };
    store
        .upsert_deployment(project, name, &spec, false, Utc::now())
        .await
        .expect("upsert")
        .deployment
        .expect("deployment")
        .id
}

/// A run of `project/name` (deployment `d`) created at `at`; a finished one started a second
/// later and ended `seconds` after that.
fn run(
    project: &str,
    (d, name): (Uuid, &str),
    at: Timestamp,
    state: StateKind,
    seconds: i64,
) -> Run {
    let id = Uuid::now_v7();
    let started = (state != StateKind::Scheduled).then(|| at + Duration::seconds(1));
    let ended = state
        .is_terminal()
        .then(|| at + Duration::seconds(1 + seconds));
    Run {
        id,
        project: project.into(),
        deployment_id: Some(d),
        deployment: Some(name.into()),
        flow: name.into(),
        name: format!("{name}-{}", &id.simple().to_string()[26..]),
        state_at: ended.or(started).unwrap_or(at),
        attempt: u32::from(started.is_some()),
        scheduled_at: at,
        created_at: at,
        started_at: started,
        ended_at: ended,
        ..sample(state)
    }
}

async fn case_runs_by_hour(store: Store) {
    let dev = deployment(&store, "dev", "etl").await;
    let main = deployment(&store, "main", "etl").await;
    let t = |h: u32, m: u32| Utc.with_ymd_and_hms(2026, 11, 30, h, m, 0).unwrap();
    use StateKind::*;
    let runs = vec![
        // Before the window (10:20): left out, though in the window's first hour.
        run("dev", (dev, "etl"), t(10, 5), Completed, 3),
        run("dev", (dev, "etl"), t(10, 20), Completed, 3),
        run("dev", (dev, "etl"), t(10, 59), Failed, 3),
        run("main", (main, "etl"), t(10, 40), Completed, 3),
        run("dev", (dev, "etl"), t(12, 0), Crashed, 3),
        run("dev", (dev, "etl"), t(12, 30), Completed, 3),
        run("main", (main, "etl"), t(12, 31), Running, 0),
        // At the window's end (13:00): left out.
        run("dev", (dev, "etl"), t(13, 0), Scheduled, 0),
    ];
    store.import_flow_runs(&runs).await.expect("import");
    let hours = store
        .runs_by_hour(None, t(10, 20), t(13, 0))
        .await
        .expect("runs by hour");
    let want = vec![
        HourCounts {
            hour: t(10, 0),
            counts: BTreeMap::from([(Completed, 2), (Failed, 1)]),
        },
        HourCounts {
            hour: t(12, 0),
            counts: BTreeMap::from([(Completed, 1), (Crashed, 1), (Running, 1)]),
        },
    ];
    assert_eq!(hours, want);
    let dev_only = store
        .runs_by_hour(Some(&["dev".to_string()]), t(10, 20), t(13, 0))
        .await
        .expect("dev's runs by hour");
    assert_eq!(
        dev_only
            .iter()
            .map(|h| (h.hour, h.counts.values().sum::<u64>()))
            .collect::<Vec<_>>(),
        [(t(10, 0), 2), (t(12, 0), 2)]
    );
    partial_and_empty_windows(&store, t).await;
}

/// The windows of [`case_runs_by_hour`]'s runs that end or begin inside an hour, and the
/// empty ones (no projects, a reversed window); `t(h, m)` is the day's time.
async fn partial_and_empty_windows(store: &Store, t: impl Fn(u32, u32) -> Timestamp) {
    use StateKind::*;
    // A partial last hour is counted up to the window's end; so is a window within an hour.
    let tail = store
        .runs_by_hour(None, t(10, 0), t(12, 31))
        .await
        .expect("a partial last hour");
    assert_eq!(
        tail.iter()
            .map(|h| (h.hour, h.counts.clone()))
            .collect::<Vec<_>>(),
        [
            (t(10, 0), BTreeMap::from([(Completed, 3), (Failed, 1)])),
            (t(12, 0), BTreeMap::from([(Completed, 1), (Crashed, 1)])),
        ]
    );
    let inside = store
        .runs_by_hour(
            Some(&["dev".to_string(), "main".to_string()]),
            t(12, 10),
            t(12, 32),
        )
        .await
        .expect("within one hour");
    assert_eq!(
        inside,
        [HourCounts {
            hour: t(12, 0),
            counts: BTreeMap::from([(Completed, 1), (Running, 1)]),
        }]
    );
    assert!(
        store
            .runs_by_hour(Some(&[]), t(10, 0), t(13, 0))
            .await
            .expect("no projects")
            .is_empty()
    );
    assert!(
        store
            .runs_by_hour(None, t(13, 0), t(10, 0))
            .await
            .expect("an empty window")
            .is_empty()
    );
}

/// The hourly counts follow every change of a run: its state (cancel, retry), its deletion
/// (retention), a new run; folding them (PostgreSQL) changes no count.
async fn case_runs_by_hour_follows_changes(store: Store) {
    let dev = deployment(&store, "dev", "etl").await;
    let now = common::now();
    let hour = |h: i64| {
        let at = now - Duration::hours(h);
        Utc.timestamp_micros(at.timestamp_micros() - at.timestamp_micros() % 3_600_000_000)
            .unwrap()
    };
    use StateKind::*;
    let minutes = |h: i64, m: i64| hour(h) + Duration::minutes(m);
    let dev_run = |h, m, state, attempt| run("dev", (dev, "etl"), minutes(h, m), state, attempt);
    let mut old = dev_run(30, 1, Completed, 3);
    old.state_at = hour(30) + Duration::minutes(2);
    let failed = dev_run(5, 3, Failed, 3);
    let waiting = dev_run(5, 4, Scheduled, 0);
    let done = dev_run(5, 5, Completed, 3);
    store
        .import_flow_runs(&[old.clone(), failed.clone(), waiting.clone(), done])
        .await
        .expect("import");
    let (from, until) = (hour(48), now + Duration::seconds(1));
    let counts = |hours: Vec<HourCounts>| -> Vec<_> {
        hours.into_iter().map(|h| (h.hour, h.counts)).collect()
    };
    assert_eq!(
        counts(store.runs_by_hour(None, from, until).await.expect("before")),
        [
            (hour(30), BTreeMap::from([(Completed, 1)])),
            (
                hour(5),
                BTreeMap::from([(Scheduled, 1), (Completed, 1), (Failed, 1)])
            ),
        ]
    );

    store
        .cancel_flow_run(waiting.id, now)
        .await
        .expect("cancel");
    store
        .retry_flow_run(failed.id, false, now)
        .await
        .expect("retry");
    let pruned = store
        .delete_runs("dev", &[old.id], now - Duration::hours(1), now)
        .await
        .expect("delete");
    assert_eq!(pruned.runs, 1);
    let weir_store::Created { run: fresh, .. } = store
        .create_flow_run(scheduled_now(dev, now), Duration::seconds(30), now)
        .await
        .expect("create");
    assert_eq!(fresh.state, Scheduled);
    let want = [
        (
            hour(5),
            BTreeMap::from([(Scheduled, 1), (Completed, 1), (Cancelled, 1)]),
        ),
        (hour(0), BTreeMap::from([(Scheduled, 1)])),
    ];
    assert_eq!(
        counts(store.runs_by_hour(None, from, until).await.expect("after")),
        want,
        "the deleted hour is gone, the retried run counts as Scheduled, the cancelled one as Cancelled"
    );
    let folded = store.fold_run_hours().await.expect("fold");
    assert_eq!(folded > 0, store.dialect() == weir_store::Dialect::Postgres);
    assert_eq!(store.fold_run_hours().await.expect("fold again"), 0);
    assert_eq!(
        counts(store.runs_by_hour(None, from, until).await.expect("folded")),
        want,
        "folding changes no count"
    );
}

/// A new Scheduled run of dev/etl due `now`.
fn scheduled_now(deployment: Uuid, now: Timestamp) -> weir_store::NewFlowRun {
    weir_store::NewFlowRun {
        project: "dev".into(),
        deployment: Some((deployment, "etl".into())),
        flow: "etl".into(),
        parameters: Default::default(),
        work_queue: "default".into(),
        scheduled_at: now,
        state: StateKind::Scheduled,
        retries: 0,
        retry_delay_s: 1,
        idempotency_key: None,
        parent_flow_run_id: None,
        tags: vec![],
        auto_scheduled: false,
        tick_at: None,
    }
}

async fn case_deployment_outcomes_and_last_ended(store: Store) {
    let etl = deployment(&store, "dev", "etl").await;
    let other = deployment(&store, "dev", "other").await;
    let base = Utc::now() - Duration::days(10);
    use StateKind::*;
    let mut runs = Vec::new();
    // 9 days ago: outside a 7-day window.
    runs.push(run(
        "dev",
        (etl, "etl"),
        base + Duration::days(1),
        Failed,
        5,
    ));
    for (i, (state, secs)) in [
        (Completed, 10),
        (Failed, 20),
        (Completed, 30),
        (Cancelled, 40),
        (Crashed, 50),
        (Completed, 60),
    ]
    .into_iter()
    .enumerate()
    {
        runs.push(run(
            "dev",
            (etl, "etl"),
            base + Duration::days(5) + Duration::hours(i as i64),
            state,
            secs,
        ));
    }
    // Not ended, and another deployment's: never counted.
    runs.push(run("dev", (etl, "etl"), Utc::now(), Running, 0));
    runs.push(run(
        "dev",
        (other, "other"),
        base + Duration::days(6),
        Failed,
        1,
    ));
    store.import_flow_runs(&runs).await.expect("import");

    let outcomes = store
        .deployment_outcomes(etl, Utc::now() - Duration::days(7))
        .await
        .expect("outcomes");
    assert_eq!(
        outcomes,
        BTreeMap::from([(Completed, 3), (Failed, 1), (Cancelled, 1), (Crashed, 1)])
    );
    let o = weir_core::trend::Outcomes::of(&outcomes);
    assert_eq!(
        o.success_rate(),
        Some(0.6),
        "3 of 5, the cancelled one aside"
    );

    let last = store.last_ended_runs(etl, 4).await.expect("last ended");
    let durations: Vec<(StateKind, i64)> = last
        .iter()
        .map(|r| {
            let s = r.started_at.expect("started");
            (r.state, (r.ended_at - s).num_seconds())
        })
        .collect();
    assert_eq!(
        durations,
        [
            (Completed, 60),
            (Crashed, 50),
            (Cancelled, 40),
            (Completed, 30)
        ],
        "the most recent to end first"
    );
    assert_eq!(last[0].id, runs[6].id);
    assert_eq!(last[0].name, runs[6].name);
    assert_eq!(store.last_ended_runs(etl, 100).await.expect("all").len(), 7);
}
