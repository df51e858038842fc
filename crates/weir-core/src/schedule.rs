//! Schedules: cron expressions in an IANA time zone, and fixed intervals.
//!
//! Cron parsing and DST handling come from `croner`; this module adds the time zone, the
//! interval kind, and the "fire once per wall-clock time" rule the scheduler relies on.

use crate::Timestamp;
use crate::api::ScheduleSpec;
use chrono::{TimeZone, Utc};
use chrono_tz::Tz;
use std::str::FromStr;
use std::time::Duration;

/// A validated schedule, ready to compute fire times.
#[derive(Debug, Clone)]
pub enum Schedule {
    /// A cron expression evaluated in a time zone.
    Cron {
        /// The parsed expression.
        cron: Box<croner::Cron>,
        /// The time zone its fields are read in.
        tz: Tz,
    },
    /// Every `every`, aligned to `anchor`.
    Interval {
        /// The period.
        every: Duration,
        /// A fire time; all others are whole periods away from it.
        anchor: Timestamp,
    },
}

/// Why a schedule was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// The cron string does not parse.
    #[error("invalid cron expression {expr:?}: {reason}")]
    InvalidCron {
        /// The expression as given.
        expr: String,
        /// What the parser said.
        reason: String,
    },
    /// The time zone is not an IANA name.
    #[error("unknown time zone {0:?}: use an IANA name such as \"UTC\" or \"America/New_York\"")]
    InvalidTimezone(String),
    /// The interval does not parse or is too short.
    #[error("invalid interval {0:?}: use a duration of at least 1s, e.g. \"30s\", \"15m\", \"1h\"")]
    InvalidInterval(String),
    /// Neither or both of `cron` and `interval` were given.
    #[error("a schedule needs exactly one of `cron` or `interval`")]
    Ambiguous,
}

impl Schedule {
    /// Validates a schedule as written in a deployment.
    pub fn parse(spec: &ScheduleSpec) -> Result<Schedule, ScheduleError> {
        match (&spec.cron, &spec.interval) {
            (Some(expr), None) => {
                let tz_name = spec.timezone.as_deref().unwrap_or("UTC");
                let tz = Tz::from_str(tz_name)
                    .map_err(|_| ScheduleError::InvalidTimezone(tz_name.to_string()))?;
                let cron = croner::Cron::from_str(expr.trim()).map_err(|e| {
                    ScheduleError::InvalidCron {
                        expr: expr.clone(),
                        reason: e.to_string(),
                    }
                })?;
                Ok(Schedule::Cron {
                    cron: Box::new(cron),
                    tz,
                })
            }
            (None, Some(every)) => {
                if let Some(tz) = &spec.timezone {
                    Tz::from_str(tz).map_err(|_| ScheduleError::InvalidTimezone(tz.clone()))?;
                }
                let every = crate::retry::parse_duration(every)
                    .ok()
                    .filter(|d| *d >= Duration::from_secs(1))
                    .ok_or_else(|| ScheduleError::InvalidInterval(every.clone()))?;
                let anchor = spec
                    .anchor
                    .unwrap_or_else(|| Utc.timestamp_opt(0, 0).single().unwrap_or_default());
                Ok(Schedule::Interval { every, anchor })
            }
            _ => Err(ScheduleError::Ambiguous),
        }
    }

    /// The first fire time strictly after `after`, if any.
    pub fn next_after(&self, after: Timestamp) -> Option<Timestamp> {
        match self {
            Schedule::Cron { cron, tz } => {
                let local = after.with_timezone(tz);
                cron.find_next_occurrence(&local, false)
                    .ok()
                    .map(|t| t.with_timezone(&Utc))
            }
            Schedule::Interval { every, anchor } => {
                let period = i64::try_from(every.as_micros()).ok()?.max(1);
                let since = (after - *anchor).num_microseconds()?;
                let n = since.div_euclid(period) + 1;
                Some(*anchor + chrono::Duration::microseconds(n.checked_mul(period)?))
            }
        }
    }

    /// Fire times in `(after, until]`, at most `limit` of them, each distinct and increasing.
    pub fn fire_times(&self, after: Timestamp, until: Timestamp, limit: usize) -> Vec<Timestamp> {
        let mut out = Vec::new();
        let mut cursor = after;
        while out.len() < limit {
            match self.next_after(cursor) {
                Some(t) if t <= until && t > cursor => {
                    out.push(t);
                    cursor = t;
                }
                _ => break,
            }
        }
        out
    }

    /// The schedule in words, for the UI and the CLI.
    pub fn describe(&self) -> String {
        match self {
            Schedule::Cron { cron, tz } => format!("{} ({tz})", cron.describe()),
            Schedule::Interval { every, .. } => format!("every {}", humanize(*every)),
        }
    }
}

fn humanize(d: Duration) -> String {
    let s = d.as_secs();
    if s.is_multiple_of(86400) {
        format!("{}d", s / 86400)
    } else if s.is_multiple_of(3600) {
        format!("{}h", s / 3600)
    } else if s.is_multiple_of(60) {
        format!("{}m", s / 60)
    } else {
        format!("{s}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Datelike, NaiveDate, Timelike};

    fn cron(expr: &str, tz: &str) -> Schedule {
        Schedule::parse(&ScheduleSpec {
            cron: Some(expr.into()),
            timezone: Some(tz.into()),
            ..Default::default()
        })
        .expect("valid schedule")
    }

    fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> Timestamp {
        Utc.with_ymd_and_hms(y, m, d, h, min, 0)
            .single()
            .expect("valid time")
    }

    /// Fire times of `30 2 * * *` in New York over three days around a DST change, as local
    /// dates: each local day fires exactly once.
    fn local_days(s: &Schedule, from: Timestamp, to: Timestamp) -> Vec<(NaiveDate, u32, u32)> {
        let tz: Tz = "America/New_York".parse().expect("tz");
        s.fire_times(from, to, 100)
            .into_iter()
            .map(|t| {
                let l = t.with_timezone(&tz);
                (l.date_naive(), l.hour(), l.minute())
            })
            .collect()
    }

    #[test]
    fn spring_forward_fires_once() {
        // 2026-03-08: clocks jump from 02:00 to 03:00 in New York; 02:30 does not exist.
        let s = cron("30 2 * * *", "America/New_York");
        let days = local_days(&s, utc(2026, 3, 7, 0, 0), utc(2026, 3, 10, 0, 0));
        let dates: Vec<u32> = days.iter().map(|d| d.0.day()).collect();
        assert_eq!(dates, vec![7, 8, 9], "one fire per day: {days:?}");
    }

    #[test]
    fn fall_back_fires_once() {
        // 2026-11-01: clocks fall back from 02:00 to 01:00; 01:30 happens twice.
        let s = cron("30 1 * * *", "America/New_York");
        let days = local_days(&s, utc(2026, 10, 31, 0, 0), utc(2026, 11, 3, 0, 0));
        let dates: Vec<u32> = days.iter().map(|d| d.0.day()).collect();
        assert_eq!(dates, vec![31, 1, 2], "one fire per day: {days:?}");
        let s = cron("30 2 * * *", "America/New_York");
        let days = local_days(&s, utc(2026, 10, 31, 0, 0), utc(2026, 11, 3, 0, 0));
        assert_eq!(days.len(), 3, "{days:?}");
    }

    #[test]
    fn last_day_and_nth_weekday() {
        let s = cron("0 9 L * *", "UTC");
        let t = s.next_after(utc(2026, 2, 1, 0, 0)).expect("fires");
        assert_eq!((t.month(), t.day(), t.hour()), (2, 28, 9));
        // Second Tuesday of the month.
        let s = cron("0 9 * * 2#2", "UTC");
        let t = s.next_after(utc(2026, 12, 1, 0, 0)).expect("fires");
        assert_eq!((t.month(), t.day()), (12, 8));
        let s = cron("0 9-17 * * 1-5", "UTC");
        let t = s.next_after(utc(2026, 11, 28, 12, 0)).expect("fires"); // a Saturday
        assert_eq!((t.day(), t.hour()), (30, 9));
    }

    #[test]
    fn intervals_align_to_anchor() {
        let s = Schedule::parse(&ScheduleSpec {
            interval: Some("15m".into()),
            anchor: Some(utc(2026, 1, 1, 0, 5)),
            ..Default::default()
        })
        .expect("valid");
        let t = s.next_after(utc(2026, 5, 5, 10, 7)).expect("fires");
        assert_eq!((t.hour(), t.minute()), (10, 20));
        assert_eq!(
            s.fire_times(utc(2026, 5, 5, 10, 0), utc(2026, 5, 5, 11, 0), 10)
                .len(),
            4
        );
    }

    #[test]
    fn bad_schedules_name_the_problem() {
        let bad = |spec: ScheduleSpec| Schedule::parse(&spec).expect_err("must be refused");
        let e = bad(ScheduleSpec {
            cron: Some("61 * * * *".into()),
            ..Default::default()
        });
        assert!(e.to_string().contains("61 * * * *"), "{e}");
        let e = bad(ScheduleSpec {
            cron: Some("0 * * * *".into()),
            timezone: Some("Mars/Olympus".into()),
            ..Default::default()
        });
        assert!(e.to_string().contains("Mars/Olympus"), "{e}");
        assert_eq!(bad(ScheduleSpec::default()), ScheduleError::Ambiguous);
        let e = bad(ScheduleSpec {
            interval: Some("0s".into()),
            ..Default::default()
        });
        assert!(matches!(e, ScheduleError::InvalidInterval(_)));
    }
}
