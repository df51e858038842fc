//! Test harness for Weir's store and server suites: real databases, never mocks.
//!
//! - [`sqlite_url`]: an SQLite file in a caller-owned temporary directory.
//! - [`postgres_url`]: a fresh, uniquely named database on the PostgreSQL server named by
//!   `WEIR_TEST_POSTGRES_URL` (start a throwaway one with `eval "$(scripts/test-postgres.sh)"`).
//!
//! Without `WEIR_TEST_POSTGRES_URL`, PostgreSQL variants of tests print a "skipped" line and
//! pass — except when `CI` is set, where a missing database is a failure, so that no test
//! silently turns into a no-op there.
//!
//! [`moto`]: moto's S3 endpoint and fresh buckets for the result-storage tests.
//!
//! `fargate` (feature `fargate`): a local Fargate running moto's ECS tasks on the Docker
//! engine, for the ECS end-to-end tests and `weir-bench ecs`.
//!
//! [`modules`]: import loops between a crate's modules, read from its sources (each crate's
//! `tests/module_cycles.rs`).
//!
//! [`both_backends!`] writes the two variants of a test from one `async fn case(url)`.

#[cfg(feature = "fargate")]
pub mod fargate;
pub mod modules;
pub mod moto;

use sqlx::{Connection, Executor, PgConnection};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tempfile::TempDir;

/// Environment variable naming the PostgreSQL server tests use (any database on it: the
/// harness connects to it to create fresh databases next to it).
pub const POSTGRES_ENV: &str = "WEIR_TEST_POSTGRES_URL";

/// Prefix of the databases the harness creates.
const PREFIX: &str = "weir_test_";

/// Databases created longer ago than this, and no longer in use, are dropped when a new one
/// is created, so the test server does not fill up with leftovers (a database lives only as
/// long as its test; one still in use keeps its connections and is not dropped).
const STALE_AFTER: Duration = Duration::from_secs(120);

/// Most leftovers dropped per new database, so cleaning up never slows one test much.
const MAX_DROPS: usize = 16;

/// The URL of a new SQLite database file inside `dir` (created on first connect).
pub fn sqlite_url(dir: &TempDir) -> String {
    format!("sqlite://{}/weir.db", dir.path().display())
}

/// A backend a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// An SQLite file in a temporary directory.
    Sqlite,
    /// A fresh database on the PostgreSQL test server.
    Postgres,
}

/// A database for one test: its URL, and the temporary directory that must outlive it
/// (SQLite only).
#[derive(Debug)]
pub struct TestDb {
    /// The database's URL, `sqlite://…` or `postgres://…`, as `Store::connect`
    /// takes it.
    pub url: String,
    /// Which backend `url` is, for tests that differ between them.
    pub backend: Backend,
    _dir: Option<TempDir>,
}

impl TestDb {
    /// A fresh database on `backend`, or `None` when PostgreSQL is not configured (see
    /// [`postgres_url`]).
    ///
    /// # Panics
    /// When the temporary directory cannot be created, or as [`postgres_url`] does.
    pub async fn new(backend: Backend, test: &str) -> Option<TestDb> {
        match backend {
            Backend::Sqlite => {
                let dir = match tempfile::Builder::new().prefix("weir-test-").tempdir() {
                    Ok(dir) => dir,
                    Err(e) => panic!("cannot create a temporary directory: {e}"),
                };
                Some(TestDb {
                    url: sqlite_url(&dir),
                    backend,
                    _dir: Some(dir),
                })
            }
            Backend::Postgres => match postgres_url().await {
                Some(url) => Some(TestDb {
                    url,
                    backend,
                    _dir: None,
                }),
                None => {
                    eprintln!(
                        "{test}: skipped: {POSTGRES_ENV} not set (run `eval \"$(scripts/test-postgres.sh)\"`)"
                    );
                    None
                }
            },
        }
    }
}

/// Creates a fresh, uniquely named database (`weir_test_<time>_<random>`) on the server
/// named by `WEIR_TEST_POSTGRES_URL` and returns its URL. Returns `None` when the variable
/// is not set.
///
/// # Panics
/// When the variable is not set but `CI` is (a PostgreSQL test must not silently pass
/// there), and when the server cannot be reached or refuses to create the database: the
/// variable was set, so the test asked for PostgreSQL and must not pretend it ran.
pub async fn postgres_url() -> Option<String> {
    let admin = match std::env::var(POSTGRES_ENV) {
        Ok(url) if !url.trim().is_empty() => url,
        _ => {
            if std::env::var_os("CI").is_some() {
                panic!(
                    "{POSTGRES_ENV} is not set but CI is: PostgreSQL tests must run in CI. \
                     Start a server with `eval \"$(scripts/test-postgres.sh)\"`"
                );
            }
            return None;
        }
    };
    match create_database(&admin).await {
        Ok(url) => Some(url),
        Err(e) => panic!("cannot create a test database on {admin} ({POSTGRES_ENV}): {e}"),
    }
}

async fn create_database(admin: &str) -> Result<String, sqlx::Error> {
    let mut conn = PgConnection::connect(admin).await?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    drop_stale(&mut conn, now).await;
    let name = format!(
        "{PREFIX}{now}_{}",
        &uuid::Uuid::now_v7().simple().to_string()[20..]
    );
    conn.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .await?;
    conn.close().await?;
    Ok(with_database(admin, &name))
}

/// Drops databases this harness created more than [`STALE_AFTER`] ago that nobody is
/// connected to. Best effort: a failure here never fails a test.
async fn drop_stale(conn: &mut PgConnection, now: u64) {
    let Ok(names) = sqlx::query_scalar::<_, String>(
        "SELECT datname FROM pg_database WHERE datname LIKE 'weir\\_test\\_%' ORDER BY random()",
    )
    .fetch_all(&mut *conn)
    .await
    else {
        return;
    };
    let mut dropped = 0;
    for name in names {
        if dropped >= MAX_DROPS {
            return;
        }
        let created = name
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.split('_').next())
            .and_then(|t| t.parse::<u64>().ok());
        let ok_chars = name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if ok_chars && created.is_some_and(|t| t + STALE_AFTER.as_secs() < now) {
            let sql = format!("DROP DATABASE IF EXISTS {name}");
            if conn.execute(sqlx::AssertSqlSafe(sql)).await.is_ok() {
                dropped += 1;
            }
        }
    }
}

impl TestDb {
    /// PostgreSQL only: refuses (`false`) or allows new connections to this database, and on
    /// refusing ends every session already connected — a database outage as its clients see
    /// it, while the server itself keeps running.
    ///
    /// # Panics
    /// On SQLite, or when the PostgreSQL server refuses the change.
    pub async fn set_reachable(&self, reachable: bool) {
        assert_eq!(
            self.backend,
            Backend::Postgres,
            "an outage needs PostgreSQL"
        );
        let admin = std::env::var(POSTGRES_ENV).unwrap_or_default();
        let name = self
            .url
            .rsplit('/')
            .next()
            .and_then(|n| n.split('?').next())
            .unwrap_or_default()
            .to_string();
        assert!(name.starts_with(PREFIX), "not a test database: {name}");
        let mut conn = match PgConnection::connect(&admin).await {
            Ok(c) => c,
            Err(e) => panic!("cannot reach the PostgreSQL test server: {e}"),
        };
        let sql = format!("ALTER DATABASE {name} WITH ALLOW_CONNECTIONS {reachable}");
        if let Err(e) = conn.execute(sqlx::AssertSqlSafe(sql)).await {
            panic!("cannot change {name}: {e}");
        }
        if !reachable {
            let end = "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                       WHERE datname = $1 AND pid <> pg_backend_pid()";
            if let Err(e) = sqlx::query(end).bind(&name).execute(&mut conn).await {
                panic!("cannot end the sessions of {name}: {e}");
            }
        }
        let _ = conn.close().await;
    }
}

/// `url` with its database (path) replaced by `db`, keeping user, host, port and query.
fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[authority_start..]
        .find('/')
        .map_or(base.len(), |i| authority_start + i);
    let mut out = format!("{}/{db}", &base[..path_start]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// Writes `sqlite_NAME` and `postgres_NAME` tokio tests that each build a fresh
/// [`TestDb`] and pass its URL to `async fn CASE(db: &TestDb)`. The PostgreSQL variant
/// skips with a printed message when PostgreSQL is not configured (fails under `CI`).
///
/// ```text
/// weir_testkit::both_backends!(case_projects => sqlite_projects, postgres_projects);
/// ```
#[macro_export]
macro_rules! both_backends {
    ($case:ident => $sqlite:ident, $postgres:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $sqlite() {
            if let Some(db) =
                $crate::TestDb::new($crate::Backend::Sqlite, stringify!($sqlite)).await
            {
                $case(&db).await;
            }
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $postgres() {
            if let Some(db) =
                $crate::TestDb::new($crate::Backend::Postgres, stringify!($postgres)).await
            {
                $case(&db).await;
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn database_is_replaced() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:55432/postgres", "x"),
            "postgres://postgres@127.0.0.1:55432/x"
        );
        assert_eq!(
            with_database("postgres://u:p@h/db?sslmode=disable", "x"),
            "postgres://u:p@h/x?sslmode=disable"
        );
        assert_eq!(
            with_database("postgres://h:5432", "x"),
            "postgres://h:5432/x"
        );
    }
}
