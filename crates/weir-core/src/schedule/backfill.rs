//! Backfills: which ticks a window holds, and which windows are refused.

use super::Schedule;
use crate::Timestamp;

/// Why a backfill window is refused (nothing is created then).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WindowError {
    /// `max` is outside `1..=limit`.
    #[error("max {max} is out of range: use 1 to {limit}")]
    MaxOutOfRange {
        /// The `max` the request asked for.
        max: u32,
        /// The largest allowed.
        limit: u32,
    },
    /// `from` is after `to`.
    #[error("the window is reversed: from ({from}) is after to ({to})")]
    Reversed {
        /// The window's start.
        from: Timestamp,
        /// The window's end, before `from`.
        to: Timestamp,
    },
    /// `to` is in the future: the schedule runs future ticks itself.
    #[error(
        "to ({to}) is in the future: a backfill is for past ticks (the schedule runs the rest); \
         use a time up to now ({now})"
    )]
    Future {
        /// The window's end.
        to: Timestamp,
        /// The time the window was checked at (the server's clock).
        now: Timestamp,
    },
    /// The window holds more ticks than `max`.
    #[error(
        "the window holds more than {max} ticks (from {first} on): narrow it (--from/--to) or \
         raise max (--max, at most {limit}); nothing was created"
    )]
    TooMany {
        /// The cap on ticks the request asked for (`max`).
        max: u32,
        /// The largest cap allowed.
        limit: u32,
        /// The window's first tick.
        first: Timestamp,
    },
}

impl WindowError {
    /// The request field at fault.
    pub fn field(&self) -> &'static str {
        match self {
            WindowError::MaxOutOfRange { .. } | WindowError::TooMany { .. } => "max",
            WindowError::Reversed { .. } => "from",
            WindowError::Future { .. } => "to",
        }
    }
}

/// The ticks of `schedules` in the closed window `[from, to]`, increasing: what a backfill
/// creates runs for. Refused when `max` is outside `1..=limit`, the window is reversed or ends
/// after `now`, or it holds more than `max` ticks.
pub fn window_ticks(
    schedules: &[Schedule],
    from: Timestamp,
    to: Timestamp,
    now: Timestamp,
    max: u32,
    limit: u32,
) -> Result<Vec<Timestamp>, WindowError> {
    if !(1..=limit).contains(&max) {
        return Err(WindowError::MaxOutOfRange { max, limit });
    }
    if from > to {
        return Err(WindowError::Reversed { from, to });
    }
    if to > now {
        return Err(WindowError::Future { to, now });
    }
    // Ticks at `from` count: the window is closed at both ends.
    let after = from
        .checked_sub_signed(chrono::Duration::microseconds(1))
        .unwrap_or(from);
    let ticks = super::ticks(schedules, after, to, max as usize + 1);
    match ticks.first() {
        Some(first) if ticks.len() > max as usize => Err(WindowError::TooMany {
            max,
            limit,
            first: *first,
        }),
        _ => Ok(ticks),
    }
}
