//! End to end: results in the team's own S3 bucket (moto's server), through a real `weir
//! server` and `weir agent`. A deployment of the seed's `s3_download` flow with
//! `result_storage = "s3://B/results"` runs the flow as a child process of the agent (AWS
//! settings passed with `--pass-env 'AWS_*'`); the run's result lands in the bucket and the
//! server holds only its location and size; `weir runs show` prints the location and `weir runs
//! result` reads the bytes back with the caller's own credentials, not through the server.
//!
//! Needs `cargo build --workspace --bins` and `eval "$(scripts/test-moto.sh)"`
//! (`WEIR_TEST_AWS_ENDPOINT`); without the endpoint the test prints "skipped" and passes,
//! except when `CI` is set.

mod common;

use common::{Output, ServerOptions, Weir, params};
use serde_json::{Value, json};
use std::time::Duration;
use uuid::Uuid;
use weir_core::StateKind;
use weir_core::api::ResultRef;
use weir_results::ResultStore;
use weir_testkit::moto;

#[test]
fn a_deployment_with_s3_result_storage_leaves_its_result_in_the_bucket() {
    let Some(ep) =
        moto::endpoint("a_deployment_with_s3_result_storage_leaves_its_result_in_the_bucket")
    else {
        return;
    };
    let bucket = moto::create_bucket(&ep, "e2e-results");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let body = upload_input(&rt, &ep, &bucket);

    let mut w = Weir::start(ServerOptions::default());
    let env = moto::client_env(&ep);
    let home = w.sb.path("agent-0");
    w.start_agent_with(&home, 2, &["--pass-env", "AWS_*"], &env);
    let storage = format!("s3://{bucket}/results");
    w.write_toml(&format!(
        "project = \"data\"\n\n[deployments.s3_download]\ncommand = [\"{{flows}}\"]\n\
         parameters = {{ bucket = \"{bucket}\", key = \"exports/orders.csv\" }}\n\
         result_storage = \"{storage}\"\n"
    ));
    // `weir deploy` checks the bucket with the caller's credentials.
    let key = w.admin_key.clone();
    let mut cli_env = env.clone();
    cli_env.push(("WEIR_API_KEY", key.as_str()));
    cli(&w, &cli_env, &["deploy"]).ok();

    let run = w.create_run("data", "s3_download", params(&[]));
    let done = w.wait_terminal(run.id, Duration::from_secs(60));
    assert_eq!(
        done.run.state,
        StateKind::Completed,
        "{}",
        common::describe(&done)
    );
    let result = done
        .run
        .result
        .clone()
        .expect("a completed run has a result");
    let location = format!("{storage}/{}/result.json", run.id);
    assert_eq!(
        result.location, location,
        "the documented key under the prefix"
    );

    let (stored, summary) = the_result_is_in_the_bucket(&rt, &ep, &bucket, &result, &body);
    the_task_result_sits_next_to_it(&rt, &ep, &storage, run.id);
    the_cli_shows_and_reads_it(&w, &cli_env, run.id, &result, &summary, &stored);
    without_credentials_the_cli_names_the_storage(&w, &key, run.id, &location, &bucket);
}

/// Uploads the flow's input object (`exports/orders.csv`) to the bucket and returns its body.
fn upload_input(rt: &tokio::runtime::Runtime, ep: &str, bucket: &str) -> String {
    let data = ResultStore::open(&format!("s3://{bucket}"))
        .expect("bucket url")
        .with_endpoint(ep);
    let body = "order_id,total\n1,9.50\n2,12.00\n".repeat(1000);
    rt.block_on(data.put_object("exports/orders.csv", body.clone().into_bytes(), "text/csv"))
        .expect("upload the input object");
    body
}

/// A `weir` command with `env` (the bucket's credentials and the API key).
fn cli(w: &Weir, env: &[(&str, &str)], args: &[&str]) -> Output {
    w.sb.cli_env(
        Some(&w.url),
        &w.sb.path("cli"),
        env,
        args,
        Duration::from_secs(60),
    )
}

/// In the bucket, with the recorded size: the server kept only the reference. Returns the
/// stored bytes and the summary they hold.
fn the_result_is_in_the_bucket(
    rt: &tokio::runtime::Runtime,
    ep: &str,
    bucket: &str,
    result: &ResultRef,
    body: &str,
) -> (Vec<u8>, Value) {
    let stored = rt
        .block_on(ResultStore::fetch_via(&result.location, ep))
        .expect("the result is in the bucket");
    assert_eq!(stored.bytes.len() as u64, result.size);
    let summary: Value = serde_json::from_slice(&stored.bytes).expect("the result is JSON");
    assert_eq!(summary["size"], json!(body.len()));
    assert_eq!(summary["content_type"], json!("text/csv"));
    assert_eq!(
        summary["url"],
        json!(format!("s3://{bucket}/exports/orders.csv"))
    );
    (stored.bytes.to_vec(), summary)
}

/// The persisted task result sits next to the run's result.
fn the_task_result_sits_next_to_it(
    rt: &tokio::runtime::Runtime,
    ep: &str,
    storage: &str,
    run: Uuid,
) {
    let keys: Vec<String> = rt
        .block_on(
            ResultStore::open(storage)
                .expect("url")
                .with_endpoint(ep)
                .list(&run.to_string()),
        )
        .expect("list the run's results")
        .into_iter()
        .map(|l| l.key)
        .collect();
    assert!(
        keys.contains(&format!("{run}/download/0.json")),
        "persisted task result in the bucket: {keys:?}"
    );
}

/// `weir runs show` names the location; `weir runs result` reads it with our credentials, to
/// stdout and to a file.
fn the_cli_shows_and_reads_it(
    w: &Weir,
    env: &[(&str, &str)],
    run: Uuid,
    result: &ResultRef,
    summary: &Value,
    stored: &[u8],
) {
    let id = run.to_string();
    let shown = cli(w, env, &["runs", "show", &id]).ok();
    assert!(
        shown
            .stdout
            .contains(&format!("{} ({} bytes)", result.location, result.size)),
        "runs show prints the location and size: {}",
        shown.stdout
    );
    let fetched = cli(w, env, &["runs", "result", &id]).ok();
    let fetched: Value = serde_json::from_str(fetched.stdout.trim()).expect("JSON on stdout");
    assert_eq!(&fetched, summary);
    let out = w.sb.path("cli/result.json");
    let out_s = out.display().to_string();
    cli(w, env, &["runs", "result", &id, "-o", &out_s]).ok();
    assert_eq!(std::fs::read(&out).expect("written file"), stored);
}

/// Without credentials for the bucket's endpoint the CLI says where the result is and what
/// to check, instead of asking the server for the bytes.
fn without_credentials_the_cli_names_the_storage(
    w: &Weir,
    key: &str,
    run: Uuid,
    location: &str,
    bucket: &str,
) {
    let denied = w.sb.cli_env(
        Some(&w.url),
        &w.sb.path("cli"),
        &[
            ("WEIR_API_KEY", key),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:9"),
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
        ],
        &["runs", "result", &run.to_string()],
        Duration::from_secs(90),
    );
    assert_ne!(denied.code, 0, "{denied:#?}");
    assert!(
        denied.stderr.contains(location) || denied.stderr.contains(&format!("s3://{bucket}")),
        "the error names the storage: {}",
        denied.stderr
    );
}
