//! Printing that never panics.
//!
//! `println!`/`eprintln!` panic when the write fails, and a flow process launched by an
//! agent writes into pipes that agent reads: when the agent is killed, every later write
//! fails with `EPIPE`. A flow process must outlive its agent (and its server) and still
//! deliver its reports, so the SDK's own messages go through these macros, which drop what
//! cannot be written.

/// Writes a line to stderr, ignoring failures (see the module docs).
macro_rules! err {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr().lock(), $($arg)*);
    }};
}

/// Writes a line to stdout, ignoring failures (see the module docs).
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

pub(crate) use {err, out};
