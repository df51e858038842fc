//! Logs: a `tracing` layer that attributes every event emitted inside a flow run to that flow
//! run and, inside a task, to that task run, and hands it to the run's tracker.
//!
//! Events outside any flow run are printed on stderr. [`init`] installs the layer with an
//! `EnvFilter` read from `WEIR_LOG` (else `RUST_LOG`, else `info`).

use crate::context::{CTX, TASK_RUN};
use std::fmt::Write as _;
use std::io::Write as _;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use weir_core::api::{LogLevel, NewLogLine};

/// The `tracing` layer forwarding events to the current flow run's tracker.
#[derive(Debug, Clone, Copy, Default)]
pub struct WeirLayer {
    quiet_outside: bool,
}

impl WeirLayer {
    /// A layer that also prints events emitted outside flow runs on stderr.
    pub fn new() -> Self {
        WeirLayer::default()
    }

    /// Drop events emitted outside flow runs instead of printing them.
    pub fn quiet_outside(mut self) -> Self {
        self.quiet_outside = true;
        self
    }
}

#[derive(Default)]
struct Message(String);

impl Visit for Message {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.push_front(value);
        } else {
            let _ = write!(self.0, " {}={}", field.name(), value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.push_front(&format!("{value:?}"));
        } else {
            let _ = write!(self.0, " {}={:?}", field.name(), value);
        }
    }
}

impl Message {
    fn push_front(&mut self, s: &str) {
        self.0.insert_str(0, s);
    }
}

fn level(l: &Level) -> LogLevel {
    match *l {
        Level::TRACE => LogLevel::Trace,
        Level::DEBUG => LogLevel::Debug,
        Level::INFO => LogLevel::Info,
        Level::WARN => LogLevel::Warn,
        _ => LogLevel::Error,
    }
}

impl<S: Subscriber> Layer<S> for WeirLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut msg = Message::default();
        event.record(&mut msg);
        let lvl = level(event.metadata().level());
        let task_run_id = TASK_RUN.try_with(|t| *t).ok().flatten();
        let sent = CTX.try_with(|ctx| {
            ctx.env.tracker.log(NewLogLine {
                flow_run_id: ctx.id,
                task_run_id,
                at: chrono::Utc::now(),
                level: lvl,
                message: msg.0.trim_start().to_string(),
                attempt: Some(ctx.attempt),
                stream: None,
                seq: None,
            });
        });
        if sent.is_err() && !self.quiet_outside {
            let now = chrono::Local::now().format("%H:%M:%S%.3f");
            let mut err = std::io::stderr().lock();
            let _ = writeln!(
                err,
                "{now} {} {}: {}",
                event.metadata().level(),
                event.metadata().target(),
                msg.0.trim_start()
            );
        }
    }
}

/// Installs the global subscriber (filter + [`WeirLayer`]). Returns false when a global
/// subscriber was already installed (then nothing changes).
pub fn init() -> bool {
    install(WeirLayer::new())
}

/// Like [`init`], with a configured layer.
pub fn install(layer: WeirLayer) -> bool {
    let filter = EnvFilter::try_from_env("WEIR_LOG")
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::registry()
        .with(filter)
        .with(layer)
        .try_init()
        .is_ok()
}
