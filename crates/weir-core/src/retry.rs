//! Retry policy: how many times, and how long to wait between attempts.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// How a task or flow run is retried after a failure.
///
/// The delay before retry `n` (1-based) is `delay * backoff^(n-1)`, capped at `max_delay`, then
/// spread by up to ±`jitter` (a fraction, 0.0–1.0) so that many failing runs do not retry in
/// lock-step.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RetryPolicy {
    /// Retries after the first attempt; 0 means "run once".
    pub retries: u32,
    /// Delay before the first retry.
    #[serde(with = "duration_ms")]
    pub delay: Duration,
    /// Multiplier applied to the delay for each further retry (1.0 = constant delay).
    pub backoff: f64,
    /// Upper bound on any single delay.
    #[serde(with = "duration_ms")]
    pub max_delay: Duration,
    /// Relative random spread of each delay, 0.0–1.0.
    pub jitter: f64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            retries: 0,
            delay: Duration::ZERO,
            backoff: 2.0,
            max_delay: Duration::from_secs(3600),
            jitter: 0.0,
        }
    }
}

impl RetryPolicy {
    /// A policy with `retries` retries and a constant `delay`.
    pub fn constant(retries: u32, delay: Duration) -> Self {
        RetryPolicy {
            retries,
            delay,
            backoff: 1.0,
            ..Default::default()
        }
    }

    /// Whether another attempt is allowed after `attempts_made` attempts (the first run counts).
    pub fn allows_another(&self, attempts_made: u32) -> bool {
        attempts_made <= self.retries
    }

    /// The delay before retry number `retry` (1 for the first retry).
    ///
    /// `unit_random` is a number in `[0, 1)` supplied by the caller, so that this stays pure and
    /// testable; 0.5 means "no jitter".
    pub fn delay_for(&self, retry: u32, unit_random: f64) -> Duration {
        let exp = retry.saturating_sub(1).min(64) as i32;
        let base = self.delay.as_secs_f64() * self.backoff.max(1.0).powi(exp);
        let capped = base.min(self.max_delay.as_secs_f64());
        let jitter = self.jitter.clamp(0.0, 1.0);
        let factor = 1.0 + jitter * (unit_random.clamp(0.0, 1.0) * 2.0 - 1.0);
        Duration::from_secs_f64((capped * factor).max(0.0))
    }
}

/// Parses durations such as `500ms`, `2s`, `5m`, `1h`, `90d` or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let value: f64 = num
        .parse()
        .map_err(|_| format!("invalid duration {text:?}: expected e.g. 500ms, 2s, 5m, 1h, 7d"))?;
    let secs = match unit.trim() {
        "" | "s" | "sec" | "secs" => value,
        "ms" => value / 1000.0,
        "m" | "min" | "mins" => value * 60.0,
        "h" => value * 3600.0,
        "d" => value * 86400.0,
        other => {
            return Err(format!(
                "invalid duration {text:?}: unknown unit {other:?} (use ms, s, m, h or d)"
            ));
        }
    };
    if !secs.is_finite() || !(0.0..=1e10).contains(&secs) {
        return Err(format!("invalid duration {text:?}: out of range"));
    }
    Ok(Duration::from_secs_f64(secs))
}

mod duration_ms {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exponential_backoff_is_capped() {
        let p = RetryPolicy {
            retries: 5,
            delay: Duration::from_secs(1),
            backoff: 2.0,
            max_delay: Duration::from_secs(5),
            jitter: 0.0,
        };
        let d: Vec<u64> = (1..=5).map(|n| p.delay_for(n, 0.5).as_secs()).collect();
        assert_eq!(d, vec![1, 2, 4, 5, 5]);
    }

    #[test]
    fn jitter_stays_within_bounds() {
        let p = RetryPolicy {
            jitter: 0.5,
            ..RetryPolicy::constant(3, Duration::from_secs(10))
        };
        assert_eq!(p.delay_for(1, 0.0), Duration::from_secs(5));
        assert_eq!(p.delay_for(1, 1.0), Duration::from_secs(15));
        assert_eq!(p.delay_for(1, 0.5), Duration::from_secs(10));
    }

    #[test]
    fn attempts_allowed() {
        let p = RetryPolicy::constant(2, Duration::ZERO);
        assert!(p.allows_another(1));
        assert!(p.allows_another(2));
        assert!(!p.allows_another(3));
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("90d"), Ok(Duration::from_secs(90 * 86400)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("2 weeks").is_err_and(|e| e.contains("unknown unit")));
        assert!(parse_duration("fast").is_err());
    }
}
