//! Flow parameters: the JSON Schema, validation of JSON values before a run starts, defaults,
//! and the task list of `describe`.

mod common;

use common::setup;
use serde_json::json;
use weir::prelude::*;
use weir::{FlowDef, ParamError};

/// Fetches.
#[task(retries = 2, retry_delay = "1s", timeout = "5s", tags = ["io"])]
pub async fn fetch(url: String) -> anyhow::Result<usize> {
    Ok(url.len())
}

/// How to fetch.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Quickly.
    Fast,
    /// Slowly.
    Careful,
}

/// Fetches a URL a few times.
#[flow(name = "typed-params")]
pub async fn typed(
    url: String,
    #[param(default = 3, description = "How many times")] times: u32,
    #[param(default = Mode::Fast)] mode: Mode,
    label: Option<String>,
) -> anyhow::Result<serde_json::Value> {
    let mut total = 0;
    for _ in 0..times {
        total += fetch(url.clone()).await?;
    }
    Ok(json!({"total": total, "mode": mode, "label": label}))
}

fn def() -> &'static FlowDef {
    FlowDef::all()
        .find(|f| f.name == "typed-params")
        .expect("registered")
}

fn params(v: serde_json::Value) -> weir::Parameters {
    match v {
        serde_json::Value::Object(m) => m,
        _ => panic!("object"),
    }
}

#[test]
fn schema_describes_types_defaults_and_required() {
    let d = def();
    let schema = d.schema();
    assert_eq!(schema["type"], "object");
    assert_eq!(schema["additionalProperties"], false);
    assert_eq!(schema["properties"]["url"]["type"], "string");
    assert_eq!(schema["properties"]["times"]["type"], "integer");
    assert_eq!(schema["properties"]["times"]["default"], 3);
    assert_eq!(
        schema["properties"]["times"]["description"],
        "How many times"
    );
    assert_eq!(schema["properties"]["mode"]["default"], "fast");
    assert_eq!(schema["required"], json!(["url"]));
    // The JSON the `describe` command prints (the contract in docs/contracts.md).
    let described = serde_json::to_value(d.describe()).expect("describe serialises");
    assert_eq!(described["name"], "typed-params");
    assert_eq!(described["description"], "Fetches a URL a few times.");
    let tasks = described["tasks"].as_array().expect("tasks");
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0]["name"], "fetch");
    assert_eq!(tasks[0]["retries"], 2);
    assert_eq!(tasks[0]["retry_delay_ms"], 1000);
    assert_eq!(tasks[0]["timeout_ms"], 5000);
    assert_eq!(tasks[0]["tags"], json!(["io"]));
}

fn error_of(v: serde_json::Value) -> ParamError {
    match def().prepare(params(v)) {
        Ok(_) => panic!("expected a parameter error"),
        Err(e) => e,
    }
}

#[test]
fn invalid_parameters_are_named() {
    let e = error_of(json!({"url": "u", "times": "nope"}));
    assert_eq!(e.parameter(), Some("times"));
    assert_eq!(
        e.to_string(),
        "parameter \"times\": expected an integer (uint32), got \"nope\""
    );
    let e = error_of(json!({"url": "u", "colour": 1}));
    assert_eq!(
        e.to_string(),
        "unknown parameter \"colour\"; this flow takes: url, times, mode, label"
    );
    let e = error_of(json!({}));
    assert_eq!(
        e.to_string(),
        "missing parameter \"url\": expected a string"
    );
    let e = error_of(json!({"url": "u", "mode": "reckless"}));
    assert_eq!(e.parameter(), Some("mode"));
    assert!(
        e.to_string().contains("one of \"fast\", \"careful\""),
        "{e}"
    );
    let e = error_of(json!({"url": 5}));
    assert_eq!(e.to_string(), "parameter \"url\": expected a string, got 5");
}

#[tokio::test]
async fn valid_parameters_run_with_defaults() {
    let s = setup();
    let fut = s
        .runner
        .start(def(), params(json!({"url": "abcd", "label": "x"})))
        .expect("valid");
    let out = fut.await.expect("runs");
    assert_eq!(out, json!({"total": 12, "mode": "fast", "label": "x"}));
    let rec = s.tracker.records();
    let f = rec.flow_runs_of("typed-params")[0];
    assert_eq!(
        serde_json::Value::Object(f.parameters.clone()),
        json!({"url": "abcd", "times": 3, "mode": "fast", "label": "x"})
    );
    assert_eq!(rec.task_runs_of("fetch").len(), 3);
}
