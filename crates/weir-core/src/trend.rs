//! How the UI summarises a deployment's history: its success rate over a window, and the
//! durations of its last runs.
//!
//! A run *succeeded* when it ended Completed and *failed* when it ended in a failure state
//! ([`StateKind::is_failure`]: Failed, Crashed). Cancelled runs are neither: someone stopped
//! them, so they say nothing about the flow, and they are left out of the rate (and shown
//! beside it).

use crate::StateKind;
use std::collections::BTreeMap;

/// The outcome counts of a deployment's runs that ended in a window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Outcomes {
    /// Ended Completed.
    pub succeeded: u64,
    /// Ended Failed or Crashed.
    pub failed: u64,
    /// Ended Cancelled (not in the rate).
    pub cancelled: u64,
}

impl Outcomes {
    /// The outcomes among runs counted by their final state (other states are ignored).
    pub fn of(counts: &BTreeMap<StateKind, u64>) -> Outcomes {
        let mut o = Outcomes::default();
        for (state, n) in counts {
            match state {
                StateKind::Completed => o.succeeded += n,
                s if s.is_failure() => o.failed += n,
                StateKind::Cancelled => o.cancelled += n,
                _ => {}
            }
        }
        o
    }

    /// Runs that count in the rate.
    pub fn decided(&self) -> u64 {
        self.succeeded + self.failed
    }

    /// The share of decided runs that succeeded (0–1), or `None` when none ended.
    pub fn success_rate(&self) -> Option<f64> {
        let n = self.decided();
        (n > 0).then(|| self.succeeded as f64 / n as f64)
    }
}

/// The nearest-rank median of `seconds` (`None` when empty).
pub fn median(seconds: &[f64]) -> Option<f64> {
    if seconds.is_empty() {
        return None;
    }
    let mut s = seconds.to_vec();
    s.sort_by(f64::total_cmp);
    Some(s[(s.len() - 1) / 2])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cancelled_runs_are_not_in_the_rate() {
        let counts = BTreeMap::from([
            (StateKind::Completed, 6),
            (StateKind::Failed, 1),
            (StateKind::Crashed, 1),
            (StateKind::Cancelled, 5),
            (StateKind::Running, 3),
        ]);
        let o = Outcomes::of(&counts);
        assert_eq!(
            o,
            Outcomes {
                succeeded: 6,
                failed: 2,
                cancelled: 5
            }
        );
        assert_eq!(o.success_rate(), Some(0.75));
        assert_eq!(Outcomes::of(&BTreeMap::new()).success_rate(), None);
        let only_cancelled = BTreeMap::from([(StateKind::Cancelled, 2)]);
        assert_eq!(Outcomes::of(&only_cancelled).success_rate(), None);
    }

    #[test]
    fn median_is_the_lower_middle() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0]), Some(3.0));
        assert_eq!(median(&[5.0, 1.0, 3.0]), Some(3.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.0));
    }
}
