//! Reading a run's result from the team's result storage, with the caller's own credentials
//! (`AWS_*` for `s3://`): the server only ever holds the location and the size.

use anyhow::{Context, Result, bail};
use std::io::Write;
use std::path::Path;
use weir_core::api::{FlowRun, ResultRef};
use weir_results::ResultStore;

/// `weir runs result ID [-o FILE]`: the result's bytes to stdout or FILE.
pub async fn fetch(run: &FlowRun, output: Option<&Path>) -> Result<()> {
    let Some(r) = &run.result else {
        bail!(
            "run {} has no result (state {}): only Completed runs reported by a flows binary \
             have one",
            run.id,
            run.state
        );
    };
    let object = ResultStore::fetch(&r.location)
        .await
        .with_context(|| format!("cannot read the result of run {}", run.id))?;
    match output {
        Some(path) => {
            std::fs::write(path, &object.bytes)
                .with_context(|| format!("cannot write {}", path.display()))?;
            eprintln!(
                "wrote {} bytes from {} to {}",
                object.bytes.len(),
                r.location,
                path.display()
            );
        }
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(&object.bytes)?;
            if !object.bytes.ends_with(b"\n") {
                out.write_all(b"\n")?;
            }
        }
    }
    Ok(())
}

/// `weir run --watch`: prints the result itself when the caller can read it, else where it is.
pub async fn print(r: &ResultRef) {
    match ResultStore::fetch(&r.location).await {
        Ok(o) => println!("{}", String::from_utf8_lossy(&o.bytes)),
        Err(e) => {
            eprintln!(
                "weir: result at {} ({} bytes); cannot read it here: {e}",
                r.location, r.size
            );
        }
    }
}

/// Whether AWS credentials are configured in this process's environment (so checking a bucket
/// here will not wait on the instance metadata service of a machine that has none).
fn aws_credentials_here() -> bool {
    [
        "AWS_ACCESS_KEY_ID",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
    ]
    .iter()
    .any(|k| std::env::var_os(k).is_some_and(|v| !v.is_empty()))
}

/// `weir deploy`'s check of each S3 `result_storage` (the URLs' syntax was checked when the
/// file was read): a bucket that does not exist is an error; refused credentials or an
/// unreachable endpoint only a warning, since runs use their own credentials (a task role)
/// and check again before user code runs. Returns the errors.
pub async fn check_storage<'a>(urls: impl Iterator<Item = (&'a str, &'a str)>) -> Vec<String> {
    let mut errors = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for (deployment, url) in urls {
        if !seen.insert(url.to_string()) {
            continue;
        }
        let Ok(store) = ResultStore::open(url) else {
            continue;
        };
        if !store.is_remote() {
            continue;
        }
        if !aws_credentials_here() {
            eprintln!(
                "note: result storage {url} (deployment {deployment:?}) not checked: no AWS \
                 credentials here; runs check it before their code starts"
            );
            continue;
        }
        let checked = tokio::time::timeout(std::time::Duration::from_secs(30), store.check()).await;
        match checked {
            Ok(Ok(())) => {}
            Ok(Err(e @ weir_results::Error::NoSuchBucket { .. })) => {
                errors.push(format!("deployment {deployment:?}: {e}"));
            }
            Ok(Err(e)) => eprintln!(
                "warning: deployment {deployment:?}: {e} (with this machine's credentials; \
                 runs use their own and check again before their code starts)"
            ),
            Err(_) => eprintln!(
                "warning: deployment {deployment:?}: result storage {url} did not answer \
                 within 30 s; runs check it again before their code starts"
            ),
        }
    }
    errors
}
