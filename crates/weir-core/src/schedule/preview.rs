//! How a fire time meets a daylight-saving change: the note `weir schedule preview`,
//! `weir deploy --plan` and the deployment page print beside it (the rule itself is in the
//! [module docs](super)).

use super::Schedule;
use crate::Timestamp;
use chrono::{DateTime, FixedOffset, LocalResult, NaiveDateTime, Offset, TimeZone, Utc};
use chrono_tz::{OffsetName, Tz};
use serde::Serialize;

/// One fire time, in UTC and on the schedule's wall clock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FireTime {
    /// The instant, in UTC.
    pub at: Timestamp,
    /// The same instant on the schedule's wall clock, with its UTC offset.
    pub local: DateTime<FixedOffset>,
    /// The schedule's time zone (IANA name).
    pub timezone: String,
    /// The zone's abbreviation at that instant (`CET`, `CEST`, `EDT`; `UTC`).
    pub zone: String,
    /// Set when the fire time meets a DST change.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dst: Option<DstNote>,
}

/// How a fire time meets a DST change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DstNote {
    /// The expression names a wall-clock time that does not exist that day (the clocks jump
    /// forward over it): it fires at the first instant after the gap instead.
    Moved {
        /// The wall-clock time the expression names.
        wanted: NaiveDateTime,
        /// The first wall-clock time the jump skips.
        gap_from: NaiveDateTime,
        /// The wall-clock time the clocks jump to (where it fires).
        gap_to: NaiveDateTime,
    },
    /// The wall-clock time happens twice (the clocks fall back over it).
    Repeated {
        /// 1: the first of the two instants; 2: the second.
        occurrence: u8,
        /// Whether the schedule fires at the other instant too.
        other_fires: bool,
    },
}

impl DstNote {
    /// `moved` or `repeat`: the word a table prints.
    pub fn label(&self) -> &'static str {
        match self {
            DstNote::Moved { .. } => "moved",
            DstNote::Repeated { .. } => "repeat",
        }
    }

    /// The note in words, e.g. `moved: 02:30 does not exist on 2026-03-29 (clocks jump from
    /// 02:00 to 03:00); fires at 03:00`.
    pub fn describe(&self) -> String {
        match self {
            DstNote::Moved {
                wanted,
                gap_from,
                gap_to,
            } => format!(
                "moved: {} does not exist on {} (clocks jump from {} to {}); fires at {}",
                wanted.format("%H:%M"),
                wanted.format("%Y-%m-%d"),
                gap_from.format("%H:%M"),
                gap_to.format("%H:%M"),
                gap_to.format("%H:%M"),
            ),
            DstNote::Repeated {
                occurrence,
                other_fires,
            } => {
                let (this, other) = if *occurrence == 1 {
                    ("first", "second")
                } else {
                    ("second", "first")
                };
                let then = if *other_fires {
                    format!("it fires at the {other} too")
                } else {
                    format!("it does not fire at the {other}")
                };
                format!(
                    "repeat: this local time happens twice (clocks fall back); the {this} of the two, {then}"
                )
            }
        }
    }
}

impl FireTime {
    /// The local time for tables: `2026-03-29 03:00:00 CEST`.
    pub fn local_text(&self) -> String {
        format!("{} {}", self.local.format("%Y-%m-%d %H:%M:%S"), self.zone)
    }

    /// The UTC time for tables: `2026-03-29 01:00:00Z`.
    pub fn utc_text(&self) -> String {
        self.at.format("%Y-%m-%d %H:%M:%SZ").to_string()
    }

    /// One line: `2026-03-29 01:00:00Z  (03:00 CEST)`, plus the DST note's label.
    pub fn short(&self) -> String {
        let local = if self.zone == "UTC" {
            String::new()
        } else {
            format!(" ({} {})", self.local.format("%Y-%m-%d %H:%M"), self.zone)
        };
        let note = self
            .dst
            .as_ref()
            .map(|n| format!(" [{}]", n.label()))
            .unwrap_or_default();
        format!("{}{local}{note}", self.at.format("%Y-%m-%d %H:%M UTC"))
    }
}

impl Schedule {
    /// The fire time `at` as the preview shows it: on the wall clock, with its DST note.
    /// `at` should be one of the schedule's fire times.
    pub fn fire_time(&self, at: Timestamp) -> FireTime {
        let tz = self.zone();
        let local = at.with_timezone(&tz);
        let naive = local.naive_local();
        let dst = self.moved(at, tz, naive).or_else(|| {
            let LocalResult::Ambiguous(first, second) = tz.from_local_datetime(&naive) else {
                return None;
            };
            let (occurrence, other) = if first.with_timezone(&Utc) == at {
                (1, second.with_timezone(&Utc))
            } else {
                (2, first.with_timezone(&Utc))
            };
            let other_fires = other
                .checked_sub_signed(chrono::Duration::microseconds(1))
                .and_then(|before| self.next_after(before))
                == Some(other);
            Some(DstNote::Repeated {
                occurrence,
                other_fires,
            })
        });
        FireTime {
            at,
            local: local.with_timezone(&local.offset().fix()),
            timezone: tz.name().to_string(),
            zone: local
                .offset()
                .abbreviation()
                .map_or_else(|| local.offset().fix().to_string(), str::to_string),
            dst,
        }
    }

    /// The next `count` fire times strictly after `after`, each with its DST note.
    pub fn preview(&self, after: Timestamp, count: usize) -> Vec<FireTime> {
        let mut out = Vec::with_capacity(count);
        let mut cursor = after;
        while out.len() < count {
            match self.next_after(cursor) {
                Some(t) if t > cursor => {
                    out.push(self.fire_time(t));
                    cursor = t;
                }
                _ => break,
            }
        }
        out
    }

    /// A cron fire time whose wall-clock time the expression does not name: one carried past
    /// a gap.
    fn moved(&self, at: Timestamp, tz: Tz, naive: NaiveDateTime) -> Option<DstNote> {
        let Schedule::Cron { cron, .. } = self else {
            return None;
        };
        if cron.is_time_matching(&naive).unwrap_or(true) {
            return None;
        }
        let before = at
            .checked_sub_signed(chrono::Duration::seconds(1))?
            .with_timezone(&tz)
            .naive_local();
        let gap_from = before.checked_add_signed(chrono::Duration::seconds(1))?;
        let wanted = cron
            .find_next_occurrence(&gap_from, true)
            .ok()
            .filter(|w| *w < naive)
            .unwrap_or(gap_from);
        Some(DstNote::Moved {
            wanted,
            gap_from,
            gap_to: naive,
        })
    }
}
