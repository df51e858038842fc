//! Why a run is not running: a pure explanation over facts the store gathers.
//!
//! [`explain`] looks at a run, its deployment, the agents that serve its queue and the
//! concurrency limits it falls under, and lists every reason it is not running now: not due
//! yet, awaiting a retry, no live agent on its queue, no agent that launches its kind of
//! infrastructure, every agent at capacity, a full limit (with the runs holding its slots), a
//! paused schedule. A due run with none of these is ready: the next claim takes it.

use crate::api::Agent;
/// The explanation's wire types, defined with the API's and given their sentences here.
pub use crate::api::{AgentLoad, Explanation, Reason};
use crate::infrastructure::InfrastructureKind;
use crate::limits::{LimitKey, OnLimit};
use crate::run::{Run, Standing};
use crate::{StateKind, Timestamp};
use chrono::Duration;
use uuid::Uuid;

/// What the store knows about a run's surroundings, gathered for [`explain`].
#[derive(Debug, Clone)]
pub struct Facts {
    /// The run explained, as the store read it.
    pub run: Run,
    /// Its deployment, if it has one.
    pub deployment: Option<DeploymentFacts>,
    /// Agents heard from recently (live or not) that serve the run's work queue.
    pub agents: Vec<Agent>,
    /// The concurrency limits the run falls under, with the runs holding their slots.
    pub limits: Vec<LimitFacts>,
}

/// The parts of a deployment that decide whether its runs start.
#[derive(Debug, Clone)]
pub struct DeploymentFacts {
    /// `project/name`.
    pub name: String,
    /// Whether its schedules are paused.
    pub paused: bool,
    /// The infrastructure its runs need a launcher for.
    pub kind: InfrastructureKind,
    /// What a due run does when a limit is full.
    pub on_limit: OnLimit,
}

/// One limit a run falls under, and who holds its slots now.
#[derive(Debug, Clone)]
pub struct LimitFacts {
    /// Which limit: its deployment's own, or a tag's.
    pub key: LimitKey,
    /// Its number of slots.
    pub slots: u32,
    /// Runs holding a slot (their attempt holds a live lease), excluding the run explained.
    pub holders: Vec<Uuid>,
}

/// Whether an agent last heard from at `last` is live at `now`: agents heartbeat at least three
/// times per lease, so one silent for longer than `lease` is gone.
pub fn agent_is_live(last: Timestamp, now: Timestamp, lease: Duration) -> bool {
    last + lease >= now
}

/// Explains why `facts.run` is not running at `now`; `lease` is the server's lease, which
/// decides whether an agent is live.
pub fn explain(facts: &Facts, now: Timestamp, lease: Duration) -> Explanation {
    let run = &facts.run;
    let mut reasons = Vec::new();
    if run.state.is_terminal() {
        reasons.push(Reason::Ended {
            state: run.state,
            message: run.state_message.clone(),
        });
    } else if !run.state.is_claimable() {
        reasons.push(Reason::Started { state: run.state });
    } else {
        waiting_reasons(facts, now, lease, &mut reasons);
    }
    let messages = reasons.iter().map(|r| message(r, now)).collect();
    Explanation {
        run: run.id,
        state: run.state,
        waiting: run.state.is_claimable(),
        reasons,
        messages,
    }
}

fn waiting_reasons(facts: &Facts, now: Timestamp, lease: Duration, out: &mut Vec<Reason>) {
    let run = &facts.run;
    if run.scheduled_at > now {
        out.push(if run.state == StateKind::AwaitingRetry {
            Reason::AwaitingRetry {
                until: run.scheduled_at,
                used: run.retries_used,
                allowed: run.retries,
            }
        } else {
            Reason::NotDue {
                at: run.scheduled_at,
            }
        });
    }
    let live: Vec<&Agent> = facts
        .agents
        .iter()
        .filter(|a| agent_is_live(a.last_heartbeat_at, now, lease))
        .collect();
    let kind = facts
        .deployment
        .as_ref()
        .map_or(InfrastructureKind::Process, |d| d.kind);
    let able: Vec<&&Agent> = live
        .iter()
        .filter(|a| a.launchers.contains(&kind))
        .collect();
    if live.is_empty() {
        out.push(Reason::NoLiveAgent {
            queue: run.work_queue.clone(),
            last_seen: facts.agents.iter().map(|a| a.last_heartbeat_at).max(),
        });
    } else if able.is_empty() {
        out.push(Reason::NoLauncher {
            queue: run.work_queue.clone(),
            kind,
            agents: live.iter().map(|a| a.name.clone()).collect(),
        });
    } else if able.iter().all(|a| a.running >= a.limit) {
        out.push(Reason::AgentsAtCapacity {
            agents: able
                .iter()
                .map(|a| AgentLoad {
                    name: a.name.clone(),
                    running: a.running,
                    limit: a.limit,
                })
                .collect(),
        });
    }
    let skip = facts
        .deployment
        .as_ref()
        .is_some_and(|d| crate::orchestration::skips(run, d.on_limit));
    for l in &facts.limits {
        if l.holders.len() >= l.slots as usize {
            out.push(Reason::LimitFull {
                limit: l.key.clone(),
                slots: l.slots,
                held: u32::try_from(l.holders.len()).unwrap_or(u32::MAX),
                holders: l.holders.clone(),
                skip,
            });
        }
    }
    let blocked = !out.is_empty();
    if let Some(d) = facts.deployment.as_ref().filter(|d| d.paused) {
        out.push(Reason::SchedulePaused {
            deployment: d.name.clone(),
        });
    }
    if !blocked {
        out.push(Reason::Ready);
    }
}

/// Why a due run on `queue` whose infrastructure is `kind` is not being claimed, judged from
/// the live agents alone (what `weir run` prints while it waits; [`explain`] weighs every
/// cause): none serves the queue, or none of those can launch the kind. `None` when
/// some live agent could take it (it is then only waiting for a free slot or the next claim).
pub fn why_waiting(kind: InfrastructureKind, queue: &str, live_agents: &[Agent]) -> Option<String> {
    let on_queue: Vec<_> = live_agents
        .iter()
        .filter(|a| a.queues.iter().any(|q| q == queue))
        .collect();
    if on_queue.is_empty() {
        return Some(format!(
            "no live agent takes runs from work queue {queue:?}: start one with \
             `weir agent --queue {queue} --launchers {kind}`"
        ));
    }
    if on_queue.iter().any(|a| a.launchers.contains(&kind)) {
        return None;
    }
    let names: Vec<String> = on_queue
        .iter()
        .map(|a| {
            let kinds: Vec<&str> = a.launchers.iter().map(|k| k.as_str()).collect();
            format!("{} ({})", a.name, kinds.join(", "))
        })
        .collect();
    Some(format!(
        "no live agent on work queue {queue:?} can launch {kind} runs (agents: {}): start one \
         with `weir agent --queue {queue} --launchers {kind}`",
        names.join("; ")
    ))
}

/// What became of a run after its attempt `attempt` ended, as one sentence: for the process
/// and agent that ran that attempt, which learn it from the server (a failure the server
/// turned into a retry, a cancellation, a newer attempt).
pub fn after_attempt(run: Standing<'_>, attempt: u32) -> String {
    let at = run.scheduled_at.format("%Y-%m-%d %H:%M:%S UTC");
    match run.state {
        StateKind::AwaitingRetry if run.attempt == attempt => format!(
            "attempt {attempt} failed; retry {} of {} is scheduled at {at}",
            run.retries_used, run.retries
        ),
        s if s.is_terminal() => match run.state_message {
            Some(m) => format!("attempt {attempt} is over: the run ended {s}: {m}"),
            None => format!("attempt {attempt} is over: the run ended {s}"),
        },
        s if s.is_claimable() => format!("attempt {attempt} is over: the run is {s}, due at {at}"),
        s => format!(
            "attempt {attempt} is over: the run is {s} in attempt {}",
            run.attempt
        ),
    }
}

/// Whether attempt `attempt` ended with its own report (Completed or Failed at that attempt:
/// the crash detector and cancellations never write these), so its process is exiting by
/// itself and stopping it would only race its exit.
pub fn ended_by_its_process(run: Standing<'_>, attempt: u32) -> bool {
    run.attempt == attempt && matches!(run.state, StateKind::Completed | StateKind::Failed)
}

fn when(at: Timestamp, now: Timestamp) -> String {
    let secs = (at - now).num_seconds();
    let rel = if secs >= 0 {
        format!("in {}", human(secs))
    } else {
        format!("{} ago", human(-secs))
    };
    format!("{} ({rel})", at.format("%Y-%m-%d %H:%M:%S UTC"))
}

fn human(secs: i64) -> String {
    match secs {
        s if s < 120 => format!("{s} s"),
        s if s < 7200 => format!("{} min", s / 60),
        s if s < 172_800 => format!("{} h", s / 3600),
        s => format!("{} days", s / 86_400),
    }
}

fn ids(holders: &[Uuid], held: u32) -> String {
    let mut out: Vec<String> = holders.iter().map(Uuid::to_string).collect();
    let hidden = (held as usize).saturating_sub(holders.len());
    if hidden > 0 {
        out.push(format!("{hidden} run(s) in other projects"));
    }
    if out.is_empty() {
        return "none".into();
    }
    out.join(", ")
}

impl Explanation {
    /// Keeps only the slot holders `visible` accepts (the caller may see), and says how many
    /// others there are.
    pub fn retain_holders(&mut self, visible: impl Fn(&Uuid) -> bool, now: Timestamp) {
        for r in &mut self.reasons {
            if let Reason::LimitFull { holders, .. } = r {
                holders.retain(|h| visible(h));
            }
        }
        self.messages = self.reasons.iter().map(|r| message(r, now)).collect();
    }
}

/// One reason as a sentence.
pub fn message(reason: &Reason, now: Timestamp) -> String {
    match reason {
        Reason::Started { state } => format!("it is not waiting: it is {state}"),
        Reason::Ended { state, message } => match message {
            Some(m) => format!("it has ended {state}: {m}"),
            None => format!("it has ended {state}"),
        },
        Reason::NotDue { at } => {
            format!("it is waiting for its scheduled time, {}", when(*at, now))
        }
        Reason::AwaitingRetry {
            until,
            used,
            allowed,
        } => format!(
            "an attempt failed; retry {used} of {allowed} is due {}",
            when(*until, now)
        ),
        Reason::NoLiveAgent { queue, last_seen } => match last_seen {
            Some(t) => format!(
                "no live agent serves work queue {queue:?} (one was last heard from {}): start `weir agent --queue {queue}`",
                when(*t, now)
            ),
            None => {
                format!("no agent serves work queue {queue:?}: start `weir agent --queue {queue}`")
            }
        },
        Reason::NoLauncher {
            queue,
            kind,
            agents,
        } => format!(
            "no live agent on work queue {queue:?} launches {kind} runs (live: {}): start one with that launcher",
            agents.join(", ")
        ),
        Reason::AgentsAtCapacity { agents } => format!(
            "every agent that could take it is at capacity: {}",
            agents
                .iter()
                .map(|a| format!("{} runs {} of {}", a.name, a.running, a.limit))
                .collect::<Vec<_>>()
                .join("; ")
        ),
        Reason::LimitFull {
            limit,
            slots,
            held,
            holders,
            skip,
        } => format!(
            "{limit} is full ({held} of {slots} slots, held by {}){}",
            ids(holders, *held),
            if *skip {
                "; on_limit = \"skip\": it will be skipped (Cancelled) when an agent next looks"
            } else {
                "; it waits for a slot"
            }
        ),
        Reason::SchedulePaused { deployment } => format!(
            "deployment {deployment}'s schedules are paused: no new scheduled runs are made (this run still starts when due)"
        ),
        Reason::Ready => {
            "nothing holds it back: the next claim by an agent on its queue takes it".into()
        }
    }
}

#[cfg(test)]
mod tests;
