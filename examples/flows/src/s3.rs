//! The S3 flows: `s3_download`, the end-to-end check of the team's setup (download an object
//! from the team's bucket), and `s3_roundtrip` (write, list and read back under a prefix).
//!
//! Both go through Weir's result-storage layer ([`weir::results::ResultStore`]), so they use
//! the same credentials and endpoint as persisted results: the standard AWS chain (keys, web
//! identity, the ECS task role), `AWS_REGION`, and `AWS_ENDPOINT_URL` for an S3-compatible
//! server such as moto or MinIO. Both persist their final task's result.

use serde::{Deserialize, Serialize};
use weir::prelude::*;
use weir::results::ResultStore;

/// What `s3_download` fetched.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Download {
    /// `s3://bucket/key`.
    pub url: String,
    /// Size in bytes.
    pub size: u64,
    /// Content type S3 reported, if any.
    pub content_type: Option<String>,
    /// Local file written, when `output` was given.
    pub output: Option<String>,
}

fn bucket_store(bucket: &str) -> anyhow::Result<ResultStore> {
    Ok(ResultStore::open(&format!("s3://{bucket}"))?)
}

/// Downloads `s3://bucket/key` (to `output` when given) and describes it.
#[task(retries = 2, retry_delay = "1s", persist_result = true, tags = ["s3"])]
async fn download(bucket: String, key: String, output: Option<String>) -> anyhow::Result<Download> {
    let store = bucket_store(&bucket)?;
    let url = store.location(&key);
    let object = store
        .get_object(&key)
        .await?
        .ok_or_else(|| anyhow::anyhow!("{url} does not exist: check the bucket and the key"))?;
    let size = object.bytes.len() as u64;
    tracing::info!(
        "downloaded {url}: {size} bytes, content type {}",
        object.content_type.as_deref().unwrap_or("unknown")
    );
    if let Some(path) = &output {
        tokio::fs::write(path, &object.bytes)
            .await
            .map_err(|e| anyhow::anyhow!("cannot write {path}: {e}"))?;
        tracing::info!("wrote {size} bytes to {path}");
    }
    Ok(Download {
        url,
        size,
        content_type: object.content_type,
        output,
    })
}

/// Downloads an object from S3 and reports its size and content type: the end-to-end test of
/// a new environment (bucket, credentials, network).
#[flow]
pub async fn s3_download(
    #[param(description = "Bucket to download from")] bucket: String,
    #[param(description = "Key of the object")] key: String,
    #[param(description = "Local file to write the object to (optional)")] output: Option<String>,
) -> anyhow::Result<Download> {
    download(bucket, key, output).await
}

/// What `s3_roundtrip` checked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Roundtrip {
    /// `s3://bucket/prefix/<run>` the objects went to.
    pub url: String,
    /// Objects written.
    pub written: usize,
    /// Objects listed back.
    pub listed: usize,
    /// Objects read back with the bytes written.
    pub verified: usize,
    /// Bytes written.
    pub bytes: u64,
}

/// The objects `s3_roundtrip` writes: (name, body).
fn samples() -> Vec<(String, Vec<u8>)> {
    (0..3u32)
        .map(|i| {
            let body =
                format!("object {i} written by weir's s3_roundtrip\n").repeat(1 + 100 * i as usize);
            (format!("object-{i}.txt"), body.into_bytes())
        })
        .collect()
}

/// Writes the sample objects under `dir`; returns the bytes written.
#[task(tags = ["s3"])]
async fn write_objects(bucket: String, dir: String) -> anyhow::Result<u64> {
    let store = bucket_store(&bucket)?;
    let mut bytes = 0;
    for (name, body) in samples() {
        bytes += body.len() as u64;
        store
            .put_object(&format!("{dir}/{name}"), body, "text/plain")
            .await?;
    }
    tracing::info!("wrote {bytes} bytes under {}", store.location(&dir));
    Ok(bytes)
}

/// Lists `dir`: the keys found.
#[task(tags = ["s3"])]
async fn list_objects(bucket: String, dir: String) -> anyhow::Result<Vec<String>> {
    let store = bucket_store(&bucket)?;
    let keys: Vec<String> = store.list(&dir).await?.into_iter().map(|l| l.key).collect();
    tracing::info!(
        "listed {} objects under {}",
        keys.len(),
        store.location(&dir)
    );
    Ok(keys)
}

/// Reads every sample back and compares it with what was written.
#[task(persist_result = true, tags = ["s3"])]
async fn read_back(
    bucket: String,
    dir: String,
    listed: Vec<String>,
    bytes: u64,
) -> anyhow::Result<Roundtrip> {
    let store = bucket_store(&bucket)?;
    let samples = samples();
    let mut verified = 0;
    for (name, body) in &samples {
        let key = format!("{dir}/{name}");
        anyhow::ensure!(
            listed.contains(&key),
            "{} was not listed",
            store.location(&key)
        );
        let got = store
            .get(&key)
            .await?
            .ok_or_else(|| anyhow::anyhow!("{} vanished", store.location(&key)))?;
        anyhow::ensure!(&got == body, "{} came back different", store.location(&key));
        verified += 1;
    }
    tracing::info!("read back {verified} objects intact");
    Ok(Roundtrip {
        url: store.location(&dir),
        written: samples.len(),
        listed: listed.len(),
        verified,
        bytes,
    })
}

/// Writes a few objects under `prefix` in a bucket, lists them and reads them back.
#[flow]
pub async fn s3_roundtrip(
    #[param(description = "Bucket to write to")] bucket: String,
    #[param(default = "weir-roundtrip".to_string(), description = "Key prefix to write under")]
    prefix: String,
) -> anyhow::Result<Roundtrip> {
    let run = weir::context::current_flow_run()
        .map(|r| r.flow_run_id.to_string())
        .unwrap_or_else(|| "local".to_string());
    let dir = format!("{}/{run}", prefix.trim_matches('/'));
    let bytes = write_objects(bucket.clone(), dir.clone()).await?;
    let listed = list_objects(bucket.clone(), dir.clone()).await?;
    read_back(bucket, dir, listed, bytes).await
}
