//! The S3 example flows as real processes against moto's S3 (`WEIR_TEST_AWS_ENDPOINT`), with
//! the endpoint from `AWS_ENDPOINT_URL` as a user would set it: the seed's `s3_download` of a
//! 20 MB object (size and content type logged, summary printed, result persisted in the
//! bucket), `s3_roundtrip`, and the errors: a missing object, a missing bucket, a bad
//! `WEIR_RESULT_STORAGE`, a result storage whose bucket is missing (the run fails before the
//! flow's code runs).

use serde_json::Value;
use std::process::{Command, Output};
use weir::results::ResultStore;
use weir_testkit::moto;

const BIN: &str = env!("CARGO_BIN_EXE_example-flows");

/// `example-flows ARGS` with moto as the S3 endpoint and `storage` as result storage.
fn run(ep: &str, storage: Option<&str>, args: &[&str]) -> (Output, tempfile::TempDir) {
    let home = tempfile::tempdir().expect("tempdir");
    let mut c = Command::new(BIN);
    c.env("WEIR_HOME", home.path())
        .envs(moto::client_env(ep))
        .env_remove("WEIR_API_URL")
        .env_remove("WEIR_FLOW_RUN_ID")
        .env_remove("WEIR_PARAMETERS")
        .env_remove("WEIR_RESULT_STORAGE")
        .args(args);
    if let Some(s) = storage {
        c.env("WEIR_RESULT_STORAGE", s);
    }
    (c.output().expect("spawn example-flows"), home)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn result(o: &Output) -> Value {
    assert!(o.status.success(), "exit {:?}: {}", o.status, stderr(o));
    serde_json::from_slice(&o.stdout).expect("the result as JSON on stdout")
}

fn bucket(ep: &str, url: &str) -> ResultStore {
    ResultStore::open(url).expect("url").with_endpoint(ep)
}

#[tokio::test]
async fn s3_download_of_20_mb_persists_its_summary_in_the_bucket() {
    let Some(ep) = moto::endpoint("s3_download_of_20_mb_persists_its_summary_in_the_bucket") else {
        return;
    };
    let name = moto::create_bucket(&ep, "download");
    let data: Vec<u8> = (0..20 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    bucket(&ep, &format!("s3://{name}"))
        .put_object("exports/big.bin", data.clone(), "application/octet-stream")
        .await
        .expect("upload 20 MB");
    let dir = tempfile::tempdir().expect("tempdir");
    let output = dir.path().join("big.bin");
    let storage = format!("s3://{name}/results");
    let (out, _home) = run(
        &ep,
        Some(&storage),
        &[
            "run",
            "s3_download",
            "--param",
            &format!("bucket={name}"),
            "--param",
            "key=exports/big.bin",
            "--param",
            &format!("output={}", output.display()),
        ],
    );
    let summary = result(&out);
    assert_eq!(summary["size"], 20 * 1024 * 1024);
    assert_eq!(summary["url"], format!("s3://{name}/exports/big.bin"));
    assert_eq!(summary["content_type"], "application/octet-stream");
    let err = stderr(&out);
    assert!(
        err.contains("20971520 bytes, content type application/octet-stream"),
        "logs size and content type: {err}"
    );
    assert!(
        std::fs::read(&output).expect("output written") == data,
        "same bytes"
    );

    // The task's result is persisted in the bucket, under the storage's prefix.
    let persisted = bucket(&ep, &storage).list("").await.expect("list results");
    let keys: Vec<&str> = persisted.iter().map(|l| l.key.as_str()).collect();
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert!(keys[0].ends_with("/download/0.json"), "{keys:?}");
    let saved = bucket(&ep, &storage)
        .get(keys[0])
        .await
        .expect("get")
        .expect("there");
    let saved: Value = serde_json::from_slice(&saved).expect("json");
    assert_eq!(saved, summary);
}

#[tokio::test]
async fn s3_roundtrip_writes_lists_and_reads_back() {
    let Some(ep) = moto::endpoint("s3_roundtrip_writes_lists_and_reads_back") else {
        return;
    };
    let name = moto::create_bucket(&ep, "roundtrip");
    let (out, _home) = run(
        &ep,
        Some(&format!("s3://{name}/results")),
        &[
            "run",
            "s3_roundtrip",
            "--param",
            &format!("bucket={name}"),
            "--param",
            "prefix=rt",
        ],
    );
    let r = result(&out);
    assert_eq!(
        (
            r["written"].as_u64(),
            r["listed"].as_u64(),
            r["verified"].as_u64()
        ),
        (Some(3), Some(3), Some(3))
    );
    let url = r["url"].as_str().expect("url");
    assert!(url.starts_with(&format!("s3://{name}/rt/")), "{url}");
    let objects = bucket(&ep, &format!("s3://{name}"))
        .list("rt")
        .await
        .expect("list");
    assert_eq!(objects.len(), 3);
    assert_eq!(
        objects.iter().map(|o| o.size).sum::<u64>(),
        r["bytes"].as_u64().expect("bytes")
    );
}

#[tokio::test]
async fn s3_errors_name_what_to_fix() {
    let Some(ep) = moto::endpoint("s3_errors_name_what_to_fix") else {
        return;
    };
    let name = moto::create_bucket(&ep, "errors");
    let absent = moto::bucket_name("absent");

    // A missing key, a missing bucket: the flow fails, naming them.
    let (out, _h) = run(
        &ep,
        None,
        &[
            "run",
            "s3_download",
            "--param",
            &format!("bucket={name}"),
            "--param",
            "key=nope.txt",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("s3://{name}/nope.txt does not exist")),
        "{err}"
    );
    let (out, _h) = run(
        &ep,
        None,
        &[
            "run",
            "s3_download",
            "--param",
            &format!("bucket={absent}"),
            "--param",
            "key=k",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("bucket {absent:?} does not exist at {ep}")),
        "{err}"
    );

    // Result storage in a missing bucket: the run fails before the flow's code runs.
    let storage = format!("s3://{absent}/results");
    let (out, _h) = run(
        &ep,
        Some(&storage),
        &[
            "run",
            "s3_download",
            "--param",
            &format!("bucket={name}"),
            "--param",
            "key=k",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("before the flow started") && err.contains(&storage),
        "{err}"
    );
    assert!(!err.contains("download-0"), "no task ran: {err}");

    // A bad URL in WEIR_RESULT_STORAGE: the same, naming the variable and the URL.
    let (out, _h) = run(
        &ep,
        Some("s3://Not_A_Bucket"),
        &[
            "run",
            "s3_download",
            "--param",
            &format!("bucket={name}"),
            "--param",
            "key=k",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("WEIR_RESULT_STORAGE") && err.contains("s3://Not_A_Bucket"),
        "{err}"
    );
    assert!(!err.contains("download-0"), "no task ran: {err}");
}
