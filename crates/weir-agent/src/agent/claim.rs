//! Registering with the server, and the claiming loop: long-poll claims while the agent has
//! free slots, and hand each claimed run to [`super::supervise`].

use super::{Error, Shared, held_count, supervise};
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;
use weir_core::api::RegisterAgent;

/// Registers the agent (its queues, limit and launcher kinds), retrying for a while when the
/// server is not reachable yet; its id.
pub(super) async fn register(sh: &Shared) -> Result<Uuid, Error> {
    let req = RegisterAgent {
        name: sh.options.name.clone(),
        queues: sh.options.queues.clone(),
        limit: sh.options.limit,
        launchers: sh.launchers.keys().copied().collect(),
    };
    let mut wait = Duration::from_millis(200);
    for _ in 0..10 {
        match sh.client.register_agent(&req).await {
            Ok(a) => return Ok(a.id),
            Err(e) if e.is_transient() => {
                tracing::warn!(message = "server not reachable yet; retrying", error = %e);
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(3));
            }
            Err(e) => return Err(Error::Register(e)),
        }
    }
    sh.client
        .register_agent(&req)
        .await
        .map(|a| a.id)
        .map_err(Error::Register)
}

/// Claims runs for agent `me` and starts supervising them until `shutdown` resolves: waits
/// while every slot is taken, and backs off (up to 5 s) while claims fail.
pub(super) async fn claim_until(
    sh: &Arc<Shared>,
    me: Uuid,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let mut backoff = Duration::from_millis(200);
    loop {
        let free = sh.options.limit.saturating_sub(held_count(sh));
        if free == 0 {
            tokio::select! {
                _ = sh.slot_freed.notified() => continue,
                _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                _ = &mut shutdown => break,
            }
        }
        let sent = sh.fence.now();
        let claim = sh.client.claim(me, free, sh.options.poll_wait);
        let claimed = tokio::select! {
            r = claim => r,
            _ = &mut shutdown => break,
        };
        match claimed {
            Ok(runs) => {
                backoff = Duration::from_millis(200);
                let any = !runs.is_empty();
                for c in runs {
                    sh.fence.learn_lease(c.lease_s);
                    let renewed = sh.fence.claimed_at(sent, c.claimed_after_ms);
                    supervise::start(sh, me, c, renewed);
                }
                if any {
                    sh.claimed.notify_one();
                }
            }
            Err(error) => {
                tracing::warn!(message = "claim failed; retrying", %error, retry_in_ms = backoff.as_millis() as u64);
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = &mut shutdown => break,
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}
