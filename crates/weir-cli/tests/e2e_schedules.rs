//! Schedules end to end, with real processes: `weir schedule preview` (UTC and local fire
//! times, DST gaps and repeats in a real zone, bad input refused with exit 2), `weir
//! backfill` against a `weir server` (a plan creates nothing, a backfill creates one run per
//! tick and nothing the second time or for ticks the scheduler made, the window cap), a flow
//! that reads its tick from `WEIR_TICK_AT` under a real agent, and catch-up after the server
//! was killed and restarted (`none`, `latest`, `all`).
//!
//! Needs `cargo build --workspace --bins` first (for `example-flows`).

mod common;

use chrono::{DateTime, TimeZone, Utc};
use common::{Output, Sandbox, ServerOptions, Weir};
use std::time::Duration;
use weir_core::StateKind;
use weir_core::api::FlowRun;

/// `weir ARGS` with no server at all.
fn offline(sb: &Sandbox, args: &[&str]) -> Output {
    sb.cli(None, &sb.path("cli"), args, Duration::from_secs(30))
}

/// The table rows of a preview: every line that starts with a date.
fn rows(out: &str) -> Vec<Vec<String>> {
    out.lines()
        .filter(|l| l.starts_with("20"))
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect()
}

/// `weir [--json] schedule preview --cron|--interval EXPR --timezone TZ --from FROM --count
/// N` (`schedule` is the flag and its value), which must succeed.
fn preview(sb: &Sandbox, json: bool, schedule: [&str; 2], tz: &str, from: &str, n: &str) -> Output {
    let mut args = vec!["schedule", "preview", schedule[0], schedule[1]];
    args.extend(["--timezone", tz, "--from", from, "--count", n]);
    if json {
        args.insert(0, "--json");
    }
    offline(sb, &args).ok()
}

/// Spring in Berlin: 02:30 does not exist on 2026-03-29, so that day's fire time moves to
/// 03:00, with one note saying so.
#[test]
fn preview_shows_utc_local_and_the_berlin_spring_gap() {
    let sb = Sandbox::new();
    let cron = ["--cron", "30 2 * * *"];
    let out = preview(&sb, false, cron, "Europe/Berlin", "2026-03-27", "4");
    let header = out.stdout.lines().next().unwrap_or_default();
    assert!(
        header.starts_with("cron \"30 2 * * *\" in Europe/Berlin")
            && header.ends_with("fire times after 2026-03-26 23:00:00Z"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("LOCAL (Europe/Berlin)"),
        "{}",
        out.stdout
    );
    let r = rows(&out.stdout);
    let first4: Vec<Vec<&str>> = r
        .iter()
        .map(|row| row.iter().take(5).map(String::as_str).collect())
        .collect();
    assert_eq!(
        first4,
        vec![
            vec!["2026-03-27", "01:30:00Z", "2026-03-27", "02:30:00", "CET"],
            vec!["2026-03-28", "01:30:00Z", "2026-03-28", "02:30:00", "CET"],
            vec!["2026-03-29", "01:00:00Z", "2026-03-29", "03:00:00", "CEST"],
            vec!["2026-03-30", "00:30:00Z", "2026-03-30", "02:30:00", "CEST"],
        ],
        "{}",
        out.stdout
    );
    let moved = out
        .stdout
        .lines()
        .find(|l| l.starts_with("2026-03-29"))
        .unwrap_or_default();
    assert!(
        moved.ends_with(
            "moved: 02:30 does not exist on 2026-03-29 (clocks jump from 02:00 to 03:00); fires at 03:00"
        ),
        "{moved}"
    );
    assert_eq!(
        r.iter().filter(|row| row.len() > 5).count(),
        1,
        "one note only"
    );
}

/// Autumn in Berlin: the fixed time fires once, at the first 02:30; a wildcard fires at both
/// (the JSON marks each repeated time and its occurrence).
#[test]
fn preview_shows_the_berlin_autumn_repeat() {
    let sb = Sandbox::new();
    let cron = ["--cron", "30 2 * * *"];
    let out = preview(&sb, false, cron, "Europe/Berlin", "2026-10-25 00:00", "2");
    let r = rows(&out.stdout);
    assert_eq!(
        r[0][..5],
        ["2026-10-25", "00:30:00Z", "2026-10-25", "02:30:00", "CEST"]
    );
    assert!(
        r[0].join(" ").contains("repeat:")
            && r[0].join(" ").contains("does not fire at the second")
    );
    assert_eq!(
        r[1][..5],
        ["2026-10-26", "01:30:00Z", "2026-10-26", "02:30:00", "CET"]
    );
    let wildcard = ["--cron", "0,30 2 * * *"];
    let from = "2026-10-25T02:00:00+02:00";
    let out = preview(&sb, true, wildcard, "Europe/Berlin", from, "5");
    let doc: serde_json::Value = serde_json::from_str(&out.stdout).expect("JSON");
    let times = doc["fire_times"].as_array().expect("fire_times");
    let got: Vec<(String, String, String)> = times
        .iter()
        .map(|t| {
            (
                t["at"].as_str().unwrap_or_default().to_string(),
                t["zone"].as_str().unwrap_or_default().to_string(),
                t["dst"]["kind"].as_str().unwrap_or("-").to_string(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("2026-10-25T00:30:00Z", "CEST", "repeated"),
            ("2026-10-25T01:00:00Z", "CET", "repeated"),
            ("2026-10-25T01:30:00Z", "CET", "repeated"),
            ("2026-10-26T01:00:00Z", "CET", "-"),
            ("2026-10-26T01:30:00Z", "CET", "-"),
        ]
        .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string())),
        "{}",
        out.stdout
    );
    assert_eq!(times[1]["dst"]["occurrence"], 2);
    assert_eq!(times[1]["dst"]["other_fires"], true);
}

/// An interval: New York local times across the spring change, nothing moved.
#[test]
fn preview_of_an_interval_across_new_yorks_spring_change() {
    let sb = Sandbox::new();
    let every = ["--interval", "1h"];
    let out = preview(
        &sb,
        false,
        every,
        "America/New_York",
        "2026-03-08T06:30:00Z",
        "2",
    );
    let r = rows(&out.stdout);
    assert_eq!(
        r[0],
        ["2026-03-08", "07:00:00Z", "2026-03-08", "03:00:00", "EDT"]
    );
    assert_eq!(
        r[1],
        ["2026-03-08", "08:00:00Z", "2026-03-08", "04:00:00", "EDT"]
    );
}

#[test]
fn preview_refuses_bad_input_naming_it_with_exit_2() {
    let sb = Sandbox::new();
    let cases: &[(&[&str], &[&str])] = &[
        (
            &["--cron", "61 * * * *"],
            &["invalid cron expression \"61 * * * *\"", "hint: 5 fields"],
        ),
        (
            &["--cron", "0 3 * * *", "--timezone", "Europe/Amsterdan"],
            &["unknown time zone \"Europe/Amsterdan\"", "IANA name"],
        ),
        (
            &["--interval", "0s"],
            &["invalid interval \"0s\"", "at least 1s"],
        ),
        (
            &["--cron", "0 3 * * *", "--from", "yesterday"],
            &["--from: invalid time \"yesterday\"", "RFC 3339"],
        ),
        (
            &[
                "--cron",
                "0 3 * * *",
                "--timezone",
                "Europe/Berlin",
                "--from",
                "2026-03-29 02:30",
            ],
            &["\"2026-03-29 02:30\" does not exist in Europe/Berlin"],
        ),
        (
            &["--cron", "0 3 * * *", "--count", "0"],
            &["--count 0 is out of range"],
        ),
        (&["--timezone", "UTC"], &["--cron"]),
    ];
    for (args, wanted) in cases {
        let mut all = vec!["schedule", "preview"];
        all.extend_from_slice(args);
        let out = offline(&sb, &all);
        assert_eq!(out.code, 2, "{args:?}: {out:#?}");
        assert!(out.stdout.is_empty(), "{args:?}: {out:#?}");
        for w in *wanted {
            assert!(
                out.stderr.contains(w),
                "{args:?}: {w:?} not in {}",
                out.stderr
            );
        }
    }
}

const HOURLY: &str = r#"
project = "dev"

[deployments.hourly]
plain = true
command = ["sh", "-c", "echo tick=$WEIR_TICK_AT"]
schedules = [{ cron = "0 * * * *" }]

[deployments.often]
plain = true
command = ["true"]
schedules = [{ interval = "1s" }]
"#;

fn utc(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .expect("RFC 3339")
        .with_timezone(&Utc)
}

/// The runs of `dev/NAME` whose tick is in `[from, to]`, by tick.
fn ticked(w: &Weir, name: &str, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<FlowRun> {
    let mut runs: Vec<_> = w
        .all_runs("dev", name)
        .into_iter()
        .filter(|r| r.tick_at.is_some_and(|t| from <= t && t <= to))
        .collect();
    runs.sort_by_key(|r| r.tick_at);
    runs
}

/// A page of the web UI, logged in with the admin key (the login form's own CSRF dance).
fn ui_page(w: &Weir, path: &str) -> String {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("HTTP client");
    w.block_on(async {
        let form = http
            .get(format!("{}/login", w.url))
            .send()
            .await
            .expect("login page");
        let cookie = |resp: &reqwest::Response, name: &str| {
            resp.headers()
                .get_all(reqwest::header::SET_COOKIE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .find_map(|c| {
                    c.strip_prefix(&format!("{name}="))
                        .map(|v| v.split(';').next().unwrap_or("").to_string())
                })
                .unwrap_or_else(|| panic!("no {name} cookie"))
        };
        let csrf = cookie(&form, "weir_login_csrf");
        let resp = http
            .post(format!("{}/login", w.url))
            .header(reqwest::header::COOKIE, format!("weir_login_csrf={csrf}"))
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(format!("key={}&csrf={csrf}&next=%2F", w.admin_key))
            .send()
            .await
            .expect("log in");
        let session = cookie(&resp, "weir_session");
        http.get(format!("{}{path}", w.url))
            .header(reqwest::header::COOKIE, format!("weir_session={session}"))
            .send()
            .await
            .expect("page")
            .text()
            .await
            .expect("page text")
    })
}

const BERLIN: &str = r#"
project = "dev"

[deployments.berlin]
plain = true
command = ["true"]
schedules = [{ cron = "30 2 * * *", timezone = "Europe/Berlin" }]
"#;

#[test]
fn deploy_plan_and_the_deployment_page_show_the_next_fire_times() {
    let w = Weir::start(ServerOptions::default());
    w.write_toml(BERLIN);
    let plan = w.weir(&["deploy", "--plan"]).ok();
    let fires: Vec<&str> = plan
        .stdout
        .lines()
        .filter(|l| l.contains("next fire: "))
        .collect();
    assert_eq!(fires.len(), 3, "{}", plan.stdout);
    assert!(
        fires
            .iter()
            .all(|l| l.contains(" UTC (") && l.contains(":30 CE")),
        "{fires:?}"
    );
    w.deploy(BERLIN);
    let unchanged = w.weir(&["deploy", "--plan"]).ok();
    assert!(
        !unchanged.stdout.contains("next fire"),
        "unchanged: {}",
        unchanged.stdout
    );
    let moved = BERLIN.replace("30 2 * * *", "0 4 * * *");
    w.write_toml(&moved);
    let plan = w.weir(&["deploy", "--plan"]).ok();
    let fires: Vec<&str> = plan
        .stdout
        .lines()
        .filter(|l| l.contains("next fire: "))
        .collect();
    assert_eq!(fires.len(), 3, "a changed schedule: {}", plan.stdout);
    assert!(fires.iter().all(|l| l.contains(" 04:00 CE")), "{fires:?}");
    let page = ui_page(&w, "/deployments/dev/berlin");
    let at = page
        .find("id=\"fire-times\"")
        .unwrap_or_else(|| panic!("no fire times in {page}"));
    let section = &page[at..page[at..].find("</dd>").map_or(page.len(), |e| at + e)];
    let schedules = weir_core::schedule::parse_all(&[weir_core::api::ScheduleSpec {
        cron: Some("30 2 * * *".into()),
        timezone: Some("Europe/Berlin".into()),
        ..Default::default()
    }])
    .expect("valid");
    let next = weir_core::schedule::next_fire_times(&schedules, Utc::now(), 5);
    for f in &next {
        assert!(
            section.contains(&f.local_text()),
            "{} not in {section}",
            f.local_text()
        );
        assert!(
            section.contains(&f.at.format("%Y-%m-%d %H:%M:%S UTC").to_string()),
            "{} not in {section}",
            f.at
        );
    }
}

#[test]
fn backfill_plans_creates_each_tick_once_and_the_flow_sees_its_tick() {
    let mut w = Weir::start(ServerOptions::default());
    w.deploy(HOURLY);
    let (from, to) = (utc("2026-11-30T00:00:00Z"), utc("2026-11-30T04:00:00Z"));
    a_plan_creates_nothing(&w, from, to);
    let runs = a_backfill_creates_one_run_per_tick(&w, from, to);
    twice_creates_nothing_new(&w, from, to);
    bad_backfills_are_refused(&w, to);
    a_scheduled_tick_gets_no_second_run(&w);

    // Under a real agent, each backfilled run's command reads its own tick.
    w.start_agent(4);
    each_run_reads_its_tick(&w, &runs);
}

/// `weir backfill dev/hourly` over 2026-11-30 00:00–04:00, with `extra` arguments.
fn backfill(w: &Weir, extra: &[&str]) -> Output {
    let mut args = vec![
        "backfill",
        "dev/hourly",
        "--from",
        "2026-11-30",
        "--to",
        "2026-11-30 04:00",
    ];
    args.extend_from_slice(extra);
    w.weir(&args)
}

/// `--plan` says what would be created, five runs, and creates none.
fn a_plan_creates_nothing(w: &Weir, from: DateTime<Utc>, to: DateTime<Utc>) {
    let plan = backfill(w, &["--plan"]).ok();
    assert_eq!(
        plan.stdout
            .lines()
            .filter(|l| l.starts_with("would create"))
            .count(),
        5,
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout.contains("dev/hourly: 5 run(s) would be created, 0 tick(s) already have their run; nothing was created"),
        "{}",
        plan.stdout
    );
    assert!(
        ticked(w, "hourly", from, to).is_empty(),
        "--plan created runs"
    );
}

/// A backfill creates one run per hourly tick of the window; the runs, by tick.
fn a_backfill_creates_one_run_per_tick(
    w: &Weir,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Vec<FlowRun> {
    let out = backfill(w, &[]).ok();
    assert!(
        out.stdout
            .contains("dev/hourly: 5 run(s) created, 0 tick(s) already had their run"),
        "{}",
        out.stdout
    );
    let runs = ticked(w, "hourly", from, to);
    let ticks: Vec<_> = runs.iter().filter_map(|r| r.tick_at).collect();
    let hours: Vec<_> = (0..5)
        .map(|h| {
            Utc.with_ymd_and_hms(2026, 11, 30, h, 0, 0)
                .single()
                .expect("time")
        })
        .collect();
    assert_eq!(ticks, hours);
    runs
}

/// The same backfill again creates nothing and says every tick exists; so does its plan, as
/// JSON.
fn twice_creates_nothing_new(w: &Weir, from: DateTime<Utc>, to: DateTime<Utc>) {
    let again = backfill(w, &[]).ok();
    assert!(
        again
            .stdout
            .contains("dev/hourly: 0 run(s) created, 5 tick(s) already had their run"),
        "{}",
        again.stdout
    );
    assert_eq!(
        again
            .stdout
            .lines()
            .filter(|l| l.starts_with("exists"))
            .count(),
        5
    );
    assert_eq!(
        ticked(w, "hourly", from, to).len(),
        5,
        "twice creates nothing new"
    );
    let plan = backfill(w, &["--plan", "--json"]).ok();
    let doc: serde_json::Value = serde_json::from_str(&plan.stdout).expect("JSON");
    assert_eq!(
        (doc["created"].as_u64(), doc["existing"].as_u64()),
        (Some(0), Some(5))
    );
}

/// The window cap, a future end, a bad time: refused, naming the problem; nothing created
/// (the window's runs end at `to`). An unknown deployment is refused pointing at `weir
/// deployments ls`.
fn bad_backfills_are_refused(w: &Weir, to: DateTime<Utc>) {
    let refused: [(&[&str], &str); 3] = [
        (
            &[
                "--from",
                "2026-11-29",
                "--to",
                "2026-11-30 04:00",
                "--max",
                "4",
            ],
            "more than 4 ticks",
        ),
        (
            &["--from", "2026-11-29", "--to", "2999-01-01"],
            "is in the future",
        ),
        (
            &["--from", "yesterday", "--to", "2026-11-30"],
            "--from: invalid time \"yesterday\"",
        ),
    ];
    for (extra, wanted) in refused {
        let mut args = vec!["backfill", "dev/hourly"];
        args.extend_from_slice(extra);
        let out = w.weir(&args);
        assert_eq!(out.code, 2, "{args:?}: {out:#?}");
        assert!(
            out.stderr.contains(wanted),
            "{args:?}: {wanted:?} not in {}",
            out.stderr
        );
    }
    assert_eq!(
        ticked(w, "hourly", utc("2026-11-29T00:00:00Z"), to).len(),
        5,
        "refused backfills created nothing"
    );
    let out = w.weir(&[
        "backfill",
        "dev/nope",
        "--from",
        "2026-11-30",
        "--to",
        "2026-11-30 01:00",
    ]);
    assert_eq!(out.code, 2, "{out:#?}");
    assert!(out.stderr.contains("weir deployments ls"), "{}", out.stderr);
}

/// A tick the scheduler already made (of `dev/often`) gets no second run.
fn a_scheduled_tick_gets_no_second_run(w: &Weir) {
    let made = common::wait_until(
        "the scheduler to run `often` a few ticks",
        Duration::from_secs(20),
        || {
            let now = Utc::now();
            let past: Vec<_> = w
                .all_runs("dev", "often")
                .into_iter()
                .filter_map(|r| r.tick_at)
                .filter(|t| *t <= now)
                .collect();
            if past.len() >= 3 {
                Ok(past)
            } else {
                Err(format!("{past:?}"))
            }
        },
    );
    let first = made.iter().min().copied().expect("ticks");
    let first_text = first.to_rfc3339();
    let out = w
        .weir(&[
            "backfill",
            "dev/often",
            "--from",
            &first_text,
            "--to",
            "now",
        ])
        .ok();
    assert!(
        out.stdout.contains("dev/often: 0 run(s) created"),
        "{}",
        out.stdout
    );
}

/// Each backfilled run completes, and its command printed its own tick.
fn each_run_reads_its_tick(w: &Weir, runs: &[FlowRun]) {
    for r in runs {
        let d = w.wait_terminal(r.id, Duration::from_secs(60));
        assert_eq!(
            d.run.state,
            StateKind::Completed,
            "{}",
            common::describe(&d)
        );
        let tick = r
            .tick_at
            .map(weir_core::contract::launch::format_tick)
            .unwrap_or_default();
        let logs = w.weir(&["logs", &r.id.to_string()]).ok();
        assert!(
            logs.stdout.contains(&format!("tick={tick}")),
            "{}: {}",
            tick,
            logs.stdout
        );
    }
}

const CATCHUP: &str = r#"
project = "dev"

[defaults]
plain = true
command = ["true"]
schedules = [{ interval = "1s" }]

[deployments.skip]
catchup = "none"

[deployments.one]
catchup = "latest"

[deployments.every]
catchup = "all"
"#;

/// Runs of `dev/NAME` whose tick is after `after` and at most `until`.
fn between(w: &Weir, name: &str, after: DateTime<Utc>, until: DateTime<Utc>) -> Vec<FlowRun> {
    ticked(w, name, after + chrono::Duration::microseconds(1), until)
}

/// Runs of `dev/NAME` that catch-up made due later than their tick.
fn caught_up(w: &Weir, name: &str) -> Vec<FlowRun> {
    w.all_runs("dev", name)
        .into_iter()
        .filter(|r| {
            r.tick_at
                .is_some_and(|t| r.scheduled_at - t > chrono::Duration::seconds(1))
        })
        .collect()
}

#[test]
fn catchup_after_the_server_was_down() {
    catchup_after_an_outage(false);
}

/// The first start after an upgrade from a Weir that kept no watermark: the database has
/// its runs but no `scheduler_pass_at`, and catch-up still applies from the last moment the
/// database shows the server at work.
#[test]
fn catchup_after_an_upgrade_that_finds_no_watermark() {
    catchup_after_an_outage(true);
}

/// Removes the scheduler's watermark from the stopped server's SQLite database, as a database
/// of a Weir from before the watermark has none.
fn forget_the_watermark(w: &Weir) {
    let db = w.sb.path("server/weir.db");
    w.block_on(async {
        use sqlx::ConnectOptions;
        let mut conn = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(&db)
            .busy_timeout(Duration::from_secs(10))
            .connect()
            .await
            .expect("open the server's database");
        let gone = sqlx::query("DELETE FROM settings WHERE name = 'scheduler_pass_at'")
            .execute(&mut conn)
            .await
            .expect("remove the watermark")
            .rows_affected();
        assert_eq!(gone, 1, "the server had written its watermark");
    });
}

/// Stops the server for about 6 s with runs put ahead and no agent, then checks what each
/// catch-up policy made of the missed ticks; with `forget_watermark`, the stopped server's
/// database loses its watermark first, as one from before the watermark has none.
fn catchup_after_an_outage(forget_watermark: bool) {
    let mut w = Weir::start(ServerOptions::default());
    w.deploy(CATCHUP);
    common::wait_until("runs put ahead", Duration::from_secs(20), || {
        let n = ["skip", "one", "every"]
            .iter()
            .map(|d| w.all_runs("dev", d).len())
            .min()
            .unwrap_or(0);
        if n >= 5 {
            Ok(())
        } else {
            Err(format!("{n} runs"))
        }
    });
    // No agent: every run stays unclaimed. The server is away for about 6 s.
    w.kill_server();
    let stopped = Utc::now();
    if forget_watermark {
        forget_the_watermark(&w);
    }
    std::thread::sleep(Duration::from_secs(6));
    let restarted = Utc::now();
    w.restart_server_with(ServerOptions::default(), &["--late-after-s", "2"]);
    // Ticks surely missed: after the kill, due more than the 2 s threshold before the restart.
    let (after, until) = (stopped, restarted - chrono::Duration::seconds(2));
    let missed = (until - after).num_seconds();
    assert!(missed >= 3, "{missed}");

    let skip = between(&w, "skip", after, until);
    assert!(skip.is_empty(), "catchup = none ran missed ticks: {skip:?}");
    assert!(caught_up(&w, "skip").is_empty());

    let one = caught_up(&w, "one");
    assert_eq!(
        one.len(),
        1,
        "catchup = latest: one run for the latest missed tick: {one:?}"
    );
    let latest = one[0].tick_at.expect("tick");
    assert!(
        latest >= until - chrono::Duration::seconds(2),
        "{latest} is the latest, {until}"
    );
    let older = between(&w, "one", after, latest - chrono::Duration::microseconds(1));
    assert!(
        older.is_empty(),
        "older missed ticks were removed: {older:?}"
    );

    let every = between(&w, "every", after, until);
    assert!(
        every.len() as i64 >= missed,
        "catchup = all: each missed tick has its run ({} of {missed}): {every:?}",
        every.len()
    );
    assert!(
        every.iter().all(|r| r.scheduled_at > until),
        "due at the catch-up: {every:?}"
    );
    assert!(
        w.server_log()
            .contains("caught up ticks missed while no server ran")
    );

    // The schedules go on: new ticks get runs again.
    common::wait_until(
        "skip to be scheduled again",
        Duration::from_secs(20),
        || {
            let later = between(
                &w,
                "skip",
                Utc::now(),
                Utc::now() + chrono::Duration::seconds(30),
            );
            if later.is_empty() {
                Err("no future runs".into())
            } else {
                Ok(())
            }
        },
    );
}
