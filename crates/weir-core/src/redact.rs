//! Redacting secret values from text: what agents do to a run's output and what the SDK does
//! to the log lines, messages and subflow parameters it reports.

use std::borrow::Cow;

/// What a redacted secret is replaced with.
pub const REDACTED: &str = "***";

/// Replaces secret values in output lines with [`REDACTED`].
///
/// Every non-empty value is redacted, however short: a one-character secret would turn every
/// occurrence of that character into `***`, which is ugly but never leaks; choosing secrets
/// worth the name is the user's business. A value spanning several lines (a PEM key) is
/// redacted line by line, since output is matched one line at a time. Longer values are
/// replaced first, so a secret that contains another is redacted whole.
#[derive(Clone, Default)]
pub struct Redactor {
    /// Distinct non-empty values, longest first.
    secrets: Vec<String>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redactor")
            .field("secrets", &self.secrets.len())
            .finish()
    }
}

impl Redactor {
    /// A redactor for these secret values.
    pub fn new<S: AsRef<str>>(values: impl IntoIterator<Item = S>) -> Self {
        let mut secrets: Vec<String> = values
            .into_iter()
            .flat_map(|v| {
                v.as_ref()
                    .lines()
                    .map(|l| l.trim_end_matches('\r').to_owned())
                    .collect::<Vec<_>>()
            })
            .filter(|v| !v.is_empty())
            .collect();
        secrets.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        secrets.dedup();
        Self { secrets }
    }

    /// Whether there is nothing to redact.
    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }

    /// `line` with every occurrence of every secret replaced by [`REDACTED`].
    pub fn redact<'a>(&self, line: &'a str) -> Cow<'a, str> {
        let mut out = Cow::Borrowed(line);
        for secret in &self.secrets {
            if out.contains(secret.as_str()) {
                out = Cow::Owned(out.replace(secret.as_str(), REDACTED));
            }
        }
        out
    }

    /// Length of the longest tail of `bytes` that is the start (not the whole) of a secret:
    /// cutting there would leave half a secret on each side, unredacted.
    pub fn partial_tail(&self, bytes: &[u8]) -> usize {
        self.secrets
            .iter()
            .filter_map(|s| {
                let s = s.as_bytes();
                let longest = (s.len() - 1).min(bytes.len());
                (1..=longest).rev().find(|&k| bytes.ends_with(&s[..k]))
            })
            .max()
            .unwrap_or(0)
    }
}
