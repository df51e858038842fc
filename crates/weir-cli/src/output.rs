//! Printing: aligned tables for people, JSON for scripts.

use serde::Serialize;

/// Prints rows as an aligned table under `headers`.
pub fn table(headers: &[&str], rows: Vec<Vec<String>>) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in &rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<String>| {
        let mut out = String::new();
        for (i, c) in cells.iter().enumerate() {
            let w = widths.get(i).copied().unwrap_or(0);
            if i + 1 == cells.len() {
                out.push_str(c);
            } else {
                out.push_str(&format!("{c:<w$}  "));
            }
        }
        println!("{}", out.trim_end());
    };
    line(headers.iter().map(|h| h.to_string()).collect());
    for row in rows {
        line(row);
    }
}

/// Prints a list the way every `… ls` command does: with `--json`, `value` (the list, or the
/// page holding it) as JSON; otherwise `empty` (a sentence saying what to do next) when there
/// are no `items` and a sentence is given, else a table of one `row` per item under
/// `headers`.
pub fn list<T: Serialize, I>(
    json: bool,
    value: &T,
    items: &[I],
    empty: Option<&str>,
    headers: &[&str],
    row: impl Fn(&I) -> Vec<String>,
) {
    if json {
        self::json(value);
    } else if let Some(empty) = empty.filter(|_| items.is_empty()) {
        println!("{empty}");
    } else {
        table(headers, items.iter().map(row).collect());
    }
}

/// Prints a value as pretty JSON.
pub fn json<T: Serialize>(value: &T) {
    match serde_json::to_string_pretty(value) {
        Ok(s) => println!("{s}"),
        Err(e) => eprintln!("error: cannot print JSON: {e}"),
    }
}

/// A time for tables: local time, to the second.
pub fn time(t: &weir_core::Timestamp) -> String {
    t.with_timezone(&chrono::Local)
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

/// A duration between two times, short.
pub fn duration(start: Option<weir_core::Timestamp>, end: Option<weir_core::Timestamp>) -> String {
    match (start, end) {
        (Some(s), Some(e)) => {
            let ms = (e - s).num_milliseconds();
            if ms < 1000 {
                format!("{ms}ms")
            } else {
                format!("{:.1}s", ms as f64 / 1000.0)
            }
        }
        (Some(_), None) => "running".into(),
        _ => String::new(),
    }
}
