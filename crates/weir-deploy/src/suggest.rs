//! "Did you mean …?" for misspelt keys.

/// Words people write for a key under another name, mapped to the key.
const ALIASES: &[(&str, &str)] = &[
    ("params", "parameters"),
    ("parameter", "parameters"),
    ("args", "command"),
    ("cmd", "command"),
    ("queue", "work_queue"),
    ("tz", "timezone"),
    ("time_zone", "timezone"),
    ("every", "interval"),
    ("delay", "retry_delay"),
    ("environment", "env"),
    ("docker_image", "image"),
    ("name", "flow"),
];

/// The known key `unknown` was most likely meant to be, if any is close enough.
pub(crate) fn suggest<'k>(unknown: &str, known: &[&'k str]) -> Option<&'k str> {
    let lower = unknown.to_ascii_lowercase().replace('-', "_");
    if let Some(k) = known.iter().find(|k| **k == lower) {
        return Some(k);
    }
    if let Some((_, k)) = ALIASES.iter().find(|(a, _)| *a == lower)
        && let Some(k) = known.iter().find(|known| *known == k)
    {
        return Some(k);
    }
    let limit = (lower.chars().count() / 3).max(2);
    known
        .iter()
        .map(|k| (distance(&lower, k), *k))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Edit distance counting insertions, deletions, substitutions and swaps of neighbours
/// (optimal string alignment).
pub(crate) fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let width = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * width];
    for (i, cell) in d.iter_mut().step_by(width).enumerate() {
        *cell = i;
    }
    for (j, cell) in d.iter_mut().take(width).enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[(i - 1) * width + j] + 1)
                .min(d[i * width + j - 1] + 1)
                .min(d[(i - 1) * width + j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[(i - 2) * width + j - 2] + 1);
            }
            d[i * width + j] = best;
        }
    }
    d[a.len() * width + b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances() {
        assert_eq!(distance("shedule", "schedules"), 2);
        assert_eq!(distance("retires", "retries"), 1);
        assert_eq!(distance("", "abc"), 3);
        assert_eq!(distance("same", "same"), 0);
    }

    #[test]
    fn suggestions() {
        let known = [
            "schedules",
            "retries",
            "retry_delay",
            "env",
            "command",
            "work_queue",
        ];
        assert_eq!(suggest("shedule", &known), Some("schedules"));
        assert_eq!(suggest("retires", &known), Some("retries"));
        assert_eq!(suggest("Command", &known), Some("command"));
        assert_eq!(suggest("work-queue", &known), Some("work_queue"));
        assert_eq!(suggest("queue", &known), Some("work_queue"));
        assert_eq!(suggest("cmd", &known), Some("command"));
        assert_eq!(suggest("tz", &known), None, "alias target not known here");
        assert_eq!(suggest("banana", &known), None);
    }
}
