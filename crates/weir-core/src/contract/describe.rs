//! The `describe` document: what a flows program says about the flows it can run.
//!
//! `PROGRAM describe` prints one [`Description`] as JSON on stdout and exits 0. `weir deploy`
//! reads it to learn each flow's parameter schema (checked against the deployment's
//! parameters, stored for server-side validation and the Quick-run form). Readers tolerate
//! fields they do not know and fields that are missing, so SDKs may add to it.

use serde::{Deserialize, Serialize};

/// The whole `describe` document.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Description {
    /// Every flow the program can run.
    #[serde(default)]
    pub flows: Vec<FlowDescription>,
}

/// One flow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlowDescription {
    /// The name `run FLOW` takes.
    pub name: String,
    /// What it does (the doc comment or docstring).
    #[serde(default)]
    pub description: Option<String>,
    /// JSON Schema (draft 2020-12) of its parameters: an object schema whose properties are
    /// the parameters, `required` those without defaults, and `additionalProperties: false`.
    #[serde(default = "empty_object_schema")]
    pub parameters: serde_json::Value,
    /// The tasks it may call.
    #[serde(default)]
    pub tasks: Vec<TaskDescription>,
    /// Names of the flows it calls as subflows.
    #[serde(default)]
    pub subflows: Vec<String>,
}

/// One task and its options.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TaskDescription {
    /// Its name.
    pub name: String,
    /// What it does.
    #[serde(default)]
    pub description: Option<String>,
    /// Automatic retries after a failure.
    #[serde(default)]
    pub retries: u32,
    /// Delay before the first retry, in milliseconds.
    #[serde(default)]
    pub retry_delay_ms: u64,
    /// Multiplier of the delay for each further retry.
    #[serde(default)]
    pub backoff: f64,
    /// Random share (0–1) added to or taken from each delay.
    #[serde(default)]
    pub jitter: f64,
    /// Upper bound of a delay, in milliseconds.
    #[serde(default)]
    pub max_delay_ms: u64,
    /// Whether a predicate decides which errors are retried.
    #[serde(default)]
    pub retry_if: bool,
    /// Time limit of one try, in milliseconds.
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    /// Whether results are cached by input.
    #[serde(default)]
    pub cache: bool,
    /// How long a cached result stays valid, in milliseconds.
    #[serde(default)]
    pub cache_expiration_ms: Option<u64>,
    /// Whether results are written to result storage.
    #[serde(default)]
    pub persist_result: bool,
    /// Labels.
    #[serde(default)]
    pub tags: Vec<String>,
}

fn empty_object_schema() -> serde_json::Value {
    serde_json::json!({"type": "object", "properties": {}})
}

impl Description {
    /// Parses what a program printed; the error says what is wrong with it.
    pub fn parse(stdout: &[u8]) -> Result<Description, serde_json::Error> {
        serde_json::from_slice(stdout)
    }

    /// The flow called `name`.
    pub fn flow(&self, name: &str) -> Option<&FlowDescription> {
        self.flows.iter().find(|f| f.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readers_tolerate_unknown_and_missing_fields() {
        let doc = br#"{"flows": [{"name": "etl", "future_field": 1,
            "tasks": [{"name": "extract", "retries": 2, "new_option": true}]}], "sdk": "py"}"#;
        let d = Description::parse(doc).expect("parses");
        let etl = d.flow("etl").expect("etl");
        assert_eq!(etl.tasks[0].retries, 2);
        assert_eq!(etl.parameters["type"], "object");
        assert!(d.flow("nope").is_none());
        assert!(Description::parse(b"not json").is_err());
    }
}
