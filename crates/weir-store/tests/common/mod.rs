//! What every store test file shares: each `async fn case_x(store: Store)` runs against both
//! backends — an SQLite file in a temporary directory and a fresh database on a real
//! PostgreSQL server (see `weir-testkit` and `scripts/test-postgres.sh`).

#![allow(dead_code)]

use chrono::{TimeZone, Utc};
use weir_core::Timestamp;
use weir_store::Store;
use weir_testkit::TestDb;

/// Writes `#[tokio::test] sqlite_x` and `postgres_x` for each `case_x`.
macro_rules! both_backends {
    ($($case:ident => $sqlite:ident, $postgres:ident;)*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $sqlite() {
            if let Some(db) = weir_testkit::TestDb::new(weir_testkit::Backend::Sqlite, stringify!($sqlite)).await {
                $case(common::connect(&db).await).await;
            }
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $postgres() {
            if let Some(db) = weir_testkit::TestDb::new(weir_testkit::Backend::Postgres, stringify!($postgres)).await {
                $case(common::connect(&db).await).await;
            }
        }
    )*};
}

/// Opens the store of a test database (panics naming its URL when it cannot).
pub async fn connect(db: &TestDb) -> Store {
    match Store::connect(&db.url).await {
        Ok(s) => s,
        Err(e) => panic!("cannot open {}: {e}", db.url),
    }
}

/// The current time at the stores' precision (microseconds), so values round-trip exactly.
pub fn now() -> Timestamp {
    micros(Utc::now())
}

/// `t` truncated to microseconds.
pub fn micros(t: Timestamp) -> Timestamp {
    Utc.timestamp_micros(t.timestamp_micros())
        .single()
        .expect("in range")
}
