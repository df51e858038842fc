//! Where things are: the data directory (`$WEIR_HOME`), the database, and the server URL.

use anyhow::{Context, Result};
use std::path::PathBuf;

/// The data directory: `$WEIR_HOME`, or `./.weir`.
pub fn home() -> PathBuf {
    weir_client::weir_home()
}

/// Creates the data directory and returns its absolute path.
pub fn ensure_home() -> Result<PathBuf> {
    let home = home();
    std::fs::create_dir_all(&home)
        .with_context(|| format!("cannot create data directory {}", home.display()))?;
    std::fs::canonicalize(&home).with_context(|| format!("cannot resolve {}", home.display()))
}

/// The default database: an SQLite file in the data directory.
pub fn default_db(home: &std::path::Path) -> String {
    format!("sqlite://{}", home.join("weir.db").display())
}

/// File where a local server records its URL for the CLI to find.
fn server_file() -> PathBuf {
    home().join("server.url")
}

/// Records the URL of the server this process runs.
pub fn record_server(url: &str) -> Result<()> {
    std::fs::write(server_file(), url).context("cannot record the server URL in the data directory")
}

/// Stores the local admin key in the data directory, readable by this user only (0600).
pub fn store_admin_key(key: &str) -> Result<PathBuf> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = home().join("admin.key");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    f.write_all(key.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

/// The server to talk to: `--api-url`/`WEIR_API_URL`, else the local server recorded in the
/// data directory, else `http://127.0.0.1:4200`.
pub fn api_url(flag: Option<&str>) -> String {
    if let Some(url) = flag {
        return url.trim_end_matches('/').to_string();
    }
    std::fs::read_to_string(server_file())
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "http://127.0.0.1:4200".to_string())
}

/// Splits `PROJECT/NAME`, with a clear error otherwise.
pub fn split_target(target: &str) -> Result<(String, String)> {
    match target.split_once('/') {
        Some((p, d)) if !p.is_empty() && !d.is_empty() && !d.contains('/') => {
            Ok((p.to_string(), d.to_string()))
        }
        _ => anyhow::bail!("expected PROJECT/DEPLOYMENT (e.g. dev/etl), got {target:?}"),
    }
}

/// Parses a flow run id, naming it on error.
pub fn run_id(text: &str) -> Result<uuid::Uuid> {
    uuid::Uuid::parse_str(text.trim())
        .with_context(|| format!("{text:?} is not a flow run id (a UUID, as `weir runs ls` shows)"))
}
