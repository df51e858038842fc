//! The run page's timeline: an SVG Gantt chart of task runs. Up to [`MAX_BARS`] task runs are
//! drawn one bar each; larger runs (mapped tasks, 10,000-task chains) are drawn one bar per
//! task name spanning its first start to last end, labelled with counts, so the chart stays
//! readable and small whatever the run's size.

use std::fmt::Write;
use weir_core::Timestamp;
use weir_core::api::TaskRun;
use weir_store::TaskGroup;

/// Most bars drawn one per task run.
pub(crate) const MAX_BARS: usize = 150;
const ROW: f64 = 22.0;
const LABEL: f64 = 220.0;
const WIDTH: f64 = 1000.0;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

struct Bar {
    label: String,
    title: String,
    start: Timestamp,
    end: Timestamp,
    color: String,
}

fn svg(bars: &[Bar], run_start: Timestamp, run_end: Timestamp) -> String {
    let span = ((run_end - run_start).num_microseconds().unwrap_or(1) as f64).max(1.0);
    let x = |t: Timestamp| {
        LABEL
            + (WIDTH - LABEL - 10.0)
                * ((t - run_start).num_microseconds().unwrap_or(0) as f64 / span)
    };
    let height = ROW * bars.len() as f64 + 24.0;
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<svg class="gantt" viewBox="0 0 {WIDTH} {height}" role="img" aria-label="task timeline">"#
    );
    let _ = write!(
        out,
        r#"<text x="{LABEL}" y="14" fill="currentColor">0</text><text x="{}" y="14" text-anchor="end">{}</text>"#,
        WIDTH - 10.0,
        span_text(span)
    );
    for (i, b) in bars.iter().enumerate() {
        let y = 22.0 + ROW * i as f64;
        let x0 = x(b.start);
        let w = (x(b.end) - x0).max(2.0);
        let _ = write!(
            out,
            r#"<text x="4" y="{:.1}">{}</text><rect x="{x0:.1}" y="{:.1}" width="{w:.1}" height="{:.1}" rx="3" fill="{}"><title>{}</title></rect>"#,
            y + 14.0,
            esc(&b.label),
            y + 3.0,
            ROW - 6.0,
            b.color,
            esc(&b.title)
        );
    }
    out.push_str("</svg>");
    out
}

/// A time span given in microseconds, in the unit that reads best: `850 µs`, `12.5 ms`,
/// `340 ms`, `4.2 s`, `3.5 min`.
fn span_text(us: f64) -> String {
    if us < 1_000.0 {
        format!("{us:.0} µs")
    } else if us < 10_000.0 {
        format!("{:.1} ms", us / 1_000.0)
    } else if us < 1_000_000.0 {
        format!("{:.0} ms", us / 1_000.0)
    } else if us < 120_000_000.0 {
        format!("{:.1} s", us / 1_000_000.0)
    } else {
        format!("{:.1} min", us / 60_000_000.0)
    }
}

/// One bar per task run.
pub(crate) fn per_task(tasks: &[TaskRun], now: Timestamp) -> String {
    if tasks.is_empty() {
        return String::new();
    }
    let start = tasks
        .iter()
        .map(|t| t.started_at.unwrap_or(t.created_at))
        .min()
        .unwrap_or(now);
    let end = tasks
        .iter()
        .map(|t| t.ended_at.unwrap_or(now))
        .max()
        .unwrap_or(now);
    let bars: Vec<Bar> = tasks
        .iter()
        .map(|t| {
            let s = t.started_at.unwrap_or(t.created_at);
            let e = t.ended_at.unwrap_or(now);
            let label = match t.map_index {
                Some(i) => format!("{}[{i}]", t.task),
                None => t.task.clone(),
            };
            Bar {
                title: format!("{label}: {} ({} ms)", t.state, (e - s).num_milliseconds()),
                label,
                start: s,
                end: e,
                color: format!("var(--s-{})", t.state),
            }
        })
        .collect();
    svg(&bars, start, end.max(start))
}

/// One bar per task name, for large runs.
pub(crate) fn grouped(groups: &[TaskGroup]) -> String {
    if groups.is_empty() {
        return String::new();
    }
    let start = groups.iter().map(|g| g.first_at).min().unwrap_or_default();
    let end = groups.iter().map(|g| g.last_at).max().unwrap_or(start);
    let bars: Vec<Bar> = groups
        .iter()
        .map(|g| {
            let state = if g.failed > 0 {
                "Failed"
            } else if g.completed == g.count {
                "Completed"
            } else {
                "Running"
            };
            Bar {
                label: format!("{} ×{}", g.task, g.count),
                title: format!(
                    "{}: {} task runs, {} completed, {} failed",
                    g.task, g.count, g.completed, g.failed
                ),
                start: g.first_at,
                end: g.last_at,
                color: format!("var(--s-{state})"),
            }
        })
        .collect();
    svg(&bars, start, end.max(start))
}

#[cfg(test)]
mod tests {
    use super::span_text;

    #[test]
    fn spans_read_in_a_fitting_unit() {
        assert_eq!(span_text(850.0), "850 µs");
        assert_eq!(span_text(12_540.0), "13 ms");
        assert_eq!(span_text(4_200.0), "4.2 ms");
        assert_eq!(span_text(4_200_000.0), "4.2 s");
        assert_eq!(span_text(210_000_000.0), "3.5 min");
    }
}
