//! Supervising a claimed run: from its deployment's spec to a launch (command, environment,
//! secrets, redactions), then its output shipped as log lines, its end settled and its
//! spool removed once every line reached the server.

use super::lease::lease_confirmed;
use super::record::{self, Record};
use super::report::{report, settle};
use super::{Held, Shared, lock};
use crate::launcher::{ExitStatus, LaunchError, LaunchSpec, Launched, Launcher};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;
use weir_client::Client;
use weir_core::StateKind;
use weir_core::api::{ClaimedRun, DeploymentSpec, FlowRun};
use weir_core::contract::{AssignedRun, LaunchEnv};
use weir_core::infrastructure::InfrastructureKind;

/// Starts supervising a claimed run in the background; its lease was dated `renewed` at the
/// latest (see [`crate::fence`]).
pub(super) fn start(sh: &Arc<Shared>, me: Uuid, claimed: ClaimedRun, renewed: u64) {
    let id = claimed.run.id;
    lock(sh).insert(
        id,
        Held {
            attempt: claimed.run.attempt,
            cancel: None,
            cancelling: false,
            survives: false,
            fenced: false,
            renewed,
            lost: false,
        },
    );
    let sh = sh.clone();
    tokio::spawn(async move {
        let keep_record = supervise(&sh, me, claimed).await;
        lock(&sh).remove(&id);
        if !keep_record {
            record::remove(&sh, id);
        }
        sh.slot_freed.notify_waiters();
    });
}

/// Launches and follows a claimed run to its end. True when its record must stay: its
/// process ended but some of its spooled lines could not be shipped, which the agent's next
/// start does (`adopt`).
async fn supervise(sh: &Arc<Shared>, me: Uuid, mut claimed: ClaimedRun) -> bool {
    let spec = claimed.spec.take();
    let run = &claimed.run;
    let Some((spec, launcher)) = launchable(sh, run, spec).await else {
        return false;
    };
    let Some(secrets) = resolve_secrets(sh, run, &spec, launcher.as_ref()).await else {
        return false;
    };
    let launch = launch_spec(sh, &claimed, &spec, launcher.as_ref(), secrets);
    if !lease_confirmed(sh, me, run).await {
        return false;
    }
    let Some(mut launched) = launch_or_report(sh, run, launcher.as_ref(), launch).await else {
        return false;
    };
    let launch_record = Record {
        run: run.id,
        attempt: run.attempt,
        pid: launched.id(),
        launcher: Some(launcher.name().to_string()),
        plain: spec.plain_command,
        ended: false,
        secrets: Some(spec.secrets.clone()),
    };
    record::write(sh, &launch_record);
    hold_launched(sh, run, &launched, launcher.as_ref());
    tracing::info!(message = "launched run", run = %run.id, attempt = run.attempt, id = %launched.id());
    report(sh, run, StateKind::Running, None).await;
    // Once the attempt ends with a retry scheduled, the server no longer shows the run to
    // this agent's key; the attempt's run token still reaches it until the next attempt.
    let token = claimed.run_token.clone().map(|t| sh.client.with_token(t));
    let (exit, shipped) =
        drain_and_wait(sh, run.id, run.attempt, &mut launched, token.clone()).await;
    settle(sh, run, spec.plain_command, exit, token.as_ref()).await;
    finish_spool(sh, launch_record, shipped)
}

/// The run's spec and the launcher for its infrastructure, when it has both and a command;
/// otherwise reports it Crashed saying which is missing.
async fn launchable(
    sh: &Shared,
    run: &FlowRun,
    spec: Option<DeploymentSpec>,
) -> Option<(DeploymentSpec, Arc<dyn Launcher>)> {
    let Some(spec) = spec else {
        report(
            sh,
            run,
            StateKind::Crashed,
            Some("the run has no deployment to launch".into()),
        )
        .await;
        return None;
    };
    let kind = spec.infrastructure.kind();
    let Some(launcher) = sh.launchers.get(&kind).cloned() else {
        let msg = format!(
            "this agent has no {kind} launcher (it launches: {}); start one with \
             `weir agent --launchers {kind}`",
            sh.launchers
                .keys()
                .map(|k| k.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
        report(sh, run, StateKind::Crashed, Some(msg)).await;
        return None;
    };
    if spec.command.is_empty() {
        let msg = format!(
            "deployment {:?} has no command to run",
            run.deployment.clone().unwrap_or_default()
        );
        report(sh, run, StateKind::Crashed, Some(msg)).await;
        return None;
    }
    Some((spec, launcher))
}

/// The values of the run's secrets, resolved by the agent; none for a launcher whose
/// infrastructure injects them itself (ECS `valueFrom`), which gets the references and so the
/// agent never holds a value. When they cannot be resolved, reports the run Failed.
async fn resolve_secrets(
    sh: &Shared,
    run: &FlowRun,
    spec: &DeploymentSpec,
    launcher: &dyn Launcher,
) -> Option<BTreeMap<String, String>> {
    if launcher.secrets_by_reference() {
        return Some(BTreeMap::new());
    }
    match sh.resolver.resolve_all(&spec.secrets).await {
        Ok(s) => Some(s),
        Err(e) => {
            report(
                sh,
                run,
                StateKind::Failed,
                Some(format!("before the flow started: {e}")),
            )
            .await;
            None
        }
    }
}

/// What to launch for a claimed run: its command (with `run <flow> --params-json` unless it
/// is a plain command), its environment (the agent's, the deployment's, the launch contract's
/// and the resolved secrets, in that order) and the values to redact from its output.
fn launch_spec(
    sh: &Shared,
    claimed: &ClaimedRun,
    spec: &DeploymentSpec,
    launcher: &dyn Launcher,
    secrets: BTreeMap<String, String>,
) -> LaunchSpec {
    let run = &claimed.run;
    let by_reference = launcher.secrets_by_reference();
    let mut argv = spec.command.clone();
    if spec.plain_command
        && spec.infrastructure.kind() == weir_core::infrastructure::InfrastructureKind::Process
        && !sh.options.supervisor.is_empty()
    {
        let exit_file = crate::outcome::exit_path(&sh.options.state_dir, run.id, run.attempt);
        let mut supervised = sh.options.supervisor.clone();
        supervised.extend([
            "--exit-file".to_string(),
            exit_file.display().to_string(),
            "--".to_string(),
        ]);
        supervised.append(&mut argv);
        argv = supervised;
    }
    if !spec.plain_command {
        let params = serde_json::Value::Object(run.parameters.clone()).to_string();
        argv.extend([
            "run".to_string(),
            spec.flow.clone(),
            "--params-json".to_string(),
            params,
        ]);
    }
    // The run token is a credential like any secret: never in the run's logs.
    let redact: Vec<String> = secrets
        .values()
        .chain(claimed.run_token.iter())
        .filter(|v| !v.is_empty())
        .cloned()
        .collect();
    let launch_env = launch_env(sh, claimed, spec, launcher, &secrets);
    let mut env = sh.options.env.clone();
    env.extend(spec.env.clone());
    env.extend(launch_env.to_vars());
    env.extend(secrets);
    LaunchSpec {
        flow_run_id: run.id,
        attempt: run.attempt,
        queue: run.work_queue.clone(),
        argv,
        infrastructure: spec.infrastructure.clone(),
        env,
        workdir: sh.options.workdir.clone(),
        redact,
        secret_refs: if by_reference {
            spec.secrets.clone()
        } else {
            BTreeMap::new()
        },
        spool: Some(sh.spool.clone()),
        plain_command: spec.plain_command,
    }
}

/// The launch contract's variables for a claimed run ([`LaunchEnv`]).
fn launch_env(
    sh: &Shared,
    claimed: &ClaimedRun,
    spec: &DeploymentSpec,
    launcher: &dyn Launcher,
    secrets: &BTreeMap<String, String>,
) -> LaunchEnv {
    let run = &claimed.run;
    LaunchEnv {
        api_url: sh.options.api_url.clone(),
        api_key: claimed.run_token.clone(),
        run: AssignedRun {
            flow_run_id: run.id,
            attempt: run.attempt,
            resume: claimed.resume,
        },
        project: run.project.clone(),
        flow: run.flow.clone(),
        deployment: run.deployment.clone(),
        parameters: run.parameters.clone(),
        // Names only: the SDK in the child redacts these variables' values from what it reports.
        secret_vars: if launcher.secrets_by_reference() {
            spec.secrets.keys().cloned().collect()
        } else {
            secrets.keys().cloned().collect()
        },
        outcome_file: Some(
            crate::outcome::path(&sh.options.state_dir, run.id, run.attempt)
                .display()
                .to_string(),
        ),
        // Over the agent's own --result-storage (in `options.env`).
        result_storage: spec.result_storage.clone(),
        output_forwarded: launcher.forwards_output(),
        tick_at: run.tick_at,
    }
}

/// Launches `launch`; when that fails, reports the run (Failed for a missing image, the
/// deployment's mistake; Crashed otherwise).
async fn launch_or_report(
    sh: &Shared,
    run: &FlowRun,
    launcher: &dyn Launcher,
    launch: LaunchSpec,
) -> Option<Launched> {
    match launcher.launch(launch).await {
        Ok(l) => Some(l),
        Err(e) => {
            // A missing image is the deployment's mistake, not an accident: Failed.
            let state = match e {
                LaunchError::ImageNotFound { .. } => StateKind::Failed,
                _ => StateKind::Crashed,
            };
            let msg = format!("launch failed ({} launcher): {e}", launcher.name());
            report(sh, run, state, Some(msg)).await;
            None
        }
    }
}

/// Gives the held run its launch's canceller, and stops the launch at once if the run was
/// lost (another attempt may already run) or cancelled while it was being launched.
fn hold_launched(sh: &Shared, run: &FlowRun, launched: &Launched, launcher: &dyn Launcher) {
    let (cancelled_early, lost_early) = {
        let mut held = lock(sh);
        match held.get_mut(&run.id) {
            Some(h) => {
                h.cancel = Some(launched.canceller());
                h.survives = launcher.survives_agent();
                (h.cancelling, h.lost)
            }
            None => (false, false),
        }
    };
    if lost_early {
        // Lost while launching: another attempt may already run.
        launched.canceller().cancel(Duration::ZERO);
    } else if cancelled_early {
        launched.canceller().cancel(sh.options.cancel_grace);
    }
}

/// Streams the launch's output to the server as log lines (batched), then waits for it.
/// Also says whether every line was delivered. `token` is the attempt's own client (its run
/// token), for the lines the server takes no more from this agent's key.
pub(super) async fn drain_and_wait(
    sh: &Arc<Shared>,
    run: Uuid,
    attempt: u32,
    launched: &mut Launched,
    token: Option<Client>,
) -> (ExitStatus, bool) {
    let shipper = crate::logs::Shipper::start_with(sh.client.clone(), token, attempt);
    while let Some(line) = launched.output.recv().await {
        if !shipper
            .send(crate::logs::log_line(run, attempt, line))
            .await
        {
            break;
        }
    }
    let exit = launched.wait().await;
    let shipped = shipper.close().await;
    (exit, shipped)
}

/// After an attempt's end was settled: removes its spool when every line was shipped and
/// says the record may go. Otherwise keeps both, `record` (the attempt's) marked ended, so
/// that the agent's next start ships the rest (`adopt`); returns true then.
pub(super) fn finish_spool(sh: &Shared, record: Record, shipped: bool) -> bool {
    let (run, attempt) = (record.run, record.attempt);
    if shipped || !sh.spool.exists(run, attempt) {
        sh.spool.remove(run, attempt);
        return false;
    }
    tracing::warn!(message = "keeping the run's spooled output: the server did not take all of it; the agent's next start sends it", %run, attempt);
    record::write(
        sh,
        &Record {
            launcher: Some(InfrastructureKind::Process.as_str().to_string()),
            ended: true,
            ..record
        },
    );
    true
}
