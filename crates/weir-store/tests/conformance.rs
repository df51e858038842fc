//! Conformance suite of [`weir_store::Store`]: every behaviour the server relies on, written
//! once as `async fn case_x(store: Store)` and run against both backends — an SQLite file in
//! a temporary directory and a fresh database on a real PostgreSQL server (see
//! `weir-testkit` and `scripts/test-postgres.sh`).
//!
//! The store takes `now` as an argument everywhere, so time-dependent rules (leases, retry
//! delays, due times) are tested by passing later times instead of sleeping.

#[macro_use]
mod common;

use common::{connect, now};

use chrono::{Duration, TimeZone, Utc};
use std::collections::{BTreeMap, HashSet};
use uuid::Uuid;
use weir_core::api::{
    DeploymentSpec, HeldRun, LogLevel, NewLogLine, ProposeState, RegisterAgent, ScheduleSpec,
    TaskRunReport, UpsertOutcome,
};
use weir_core::deployment::Deployment;
use weir_core::run::Run;
use weir_core::{Schedule, StateKind, Timestamp};
use weir_store::{Error, NewFlowRun, RunFilter, Store};
use weir_testkit::{Backend, TestDb};

both_backends! {
    case_projects => sqlite_projects, postgres_projects;
    case_deployment_upsert => sqlite_deployment_upsert, postgres_deployment_upsert;
    case_dry_run_upserts => sqlite_dry_run_upserts, postgres_dry_run_upserts;
    case_create_idempotent => sqlite_create_idempotent, postgres_create_idempotent;
    case_ad_hoc_run => sqlite_ad_hoc_run, postgres_ad_hoc_run;
    case_concurrent_upserts => sqlite_concurrent_upserts, postgres_concurrent_upserts;
    case_list_filters => sqlite_list_filters, postgres_list_filters;
    case_list_pagination => sqlite_list_pagination, postgres_list_pagination;
    case_propose_state => sqlite_propose_state, postgres_propose_state;
    case_transition_id_idempotent => sqlite_transition_id_idempotent, postgres_transition_id_idempotent;
    case_concurrent_proposals => sqlite_concurrent_proposals, postgres_concurrent_proposals;
    case_failed_with_retries => sqlite_failed_with_retries, postgres_failed_with_retries;
    case_cancel => sqlite_cancel, postgres_cancel;
    case_retry_and_resume => sqlite_retry_and_resume, postgres_retry_and_resume;
    case_claim_once => sqlite_claim_once, postgres_claim_once;
    case_renew_leases => sqlite_renew_leases, postgres_renew_leases;
    case_expired_leases => sqlite_expired_leases, postgres_expired_leases;
    case_overdue_runs => sqlite_overdue_runs, postgres_overdue_runs;
    case_task_runs => sqlite_task_runs, postgres_task_runs;
    case_task_run_pagination => sqlite_task_run_pagination, postgres_task_run_pagination;
    case_task_runs_close_with_flow_run => sqlite_task_runs_close_with_flow_run, postgres_task_runs_close_with_flow_run;
    case_logs => sqlite_logs, postgres_logs;
    case_logs_sent_again => sqlite_logs_sent_again, postgres_logs_sent_again;
    case_agents => sqlite_agents, postgres_agents;
    case_claim_by_launcher => sqlite_claim_by_launcher, postgres_claim_by_launcher;
    case_work_queues => sqlite_work_queues, postgres_work_queues;
    case_materialise_idempotent => sqlite_materialise_idempotent, postgres_materialise_idempotent;
    case_schedule_change => sqlite_schedule_change, postgres_schedule_change;
    case_set_paused => sqlite_set_paused, postgres_set_paused;
    case_archive => sqlite_archive, postgres_archive;
    case_restore => sqlite_restore, postgres_restore;
    case_dst => sqlite_dst, postgres_dst;
    case_claim_race_shared => sqlite_claim_race_shared, postgres_claim_race_shared;
    case_import_flow_runs => sqlite_import_flow_runs, postgres_import_flow_runs;
}

/// The claim race over separate `Store` instances (separate pools and connections), so
/// claimers really compete in the database rather than queueing in one pool.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_claim_race_separate_stores() {
    if let Some(db) = TestDb::new(Backend::Sqlite, "sqlite_claim_race_separate_stores").await {
        claim_race_separate(&db).await;
    }
}

/// See [`sqlite_claim_race_separate_stores`].
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_claim_race_separate_stores() {
    if let Some(db) = TestDb::new(Backend::Postgres, "postgres_claim_race_separate_stores").await {
        claim_race_separate(&db).await;
    }
}

/// Work notifications cross stores (replicas): a listener on one store is woken by
/// `notify_work` on another over the same PostgreSQL database. SQLite has one server: no
/// listener, and notifying is a no-op.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_work_notifications_cross_replicas() {
    let Some(db) = TestDb::new(Backend::Postgres, "postgres_work_notifications").await else {
        return;
    };
    let (a, b) = (connect(&db).await, connect(&db).await);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let listener = b.listen_work(move || {
        let _ = tx.send(());
    });
    let listener = listener.expect("a listener on PostgreSQL");
    // The first wake-up says the listener is connected (and anything missed must be looked at).
    tokio::time::timeout(std::time::Duration::from_secs(10), rx.recv())
        .await
        .expect("listening")
        .expect("woken");
    for _ in 0..3 {
        a.notify_work().await.expect("notify");
        tokio::time::timeout(std::time::Duration::from_secs(10), rx.recv())
            .await
            .expect("the other store was woken")
            .expect("woken");
    }
    listener.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_work_notifications_are_local() {
    let db = TestDb::new(Backend::Sqlite, "sqlite_work_notifications")
        .await
        .expect("sqlite");
    let store = connect(&db).await;
    assert!(store.listen_work(|| {}).is_none());
    store.notify_work().await.expect("a no-op");
}

// ---------------------------------------------------------------------------------------
// Helpers

const LEASE: Duration = Duration::seconds(30);

fn spec(flow: &str) -> DeploymentSpec {
    DeploymentSpec {
        flow: flow.into(),
        work_queue: "default".into(),
        ..Default::default()
    }
}

async fn deploy(store: &Store, project: &str, name: &str, spec: DeploymentSpec) -> Deployment {
    let r = store
        .upsert_deployment(project, name, &spec, false, now())
        .await
        .expect("upsert");
    r.deployment.expect("deployment returned")
}

fn new_run(d: &Deployment, at: Timestamp) -> NewFlowRun {
    NewFlowRun {
        project: d.project.clone(),
        deployment: Some((d.id, d.name.clone())),
        flow: d.spec.flow.clone(),
        parameters: d.spec.parameters.clone(),
        work_queue: d.spec.work_queue.clone(),
        scheduled_at: at,
        tick_at: None,
        state: StateKind::Scheduled,
        retries: d.spec.retries,
        retry_delay_s: d.spec.retry_delay_s,
        idempotency_key: None,
        parent_flow_run_id: None,
        tags: vec![],
        auto_scheduled: false,
    }
}

async fn create(store: &Store, d: &Deployment, at: Timestamp, created: Timestamp) -> Run {
    store
        .create_flow_run(new_run(d, at), LEASE, created)
        .await
        .expect("create run")
        .run
}

fn propose(state: StateKind, attempt: u32) -> ProposeState {
    ProposeState {
        state,
        message: Some(format!("to {state}")),
        attempt,
        transition_id: None,
        result: None,
    }
}

/// Attempt `attempt` of run `id`, as a heartbeat names the runs it holds.
fn held(id: Uuid, attempt: u32) -> HeldRun {
    HeldRun { id, attempt }
}

fn queues(q: &[&str]) -> Vec<String> {
    q.iter().map(|s| s.to_string()).collect()
}

/// Claims exactly one run (the oldest due) for `agent` at `at`.
async fn claim_one(store: &Store, agent: Uuid, at: Timestamp) -> (Run, bool) {
    let mut c = store
        .claim(agent, &queues(&["default"]), 1, LEASE, at)
        .await
        .expect("claim");
    assert_eq!(c.len(), 1, "expected one claimable run at {at}");
    let run = c.remove(0);
    let resume = run.resume;
    (run, resume)
}

fn expect_rejected(r: Result<Run, Error>) -> (String, Run) {
    match r {
        Err(Error::Rejected { reason, current }) => (reason, *current),
        Err(e) => panic!("expected a rejection, got error {e}"),
        Ok(run) => panic!("expected a rejection, got {} run", run.state),
    }
}

async fn all_runs(store: &Store, filter: RunFilter) -> Vec<Run> {
    let mut out = Vec::new();
    let mut filter = RunFilter {
        limit: 1000,
        ..filter
    };
    loop {
        let page = store.list_flow_runs(&filter).await.expect("list");
        out.extend(page.items);
        match page.next_cursor {
            Some(c) => filter.before = Some(c.parse().expect("cursor is a uuid")),
            None => return out,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Cases

async fn case_projects(store: Store) {
    let t = now();
    assert!(store.ensure_project("main", t).await.expect("create"));
    assert!(store.ensure_project("dev", t).await.expect("create"));
    assert!(
        !store.ensure_project("dev", t).await.expect("again"),
        "second create is a no-op"
    );
    let names: Vec<String> = store
        .projects()
        .await
        .expect("list")
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(names, vec!["dev", "main"]);
    assert!(store.project_exists("dev").await.expect("exists"));
    assert!(!store.project_exists("prod").await.expect("exists"));
    let p = store.projects().await.expect("list").remove(0);
    assert_eq!(p.created_at, t);
}

async fn case_deployment_upsert(store: Store) {
    let t = now();
    let mut s1 = spec("etl");
    s1.schedules = vec![ScheduleSpec {
        cron: Some("0 * * * *".into()),
        ..Default::default()
    }];
    s1.parameters.insert("n".into(), 3.into());
    let r = store
        .upsert_deployment("dev", "nightly", &s1, false, t)
        .await
        .expect("create");
    assert_eq!(r.outcome, UpsertOutcome::Created);
    assert!(r.previous.is_none());
    let d1 = r.deployment.expect("deployment");
    assert_eq!(
        (d1.version, d1.project.as_str(), d1.name.as_str()),
        (1, "dev", "nightly")
    );
    assert_eq!(d1.spec, s1);
    assert!(
        store.project_exists("dev").await.expect("exists"),
        "upsert creates the project"
    );

    // Identical spec: not a new version, nothing written.
    let r = store
        .upsert_deployment("dev", "nightly", &s1, false, t + Duration::seconds(5))
        .await
        .expect("same");
    assert_eq!(r.outcome, UpsertOutcome::Unchanged);
    assert!(r.previous.is_none());
    let d = r.deployment.expect("deployment");
    assert_eq!(d.version, 1);
    assert_eq!(d.updated_at, t, "an unchanged upsert writes nothing");

    // Changed spec: version 2, previous spec returned.
    let mut s2 = s1.clone();
    s2.description = "now with a description".into();
    let r = store
        .upsert_deployment("dev", "nightly", &s2, false, t + Duration::seconds(10))
        .await
        .expect("update");
    assert_eq!(r.outcome, UpsertOutcome::Updated);
    assert_eq!(r.previous.as_ref(), Some(&s1));
    let d2 = r.deployment.expect("deployment");
    assert_eq!((d2.version, d2.id), (2, d1.id));
    assert_eq!(d2.spec, s2);
}

/// Dry-run upserts say what a real one would do (create, update, nothing) and write
/// nothing: no version, no deployment, no project.
async fn case_dry_run_upserts(store: Store) {
    let t = now();
    let s2 = spec("etl");
    let d1 = deploy(&store, "dev", "nightly", spec("first")).await;
    deploy(&store, "dev", "nightly", s2.clone()).await;
    let mut s3 = s2.clone();
    s3.retries = 4;
    let r = store
        .upsert_deployment("dev", "nightly", &s3, true, t + Duration::seconds(20))
        .await
        .expect("dry");
    assert_eq!(r.outcome, UpsertOutcome::Updated);
    assert_eq!(r.previous.as_ref(), Some(&s2));
    let stored = store.deployment("dev", "nightly").await.expect("get");
    assert_eq!(
        (stored.version, &stored.spec),
        (2, &s2),
        "dry run wrote nothing"
    );
    let r = store
        .upsert_deployment("dev", "other", &s3, true, t)
        .await
        .expect("dry create");
    assert_eq!(r.outcome, UpsertOutcome::Created);
    assert!(matches!(
        store.deployment("dev", "other").await,
        Err(Error::NotFound(_))
    ));
    let r = store
        .upsert_deployment("dev", "nightly", &s2, true, t)
        .await
        .expect("dry same");
    assert_eq!(r.outcome, UpsertOutcome::Unchanged);
    let r = store
        .upsert_deployment("fresh", "x", &s3, true, t)
        .await
        .expect("dry create");
    assert_eq!(r.outcome, UpsertOutcome::Created);
    assert!(
        !store.project_exists("fresh").await.expect("exists"),
        "dry run creates no project"
    );

    // Reads.
    assert_eq!(store.deployment_by_id(d1.id).await.expect("by id"), stored);
    deploy(&store, "main", "nightly", spec("etl")).await;
    let dev = store
        .deployments(Some(&["dev".to_string()]))
        .await
        .expect("list");
    assert_eq!(dev.len(), 1);
    assert_eq!(store.deployments(None).await.expect("all").len(), 2);
    assert!(store.deployments(Some(&[])).await.expect("none").is_empty());
    assert!(matches!(
        store.deployment_by_id(Uuid::now_v7()).await,
        Err(Error::NotFound(_))
    ));
}

async fn case_concurrent_upserts(store: Store) {
    // Two CI jobs deploying at once: every distinct spec becomes one version, none fails.
    let mut tasks = Vec::new();
    for i in 0..6 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut s = spec("etl");
            s.description = format!("build {i}");
            store
                .upsert_deployment("dev", "etl", &s, false, now())
                .await
        }));
    }
    let mut outcomes = Vec::new();
    for t in tasks {
        match t.await.expect("join") {
            Ok(r) => outcomes.push(r.outcome),
            Err(e) => panic!("a concurrent upsert failed: {e}"),
        }
    }
    outcomes.sort_by_key(|o| format!("{o:?}"));
    let mut want = vec![UpsertOutcome::Created];
    want.extend([UpsertOutcome::Updated; 5]);
    assert_eq!(outcomes, want);
    assert_eq!(
        store.deployment("dev", "etl").await.expect("get").version,
        6
    );
    // The same new spec from several writers at once: one version.
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut s = spec("etl");
            s.description = "final".into();
            store
                .upsert_deployment("dev", "etl", &s, false, now())
                .await
        }));
    }
    for t in tasks {
        t.await.expect("join").expect("upsert");
    }
    assert_eq!(
        store.deployment("dev", "etl").await.expect("get").version,
        7
    );
}

async fn case_create_idempotent(store: Store) {
    let d = deploy(&store, "dev", "etl", spec("etl")).await;
    let t = now();
    let mut n = new_run(&d, t);
    n.idempotency_key = Some("quick-run-42".into());
    let weir_store::Created {
        run: first,
        created,
    } = store
        .create_flow_run(n.clone(), LEASE, t)
        .await
        .expect("create");
    assert!(created);
    assert_eq!(
        (first.state, first.attempt, first.project.as_str()),
        (StateKind::Scheduled, 0, "dev")
    );
    assert_eq!(first.deployment_id, Some(d.id));
    assert_eq!(first.deployment.as_deref(), Some("etl"));
    let weir_store::Created {
        run: again,
        created,
    } = store
        .create_flow_run(n.clone(), LEASE, t)
        .await
        .expect("again");
    assert!(
        !created,
        "the same idempotency key must not create a second run"
    );
    assert_eq!(again, first);
    assert_eq!(
        store
            .flow_run_history(first.id)
            .await
            .expect("history")
            .len(),
        1
    );
    // Concurrent retries of the same request: one run.
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (store, mut n) = (store.clone(), n.clone());
        n.idempotency_key = Some("burst".into());
        tasks.push(tokio::spawn(async move {
            store.create_flow_run(n, LEASE, t).await.expect("create")
        }));
    }
    let mut burst = Vec::new();
    for task in tasks {
        burst.push(task.await.expect("join"));
    }
    assert_eq!(burst.iter().filter(|c| c.created).count(), 1);
    assert!(burst.iter().all(|c| c.run.id == burst[0].run.id));

    // Same key in another project is another run; no key never dedupes.
    let other = deploy(&store, "main", "etl", spec("etl")).await;
    let mut m = new_run(&other, t);
    m.idempotency_key = Some("quick-run-42".into());
    let weir_store::Created {
        run: run_main,
        created,
    } = store.create_flow_run(m, LEASE, t).await.expect("create");
    assert!(created);
    assert_ne!(run_main.id, first.id);
    let a = create(&store, &d, t, t).await;
    let b = create(&store, &d, t, t).await;
    assert_ne!(a.id, b.id);
    assert_eq!(all_runs(&store, RunFilter::default()).await.len(), 5);
}

/// An ad-hoc run (a subflow here) is created Running, attempt 1, with a lease; an unknown
/// run is not found.
async fn case_ad_hoc_run(store: Store) {
    let d = deploy(&store, "dev", "etl", spec("etl")).await;
    let t = now();
    let a = create(&store, &d, t, t).await;
    let adhoc = NewFlowRun {
        project: "dev".into(),
        deployment: None,
        flow: "script".into(),
        parameters: Default::default(),
        work_queue: "default".into(),
        scheduled_at: t,
        tick_at: None,
        state: StateKind::Running,
        retries: 0,
        retry_delay_s: 0,
        idempotency_key: None,
        parent_flow_run_id: Some(a.id),
        tags: vec!["x".into()],
        auto_scheduled: false,
    };
    let weir_store::Created { run: r, .. } = store
        .create_flow_run(adhoc, LEASE, t)
        .await
        .expect("ad hoc");
    assert_eq!((r.state, r.attempt), (StateKind::Running, 1));
    assert_eq!(r.started_at, Some(t));
    assert_eq!(r.lease_expires_at, Some(t + LEASE));
    assert_eq!(r.parent_flow_run_id, Some(a.id));
    assert_eq!(r.tags, vec!["x".to_string()]);
    assert_eq!(store.flow_run(r.id).await.expect("get"), r);
    assert!(matches!(
        store.flow_run(Uuid::now_v7()).await,
        Err(Error::NotFound(_))
    ));
}

async fn case_list_filters(store: Store) {
    let base = now() - Duration::hours(10);
    let (etl, report, runs) = ten_runs_an_hour_apart(&store, base).await;

    let ids = |v: Vec<Run>| v.into_iter().map(|r| r.id).collect::<Vec<_>>();
    let rev = |idx: &[usize]| idx.iter().rev().map(|&i| runs[i].id).collect::<Vec<_>>();
    let all = ids(all_runs(&store, RunFilter::default()).await);
    assert_eq!(all, rev(&[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]), "newest first");

    let dev = RunFilter {
        projects: Some(vec!["dev".into()]),
        ..Default::default()
    };
    assert_eq!(
        ids(all_runs(&store, dev.clone()).await),
        rev(&[0, 1, 2, 3, 4, 5, 6, 7])
    );
    let both = RunFilter {
        projects: Some(vec!["dev".into(), "main".into()]),
        ..Default::default()
    };
    assert_eq!(all_runs(&store, both).await.len(), 10);
    let none = RunFilter {
        projects: Some(vec![]),
        ..Default::default()
    };
    assert!(all_runs(&store, none).await.is_empty());
    let by_dep = RunFilter {
        deployment_id: Some(report.id),
        ..Default::default()
    };
    assert_eq!(ids(all_runs(&store, by_dep).await), rev(&[5, 6, 7]));
    let by_flow = RunFilter {
        flow: Some("etl".into()),
        ..Default::default()
    };
    assert_eq!(
        ids(all_runs(&store, by_flow).await),
        rev(&[0, 1, 2, 3, 4, 8, 9])
    );
    let cancelled = RunFilter {
        states: vec![StateKind::Cancelled],
        ..Default::default()
    };
    assert_eq!(ids(all_runs(&store, cancelled).await), rev(&[1, 6]));
    let two_states = RunFilter {
        states: vec![StateKind::Cancelled, StateKind::Scheduled],
        ..dev.clone()
    };
    assert_eq!(all_runs(&store, two_states).await.len(), 8);
    // since is inclusive, until exclusive.
    let window = RunFilter {
        since: Some(base + Duration::hours(2)),
        until: Some(base + Duration::hours(6)),
        ..Default::default()
    };
    assert_eq!(ids(all_runs(&store, window).await), rev(&[2, 3, 4, 5]));
    let combined = RunFilter {
        since: Some(base + Duration::hours(1)),
        states: vec![StateKind::Scheduled],
        deployment_id: Some(etl.id),
        ..dev
    };
    assert_eq!(ids(all_runs(&store, combined).await), rev(&[2, 3, 4]));

    counts_by_state(&store, base).await;
}

/// Ten runs created an hour apart from `base`: dev/etl's at hours 0..4, dev/report's at
/// 5..7, main/etl's at 8..9; the second and the seventh cancelled. Returns dev's two
/// deployments and the runs, oldest first.
async fn ten_runs_an_hour_apart(
    store: &Store,
    base: Timestamp,
) -> (Deployment, Deployment, Vec<Run>) {
    let etl = deploy(store, "dev", "etl", spec("etl")).await;
    let report = deploy(store, "dev", "report", spec("report")).await;
    let prod = deploy(store, "main", "etl", spec("etl")).await;
    let mut runs = Vec::new();
    for h in 0..10 {
        let d = match h {
            0..=4 => &etl,
            5..=7 => &report,
            _ => &prod,
        };
        runs.push(create(store, d, base, base + Duration::hours(h)).await);
    }
    store
        .cancel_flow_run(runs[1].id, now())
        .await
        .expect("cancel");
    store
        .cancel_flow_run(runs[6].id, now())
        .await
        .expect("cancel");
    (etl, report, runs)
}

/// [`ten_runs_an_hour_apart`]'s runs counted by state: all of them, and main's since hour 9.
async fn counts_by_state(store: &Store, base: Timestamp) {
    let counts = store
        .count_flow_runs_by_state(None, None)
        .await
        .expect("counts");
    assert_eq!(counts.get(&StateKind::Cancelled), Some(&2));
    assert_eq!(counts.get(&StateKind::Scheduled), Some(&8));
    let counts = store
        .count_flow_runs_by_state(Some(&["main".to_string()]), Some(base + Duration::hours(9)))
        .await
        .expect("counts");
    assert_eq!(counts, BTreeMap::from([(StateKind::Scheduled, 1)]));
}

async fn case_list_pagination(store: Store) {
    let d = deploy(&store, "dev", "etl", spec("etl")).await;
    let other = deploy(&store, "main", "etl", spec("etl")).await;
    let t = now();
    let mut created = Vec::new();
    for i in 0..120 {
        created.push(create(&store, &d, t, t).await.id);
        if i % 10 == 0 {
            create(&store, &other, t, t).await;
        }
    }
    created.reverse(); // newest first
    let mut filter = RunFilter {
        projects: Some(vec!["dev".into()]),
        limit: 50,
        ..Default::default()
    };
    let mut seen = Vec::new();
    let mut sizes = Vec::new();
    loop {
        let page = store.list_flow_runs(&filter).await.expect("page");
        sizes.push(page.items.len());
        seen.extend(page.items.iter().map(|r| r.id));
        match page.next_cursor {
            Some(c) => {
                assert_eq!(
                    Some(c.as_str()),
                    page.items.last().map(|r| r.id.to_string()).as_deref()
                );
                filter.before = Some(c.parse().expect("uuid cursor"));
            }
            None => break,
        }
    }
    assert_eq!(sizes, vec![50, 50, 20]);
    let unique: HashSet<_> = seen.iter().collect();
    assert_eq!(unique.len(), 120, "no duplicates");
    assert_eq!(seen, created, "no gaps, newest first");
    // A page that ends exactly at the last run has no cursor.
    let exact = store
        .list_flow_runs(&RunFilter {
            projects: Some(vec!["main".into()]),
            limit: 12,
            ..Default::default()
        })
        .await
        .expect("page");
    assert_eq!((exact.items.len(), exact.next_cursor), (12, None));
}

async fn case_propose_state(store: Store) {
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

async fn case_transition_id_idempotent(store: Store) {
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
async fn case_concurrent_proposals(store: Store) {
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

async fn case_failed_with_retries(store: Store) {
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

async fn case_cancel(store: Store) {
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

async fn case_retry_and_resume(store: Store) {
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

async fn case_claim_once(store: Store) {
    let d = deploy(&store, "dev", "etl", spec("etl")).await;
    let mut gpu = spec("train");
    gpu.work_queue = "gpu".into();
    let g = deploy(&store, "dev", "train", gpu).await;
    let t = now();
    let due: Vec<Run> = vec![
        create(&store, &d, t - Duration::seconds(3), t).await,
        create(&store, &d, t - Duration::seconds(2), t).await,
        create(&store, &d, t, t).await,
    ];
    let future = create(&store, &d, t + Duration::minutes(5), t).await;
    let other_queue = create(&store, &g, t, t).await;
    let agent = Uuid::now_v7();
    let claimed = store
        .claim(agent, &queues(&["default"]), 10, LEASE, t)
        .await
        .expect("claim");
    let ids: Vec<Uuid> = claimed.iter().map(|r| r.id).collect();
    assert_eq!(
        ids,
        due.iter().map(|r| r.id).collect::<Vec<_>>(),
        "oldest due first"
    );
    for r in &claimed {
        assert_eq!(
            (r.state, r.attempt, r.agent_id),
            (StateKind::Pending, 1, Some(agent))
        );
        assert_eq!(r.lease_expires_at, Some(t + LEASE));
        assert!(!r.resume);
        assert_eq!(&store.flow_run(r.id).await.expect("get"), r);
        let h = store.flow_run_history(r.id).await.expect("history");
        assert_eq!(
            h.last().map(|h| (h.state, h.attempt)),
            Some((StateKind::Pending, 1))
        );
    }
    assert!(
        store
            .claim(agent, &queues(&["default"]), 10, LEASE, t)
            .await
            .expect("again")
            .is_empty()
    );
    assert!(
        store
            .claim(agent, &queues(&["default"]), 0, LEASE, t)
            .await
            .expect("zero")
            .is_empty()
    );
    assert!(
        store
            .claim(agent, &[], 10, LEASE, t)
            .await
            .expect("no queues")
            .is_empty()
    );
    // Limit is honoured; other queues and future runs are left alone.
    let later = t + Duration::minutes(10);
    let both = store
        .claim(agent, &queues(&["default", "gpu"]), 1, LEASE, later)
        .await
        .expect("claim");
    assert_eq!(both.len(), 1);
    let rest = store
        .claim(agent, &queues(&["default", "gpu"]), 5, LEASE, later)
        .await
        .expect("claim");
    let mut got: Vec<Uuid> = both.iter().chain(&rest).map(|r| r.id).collect();
    got.sort();
    let mut want = vec![future.id, other_queue.id];
    want.sort();
    assert_eq!(got, want);
}

async fn case_renew_leases(store: Store) {
    let d = deploy(&store, "dev", "etl", spec("etl")).await;
    let t = now();
    let r1 = create(&store, &d, t, t).await;
    let r2 = create(&store, &d, t, t).await;
    let done = create(&store, &d, t, t).await;
    let a = Uuid::now_v7();
    let b = Uuid::now_v7();
    let claimed = store
        .claim(a, &queues(&["default"]), 3, LEASE, t)
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 3);
    store
        .propose_state(done.id, &propose(StateKind::Completed, 1), LEASE, t)
        .await
        .expect("done");
    store.cancel_flow_run(r2.id, t).await.expect("cancel");
    let t1 = t + Duration::seconds(20);
    let unknown = Uuid::now_v7();
    let all = [r1.id, r2.id, done.id, unknown].map(|id| held(id, 1));
    let (cancel, lost) = store
        .renew_leases(Some(a), &all, LEASE, t1)
        .await
        .expect("renew");
    assert_eq!(cancel, vec![r2.id]);
    assert_eq!(lost, vec![done.id, unknown]);
    assert_eq!(
        store.flow_run(r1.id).await.expect("get").lease_expires_at,
        Some(t1 + LEASE)
    );
    assert_eq!(
        store.flow_run(r2.id).await.expect("get").lease_expires_at,
        Some(t1 + LEASE)
    );
    // A stale attempt does not hold the run: the attempt is the fencing token.
    let (_, lost) = store
        .renew_leases(Some(a), &[held(r1.id, 0)], LEASE, t1)
        .await
        .expect("renew");
    assert_eq!(lost, vec![r1.id]);
    // An agent that restarted under a new id takes over the runs it still supervises by
    // heartbeating them with their current attempt.
    let (_, lost) = store
        .renew_leases(Some(b), &[held(r1.id, 1)], LEASE, t1)
        .await
        .expect("renew");
    assert!(lost.is_empty());
    assert_eq!(store.flow_run(r1.id).await.expect("get").agent_id, Some(b));
    // The run's own process (no agent) may renew.
    let t2 = t1 + Duration::seconds(1);
    let (cancel, lost) = store
        .renew_leases(None, &[held(r1.id, 1)], LEASE, t2)
        .await
        .expect("renew");
    assert!(cancel.is_empty() && lost.is_empty());
    let r = store.flow_run(r1.id).await.expect("get");
    assert_eq!(
        (r.lease_expires_at, r.agent_id),
        (Some(t2 + LEASE), Some(b)),
        "the agent is kept"
    );
    assert_eq!(
        store
            .renew_leases(Some(a), &[], LEASE, t2)
            .await
            .expect("empty"),
        (vec![], vec![])
    );
}

async fn case_expired_leases(store: Store) {
    let d = deploy(&store, "dev", "etl", spec("etl")).await;
    let t = now();
    let pending = create(&store, &d, t, t).await;
    let running = create(&store, &d, t, t).await;
    let waiting = create(&store, &d, t + Duration::hours(1), t).await;
    let a = Uuid::now_v7();
    assert_eq!(
        store
            .claim(a, &queues(&["default"]), 2, LEASE, t)
            .await
            .expect("claim")
            .len(),
        2
    );
    store
        .propose_state(running.id, &propose(StateKind::Running, 1), LEASE, t)
        .await
        .expect("run");
    assert!(
        store
            .expired_leases(t + LEASE - Duration::seconds(1), 100)
            .await
            .expect("expired")
            .is_empty()
    );
    // The Pending run never heartbeated: its claim lease expires like any other.
    let expired: Vec<Uuid> = store
        .expired_leases(t + LEASE + Duration::seconds(1), 100)
        .await
        .expect("expired")
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(expired.len(), 2);
    assert!(expired.contains(&pending.id) && expired.contains(&running.id));
    assert!(!expired.contains(&waiting.id));
    // A heartbeat pushes the expiry out.
    let t1 = t + Duration::seconds(20);
    store
        .renew_leases(Some(a), &[held(running.id, 1)], LEASE, t1)
        .await
        .expect("renew");
    let expired = store
        .expired_leases(t + LEASE + Duration::seconds(1), 100)
        .await
        .expect("expired");
    assert_eq!(
        expired.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![pending.id]
    );
    assert_eq!(
        store
            .expired_leases(t1 + LEASE + Duration::seconds(1), 1)
            .await
            .expect("limit")
            .len(),
        1
    );
    // Terminal runs hold no lease.
    store
        .propose_state(running.id, &propose(StateKind::Completed, 1), LEASE, t1)
        .await
        .expect("done");
    let expired = store
        .expired_leases(t1 + LEASE * 10, 100)
        .await
        .expect("expired");
    assert_eq!(
        expired.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![pending.id]
    );
}

async fn case_overdue_runs(store: Store) {
    let d = deploy(&store, "dev", "etl", spec("etl")).await;
    let t = now();
    let old = create(&store, &d, t - Duration::minutes(5), t).await;
    let fresh = create(&store, &d, t, t).await;
    let overdue = store
        .overdue_runs(t - Duration::minutes(1), 10)
        .await
        .expect("overdue");
    assert_eq!(
        overdue.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![old.id]
    );
    let late = store
        .propose_state(old.id, &propose(StateKind::Late, 0), LEASE, t)
        .await
        .expect("late");
    assert_eq!(late.state, StateKind::Late);
    assert!(
        store
            .overdue_runs(t - Duration::minutes(1), 10)
            .await
            .expect("overdue")
            .is_empty()
    );
    // Late runs are still claimable, oldest first.
    let (c, _) = claim_one(&store, Uuid::now_v7(), t).await;
    assert_eq!((c.id, c.attempt), (old.id, 1));
    assert_eq!(
        store
            .overdue_runs(t + Duration::seconds(1), 10)
            .await
            .expect("overdue")[0]
            .id,
        fresh.id
    );
}

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

async fn case_task_runs(store: Store) {
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
async fn case_task_runs_close_with_flow_run(store: Store) {
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

async fn case_task_run_pagination(store: Store) {
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

async fn case_logs(store: Store) {
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

async fn case_agents(store: Store) {
    let t = now();
    let req = RegisterAgent {
        name: "worker-1".into(),
        queues: queues(&["default", "gpu"]),
        limit: 4,
        launchers: vec![weir_core::infrastructure::InfrastructureKind::Process],
    };
    let a = store.register_agent(&req, None, t).await.expect("register");
    assert_eq!((a.name.as_str(), a.limit, a.running), ("worker-1", 4, 0));
    assert_eq!(a.queues, req.queues);
    assert_eq!((a.created_at, a.last_heartbeat_at), (t, t));
    assert_eq!(store.agent(a.id).await.expect("get"), a);
    let b = store
        .register_agent(
            &RegisterAgent {
                name: "worker-2".into(),
                queues: queues(&["default"]),
                limit: 1,
                launchers: vec![weir_core::infrastructure::InfrastructureKind::Process],
            },
            None,
            t,
        )
        .await
        .expect("register");
    let t1 = t + Duration::minutes(5);
    store.touch_agent(a.id, t1).await.expect("touch");
    assert_eq!(store.agent(a.id).await.expect("get").last_heartbeat_at, t1);
    let listed: Vec<Uuid> = store
        .agents(t)
        .await
        .expect("list")
        .into_iter()
        .map(|a| a.id)
        .collect();
    assert_eq!(listed, vec![a.id, b.id], "most recent heartbeat first");
    let recent: Vec<Uuid> = store
        .agents(t + Duration::minutes(1))
        .await
        .expect("list")
        .into_iter()
        .map(|a| a.id)
        .collect();
    assert_eq!(recent, vec![a.id]);
    assert!(matches!(
        store.touch_agent(Uuid::now_v7(), t).await,
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        store.agent(Uuid::now_v7()).await,
        Err(Error::NotFound(_))
    ));
    // Running counts the runs it holds.
    let d = deploy(&store, "dev", "etl", spec("etl")).await;
    let r = create(&store, &d, t, t).await;
    create(&store, &d, t, t).await;
    assert_eq!(
        store
            .claim(a.id, &a.queues, 5, LEASE, t)
            .await
            .expect("claim")
            .len(),
        2
    );
    assert_eq!(store.agent(a.id).await.expect("get").running, 2);
    store
        .propose_state(r.id, &propose(StateKind::Completed, 1), LEASE, t)
        .await
        .expect("done");
    assert_eq!(store.agent(a.id).await.expect("get").running, 1);
}

/// A run goes only to an agent that can launch its deployment's infrastructure kind; the
/// kind follows the deployment's current spec; ad-hoc runs are processes.
async fn case_claim_by_launcher(store: Store) {
    use weir_core::infrastructure::{DockerInfrastructure, Infrastructure, InfrastructureKind};
    let t = now();
    let register = |name: &str, launchers: Vec<InfrastructureKind>| RegisterAgent {
        name: name.into(),
        queues: queues(&["default"]),
        limit: 10,
        launchers,
    };
    let process = store
        .register_agent(&register("p", vec![InfrastructureKind::Process]), None, t)
        .await
        .expect("register");
    assert_eq!(process.launchers, [InfrastructureKind::Process]);
    let both = vec![InfrastructureKind::Process, InfrastructureKind::Docker];
    let docker = store
        .register_agent(&register("d", both.clone()), None, t)
        .await
        .expect("register");
    assert_eq!(store.agent(docker.id).await.expect("get").launchers, both);
    let mut docker_spec = spec("etl");
    docker_spec.infrastructure = Infrastructure::Docker(DockerInfrastructure::new("flows:dev"));
    let d = deploy(&store, "dev", "etl-docker", docker_spec).await;
    let r = create(&store, &d, t, t).await;
    let q = queues(&["default"]);
    let none = store
        .claim(process.id, &q, 5, LEASE, t)
        .await
        .expect("claim");
    assert!(
        none.is_empty(),
        "a process-only agent must not get a docker run"
    );
    let got = store
        .claim(docker.id, &q, 5, LEASE, t)
        .await
        .expect("claim");
    assert_eq!(got.iter().map(|r| r.id).collect::<Vec<_>>(), [r.id]);
    // The deployment moves back to processes: its next run is any agent's.
    let d = deploy(&store, "dev", "etl-docker", spec("etl")).await;
    let r2 = create(&store, &d, t, t).await;
    let got = store
        .claim(process.id, &q, 5, LEASE, t)
        .await
        .expect("claim");
    assert_eq!(got.iter().map(|r| r.id).collect::<Vec<_>>(), [r2.id]);
}

async fn case_work_queues(store: Store) {
    let t = now();
    let mut etl_spec = spec("etl");
    etl_spec.work_queue = "etl".into();
    let etl = deploy(&store, "dev", "etl", etl_spec).await;
    deploy(&store, "dev", "idle", spec("idle")).await;
    let agent = store
        .register_agent(
            &RegisterAgent {
                name: "w".into(),
                queues: queues(&["gpu"]),
                limit: 1,
                launchers: vec![weir_core::infrastructure::InfrastructureKind::Process],
            },
            None,
            t,
        )
        .await
        .expect("register");
    let old_agent = store
        .register_agent(
            &RegisterAgent {
                name: "gone".into(),
                queues: queues(&["ancient"]),
                limit: 1,
                launchers: vec![weir_core::infrastructure::InfrastructureKind::Process],
            },
            None,
            t - Duration::days(3),
        )
        .await
        .expect("register");
    for _ in 0..3 {
        create(&store, &etl, t - Duration::seconds(1), t).await;
    }
    create(&store, &etl, t + Duration::hours(1), t).await;
    let done = create(&store, &etl, t - Duration::seconds(1), t).await;
    store.cancel_flow_run(done.id, t).await.expect("cancel");
    let claimed = store
        .claim(agent.id, &queues(&["etl"]), 1, LEASE, t)
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 1);
    let qs = store
        .work_queues(t, t - Duration::days(1))
        .await
        .expect("queues");
    let got: Vec<(String, u64, u64)> = qs
        .into_iter()
        .map(|q| (q.name, q.ready, q.running))
        .collect();
    assert_eq!(
        got,
        vec![
            ("default".into(), 0, 0),
            ("etl".into(), 2, 1),
            ("gpu".into(), 0, 0)
        ],
        "{} is not listed: its agent is long gone",
        old_agent.name
    );
}

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

async fn case_materialise_idempotent(store: Store) {
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

async fn case_schedule_change(store: Store) {
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

async fn case_set_paused(store: Store) {
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
async fn case_archive(store: Store) {
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
async fn case_restore(store: Store) {
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

async fn case_dst(store: Store) {
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

/// How many runs the claim races use.
const RACE_RUNS: usize = 500;
/// How many claimers race.
const CLAIMERS: usize = 8;

async fn seed_race(store: &Store) -> HashSet<Uuid> {
    let d = deploy(store, "dev", "race", spec("race")).await;
    let t = now() - Duration::seconds(1);
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let (store, d) = (store.clone(), d.clone());
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for _ in 0..RACE_RUNS / 4 {
                ids.push(create(&store, &d, t, t).await.id);
            }
            ids
        }));
    }
    let mut all = HashSet::new();
    for t in tasks {
        all.extend(t.await.expect("join"));
    }
    assert_eq!(all.len(), RACE_RUNS);
    all
}

/// Each claimer loops claiming 1..=5 runs at a time until nothing is left.
async fn race(stores: Vec<Store>) -> Vec<(Uuid, Run)> {
    let mut tasks = Vec::new();
    for (i, store) in stores.into_iter().enumerate() {
        tasks.push(tokio::spawn(async move {
            let agent = Uuid::now_v7();
            let mut got = Vec::new();
            let mut round = 0usize;
            loop {
                let limit = 1 + ((i + round) % 5) as u32;
                round += 1;
                let claimed = store
                    .claim(agent, &queues(&["default"]), limit, LEASE, now())
                    .await
                    .unwrap_or_else(|e| panic!("claimer {i}: {e}"));
                assert!(claimed.len() <= limit as usize);
                if claimed.is_empty() {
                    return got;
                }
                got.extend(claimed.into_iter().map(|r| (agent, r)));
            }
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("claimer panicked"));
    }
    all
}

async fn check_race(store: &Store, seeded: &HashSet<Uuid>, claimed: Vec<(Uuid, Run)>) {
    let mut seen = HashSet::new();
    for (agent, run) in &claimed {
        assert!(seen.insert(run.id), "run {} claimed twice", run.id);
        assert_eq!(
            (run.attempt, run.state, run.agent_id),
            (1, StateKind::Pending, Some(*agent))
        );
    }
    assert_eq!(claimed.len(), RACE_RUNS, "every run claimed exactly once");
    assert_eq!(&seen, seeded);
    let stored = all_runs(store, RunFilter::default()).await;
    for r in &stored {
        assert_eq!(
            (r.state, r.attempt),
            (StateKind::Pending, 1),
            "run {}",
            r.id
        );
        let pendings = store
            .flow_run_history(r.id)
            .await
            .expect("history")
            .into_iter()
            .filter(|h| h.state == StateKind::Pending)
            .count();
        assert_eq!(pendings, 1, "one claim in the history of {}", r.id);
    }
    let agents: HashSet<Uuid> = claimed.iter().map(|(a, _)| *a).collect();
    assert!(agents.len() > 1, "the race had more than one winner");
}

async fn case_claim_race_shared(store: Store) {
    let seeded = seed_race(&store).await;
    let claimed = race(vec![store.clone(); CLAIMERS]).await;
    check_race(&store, &seeded, claimed).await;
}

async fn claim_race_separate(db: &TestDb) {
    let store = connect(db).await;
    let seeded = seed_race(&store).await;
    let mut stores = Vec::new();
    for _ in 0..CLAIMERS {
        stores.push(connect(db).await);
    }
    let claimed = race(stores.clone()).await;
    check_race(&store, &seeded, claimed).await;
    for s in stores {
        s.close().await;
    }
}

/// Bulk import stores runs exactly as given (more than one statement's worth), each with one
/// history row, and they read back, list and count like created ones; a batch with an id
/// already stored imports nothing.
async fn case_import_flow_runs(store: Store) {
    let d = deploy(&store, "imp", "etl", spec("etl")).await;
    let base = now() - Duration::days(3);
    let n = weir_store::IMPORT_CHUNK + 7;
    let runs: Vec<Run> = (0..n).map(|i| imported_run(&d, i, base)).collect();
    assert_eq!(
        store.import_flow_runs(&runs).await.expect("import"),
        n as u64
    );
    for r in [&runs[0], &runs[n / 2], &runs[n - 1]] {
        assert_eq!(&store.flow_run(r.id).await.expect("read back"), r);
        let history = store.flow_run_history(r.id).await.expect("history");
        assert_eq!(history.len(), 1, "one history row");
        assert_eq!((history[0].state, history[0].at), (r.state, r.state_at));
    }
    let listed = all_runs(
        &store,
        RunFilter {
            deployment_id: Some(d.id),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(listed.len(), n);
    let counts = store
        .count_flow_runs_by_state(Some(&["imp".to_string()]), None)
        .await
        .expect("count");
    let failed = (0..n).filter(|i| i % 10 == 0).count() as u64;
    assert_eq!(counts.get(&StateKind::Failed), Some(&failed));
    assert_eq!(
        counts.get(&StateKind::Completed),
        Some(&(n as u64 - failed))
    );

    // A batch with an id already stored fails whole.
    let mut again = runs[..2].to_vec();
    again[0].id = Uuid::now_v7();
    assert!(
        store.import_flow_runs(&again).await.is_err(),
        "a duplicate id is refused"
    );
    assert!(
        matches!(store.flow_run(again[0].id).await, Err(Error::NotFound(_))),
        "nothing of the failed batch was imported"
    );
    assert_eq!(store.import_flow_runs(&[]).await.expect("empty"), 0);
}

/// Run `i` of an import into deployment `d`: created `i` minutes after `base`, ended 5 s
/// later, every tenth Failed and the others Completed with a result.
fn imported_run(d: &Deployment, i: usize, base: Timestamp) -> Run {
    let at = base + Duration::seconds(i as i64 * 60);
    let state = if i.is_multiple_of(10) {
        StateKind::Failed
    } else {
        StateKind::Completed
    };
    Run {
        id: Uuid::now_v7(),
        project: "imp".into(),
        deployment_id: Some(d.id),
        deployment: Some("etl".into()),
        flow: "etl".into(),
        name: format!("etl-{i}"),
        state,
        state_message: (state == StateKind::Failed).then(|| "boom".to_string()),
        state_at: at + Duration::seconds(5),
        attempt: 1,
        retries_used: 0,
        retries: 2,
        retry_delay: chrono::Duration::zero(),
        resume: false,
        parameters: [("rows".to_string(), serde_json::json!(i))]
            .into_iter()
            .collect(),
        work_queue: "default".into(),
        scheduled_at: at,
        tick_at: None,
        created_at: at,
        started_at: Some(at + Duration::seconds(1)),
        ended_at: Some(at + Duration::seconds(5)),
        agent_id: None,
        lease_expires_at: None,
        parent_flow_run_id: None,
        result: (state == StateKind::Completed).then(|| weir_core::api::ResultRef {
            location: format!("file:///tmp/r/{i}/result.json"),
            size: 8,
        }),
        tags: vec!["imported".into()],
    }
}

weir_testkit::both_backends!(legacy_inline_result => sqlite_legacy_inline_result_reads_as_none, postgres_legacy_inline_result_reads_as_none);

/// Rows from before results were stored by reference hold the value itself: such a run stays
/// readable (no result) instead of becoming a corrupt row; a stored reference reads back.
async fn legacy_inline_result(db: &TestDb) {
    let store = connect(db).await;
    let d = deploy(&store, "dev", "etl", spec("etl")).await;
    let run = create(&store, &d, now(), now()).await;
    sqlx::any::install_default_drivers();
    let raw = sqlx::AnyPool::connect(&db.url)
        .await
        .expect("raw connection");
    let write = |result: &'static str| {
        sqlx::query("UPDATE flow_runs SET result = $1 WHERE id = $2")
            .bind(result)
            .bind(run.id.to_string())
            .execute(&raw)
    };
    write(r#"{"rows": 10}"#)
        .await
        .expect("an old inline result");
    let read = store
        .flow_run(run.id)
        .await
        .expect("old rows stay readable");
    assert_eq!(read.result, None);
    write(r#"{"location": "file:///r/result.json", "size": 3}"#)
        .await
        .expect("a reference");
    let read = store.flow_run(run.id).await.expect("read");
    assert_eq!(
        read.result.map(|r| (r.location, r.size)),
        Some(("file:///r/result.json".into(), 3))
    );
    raw.close().await;
}

/// #10: a log batch sent again because its answer was lost (the server died after committing
/// it) is stored once; lines are told apart by (run, attempt, stream, seq) only, and lines
/// without them (older senders) are never merged.
async fn case_logs_sent_again(store: Store) {
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
