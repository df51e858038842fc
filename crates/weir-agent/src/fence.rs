//! Fencing: an attempt whose lease this agent could not renew is stopped before the lease
//! can run out, so that no other attempt of the run — claimed by another agent once the
//! server's crash detector has given up on this one — ever runs at the same time.
//!
//! The server extends a run's lease from the moment it handles a heartbeat, on the
//! database's clock; this agent cannot see that clock, but it knows when it *sent* its last
//! heartbeat that was answered, and that moment is no later than the server's. So every
//! lease it holds lasts at least until `last answered send + lease`. When it has had no
//! answer for [`FENCE_FRACTION`] of a lease (a partition, a server or database outage), it
//! stops every run it holds at once (SIGKILL: a stale attempt gets no chance to report
//! anything as the current one), and later reports them Crashed with the reason, if the
//! server still counts them as current. The stale attempt's own reports are refused by the
//! server anyway (its attempt number and run token are no longer current).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Share of the lease after which an agent without answers stops its runs (the rest is
/// margin for the kill itself and for heartbeats in flight).
pub const FENCE_FRACTION: f64 = 0.85;

/// When this agent last heard back from the server, and the lease the server announced.
#[derive(Debug)]
pub struct Fence {
    origin: Instant,
    last_answered_send_ms: AtomicU64,
    lease_ms: AtomicU64,
}

impl Fence {
    /// A fence counting from now; it never trips before a lease is known.
    pub fn new() -> Fence {
        Fence {
            origin: Instant::now(),
            last_answered_send_ms: AtomicU64::new(0),
            lease_ms: AtomicU64::new(0),
        }
    }

    /// The current moment, to pass to [`Fence::answered`] once the request sent now is
    /// answered.
    pub fn now(&self) -> u64 {
        self.origin.elapsed().as_millis() as u64
    }

    /// A heartbeat sent at `sent` (from [`Fence::now`]) was answered; the server's lease is
    /// `lease_s` seconds.
    pub fn answered(&self, sent: u64, lease_s: u64) {
        self.last_answered_send_ms.fetch_max(sent, Ordering::SeqCst);
        if lease_s > 0 {
            self.lease_ms.store(lease_s * 1000, Ordering::SeqCst);
        }
    }

    /// How long the server has been silent, when that is long enough that held leases may
    /// be about to run out; `None` while they are safe.
    pub fn tripped(&self) -> Option<Duration> {
        let lease = self.lease_ms.load(Ordering::SeqCst);
        if lease == 0 {
            return None;
        }
        let silent = self
            .now()
            .saturating_sub(self.last_answered_send_ms.load(Ordering::SeqCst));
        (silent as f64 >= lease as f64 * FENCE_FRACTION).then(|| Duration::from_millis(silent))
    }

    /// The lease last announced by the server.
    pub fn lease(&self) -> Duration {
        Duration::from_millis(self.lease_ms.load(Ordering::SeqCst))
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
    fn trips_only_after_most_of_a_known_lease_without_answers() {
        let f = Fence::new();
        assert_eq!(f.tripped(), None, "no lease known yet");
        f.answered(f.now(), 1);
        assert_eq!(f.tripped(), None, "just answered");
        std::thread::sleep(Duration::from_millis(900));
        assert!(
            f.tripped().is_some(),
            "750 ms of a 1 s lease without an answer"
        );
        f.answered(f.now(), 1);
        assert_eq!(f.tripped(), None, "answered again");
    }

    #[test]
    fn an_older_answer_never_moves_the_fence_back() {
        let f = Fence::new();
        let early = f.now();
        std::thread::sleep(Duration::from_millis(20));
        f.answered(f.now(), 10);
        let later = f.last_answered_send_ms.load(Ordering::SeqCst);
        f.answered(early, 10);
        assert_eq!(f.last_answered_send_ms.load(Ordering::SeqCst), later);
    }
}
