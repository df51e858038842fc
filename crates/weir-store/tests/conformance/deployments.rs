//! Projects and deployments: creating, upserting (dry runs among them), and concurrent
//! upserts.

use crate::common::now;
use crate::helpers::*;

use chrono::Duration;
use uuid::Uuid;
use weir_core::api::{ScheduleSpec, UpsertOutcome};
use weir_store::{Error, Store};

pub(crate) async fn case_projects(store: Store) {
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

pub(crate) async fn case_deployment_upsert(store: Store) {
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
pub(crate) async fn case_dry_run_upserts(store: Store) {
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

pub(crate) async fn case_concurrent_upserts(store: Store) {
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
