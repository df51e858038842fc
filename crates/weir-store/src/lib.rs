//! Weir's storage: the single source of truth for projects, deployments, runs, task runs,
//! logs and agents.
//!
//! One [`Store`] type speaks to either backend through sqlx's `Any` driver: SQLite (the
//! default: a file, WAL mode, one writer connection so "database is locked" cannot happen)
//! or PostgreSQL (several server replicas). The SQL is shared; where the dialects differ
//! (claiming with `FOR UPDATE SKIP LOCKED`, the migrations) the [`Dialect`] picks the text.
//!
//! Orchestration decisions come from `weir_core::orchestration`; this crate applies them
//! atomically with a compare-and-set on `(state, attempt)`, so a decision is written once
//! even when replicas race.

mod agents;
mod batch;
mod changes;
mod claim;
mod clock;
mod codec;
mod deployments;
mod keys;
mod limits;
mod load;
mod logs;
mod migrate;
mod notify;
mod outbox;
mod retention;
mod runs;
mod scheduling;
mod states;
mod task_runs;
mod trends;
mod wake;
mod why;

pub use load::QueueLoad;
pub use outbox::ClaimedDelivery;
pub use retention::{Archived, Pruned};
pub use runs::{Created, IMPORT_CHUNK, NewFlowRun, RunFilter, TaskGroup};
pub use scheduling::{BACKFILL_BATCH, CatchUpOutcome};
pub use trends::{EndedRun, HourCounts};

use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Executor};
use std::time::Duration;

/// Which database a [`Store`] runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// An SQLite file.
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

impl Dialect {
    /// `sqlite` or `postgres`.
    pub fn as_str(self) -> &'static str {
        match self {
            Dialect::Sqlite => "sqlite",
            Dialect::Postgres => "postgres",
        }
    }
}

/// Errors of the storage layer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database URL is not `sqlite:` or `postgres:`.
    #[error("unsupported database URL {0:?}: use sqlite://PATH or postgres://USER@HOST/DB")]
    UnsupportedUrl(String),
    /// The thing asked for does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// A proposal was refused by the orchestration rules.
    #[error("{reason}")]
    Rejected {
        /// The rules' verdict, e.g. a transition that is not legal or a stale attempt.
        reason: String,
        /// The run as it is now.
        current: Box<weir_core::run::Run>,
    },
    /// The request conflicts with stored data (e.g. a deployment that does not exist).
    #[error("{0}")]
    Invalid(String),
    /// Stored data could not be decoded (a bug or a hand-edited database).
    #[error("corrupt stored value in {column}: {reason}")]
    Corrupt {
        /// The column that held it, as `table.column`.
        column: &'static str,
        /// What about the value could not be decoded.
        reason: String,
    },
    /// A stored row is in a format version newer than this Weir reads: a newer Weir wrote it.
    #[error(
        "{row} was stored by a newer Weir (format version {found}; this Weir reads up to \
         {known}): upgrade Weir to read it"
    )]
    NewerFormat {
        /// Which row, and its column (`deployment dev/etl (deployments.spec)`).
        row: String,
        /// The row's format version.
        found: u64,
        /// The newest version this Weir reads.
        known: u64,
    },
    /// The database could not do it now (busy, contended, a connection lost): transient.
    #[error("{0}")]
    Unavailable(String),
    /// The database failed.
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    /// Applying migrations failed.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl Error {
    /// Whether the same operation may succeed if retried later: the database was unreachable,
    /// busy or contended, not wrong about the request or its data.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Unavailable(_) => true,
            Error::Db(e) => db_error_is_transient(e),
            _ => false,
        }
    }
}

fn db_error_is_transient(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(db) => {
            // PostgreSQL: serialization failure, deadlock, insufficient resources (class 53),
            // the server shutting down or in recovery, connection errors (class 08). SQLite:
            // busy, locked.
            let code = db.code().unwrap_or_default();
            // 55000 is also what a database refusing connections answers at connect.
            matches!(
                code.as_ref(),
                "40001" | "40P01" | "55000" | "57P01" | "57P02" | "57P03"
            ) || code.starts_with("08")
                || code.starts_with("53")
                || matches!(code.as_ref(), "5" | "6" | "261" | "262" | "517")
                || db.message().contains("database is locked")
        }
        _ => false,
    }
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Handle to the database; cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    /// Pool for writes. On SQLite it has exactly one connection, so writers queue in-process
    /// instead of failing with "database is locked".
    write: AnyPool,
    /// Pool for reads (the same pool on PostgreSQL).
    read: AnyPool,
    dialect: Dialect,
    /// Queue of the state-proposal group commit (see `batch`); `None` in the batcher's own
    /// handle, which applies proposals directly.
    proposals: Option<tokio::sync::mpsc::UnboundedSender<batch::Job>>,
    /// The PostgreSQL URL, for the work listener (see `wake`).
    url: Option<std::sync::Arc<str>>,
}

impl Store {
    /// Connects to `url` (`sqlite://path` or `postgres://…`), creating an SQLite file if
    /// needed, and applies migrations.
    pub async fn connect(url: &str) -> Result<Store> {
        install_default_drivers();
        let store = if url.starts_with("sqlite:") {
            let url = if url.contains('?') {
                url.to_string()
            } else {
                format!("{url}?mode=rwc")
            };
            // The writer keeps statement journals in memory. A statement that fires a trigger
            // (every insert, state change and delete of a run updates the hourly counts)
            // journals the original of each page it changes (~20 for a state change: the run's
            // row and its indexes); with the default temp store, a journal past 64 KiB went to
            // a file in /var/tmp, created, written and deleted once per such statement on the
            // one writer. Sorts that outgrow memory still spill to files.
            let write = sqlite_pool(
                &url,
                1,
                "PRAGMA wal_autocheckpoint=0; PRAGMA temp_store=MEMORY",
            )
            .await?;
            // Set WAL once before the readers open: it is a property of the file.
            write.execute("PRAGMA journal_mode=WAL").await?;
            let read = sqlite_pool(&url, 4, "").await?;
            checkpoints(read.clone());
            Store {
                write,
                read,
                dialect: Dialect::Sqlite,
                proposals: None,
                url: None,
            }
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let pool = AnyPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(Duration::from_secs(10))
                .connect(url)
                .await?;
            Store {
                write: pool.clone(),
                read: pool,
                dialect: Dialect::Postgres,
                proposals: None,
                url: Some(url.into()),
            }
        } else {
            return Err(Error::UnsupportedUrl(url.to_string()));
        };
        migrate::run(&store).await?;
        let proposals = batch::spawn(store.clone());
        Ok(Store {
            proposals: Some(proposals),
            ..store
        })
    }

    /// The backend in use.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Checks the database answers.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.read).await?;
        Ok(())
    }

    /// Frees the pages SQLite keeps cached in memory (it reads them again when needed), on the
    /// writer and on every reader connection not in use; call when the server is idle. An idle
    /// `weir server` held ~2 MiB of cached pages after a 10,000-task run. Nothing happens on
    /// PostgreSQL.
    pub async fn release_memory(&self) -> Result<()> {
        if self.dialect != Dialect::Sqlite {
            return Ok(());
        }
        // Held together, so each idle connection is taken (and shrunk) once.
        let mut idle: Vec<_> = self.write.try_acquire().into_iter().collect();
        while let Some(conn) = self.read.try_acquire() {
            idle.push(conn);
        }
        for conn in &mut idle {
            (&mut **conn).execute("PRAGMA shrink_memory").await?;
        }
        Ok(())
    }

    /// Closes the writer and the reader pool, waiting for connections in use to
    /// be returned.
    pub async fn close(&self) {
        self.write.close().await;
        self.read.close().await;
    }
}

/// How often the WAL is checkpointed (see [`checkpoints`]).
const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);

/// Checkpoints the SQLite WAL into the database file from a reader connection, every
/// [`CHECKPOINT_EVERY`], until the pool closes. The writer connection has automatic
/// checkpoints turned off: otherwise the commit that crosses the WAL's threshold copies and
/// syncs the pages itself while holding the one writer, and every write queued behind it
/// waits (hundreds of milliseconds under retention's deletes). A PASSIVE checkpoint takes no
/// writer lock, so writers go on while it runs.
fn checkpoints(read: AnyPool) {
    tokio::spawn(async move {
        // The first one a period after opening, not during the migrations and first writes.
        let first = tokio::time::Instant::now() + CHECKPOINT_EVERY;
        let mut tick = tokio::time::interval_at(first, CHECKPOINT_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        while !read.is_closed() {
            tick.tick().await;
            if let Err(error) = read.execute("PRAGMA wal_checkpoint(PASSIVE)").await {
                if read.is_closed() {
                    return;
                }
                tracing::warn!(message = "WAL checkpoint failed; will retry", %error);
            }
        }
    });
}

/// A pool on the SQLite file `url`; `extra` is run on each new connection after the settings
/// every connection has.
async fn sqlite_pool(url: &str, max: u32, extra: &'static str) -> Result<AnyPool> {
    Ok(AnyPoolOptions::new()
        .max_connections(max)
        .min_connections(1)
        .acquire_timeout(Duration::from_secs(30))
        .after_connect(move |conn, _| {
            Box::pin(async move {
                conn.execute(
                    "PRAGMA busy_timeout=10000; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON",
                )
                .await?;
                if !extra.is_empty() {
                    conn.execute(extra).await?;
                }
                Ok(())
            })
        })
        // A connection handed back still inside a transaction (a COMMIT that failed, e.g.
        // on a full disk) is closed, not reused: else the one writer refuses every later
        // write ("non-zero transaction depth") until the server restarts.
        .after_release(|conn, _| {
            Box::pin(async move { Ok(!sqlx::Connection::is_in_transaction(conn)) })
        })
        .connect(url)
        .await?)
}
