//! Fencing: an attempt whose lease this agent could not renew is stopped before the lease
//! can run out, so that no other attempt of the run — claimed by another agent once the
//! server's crash detector has given up on this one — ever runs at the same time.
//!
//! The server dates a run's lease from the moment it handles a claim or a heartbeat, on the
//! database's clock; this agent cannot see that clock, but it knows, on its own monotonic
//! clock, a moment no later than the server's: when it *sent* the heartbeat that was
//! answered, or, for a claim, when it sent the claim request plus how long the server says
//! it held the request before claiming (`ClaimedRun::claimed_after_ms`: a long-poll). So each
//! lease it holds lasts at least until that moment (the run's `renewed`) plus the lease.
//!
//! - Once [`FENCE_FRACTION`] of a lease has passed since a run's `renewed` (a partition, a
//!   server or database outage), the agent stops that run at once (SIGKILL: a stale attempt
//!   gets no chance to report anything as the current one), and later reports it Crashed
//!   with the reason, if the server still counts it as current.
//! - A run is launched only while less than [`LAUNCH_FRACTION`] of its lease has passed; a
//!   claim whose answer arrived later (held up by a partition: the server may already have
//!   given the run to someone else) is first confirmed by a heartbeat, and dropped unlaunched
//!   when the server no longer has it.
//!
//! The stale attempt's own reports are refused by the server anyway (its attempt number and
//! run token are no longer current).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Share of the lease after which a run whose lease was not renewed is stopped (the rest is
/// margin for the kill itself and for the server's crash detector tick).
pub const FENCE_FRACTION: f64 = 0.85;

/// Share of the lease after which a claimed run is not launched without a fresh renewal.
pub const LAUNCH_FRACTION: f64 = 0.5;

/// The agent's monotonic clock for leases, and the lease the server announced.
#[derive(Debug)]
pub struct Fence {
    origin: Instant,
    lease_ms: AtomicU64,
}

impl Fence {
    /// A fence counting from now; it never trips before a lease is known.
    pub fn new() -> Fence {
        Fence {
            origin: Instant::now(),
            lease_ms: AtomicU64::new(0),
        }
    }

    /// The current moment, in milliseconds of this fence's monotonic clock.
    pub fn now(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// The server announced a lease of `lease_s` seconds (0: not said).
    pub fn learn_lease(&self, lease_s: u64) {
        if lease_s > 0 {
            self.lease_ms
                .store(lease_s.saturating_mul(1000), Ordering::SeqCst);
        }
    }

    /// The lease last announced by the server.
    pub fn lease(&self) -> Duration {
        Duration::from_millis(self.lease_ms.load(Ordering::SeqCst))
    }

    /// The moment (on this clock) a claim's lease started at the latest: the request was
    /// sent at `sent` and the server claimed the run `claimed_after_ms` after receiving it.
    pub fn claimed_at(&self, sent: u64, claimed_after_ms: u64) -> u64 {
        sent.saturating_add(claimed_after_ms).min(self.now())
    }

    /// How long since `renewed` (when a run's lease was last renewed at the latest), when
    /// that is long enough that the lease may be about to run out; `None` while it is safe.
    pub fn tripped(&self, renewed: u64) -> Option<Duration> {
        self.past(renewed, FENCE_FRACTION)
    }

    /// Whether a run renewed at `renewed` may be launched without a fresh renewal.
    pub fn fresh_for_launch(&self, renewed: u64) -> bool {
        self.past(renewed, LAUNCH_FRACTION).is_none()
    }

    fn past(&self, renewed: u64, fraction: f64) -> Option<Duration> {
        let lease = self.lease_ms.load(Ordering::SeqCst);
        if lease == 0 {
            return None;
        }
        let silent = self.now().saturating_sub(renewed);
        (silent as f64 >= lease as f64 * fraction).then(|| Duration::from_millis(silent))
    }
}

impl Default for Fence {
    fn default() -> Self {
        Fence::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trips_only_after_most_of_a_known_lease_without_renewal() {
        let f = Fence::new();
        let renewed = f.now();
        assert_eq!(f.tripped(renewed), None, "no lease known yet");
        f.learn_lease(1);
        assert_eq!(f.tripped(renewed), None, "just renewed");
        std::thread::sleep(Duration::from_millis(900));
        assert!(
            f.tripped(renewed).is_some(),
            "850 ms of a 1 s lease without a renewal"
        );
        assert_eq!(f.tripped(f.now()), None, "renewed again");
    }

    /// Regression (#10, `partition_long`): a claim answered during a partition reached the
    /// agent only when the partition healed, after the server had expired its lease and
    /// handed the run to another agent; it was launched beside attempt 2. Its lease counts
    /// from the claim, not from the answer's arrival.
    #[test]
    fn a_claim_answered_late_is_not_fresh_for_launch() {
        let f = Fence::new();
        f.learn_lease(1);
        let sent = f.now();
        assert!(
            f.fresh_for_launch(f.claimed_at(sent, 0)),
            "answered at once"
        );
        std::thread::sleep(Duration::from_millis(600));
        assert!(
            !f.fresh_for_launch(f.claimed_at(sent, 0)),
            "claimed at once but answered 600 ms later: more than half the lease is gone"
        );
        assert!(
            f.fresh_for_launch(f.claimed_at(sent, 550)),
            "a long-poll that claimed 550 ms after the request: its lease starts then"
        );
    }

    #[test]
    fn a_claim_never_counts_from_later_than_now() {
        let f = Fence::new();
        assert!(f.claimed_at(f.now(), 10_000) <= f.now());
    }
}
