//! Schedules: materialising runs, changing and pausing schedules, archiving and restoring
//! deployments, and DST.

use crate::common::now;
use crate::helpers::*;

use chrono::{Duration, TimeZone, Utc};
use std::collections::HashSet;
use uuid::Uuid;
use weir_core::api::{ScheduleSpec, UpsertOutcome};
use weir_core::deployment::Deployment;
use weir_core::run::Run;
use weir_core::{Schedule, StateKind, Timestamp};
use weir_store::{Error, RunFilter, Store};

fn interval(every: &str) -> ScheduleSpec {
    ScheduleSpec {
        interval: Some(every.into()),
        ..Default::default()
    }
}

fn fire_times(d: &Deployment, after: Timestamp, n: usize) -> Vec<Timestamp> {
    let s = Schedule::parse(&d.spec.schedules[0]).expect("valid schedule");
    s.fire_times(after, after + Duration::days(30), n)
}

async fn auto_runs(store: &Store, d: &Deployment) -> Vec<Run> {
    all_runs(
        store,
        RunFilter {
            deployment_id: Some(d.id),
            ..Default::default()
        },
    )
    .await
}

pub(crate) async fn case_materialise_idempotent(store: Store) {
    let mut s = spec("etl");
    s.schedules = vec![interval("1h")];
    s.retries = 2;
    s.tags = vec!["nightly".into()];
    let d = deploy(&store, "dev", "etl", s).await;
    let t = now();
    let times = fire_times(&d, t, 5);
    assert_eq!(times.len(), 5);
    assert_eq!(
        store
            .materialise_runs(&d, &times, t)
            .await
            .expect("materialise"),
        5
    );
    assert_eq!(
        store.materialise_runs(&d, &times, t).await.expect("again"),
        0,
        "calling twice creates once"
    );
    // An overlapping window creates only the new times.
    let more = fire_times(&d, t, 7);
    assert_eq!(store.materialise_runs(&d, &more, t).await.expect("more"), 2);
    let runs = auto_runs(&store, &d).await;
    assert_eq!(runs.len(), 7);
    let at: HashSet<Timestamp> = runs.iter().map(|r| r.scheduled_at).collect();
    assert_eq!(at, more.iter().copied().collect::<HashSet<_>>());
    let r = &runs[0];
    assert_eq!(
        (r.state, r.retries, r.work_queue.as_str()),
        (StateKind::Scheduled, 2, "default")
    );
    assert_eq!(r.tags, vec!["nightly".to_string()]);
    assert_eq!(
        store.materialise_runs(&d, &[], t).await.expect("nothing"),
        0
    );
    // Concurrent schedulers (replicas) still create each time once.
    let times = fire_times(&d, t + Duration::days(1), 10);
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let (store, d, times) = (store.clone(), d.clone(), times.clone());
        tasks.push(tokio::spawn(async move {
            store
                .materialise_runs(&d, &times, t)
                .await
                .expect("materialise")
        }));
    }
    let mut total = 0;
    for task in tasks {
        total += task.await.expect("join");
    }
    assert_eq!(total, 10);
    assert_eq!(auto_runs(&store, &d).await.len(), 17);
}

pub(crate) async fn case_schedule_change(store: Store) {
    let mut s = spec("etl");
    s.schedules = vec![interval("1h")];
    let d = deploy(&store, "dev", "etl", s.clone()).await;
    let t = now();
    // Past run already started by an agent, a past run never claimed, and future runs.
    let past = fire_times(&d, t - Duration::hours(3), 2);
    store.materialise_runs(&d, &past, t).await.expect("past");
    store
        .claim(Uuid::now_v7(), &queues(&["default"]), 1, LEASE, t)
        .await
        .expect("claim");
    let future = fire_times(&d, t, 4);
    store
        .materialise_runs(&d, &future, t)
        .await
        .expect("future");
    let manual = create(&store, &d, t + Duration::hours(2), t).await;
    assert_eq!(auto_runs(&store, &d).await.len(), 7);

    s.schedules = vec![interval("90m")];
    let r = store
        .upsert_deployment("dev", "etl", &s, false, t)
        .await
        .expect("update");
    assert_eq!(r.outcome, UpsertOutcome::Updated);
    let d2 = r.deployment.expect("deployment");
    let left = auto_runs(&store, &d2).await;
    let left_ids: HashSet<Uuid> = left.iter().map(|r| r.id).collect();
    assert_eq!(
        left.len(),
        3,
        "future auto-scheduled runs are removed: {left:?}"
    );
    assert!(
        left_ids.contains(&manual.id),
        "a run created by hand is kept"
    );
    assert!(
        left.iter()
            .all(|r| r.id == manual.id || r.scheduled_at <= t)
    );
    let new_times = fire_times(&d2, t, 4);
    assert_eq!(
        store
            .materialise_runs(&d2, &new_times, t)
            .await
            .expect("new"),
        4
    );
    // An unchanged upsert keeps the runs.
    let r = store
        .upsert_deployment("dev", "etl", &s, false, t)
        .await
        .expect("same");
    assert_eq!(r.outcome, UpsertOutcome::Unchanged);
    assert_eq!(auto_runs(&store, &d2).await.len(), 7);
}

pub(crate) async fn case_set_paused(store: Store) {
    let mut s = spec("etl");
    s.schedules = vec![interval("1h")];
    let d = deploy(&store, "dev", "etl", s).await;
    deploy(&store, "dev", "unscheduled", spec("etl")).await;
    let t = now();
    let names = |v: Vec<Deployment>| v.into_iter().map(|d| d.name).collect::<Vec<_>>();
    assert_eq!(
        names(store.scheduled_deployments().await.expect("due")),
        vec!["etl"]
    );
    store
        .materialise_runs(&d, &fire_times(&d, t - Duration::hours(2), 1), t)
        .await
        .expect("past");
    store
        .materialise_runs(&d, &fire_times(&d, t, 5), t)
        .await
        .expect("future");
    assert_eq!(auto_runs(&store, &d).await.len(), 6);
    store.set_paused(d.id, true, t).await.expect("pause");
    let paused = store.deployment_by_id(d.id).await.expect("get");
    assert!(paused.paused);
    assert_eq!(paused.updated_at, t);
    assert_eq!(
        auto_runs(&store, &d).await.len(),
        1,
        "future runs removed, the due one kept"
    );
    assert!(store.scheduled_deployments().await.expect("due").is_empty());
    store.set_paused(d.id, false, t).await.expect("resume");
    assert!(!store.deployment_by_id(d.id).await.expect("get").paused);
    assert_eq!(
        names(store.scheduled_deployments().await.expect("due")),
        vec!["etl"]
    );
    assert!(matches!(
        store.set_paused(Uuid::now_v7(), true, t).await,
        Err(Error::NotFound(_))
    ));
}

/// Archiving (what `weir deploy --prune` does to deployments gone from the file): no
/// schedules, the runs they put ahead removed, history kept; idempotent; an upsert restores.
pub(crate) async fn case_archive(store: Store) {
    let mut s = spec("etl");
    s.schedules = vec![interval("1h")];
    let d = deploy(&store, "dev", "etl", s.clone()).await;
    deploy(&store, "dev", "kept", spec("etl")).await;
    let t = now();
    store
        .materialise_runs(&d, &fire_times(&d, t - Duration::hours(2), 1), t)
        .await
        .expect("past");
    store
        .materialise_runs(&d, &fire_times(&d, t, 5), t)
        .await
        .expect("future");
    assert_eq!(auto_runs(&store, &d).await.len(), 6);

    assert!(store.archive_deployment(d.id, t).await.expect("archive"));
    let archived = store.deployment_by_id(d.id).await.expect("get");
    assert_eq!(archived.archived_at, Some(t));
    assert_eq!((archived.updated_at, archived.version), (t, 1));
    assert_eq!(
        auto_runs(&store, &d).await.len(),
        1,
        "runs put ahead removed, the one already due kept as history"
    );
    assert!(
        store.scheduled_deployments().await.expect("due").is_empty(),
        "an archived deployment never schedules"
    );
    let listed = store
        .deployments(Some(&["dev".to_string()]))
        .await
        .expect("ls");
    let names: Vec<_> = listed
        .iter()
        .map(|d| (d.name.as_str(), d.archived_at.is_some()))
        .collect();
    assert_eq!(
        names,
        vec![("etl", true), ("kept", false)],
        "still listed, marked"
    );

    // Idempotent: a second archive changes nothing.
    let later = t + Duration::seconds(5);
    assert!(!store.archive_deployment(d.id, later).await.expect("again"));
    assert_eq!(
        store.deployment_by_id(d.id).await.expect("get").archived_at,
        Some(t)
    );
}

/// Deploying an archived deployment's spec again restores it without a new version (a dry
/// run only says so); a changed spec restores it as a new version.
pub(crate) async fn case_restore(store: Store) {
    let mut s = spec("etl");
    s.schedules = vec![interval("1h")];
    let d = deploy(&store, "dev", "etl", s.clone()).await;
    let t = now();
    assert!(store.archive_deployment(d.id, t).await.expect("archive"));
    let later = t + Duration::seconds(5);
    let r = store
        .upsert_deployment("dev", "etl", &s, true, later)
        .await
        .expect("plan");
    assert_eq!(r.outcome, UpsertOutcome::Restored);
    assert!(
        store
            .deployment_by_id(d.id)
            .await
            .expect("get")
            .archived_at
            .is_some()
    );
    let r = store
        .upsert_deployment("dev", "etl", &s, false, later)
        .await
        .expect("restore");
    assert_eq!(r.outcome, UpsertOutcome::Restored);
    let restored = r.deployment.expect("deployment");
    assert_eq!((restored.version, restored.archived_at), (1, None));
    assert_eq!(store.scheduled_deployments().await.expect("due").len(), 1);
    let r = store
        .upsert_deployment("dev", "etl", &s, false, later)
        .await
        .expect("again");
    assert_eq!(r.outcome, UpsertOutcome::Unchanged);

    // Restored with a changed spec: a new version too.
    assert!(
        store
            .archive_deployment(d.id, later)
            .await
            .expect("archive")
    );
    let mut changed = s.clone();
    changed.schedules = vec![interval("2h")];
    let r = store
        .upsert_deployment("dev", "etl", &changed, false, later)
        .await
        .expect("restore changed");
    assert_eq!(r.outcome, UpsertOutcome::Restored);
    let restored = r.deployment.expect("deployment");
    assert_eq!((restored.version, restored.archived_at), (2, None));
    assert_eq!(restored.spec, changed);

    assert!(matches!(
        store.archive_deployment(Uuid::now_v7(), t).await,
        Err(Error::NotFound(_))
    ));
}

pub(crate) async fn case_dst(store: Store) {
    let mut s = spec("etl");
    s.schedules = vec![ScheduleSpec {
        cron: Some("30 2 * * *".into()),
        timezone: Some("America/New_York".into()),
        ..Default::default()
    }];
    let d = deploy(&store, "dev", "nightly", s).await;
    let schedule = Schedule::parse(&d.spec.schedules[0]).expect("valid");
    let tz: chrono_tz::Tz = "America/New_York".parse().expect("tz");
    let utc = |y, m, day| {
        Utc.with_ymd_and_hms(y, m, day, 0, 0, 0)
            .single()
            .expect("valid")
    };
    // Spring forward (2026-03-08: 02:30 does not exist) and fall back (2026-11-01: 01:00-02:00
    // happens twice), each over three local days.
    let windows = [
        (
            utc(2026, 3, 7),
            utc(2026, 3, 10),
            ["2026-03-07", "2026-03-08", "2026-03-09"],
        ),
        (
            utc(2026, 10, 31),
            utc(2026, 11, 3),
            ["2026-10-31", "2026-11-01", "2026-11-02"],
        ),
    ];
    let t = now();
    for (from, until, days) in windows {
        let times = schedule.fire_times(from, until, 100);
        assert_eq!(
            store
                .materialise_runs(&d, &times, t)
                .await
                .expect("materialise"),
            3
        );
        // A scheduler pass over an overlapping window adds nothing.
        let overlap =
            schedule.fire_times(from - Duration::hours(12), until + Duration::hours(1), 100);
        assert_eq!(
            store
                .materialise_runs(&d, &overlap, t)
                .await
                .expect("again"),
            0
        );
        let mut local: Vec<String> = auto_runs(&store, &d)
            .await
            .into_iter()
            .filter(|r| r.scheduled_at >= from && r.scheduled_at < until)
            .map(|r| {
                r.scheduled_at
                    .with_timezone(&tz)
                    .format("%Y-%m-%d")
                    .to_string()
            })
            .collect();
        local.sort();
        assert_eq!(local, days, "one run per local day");
    }
    assert_eq!(auto_runs(&store, &d).await.len(), 6);
}
