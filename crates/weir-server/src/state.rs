//! Shared server state and options.

use chrono::Duration;
use std::sync::Arc;
use tokio::sync::{Notify, watch};
use weir_store::Store;

/// Server settings.
#[derive(Debug, Clone)]
pub struct Options {
    /// The database: `sqlite://…` or `postgres://…` (`--db`).
    pub database_url: String,
    /// Address to listen on, e.g. `127.0.0.1:4200`.
    pub bind: String,
    /// How long a Pending/Running run lives without a heartbeat before it is Crashed.
    pub lease: std::time::Duration,
    /// How long a due run may wait for an agent before it is marked Late.
    pub late_after: std::time::Duration,
    /// How often the scheduler and crash detector wake up.
    pub tick: std::time::Duration,
    /// Most future runs materialised per deployment.
    pub schedule_max_runs: usize,
    /// How far ahead runs are materialised.
    pub schedule_horizon: std::time::Duration,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Serve HTTPS with this certificate and key (session cookies are then marked Secure).
    pub tls: Option<crate::tls::TlsFiles>,
    /// The first admin key (`weir_<12 hex>_<64 hex>`), registered when the database has no
    /// key at all: how a server in a container, whose generated key nobody could read, gets
    /// one its operator holds (e.g. an SSM SecureString injected by ECS). Otherwise the
    /// server generates one. Only its digest is stored.
    pub admin_key: Option<String>,
    /// Test hook: pretend this host's clock is off by this much (a clock step on one
    /// replica). Orchestration times come from the database's clock, so it changes nothing
    /// there.
    pub clock_skew: chrono::Duration,
    /// Days finished runs are kept in projects without their own `retain_days`
    /// (`weir server --retain-days`); `None` or 0: forever.
    pub retain_days: Option<u32>,
    /// Result storage URL to export runs to, as JSON lines, before retention deletes them.
    pub retain_export: Option<String>,
    /// How often the retention loop looks for runs past their project's window.
    pub retain_interval: std::time::Duration,
    /// Most runs deleted in one transaction (the loop adapts below it).
    pub retain_batch: u32,
    /// How notifications resolve secret references and publish to SNS.
    pub notify: crate::notify::Hooks,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            database_url: "sqlite://.weir/weir.db".into(),
            bind: "127.0.0.1:4200".into(),
            lease: std::time::Duration::from_secs(30),
            late_after: std::time::Duration::from_secs(30),
            tick: std::time::Duration::from_secs(1),
            schedule_max_runs: 10,
            schedule_horizon: std::time::Duration::from_secs(7 * 86400),
            max_body_bytes: 16 * 1024 * 1024,
            tls: None,
            admin_key: None,
            clock_skew: chrono::Duration::zero(),
            retain_days: None,
            retain_export: None,
            retain_interval: std::time::Duration::from_secs(300),
            retain_batch: 500,
            notify: crate::notify::Hooks::default(),
        }
    }
}

/// State shared by every handler and background loop; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The one store every handler and loop shares (its pools are cheap to clone).
    pub store: Store,
    /// The settings the server was started with; fixed for its lifetime.
    pub options: Arc<Options>,
    /// Woken when a run may have become claimable (created, retried), so long-polling
    /// agents claim it at once.
    pub(crate) work: Arc<Notify>,
    /// Bumped whenever log lines or states are written, so streams wake up.
    pub(crate) activity: Arc<watch::Sender<u64>>,
    /// Key that signs run tokens and UI sessions (shared by replicas through the database).
    pub(crate) run_secret: Arc<Vec<u8>>,
    /// When this server started: the crash detector gives agents one lease from then to
    /// heartbeat again before it reads an expired lease as a dead run.
    pub(crate) started: std::time::Instant,
    /// The database's clock, read at a moment of this host's monotonic clock (see
    /// [`AppState::now`]).
    pub(crate) clock: Arc<std::sync::Mutex<DbClock>>,
    /// Delivers notifications from the outbox.
    pub(crate) notifier: Arc<crate::notify::Notifier>,
}

impl AppState {
    /// Wraps a connected store; `secret` signs run tokens and sessions.
    pub fn new(store: Store, options: Options, secret: Vec<u8>) -> AppState {
        let notifier = Arc::new(crate::notify::Notifier::new(options.notify.clone()));
        let clock = DbClock::new(
            std::time::Instant::now(),
            chrono::Utc::now() + options.clock_skew,
        );
        AppState {
            store,
            notifier,
            options: Arc::new(options),
            work: Arc::new(Notify::new()),
            activity: Arc::new(watch::channel(0).0),
            run_secret: Arc::new(secret),
            started: std::time::Instant::now(),
            clock: Arc::new(std::sync::Mutex::new(clock)),
        }
    }

    /// Now, by the database's clock: what leases, schedules and states are dated with, so
    /// that replicas whose clocks disagree (or one whose clock was stepped) still agree on
    /// when a lease expires. The database's time read at the last tick
    /// ([`AppState::sync_clock`]) plus the time since on this host's *monotonic* clock: a step
    /// of this host's wall clock never reaches a lease or a retry's due time (it did for up to
    /// a tick, which was enough to crash every run and schedule retries an hour away).
    pub(crate) fn now(&self) -> chrono::DateTime<chrono::Utc> {
        let clock = *self.clock.lock().unwrap_or_else(|p| p.into_inner());
        clock.at(std::time::Instant::now())
    }

    /// Reads the database's clock, dated at the middle of the round trip.
    pub(crate) async fn sync_clock(&self) -> Result<(), weir_store::Error> {
        let before = std::time::Instant::now();
        let db = self.store.db_time().await?;
        let after = std::time::Instant::now();
        let read = DbClock::new(before + (after - before) / 2, db);
        *self.clock.lock().unwrap_or_else(|p| p.into_inner()) = read;
        Ok(())
    }

    /// The lease as a chrono duration.
    pub(crate) fn lease(&self) -> Duration {
        Duration::from_std(self.options.lease).unwrap_or(Duration::seconds(30))
    }

    /// Wakes agents waiting for work.
    pub(crate) fn work_available(&self) {
        self.work.notify_waiters();
        // And agents long-polling on other replicas (PostgreSQL NOTIFY; nothing on SQLite).
        if self.store.dialect() == weir_store::Dialect::Postgres {
            let store = self.store.clone();
            tokio::spawn(async move {
                if let Err(error) = store.notify_work().await {
                    tracing::debug!(message = "work notification not sent", %error);
                }
            });
        }
    }

    /// A counter bumped at every write of states or log lines (see [`AppState::touched`]):
    /// unchanged over a while means the server was idle.
    pub fn activity(&self) -> u64 {
        *self.activity.borrow()
    }

    /// Wakes log and state streams.
    pub(crate) fn touched(&self) {
        self.activity.send_modify(|n| *n = n.wrapping_add(1));
    }
}

/// The database's clock as this replica knows it: its time at one moment of the monotonic
/// clock, carried forward by the monotonic clock alone.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DbClock {
    read_at: std::time::Instant,
    db: chrono::DateTime<chrono::Utc>,
}

impl DbClock {
    /// The database said `db` at `read_at`.
    pub(crate) fn new(read_at: std::time::Instant, db: chrono::DateTime<chrono::Utc>) -> Self {
        DbClock { read_at, db }
    }

    /// The database's time at `instant`.
    pub(crate) fn at(&self, instant: std::time::Instant) -> chrono::DateTime<chrono::Utc> {
        match instant.checked_duration_since(self.read_at) {
            Some(d) => self.db + Duration::from_std(d).unwrap_or(Duration::zero()),
            None => {
                let back = self.read_at.duration_since(instant);
                self.db - Duration::from_std(back).unwrap_or(Duration::zero())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_clock_moves_with_the_monotonic_clock_only() {
        let t0 = std::time::Instant::now();
        let db = chrono::Utc::now() - Duration::hours(3);
        let c = DbClock::new(t0, db);
        let later = t0 + std::time::Duration::from_millis(1500);
        assert_eq!(c.at(later), db + Duration::milliseconds(1500));
        assert_eq!(c.at(t0), db);
    }
}
