//! How often whoever holds a run's lease heartbeats it (the agent for the runs it launched,
//! a flow process for its own run, `weir exec`): the one cadence every holder follows, so no
//! lease lapses while its holder lives, whatever lease the server runs with.
//!
//! Each heartbeat reply states the server's lease (`lease_s`); the holder then beats at least
//! three times per lease, at most every `longest` (its own setting, 5 s by default) and never
//! more often than [`MIN_INTERVAL`].

use std::time::Duration;

/// Heartbeats never come more often than this, however short the lease.
pub const MIN_INTERVAL: Duration = Duration::from_millis(100);

/// The wait before the next heartbeat for a server whose lease is `lease_s` seconds (0: not
/// known yet, so `longest`).
pub fn interval(longest: Duration, lease_s: u64) -> Duration {
    if lease_s == 0 {
        return longest;
    }
    longest
        .min(Duration::from_secs(lease_s) / 3)
        .max(MIN_INTERVAL)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_beats_per_lease_at_most_every_longest() {
        let five = Duration::from_secs(5);
        assert_eq!(interval(five, 0), five);
        assert_eq!(interval(five, 30), five);
        assert_eq!(interval(five, 6), Duration::from_secs(2));
        assert_eq!(interval(five, 1), Duration::from_secs(1) / 3);
        assert_eq!(interval(Duration::from_millis(10), 30), MIN_INTERVAL);
    }
}
