//! Turning a launched run's raw output bytes into [`OutputLine`]s: splitting into lines of
//! bounded length, lossy UTF-8 decoding and secret redaction.
//!
//! Shared by every launcher, so a container's log stream is cut and redacted exactly like a
//! local process's pipes.

use super::{OutputLine, Stream};
use std::borrow::Cow;
pub use weir_core::redact::{REDACTED, Redactor};

/// Longest line, in bytes, a launcher emits. A longer line (or output that never ends a
/// line, such as a progress bar redrawn with `\r`) is split into pieces of at most this
/// many bytes, so a run cannot make the agent buffer unbounded memory.
pub const MAX_LINE_BYTES: usize = 16 * 1024;

/// Splits one output stream's bytes into redacted [`OutputLine`]s.
///
/// Lines end at `\n` (a `\r` before it is dropped); a line longer than [`MAX_LINE_BYTES`] is
/// emitted in pieces, cut on a UTF-8 character boundary and never inside a secret (when the
/// secret is shorter than the piece). Invalid UTF-8 becomes U+FFFD.
#[derive(Debug)]
pub struct LineSplitter {
    stream: Stream,
    redactor: std::sync::Arc<Redactor>,
    buf: Vec<u8>,
    /// How much of `buf` is known to hold no `\n`.
    scanned: usize,
    /// The number of the next line, when lines are numbered ([`LineSplitter::numbered`]).
    next: Option<u64>,
    /// A run token's start (`weirrun_<run>_<attempt>_`): it and the rest of the token are
    /// redacted where the token itself is not known ([`LineSplitter::redact_token`]).
    token_prefix: Option<String>,
}

impl LineSplitter {
    /// A splitter for `stream`, redacting with `redactor`.
    pub fn new(stream: Stream, redactor: std::sync::Arc<Redactor>) -> Self {
        Self {
            stream,
            redactor,
            buf: Vec::new(),
            scanned: 0,
            next: None,
            token_prefix: None,
        }
    }

    /// A splitter whose lines carry their number in the stream ([`OutputLine::seq`]), from 0:
    /// the same bytes always give the same lines under the same numbers, however they were
    /// chunked when read.
    pub fn numbered(stream: Stream, redactor: std::sync::Arc<Redactor>) -> Self {
        let mut s = Self::new(stream, redactor);
        s.next = Some(0);
        s
    }

    /// Also redacts every run token starting with `prefix` (`weirrun_<run>_<attempt>_`),
    /// through the end of the token: for output read where the token's value is not known.
    pub fn redact_token(mut self, prefix: String) -> Self {
        self.token_prefix = Some(prefix).filter(|p| !p.is_empty());
        self
    }

    /// Feeds `bytes` and appends every line they complete to `out`.
    pub fn push(&mut self, bytes: &[u8], out: &mut Vec<OutputLine>) {
        let first = out.len();
        self.buf.extend_from_slice(bytes);
        let mut start = 0;
        loop {
            // A `\n` at `start + MAX_LINE_BYTES` still ends a line of the maximum length.
            let limit = (start + MAX_LINE_BYTES + 1).min(self.buf.len());
            let from = start.max(self.scanned).min(limit);
            if let Some(pos) = self.buf[from..limit].iter().position(|&b| b == b'\n') {
                let end = from + pos;
                let line = &self.buf[start..end];
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                out.push(self.line(line));
                start = end + 1;
            } else if self.buf.len() - start > MAX_LINE_BYTES {
                let cut = self.cut_point(&self.buf[start..]);
                out.push(self.line(&self.buf[start..start + cut]));
                start += cut;
            } else {
                break;
            }
        }
        self.buf.drain(..start);
        self.scanned = self.buf.len();
        self.number(&mut out[first..]);
    }

    /// The unfinished last line, if any: call when the stream has ended.
    pub fn finish(&mut self) -> Option<OutputLine> {
        if self.buf.is_empty() {
            return None;
        }
        let rest = std::mem::take(&mut self.buf);
        self.scanned = 0;
        let mut line = [self.line(&rest)];
        self.number(&mut line);
        let [line] = line;
        Some(line)
    }

    /// Where to cut `rest`, longer than [`MAX_LINE_BYTES`] and holding no `\n` in reach: at most [`MAX_LINE_BYTES`], on a character boundary,
    /// before any partial secret.
    fn cut_point(&self, rest: &[u8]) -> usize {
        let is_continuation = |b: u8| b & 0b1100_0000 == 0b1000_0000;
        let mut cut = MAX_LINE_BYTES;
        // A UTF-8 character is at most 4 bytes: back off at most 3 continuation bytes.
        let mut back = 0;
        while back < 3 && cut > 0 && is_continuation(rest[cut]) {
            cut -= 1;
            back += 1;
        }
        if is_continuation(rest[cut]) {
            // Not valid UTF-8 here anyway: cut anywhere.
            cut = MAX_LINE_BYTES;
        }
        let partial = self.redactor.partial_tail(&rest[..cut]);
        if partial > 0 && partial < cut {
            cut -= partial;
        }
        cut
    }

    fn line(&self, bytes: &[u8]) -> OutputLine {
        let text = String::from_utf8_lossy(bytes);
        let mut text = match self.redactor.redact(&text) {
            Cow::Borrowed(_) => text.into_owned(),
            Cow::Owned(s) => s,
        };
        if let Some(prefix) = &self.token_prefix {
            text = redact_tokens(&text, prefix);
        }
        OutputLine {
            stream: self.stream,
            text,
            seq: None,
        }
    }

    /// Gives `lines` their numbers, when this splitter numbers lines.
    fn number(&mut self, lines: &mut [OutputLine]) {
        if let Some(next) = &mut self.next {
            for l in lines {
                l.seq = Some(*next);
                *next += 1;
            }
        }
    }
}

/// `text` with every token starting with `prefix` replaced by [`REDACTED`], through its last
/// token character (ASCII letters, digits, `-` and `_`).
fn redact_tokens(text: &str, prefix: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(prefix) {
        out.push_str(&rest[..at]);
        out.push_str(REDACTED);
        let tail = &rest[at + prefix.len()..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
            .unwrap_or(tail.len());
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn split(redact: &[&str], chunks: &[&[u8]]) -> Vec<String> {
        let mut s = LineSplitter::new(Stream::Stdout, Arc::new(Redactor::new(redact)));
        let mut out = Vec::new();
        for c in chunks {
            s.push(c, &mut out);
        }
        out.extend(s.finish());
        out.into_iter().map(|l| l.text).collect()
    }

    #[test]
    fn lines_across_chunks() {
        assert_eq!(
            split(&[], &[b"a\nb", b"c\r\n", b"\n", b"tail"]),
            vec!["a", "bc", "", "tail"]
        );
    }

    #[test]
    fn long_line_is_split_on_char_boundary() {
        let mut line = "x".repeat(MAX_LINE_BYTES - 1).into_bytes();
        line.extend_from_slice("é".repeat(10).as_bytes());
        line.push(b'\n');
        let out = split(&[], &[&line]);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].len(), MAX_LINE_BYTES - 1);
        assert_eq!(out[1], "é".repeat(10));
        assert!(out.iter().all(|l| !l.contains('\u{FFFD}')));
    }

    #[test]
    fn long_complete_lines_and_short_ones_in_one_chunk() {
        let mut data = Vec::new();
        data.extend_from_slice(b"short\n");
        data.extend(std::iter::repeat_n(b'y', MAX_LINE_BYTES * 2 + 5));
        data.extend_from_slice(b"\nnext\nlast");
        let out = split(&[], &[&data]);
        assert_eq!(out[0], "short");
        assert_eq!(out[1].len(), MAX_LINE_BYTES);
        assert_eq!(out[2].len(), MAX_LINE_BYTES);
        assert_eq!(out[3], "yyyyy");
        assert_eq!(&out[4..], ["next", "last"]);
    }

    #[test]
    fn invalid_utf8_is_replaced() {
        assert_eq!(split(&[], &[b"a\xffb\n"]), vec!["a\u{FFFD}b"]);
    }

    #[test]
    fn redacts_all_occurrences_longest_first() {
        assert_eq!(
            split(
                &["hunter2", "hunter2-long"],
                &[b"x hunter2 hunter2-long y\n"]
            ),
            vec!["x *** *** y"]
        );
        assert_eq!(split(&["", "a"], &[b"banana\n"]), vec!["b***n***n***"]);
    }

    #[test]
    fn multi_line_secret_is_redacted_per_line() {
        assert_eq!(
            split(&["-----BEGIN-----\r\nAAAABBBB\n"], &[b"k=AAAABBBB\n"]),
            vec!["k=***"]
        );
    }

    #[test]
    fn numbered_lines_do_not_depend_on_chunking() {
        let data = b"one\ntwo\r\n\nfour";
        let lines = |chunks: &[&[u8]]| {
            let mut s = LineSplitter::numbered(Stream::Stderr, Arc::new(Redactor::new([""; 0])));
            let mut out = Vec::new();
            for c in chunks {
                s.push(c, &mut out);
            }
            out.extend(s.finish());
            out.into_iter().map(|l| (l.seq, l.text)).collect::<Vec<_>>()
        };
        let whole = lines(&[data]);
        assert_eq!(
            whole,
            vec![
                (Some(0), "one".to_string()),
                (Some(1), "two".to_string()),
                (Some(2), String::new()),
                (Some(3), "four".to_string())
            ]
        );
        let bytes: Vec<&[u8]> = data.chunks(1).collect();
        assert_eq!(lines(&bytes), whole);
        let mut plain = LineSplitter::new(Stream::Stdout, Arc::new(Redactor::new([""; 0])));
        let mut out = Vec::new();
        plain.push(b"x\n", &mut out);
        assert_eq!(out[0].seq, None);
    }

    #[test]
    fn tokens_are_redacted_by_their_start() {
        let prefix = "weirrun_0193abc_2_";
        let mut s = LineSplitter::new(Stream::Stdout, Arc::new(Redactor::new([""; 0])))
            .redact_token(prefix.to_string());
        let mut out = Vec::new();
        s.push(
            b"WEIR_API_KEY=weirrun_0193abc_2_9f8e7d6c5b4a and weirrun_0193abc_2_ff.\nweirrun_0193abc_3_aa\n",
            &mut out,
        );
        assert_eq!(out[0].text, "WEIR_API_KEY=*** and ***.");
        assert_eq!(
            out[1].text, "weirrun_0193abc_3_aa",
            "another attempt's token is not this one"
        );
    }

    #[test]
    fn split_never_cuts_a_secret() {
        let secret = "s3cr3t-value";
        let mut data = "z".repeat(MAX_LINE_BYTES - 4).into_bytes();
        data.extend_from_slice(secret.as_bytes());
        data.extend_from_slice(b"end\n");
        let out = split(&[secret], &[&data]);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].len(), MAX_LINE_BYTES - 4);
        assert_eq!(out[1], "***end");
    }
}
