//! Server-rendered SVG charts (no script): the dashboard's runs over time, stacked by state,
//! and a deployment's duration trend. Colours are the stylesheet's state colours
//! (`--s-<State>`); every bar carries its numbers as `data-` attributes and a `<title>`, so
//! a reader (or a test) can check what is drawn.

use std::collections::BTreeMap;
use std::fmt::Write;
use weir_core::StateKind;
use weir_core::Timestamp;
use weir_core::trend::Outcomes;
use weir_store::{EndedRun, HourCounts};

const WIDTH: f64 = 1000.0;
/// Room for the y-axis labels.
const LEFT: f64 = 56.0;
const RIGHT: f64 = 8.0;
const TOP: f64 = 12.0;
/// Room for the x-axis labels.
const BOTTOM: f64 = 24.0;

/// Stacking order, bottom up: outcomes first, then runs still on their way.
const STACK: [StateKind; 11] = [
    StateKind::Completed,
    StateKind::Failed,
    StateKind::Crashed,
    StateKind::Cancelled,
    StateKind::Cancelling,
    StateKind::Running,
    StateKind::Paused,
    StateKind::Pending,
    StateKind::AwaitingRetry,
    StateKind::Late,
    StateKind::Scheduled,
];

/// The dashboard's window, from its `range` query parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Range {
    /// `24h` (the default): bars of an hour.
    Day,
    /// `7d`: bars of six hours.
    Week,
}

impl Range {
    /// `None` or `24h` → a day, `7d` → a week; anything else is an error naming the choices.
    pub(crate) fn parse(given: Option<&str>) -> Result<Range, String> {
        match given.map(str::trim) {
            None | Some("") | Some("24h") => Ok(Range::Day),
            Some("7d") => Ok(Range::Week),
            Some(other) => Err(format!(
                "range {other:?} is not one the dashboard shows: use range=24h or range=7d"
            )),
        }
    }

    /// The window's length.
    pub(crate) fn span(self) -> chrono::Duration {
        match self {
            Range::Day => chrono::Duration::hours(24),
            Range::Week => chrono::Duration::days(7),
        }
    }

    /// Hours per bar; bars start at whole multiples of it (UTC), the first at the window's
    /// start.
    pub(crate) fn hours_per_bar(self) -> i64 {
        match self {
            Range::Day => 1,
            Range::Week => 6,
        }
    }

    /// Its query value.
    pub(crate) fn param(self) -> &'static str {
        match self {
            Range::Day => "24h",
            Range::Week => "7d",
        }
    }

    /// How the page names it: "24 hours", "7 days".
    pub(crate) fn words(self) -> &'static str {
        match self {
            Range::Day => "24 hours",
            Range::Week => "7 days",
        }
    }
}

/// Runs created in one bar's interval, by their state now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RunBucket {
    /// Where the interval starts.
    pub start: Timestamp,
    /// Where it ends (the next one's start; the last ends now).
    pub end: Timestamp,
    /// Runs by state; states with none are absent.
    pub counts: BTreeMap<StateKind, u64>,
}

impl RunBucket {
    /// Runs in the interval.
    pub(crate) fn total(&self) -> u64 {
        self.counts.values().sum()
    }
}

/// The bars of the window `from`..`now`: boundaries at whole multiples of `per_bar` hours (UTC), so
/// the first and last bars may be partial; each hour's counts go to the bar its runs fall in.
pub(crate) fn buckets(
    hours: &[HourCounts],
    from: Timestamp,
    now: Timestamp,
    per_bar: i64,
) -> Vec<RunBucket> {
    let width = chrono::Duration::hours(per_bar.max(1))
        .num_microseconds()
        .unwrap_or(1);
    let mut out = Vec::new();
    let mut start = from;
    while start < now {
        let us = start.timestamp_micros();
        let next = (us.div_euclid(width) + 1) * width;
        let end = Timestamp::from_timestamp_micros(next)
            .unwrap_or(now)
            .min(now);
        out.push(RunBucket {
            start,
            end,
            counts: BTreeMap::new(),
        });
        start = end;
    }
    for h in hours {
        let at = h.hour.max(from);
        if let Some(b) = out.iter_mut().find(|b| b.start <= at && at < b.end) {
            for (state, n) in &h.counts {
                *b.counts.entry(*state).or_default() += n;
            }
        }
    }
    out
}

/// Runs drawn in a deployment's duration trend.
pub(crate) const TREND_RUNS: u32 = 60;
/// The window of a deployment's success rate, in days.
pub(crate) const RATE_DAYS: i64 = 7;

/// A deployment's health on its page: its success rate and duration trend.
pub(crate) struct Health {
    /// `93.8 %`, or `None` when no run ended Completed, Failed or Crashed in the window.
    pub rate: Option<String>,
    /// What the rate is made of, in words.
    pub summary: String,
    /// The duration trend SVG (empty when no run has started and ended).
    pub trend: String,
}

impl Health {
    /// From the final states of the runs that ended in the last [`RATE_DAYS`] and the last
    /// runs to end.
    pub(crate) fn of(outcomes: &Outcomes, ended: &[EndedRun]) -> Health {
        let cancelled = match outcomes.cancelled {
            0 => String::new(),
            n => format!("; {n} cancelled, not counted"),
        };
        let summary = match outcomes.decided() {
            0 => format!(
                "No run ended Completed, Failed or Crashed in the last {RATE_DAYS} days{cancelled}."
            ),
            n => format!(
                "{} of {n} runs that ended in the last {RATE_DAYS} days Completed, {} Failed or Crashed{cancelled}.",
                outcomes.succeeded, outcomes.failed
            ),
        };
        let trend = if ended.iter().any(|r| r.started_at.is_some()) {
            duration_trend(ended)
        } else {
            String::new()
        };
        Health {
            rate: outcomes
                .success_rate()
                .map(|r| format!("{:.1} %", r * 100.0)),
            summary,
            trend,
        }
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn iso(t: &Timestamp) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The smallest 1, 2 or 5 × 10ⁿ at least `v` (and at least `floor`).
fn nice_ceiling(v: f64, floor: f64) -> f64 {
    let v = v.max(floor);
    let mut step = 10f64.powi(v.log10().floor() as i32);
    for m in [1.0, 2.0, 5.0, 10.0] {
        if m * step >= v {
            step *= m;
            return step;
        }
    }
    step * 10.0
}

/// A count for an axis label: `2.5`, `950`, `1.2k`, `35k`.
fn count_text(n: f64) -> String {
    if n < 10.0 && n.fract() != 0.0 {
        format!("{n:.1}")
    } else if n < 1000.0 {
        format!("{n:.0}")
    } else if n < 10_000.0 {
        format!("{:.1}k", n / 1000.0)
    } else {
        format!("{:.0}k", n / 1000.0)
    }
}

/// A duration in the unit that reads best: `850 ms`, `4.2 s`, `3.5 min`, `2.1 h`.
pub(crate) fn seconds_text(s: f64) -> String {
    if s < 1.0 {
        format!("{:.0} ms", s * 1000.0)
    } else if s < 120.0 {
        format!("{s:.1} s")
    } else if s < 7200.0 {
        format!("{:.1} min", s / 60.0)
    } else {
        format!("{:.1} h", s / 3600.0)
    }
}

/// How long ago, for an x axis spanning `span` seconds: `24 h ago`, `3.5 d ago`, `now`.
fn ago_text(seconds: i64, span: i64) -> String {
    let trim = |v: f64| {
        let t = format!("{v:.1}");
        t.strip_suffix(".0").map(str::to_string).unwrap_or(t)
    };
    if seconds <= 0 {
        "now".into()
    } else if span <= 2 * 86_400 {
        format!("{} h ago", trim(seconds as f64 / 3600.0))
    } else {
        format!("{} d ago", trim(seconds as f64 / 86_400.0))
    }
}

/// Horizontal grid lines at 0, half and the top of the y range, with their labels.
fn grid(out: &mut String, height: f64, top_value: f64, label: impl Fn(f64) -> String) {
    let plot_h = height - TOP - BOTTOM;
    for k in [0.0, 0.5, 1.0] {
        let y = TOP + plot_h * (1.0 - k);
        let _ = write!(
            out,
            r#"<line class="grid" x1="{LEFT}" x2="{}" y1="{y:.1}" y2="{y:.1}"/><text class="axis" x="{}" y="{:.1}" text-anchor="end">{}</text>"#,
            WIDTH - RIGHT,
            LEFT - 6.0,
            y + 4.0,
            esc(&label(top_value * k))
        );
    }
}

/// The dashboard's chart: one bar per bucket (oldest first, the last ending now), stacked
/// by state, its width its share of the window.
pub(crate) fn runs_over_time(buckets: &[RunBucket]) -> String {
    const HEIGHT: f64 = 220.0;
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let top = nice_ceiling(
        buckets.iter().map(RunBucket::total).max().unwrap_or(0) as f64,
        1.0,
    );
    let (from, to) = match (buckets.first(), buckets.last()) {
        (Some(f), Some(l)) => (f.start, l.end),
        _ => (Timestamp::default(), Timestamp::default()),
    };
    let span_us = (to - from).num_microseconds().unwrap_or(1).max(1) as f64;
    let x_of =
        |t: Timestamp| LEFT + plot_w * (t - from).num_microseconds().unwrap_or(0) as f64 / span_us;
    let span = (to - from).num_seconds();
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<svg class="chart" id="runs-chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="runs created over the last {}, by state" data-buckets="{}">"#,
        esc(&ago_text(span, span).replace(" ago", "")),
        buckets.len()
    );
    grid(&mut out, HEIGHT, top, count_text);
    for b in buckets {
        let x = x_of(b.start) + 1.0;
        let bar_w = (x_of(b.end) - x - 1.0).max(1.0);
        let _ = write!(
            out,
            r#"<g class="bar" data-start="{}" data-end="{}" data-total="{}">"#,
            iso(&b.start),
            iso(&b.end),
            b.total()
        );
        let mut y = TOP + plot_h;
        for state in STACK {
            let Some(&count) = b.counts.get(&state) else {
                continue;
            };
            let h = plot_h * count as f64 / top;
            y -= h;
            let _ = write!(
                out,
                r#"<rect x="{x:.1}" y="{y:.1}" width="{bar_w:.1}" height="{h:.1}" style="fill:var(--s-{s})" data-state="{s}" data-count="{count}"><title>{s}: {count} created {} – {} UTC</title></rect>"#,
                b.start.format("%a %H:%M"),
                b.end.format("%a %H:%M"),
                s = state.as_str(),
            );
        }
        out.push_str("</g>");
    }
    for k in 0..=4 {
        let x = LEFT + plot_w * f64::from(k) / 4.0;
        let anchor = match k {
            0 => "start",
            4 => "end",
            _ => "middle",
        };
        let ago = span - span * i64::from(k) / 4;
        let _ = write!(
            out,
            r#"<text class="axis" x="{x:.1}" y="{:.1}" text-anchor="{anchor}">{}</text>"#,
            HEIGHT - 6.0,
            ago_text(ago, span)
        );
    }
    out.push_str("</svg>");
    out
}

/// A deployment's duration trend: one bar per run that started and ended (`runs`, most
/// recent first, as the store gives them), drawn oldest to newest, its height the run's
/// duration and its colour its final state, each a link to the run; a dashed line marks
/// the median.
pub(crate) fn duration_trend(runs: &[EndedRun]) -> String {
    const HEIGHT: f64 = 170.0;
    let bars: Vec<(&EndedRun, f64)> = runs
        .iter()
        .rev()
        .filter_map(|r| {
            let s = r.started_at?;
            let us = (r.ended_at - s).num_microseconds().unwrap_or(0).max(0);
            Some((r, us as f64 / 1e6))
        })
        .collect();
    let seconds: Vec<f64> = bars.iter().map(|b| b.1).collect();
    let max = seconds.iter().copied().fold(0.0, f64::max);
    let top = nice_ceiling(max, 0.001);
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let slot = plot_w / bars.len().max(20) as f64;
    let bar_w = (slot - 2.0).max(1.0);
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<svg class="chart" id="duration-chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="durations of the last {} runs to end" data-runs="{}">"#,
        bars.len(),
        bars.len()
    );
    grid(&mut out, HEIGHT, top, seconds_text);
    for (i, (r, s)) in bars.iter().enumerate() {
        let x = LEFT + slot * i as f64 + 1.0;
        let h = (plot_h * s / top).max(1.0);
        let y = TOP + plot_h - h;
        let _ = write!(
            out,
            r#"<a href="/runs/{id}"><rect class="run" x="{x:.1}" y="{y:.1}" width="{bar_w:.1}" height="{h:.1}" style="fill:var(--s-{st})" data-run="{id}" data-state="{st}" data-seconds="{s:.3}"><title>{}: {st}, {}</title></rect></a>"#,
            esc(&r.name),
            seconds_text(*s),
            id = r.id,
            st = r.state.as_str(),
        );
    }
    if let Some(m) = weir_core::trend::median(&seconds) {
        let y = TOP + plot_h * (1.0 - m / top);
        let _ = write!(
            out,
            r#"<line class="median" x1="{LEFT}" x2="{}" y1="{y:.1}" y2="{y:.1}" data-seconds="{m:.3}"/><text class="axis" x="{}" y="{:.1}" text-anchor="end">median {}</text>"#,
            WIDTH - RIGHT,
            WIDTH - RIGHT,
            (y - 4.0).max(TOP + 8.0),
            seconds_text(m)
        );
    }
    let _ = write!(
        out,
        r#"<text class="axis" x="{LEFT}" y="{:.1}">oldest</text><text class="axis" x="{:.1}" y="{:.1}" text-anchor="end">latest</text>"#,
        HEIGHT - 6.0,
        LEFT + slot * bars.len() as f64,
        HEIGHT - 6.0
    );
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone, Utc};
    use uuid::Uuid;

    #[test]
    fn ranges_parse_and_name_the_choices() {
        assert_eq!(Range::parse(None), Ok(Range::Day));
        assert_eq!(Range::parse(Some("7d")), Ok(Range::Week));
        assert_eq!(Range::Week.hours_per_bar(), 6);
        let e = Range::parse(Some("30d")).expect_err("not a range");
        assert!(e.contains("\"30d\"") && e.contains("range=7d"), "{e}");
    }

    #[test]
    fn axis_tops_are_round() {
        assert_eq!(nice_ceiling(0.0, 1.0), 1.0);
        assert_eq!(nice_ceiling(3.0, 1.0), 5.0);
        assert_eq!(nice_ceiling(11.0, 1.0), 20.0);
        assert_eq!(nice_ceiling(50.0, 1.0), 50.0);
        assert_eq!(nice_ceiling(720.0, 1.0), 1000.0);
        assert_eq!(nice_ceiling(0.3, 0.001), 0.5);
    }

    #[test]
    fn hours_fall_into_aligned_bars() {
        let t = |h: u32, m: u32| Utc.with_ymd_and_hms(2026, 12, 1, h, m, 0).unwrap();
        let hour = |h: u32, pairs: &[(StateKind, u64)]| HourCounts {
            hour: t(h, 0),
            counts: pairs.iter().copied().collect(),
        };
        // 01:30 to 13:10 in six-hour bars: 01:30–06:00, 06:00–12:00, 12:00–13:10.
        let hours = [
            hour(1, &[(StateKind::Completed, 2)]),
            hour(5, &[(StateKind::Completed, 1), (StateKind::Failed, 1)]),
            hour(6, &[(StateKind::Failed, 3)]),
            hour(13, &[(StateKind::Running, 1)]),
        ];
        let b = buckets(&hours, t(1, 30), t(13, 10), 6);
        let spans: Vec<_> = b.iter().map(|b| (b.start, b.end)).collect();
        assert_eq!(
            spans,
            [
                (t(1, 30), t(6, 0)),
                (t(6, 0), t(12, 0)),
                (t(12, 0), t(13, 10))
            ]
        );
        assert_eq!(
            b[0].counts,
            BTreeMap::from([(StateKind::Completed, 3), (StateKind::Failed, 1)])
        );
        assert_eq!(b[1].total(), 3);
        assert_eq!(b[2].counts, BTreeMap::from([(StateKind::Running, 1)]));
        assert_eq!(
            buckets(&hours, t(2, 0), t(4, 30), 1).len(),
            3,
            "hourly: 2, 3, 4–4:30"
        );
    }

    #[test]
    fn bars_stack_to_their_totals() {
        let t0 = Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap();
        let buckets = vec![
            RunBucket {
                start: t0,
                end: t0 + Duration::hours(1),
                counts: BTreeMap::from([(StateKind::Completed, 6), (StateKind::Failed, 4)]),
            },
            RunBucket {
                start: t0 + Duration::hours(1),
                end: t0 + Duration::hours(2),
                counts: BTreeMap::new(),
            },
        ];
        let svg = runs_over_time(&buckets);
        assert_eq!(svg.matches("<g class=\"bar\"").count(), 2);
        assert!(svg.contains(r#"data-total="10""#), "{svg}");
        assert!(svg.contains(r#"data-state="Completed" data-count="6""#));
        // Top of the axis is 10: the Failed segment is 4/10 of the plot's 184 px.
        assert!(
            svg.contains(r#"height="73.6" style="fill:var(--s-Failed)""#),
            "{svg}"
        );
        assert!(svg.contains(">2 h ago<") && svg.contains(">now<"), "{svg}");
    }

    #[test]
    fn the_trend_draws_started_runs_oldest_first() {
        let t0 = Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap();
        let run = |name: &str, secs: i64, state, started: bool| EndedRun {
            id: Uuid::now_v7(),
            name: name.into(),
            state,
            started_at: started.then_some(t0),
            ended_at: t0 + Duration::seconds(secs),
        };
        // Most recent first, as the store returns them.
        let runs = vec![
            run("c", 3, StateKind::Failed, true),
            run("never-started", 9, StateKind::Cancelled, false),
            run("a<b", 1, StateKind::Completed, true),
        ];
        let svg = duration_trend(&runs);
        assert!(svg.contains(r#"data-runs="2""#), "{svg}");
        let first = svg.find("a&lt;b: Completed").expect("escaped name");
        let second = svg.find("c: Failed, 3.0 s").expect("second bar");
        assert!(first < second, "oldest first");
        assert!(
            svg.contains(r#"class="median""#) && svg.contains("median 1.0 s"),
            "{svg}"
        );
        assert!(!svg.contains("never-started"));
    }
}
