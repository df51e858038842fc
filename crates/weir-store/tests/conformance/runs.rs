//! Creating runs (idempotent, ad hoc) and listing them: filters, counts and pages.

use crate::common::now;
use crate::helpers::*;

use chrono::Duration;
use std::collections::{BTreeMap, HashSet};
use uuid::Uuid;
use weir_core::deployment::Deployment;
use weir_core::run::Run;
use weir_core::{StateKind, Timestamp};
use weir_store::{Error, NewFlowRun, RunFilter, Store};

pub(crate) async fn case_create_idempotent(store: Store) {
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
pub(crate) async fn case_ad_hoc_run(store: Store) {
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

pub(crate) async fn case_list_filters(store: Store) {
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

pub(crate) async fn case_list_pagination(store: Store) {
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
