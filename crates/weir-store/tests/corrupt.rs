//! Stored values the store cannot have written are corrupt rows: reading one is an error that
//! names the column and the value, never a silent fallback (a log line at Info, a time at the
//! epoch, an attempt saturated to `u32::MAX`). The values are written past the store with a
//! connection of its own, as a hand edit or a bug would, on both backends.

use chrono::{TimeZone, Utc};
use weir_core::api::{DeploymentSpec, LogLevel, NewLogLine};
use weir_core::{StateKind, Timestamp};
use weir_store::{Error, NewFlowRun, Store};
use weir_testkit::TestDb;

weir_testkit::both_backends!(corrupt_values => sqlite_corrupt_values_are_errors_naming_column_and_value, postgres_corrupt_values_are_errors_naming_column_and_value);

/// Now at the stores' precision (microseconds).
fn now() -> Timestamp {
    Utc.timestamp_micros(Utc::now().timestamp_micros())
        .single()
        .expect("now is a time")
}

/// The column and reason of a [`Error::Corrupt`], or a panic naming what came instead.
fn corrupt<T: std::fmt::Debug>(read: weir_store::Result<T>, what: &str) -> (&'static str, String) {
    match read {
        Err(Error::Corrupt { column, reason }) => (column, reason),
        other => panic!("{what}: expected a corrupt-row error, got {other:?}"),
    }
}

async fn run_in(store: &Store) -> uuid::Uuid {
    let spec = DeploymentSpec {
        flow: "etl".into(),
        work_queue: "default".into(),
        ..Default::default()
    };
    let d = store
        .upsert_deployment("dev", "etl", &spec, false, now())
        .await
        .expect("upsert")
        .deployment
        .expect("deployment returned");
    let new = NewFlowRun {
        project: d.project.clone(),
        deployment: Some((d.id, d.name.clone())),
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
    store
        .create_flow_run(new, chrono::Duration::seconds(30), now())
        .await
        .expect("create run")
        .run
        .id
}

async fn corrupt_values(db: &TestDb) {
    let store = Store::connect(&db.url).await.expect("open the store");
    let id = run_in(&store).await;
    let deployment = store
        .flow_run(id)
        .await
        .expect("the run reads")
        .deployment_id
        .expect("a deployment's run");
    ingest_a_warning(&store, id).await;

    sqlx::any::install_default_drivers();
    let raw = sqlx::AnyPool::connect(&db.url)
        .await
        .expect("raw connection");
    let set = |sql: &'static str| sqlx::query(sql).bind(id.to_string()).execute(&raw);

    set("UPDATE logs SET level = 'loud' WHERE flow_run_id = $1")
        .await
        .expect("an unknown level");
    let (column, reason) = corrupt(store.logs(id, None, 0, 10).await, "unknown level");
    assert_eq!(column, "logs.level");
    assert!(reason.contains("\"loud\""), "{reason}");

    set("UPDATE flow_runs SET state_at = 9223372036854775807 WHERE id = $1")
        .await
        .expect("a time out of range");
    let (column, reason) = corrupt(store.flow_run(id).await, "time out of range");
    assert_eq!(column, "state_at");
    assert!(reason.contains("9223372036854775807"), "{reason}");
    set("UPDATE flow_runs SET state_at = scheduled_at WHERE id = $1")
        .await
        .expect("a time again");
    store.flow_run(id).await.expect("readable again");

    for (value, sql) in [
        ("-1", "UPDATE flow_runs SET attempt = -1 WHERE id = $1"),
        (
            "4294967296",
            "UPDATE flow_runs SET attempt = 4294967296 WHERE id = $1",
        ),
    ] {
        set(sql).await.expect("an attempt out of range");
        let (column, reason) = corrupt(store.flow_run(id).await, "attempt out of range");
        assert_eq!(column, "attempt");
        assert!(reason.contains(value), "{reason}");
    }

    // The deployment page's last runs to end (`trends.rs`) read their times strictly too.
    set("UPDATE flow_runs SET attempt = 0, ended_at = scheduled_at WHERE id = $1")
        .await
        .expect("an end");
    let ended = store
        .last_ended_runs(deployment, 10)
        .await
        .expect("a stored end reads");
    assert_eq!(ended.len(), 1);
    set("UPDATE flow_runs SET ended_at = -9223372036854775807 WHERE id = $1")
        .await
        .expect("an end out of range");
    let (column, reason) = corrupt(
        store.last_ended_runs(deployment, 10).await,
        "end out of range",
    );
    assert_eq!(column, "ended_at");
    assert!(reason.contains("-9223372036854775807"), "{reason}");

    // The scheduler's watermark is a stored time as well.
    corrupt_watermark(&store, &raw).await;
    raw.close().await;
}

/// Ingests a Warn line of run `id` and reads its level back.
async fn ingest_a_warning(store: &Store, id: uuid::Uuid) {
    let line = NewLogLine {
        flow_run_id: id,
        task_run_id: None,
        at: now(),
        level: LogLevel::Warn,
        message: "disk almost full".into(),
        attempt: None,
        stream: None,
        seq: None,
    };
    store.ingest_logs(&[line]).await.expect("ingest");
    let logs = store
        .logs(id, None, 0, 10)
        .await
        .expect("a stored level reads");
    assert_eq!(logs[0].level, LogLevel::Warn);
}

/// Writes a scheduler watermark that is no time and reads the refusal naming it.
async fn corrupt_watermark(store: &Store, raw: &sqlx::AnyPool) {
    sqlx::query(
        "INSERT INTO settings (name, value) VALUES ('scheduler_pass_at', 'soon') \
         ON CONFLICT (name) DO UPDATE SET value = excluded.value",
    )
    .execute(raw)
    .await
    .expect("a watermark that is no time");
    let (column, reason) = corrupt(store.scheduler_watermark().await, "watermark");
    assert_eq!(column, "settings.value");
    assert!(reason.contains("\"soon\""), "{reason}");
}
