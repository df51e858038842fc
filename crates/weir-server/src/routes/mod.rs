//! The HTTP surface: one module per resource, assembled into one router.

mod agents;
pub(crate) mod deployments;
mod health;
mod ingest;
pub(crate) mod keys;
pub(crate) mod limits;
pub(crate) mod notifications;
pub(crate) mod runs;
mod schedules;

use crate::state::AppState;
use aide::axum::ApiRouter;
use aide::axum::routing::{get_with, post_with, put_with};
use axum::Router;
use axum::extract::DefaultBodyLimit;

pub(crate) use crate::extract::page_size;

/// Every endpoint, registered once: the router, the OpenAPI document and each endpoint's
/// permission (the `Require<P>`/`OnRun<P>` extractor in its handler's signature) all come from
/// these lists, one per group of endpoints (in the document's order). `summary` is the
/// operation's one line in the document. `pages` (the UI) are served beside them, with the
/// same fallbacks and layers, outside the document. `limit` is the largest request body.
/// Needs no state, so the server builds it (the document's schemas take milliseconds) while
/// it opens the database.
pub(crate) fn router(limit: usize, pages: Router<AppState>) -> Router<AppState> {
    crate::openapi::begin();
    // In this order: it is the OpenAPI document's.
    let groups: [fn(Api) -> Api; 7] = [
        projects_routes,
        notifications_routes,
        runs_routes,
        limits_routes,
        run_output_routes,
        agents_routes,
        keys_routes,
    ];
    let api = groups
        .into_iter()
        .fold(ApiRouter::new(), |api, group| group(api));
    let public = ApiRouter::new()
        .api_route(
            "/api/openapi.json",
            get_with(crate::openapi::document, |o| {
                o.summary("This OpenAPI document")
            }),
        )
        .api_route(
            "/healthz",
            get_with(health::healthz, |o| o.summary("Liveness")),
        )
        .api_route(
            "/readyz",
            get_with(health::readyz, |o| {
                o.summary("Readiness (the database answers)")
            }),
        )
        .api_route(
            "/metrics",
            get_with(crate::metrics::render, |o| {
                o.summary("Prometheus metrics (text format)")
            }),
        );
    let (routes, document) =
        crate::openapi::finish(ApiRouter::new().nest("/api/v1", api).merge(public));
    routes
        .merge(pages)
        .fallback(health::not_found)
        .method_not_allowed_fallback(health::method_not_allowed)
        .layer(axum::Extension(crate::openapi::Document(document)))
        .layer(axum::middleware::from_fn(crate::metrics::track))
        .layer(DefaultBodyLimit::max(limit))
}

/// The API's routes, to which a group of endpoints adds its own.
type Api = ApiRouter<AppState>;

/// Projects, deployments and flows: the deployments' lifecycle (pause, resume, archive) and
/// backfills.
fn projects_routes(api: Api) -> Api {
    api
    .api_route(
        "/projects",
        get_with(deployments::list_projects, |o| o.summary("List projects"))
            .post_with(deployments::create_project, |o| {
                o.summary("Create a project (201; 200 when it exists)")
            }),
    )
    .api_route(
        "/projects/{project}",
        get_with(deployments::get_project, |o| o.summary("Get a project")),
    )
    .api_route(
        "/projects/{project}/retention",
        put_with(deployments::set_retention, |o| {
            o.summary(
                "Set how long a project keeps finished runs (days; 0 forever; null the server default)",
            )
        }),
    )
    .api_route(
        "/deployments",
        get_with(deployments::list_deployments, |o| {
            o.summary("List deployments, optionally of one project")
        }),
    )
    .api_route(
        "/flows",
        get_with(deployments::list_flows, |o| {
            o.summary("List flows known from deployments")
        }),
    )
    .api_route(
        "/projects/{project}/deployments/{name}",
        put_with(deployments::upsert, |o| {
            o.summary(
                "Create or update a deployment (idempotent; unchanged specs are not new versions)",
            )
        })
        .get_with(deployments::get_deployment, |o| o.summary("Get a deployment")),
    )
    .api_route(
        "/projects/{project}/deployments/{name}/pause",
        post_with(deployments::pause, |o| {
            o.summary("Pause a deployment's schedules")
        }),
    )
    .api_route(
        "/projects/{project}/deployments/{name}/resume",
        post_with(deployments::resume, |o| {
            o.summary("Resume a deployment's schedules")
        }),
    )
    .api_route(
        "/projects/{project}/deployments/{name}/backfill",
        post_with(schedules::backfill, |o| {
            o.summary(
                "Create the runs of every tick of a deployment's schedules in a window (idempotent; dry_run lists them)",
            )
            .description(
                "Every tick t of the deployment's schedules with from <= t <= to gets one run, due at once, \
                 with tick_at = t (the flow's WEIR_TICK_AT), unless it has one: runs of a tick share the \
                 scheduler's idempotency key, so a second backfill, or a tick the scheduler already ran, \
                 creates nothing. 400 when to is in the future, from is after to, or the window holds \
                 more than max ticks (default 1000); 409 when the deployment is archived or has no \
                 schedules. Nothing is created when it is refused, or with dry_run.",
            )
        }),
    )
    .api_route(
        "/projects/{project}/deployments/{name}/archive",
        post_with(deployments::archive, |o| {
            o.summary(
                "Archive a deployment (removed from its file): no schedules, no new runs, history kept; deploying it again restores it",
            )
        }),
    )
}

/// Notification rules and their deliveries.
fn notifications_routes(api: Api) -> Api {
    api.api_route(
        "/notifications",
        get_with(notifications::list, |o| {
            o.summary("List notification rules, optionally of one project")
        }),
    )
    .api_route(
        "/notifications/deliveries",
        get_with(notifications::deliveries, |o| {
            o.summary("The notification delivery log, newest first")
        }),
    )
    .api_route(
        "/projects/{project}/notifications/{name}",
        put_with(notifications::upsert, |o| {
            o.summary("Create or replace a notification rule (201; 200 when it existed)")
        })
        .get_with(notifications::get, |o| o.summary("Get a notification rule"))
        .delete_with(notifications::delete, |o| {
            o.summary("Delete a notification rule (its delivery log stays)")
        }),
    )
    .api_route(
        "/projects/{project}/notifications/{name}/test",
        post_with(notifications::test, |o| {
            o.summary("Send a test notification through a rule (via the outbox)")
        }),
    )
}

/// Flow runs: creation, reads, state proposals, cancellation, retries, heartbeats, why one
/// waits.
fn runs_routes(api: Api) -> Api {
    api.api_route(
        "/flow_runs",
        get_with(runs::list, |o| o.summary("List flow runs, newest first"))
            .post_with(runs::create, |o| {
                o.summary("Create a flow run (201; 200 when idempotency_key matched)")
            }),
    )
    .api_route(
        "/flow_runs/{id}",
        get_with(runs::detail, |o| {
            o.summary("A flow run with its state history")
        }),
    )
    .api_route(
        "/flow_runs/{id}/state",
        post_with(runs::propose, |o| {
            o.summary("Propose a state (409 with the current run when refused)")
        }),
    )
    .api_route(
        "/flow_runs/{id}/cancel",
        post_with(runs::cancel, |o| o.summary("Cancel a run")),
    )
    .api_route(
        "/flow_runs/{id}/retry",
        post_with(runs::retry, |o| {
            o.summary("Retry a terminal run (optionally from failed tasks)")
        }),
    )
    .api_route(
        "/flow_runs/{id}/heartbeat",
        post_with(runs::heartbeat, |o| {
            o.summary("Renew a run's lease from its own process")
        }),
    )
    .api_route(
        "/flow_runs/{id}/why",
        get_with(limits::why, |o| {
            o.summary("Why a run is not running: every reason, most decisive first")
        }),
    )
}

/// Concurrency limits by tag.
fn limits_routes(api: Api) -> Api {
    api.api_route(
        "/concurrency_limits",
        get_with(limits::list, |o| {
            o.summary("Tag concurrency limits, with the runs holding their slots")
        }),
    )
    .api_route(
        "/concurrency_limits/{tag}",
        put_with(limits::set, |o| {
            o.summary("Set a tag's concurrency limit (across deployments and projects)")
        })
        .delete_with(limits::remove, |o| {
            o.summary("Remove a tag's concurrency limit")
        }),
    )
}

/// What runs report: task runs, logs (read, streamed, ingested in batches).
fn run_output_routes(api: Api) -> Api {
    api.api_route(
        "/flow_runs/{id}/task_runs",
        get_with(runs::task_runs, |o| o.summary("Task runs of a flow run")),
    )
    .api_route(
        "/flow_runs/{id}/logs",
        get_with(runs::logs, |o| {
            o.summary("Log lines after a sequence number, oldest first")
        }),
    )
    .api_route(
        "/flow_runs/{id}/stream",
        get_with(runs::stream, |o| {
            o.summary("Server-sent events: state, log, end")
        }),
    )
    .api_route(
        "/task_runs/batch",
        post_with(ingest::task_runs, |o| o.summary("Ingest task-run reports")),
    )
    .api_route(
        "/task_runs/{id}",
        get_with(runs::task_run, |o| o.summary("A task run with its history")),
    )
    .api_route(
        "/logs/batch",
        post_with(ingest::logs, |o| o.summary("Ingest log lines")),
    )
}

/// Work queues and agents: registration, heartbeats, claims.
fn agents_routes(api: Api) -> Api {
    api.api_route(
        "/work_queues",
        get_with(agents::queues, |o| {
            o.summary("Work queues with ready and running counts")
        }),
    )
    .api_route(
        "/agents",
        get_with(agents::list, |o| {
            o.summary("Agents seen in the last 24 hours")
        })
        .post_with(agents::register, |o| o.summary("Register an agent")),
    )
    .api_route(
        "/agents/{id}/heartbeat",
        post_with(agents::heartbeat, |o| {
            o.summary("Agent heartbeat: renews leases, returns runs to cancel")
        }),
    )
    .api_route(
        "/agents/{id}/claim",
        post_with(agents::claim, |o| {
            o.summary("Claim due runs (long-poll with wait_ms)")
        }),
    )
}

/// API keys and the audit log.
fn keys_routes(api: Api) -> Api {
    api.api_route(
        "/keys",
        get_with(keys::list, |o| o.summary("List API keys (never secrets)"))
            .post_with(keys::create, |o| {
                o.summary("Create an API key (the secret is shown once)")
            }),
    )
    .api_route(
        "/keys/{id}/revoke",
        post_with(keys::revoke, |o| o.summary("Revoke an API key at once")),
    )
    .api_route(
        "/audit",
        get_with(keys::audit, |o| o.summary("The audit log, newest first")),
    )
}
