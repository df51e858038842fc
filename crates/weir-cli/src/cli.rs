//! Command-line syntax (first stage: raw flags; commands validate them further).

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// Weir: a workflow orchestrator for data pipelines.
#[derive(Debug, Parser)]
#[command(name = "weir", version, about, propagate_version = true)]
pub struct Cli {
    /// Server URL (default: the local server recorded in $WEIR_HOME, else http://127.0.0.1:4200).
    #[arg(long, global = true, env = "WEIR_API_URL")]
    pub api_url: Option<String>,
    /// Also trust the certificates in this PEM file when talking to an https:// server.
    #[arg(long, global = true, env = "WEIR_CA_FILE")]
    pub ca_file: Option<PathBuf>,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    /// The subcommand to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Options shared by `server` and `up`.
#[derive(Debug, Clone, Args)]
pub struct ServerArgs {
    /// Database URL: sqlite://PATH or postgres://… (default: sqlite in $WEIR_HOME).
    #[arg(long, env = "WEIR_DB")]
    pub db: Option<String>,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:4200", env = "WEIR_BIND")]
    pub bind: String,
    /// Seconds a running flow may go without a heartbeat before it is Crashed.
    #[arg(long, default_value_t = 30)]
    pub lease_s: u64,
    /// Seconds a due run may wait for an agent before it is marked Late.
    #[arg(long, default_value_t = 30)]
    pub late_after_s: u64,
    /// Milliseconds between scheduler and crash-detector passes.
    #[arg(long, default_value_t = 1000)]
    pub tick_ms: u64,
    /// Serve HTTPS with this PEM certificate chain (needs --tls-key).
    #[arg(long, requires = "tls_key", env = "WEIR_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, requires = "tls_cert", env = "WEIR_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// The first admin key (weir_<12 hex>_<64 hex>), registered when the database has no key
    /// (a server in a container; e.g. an SSM SecureString injected by ECS). Set it in the
    /// environment, not on the command line. Without it the server generates one.
    #[arg(long, env = "WEIR_ADMIN_KEY", hide_env_values = true)]
    pub admin_key: Option<String>,
    /// Delete finished runs (with their task runs, states and logs) whose last state change
    /// is older than N days, in projects that set no retention of their own
    /// (`weir projects retention`). Default: keep them forever.
    #[arg(long, env = "WEIR_RETAIN_DAYS", value_name = "N")]
    pub retain_days: Option<u32>,
    /// Before deleting, export the runs as JSON lines to this storage (file:///path, a path,
    /// s3://bucket/prefix) under retention/PROJECT/DAY/; a run that could not be exported is
    /// not deleted.
    #[arg(long, env = "WEIR_RETAIN_EXPORT", value_name = "URL")]
    pub retain_export: Option<String>,
    /// Seconds between retention passes.
    #[arg(long, default_value_t = 300, value_name = "S")]
    pub retain_interval_s: u64,
}

/// Options shared by `agent` and `up`.
#[derive(Debug, Clone, Args)]
pub struct AgentArgs {
    /// Work queues to take runs from (repeat or comma-separate).
    #[arg(
        long = "queue",
        short = 'q',
        default_value = weir_core::deployment::DEFAULT_QUEUE,
        value_delimiter = ','
    )]
    pub queues: Vec<String>,
    /// Most runs at once.
    #[arg(long, default_value_t = 4)]
    pub limit: u32,
    /// Agent name (default: host name).
    #[arg(long)]
    pub name: Option<String>,
    /// Seconds between SIGTERM and SIGKILL when cancelling a run.
    #[arg(long, default_value_t = 10)]
    pub cancel_grace_s: u64,
    /// Seconds running runs get to finish when the agent is stopped.
    #[arg(long, default_value_t = 30)]
    pub shutdown_grace_s: u64,
    /// Longest wait between heartbeats, in seconds; the agent beats more often when
    /// the server's lease is short (three beats per lease).
    #[arg(long, default_value_t = 5)]
    pub heartbeat_s: u64,
    /// Pass this variable of the agent's environment on to runs (repeat; `NAME_*` matches a
    /// prefix). By default runs get only PATH, HOME, LANG, TZ and the like, and WEIR_*
    /// settings: never the agent's own credentials.
    #[arg(long = "pass-env", value_name = "NAME")]
    pub pass_env: Vec<String>,
    /// Infrastructure kinds to launch runs on (comma-separated: process, docker, ecs). The
    /// server hands this agent only runs of these kinds. Default: process (`weir up` adds
    /// docker when it can reach a Docker engine).
    #[arg(long, value_delimiter = ',', value_name = "KINDS")]
    pub launchers: Option<Vec<weir_core::infrastructure::InfrastructureKind>>,
    /// ECS: the cluster flow tasks run in.
    #[arg(long, default_value = "weir", env = "WEIR_ECS_CLUSTER")]
    pub ecs_cluster: String,
    /// ECS: subnets of the tasks' network interfaces (comma-separated; private ones).
    #[arg(long, value_delimiter = ',', env = "WEIR_ECS_SUBNETS")]
    pub ecs_subnets: Vec<String>,
    /// ECS: security groups of the tasks' network interfaces (comma-separated).
    #[arg(long, value_delimiter = ',', env = "WEIR_ECS_SECURITY_GROUPS")]
    pub ecs_security_groups: Vec<String>,
    /// ECS: give tasks a public IP (only for public subnets without NAT; default DISABLED).
    #[arg(long)]
    pub ecs_assign_public_ip: bool,
    /// ECS: seconds a task may take to reach RUNNING (capacity retries included) before it is
    /// stopped and its run Crashed.
    #[arg(long, default_value_t = 600)]
    pub ecs_start_deadline_s: u64,
    /// ECS: milliseconds between two DescribeTasks rounds of the agent's reconciler.
    #[arg(long, default_value_t = 5000)]
    pub ecs_poll_ms: u64,
    /// Where runs write results and cache entries unless their deployment sets
    /// `result_storage`: file:///path, a path, or s3://bucket/prefix (the runs' own AWS
    /// credentials are used). Default: each run's `$WEIR_HOME/results`.
    #[arg(long, env = "WEIR_RESULT_STORAGE", value_name = "URL")]
    pub result_storage: Option<String>,
}

/// Every `weir` subcommand; each variant's doc comment is its `--help` text.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (API, scheduler, crash detector).
    Server(ServerArgs),
    /// Run an agent that launches runs from work queues as local processes.
    Agent(AgentArgs),
    /// Server and agent in one process, with the example flows deployed: the local default.
    Up {
        /// How the server listens and where it keeps its data (`weir server`'s flags).
        #[command(flatten)]
        server: ServerArgs,
        /// Which queues the agent takes runs from and how it launches them (`weir agent`'s
        /// flags).
        #[command(flatten)]
        agent: AgentArgs,
        /// Do not deploy the example flows.
        #[arg(long)]
        no_examples: bool,
    },
    /// Register the deployments of a weir.toml (idempotent: unchanged ones stay as they are).
    Deploy {
        /// The deployment file.
        #[arg(short = 'f', long = "file", default_value = "weir.toml")]
        file: PathBuf,
        /// Project (overrides the file's).
        #[arg(long)]
        project: Option<String>,
        /// Show what would change, and change nothing.
        #[arg(long)]
        plan: bool,
        /// Also archive the project's deployments the file no longer has (what CI runs, so
        /// the server converges on the file). Their runs stay readable.
        #[arg(long)]
        prune: bool,
        /// A value for `${NAME}` in the file: NAME=VALUE, or NAME to take it from the
        /// environment (e.g. --var IMAGE=registry/flows:$COMMIT).
        #[arg(long = "var", value_name = "NAME[=VALUE]")]
        vars: Vec<String>,
    },
    /// Start a run of a deployment: `weir run dev/etl --param rows=10 --watch`.
    Run {
        /// The deployment, as PROJECT/DEPLOYMENT (e.g. dev/etl).
        target: String,
        /// A parameter as key=value (value parsed as JSON when it is JSON).
        #[arg(long = "param", short = 'p', value_name = "KEY=VALUE")]
        params: Vec<String>,
        /// All parameters as one JSON object.
        #[arg(long)]
        params_json: Option<String>,
        /// Follow the run's states and logs until it ends; exit 0 only if it Completed.
        #[arg(long, short = 'w')]
        watch: bool,
        /// Dedupes the request: the same key returns the same run.
        #[arg(long)]
        idempotency_key: Option<String>,
    },
    /// List, show, explain, cancel and retry flow runs; fetch their results.
    #[command(subcommand)]
    Runs(RunsCommand),
    /// Print a run's logs.
    Logs {
        /// The flow run's id (a UUID, as `weir runs ls` shows it).
        id: String,
        /// Keep following until the run ends.
        #[arg(long, short = 'f')]
        follow: bool,
    },
    /// List, show and remove deployments.
    #[command(subcommand)]
    Deployments(DeploymentsCommand),
    /// Projects and their retention.
    #[command(subcommand)]
    Projects(ProjectsCommand),
    /// Preview when a schedule fires; pause or resume a deployment's schedules.
    #[command(subcommand)]
    Schedule(ScheduleCommand),
    /// Create the runs of every tick of PROJECT/DEPLOYMENT's schedules in a window
    /// (idempotent: a tick that has its run, from the scheduler or an earlier backfill, gets no
    /// other). Each run's flow sees its tick as WEIR_TICK_AT.
    Backfill {
        /// The deployment, as PROJECT/DEPLOYMENT (e.g. dev/etl).
        target: String,
        /// The window's first instant (ticks at or after it): RFC 3339
        /// (2026-11-01T00:00:00Z), or a date-time or date in UTC (2026-11-01 06:00, 2026-11-01).
        #[arg(long, value_name = "TIME")]
        from: String,
        /// The window's last instant (ticks at or before it), in the same forms; not in the
        /// future (`now` is fine).
        #[arg(long, value_name = "TIME")]
        to: String,
        /// Refuse a window holding more ticks than this (at most 10000).
        #[arg(long, default_value_t = weir_core::api::DEFAULT_BACKFILL_MAX, value_name = "N")]
        max: u32,
        /// List what would be created, and create nothing.
        #[arg(long)]
        plan: bool,
    },
    /// List the agents seen in the last 24 hours.
    #[command(subcommand)]
    Agents(AgentsCommand),
    /// List work queues with their ready and running runs.
    #[command(subcommand)]
    Queues(QueuesCommand),
    /// Concurrency limits of tags, across deployments and projects.
    #[command(subcommand)]
    Limits(LimitsCommand),
    /// API keys of service accounts (admin).
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Notification rules (on run failures, crashes, late runs, deployments) and their
    /// delivery log.
    #[command(subcommand)]
    Notifications(NotificationsCommand),
    /// The audit log: who deployed, ran, cancelled, retried, created or revoked keys (admin).
    Audit {
        /// Most entries to print, newest first (1 to 1000).
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Run a command that uses no SDK as the flow run an agent launched it for (the
    /// deployment's command in an image: `weir exec -- python job.py`). Sends the command's
    /// output as logs, heartbeats, forwards SIGTERM, and reports the final state from its exit
    /// code, with the run token of the launch environment.
    Exec {
        /// Seconds between SIGTERM and SIGKILL when the command is stopped.
        #[arg(long, default_value_t = 10)]
        grace_s: u64,
        /// The command and its arguments, after `--`.
        #[arg(last = true, required = true, value_name = "CMD")]
        command: Vec<String>,
    },
    /// Run a local plain command as the agent's supervisor of it: record how it ended in
    /// EXIT_FILE for whichever agent settles the run (the agent launches plain commands so).
    #[command(hide = true)]
    Supervise {
        /// Where to record the command's end.
        #[arg(long)]
        exit_file: PathBuf,
        /// The command and its arguments, after `--`.
        #[arg(last = true, required = true, value_name = "CMD")]
        command: Vec<String>,
    },
    /// Start a flows repository in DIR: an example flow, weir.toml, a Dockerfile, CI
    /// workflows and a pointer to the Terraform module.
    Init {
        /// The new repository's directory (must not exist, or be empty).
        dir: PathBuf,
        /// The flows' language.
        #[arg(long, value_enum, default_value = "python")]
        lang: InitLang,
        /// Rust: the Weir checkout whose SDK (crates/weir) the flows depend on (default: the
        /// checkout this weir was built from).
        #[arg(long)]
        weir_path: Option<PathBuf>,
    },
}

/// The language of `weir init`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum InitLang {
    /// Python flows with Weir's Python SDK.
    Python,
    /// A Rust flows binary with Weir's SDK.
    Rust,
}

/// `weir keys …`.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a key; it is printed once and never again.
    Create {
        /// Service account name, e.g. `ci`.
        #[arg(long)]
        name: String,
        /// admin, developer, agent or viewer.
        #[arg(long)]
        role: String,
        /// Restrict the key to one project.
        #[arg(long)]
        project: Option<String>,
        /// Lifetime, e.g. `90d`, `12h` (default: no expiry).
        #[arg(long)]
        expires: Option<String>,
    },
    /// List keys (never their secrets).
    Ls,
    /// Revoke a key at once.
    Revoke {
        /// Key id (as `weir keys ls` shows).
        id: String,
    },
    /// Write a fresh admin key straight into the database, when every admin key is lost
    /// (needs access to the database, not to a server); prints it once.
    Recover {
        /// The server's database: sqlite://PATH or postgres://USER@HOST/DB.
        #[arg(long)]
        db: String,
    },
}

/// `weir runs …`.
#[derive(Debug, Subcommand)]
pub enum RunsCommand {
    /// List runs, newest first.
    Ls {
        /// Only runs of this project.
        #[arg(long)]
        project: Option<String>,
        /// Only this deployment (PROJECT/NAME, or NAME with --project).
        #[arg(long)]
        deployment: Option<String>,
        /// Only these states (comma-separated).
        #[arg(long)]
        state: Option<String>,
        /// Most runs to list.
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
    /// Show one run: states, task runs, result.
    Show {
        /// The flow run's id (a UUID, as `weir runs ls` shows it).
        id: String,
    },
    /// Fetch a run's result from the team's result storage, with your own credentials (the
    /// server keeps only its location): to stdout, or to a file with -o.
    Result {
        /// The flow run's id (a UUID, as `weir runs ls` shows it).
        id: String,
        /// Write it to this file instead of stdout.
        #[arg(short = 'o', long = "output", value_name = "FILE")]
        output: Option<std::path::PathBuf>,
    },
    /// Explain why a run is not running: not due yet, awaiting a retry, no live agent on its
    /// queue or for its infrastructure, agents at capacity, a full concurrency limit (and the
    /// runs holding it), a paused schedule.
    Why {
        /// The flow run's id (a UUID, as `weir runs ls` shows it).
        id: String,
    },
    /// Cancel a run.
    Cancel {
        /// The flow run's id (a UUID, as `weir runs ls` shows it).
        id: String,
    },
    /// Retry a finished run.
    Retry {
        /// The flow run's id (a UUID, as `weir runs ls` shows it).
        id: String,
        /// Reuse persisted results of tasks that completed.
        #[arg(long)]
        from_failed: bool,
    },
}

/// `weir deployments …`.
#[derive(Debug, Subcommand)]
pub enum DeploymentsCommand {
    /// List deployments.
    Ls {
        /// Only deployments of this project.
        #[arg(long)]
        project: Option<String>,
    },
    /// Archive PROJECT/DEPLOYMENT: its schedules stop and it takes no new runs; its runs
    /// stay readable. `weir deploy` of a file that has it restores it.
    Rm {
        /// The deployment, as PROJECT/DEPLOYMENT (e.g. dev/etl).
        target: String,
    },
    /// Show one deployment whole: command, infrastructure, schedules, parameters, env,
    /// secret references, retries.
    Show {
        /// The deployment, as PROJECT/DEPLOYMENT (e.g. dev/etl).
        target: String,
    },
}

/// `weir projects …`.
#[derive(Debug, Subcommand)]
pub enum ProjectsCommand {
    /// List projects with their retention.
    Ls,
    /// Show one project: its retention and what retention has deleted.
    Show {
        /// The project, by name (e.g. dev).
        project: String,
    },
    /// Set how long PROJECT keeps finished runs.
    Retention {
        /// The project, by name (e.g. dev).
        project: String,
        /// Keep finished runs N days (0: forever).
        #[arg(
            long,
            value_name = "N",
            conflicts_with = "server_default",
            required_unless_present = "server_default"
        )]
        days: Option<u32>,
        /// Use the server's default (`weir server --retain-days`).
        #[arg(long)]
        server_default: bool,
    },
}

/// `weir schedule …`.
#[derive(Debug, Subcommand)]
pub enum ScheduleCommand {
    /// Print a schedule's next fire times in UTC and in its time zone, marking times moved
    /// out of a DST gap and times in a DST repeat (no server needed).
    Preview(PreviewArgs),
    /// Pause PROJECT/DEPLOYMENT's schedules.
    Pause {
        /// The deployment, as PROJECT/DEPLOYMENT (e.g. dev/etl).
        target: String,
    },
    /// Resume PROJECT/DEPLOYMENT's schedules.
    Resume {
        /// The deployment, as PROJECT/DEPLOYMENT (e.g. dev/etl).
        target: String,
    },
}

/// `weir schedule preview`'s flags.
#[derive(Debug, Args)]
pub struct PreviewArgs {
    /// A cron expression: 5 fields (minute hour day-of-month month day-of-week) or 6 with
    /// seconds first; `L`, `#`, `W`, ranges, lists and steps allowed.
    #[arg(
        long,
        value_name = "EXPR",
        conflicts_with = "interval",
        required_unless_present = "interval"
    )]
    pub cron: Option<String>,
    /// A fixed interval instead, e.g. 15m, 1h, 1d.
    #[arg(long, value_name = "DURATION")]
    pub interval: Option<String>,
    /// With --interval: a time it fires at (default 1970-01-01T00:00:00Z).
    #[arg(long, requires = "interval", value_name = "TIME")]
    pub anchor: Option<String>,
    /// IANA time zone the cron fields are read in (and times shown in).
    #[arg(long, default_value = "UTC", value_name = "TZ")]
    pub timezone: String,
    /// Start after this time: RFC 3339, or a date-time or date in --timezone
    /// (2026-03-29 01:00, 2026-03-29). Default: now.
    #[arg(long, value_name = "TIME")]
    pub from: Option<String>,
    /// How many fire times (1 to 1000).
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub count: u32,
}

/// `weir agents …`.
#[derive(Debug, Subcommand)]
pub enum AgentsCommand {
    /// List agents seen in the last 24 hours.
    Ls,
}

/// `weir limits …`.
#[derive(Debug, Subcommand)]
pub enum LimitsCommand {
    /// At most SLOTS runs carrying TAG run at once (a new limit, or a changed one).
    Set {
        /// The tag, as deployments' `tags` name it.
        tag: String,
        /// How many runs may hold a slot at once.
        slots: u32,
    },
    /// List tag limits with the runs holding their slots.
    Ls,
    /// Remove TAG's limit.
    Rm {
        /// The tag whose limit is removed.
        tag: String,
    },
}

/// `weir queues …`.
#[derive(Debug, Subcommand)]
pub enum QueuesCommand {
    /// List work queues.
    Ls,
}

/// `weir notifications …`.
#[derive(Debug, Subcommand)]
pub enum NotificationsCommand {
    /// List notification rules with their events and destinations.
    Ls {
        /// Only rules of this project.
        #[arg(long)]
        project: Option<String>,
    },
    /// Create or replace rule PROJECT/NAME with one destination: --webhook, --slack or --sns.
    Add {
        /// The rule, as PROJECT/NAME.
        target: String,
        /// Events, comma-separated: failed, crashed, late, cancelled, completed, recovered,
        /// deployment_created, deployment_changed, deployment_archived.
        #[arg(long, value_delimiter = ',', required = true)]
        on: Vec<String>,
        /// Only runs and deployments of this deployment (repeatable; default: all).
        #[arg(long = "deployment")]
        deployments: Vec<String>,
        /// POST signed JSON to this URL, or to the URL a secret reference names.
        #[arg(long, group = "destination", required = true)]
        webhook: Option<String>,
        /// With --webhook: secret reference to the HMAC-SHA256 signing key.
        #[arg(long, requires = "webhook")]
        signing_key: Option<String>,
        /// Secret reference to a Slack incoming-webhook URL (e.g. ssm:/chat/slack_url).
        #[arg(long, group = "destination")]
        slack: Option<String>,
        /// Publish to this SNS topic ARN (a server built with AWS support).
        #[arg(long, group = "destination")]
        sns: Option<String>,
        /// At most COUNT deliveries per window, e.g. 10/1h (default 60/1h).
        #[arg(long)]
        rate_limit: Option<String>,
    },
    /// Delete rule PROJECT/NAME (its delivery log stays).
    Rm {
        /// The rule, as PROJECT/NAME.
        target: String,
    },
    /// Send a test notification through rule PROJECT/NAME and wait for its outcome.
    Test {
        /// The rule, as PROJECT/NAME.
        target: String,
    },
    /// The delivery log, newest first.
    Log {
        /// Only deliveries of this project's rules.
        #[arg(long)]
        project: Option<String>,
        /// Only deliveries of this rule, by name (needs --project).
        #[arg(long)]
        rule: Option<String>,
        /// Most deliveries to list.
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
}
