//! Fire times, DST gaps and repeats in real zones, catch-up windows, typed times.

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

fn utc_s(y: i32, m: u32, d: u32, h: u32, min: u32, s: u32) -> Timestamp {
    Utc.with_ymd_and_hms(y, m, d, h, min, s)
        .single()
        .expect("valid time")
}

fn naive(y: i32, m: u32, d: u32, h: u32, min: u32) -> chrono::NaiveDateTime {
    NaiveDate::from_ymd_opt(y, m, d)
        .and_then(|d| d.and_hms_opt(h, min, 0))
        .expect("valid naive time")
}

/// `(UTC, local text, note label)` of each fire time.
fn rows(times: &[FireTime]) -> Vec<(Timestamp, String, Option<&'static str>)> {
    times
        .iter()
        .map(|f| (f.at, f.local_text(), f.dst.as_ref().map(DstNote::label)))
        .collect()
}

#[test]
fn berlin_spring_gap_moves_a_fixed_time_to_the_end_of_the_gap() {
    // 2026-03-29: 02:00 CET jumps to 03:00 CEST (01:00 UTC); 02:30 does not exist.
    let s = cron("30 2 * * *", "Europe/Berlin");
    let p = s.preview(utc(2026, 3, 27, 0, 0), 4);
    assert_eq!(
        rows(&p),
        vec![
            (
                utc(2026, 3, 27, 1, 30),
                "2026-03-27 02:30:00 CET".into(),
                None
            ),
            (
                utc(2026, 3, 28, 1, 30),
                "2026-03-28 02:30:00 CET".into(),
                None
            ),
            (
                utc(2026, 3, 29, 1, 0),
                "2026-03-29 03:00:00 CEST".into(),
                Some("moved")
            ),
            (
                utc(2026, 3, 30, 0, 30),
                "2026-03-30 02:30:00 CEST".into(),
                None
            ),
        ]
    );
    assert_eq!(
        p[2].dst,
        Some(DstNote::Moved {
            wanted: naive(2026, 3, 29, 2, 30),
            gap_from: naive(2026, 3, 29, 2, 0),
            gap_to: naive(2026, 3, 29, 3, 0),
        })
    );
    let text = p[2].dst.as_ref().map(DstNote::describe).unwrap_or_default();
    assert_eq!(
        text,
        "moved: 02:30 does not exist on 2026-03-29 (clocks jump from 02:00 to 03:00); fires at 03:00"
    );
    assert_eq!(p[2].timezone, "Europe/Berlin");
    assert_eq!(p[2].local.offset().local_minus_utc(), 7200);
}

#[test]
fn berlin_spring_gap_is_skipped_by_a_wildcard_expression() {
    // 00:30 UTC is 01:30 CET; 02:00 and 02:30 never happen; 03:00 CEST is 01:00 UTC.
    let s = cron("*/30 * * * *", "Europe/Berlin");
    let p = s.preview(utc(2026, 3, 29, 0, 30), 3);
    assert_eq!(
        rows(&p),
        vec![
            (
                utc(2026, 3, 29, 1, 0),
                "2026-03-29 03:00:00 CEST".into(),
                None
            ),
            (
                utc(2026, 3, 29, 1, 30),
                "2026-03-29 03:30:00 CEST".into(),
                None
            ),
            (
                utc(2026, 3, 29, 2, 0),
                "2026-03-29 04:00:00 CEST".into(),
                None
            ),
        ]
    );
}

#[test]
fn berlin_autumn_repeat_fires_a_fixed_time_once_at_the_first() {
    // 2026-10-25: 03:00 CEST falls back to 02:00 CET; 02:30 is 00:30 UTC and 01:30 UTC.
    let s = cron("30 2 * * *", "Europe/Berlin");
    let p = s.preview(utc(2026, 10, 24, 0, 0), 3);
    assert_eq!(
        rows(&p),
        vec![
            (
                utc(2026, 10, 24, 0, 30),
                "2026-10-24 02:30:00 CEST".into(),
                None
            ),
            (
                utc(2026, 10, 25, 0, 30),
                "2026-10-25 02:30:00 CEST".into(),
                Some("repeat")
            ),
            (
                utc(2026, 10, 26, 1, 30),
                "2026-10-26 02:30:00 CET".into(),
                None
            ),
        ]
    );
    assert_eq!(
        p[1].dst,
        Some(DstNote::Repeated {
            occurrence: 1,
            other_fires: false
        })
    );
    let text = p[1].dst.as_ref().map(DstNote::describe).unwrap_or_default();
    assert!(text.contains("does not fire at the second"), "{text}");
}

#[test]
fn berlin_autumn_repeat_fires_a_wildcard_expression_twice() {
    let s = cron("*/30 2 * * *", "Europe/Berlin");
    let p = s.preview(utc(2026, 10, 24, 23, 59), 5);
    let repeat = |occurrence| {
        Some(DstNote::Repeated {
            occurrence,
            other_fires: true,
        })
    };
    let got: Vec<_> = p
        .iter()
        .map(|f| (f.at, f.zone.clone(), f.dst.clone()))
        .collect();
    assert_eq!(
        got,
        vec![
            (utc(2026, 10, 25, 0, 0), "CEST".into(), repeat(1)),
            (utc(2026, 10, 25, 0, 30), "CEST".into(), repeat(1)),
            (utc(2026, 10, 25, 1, 0), "CET".into(), repeat(2)),
            (utc(2026, 10, 25, 1, 30), "CET".into(), repeat(2)),
            (utc(2026, 10, 26, 1, 0), "CET".into(), None),
        ]
    );
}

#[test]
fn new_york_gap_and_repeat() {
    // 2026-03-08: 02:00 EST jumps to 03:00 EDT (07:00 UTC).
    let s = cron("30 2 * * *", "America/New_York");
    let p = s.preview(utc(2026, 3, 7, 12, 0), 2);
    assert_eq!(
        rows(&p),
        vec![
            (
                utc(2026, 3, 8, 7, 0),
                "2026-03-08 03:00:00 EDT".into(),
                Some("moved")
            ),
            (
                utc(2026, 3, 9, 6, 30),
                "2026-03-09 02:30:00 EDT".into(),
                None
            ),
        ]
    );
    // 2026-11-01: 02:00 EDT falls back to 01:00 EST; 01:30 is 05:30 and 06:30 UTC.
    let s = cron("30 1 * * *", "America/New_York");
    let p = s.preview(utc(2026, 10, 31, 12, 0), 2);
    assert_eq!(
        rows(&p),
        vec![
            (
                utc(2026, 11, 1, 5, 30),
                "2026-11-01 01:30:00 EDT".into(),
                Some("repeat")
            ),
            (
                utc(2026, 11, 2, 6, 30),
                "2026-11-02 01:30:00 EST".into(),
                None
            ),
        ]
    );
}

#[test]
fn intervals_are_never_moved_only_shown_in_local_time() {
    let s = Schedule::parse(&ScheduleSpec {
        interval: Some("1h".into()),
        timezone: Some("Europe/Berlin".into()),
        anchor: Some(utc(2026, 1, 1, 0, 0)),
        ..Default::default()
    })
    .expect("valid");
    let p = s.preview(utc(2026, 10, 24, 23, 30), 3);
    let got: Vec<_> = p
        .iter()
        .map(|f| (f.at, f.local_text(), f.dst.clone()))
        .collect();
    assert_eq!(
        got,
        vec![
            (
                utc(2026, 10, 25, 0, 0),
                "2026-10-25 02:00:00 CEST".into(),
                Some(DstNote::Repeated {
                    occurrence: 1,
                    other_fires: true
                })
            ),
            (
                utc(2026, 10, 25, 1, 0),
                "2026-10-25 02:00:00 CET".into(),
                Some(DstNote::Repeated {
                    occurrence: 2,
                    other_fires: true
                })
            ),
            (
                utc(2026, 10, 25, 2, 0),
                "2026-10-25 03:00:00 CET".into(),
                None
            ),
        ]
    );
    // Spring: one real hour apart, 01:00 CET then 03:00 CEST, nothing moved.
    let p = s.preview(utc(2026, 3, 28, 23, 30), 2);
    assert_eq!(
        rows(&p),
        vec![
            (
                utc(2026, 3, 29, 0, 0),
                "2026-03-29 01:00:00 CET".into(),
                None
            ),
            (
                utc(2026, 3, 29, 1, 0),
                "2026-03-29 03:00:00 CEST".into(),
                None
            ),
        ]
    );
}

#[test]
fn utc_schedules_have_no_notes() {
    let s = cron("30 2 * * *", "UTC");
    let p = s.preview(utc(2026, 3, 28, 0, 0), 2);
    assert!(
        p.iter().all(|f| f.dst.is_none() && f.zone == "UTC"),
        "{p:?}"
    );
    assert_eq!(p[0].short(), "2026-03-28 02:30 UTC");
    let b = cron("30 2 * * *", "Europe/Berlin").preview(utc(2026, 3, 28, 0, 0), 2);
    assert_eq!(
        b[1].short(),
        "2026-03-29 01:00 UTC (2026-03-29 03:00 CEST) [moved]"
    );
}

#[test]
fn ticks_merge_schedules_and_fire_once_per_instant() {
    let a = cron("0 * * * *", "UTC");
    let b = cron("0 */2 * * *", "UTC");
    let t = ticks(&[a, b], utc(2026, 1, 1, 0, 0), utc(2026, 1, 1, 4, 0), 100);
    assert_eq!(
        t,
        (1..=4).map(|h| utc(2026, 1, 1, h, 0)).collect::<Vec<_>>()
    );
}

#[test]
fn last_ticks_finds_the_most_recent_of_a_long_window() {
    let every_minute = [cron("* * * * *", "UTC")];
    let (after, until) = (utc(2026, 1, 1, 0, 0), utc(2026, 1, 31, 0, 0));
    let (last, more) = last_ticks(&every_minute, after, until, 100);
    assert_eq!(last.len(), 100);
    assert!(more);
    assert_eq!(last.last(), Some(&until));
    assert_eq!(last.first(), Some(&utc(2026, 1, 30, 22, 21)));
    // A window with fewer ticks than asked for: all of them, none left out.
    let daily = [cron("0 3 * * *", "Europe/Berlin")];
    let (last, more) = last_ticks(&daily, after, utc(2026, 1, 4, 12, 0), 100);
    assert_eq!(last, ticks(&daily, after, utc(2026, 1, 4, 12, 0), 100));
    assert_eq!(last.len(), 4);
    assert!(!more);
    // Exactly as many as asked for, with an older one before the span.
    let (last, more) = last_ticks(&daily, after, utc(2026, 1, 4, 12, 0), 3);
    assert_eq!(last.len(), 3);
    assert!(more);
    // Across the autumn repeat the backward search agrees with the forward rule.
    let wild = [cron("*/30 2 * * *", "Europe/Berlin")];
    let (a, u) = (utc(2026, 10, 20, 0, 0), utc(2026, 10, 27, 0, 0));
    assert_eq!(last_ticks(&wild, a, u, 5).0, {
        let all = ticks(&wild, a, u, 1000);
        all[all.len() - 5..].to_vec()
    });
}

#[test]
fn catchup_keeps_none_the_latest_or_at_most_the_cap() {
    let hourly = [cron("0 * * * *", "UTC")];
    let (after, until) = (utc(2026, 5, 1, 0, 30), utc(2026, 5, 1, 3, 45));
    let none = catchup::plan(Catchup::None, &hourly, after, until);
    assert_eq!((none.run.len(), none.skipped), (0, true));
    let latest = catchup::plan(Catchup::Latest, &hourly, after, until);
    assert_eq!(latest.run, vec![utc(2026, 5, 1, 3, 0)]);
    assert!(latest.skipped);
    let all = catchup::plan(Catchup::All, &hourly, after, until);
    assert_eq!(
        all.run,
        vec![
            utc(2026, 5, 1, 1, 0),
            utc(2026, 5, 1, 2, 0),
            utc(2026, 5, 1, 3, 0)
        ]
    );
    assert!(!all.skipped);
    // A week of hourly ticks: the most recent 100.
    let long = catchup::plan(
        Catchup::All,
        &hourly,
        utc(2026, 5, 1, 0, 30),
        utc(2026, 5, 8, 0, 30),
    );
    assert_eq!(long.run.len(), catchup::MAX_CATCHUP_RUNS);
    assert_eq!(long.run.last(), Some(&utc(2026, 5, 8, 0, 0)));
    assert!(long.skipped);
    // Nothing due in the window: nothing skipped either.
    let quiet = catchup::plan(
        Catchup::None,
        &hourly,
        utc(2026, 5, 1, 0, 5),
        utc(2026, 5, 1, 0, 50),
    );
    assert_eq!((quiet.run.len(), quiet.skipped), (0, false));
}

#[test]
fn missed_window_only_after_an_absence_longer_than_the_late_threshold() {
    let now = utc(2026, 5, 1, 12, 0);
    let late = chrono::Duration::seconds(30);
    assert_eq!(catchup::missed_window(None, now, late), None);
    assert_eq!(
        catchup::missed_window(Some(now - chrono::Duration::seconds(2)), now, late),
        None
    );
    let last = utc(2026, 5, 1, 11, 0);
    assert_eq!(
        catchup::missed_window(Some(last), now, late),
        Some((last, utc_s(2026, 5, 1, 11, 59, 30)))
    );
}

#[test]
fn catchup_policy_names() {
    for p in [Catchup::None, Catchup::Latest, Catchup::All] {
        assert_eq!(p.as_str().parse::<Catchup>(), Ok(p));
        assert_eq!(
            serde_json::to_value(p).expect("serialises"),
            serde_json::json!(p.as_str())
        );
    }
    assert_eq!(Catchup::default(), Catchup::Latest);
    let e = "latests".parse::<Catchup>().expect_err("unknown");
    assert!(e.contains("\"latests\"") && e.contains("\"all\""), "{e}");
}

#[test]
fn typed_times() {
    use when::{TimeError, parse_time};
    let berlin: chrono_tz::Tz = "Europe/Berlin".parse().expect("tz");
    let now = utc(2026, 12, 1, 16, 0);
    assert_eq!(parse_time("now", berlin, now), Ok(now));
    assert_eq!(
        parse_time("2026-03-29T03:00:00+02:00", berlin, now),
        Ok(utc(2026, 3, 29, 1, 0))
    );
    assert_eq!(
        parse_time("2026-03-29T01:00:00Z", chrono_tz::UTC, now),
        Ok(utc(2026, 3, 29, 1, 0))
    );
    assert_eq!(
        parse_time("2026-03-28", berlin, now),
        Ok(utc(2026, 3, 27, 23, 0))
    );
    assert_eq!(
        parse_time("2026-07-01 08:15", berlin, now),
        Ok(utc(2026, 7, 1, 6, 15))
    );
    assert_eq!(
        parse_time("2026-07-01T08:15:30", chrono_tz::UTC, now),
        Ok(utc_s(2026, 7, 1, 8, 15, 30))
    );
    // 02:30 happens twice on 2026-10-25: the first (CEST).
    assert_eq!(
        parse_time("2026-10-25 02:30", berlin, now),
        Ok(utc(2026, 10, 25, 0, 30))
    );
    let gap = parse_time("2026-03-29 02:30", berlin, now).expect_err("in the gap");
    assert!(matches!(gap, TimeError::InGap { .. }));
    assert!(gap.to_string().contains("Europe/Berlin"), "{gap}");
    let bad = parse_time("yesterday", berlin, now).expect_err("invalid");
    assert!(
        bad.to_string().contains("\"yesterday\"") && bad.to_string().contains("RFC 3339"),
        "{bad}"
    );
}

#[test]
fn backfill_windows_are_closed_capped_and_never_in_the_future() {
    use backfill::{WindowError, window_ticks};
    let hourly = [cron("0 * * * *", "UTC")];
    let now = utc(2026, 12, 1, 12, 0);
    let got = window_ticks(
        &hourly,
        utc(2026, 11, 30, 0, 0),
        utc(2026, 11, 30, 4, 0),
        now,
        10,
        100,
    );
    assert_eq!(
        got,
        Ok((0..=4).map(|h| utc(2026, 11, 30, h, 0)).collect()),
        "both ends count"
    );
    let e = window_ticks(
        &hourly,
        utc(2026, 11, 30, 0, 0),
        utc(2026, 11, 30, 4, 0),
        now,
        4,
        100,
    )
    .expect_err("five ticks");
    assert_eq!(e.field(), "max");
    assert!(e.to_string().contains("more than 4 ticks"), "{e}");
    let e = window_ticks(&hourly, now, utc(2026, 12, 2, 0, 0), now, 10, 100).expect_err("future");
    assert!(
        matches!(e, WindowError::Future { .. }) && e.field() == "to",
        "{e}"
    );
    let e = window_ticks(&hourly, now, utc(2026, 11, 2, 0, 0), now, 10, 100).expect_err("reversed");
    assert_eq!(e.field(), "from");
    let e = window_ticks(&hourly, utc(2026, 11, 2, 0, 0), now, now, 0, 100).expect_err("max 0");
    assert_eq!(e, WindowError::MaxOutOfRange { max: 0, limit: 100 });
    let quiet = window_ticks(
        &hourly,
        utc(2026, 11, 30, 0, 5),
        utc(2026, 11, 30, 0, 50),
        now,
        10,
        100,
    );
    assert_eq!(quiet, Ok(vec![]));
}
