//! The database's clock: one time for every replica.

use crate::{Dialect, Result, Store};

impl Store {
    /// The database's clock (PostgreSQL's `clock_timestamp()`), so every replica dates
    /// leases and states alike whatever its own clock says. On SQLite the database is a file
    /// of the one server, whose clock this is.
    pub async fn db_time(&self) -> Result<weir_core::Timestamp> {
        if self.dialect != Dialect::Postgres {
            return Ok(chrono::Utc::now());
        }
        let us: i64 = sqlx::Row::try_get(
            &sqlx::query(
                "SELECT CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000000 AS BIGINT) AS us",
            )
            .fetch_one(&self.read)
            .await?,
            "us",
        )?;
        crate::codec::time_of("clock_timestamp()", us)
    }
}
