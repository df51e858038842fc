//! Schedules: cron expressions in an IANA time zone, and fixed intervals — the one home of
//! when a deployment fires, used by the scheduler, `weir schedule preview`, `weir backfill`,
//! `weir deploy --plan` and the deployment page.
//!
//! Cron parsing comes from `croner`; this module adds the time zone, the interval kind, the
//! union of a deployment's schedules ([`ticks`]), how a fire time meets a DST change
//! ([`preview`]), what happens to ticks missed while no server ran ([`catchup`]), which ticks
//! a backfill window holds ([`backfill`]) and how a time typed on a command line is read
//! ([`when`]).
//!
//! # The rule for daylight-saving changes
//!
//! A cron expression is read on the wall clock of its time zone (default UTC, which has no
//! DST). Where the clocks change:
//!
//! - **A gap** (spring forward: in Europe/Berlin on the last Sunday of March, 02:00 jumps to
//!   03:00, so 02:30 never happens). An expression with one fixed second, minute and hour (a
//!   *fixed-time* expression such as `30 2 * * *`) fires once, at the first instant after the
//!   gap (03:00 CEST); the preview marks it *moved*. An expression with a wildcard, step,
//!   range or list in those fields (`*/15 * * * *`, `0 * * * *`, `0 1,2 * * *`) skips the
//!   times that do not exist.
//! - **A repeat** (fall back: on the last Sunday of October 02:00–03:00 happens twice, first in
//!   CEST, then in CET). A fixed-time expression fires once, at the first of the two
//!   instants; any other expression fires at both. The preview marks each as a *repeat* and
//!   says whether the other one fires too.
//! - **Intervals** are fixed periods of real time from their anchor: DST never moves or
//!   repeats them; only the local time they are shown in changes.

use crate::Timestamp;
use chrono::{TimeZone, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::str::FromStr;
use std::time::Duration;

pub mod backfill;
pub mod catchup;
pub mod preview;
pub mod when;

pub use catchup::Catchup;
/// IANA time zones, as schedules name them.
pub use chrono_tz::Tz;
pub use preview::{DstNote, FireTime};

/// One schedule of a deployment as written (in `weir.toml` and the API): exactly one of
/// `cron` or `interval`. [`Schedule::parse`] checks it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(extend("oneOf" = [
    {"required": ["cron"], "properties": {"cron": {"type": "string"}, "interval": {"type": "null"}}},
    {"required": ["interval"], "properties": {"interval": {"type": "string"}, "cron": {"type": "null"}}},
]))]
pub struct ScheduleSpec {
    /// A cron expression (5 or 6 fields; `L`, `#`, `W`, ranges and steps allowed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron: Option<String>,
    /// A fixed interval such as `30s`, `15m` or `1h`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    /// IANA time zone the cron fields are read in (default `UTC`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// For intervals: a time the schedule fires at; others are whole periods away.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anchor: Option<Timestamp>,
}

/// A validated schedule, ready to compute fire times.
#[derive(Debug, Clone)]
pub enum Schedule {
    /// A cron expression evaluated in a time zone.
    Cron {
        /// The expression as croner parsed it (5 fields, or 6 with seconds first).
        cron: Box<croner::Cron>,
        /// The time zone its fields are read in.
        tz: Tz,
    },
    /// Every `every`, aligned to `anchor`.
    Interval {
        /// The time between two fire times (positive).
        every: Duration,
        /// A fire time; all others are whole periods away from it.
        anchor: Timestamp,
        /// The time zone fire times are shown in (default UTC); it never moves them.
        tz: Tz,
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
                let tz = match &spec.timezone {
                    Some(tz) => {
                        Tz::from_str(tz).map_err(|_| ScheduleError::InvalidTimezone(tz.clone()))?
                    }
                    None => Tz::UTC,
                };
                let every = crate::retry::parse_duration(every)
                    .ok()
                    .filter(|d| *d >= Duration::from_secs(1))
                    .ok_or_else(|| ScheduleError::InvalidInterval(every.clone()))?;
                let anchor = spec
                    .anchor
                    .unwrap_or_else(|| Utc.timestamp_opt(0, 0).single().unwrap_or_default());
                Ok(Schedule::Interval { every, anchor, tz })
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
            Schedule::Interval { every, anchor, .. } => {
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

    /// The time zone fire times are read (cron) or shown (intervals) in.
    pub fn zone(&self) -> Tz {
        match self {
            Schedule::Cron { tz, .. } | Schedule::Interval { tz, .. } => *tz,
        }
    }

    /// The schedule in words, for the UI and the CLI.
    pub fn describe(&self) -> String {
        match self {
            Schedule::Cron { cron, tz } => format!("{} ({tz})", cron.describe()),
            Schedule::Interval { every, .. } => format!("every {}", humanize(*every)),
        }
    }
}

/// Parses every schedule of a deployment (all were checked when it was deployed).
pub fn parse_all(specs: &[ScheduleSpec]) -> Result<Vec<Schedule>, ScheduleError> {
    specs.iter().map(Schedule::parse).collect()
}

/// A deployment's ticks: the fire times of all its schedules in `(after, until]`, merged,
/// each time once, increasing, at most `limit`. Two schedules firing at the same instant make
/// one tick (one run), as in the scheduler.
pub fn ticks(
    schedules: &[Schedule],
    after: Timestamp,
    until: Timestamp,
    limit: usize,
) -> Vec<Timestamp> {
    let mut out: Vec<Timestamp> = schedules
        .iter()
        .flat_map(|s| s.fire_times(after, until, limit))
        .collect();
    out.sort();
    out.dedup();
    out.truncate(limit);
    out
}

/// The next `n` ticks of a deployment's schedules after `after`, each as the schedule that
/// fires at it shows it (local time, DST note): what `weir deploy --plan` and the deployment
/// page print.
pub fn next_fire_times(schedules: &[Schedule], after: Timestamp, n: usize) -> Vec<FireTime> {
    let far = after + chrono::Duration::days(366 * 5);
    ticks(schedules, after, far, n)
        .into_iter()
        .filter_map(|t| {
            let before = t.checked_sub_signed(chrono::Duration::microseconds(1))?;
            let s = schedules
                .iter()
                .find(|s| s.next_after(before) == Some(t))
                .or(schedules.first())?;
            Some(s.fire_time(t))
        })
        .collect()
}

/// The last `n` ticks in `(after, until]`, increasing, and whether earlier ticks of the
/// window were left out. Looks back from `until` over a span that doubles until it holds `n`
/// ticks or reaches `after`, so a long window with a dense schedule costs about `2n` steps,
/// not one per tick of the window.
pub fn last_ticks(
    schedules: &[Schedule],
    after: Timestamp,
    until: Timestamp,
    n: usize,
) -> (Vec<Timestamp>, bool) {
    if until <= after {
        return (Vec::new(), false);
    }
    if n == 0 {
        return (Vec::new(), !ticks(schedules, after, until, 1).is_empty());
    }
    let mut span = Some(chrono::Duration::minutes(1));
    loop {
        let start = span
            .and_then(|d| until.checked_sub_signed(d))
            .map_or(after, |s| s.max(after));
        let (last, seen) = walk_last(schedules, start, until, n);
        if seen >= n || start == after {
            let more = seen > n || (start > after && !ticks(schedules, after, start, 1).is_empty());
            return (last, more);
        }
        span = span.and_then(|d| d.checked_mul(2));
    }
}

/// The last `n` ticks in `(after, until]` and how many ticks the window has.
fn walk_last(
    schedules: &[Schedule],
    after: Timestamp,
    until: Timestamp,
    n: usize,
) -> (Vec<Timestamp>, usize) {
    let mut last = std::collections::VecDeque::with_capacity(n + 1);
    let mut seen = 0usize;
    let mut cursor = after;
    while let Some(t) = schedules
        .iter()
        .filter_map(|s| s.next_after(cursor))
        .min()
        .filter(|t| *t <= until)
    {
        seen += 1;
        last.push_back(t);
        if last.len() > n {
            last.pop_front();
        }
        cursor = t;
    }
    (last.into_iter().collect(), seen)
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
mod tests;
