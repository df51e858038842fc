//! Taking over runs the agent did not launch in this life: after a restart, and from an
//! agent it replaces.
//!
//! - **Records.** Every supervised run has a record in the state directory (run, attempt,
//!   launcher, the launch's id). A restarted agent reads them before claiming anything: a
//!   local process still alive is followed by its pid; a run of another launcher is handed
//!   back by [`Launcher::reattach`] (an ECS task found by its `startedBy`). A run whose
//!   process or task is gone is settled from what the server knows (its own report, its
//!   outcome file, else Crashed).
//! - **Discovery.** Then every launcher whose runs outlive agents is asked for the runs of
//!   the agent's queues still on its infrastructure ([`Launcher::discover`]): how a new agent
//!   instance — new identity, same cluster and queues — takes over the ECS tasks of the one
//!   it replaces while that one drains, instead of launching them again or losing their end.
//!   Nothing found is followed until the server says it may be taken over.
//! - A run is taken over only while the server says it is at the same attempt and not
//!   finished; heartbeating it then makes this agent its holder. When two agents follow the
//!   same task during a hand-over, both see its end and the server applies the first report.
//! - **Spools.** A local process's output is in its spool files
//!   ([`crate::launcher::spool`]): they are read again from their start, alive or not, and
//!   shipped under the numbers the earlier agent used (the server stores each line once),
//!   redacted with the values of the process's own environment (`/proc/<pid>/environ`: its
//!   run token and the variables `WEIR_SECRET_VARS` names) or, once it is gone, the secrets
//!   its record names (the launch's references) resolved again and its run token recognised
//!   by its start. While those secrets cannot be resolved (their store does not answer), the
//!   run is settled without its output, and the spool and record are kept and shipped once
//!   they resolve: retried in this agent, and by its next start (see [`ship_spool`]); nothing
//!   is sent unredacted. A spool
//!   with no record (the agent died between launching and writing the record) is removed once
//!   the server has the run finished, at another attempt, or no longer has it.

use super::record::{self, Record};
use super::report::{read_run, settle};
use super::supervise::{drain_and_wait, finish_spool};
use super::{Held, Shared, lock};
use crate::launcher::{ExitStatus, Found, Launched, Launcher};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;
use weir_core::infrastructure::InfrastructureKind;

/// Takes over what the records and the launchers' infrastructure hold; returns once every
/// such run is supervised again (before the agent claims anything).
pub(super) async fn adopt(sh: &Arc<Shared>) {
    let mut reattach = Vec::new();
    let records = record::read_all(sh);
    let recorded: Vec<(Uuid, u32)> = records.iter().map(|r| (r.run, r.attempt)).collect();
    for (run, attempt) in sh.spool.attempts() {
        if !recorded.contains(&(run, attempt)) {
            let sh = sh.clone();
            tokio::spawn(async move { clean_unrecorded_spool(&sh, run, attempt).await });
        }
    }
    for record in records {
        match launcher_of(sh, &record) {
            None => follow_process(sh, record),
            Some(launcher) => reattach.push((launcher, record)),
        }
    }
    for (launcher, record) in reattach {
        match launcher
            .reattach(record.run, record.attempt, &record.pid)
            .await
        {
            Ok(Some(launched)) => {
                let id = launched.id();
                let (run, attempt, plain) = (record.run, record.attempt, record.plain);
                if follow(sh, &launcher, run, attempt, plain, launched).await {
                    tracing::info!(message = "taking over a run still on its infrastructure", %run, %id);
                }
            }
            Ok(None) => {
                let sh = sh.clone();
                tokio::spawn(async move {
                    settle_orphan(&sh, record.run, record.attempt, false).await;
                    record::remove(&sh, record.run);
                });
            }
            // The run's own heartbeats keep it alive meanwhile; discovery may still find it.
            Err(error) => {
                tracing::warn!(message = "cannot look for a run of the previous agent", run = %record.run, %error)
            }
        }
    }
    discover(sh).await;
}

/// Runs of this agent's queues that its launchers whose runs outlive agents find on their
/// infrastructure (`Launcher::discover`: ECS tasks by their queue tag), not yet followed, and
/// taken over where the server has them at the same attempt and unfinished ([`takeable`]).
/// Whether one runs a plain command is what its launcher recorded with it ([`Found`]).
///
/// Regression (#10): that was read from the run's deployment, which an agent's key may not
/// read (403); a discovered plain command was taken for a flow and, reporting nothing
/// itself, ended Crashed instead of by its exit status.
async fn discover(sh: &Arc<Shared>) {
    let launchers: Vec<Arc<dyn Launcher>> = sh
        .launchers
        .values()
        .filter(|l| l.survives_agent())
        .cloned()
        .collect();
    for launcher in launchers {
        let found = match launcher.discover(&sh.options.queues).await {
            Ok(f) => f,
            Err(error) => {
                tracing::warn!(message = "cannot look for runs to take over", launcher = launcher.name(), %error);
                continue;
            }
        };
        let found: Vec<Found> = found
            .into_iter()
            .filter(|f| !lock(sh).contains_key(&f.flow_run_id))
            .collect();
        for f in takeable(sh, found).await {
            let (run, attempt, id) = (f.flow_run_id, f.attempt, f.id);
            let launched = match launcher.reattach(run, attempt, &id).await {
                Ok(Some(launched)) => launched,
                Ok(None) => continue,
                Err(error) => {
                    tracing::warn!(message = "cannot take over a run another agent launched", %run, %id, %error);
                    continue;
                }
            };
            if follow(sh, &launcher, run, attempt, f.plain_command, launched).await {
                tracing::info!(message = "taking over a run another agent launched", %run, attempt, %id);
            }
        }
    }
}

/// Of the runs `found`, those the server has at the same attempt and unfinished. Nothing of
/// the others is followed or touched: a run that moved on is left (and said so), and one the
/// server hides belongs to another agent key.
async fn takeable(sh: &Arc<Shared>, found: Vec<Found>) -> Vec<Found> {
    let mut out = Vec::new();
    for f in found {
        match read_run(sh, f.flow_run_id).await {
            Some(r) if r.attempt == f.attempt && !r.state.is_terminal() => out.push(f),
            Some(r) => tracing::warn!(
                message = "found a run that has moved on (finished, or at another attempt); leaving it",
                run = %f.flow_run_id,
                attempt = f.attempt,
                now_at = r.attempt,
                id = %f.id
            ),
            None => tracing::warn!(
                message = "cannot take over a run: the server did not show it to this agent (it \
                           hides runs from other agent keys: an agent replacing another must \
                           use the same agent key)",
                run = %f.flow_run_id,
                id = %f.id
            ),
        }
    }
    out
}

/// Supervises a run taken over, if the server still has it at `attempt` and unfinished;
/// says whether it does.
async fn follow(
    sh: &Arc<Shared>,
    launcher: &Arc<dyn Launcher>,
    run: Uuid,
    attempt: u32,
    plain: bool,
    mut launched: Launched,
) -> bool {
    let current = match read_run(sh, run).await {
        Some(r) if r.attempt == attempt && !r.state.is_terminal() => r,
        Some(_) => {
            record::remove(sh, run);
            return false;
        }
        None => {
            // The server hides a run from an agent key other than the one that launched it.
            tracing::warn!(
                message = "cannot take over a run: the server did not show it to this agent (it \
                           hides runs from other agent keys: an agent replacing another must \
                           use the same agent key)",
                %run,
                id = %launched.id()
            );
            record::remove(sh, run);
            return false;
        }
    };
    lock(sh).insert(
        run,
        Held {
            attempt,
            cancel: Some(launched.canceller()),
            cancelling: false,
            survives: launcher.survives_agent(),
            fenced: false,
            // Its lease is vouched for from the take-over on: the next heartbeat renews it.
            renewed: sh.fence.now(),
            lost: false,
        },
    );
    record::write(
        sh,
        &Record {
            run,
            attempt,
            pid: launched.id(),
            launcher: Some(launcher.name().to_string()),
            plain,
            ended: false,
            // Only a local process's spooled output is redacted by the agent taking it over.
            secrets: None,
        },
    );
    let sh = sh.clone();
    tokio::spawn(async move {
        let (exit, _) = drain_and_wait(&sh, current.id, current.attempt, &mut launched, None).await;
        settle(&sh, &current, plain, exit, None).await;
        lock(&sh).remove(&run);
        record::remove(&sh, run);
        sh.slot_freed.notify_waiters();
    });
    true
}

/// The launcher a record names, unless it is a local process (followed by its pid).
fn launcher_of(sh: &Shared, record: &Record) -> Option<Arc<dyn Launcher>> {
    let name = record.launcher.as_deref()?;
    if name == InfrastructureKind::Process.as_str() {
        return None;
    }
    sh.launchers.values().find(|l| l.name() == name).cloned()
}

/// A local process of the previous agent: its spooled output shipped from the start of its
/// files, heartbeated while alive, settled when it is gone.
fn follow_process(sh: &Arc<Shared>, record: Record) {
    let (run, attempt) = (record.run, record.attempt);
    let Some(pid) = record.pid.parse::<u32>().ok() else {
        record::remove(sh, run);
        return;
    };
    let alive = !record.ended && crate::launcher::is_alive(pid);
    let spooled = sh.spool.exists(run, attempt);
    if !alive && !spooled {
        let sh = sh.clone();
        tokio::spawn(async move {
            settle_orphan(&sh, run, attempt, record.plain).await;
            record::remove(&sh, run);
        });
        return;
    }
    if alive {
        tracing::info!(message = "taking over a run still alive from a previous agent", %run, pid);
        lock(sh).insert(
            run,
            Held {
                attempt,
                cancel: Some(crate::launcher::process::pid_canceller(pid)),
                cancelling: false,
                survives: false,
                fenced: false,
                renewed: sh.fence.now(),
                lost: false,
            },
        );
    }
    let sh = sh.clone();
    tokio::spawn(async move {
        let keep_record = if spooled {
            ship_spool(&sh, record, alive.then_some(pid)).await
        } else {
            wait_gone(pid).await;
            settle_orphan(&sh, run, attempt, record.plain).await;
            false
        };
        release(&sh, run, attempt);
        if !keep_record {
            record::remove_attempt(&sh, run, attempt);
        }
    });
}

/// Ships the spool of `record`'s attempt (its process `alive`, or gone) and settles the
/// attempt; says whether the record stays (see [`finish_spool`]).
///
/// When the values to redact cannot be known (the secret store does not answer), nothing is
/// sent: the attempt is settled once its process is gone, its record is kept (marked ended, for
/// the agent's next start) with the spool, and the secrets are resolved again after 1 s, then
/// at doubling intervals of at most [`RESOLVE_EVERY_MAX`], for as long as the agent runs; once
/// they resolve, the spool is shipped from its start, redacted.
///
/// Regression (#10): the spool was removed unsent then, losing every line of the attempt.
async fn ship_spool(sh: &Arc<Shared>, record: Record, alive: Option<u32>) -> bool {
    let (run, attempt) = (record.run, record.attempt);
    if let Some(redact) = adopted_redactions(sh, &record, alive).await {
        let follow_pid = alive.unwrap_or(0);
        let mut launched = crate::launcher::spool::follow(
            &sh.spool,
            run,
            attempt,
            follow_pid,
            &redact,
            SPOOL_DRAIN,
        );
        let (_, shipped) = drain_and_wait(sh, run, attempt, &mut launched, None).await;
        settle_orphan(sh, run, attempt, record.plain).await;
        return finish_spool(sh, record, shipped);
    }
    tracing::warn!(message = "keeping the run's spooled output unsent until its secrets can be resolved again to redact it", %run, attempt);
    if let Some(pid) = alive {
        wait_gone(pid).await;
    }
    // Written before the attempt is settled: a retry this agent claims then writes its own.
    let record = Record {
        ended: true,
        launcher: Some(InfrastructureKind::Process.as_str().to_string()),
        ..record
    };
    record::write(sh, &record);
    settle_orphan(sh, run, attempt, record.plain).await;
    release(sh, run, attempt);
    let mut every = Duration::from_secs(1);
    let redact = loop {
        tokio::time::sleep(every).await;
        if let Some(redact) = adopted_redactions(sh, &record, None).await {
            break redact;
        }
        every = (every * 2).min(RESOLVE_EVERY_MAX);
    };
    tracing::info!(message = "sending the run's spooled output: its secrets resolve again", %run, attempt);
    let mut launched =
        crate::launcher::spool::follow(&sh.spool, run, attempt, 0, &redact, SPOOL_DRAIN);
    let (_, shipped) = drain_and_wait(sh, run, attempt, &mut launched, None).await;
    finish_spool(sh, record, shipped)
}

/// Longest wait between two tries to resolve the secrets of a kept spool.
const RESOLVE_EVERY_MAX: Duration = Duration::from_secs(60);

/// Returns once process `pid` is gone.
async fn wait_gone(pid: u32) {
    while crate::launcher::is_alive(pid) {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Stops holding attempt `attempt` of `run` (a later attempt this agent claimed meanwhile stays
/// held) and frees its slot.
fn release(sh: &Shared, run: Uuid, attempt: u32) {
    let mut held = lock(sh);
    if held.get(&run).is_some_and(|h| h.attempt == attempt) {
        held.remove(&run);
    }
    drop(held);
    sh.slot_freed.notify_waiters();
}

/// How long a taken-over process's group may outlive it before the rest is killed (the
/// process launcher's default drain timeout).
const SPOOL_DRAIN: Duration = Duration::from_secs(2);

/// The values to redact from a taken-over run's spooled output: those of its process's own
/// environment while it is alive (its run token, the variables `WEIR_SECRET_VARS` names);
/// once it is gone, the secrets its record names resolved again (its run token is then
/// redacted by its start, see [`crate::launcher::spool::follow`]). `None` when they cannot be
/// known.
///
/// Regression (#10, `kill_agent`): the secrets of a process that ended while no agent ran
/// were looked up in its deployment, which an agent's key may not read (403): the agent took
/// them for unknowable and removed the spool unsent, losing every line printed after the
/// kill. Records of agents before the launch's references were kept still look there.
async fn adopted_redactions(sh: &Shared, record: &Record, pid: Option<u32>) -> Option<Vec<String>> {
    use weir_core::contract::launch::{secret_var_names, var};
    if let Some(env) = pid.and_then(environ) {
        let mut values: Vec<String> = env.get(var::API_KEY).cloned().into_iter().collect();
        if let Some(names) = env.get(var::SECRET_VARS) {
            values.extend(secret_var_names(names).filter_map(|n| env.get(n).cloned()));
        }
        return Some(values);
    }
    let refs = match &record.secrets {
        Some(refs) => refs.clone(),
        None => deployment_secrets(sh, record.run).await?,
    };
    match sh.resolver.resolve_all(&refs).await {
        Ok(values) => Some(values.into_values().collect()),
        Err(error) => {
            tracing::warn!(message = "cannot resolve a taken-over run's secrets", run = %record.run, %error);
            None
        }
    }
}

/// The secret references of run `run`'s deployment as the server has them now (none for an
/// ad-hoc run); `None` when they cannot be read.
async fn deployment_secrets(sh: &Shared, run: Uuid) -> Option<BTreeMap<String, String>> {
    let current = read_run(sh, run).await?;
    let Some(deployment) = current.deployment.as_deref() else {
        // An ad-hoc run has no secrets of Weir's.
        return Some(BTreeMap::new());
    };
    match sh.client.deployment(&current.project, deployment).await {
        Ok(d) => Some(d.spec.secrets),
        Err(error) => {
            tracing::warn!(message = "cannot read a taken-over run's deployment for its secrets", %run, %error);
            None
        }
    }
}

/// The environment process `pid` was started with, when this user may read it.
fn environ(pid: u32) -> Option<std::collections::HashMap<String, String>> {
    let bytes = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    Some(
        bytes
            .split(|b| *b == 0)
            .filter_map(|kv| std::str::from_utf8(kv).ok())
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

/// A spool no record names: its process is not followed (the agent died between launching it
/// and writing its record). Removed once the server has the run finished, at another attempt,
/// or no longer has it; kept otherwise, for a later start to look at again.
async fn clean_unrecorded_spool(sh: &Shared, run: Uuid, attempt: u32) {
    let gone = match sh.client.flow_run(run).await {
        Ok(d) => d.run.state.is_terminal() || d.run.attempt != attempt,
        Err(e) => e.status().is_some_and(|s| s.as_u16() == 404),
    };
    if gone {
        tracing::info!(message = "removing the spooled output of an attempt no agent follows", %run, attempt);
        sh.spool.remove(run, attempt);
    }
}

/// Settles a recorded run whose process ended out of this agent's sight. A plain command's end
/// is what its supervisor recorded ([`crate::supervise`], read by [`settle`]); without one it
/// cannot be known, and the run is Crashed saying so.
async fn settle_orphan(sh: &Shared, run: Uuid, attempt: u32, plain: bool) {
    let unknown = if plain {
        "the command ended while its agent was down, and no supervisor recorded its exit \
         status (the agent launched it without `weir supervise`), so its end cannot be known"
    } else {
        "the run ended while the agent was down"
    };
    match read_run(sh, run).await {
        Some(current) if current.attempt == attempt => {
            settle(
                sh,
                &current,
                plain,
                ExitStatus::Unknown(unknown.into()),
                None,
            )
            .await;
        }
        _ => {}
    }
}
