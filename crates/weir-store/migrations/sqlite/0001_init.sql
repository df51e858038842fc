-- Weir schema, SQLite dialect. Times are microseconds since the Unix epoch (UTC); ids are
-- UUID strings (v7, so their text order is creation order); JSON is stored as TEXT.
CREATE TABLE projects (
    name        TEXT PRIMARY KEY,
    created_at  BIGINT NOT NULL
);

CREATE TABLE deployments (
    id          TEXT PRIMARY KEY,
    project     TEXT NOT NULL REFERENCES projects(name),
    name        TEXT NOT NULL,
    version     BIGINT NOT NULL,
    spec        TEXT NOT NULL,
    flow        TEXT NOT NULL,
    work_queue  TEXT NOT NULL,
    paused      BIGINT NOT NULL DEFAULT 0,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    UNIQUE (project, name)
);

CREATE TABLE deployment_versions (
    deployment_id TEXT NOT NULL REFERENCES deployments(id),
    version       BIGINT NOT NULL,
    spec          TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    PRIMARY KEY (deployment_id, version)
);

CREATE TABLE flow_runs (
    id                 TEXT PRIMARY KEY,
    project            TEXT NOT NULL REFERENCES projects(name),
    deployment_id      TEXT,
    deployment         TEXT,
    flow               TEXT NOT NULL,
    name               TEXT NOT NULL,
    state              TEXT NOT NULL,
    state_message      TEXT,
    state_at           BIGINT NOT NULL,
    attempt            BIGINT NOT NULL DEFAULT 0,
    retries_used       BIGINT NOT NULL DEFAULT 0,
    retries            BIGINT NOT NULL DEFAULT 0,
    retry_delay_s      BIGINT NOT NULL DEFAULT 0,
    parameters         TEXT NOT NULL,
    work_queue         TEXT NOT NULL,
    scheduled_at       BIGINT NOT NULL,
    created_at         BIGINT NOT NULL,
    started_at         BIGINT,
    ended_at           BIGINT,
    agent_id           TEXT,
    lease_expires_at   BIGINT,
    parent_flow_run_id TEXT,
    result             TEXT,
    tags               TEXT NOT NULL DEFAULT '[]',
    idempotency_key    TEXT,
    auto_scheduled     BIGINT NOT NULL DEFAULT 0,
    resume             BIGINT NOT NULL DEFAULT 0,
    UNIQUE (project, idempotency_key)
);
CREATE INDEX flow_runs_due ON flow_runs (work_queue, state, scheduled_at);
CREATE INDEX flow_runs_lease ON flow_runs (state, lease_expires_at);
CREATE INDEX flow_runs_project ON flow_runs (project, id);
CREATE INDEX flow_runs_deployment ON flow_runs (deployment_id, id);
CREATE INDEX flow_runs_state ON flow_runs (state, id);
CREATE INDEX flow_runs_state_due ON flow_runs (state, scheduled_at);
CREATE INDEX flow_runs_created ON flow_runs (created_at);

CREATE TABLE flow_run_states (
    id          TEXT PRIMARY KEY,
    flow_run_id TEXT NOT NULL,
    state       TEXT NOT NULL,
    message     TEXT,
    attempt     BIGINT NOT NULL,
    at          BIGINT NOT NULL
);
CREATE INDEX flow_run_states_run ON flow_run_states (flow_run_id, at);

CREATE TABLE task_runs (
    id                 TEXT PRIMARY KEY,
    flow_run_id        TEXT NOT NULL,
    task               TEXT NOT NULL,
    state              TEXT NOT NULL,
    message            TEXT,
    state_at           BIGINT NOT NULL,
    attempt            BIGINT NOT NULL,
    created_at         BIGINT NOT NULL,
    started_at         BIGINT,
    ended_at           BIGINT,
    inputs_fingerprint TEXT,
    cache_key          TEXT,
    result_location    TEXT,
    map_index          BIGINT
);
CREATE INDEX task_runs_run ON task_runs (flow_run_id, id);

CREATE TABLE task_run_states (
    task_run_id TEXT NOT NULL,
    state       TEXT NOT NULL,
    message     TEXT,
    attempt     BIGINT NOT NULL,
    at          BIGINT NOT NULL
);
CREATE INDEX task_run_states_run ON task_run_states (task_run_id, at);

CREATE TABLE logs (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    flow_run_id TEXT NOT NULL,
    task_run_id TEXT,
    at          BIGINT NOT NULL,
    level       TEXT NOT NULL,
    message     TEXT NOT NULL
);
CREATE INDEX logs_run ON logs (flow_run_id, seq);

CREATE TABLE agents (
    id                TEXT PRIMARY KEY,
    name              TEXT NOT NULL,
    queues            TEXT NOT NULL,
    run_limit         BIGINT NOT NULL,
    created_at        BIGINT NOT NULL,
    last_heartbeat_at BIGINT NOT NULL
);
