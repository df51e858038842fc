//! Stored deployment specs are the store's own versioned shape, not the wire spec: rows
//! written before versions read as version 1, keys this Weir does not know are ignored, and a
//! row of a newer Weir is refused naming it. The rows are written past the store with a
//! connection of its own, as an older or newer Weir would have, on both backends.

use chrono::{TimeZone, Utc};
use weir_core::Timestamp;
use weir_core::api::{DeploymentSpec, ScheduleSpec, UpsertOutcome};
use weir_core::infrastructure::{DockerInfrastructure, Infrastructure};
use weir_store::{Error, Store};
use weir_testkit::TestDb;

weir_testkit::both_backends!(stored_specs => sqlite_stored_specs_are_versioned_and_tolerant, postgres_stored_specs_are_versioned_and_tolerant);

/// Now at the stores' precision (microseconds).
fn now() -> Timestamp {
    Utc.timestamp_micros(Utc::now().timestamp_micros())
        .single()
        .expect("now is a time")
}

/// A spec as Weir wrote it before stored specs had versions: the wire spec's JSON.
const OLD_ROW: &str = r#"{"flow":"etl","command":["example-flows"],"infrastructure":{"type":"docker","image":"flows:dev","pull":"never"},"work_queue":"fast","schedules":[{"cron":"0 2 * * *","timezone":"Europe/Berlin"}],"retries":2,"tags":["nightly"]}"#;

/// What [`OLD_ROW`] says.
fn old_spec() -> DeploymentSpec {
    let mut docker = DockerInfrastructure::new("flows:dev");
    docker.pull = weir_core::infrastructure::PullPolicy::Never;
    DeploymentSpec {
        flow: "etl".into(),
        command: vec!["example-flows".into()],
        infrastructure: Infrastructure::Docker(docker),
        work_queue: "fast".into(),
        schedules: vec![ScheduleSpec {
            cron: Some("0 2 * * *".into()),
            timezone: Some("Europe/Berlin".into()),
            ..Default::default()
        }],
        retries: 2,
        tags: vec!["nightly".into()],
        ..Default::default()
    }
}

async fn stored_specs(db: &TestDb) {
    let store = Store::connect(&db.url).await.expect("open the store");
    let first = DeploymentSpec {
        flow: "etl".into(),
        work_queue: "default".into(),
        ..Default::default()
    };
    let d = store
        .upsert_deployment("dev", "etl", &first, false, now())
        .await
        .expect("upsert")
        .deployment
        .expect("deployment returned");

    sqlx::any::install_default_drivers();
    let raw = sqlx::AnyPool::connect(&db.url)
        .await
        .expect("raw connection");
    let id = d.id.to_string();

    written_in_the_current_format(&raw, &id).await;
    old_rows_read_as_version_1(&store, &raw, &id).await;
    unknown_keys_are_ignored(&store, &raw, d.id).await;
    newer_rows_are_refused(&store, &raw, &first, d.id).await;
    raw.close().await;
}

/// The deployment's stored spec, read past the store.
async fn stored_spec(raw: &sqlx::AnyPool, id: &str) -> String {
    let (spec,): (String,) = sqlx::query_as("SELECT spec FROM deployments WHERE id = $1")
        .bind(id)
        .fetch_one(raw)
        .await
        .expect("the stored spec");
    spec
}

/// Overwrites the deployment's stored spec past the store, as another Weir would have.
async fn set_spec(raw: &sqlx::AnyPool, id: &str, spec: &str, what: &str) {
    sqlx::query("UPDATE deployments SET spec = $1 WHERE id = $2")
        .bind(spec)
        .bind(id)
        .execute(raw)
        .await
        .expect(what);
}

/// Both the deployment and its version are written in the current format.
async fn written_in_the_current_format(raw: &sqlx::AnyPool, id: &str) {
    let current = stored_spec(raw, id).await;
    assert_eq!(current, r#"{"v":1,"flow":"etl","work_queue":"default"}"#);
    let (version,): (String,) = sqlx::query_as(
        "SELECT spec FROM deployment_versions WHERE deployment_id = $1 AND version = 1",
    )
    .bind(id)
    .fetch_one(raw)
    .await
    .expect("the stored version");
    assert_eq!(version, current);
}

/// A row of a Weir from before versions reads as version 1, and is the same spec: upserting
/// it again writes nothing.
async fn old_rows_read_as_version_1(store: &Store, raw: &sqlx::AnyPool, id: &str) {
    set_spec(raw, id, OLD_ROW, "an old row").await;
    let read = store
        .deployment("dev", "etl")
        .await
        .expect("an old row reads");
    assert_eq!(read.spec, old_spec());
    let again = store
        .upsert_deployment("dev", "etl", &old_spec(), false, now())
        .await
        .expect("upsert the same spec");
    assert_eq!(again.outcome, UpsertOutcome::Unchanged);
}

/// Keys this Weir does not know (written by a newer Weir of the same version) are ignored.
async fn unknown_keys_are_ignored(store: &Store, raw: &sqlx::AnyPool, id: uuid::Uuid) {
    set_spec(
        raw,
        &id.to_string(),
        r#"{"v":1,"flow":"etl","colour":"blue","schedules":[{"cron":"0 2 * * *","jitter":"5s"}],"infrastructure":{"type":"docker","image":"flows:dev","gpus":1}}"#,
        "a row with unknown keys",
    )
    .await;
    let read = store
        .deployment_by_id(id)
        .await
        .expect("unknown keys are ignored");
    assert_eq!(read.spec.schedules[0].cron.as_deref(), Some("0 2 * * *"));
    assert_eq!(read.spec.infrastructure.image(), Some("flows:dev"));
    assert_eq!(read.spec.work_queue, "default");
}

/// A row of a newer format is refused, naming it and what to do, by every read; an upsert
/// does not overwrite it.
async fn newer_rows_are_refused(
    store: &Store,
    raw: &sqlx::AnyPool,
    first: &DeploymentSpec,
    id: uuid::Uuid,
) {
    let newer = r#"{"v":99,"flow_name":"etl"}"#;
    set_spec(raw, &id.to_string(), newer, "a row of a newer Weir").await;
    for (what, read) in [
        ("by name", store.deployment("dev", "etl").await.map(|_| ())),
        ("by id", store.deployment_by_id(id).await.map(|_| ())),
        ("listed", store.deployments(None).await.map(|_| ())),
        (
            "upserted",
            store
                .upsert_deployment("dev", "etl", first, false, now())
                .await
                .map(|_| ()),
        ),
    ] {
        match read {
            Err(e @ Error::NewerFormat { .. }) => {
                let message = e.to_string();
                assert!(
                    message.starts_with("deployment dev/etl (deployments.spec) was stored by a newer Weir (format version 99"),
                    "{what}: {message}"
                );
                assert!(
                    message.ends_with("upgrade Weir to read it"),
                    "{what}: {message}"
                );
            }
            other => panic!("{what}: expected a newer-format error, got {other:?}"),
        }
    }
    assert_eq!(stored_spec(raw, &id.to_string()).await, newer);
}
