//! `weir deploy`: validate a weir.toml completely, then register its deployments
//! idempotently (or, with `--plan`, show what would change).

use super::Mode;
use crate::output;
use anyhow::{Context, Result, bail};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;
use weir_core::api::{DeploymentSpec, UpsertOutcome};
use weir_deploy::DeployFile;

/// The example flows' deployment file, deployed by `weir up`.
const EXAMPLES: &str = include_str!("../../../../examples/flows/weir.toml");

/// The Python example flows' deployment file, deployed by `weir up` when Python is there.
const PY_EXAMPLES: &str = include_str!("../../../../examples/python/weir.toml");

/// Flows a flows binary describes: name → parameter schema.
type Described = HashMap<String, serde_json::Value>;

/// Runs `<command> describe` (from `dir`, with the deployment's `env` added, as an agent
/// would run it) and reads its flows.
async fn describe(
    command: &[String],
    env: &std::collections::BTreeMap<String, String>,
    dir: &Path,
) -> Result<Described> {
    let program = command.first().context("empty command")?;
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(&command[1..])
        .envs(env)
        .arg("describe")
        .current_dir(dir)
        .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(60), cmd.output())
        .await
        .with_context(|| format!("`{program} describe` did not answer within 60 s"))?
        .with_context(|| {
            format!(
                "cannot run `{program} describe` (from {}); is it built and on PATH?",
                dir.display()
            )
        })?;
    if !out.status.success() {
        bail!(
            "`{program} describe` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let doc = weir_core::contract::Description::parse(&out.stdout)
        .with_context(|| format!("`{program} describe` did not print a flow description (docs/contracts.md); is it a Weir flows program? (set `plain = true` for any other program)"))?;
    Ok(doc
        .flows
        .into_iter()
        .map(|f| (f.name, f.parameters))
        .collect())
}

/// Fills each flows-binary deployment's parameter schema from `describe` and checks its
/// flow exists and its parameters fit. Returns every problem found.
async fn complete(file: &mut DeployFile, label: &str, dir: &Path) -> Vec<String> {
    let mut errors = Vec::new();
    type Key = (Vec<String>, std::collections::BTreeMap<String, String>);
    let mut cache: HashMap<Key, Result<Described, String>> = HashMap::new();
    for entry in &mut file.deployments {
        if entry.spec.plain_command {
            continue;
        }
        if let Some(image) = entry.spec.infrastructure.image() {
            eprintln!(
                "note: deployment {:?} runs in image {image}; its flow and parameters are \
                 checked when it runs, not now",
                entry.name
            );
            continue;
        }
        let key = (entry.spec.command.clone(), entry.spec.env.clone());
        let described = match cache.get(&key) {
            Some(d) => d.clone(),
            None => {
                let d = describe(&entry.spec.command, &entry.spec.env, dir)
                    .await
                    .map_err(|e| format!("{e:#}"));
                cache.insert(key, d.clone());
                d
            }
        };
        let at = format!("{label}:{}:{}", entry.location.line, entry.location.column);
        match described {
            Err(e) => errors.push(format!("{at}: deployment {:?}: {e}", entry.name)),
            Ok(flows) => match flows.get(&entry.spec.flow) {
                None => {
                    let mut known: Vec<_> = flows.keys().cloned().collect();
                    known.sort();
                    errors.push(format!(
                        "{at}: deployment {:?}: flow {:?} is not in `{} describe` (it has: {})",
                        entry.name,
                        entry.spec.flow,
                        entry.spec.command.join(" "),
                        known.join(", ")
                    ));
                }
                Some(schema) => {
                    entry.spec.parameter_schema = Some(schema.clone());
                    if let Err(problems) = weir_deploy::validate_parameters(&entry.spec) {
                        for p in problems {
                            errors.push(format!("{at}: deployment {:?}: {p}", entry.name));
                        }
                    }
                }
            },
        }
    }
    errors
}

/// Upserts every deployment, printing what changed.
async fn register(
    client: &weir_client::Client,
    project: &str,
    deployments: &[(String, DeploymentSpec)],
    plan: bool,
    json: bool,
) -> Result<Vec<serde_json::Value>> {
    let mut report = Vec::new();
    for (name, spec) in deployments {
        let r = client
            .upsert_deployment(project, name, spec, plan)
            .await
            .map_err(super::explain)
            .with_context(|| format!("deployment {project}/{name}"))?;
        let verb = match (r.outcome, plan) {
            (UpsertOutcome::Created, true) => "would create",
            (UpsertOutcome::Updated, true) => "would update",
            (UpsertOutcome::Restored, true) => "would restore",
            (UpsertOutcome::Created, false) => "created",
            (UpsertOutcome::Updated, false) => "updated",
            (UpsertOutcome::Restored, false) => "restored",
            (UpsertOutcome::Unchanged, _) => "unchanged",
        };
        let changes = match &r.previous {
            Some(prev) => weir_deploy::diff(prev, spec),
            None => vec![],
        };
        // The plan shows when a created or changed schedule fires next.
        let fire_times = match (plan, r.outcome) {
            (true, UpsertOutcome::Unchanged) | (false, _) => vec![],
            (true, _) => {
                weir_deploy::plan::fire_times(r.previous.as_ref(), spec, chrono::Utc::now())
            }
        };
        if !json {
            let version = r
                .deployment
                .as_ref()
                .map(|d| format!(" (v{})", d.version))
                .unwrap_or_default();
            println!("{verb:>12}  {project}/{name}{version}");
            for c in &changes {
                println!("              {c}");
            }
            for line in weir_deploy::plan::fire_time_lines(&fire_times) {
                println!("            {line}");
            }
        }
        let mut entry = serde_json::json!({
            "deployment": format!("{project}/{name}"),
            "outcome": verb,
            "changes": changes,
        });
        if !fire_times.is_empty() {
            entry["next_fire_times"] = serde_json::json!(fire_times);
        }
        report.push(entry);
    }
    Ok(report)
}

/// `weir deploy`.
pub async fn deploy(
    api: &str,
    file: &Path,
    project: Option<String>,
    mode: Mode,
    var_args: &[String],
    json: bool,
) -> Result<ExitCode> {
    let mut vars = weir_deploy::Vars::new();
    for arg in var_args {
        if let Err(e) = vars.add_arg(arg, |name| std::env::var(name).ok()) {
            eprintln!("{e}");
            eprintln!("nothing was deployed");
            return Ok(ExitCode::from(2));
        }
    }
    let mut parsed = match weir_deploy::load_with(file, &vars) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            eprintln!("nothing was deployed");
            return Ok(ExitCode::from(2));
        }
    };
    let Some(project) = project.or_else(|| parsed.project.clone()) else {
        eprintln!(
            "{}: no project: set `project = \"dev\"` in the file or pass --project",
            file.display()
        );
        return Ok(ExitCode::from(2));
    };
    if let Err(m) = weir_core::names::check("project", &project) {
        eprintln!("{m}");
        return Ok(ExitCode::from(2));
    }
    let dir = file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let mut errors = complete(&mut parsed, &file.display().to_string(), &dir).await;
    let storage = parsed.deployments.iter().filter_map(|d| {
        let url = d.spec.result_storage.as_deref()?;
        Some((d.name.as_str(), url))
    });
    errors.extend(super::result::check_storage(storage).await);
    if !errors.is_empty() {
        for e in errors {
            eprintln!("{e}");
        }
        eprintln!("nothing was deployed");
        return Ok(ExitCode::from(2));
    }
    let client = super::client(api)?;
    let deployments: Vec<_> = parsed
        .deployments
        .into_iter()
        .map(|d| (d.name, d.spec))
        .collect();
    // ECS task definitions first: a deployment is stored only once its task can run.
    #[cfg(feature = "ecs")]
    match super::ecs::task_definitions(&project, &deployments, mode.plan).await {
        Ok(lines) if !json => lines.iter().for_each(|l| println!("{l}")),
        Ok(_) => {}
        Err(errors) => {
            errors.iter().for_each(|e| eprintln!("{e}"));
            eprintln!("nothing was deployed");
            return Ok(ExitCode::from(2));
        }
    }
    // Rules first, so this deploy's own deployment events reach them.
    let rules = &parsed.notifications;
    let mut report = super::deploy_notify::sync(&client, &project, rules, mode.plan, json).await?;
    report.extend(register(&client, &project, &deployments, mode.plan, json).await?);
    let names: Vec<&str> = deployments.iter().map(|(n, _)| n.as_str()).collect();
    report.extend(super::prune::removals(&client, &project, &names, mode, json).await?);
    if json {
        output::json(&report);
    }
    Ok(ExitCode::SUCCESS)
}

/// Deploys the example flows (project `dev`) from the `example-flows` binary next to this
/// one. Returns the deployments' names.
pub async fn deploy_examples(api: &str) -> Result<Vec<String>> {
    let exe = std::env::current_exe().context("cannot locate the weir executable")?;
    let dir = exe
        .parent()
        .context("the weir executable has no directory")?;
    let binary = dir.join("example-flows");
    if !binary.exists() {
        bail!(
            "{} not found; build everything with `cargo build --release` to get the example flows",
            binary.display()
        );
    }
    let mut parsed = weir_deploy::parse(Path::new("examples/flows/weir.toml"), EXAMPLES)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let binary = binary.display().to_string();
    for d in &mut parsed.deployments {
        if d.spec.command.first().map(String::as_str) == Some("example-flows") {
            d.spec.command[0] = binary.clone();
        }
    }
    register_examples(parsed, "examples/flows/weir.toml", dir, api).await
}

/// Deploys the Python example flows (project `dev`) from the checkout this `weir` was built
/// in, when a Python 3.9+ is on PATH: the command becomes `python3 -m weir <checkout>/examples/
/// python/flows`, with the checkout's SDK on `PYTHONPATH`. Returns the deployments' names.
pub async fn deploy_python_examples(api: &str) -> Result<Vec<String>> {
    let checkout = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = checkout.join("examples/python");
    let (flows, sdk) = (dir.join("flows"), checkout.join("sdk/python/src"));
    if !flows.is_dir() || !sdk.is_dir() {
        bail!(
            "{} not found (a weir built from a checkout deploys them)",
            flows.display()
        );
    }
    let ok = tokio::process::Command::new("python3")
        .args(["-c", "import sys; sys.exit(sys.version_info < (3, 9))"])
        .status()
        .await
        .is_ok_and(|s| s.success());
    if !ok {
        bail!("no Python 3.9 or newer on PATH as python3");
    }
    let mut parsed = weir_deploy::parse(Path::new("examples/python/weir.toml"), PY_EXAMPLES)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    for d in &mut parsed.deployments {
        d.spec.command = ["python3", "-m", "weir"]
            .iter()
            .map(|s| s.to_string())
            .chain([flows.display().to_string()])
            .collect();
        d.spec
            .env
            .insert("PYTHONPATH".into(), sdk.display().to_string());
    }
    register_examples(parsed, "examples/python/weir.toml", &dir, api).await
}

/// Completes a parsed example file (schemas from `describe`, run in `dir`), registers its
/// deployments (project `dev` unless the file names one) and returns their names.
async fn register_examples(
    mut parsed: DeployFile,
    label: &str,
    dir: &Path,
    api: &str,
) -> Result<Vec<String>> {
    let errors = complete(&mut parsed, label, dir).await;
    if !errors.is_empty() {
        bail!("{}", errors.join("\n"));
    }
    let project = parsed.project.clone().unwrap_or_else(|| "dev".into());
    let client = super::client(api)?;
    let deployments: Vec<_> = parsed
        .deployments
        .into_iter()
        .map(|d| (d.name, d.spec))
        .collect();
    register(&client, &project, &deployments, false, true).await?;
    Ok(deployments
        .iter()
        .map(|(n, _)| format!("{project}/{n}"))
        .collect())
}
