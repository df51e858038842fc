//! Waking long-polling agents across server replicas: PostgreSQL `LISTEN`/`NOTIFY`.
//!
//! A replica wakes its own long-polls in process when a run becomes claimable; agents
//! long-polling on another replica would only see the run at their next database poll.
//! [`Store::notify_work`] tells every replica (`NOTIFY weir_work`), and
//! [`Store::listen_work`] turns those notifications into wake-ups. SQLite has one server,
//! so both do nothing there. The listener uses sqlx's PostgreSQL driver directly (the `Any`
//! driver has no `LISTEN`); it reconnects by itself, and wakes once more after every
//! reconnect, since notifications sent while it was away are lost.

use crate::{Dialect, Result, Store};
use sqlx::postgres::PgListener;
use std::time::Duration;
use tokio::task::JoinHandle;

/// The PostgreSQL channel replicas `NOTIFY` and `LISTEN` on when a run may
/// have become claimable.
const CHANNEL: &str = "weir_work";

impl Store {
    /// Tells every replica that a run may have become claimable.
    pub async fn notify_work(&self) -> Result<()> {
        if self.dialect == Dialect::Postgres {
            sqlx::query("SELECT pg_notify('weir_work', '')")
                .execute(&self.write)
                .await?;
        }
        Ok(())
    }

    /// Calls `wake` whenever any replica calls [`Store::notify_work`] (and after each
    /// (re)connect), until the returned task is aborted. `None` on SQLite.
    pub fn listen_work(&self, wake: impl Fn() + Send + Sync + 'static) -> Option<JoinHandle<()>> {
        let url = self.url.clone()?;
        Some(tokio::spawn(async move {
            loop {
                match PgListener::connect(&url).await {
                    Ok(mut listener) => match listener.listen(CHANNEL).await {
                        Ok(()) => {
                            wake();
                            loop {
                                match listener.recv().await {
                                    Ok(_) => wake(),
                                    Err(error) => {
                                        tracing::warn!(message = "work notifications lost; reconnecting", %error);
                                        break;
                                    }
                                }
                            }
                        }
                        Err(error) => {
                            tracing::warn!(message = "cannot listen for work notifications", %error)
                        }
                    },
                    Err(error) => {
                        tracing::warn!(message = "cannot connect for work notifications", %error)
                    }
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }))
    }
}
