//! Times typed on a command line (`weir schedule preview --from`, `weir backfill --from/--to`):
//! `now`, an RFC 3339 time with an offset, or a wall-clock date-time or date read in a given
//! time zone.

use crate::Timestamp;
use chrono::{DateTime, LocalResult, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

/// Why a time was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    /// Not a time in any accepted form.
    #[error(
        "invalid time {0:?}: use RFC 3339 (2026-03-29T01:00:00Z or 2026-03-29T03:00:00+02:00), \
         a local date-time (2026-03-29 03:00) or a date (2026-03-29), or `now`"
    )]
    Invalid(String),
    /// A wall-clock time the zone skips (the clocks jump over it).
    #[error(
        "{text:?} does not exist in {tz} (the clocks jump forward over it): give a time \
         outside the gap, or an offset (RFC 3339)"
    )]
    InGap {
        /// The time as given.
        text: String,
        /// The zone it was read in.
        tz: String,
    },
}

/// Reads `text`: `now`; an RFC 3339 time (its own offset); `YYYY-MM-DD HH:MM[:SS]` (or with a
/// `T`) on the wall clock of `tz`; or `YYYY-MM-DD`, midnight in `tz`. A wall-clock time that
/// happens twice is the first of the two; one that does not exist is an error.
pub fn parse_time(text: &str, tz: Tz, now: Timestamp) -> Result<Timestamp, TimeError> {
    let t = text.trim();
    if t.eq_ignore_ascii_case("now") {
        return Ok(now);
    }
    if let Ok(dt) = DateTime::parse_from_rfc3339(t) {
        return Ok(dt.with_timezone(&Utc));
    }
    let naive = [
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M",
    ]
    .iter()
    .find_map(|f| NaiveDateTime::parse_from_str(t, f).ok())
    .or_else(|| {
        NaiveDate::parse_from_str(t, "%Y-%m-%d")
            .ok()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
    })
    .ok_or_else(|| TimeError::Invalid(text.to_string()))?;
    match tz.from_local_datetime(&naive) {
        LocalResult::Single(dt) | LocalResult::Ambiguous(dt, _) => Ok(dt.with_timezone(&Utc)),
        LocalResult::None => Err(TimeError::InGap {
            text: text.to_string(),
            tz: tz.name().to_string(),
        }),
    }
}
