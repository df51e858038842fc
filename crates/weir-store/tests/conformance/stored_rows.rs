//! Rows written past the usual path: bulk imports, and results stored inline by an older Weir.

use crate::common::{connect, now};
use crate::helpers::*;

use chrono::Duration;
use uuid::Uuid;
use weir_core::deployment::Deployment;
use weir_core::run::{Run, sample};
use weir_core::{StateKind, Timestamp};
use weir_store::{Error, RunFilter, Store};
use weir_testkit::TestDb;

/// Bulk import stores runs exactly as given (more than one statement's worth), each with one
/// history row, and they read back, list and count like created ones; a batch with an id
/// already stored imports nothing.
pub(crate) async fn case_import_flow_runs(store: Store) {
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
        project: "imp".into(),
        deployment_id: Some(d.id),
        name: format!("etl-{i}"),
        state_message: (state == StateKind::Failed).then(|| "boom".to_string()),
        state_at: at + Duration::seconds(5),
        attempt: 1,
        retries: 2,
        parameters: [("rows".to_string(), serde_json::json!(i))]
            .into_iter()
            .collect(),
        scheduled_at: at,
        created_at: at,
        started_at: Some(at + Duration::seconds(1)),
        ended_at: Some(at + Duration::seconds(5)),
        result: (state == StateKind::Completed).then(|| weir_core::api::ResultRef {
            location: format!("file:///tmp/r/{i}/result.json"),
            size: 8,
        }),
        tags: vec!["imported".into()],
        ..sample(state)
    }
}

/// Rows from before results were stored by reference hold the value itself: such a run stays
/// readable (no result) instead of becoming a corrupt row; a stored reference reads back.
pub(crate) async fn legacy_inline_result(db: &TestDb) {
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
