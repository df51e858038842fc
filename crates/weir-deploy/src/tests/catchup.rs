//! Tests of `catchup` and of the plan's fire times.

use super::{one_error, with};
use crate::{parse, plan};
use chrono::TimeZone;
use std::path::Path;
use weir_core::schedule::Catchup;

#[test]
fn catchup_parses_inherits_and_defaults_to_latest() {
    let text = format!(
        "[defaults]\ncatchup = \"all\"\n{}catchup = \"none\"\n\n\
         [deployments.other]\ncommand = [\"flows\"]\n",
        with("")
    );
    let file = parse(Path::new("weir.toml"), &text).expect("valid");
    let got: Vec<_> = file.deployments.iter().map(|d| d.spec.catchup).collect();
    assert_eq!(got, [Catchup::None, Catchup::All]);
    let plain = parse(Path::new("weir.toml"), &with("")).expect("valid");
    assert_eq!(plain.deployments[0].spec.catchup, Catchup::Latest);
    // The default is left out of the stored spec, so existing deployments stay unchanged.
    let json = serde_json::to_value(&plain.deployments[0].spec).expect("json");
    assert!(json.get("catchup").is_none(), "{json}");
}

#[test]
fn bad_catchup_points_at_its_value() {
    let e = one_error(&with("catchup = \"some\""));
    assert!(e.starts_with("weir.toml:4:11:"), "{e}");
    assert!(
        e.contains("\"some\"") && e.contains("\"none\", \"latest\""),
        "{e}"
    );
    let e = one_error(&with("catchup = true"));
    assert!(e.contains("expected \"none\""), "{e}");
    let e = one_error(&with("catchp = \"all\""));
    assert!(e.contains("did you mean \"catchup\""), "{e}");
}

#[test]
fn the_plan_shows_the_next_three_fire_times_of_new_or_changed_schedules() {
    let text = with("schedules = [{ cron = \"30 2 * * *\", timezone = \"Europe/Berlin\" }]");
    let spec = parse(Path::new("weir.toml"), &text)
        .expect("valid")
        .deployments[0]
        .spec
        .clone();
    let now = chrono::Utc
        .with_ymd_and_hms(2026, 3, 27, 12, 0, 0)
        .single()
        .expect("time");
    let times = plan::fire_times(None, &spec, now);
    let lines = plan::fire_time_lines(&times);
    assert_eq!(
        lines,
        [
            "  next fire: 2026-03-28 01:30 UTC (2026-03-28 02:30 CET)",
            "  next fire: 2026-03-29 01:00 UTC (2026-03-29 03:00 CEST) [moved]",
            "             moved: 02:30 does not exist on 2026-03-29 (clocks jump from 02:00 to 03:00); fires at 03:00",
            "  next fire: 2026-03-30 00:30 UTC (2026-03-30 02:30 CEST)",
        ]
    );
    assert!(
        plan::fire_times(Some(&spec), &spec, now).is_empty(),
        "unchanged"
    );
    let mut other = spec.clone();
    other.schedules.clear();
    assert_eq!(plan::fire_times(Some(&other), &spec, now).len(), 3);
    assert!(
        plan::fire_times(Some(&spec), &other, now).is_empty(),
        "no schedules"
    );
}
