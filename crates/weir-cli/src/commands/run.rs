//! `weir run`, `weir runs …` and `weir logs`: start runs, list and inspect them, cancel and
//! retry them, and follow them live.

use crate::cli::RunsCommand;
use crate::config::{run_id, split_target};
use crate::output;
use anyhow::{Context, Result, bail};
use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;
use uuid::Uuid;
use weir_client::{Client, RunQuery};
use weir_core::StateKind;
use weir_core::api::{CreateFlowRun, Parameters};

/// Parses `--param k=v` and `--params-json` into parameters.
fn parameters(params: &[String], params_json: Option<&str>) -> Result<Parameters> {
    let mut out = match params_json {
        Some(text) => match serde_json::from_str::<serde_json::Value>(text) {
            Ok(serde_json::Value::Object(m)) => m,
            Ok(_) => bail!("--params-json must be a JSON object, e.g. '{{\"n\": 10}}'"),
            Err(e) => bail!("--params-json is not valid JSON: {e}"),
        },
        None => Parameters::new(),
    };
    for p in params {
        let (k, v) = p
            .split_once('=')
            .with_context(|| format!("--param {p:?}: expected KEY=VALUE"))?;
        if k.trim().is_empty() {
            bail!("--param {p:?}: the key is empty");
        }
        out.insert(k.trim().to_string(), weir_core::params::parse_cli_value(v));
    }
    Ok(out)
}

/// `weir run PROJECT/DEPLOYMENT`.
pub async fn run(
    api: &str,
    target: &str,
    params: &[String],
    params_json: Option<&str>,
    watch: bool,
    idempotency_key: Option<String>,
    json: bool,
) -> Result<ExitCode> {
    let (project, deployment) = split_target(target)?;
    let parameters = parameters(params, params_json)?;
    let client = super::client(api)?;
    let req = CreateFlowRun {
        project: Some(project.clone()),
        deployment: Some(deployment.clone()),
        parameters,
        idempotency_key,
        ..Default::default()
    };
    let run = match client.create_flow_run(&req).await {
        Ok(r) => r,
        Err(weir_client::Error::Api { body, status }) if status.as_u16() == 404 => {
            bail!(
                "{}\nhint: `weir deployments ls` lists deployments; `weir deploy` registers them",
                body.message
            )
        }
        Err(e) => return Err(super::explain(e)),
    };
    if json && !watch {
        output::json(&run);
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!(
        "created flow run {} ({}) for {project}/{deployment}",
        run.id, run.name
    );
    if !watch {
        println!("{}", run.id);
        eprintln!("follow it with: weir logs {} --follow", run.id);
        return Ok(ExitCode::SUCCESS);
    }
    follow(&client, run.id, true).await
}

/// Prints state changes and log lines as they happen until the run ends. Exit 0 only if it
/// Completed.
async fn follow(client: &Client, id: Uuid, show_states: bool) -> Result<ExitCode> {
    let mut after = 0i64;
    let mut last: Option<(StateKind, u32)> = None;
    let mut failures = 0;
    let mut waited = 0u32;
    let interactive = std::io::IsTerminal::is_terminal(&std::io::stderr());
    loop {
        let detail = match client.flow_run(id).await {
            Ok(d) => {
                failures = 0;
                d
            }
            Err(e) if e.is_transient() && failures < 20 => {
                failures += 1;
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
            Err(e) => return Err(super::explain(e)),
        };
        let run = detail.run;
        let mut printed = print_new_lines(client, id, &mut after).await? > 0;
        if show_states && last != Some((run.state, run.attempt)) {
            last = Some((run.state, run.attempt));
            if interactive && waited > 0 {
                eprint!("\r\x1b[K");
            }
            let msg = run
                .state_message
                .as_deref()
                .map(|m| format!(": {m}"))
                .unwrap_or_default();
            eprintln!(
                "{}  {} {}{msg}",
                run.state_at
                    .with_timezone(&chrono::Local)
                    .format("%H:%M:%S%.3f"),
                run.name,
                run.state,
            );
            printed = true;
        }
        if run.state.is_terminal() {
            if let Some(result) = &run.result {
                super::result::print(result).await;
            }
            return Ok(if run.state == StateKind::Completed {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            });
        }
        if printed {
            waited = 0;
        } else {
            waited += 1;
            if interactive && waited.is_multiple_of(4) {
                let spin = ['|', '/', '-', '\\'][(waited / 4 % 4) as usize];
                eprint!("\r{spin} {} is {} …", run.name, run.state);
                let _ = std::io::stderr().flush();
            }
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

/// `weir runs …`.
pub async fn runs(api: &str, cmd: RunsCommand, json: bool) -> Result<ExitCode> {
    let client = super::client(api)?;
    match cmd {
        RunsCommand::Ls {
            project,
            deployment,
            state,
            limit,
        } => return list(&client, project, deployment, state, limit, json).await,
        RunsCommand::Result { id, output } => {
            let id = run_id(&id)?;
            let d = client.flow_run(id).await.map_err(super::explain)?;
            super::result::fetch(&d.run, output.as_deref()).await?;
        }
        RunsCommand::Show { id } => return show(&client, &id, json).await,
        RunsCommand::Why { id } => {
            let e = client.why(run_id(&id)?).await.map_err(super::explain)?;
            if json {
                output::json(&e);
            } else {
                print!("{}", super::limits::render_why(&e));
            }
        }
        RunsCommand::Cancel { id } => {
            let r = client.cancel(run_id(&id)?).await.map_err(super::explain)?;
            if json {
                output::json(&r);
            } else {
                println!("{} is {}", r.name, r.state);
            }
        }
        RunsCommand::Retry { id, from_failed } => {
            let r = client
                .retry(run_id(&id)?, from_failed)
                .await
                .map_err(super::explain)?;
            if json {
                output::json(&r);
            } else {
                println!(
                    "{} is {} again{}",
                    r.name,
                    r.state,
                    if from_failed {
                        " (reusing completed tasks' results)"
                    } else {
                        ""
                    }
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `weir runs ls`: a page of runs, newest first (`--deployment` may be `PROJECT/NAME`).
async fn list(
    client: &Client,
    project: Option<String>,
    deployment: Option<String>,
    state: Option<String>,
    limit: u32,
    json: bool,
) -> Result<ExitCode> {
    let (project, deployment) = match deployment {
        Some(d) if d.contains('/') => {
            let (p, d) = split_target(&d)?;
            (Some(p), Some(d))
        }
        Some(d) => (project, Some(d)),
        None => (project, None),
    };
    let q = RunQuery {
        project,
        deployment,
        state,
        limit: Some(limit),
        ..Default::default()
    };
    let page = client.list_flow_runs(&q).await.map_err(super::explain)?;
    output::list(
        json,
        &page,
        &page.items,
        Some("no runs yet: start one with `weir run PROJECT/DEPLOYMENT`"),
        &["ID", "NAME", "DEPLOYMENT", "STATE", "SCHEDULED", "DURATION"],
        |r| {
            vec![
                r.id.to_string(),
                r.name.clone(),
                format!(
                    "{}/{}",
                    r.project,
                    r.deployment.clone().unwrap_or_else(|| "-".into())
                ),
                r.state.to_string(),
                output::time(&r.scheduled_at),
                output::duration(r.started_at, r.ended_at),
            ]
        },
    );
    Ok(ExitCode::SUCCESS)
}

/// `weir runs show ID`: a run's states, attempts, parameters, result, task runs and history.
async fn show(client: &Client, id: &str, json: bool) -> Result<ExitCode> {
    let id = run_id(id)?;
    let d = client.flow_run(id).await.map_err(super::explain)?;
    if json {
        output::json(&d);
        return Ok(ExitCode::SUCCESS);
    }
    let r = &d.run;
    println!("{} ({})", r.name, r.id);
    println!("  flow:        {}", r.flow);
    println!(
        "  deployment:  {}/{}",
        r.project,
        r.deployment.clone().unwrap_or_else(|| "-".into())
    );
    println!(
        "  state:       {}{}",
        r.state,
        r.state_message
            .as_deref()
            .map(|m| format!(": {m}"))
            .unwrap_or_default()
    );
    if let Some(reason) = waiting_reason(client, r).await {
        println!("  waiting:     {reason}");
    }
    println!(
        "  attempt:     {} (retries used {}/{})",
        r.attempt, r.retries_used, r.retries
    );
    println!(
        "  parameters:  {}",
        serde_json::Value::Object(r.parameters.clone())
    );
    if let Some(res) = &r.result {
        println!("  result:      {} ({} bytes)", res.location, res.size);
    }
    println!(
        "  task runs:   {}",
        d.task_runs_by_state
            .iter()
            .map(|(s, n)| format!("{n} {s}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!("  history:");
    for h in &d.history {
        println!(
            "    {}  {:<13} attempt {}{}",
            output::time(&h.at),
            h.state.as_str(),
            h.attempt,
            h.message
                .as_deref()
                .map(|m| format!("  {m}"))
                .unwrap_or_default()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `weir logs ID [--follow]`.
pub async fn logs(api: &str, id: &str, follow_flag: bool) -> Result<ExitCode> {
    let id = run_id(id)?;
    let client = super::client(api)?;
    if follow_flag {
        return follow(&client, id, false).await;
    }
    print_new_lines(&client, id, &mut 0).await?;
    Ok(ExitCode::SUCCESS)
}

/// Prints the run's log lines after sequence number `after` (advancing it), page by page until
/// none are left. Returns how many were printed.
async fn print_new_lines(client: &Client, id: Uuid, after: &mut i64) -> Result<usize> {
    let mut printed = 0;
    loop {
        let page = client
            .logs(id, *after, 1000)
            .await
            .map_err(super::explain)?;
        for line in &page.items {
            *after = line.seq;
            println!(
                "{}  {}",
                line.at.with_timezone(&chrono::Local).format("%H:%M:%S%.3f"),
                line.message
            );
            printed += 1;
        }
        if page.next_cursor.is_none() {
            return Ok(printed);
        }
    }
}

/// Why a due run is not being picked up, when no live agent can take it (see
/// [`weir_core::why::why_waiting`]). Agents count as live when they heartbeated in
/// the last two minutes.
async fn waiting_reason(
    client: &weir_client::Client,
    r: &weir_core::api::FlowRun,
) -> Option<String> {
    if !r.state.is_claimable() || r.scheduled_at > chrono::Utc::now() {
        return None;
    }
    let kind = match &r.deployment {
        Some(name) => client
            .deployment(&r.project, name)
            .await
            .ok()?
            .spec
            .infrastructure
            .kind(),
        None => weir_core::infrastructure::InfrastructureKind::Process,
    };
    let since = chrono::Utc::now() - chrono::Duration::minutes(2);
    let live: Vec<_> = client
        .agents()
        .await
        .ok()?
        .into_iter()
        .filter(|a| a.last_heartbeat_at >= since)
        .collect();
    weir_core::why::why_waiting(kind, &r.work_queue, &live)
}
