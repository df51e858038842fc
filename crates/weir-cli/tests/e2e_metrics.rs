//! `/metrics` of a real `weir server` (SQLite, then PostgreSQL) after real runs, read with a
//! real Prometheus text parser (`prometheus-parse`): each family an operator alerts on is
//! there with the type it declares, and its values are what the runs imply.
//!
//! The runs: `etl` completes and `fails` fails on an agent serving `default` (limit 4); a run
//! on queue `nightly`, which no agent serves, waits and turns Late; a run on `ghosts` is
//! claimed by an agent that then never heartbeats, so the crash detector ends it Crashed, and
//! a notification rule on Crashed delivers one webhook to a receiver in the test.

mod common;

use common::{ServerOptions, Weir, wait_until};
use prometheus_parse::{Sample, Scrape, Value};
use std::io::{Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use weir_core::StateKind;
use weir_core::api::RegisterAgent;
use weir_core::api::notifications::{
    Destination, NotificationEvent, NotificationRuleSpec, RateLimit, RuleSource,
};
use weir_core::infrastructure::InfrastructureKind;

const TOML: &str = r#"project = "dev"

[defaults]
command = ["{flows}"]
work_queue = "default"

[deployments.etl]
parameters = { rows = 5 }

[deployments.fails]

[deployments.nightly]
flow = "etl"
work_queue = "nightly"

[deployments.ghostly]
flow = "etl"
work_queue = "ghosts"
"#;

/// A webhook receiver: answers 200 to every request and counts them.
struct Receiver {
    url: String,
    got: Arc<AtomicUsize>,
}

impl Receiver {
    fn start() -> Receiver {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the receiver");
        let url = format!(
            "http://{}/hook",
            listener.local_addr().expect("receiver address")
        );
        let got = Arc::new(AtomicUsize::new(0));
        let count = got.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
                // Read the head, then the body its Content-Length announces.
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let complete = loop {
                    let Ok(n) = conn.read(&mut chunk) else {
                        break false;
                    };
                    if n == 0 {
                        break false;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let length = text[..end]
                            .lines()
                            .find_map(|l| {
                                let (k, v) = l.split_once(':')?;
                                k.eq_ignore_ascii_case("content-length")
                                    .then(|| v.trim().parse::<usize>().ok())?
                            })
                            .unwrap_or(0);
                        if buf.len() >= end + 4 + length {
                            break true;
                        }
                    }
                };
                if complete {
                    count.fetch_add(1, Ordering::SeqCst);
                    let _ = conn.write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                    );
                }
            }
        });
        Receiver { url, got }
    }
}

/// One scrape, parsed, with lookups by family and labels.
struct Metrics {
    text: String,
    samples: Vec<Sample>,
}

impl Metrics {
    fn parse(text: String) -> Metrics {
        let scrape = Scrape::parse(text.lines().map(|l| Ok(l.to_string())))
            .expect("the Prometheus parser reads /metrics");
        Metrics {
            text,
            samples: scrape.samples,
        }
    }

    /// The sample of `family` whose labels include every pair of `labels`.
    fn find(&self, family: &str, labels: &[(&str, &str)]) -> Option<&Sample> {
        self.samples
            .iter()
            .find(|s| s.metric == family && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
    }

    /// A gauge's or counter's value, checking its declared type.
    fn value(&self, family: &str, labels: &[(&str, &str)], kind: &str) -> Result<f64, String> {
        match (self.find(family, labels).map(|s| &s.value), kind) {
            (Some(Value::Gauge(v)), "gauge") | (Some(Value::Counter(v)), "counter") => Ok(*v),
            (Some(other), _) => Err(format!("{family}{labels:?} is {other:?}, not a {kind}")),
            (None, _) => Err(format!("no {family}{labels:?}")),
        }
    }

    /// A histogram's total count (its `+Inf` bucket).
    fn histogram_count(&self, family: &str, labels: &[(&str, &str)]) -> Result<f64, String> {
        match self.find(family, labels).map(|s| &s.value) {
            Some(Value::Histogram(buckets)) => buckets
                .iter()
                .find(|b| b.less_than.is_infinite())
                .map(|b| b.count)
                .ok_or_else(|| format!("{family}{labels:?} has no +Inf bucket")),
            Some(other) => Err(format!("{family}{labels:?} is {other:?}, not a histogram")),
            None => Err(format!("no {family}{labels:?}")),
        }
    }

    /// The families the text declares with `# TYPE` that the parser found no sample of.
    fn unparsed_families(&self) -> Vec<String> {
        self.text
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .filter_map(|l| l.split_whitespace().next())
            .filter(|f| !self.samples.iter().any(|s| s.metric == *f))
            .map(str::to_string)
            .collect()
    }
}

fn expect(
    errors: &mut Vec<String>,
    what: &str,
    got: Result<f64, String>,
    want: impl Fn(f64) -> bool,
) {
    match got {
        Ok(v) if want(v) => {}
        Ok(v) => errors.push(format!("{what}: got {v}")),
        Err(e) => errors.push(e),
    }
}

/// Scrapes `/metrics` until every expectation holds (values settle over a few ticks: the
/// silent agent drops out after a lease, the outbox gauge after the delivery loop's pass),
/// then returns the scrape; panics with what was wrong at the end of the wait.
fn settled_scrape(w: &Weir, etl_seconds: f64) -> Metrics {
    let http = reqwest::Client::new();
    wait_until(
        "/metrics to show what the runs imply",
        Duration::from_secs(30),
        || {
            let text = w
                .block_on(async {
                    let resp = http.get(format!("{}/metrics", w.url)).send().await?;
                    resp.error_for_status()?.text().await
                })
                .map_err(|e| e.to_string())?;
            let m = Metrics::parse(text);
            let mut e = Vec::new();
            queue_and_detector_values(&m, &mut e);
            run_values(&m, etl_seconds, &mut e);
            let unparsed = m.unparsed_families();
            if !unparsed.is_empty() {
                e.push(format!(
                    "families the parser found no sample of: {unparsed:?}"
                ));
            }
            if e.is_empty() {
                Ok(m)
            } else {
                Err(e.join("; "))
            }
        },
    )
}

/// Checks the queue gauges (nightly waits with no agent, default has the one live agent,
/// ghosts' agent fell silent), the crash detector's counters and the notifications'; adds
/// what is wrong to `e`.
fn queue_and_detector_values(m: &Metrics, e: &mut Vec<String>) {
    let nightly = [("queue", "nightly")];
    let oldest = m.value("weir_queue_oldest_waiting_seconds", &nightly, "gauge");
    expect(e, "nightly oldest wait ≥ 2 s", oldest, |v| v >= 2.0);
    // The ghosts queue's one agent fell silent beyond a lease.
    let queues = [
        ("nightly", "runs_waiting", 1.0),
        ("nightly", "live_agents", 0.0),
        ("nightly", "free_slots", 0.0),
        ("default", "runs_waiting", 0.0),
        ("default", "oldest_waiting_seconds", 0.0),
        ("default", "live_agents", 1.0),
        ("default", "free_slots", 4.0),
        ("ghosts", "live_agents", 0.0),
        ("ghosts", "runs_waiting", 0.0),
    ];
    for (queue, gauge, want) in queues {
        let got = m.value(&format!("weir_queue_{gauge}"), &[("queue", queue)], "gauge");
        expect(e, &format!("{queue} {gauge}"), got, |v| v == want);
    }
    let unlabelled = [
        ("late runs", "weir_flow_runs_late", "gauge", 1.0),
        (
            "marked late",
            "weir_crash_detector_late_total",
            "counter",
            1.0,
        ),
        (
            "outbox pending",
            "weir_notification_outbox_pending",
            "gauge",
            0.0,
        ),
    ];
    for (what, family, kind, want) in unlabelled {
        expect(e, what, m.value(family, &[], kind), |v| v == want);
    }
    let outcomes = [
        ("weir_crash_detector_expired_leases_total", "Crashed", 1.0),
        ("weir_crash_detector_expired_leases_total", "retry", 0.0),
        ("weir_notifications_total", "delivered", 1.0),
        ("weir_notifications_total", "failed", 0.0),
    ];
    for (family, outcome, want) in outcomes {
        let got = m.value(family, &[("outcome", outcome)], "counter");
        expect(e, &format!("{family} {outcome}"), got, |v| v == want);
    }
}

/// Checks the runs of the last 24 hours by state and the run-duration histograms (the etl
/// run's sum is its `etl_seconds`; the ghostly run, which never started, has none); adds
/// what is wrong to `e`.
fn run_values(m: &Metrics, etl_seconds: f64, e: &mut Vec<String>) {
    for (state, n) in [
        (StateKind::Completed, 1.0),
        (StateKind::Failed, 1.0),
        (StateKind::Late, 1.0),
        (StateKind::Crashed, 1.0),
        (StateKind::Running, 0.0),
    ] {
        expect(
            e,
            &format!("runs in 24 h {state}"),
            m.value("weir_flow_runs_24h", &[("state", state.as_str())], "gauge"),
            |v| v == n,
        );
    }
    for (deployment, state) in [("etl", "Completed"), ("fails", "Failed")] {
        let labels = [
            ("project", "dev"),
            ("deployment", deployment),
            ("state", state),
        ];
        expect(
            e,
            &format!("{deployment} {state} durations"),
            m.histogram_count("weir_flow_run_duration_seconds", &labels),
            |v| v == 1.0,
        );
    }
    let etl = [
        ("project", "dev"),
        ("deployment", "etl"),
        ("state", "Completed"),
    ];
    let sum = m
        .find("weir_flow_run_duration_seconds_sum", &etl)
        .map(|s| match s.value {
            Value::Untyped(v) | Value::Gauge(v) | Value::Counter(v) => Ok(v),
            ref other => Err(format!("etl duration sum is {other:?}")),
        })
        .unwrap_or_else(|| Err("no etl duration sum".into()));
    expect(e, "etl duration sum = the run's duration", sum, |v| {
        (v - etl_seconds).abs() < 0.002
    });
    if m.find(
        "weir_flow_run_duration_seconds",
        &[("deployment", "ghostly")],
    )
    .is_some()
    {
        e.push("a duration for the ghostly run, which never started".into());
    }
}

/// A rule of project `dev` that posts every Crashed run to the webhook at `url`.
fn notify_crashes_to(w: &Weir, url: &str) {
    w.block_on(w.client.upsert_notification_rule(
        "dev",
        "crashes",
        &NotificationRuleSpec {
            on: vec![NotificationEvent::Crashed],
            deployments: vec![],
            destination: Destination::Webhook {
                url: url.to_string(),
                signing_key: None,
            },
            rate_limit: RateLimit::default(),
        },
        RuleSource::Api,
    ))
    .expect("a notification rule on Crashed");
}

fn scrape_after_real_runs(db: Option<&str>) {
    let mut extra = vec!["--late-after-s", "2"];
    if let Some(url) = db {
        extra.extend(["--db", url]);
    }
    let mut w = Weir::start_with(ServerOptions { lease_s: 3 }, &extra);
    w.deploy(TOML);
    let receiver = Receiver::start();
    notify_crashes_to(&w, &receiver.url);
    w.start_agent(4);

    let etl = w.create_run("dev", "etl", Default::default());
    let fails = w.create_run("dev", "fails", Default::default());
    let nightly = w.create_run("dev", "nightly", Default::default());
    let etl = w.wait_state(etl.id, StateKind::Completed, Duration::from_secs(30));
    w.wait_state(fails.id, StateKind::Failed, Duration::from_secs(30));
    w.wait_state(nightly.id, StateKind::Late, Duration::from_secs(20));

    // An agent that claims a run and is never heard from again.
    let ghost = w
        .block_on(w.client.register_agent(&RegisterAgent {
            name: "ghost".into(),
            queues: vec!["ghosts".into()],
            limit: 1,
            launchers: vec![InfrastructureKind::Process],
        }))
        .expect("register the ghost agent");
    let ghostly = w.create_run("dev", "ghostly", Default::default());
    let claimed = w
        .block_on(w.client.claim(ghost.id, 1, Duration::ZERO))
        .expect("the ghost claims");
    assert_eq!(claimed.len(), 1, "the ghost claimed its run");
    assert_eq!(claimed[0].run.id, ghostly.id);
    w.wait_state(ghostly.id, StateKind::Crashed, Duration::from_secs(30));
    wait_until(
        "the Crashed webhook",
        Duration::from_secs(20),
        || match receiver.got.load(Ordering::SeqCst) {
            0 => Err("none yet".into()),
            n => Ok(n),
        },
    );

    let run = &etl.run;
    let etl_seconds = match (run.started_at, run.ended_at) {
        (Some(s), Some(e)) => (e - s).num_microseconds().unwrap_or(0) as f64 / 1e6,
        _ => panic!("the completed etl run has start and end times: {run:?}"),
    };
    let m = settled_scrape(&w, etl_seconds);
    assert_eq!(
        receiver.got.load(Ordering::SeqCst),
        1,
        "one webhook for one crash"
    );
    // Each family an operator alerts on says what it is.
    for family in [
        "weir_queue_runs_waiting",
        "weir_queue_oldest_waiting_seconds",
        "weir_queue_live_agents",
        "weir_queue_free_slots",
        "weir_flow_runs_late",
        "weir_flow_run_duration_seconds",
        "weir_crash_detector_expired_leases_total",
        "weir_crash_detector_late_total",
        "weir_notifications_total",
        "weir_notification_outbox_pending",
    ] {
        assert!(
            m.text.contains(&format!("# HELP {family} ")),
            "{family} has a HELP line:\n{}",
            m.text
        );
    }
}

#[test]
fn metrics_after_real_runs_sqlite() {
    scrape_after_real_runs(None);
}

#[test]
fn metrics_after_real_runs_postgres() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let Some(url) = rt.block_on(weir_testkit::postgres_url()) else {
        eprintln!("metrics_after_real_runs_postgres: skipped: WEIR_TEST_POSTGRES_URL not set");
        return;
    };
    scrape_after_real_runs(Some(&url));
}
