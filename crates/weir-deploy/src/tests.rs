//! Tests of parsing, diagnostics, parameter checks and the plan diff.

use super::*;
use serde_json::json;
use std::collections::BTreeMap;
use weir_core::api::ScheduleSpec;
use weir_core::infrastructure::{DockerInfrastructure, Infrastructure};

mod catchup;
mod infrastructure;
mod limits;

const FULL: &str = r#"project = "dev"

[defaults]
command = ["./target/release/example-flows"]
work_queue = "default"
env = { LOG_LEVEL = "info", REGION = "eu-west-1" }
retries = 1

[deployments.etl]
flow = "etl_flow"
description = "Nightly ETL"
command = ["example-flows", "--verbose"]
infrastructure = { type = "docker", image = "example-flows:latest", memory = "512Mi" }
work_queue = "etl"
parameters = { rows = 100, ratio = 0.5, name = "x", nested = { list = [1, 2] }, day = 2026-01-02 }
schedules = [
  { cron = "0 3 * * *", timezone = "Europe/Amsterdam" },
  { interval = "15m", anchor = 2026-01-01T00:05:00Z },
]
secrets = { DB_PASSWORD = "ssm:/DataFlows/Dev/DB_PASSWORD" }
env = { LOG_LEVEL = "debug", WORKERS = 4 }
retries = 2
retry_delay = "30s"
tags = ["nightly"]
concurrency = 2

[deployments.cleanup]
plain = true
command = ["python", "cleanup.py"]

[deployments.report]
"#;

fn errors(text: &str) -> Vec<String> {
    match parse(Path::new("weir.toml"), text) {
        Ok(f) => panic!("expected errors, parsed {f:?}"),
        Err(Error::Invalid(ds)) => ds.iter().map(ToString::to_string).collect(),
        Err(e) => panic!("unexpected error {e}"),
    }
}

fn one_error(text: &str) -> String {
    let e = errors(text);
    assert_eq!(e.len(), 1, "{e:#?}");
    e.into_iter().next().unwrap_or_default()
}

/// A valid deployment with `extra` appended (line 4 onwards).
fn with(extra: &str) -> String {
    format!("[deployments.etl]\ncommand = [\"flows\"]\nflow = \"etl\"\n{extra}")
}

fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn full_file_parses_with_defaults_applied() {
    let file = parse(Path::new("weir.toml"), FULL).expect("valid file");
    assert_eq!(file.project.as_deref(), Some("dev"));
    let names: Vec<&str> = file.deployments.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["etl", "cleanup", "report"], "file order");
    let lines: Vec<usize> = file.deployments.iter().map(|d| d.location.line).collect();
    assert_eq!(lines, [9, 27, 31]);

    let etl = &file.deployments[0].spec;
    let anchor = serde_json::from_value(json!("2026-01-01T00:05:00Z")).expect("timestamp");
    let expected = DeploymentSpec {
        flow: "etl_flow".into(),
        description: "Nightly ETL".into(),
        command: vec!["example-flows".into(), "--verbose".into()],
        plain_command: false,
        infrastructure: Infrastructure::Docker(DockerInfrastructure {
            memory: Some("512Mi".into()),
            ..DockerInfrastructure::new("example-flows:latest")
        }),
        work_queue: "etl".into(),
        schedules: vec![
            ScheduleSpec {
                cron: Some("0 3 * * *".into()),
                timezone: Some("Europe/Amsterdam".into()),
                ..Default::default()
            },
            ScheduleSpec {
                interval: Some("15m".into()),
                anchor: Some(anchor),
                ..Default::default()
            },
        ],
        parameters: json!({"rows": 100, "ratio": 0.5, "name": "x", "nested": {"list": [1, 2]},
            "day": "2026-01-02"})
        .as_object()
        .cloned()
        .unwrap_or_default(),
        parameter_schema: None,
        secrets: env(&[("DB_PASSWORD", "ssm:/DataFlows/Dev/DB_PASSWORD")]),
        env: env(&[
            ("LOG_LEVEL", "debug"),
            ("REGION", "eu-west-1"),
            ("WORKERS", "4"),
        ]),
        retries: 2,
        retry_delay_s: 30,
        tags: vec!["nightly".into()],
        result_storage: None,
        concurrency: Some(2),
        on_limit: weir_core::limits::OnLimit::Wait,
        catchup: weir_core::schedule::Catchup::Latest,
    };
    assert_eq!(etl, &expected);

    let cleanup = &file.deployments[1].spec;
    assert_eq!(
        cleanup.flow, "cleanup",
        "flow defaults to the deployment name"
    );
    assert!(cleanup.plain_command);
    assert_eq!(cleanup.command, ["python", "cleanup.py"]);
    assert_eq!(cleanup.retries, 1, "from [defaults]");

    let report = &file.deployments[2].spec;
    assert_eq!(report.command, ["./target/release/example-flows"]);
    assert_eq!(report.work_queue, "default");
    assert_eq!(
        report.env,
        env(&[("LOG_LEVEL", "info"), ("REGION", "eu-west-1")])
    );

    // The spec survives the API's JSON (deny_unknown_fields) unchanged.
    let wire = serde_json::to_string(etl).expect("serialize");
    let back: DeploymentSpec = serde_json::from_str(&wire).expect("deserialize");
    assert_eq!(&back, etl);
}

#[test]
fn minimal_file_and_table_array_schedules() {
    let text = "[deployments.etl]\ncommand = [\"flows\"]\n\n[[deployments.etl.schedules]]\n\
                cron = \"*/5 * * * *\"\n\n[[deployments.etl.schedules]]\ninterval = 3600\n";
    let file = parse(Path::new("weir.toml"), text).expect("valid");
    assert_eq!(file.project, None);
    let spec = &file.deployments[0].spec;
    assert_eq!(spec.flow, "etl");
    assert_eq!(spec.schedules.len(), 2);
    assert_eq!(spec.schedules[1].interval.as_deref(), Some("3600s"));
    assert_eq!(spec.work_queue, "default");
}

#[test]
fn unknown_key_with_suggestion() {
    let text = "project = \"dev\"\n\n[deployments.etl]\ncommand = [\"flows\"]\nretries = 1\n\n\
                shedule = []\n";
    assert_eq!(
        one_error(text),
        "weir.toml:7:1: unknown key \"shedule\" in deployment \"etl\" (did you mean \"schedules\"?)"
    );
    assert_eq!(
        one_error("projet = \"dev\"\n[deployments.etl]\ncommand = [\"f\"]\n"),
        "weir.toml:1:1: unknown key \"projet\" at the top level (did you mean \"project\"?)"
    );
    assert_eq!(
        one_error(&with("bogus = 1")),
        "weir.toml:4:1: unknown key \"bogus\" in deployment \"etl\" (expected one of: flow, \
         description, command, plain, infrastructure, work_queue, parameters, schedules, secrets, env, \
         retries, retry_delay, tags, result_storage, concurrency, on_limit, catchup)"
    );
    assert_eq!(
        one_error(&with(
            "schedules = [{ cron = \"0 * * * *\", tz = \"UTC\" }]"
        )),
        "weir.toml:4:36: unknown key \"tz\" in schedules[0] in deployment \"etl\" (did you mean \
         \"timezone\"?)"
    );
}

#[test]
fn wrong_types() {
    assert_eq!(
        one_error(&with("retries = \"two\"")),
        "weir.toml:4:11: key \"retries\" in deployment \"etl\": expected a whole number, got a string"
    );
    assert_eq!(
        one_error(&with("retries = -1")),
        "weir.toml:4:11: key \"retries\" in deployment \"etl\": must be a whole number from 0 to \
         4294967295"
    );
    assert_eq!(
        one_error(&with("tags = [\"a\", 3]")),
        "weir.toml:4:14: key \"tags\" in deployment \"etl\": item 1: expected a string, got an \
         integer"
    );
    assert_eq!(
        one_error(&with("plain = \"yes\"")),
        "weir.toml:4:9: key \"plain\" in deployment \"etl\": expected true or false, got a string"
    );
    assert_eq!(
        one_error(&with("schedules = { cron = \"0 * * * *\" }")),
        "weir.toml:4:13: key \"schedules\" in deployment \"etl\": expected an array of tables \
         such as [{ cron = \"0 3 * * *\" }], got a table"
    );
    assert_eq!(
        one_error("deployments = 3\n"),
        "weir.toml:1:15: key \"deployments\" at the top level: expected a table, got an integer"
    );
    assert_eq!(
        one_error(&with("retry_delay = \"1 fortnight\"")),
        "weir.toml:4:15: key \"retry_delay\" in deployment \"etl\": invalid duration \
         \"1 fortnight\": unknown unit \"fortnight\" (use ms, s, m, h or d)"
    );
    assert_eq!(
        one_error(&with("retry_delay = \"1500ms\"")),
        "weir.toml:4:15: key \"retry_delay\" in deployment \"etl\": must be a whole number of \
         seconds"
    );
    assert_eq!(
        one_error(&with("parameters = { x = nan }")),
        "weir.toml:4:20: key \"parameters.x\" in deployment \"etl\": nan cannot be written in JSON"
    );
}

#[test]
fn invalid_schedules_point_at_their_line() {
    let text = with(
        "schedules = [\n  { cron = \"0 3 * * *\" },\n  { cron = \"61 * * * *\" },\n  \
         { cron = \"0 3 * * *\", timezone = \"Mars/Olympus\" },\n  { interval = \"0s\" },\n  \
         { timezone = \"UTC\" },\n  { cron = \"0 3 * * *\", interval = \"1h\" },\n]",
    );
    let e = errors(&text);
    assert_eq!(e.len(), 5, "{e:#?}");
    assert!(
        e[0].starts_with(
            "weir.toml:6:12: invalid schedule in deployment \"etl\": invalid cron expression \
             \"61 * * * *\""
        ),
        "{}",
        e[0]
    );
    assert_eq!(
        e[1],
        "weir.toml:7:36: invalid schedule in deployment \"etl\": unknown time zone \
         \"Mars/Olympus\": use an IANA name such as \"UTC\" or \"America/New_York\""
    );
    assert!(
        e[2].starts_with(
            "weir.toml:8:16: invalid schedule in deployment \"etl\": invalid interval \"0s\""
        ),
        "{}",
        e[2]
    );
    assert_eq!(
        e[3],
        "weir.toml:9:3: invalid schedule in deployment \"etl\": a schedule needs exactly one of \
         `cron` or `interval`"
    );
    assert!(e[4].starts_with("weir.toml:10:3: "), "{}", e[4]);
    assert_eq!(
        one_error(&with(
            "schedules = [{ interval = \"15m\", anchor = 2026-01-01T00:00:00 }]"
        )),
        "weir.toml:4:43: key \"anchor\" in schedules[0] in deployment \"etl\": \
         \"2026-01-01T00:00:00\" is not a date-time with an offset, e.g. 2026-01-01T00:00:00Z"
    );
}

#[test]
fn schedule_in_table_array_reports_its_key_line() {
    let text = "[deployments.etl]\ncommand = [\"flows\"]\n\n[[deployments.etl.schedules]]\n\
                timezone = \"Europe/Amsterdam\"\ncron = \"0 25 * * *\"\n";
    let e = one_error(text);
    assert!(e.starts_with("weir.toml:6:8: invalid schedule"), "{e}");
}

#[test]
fn bad_names() {
    assert_eq!(
        one_error("project = \"Dev Team\"\n[deployments.etl]\ncommand = [\"f\"]\n"),
        "weir.toml:1:11: invalid project name \"Dev Team\": use 1-63 lowercase letters, digits, \
         '-' or '_', starting with a letter or digit"
    );
    let long = "a".repeat(64);
    let e = errors(&format!(
        "[deployments.ETL]\ncommand = [\"f\"]\n\n[deployments.{long}]\ncommand = [\"f\"]\n\
         [deployments.ok-name_2]\ncommand = [\"f\"]\n[deployments._x]\ncommand = [\"f\"]\n\
         work_queue = \"Big Queue\"\n"
    ));
    assert_eq!(e.len(), 4, "{e:#?}");
    assert!(
        e[0].starts_with("weir.toml:1:14: invalid deployment name \"ETL\""),
        "{}",
        e[0]
    );
    assert!(
        e[1].starts_with(&format!(
            "weir.toml:4:14: invalid deployment name \"{long}\""
        )),
        "{}",
        e[1]
    );
}

#[test]
fn secrets_and_env_are_checked() {
    assert_eq!(
        one_error(&with("secrets = { DB_PASSWORD = \"vault:/db\" }")),
        "weir.toml:4:27: key \"secrets\" in deployment \"etl\": DB_PASSWORD: invalid secret \
         reference \"vault:/db\": start it with env:, file:, ssm: or secretsmanager: (e.g. \
         \"ssm:/team/db_password\")"
    );
    assert_eq!(
        one_error(&with("secrets = { TOKEN = \"ssm:\" }")),
        "weir.toml:4:21: key \"secrets\" in deployment \"etl\": TOKEN: invalid secret reference \
         \"ssm:\": nothing after \"ssm:\""
    );
    assert_eq!(
        one_error(&with("env = { log_level = \"info\" }")),
        "weir.toml:4:9: key \"env\" in deployment \"etl\": invalid environment variable name \
         \"log_level\": use upper-case letters, digits and \"_\", not starting with a digit"
    );
    assert!(one_error(&with("secrets = { 1PASS = \"env:X\" }")).starts_with("weir.toml:4:13: "));
    assert_eq!(
        one_error(&with("env = { WEIR_API_URL = \"x\" }")),
        "weir.toml:4:9: key \"env\" in deployment \"etl\": \"WEIR_API_URL\": names starting with \
         WEIR_ are reserved for Weir itself"
    );
    assert_eq!(
        one_error(&with(
            "env = { TOKEN = \"x\" }\nsecrets = { TOKEN = \"env:TOKEN\" }"
        )),
        "weir.toml:5:13: \"TOKEN\" is set in both env and secrets of deployment \"etl\": keep one"
    );
    for ok in [
        "env:HOME",
        "file:/run/secrets/x",
        "ssm:/a/b",
        "secretsmanager:prod/db",
    ] {
        let text = with(&format!("secrets = {{ X = \"{ok}\" }}"));
        assert!(parse(Path::new("weir.toml"), &text).is_ok(), "{ok}");
    }
}

#[test]
fn commands_are_required_and_not_empty() {
    assert_eq!(
        one_error("[deployments.etl]\ncommand = []\n"),
        "weir.toml:2:11: key \"command\" in deployment \"etl\": is empty: give the program to run \
         and its arguments, e.g. [\"./target/release/flows\"]"
    );
    assert_eq!(
        one_error("\n[deployments.etl]\nflow = \"etl\"\n"),
        "weir.toml:2:14: deployment \"etl\" has no command: set command = [\"program\", \"arg\", \
         …] in it or in [defaults]"
    );
    assert_eq!(
        one_error("[deployments.etl]\ncommand = [\"\"]\n"),
        "weir.toml:2:12: key \"command\" in deployment \"etl\": item 0 is empty"
    );
    assert_eq!(
        one_error("project = \"dev\"\n"),
        "weir.toml:1:1: no deployments: add a [deployments.NAME] table for each flow to deploy"
    );
}

#[test]
fn defaults_refuse_per_flow_keys() {
    assert_eq!(
        one_error("[defaults]\ncommand = [\"f\"]\nflow = \"x\"\n[deployments.etl]\n"),
        "weir.toml:3:1: key \"flow\" cannot be set in [defaults]: set it in each deployment"
    );
    assert_eq!(
        one_error("[defaults]\ncommand = [\"f\"]\nretires = 3\n[deployments.etl]\n"),
        "weir.toml:3:1: unknown key \"retires\" in [defaults] (did you mean \"retries\"?)"
    );
}

#[test]
fn syntax_errors_have_positions() {
    let e = errors("[deployments.etl]\ncommand = [\"f\"\nretries = 2\n");
    assert!(!e.is_empty());
    assert!(e[0].starts_with("weir.toml:3:"), "{e:#?}");
    let e = errors("[deployments.etl]\ncommand = [\"f\"]\ncommand = [\"g\"]\n");
    assert!(e[0].starts_with("weir.toml:3:1: "), "{e:#?}");
    assert!(e[0].contains("duplicate"), "{e:#?}");
}

#[test]
fn all_errors_are_collected_in_file_order() {
    let text = "project = \"Dev\"\n\
                [defaults]\n\
                retry_delay = \"soon\"\n\
                [deployments.b]\n\
                command = [\"f\"]\n\
                shedules = []\n\
                [deployments.a]\n\
                retries = true\n\
                secrets = { X = \"plain\" }\n";
    let err = parse(Path::new("flows/weir.toml"), text).expect_err("invalid");
    let Error::Invalid(ds) = &err else {
        panic!("{err}")
    };
    let lines: Vec<usize> = ds.iter().map(|d| d.location.line).collect();
    assert_eq!(lines, [1, 3, 6, 7, 8, 9], "{err}");
    let shown = err.to_string();
    assert_eq!(shown.lines().count(), 6, "{shown}");
    assert!(
        shown.lines().all(|l| l.starts_with("flows/weir.toml:")),
        "{shown}"
    );
    assert!(shown.contains("(did you mean \"schedules\"?)"), "{shown}");
    assert!(shown.contains("deployment \"a\" has no command"), "{shown}");
}

#[test]
fn locations_count_characters() {
    let text = "a = \"é\"\nbé = 1\n";
    assert_eq!(
        Location::of_offset(text, 0),
        Location { line: 1, column: 1 }
    );
    let at = text.find("= 1").unwrap_or_default();
    assert_eq!(
        Location::of_offset(text, at),
        Location { line: 2, column: 4 }
    );
    assert_eq!(
        Location::of_offset(text, 10_000),
        Location { line: 3, column: 1 }
    );
}

#[test]
fn parameters_against_schema() {
    let schema = json!({
        "type": "object",
        "properties": {
            "rows": {"type": "integer", "format": "uint32", "minimum": 0},
            "url": {"type": "string"}
        },
        "required": ["url"],
        "additionalProperties": false
    });
    let mut spec = DeploymentSpec {
        flow: "etl".into(),
        command: vec!["f".into()],
        parameters: json!({"rows": 100})
            .as_object()
            .cloned()
            .unwrap_or_default(),
        ..Default::default()
    };
    assert_eq!(
        validate_parameters(&spec),
        Ok(()),
        "no schema: nothing to check"
    );
    spec.parameter_schema = Some(schema);
    assert_eq!(
        validate_parameters(&spec),
        Ok(()),
        "unscheduled: url may come with the run"
    );
    spec.schedules = vec![ScheduleSpec {
        interval: Some("1h".into()),
        ..Default::default()
    }];
    let e = validate_parameters(&spec).expect_err("scheduled runs need url");
    assert_eq!(e[0].to_string(), "missing required parameter \"url\"");
    spec.parameters = json!({"rows": "many", "url": "x", "row": 1})
        .as_object()
        .cloned()
        .unwrap_or_default();
    let e: Vec<String> = validate_parameters(&spec)
        .expect_err("bad")
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        e,
        [
            "unknown parameter \"row\" (known: rows, url)",
            "parameter \"rows\": expected an integer, got \"many\""
        ]
    );
}

#[test]
fn diff_lists_changes() {
    let old = DeploymentSpec {
        flow: "etl".into(),
        command: vec!["flows".into()],
        work_queue: "default".into(),
        schedules: vec![ScheduleSpec {
            cron: Some("0 3 * * *".into()),
            ..Default::default()
        }],
        parameters: json!({"rows": 100, "mode": "full"})
            .as_object()
            .cloned()
            .unwrap_or_default(),
        env: env(&[("DEBUG", "1")]),
        ..Default::default()
    };
    assert_eq!(diff(&old, &old), Vec::<String>::new());
    let mut new = old.clone();
    new.schedules[0].cron = Some("0 4 * * *".into());
    new.schedules.push(ScheduleSpec {
        interval: Some("15m".into()),
        ..Default::default()
    });
    new.parameters.insert("rows".into(), json!(200));
    new.env.clear();
    new.tags = vec!["nightly".into()];
    new.retries = 2;
    assert_eq!(
        diff(&old, &new),
        [
            "  - env: {\"DEBUG\":\"1\"}",
            "  parameters.rows: 100 → 200",
            "  + retries: 2",
            "  schedules[0].cron: \"0 3 * * *\" → \"0 4 * * *\"",
            "  + schedules[1]: {\"interval\":\"15m\"}",
            "  + tags: [\"nightly\"]",
        ]
    );
    let mut odd = old.clone();
    odd.parameters.insert("a.b".into(), json!(1));
    assert_eq!(diff(&old, &odd), ["  + parameters.\"a.b\": 1"]);
}

#[test]
fn variables_fill_string_values_and_unset_ones_point_at_their_column() {
    let text = "project = \"dev\"\n\n[deployments.etl]\ncommand = [\"flows\", \"--tag=${TAG}\"]\ninfrastructure = { type = \"ecs\", image = \"${REPO}:${TAG}\" }\nenv = { SHELL_VAR = \"$HOME\", LITERAL = \"$${X}\" }\n";
    let mut vars = Vars::new();
    vars.insert("REPO", "123.dkr.ecr.eu-west-1.amazonaws.com/flows")
        .expect("name");
    vars.insert("TAG", "3f9ff61").expect("name");
    let file = parse_with(Path::new("weir.toml"), text, &vars).expect("parses");
    let spec = &file.deployments[0].spec;
    assert_eq!(
        spec.infrastructure.image(),
        Some("123.dkr.ecr.eu-west-1.amazonaws.com/flows:3f9ff61")
    );
    assert_eq!(spec.command, vec!["flows", "--tag=3f9ff61"]);
    assert_eq!(spec.env["SHELL_VAR"], "$HOME");
    assert_eq!(spec.env["LITERAL"], "${X}");

    // Without the variables: one error per reference, each at its own line and column, and
    // no deployment comes out.
    let Err(Error::Invalid(d)) = parse(Path::new("weir.toml"), text) else {
        panic!("unset variables must be refused");
    };
    let shown: Vec<String> = d.iter().map(ToString::to_string).collect();
    assert_eq!(shown.len(), 3, "{shown:#?}");
    assert!(
        shown[0].starts_with("weir.toml:4:28: variable TAG is not set: pass `--var TAG=VALUE`"),
        "{shown:#?}"
    );
    assert!(
        shown[1].starts_with("weir.toml:5:43: variable REPO is not set"),
        "{shown:#?}"
    );
    assert!(
        shown[2].starts_with("weir.toml:5:51: variable TAG is not set"),
        "{shown:#?}"
    );
}

#[test]
fn result_storage_is_checked_and_canonical() {
    let file = parse(
        Path::new("weir.toml"),
        &format!(
            "[defaults]\nresult_storage = \"s3://team-results/weir/\"\n{}\n\
             [deployments.local]\ncommand = [\"flows\"]\nresult_storage = \"file:///var/r\"\n",
            with("")
        ),
    )
    .expect("valid storage URLs");
    let storage: Vec<Option<&str>> = file
        .deployments
        .iter()
        .map(|d| d.spec.result_storage.as_deref())
        .collect();
    assert_eq!(
        storage,
        [Some("s3://team-results/weir"), Some("file:///var/r")]
    );

    let e = one_error(&with("result_storage = \"s3://Team_Results\""));
    assert!(e.starts_with("weir.toml:4:"), "{e}");
    assert!(
        e.contains("s3://Team_Results") && e.contains("bucket names"),
        "{e}"
    );
    let e = one_error(&with("result_storage = \"gs://bucket/x\""));
    assert!(e.contains("scheme \"gs\""), "{e}");
    let e = one_error(&with("result_storage = 3"));
    assert!(e.contains("expected a string"), "{e}");
}
