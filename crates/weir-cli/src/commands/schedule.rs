//! `weir schedule preview` (when a schedule fires, with DST notes; no server) and `weir
//! backfill` (the runs of every tick in a window, through the API). The rules are
//! `weir_core::schedule`'s; this module only reads flags and prints.

use crate::cli::PreviewArgs;
use crate::config::split_target;
use crate::output;
use anyhow::Result;
use chrono::Utc;
use serde::Serialize;
use std::process::ExitCode;
use weir_core::Schedule;
use weir_core::api::{Backfill, BackfillOutcome, BackfillResult, ScheduleSpec};
use weir_core::schedule::{FireTime, Tz, when};

/// Most fire times one preview prints.
const MAX_PREVIEW: u32 = 1000;

/// What `weir schedule preview --json` prints.
#[derive(Serialize)]
struct Preview<'a> {
    schedule: String,
    timezone: &'a str,
    from: weir_core::Timestamp,
    fire_times: Vec<FireTime>,
}

/// Bad input: the message on stderr, exit 2.
fn refuse(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(2)
}

/// `weir schedule preview`.
pub fn preview(args: PreviewArgs, json: bool) -> ExitCode {
    let (schedule, from) = match preview_input(&args, Utc::now()) {
        Ok(input) => input,
        Err(message) => return refuse(message),
    };
    let times = schedule.preview(from, args.count as usize);
    if json {
        output::json(&Preview {
            schedule: schedule.describe(),
            timezone: &args.timezone,
            from,
            fire_times: times,
        });
    } else {
        print_fire_times(&args, &schedule, from, &times);
    }
    ExitCode::SUCCESS
}

/// The schedule a preview's flags describe and the time its fire times follow (`--from`, or
/// `now`), or the message refusing the flags (times typed in the schedule's zone).
fn preview_input(
    args: &PreviewArgs,
    now: weir_core::Timestamp,
) -> Result<(Schedule, weir_core::Timestamp), String> {
    if !(1..=MAX_PREVIEW).contains(&args.count) {
        return Err(format!(
            "--count {} is out of range: use 1 to {MAX_PREVIEW}",
            args.count
        ));
    }
    let tz: Tz = args.timezone.parse().map_err(|_| {
        weir_core::ScheduleError::InvalidTimezone(args.timezone.clone()).to_string()
    })?;
    let anchor = match args.anchor.as_deref().map(|a| when::parse_time(a, tz, now)) {
        None => None,
        Some(Ok(t)) => Some(t),
        Some(Err(e)) => return Err(format!("--anchor: {e}")),
    };
    let spec = ScheduleSpec {
        cron: args.cron.clone(),
        interval: args.interval.clone(),
        timezone: Some(args.timezone.clone()),
        anchor,
    };
    let schedule = match Schedule::parse(&spec) {
        Ok(s) => s,
        Err(e @ weir_core::ScheduleError::InvalidCron { .. }) => {
            return Err(format!(
                "{e}\nhint: 5 fields (minute hour day-of-month month day-of-week), or 6 with \
                 seconds first, e.g. --cron \"30 2 * * *\" (02:30 every day)"
            ));
        }
        Err(e) => return Err(e.to_string()),
    };
    let from = match args.from.as_deref().map(|f| when::parse_time(f, tz, now)) {
        None => now,
        Some(Ok(t)) => t,
        Some(Err(e)) => return Err(format!("--from: {e}")),
    };
    Ok((schedule, from))
}

/// The preview for people: what the schedule is in words, then its fire times in UTC and in
/// its zone, with DST notes.
fn print_fire_times(
    args: &PreviewArgs,
    schedule: &Schedule,
    from: weir_core::Timestamp,
    times: &[FireTime],
) {
    let describe = schedule.describe();
    let what = match (&args.cron, &args.interval) {
        (Some(c), _) => {
            let words = describe
                .strip_suffix(&format!(" ({})", schedule.zone()))
                .unwrap_or(&describe)
                .trim_end_matches('.');
            format!("cron {c:?} in {}: {words}", args.timezone)
        }
        (None, Some(i)) => format!("every {i} in {}", args.timezone),
        (None, None) => String::new(),
    };
    println!(
        "{what} — fire times after {}",
        from.format("%Y-%m-%d %H:%M:%SZ"),
    );
    if times.is_empty() {
        println!("no fire times after that: the expression never matches again");
        return;
    }
    let rows = times
        .iter()
        .map(|t| {
            vec![
                t.utc_text(),
                t.local_text(),
                t.dst.as_ref().map(|n| n.describe()).unwrap_or_default(),
            ]
        })
        .collect();
    let local = format!("LOCAL ({})", args.timezone);
    output::table(&["UTC", &local, "DST"], rows);
}

/// `weir backfill PROJECT/DEPLOYMENT --from T --to T [--max N] [--plan]`.
pub async fn backfill(
    api: &str,
    target: &str,
    (from, to): (&str, &str),
    max: u32,
    plan: bool,
    json: bool,
) -> Result<ExitCode> {
    let (project, name) = match split_target(target) {
        Ok(t) => t,
        Err(e) => return Ok(refuse(e)),
    };
    let now = Utc::now();
    let at = |flag: &str, text: &str| {
        when::parse_time(text, Tz::UTC, now).map_err(|e| format!("{flag}: {e}"))
    };
    let (from_t, to_t) = match (at("--from", from), at("--to", to)) {
        (Ok(f), Ok(t)) => (f, t),
        (Err(e), _) | (_, Err(e)) => return Ok(refuse(e)),
    };
    if !(1..=weir_core::api::MAX_BACKFILL).contains(&max) {
        return Ok(refuse(format!(
            "--max {max} is out of range: use 1 to {}",
            weir_core::api::MAX_BACKFILL
        )));
    }
    let req = Backfill {
        from: from_t,
        to: to_t,
        max: Some(max),
        dry_run: plan,
    };
    let client = super::client(api)?;
    let result = match client.backfill(&project, &name, &req).await {
        Ok(r) => r,
        Err(weir_client::Error::Api { status, body }) if status.as_u16() == 400 => {
            return Ok(refuse(body.message));
        }
        Err(weir_client::Error::Api { status, body }) if status.as_u16() == 404 => {
            return Ok(refuse(format!(
                "{}\nhint: `weir deployments ls` lists deployments",
                body.message
            )));
        }
        Err(weir_client::Error::Api { status, body }) if status.as_u16() == 409 => {
            return Ok(refuse(body.message));
        }
        Err(e) => return Err(super::explain(e)),
    };
    if json {
        output::json(&result);
    } else {
        print_backfill(&result);
    }
    Ok(ExitCode::SUCCESS)
}

/// The table of a backfill, then one line of totals.
fn print_backfill(r: &BackfillResult) {
    let target = format!("{}/{}", r.project, r.deployment);
    if r.ticks.is_empty() {
        println!(
            "{target}: no tick between {} and {}",
            r.from.format("%Y-%m-%d %H:%M:%S UTC"),
            r.to.format("%Y-%m-%d %H:%M:%S UTC")
        );
        return;
    }
    let rows = r
        .ticks
        .iter()
        .map(|t| {
            vec![
                match t.outcome {
                    BackfillOutcome::Created => "created",
                    BackfillOutcome::Exists => "exists",
                    BackfillOutcome::WouldCreate => "would create",
                }
                .to_string(),
                t.tick_at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
                t.run_name.clone().unwrap_or_default(),
                t.state.map(|s| s.to_string()).unwrap_or_default(),
                t.run_id.map(|i| i.to_string()).unwrap_or_default(),
            ]
        })
        .collect();
    output::table(&["OUTCOME", "TICK", "RUN", "STATE", "ID"], rows);
    let would = r.ticks.len() as u32 - r.existing;
    if r.dry_run {
        println!(
            "{target}: {would} run(s) would be created, {} tick(s) already have their run; \
             nothing was created (run again without --plan)",
            r.existing
        );
    } else {
        println!(
            "{target}: {} run(s) created, {} tick(s) already had their run",
            r.created, r.existing
        );
    }
}
