//! Heartbeats and leases: renewing the leases of the runs the agent holds, carrying out the
//! cancellations and losses the server answers with, confirming a late claim's lease before
//! its launch, and fencing (stopping a run whose lease could not be renewed, see
//! [`crate::fence`]).

use super::{Shared, lock};
use crate::launcher::Canceller;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;
use uuid::Uuid;
use weir_core::api::{FlowRun, HeartbeatReply, HeldRun};
use weir_core::contract::heartbeat;

/// Most heartbeats waiting for their answers at once.
const IN_FLIGHT: usize = 3;

/// How soon the next heartbeat goes out while the last one got no answer.
const RETRY_SOON: Duration = Duration::from_millis(250);

/// A heartbeat's answer (or its absence), with what it was sent for.
struct Answered {
    /// When it was sent, on the fence's clock.
    sent: u64,
    runs: Vec<HeldRun>,
    /// `None`: no answer while it could still renew anything.
    reply: Option<Result<HeartbeatReply, weir_client::Error>>,
}

/// How long a heartbeat's answer is waited for: while it can still renew a lease before the
/// fence trips ([`crate::fence::FENCE_FRACTION`] of it), at least one interval. An answer
/// renews the leases it names as of its *sending*, however late it arrives: a server slow to
/// answer under load (a busy writer, a slow database) keeps renewing them, and giving up on its
/// answers after one interval made the fence stop healthy runs.
pub(super) fn answer_useful_for(lease: Duration, interval: Duration) -> Duration {
    lease
        .mul_f64(crate::fence::FENCE_FRACTION)
        .max(interval)
        .max(Duration::from_millis(500))
}

/// Heartbeats the runs the agent holds, for as long as it runs: on the cadence, at most
/// [`IN_FLIGHT`] waiting for their answers at once (so a lost one, in a partition, never holds
/// contact up), and at once when runs were claimed (a claim's lease is dated from when its
/// request was sent, so on a slow link waiting for the cadence left its first renewal too late).
pub(super) async fn heartbeat_loop(sh: Arc<Shared>, me: Uuid) {
    // Heartbeat at the one cadence (`weir_core::contract::heartbeat`), whatever the server's
    // lease is. `steady`: the interval while the server answers; `every`: the next wait (shorter
    // while it does not, so contact is back as soon as possible).
    let mut steady = sh.options.heartbeat_every;
    let mut every = steady;
    let mut next = tokio::time::Instant::now() + every;
    let mut in_flight: JoinSet<Answered> = JoinSet::new();
    loop {
        tokio::select! {
            () = tokio::time::sleep_until(next) => {
                if in_flight.len() < IN_FLIGHT {
                    send(&sh, me, steady, &mut in_flight);
                }
                next = tokio::time::Instant::now() + every;
            }
            () = sh.claimed.notified() => {
                if in_flight.len() < IN_FLIGHT {
                    send(&sh, me, steady, &mut in_flight);
                    next = tokio::time::Instant::now() + every;
                }
            }
            Some(done) = in_flight.join_next() => {
                let Ok(done) = done else { continue };
                match done.reply {
                    Some(Ok(reply)) => {
                        sh.fence.learn_lease(reply.lease_s);
                        renewed(&sh, &done.runs, &reply.lost, done.sent);
                        if reply.lease_s > 0 {
                            steady = heartbeat::interval(sh.options.heartbeat_every, reply.lease_s);
                        }
                        every = steady;
                        let stop = cancel_or_mark_lost(&sh, &reply);
                        stop_lost(&sh, stop).await;
                    }
                    Some(Err(error)) => {
                        tracing::warn!(message = "heartbeat failed", %error);
                        every = RETRY_SOON;
                        next = next.min(tokio::time::Instant::now() + every);
                    }
                    None => {
                        tracing::warn!(message = "heartbeat got no answer while it could still renew the leases");
                        // Try again soon: the lease is running out (see `crate::fence`).
                        every = RETRY_SOON;
                        next = next.min(tokio::time::Instant::now() + every);
                    }
                }
            }
        }
    }
}

/// Sends one heartbeat for every run held now, in the background.
fn send(sh: &Arc<Shared>, me: Uuid, interval: Duration, in_flight: &mut JoinSet<Answered>) {
    let runs: Vec<HeldRun> = lock(sh)
        .iter()
        .map(|(id, h)| HeldRun {
            id: *id,
            attempt: h.attempt,
        })
        .collect();
    let sent = sh.fence.now();
    let wait = answer_useful_for(sh.fence.lease(), interval);
    let sh = sh.clone();
    in_flight.spawn(async move {
        let hb = weir_core::api::Heartbeat { runs: runs.clone() };
        let reply = tokio::time::timeout(wait, sh.client.agent_heartbeat(me, &hb))
            .await
            .ok();
        Answered { sent, runs, reply }
    });
}

/// A lost attempt to stop: run, attempt and its canceller.
type Lost = (Uuid, u32, Option<Canceller>);

/// Cancels the held runs whose cancellation the heartbeat's `reply` asks for, and marks those
/// it says are lost; returns the lost ones to stop.
fn cancel_or_mark_lost(sh: &Shared, reply: &HeartbeatReply) -> Vec<Lost> {
    let mut stop = Vec::new();
    let mut held = lock(sh);
    for id in reply.cancel.iter().chain(reply.lost.iter()) {
        if let Some(h) = held.get_mut(id)
            && !h.cancelling
        {
            let lost = reply.lost.contains(id);
            // A process that already wrote its final state ended this attempt
            // itself (a failure the server turned into a retry): it is exiting,
            // and stopping it would only make it say it was cancelled.
            let reported = crate::outcome::path(&sh.options.state_dir, *id, h.attempt).exists();
            if lost && reported {
                continue;
            }
            h.cancelling = true;
            h.lost |= lost;
            if lost {
                stop.push((*id, h.attempt, h.cancel.clone()));
            } else {
                tracing::info!(message = "cancelling run", run = %id);
                if let Some(c) = &h.cancel {
                    c.cancel(sh.options.cancel_grace);
                }
            }
        }
    }
    stop
}

/// Stops the processes of lost attempts, except those whose flow reported its end (stopped
/// only if still there after the cancel grace).
async fn stop_lost(sh: &Arc<Shared>, stop: Vec<Lost>) {
    for (id, attempt, cancel) in stop {
        let (what, exiting) = describe_lost(sh, id, attempt).await;
        if exiting {
            // An ECS task or container whose flow reported its end is about to
            // stop by itself: stop it only if it is still there after the grace.
            stop_unless_gone(sh, id, attempt, cancel);
            continue;
        }
        tracing::info!(message = "stopping the run's process", run = %id, reason = %what);
        if let Some(c) = cancel {
            c.cancel(sh.options.cancel_grace);
        }
    }
}

/// Records that the heartbeat sent at `sent` renewed the leases of `runs`, except those the
/// server answered as `lost`.
fn renewed(sh: &Shared, runs: &[HeldRun], lost: &[Uuid], sent: u64) {
    let mut held = lock(sh);
    for r in runs.iter().filter(|r| !lost.contains(&r.id)) {
        if let Some(h) = held.get_mut(&r.id)
            && h.attempt == r.attempt
        {
            h.renewed = h.renewed.max(sent);
        }
    }
}

/// Stops each launched run whose lease has gone unrenewed for most of a lease (see
/// [`crate::fence`]).
pub(super) async fn fence_loop(sh: Arc<Shared>) {
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut held = lock(&sh);
        for (id, h) in held.iter_mut().filter(|(_, h)| !h.fenced) {
            let Some(silent) = sh.fence.tripped(h.renewed) else {
                continue;
            };
            let Some(c) = &h.cancel else { continue };
            h.fenced = true;
            tracing::warn!(
                message = "lease not renewed for most of its length: stopping the run so that no other attempt can overlap it (fencing)",
                run = %id,
                attempt = h.attempt,
                silent_ms = silent.as_millis() as u64,
                lease_s = sh.fence.lease().as_secs()
            );
            c.cancel(Duration::ZERO);
        }
    }
}

/// What became of a run whose attempt the agent lost, in words (its state now, and for a
/// retry when it is due), and whether that attempt ended with its process's own report
/// ([`weir_core::why::ended_by_its_process`]).
async fn describe_lost(sh: &Shared, id: Uuid, attempt: u32) -> (String, bool) {
    match sh.client.flow_run(id).await {
        Ok(d) => (
            weir_core::why::after_attempt((&d.run).into(), attempt),
            weir_core::why::ended_by_its_process((&d.run).into(), attempt),
        ),
        Err(e) => (
            format!("attempt {attempt} is over (the run could not be read: {e})"),
            false,
        ),
    }
}

/// Stops attempt `attempt` of run `id` if the agent still holds it once the cancel grace has
/// passed (a process that reported its end but did not exit).
fn stop_unless_gone(sh: &Arc<Shared>, id: Uuid, attempt: u32, cancel: Option<Canceller>) {
    let sh = sh.clone();
    tokio::spawn(async move {
        tokio::time::sleep(sh.options.cancel_grace).await;
        let held = lock(&sh).get(&id).is_some_and(|h| h.attempt == attempt);
        if held && let Some(c) = cancel {
            tracing::info!(message = "stopping the run's process", run = %id, reason = "it reported its end but did not exit within the cancel grace");
            c.cancel(sh.options.cancel_grace);
        }
    });
}

/// Whether run `run` may be launched now: its lease is fresh (see [`crate::fence`]), or a
/// heartbeat renewed it. False when the server no longer hands it to this agent (a claim
/// answer held up until after its lease expired), or when no renewal got through for two
/// leases; the run is then left to the crash detector, unlaunched.
pub(super) async fn lease_confirmed(sh: &Shared, me: Uuid, run: &FlowRun) -> bool {
    let mut warned = false;
    loop {
        let Some((renewed, lost)) = lock(sh).get(&run.id).map(|h| (h.renewed, h.lost)) else {
            return false;
        };
        if lost {
            tracing::warn!(message = "not launching: the server no longer hands this run to this agent", run = %run.id, attempt = run.attempt);
            return false;
        }
        if sh.fence.fresh_for_launch(renewed) {
            return true;
        }
        let lease = sh.fence.lease();
        if sh.fence.now().saturating_sub(renewed) > 2 * lease.as_millis() as u64 {
            tracing::warn!(message = "not launching: its lease could not be renewed", run = %run.id, attempt = run.attempt);
            return false;
        }
        if !warned {
            tracing::info!(message = "the claim's answer came late; renewing the lease before launching", run = %run.id, attempt = run.attempt);
            warned = true;
        }
        renew_one(sh, me, run, lease).await;
    }
}

/// Heartbeats run `run` alone, bounded by a third of the `lease`: marks it lost if the server
/// says so, renewed if it answers otherwise; on no answer waits a little before the caller
/// looks again.
async fn renew_one(sh: &Shared, me: Uuid, run: &FlowRun, lease: Duration) {
    let held = [HeldRun {
        id: run.id,
        attempt: run.attempt,
    }];
    let sent = sh.fence.now();
    // Waited for as long as it can vouch for the lease: a slow answer renews it as well.
    let answer = tokio::time::timeout(
        answer_useful_for(lease, lease / 3),
        sh.client.agent_heartbeat(
            me,
            &weir_core::api::Heartbeat {
                runs: held.to_vec(),
            },
        ),
    )
    .await;
    match answer {
        Ok(Ok(reply)) => {
            sh.fence.learn_lease(reply.lease_s);
            if reply.lost.contains(&run.id) {
                if let Some(h) = lock(sh).get_mut(&run.id) {
                    h.lost = true;
                }
            } else {
                renewed(sh, &held, &[], sent);
            }
        }
        _ => tokio::time::sleep(Duration::from_millis(250)).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression (#10): with a 4 s lease and a 1 s interval, an answer was given up on after
    /// the interval, so a server answering in 1.2 s renewed every lease while its agent counted
    /// none and fenced healthy runs 3.4 s in.
    #[test]
    fn an_answer_is_waited_for_while_it_can_still_renew_a_lease() {
        let (lease, interval) = (Duration::from_secs(4), Duration::from_secs(1));
        assert_eq!(
            answer_useful_for(lease, interval),
            Duration::from_millis(3400)
        );
        assert_eq!(answer_useful_for(Duration::ZERO, interval), interval);
        assert_eq!(
            answer_useful_for(Duration::ZERO, Duration::from_millis(100)),
            Duration::from_millis(500)
        );
    }
}
