-- Concurrency limits. A deployment's own limit and what its runs do when a limit is full are
-- copied from its spec into columns the claim statement reads; tag limits have their own
-- table. No slot is stored: a slot is held by a run whose attempt holds a live lease, counted
-- when a claim needs it, so a run that died frees its slot when its lease expires.
ALTER TABLE deployments ADD COLUMN concurrency BIGINT;
ALTER TABLE deployments ADD COLUMN on_limit TEXT NOT NULL DEFAULT 'wait';
CREATE TABLE concurrency_limits (
    tag        TEXT PRIMARY KEY,
    slots      BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
-- Counting a deployment's slot holders reads its runs by state.
CREATE INDEX flow_runs_deployment_state ON flow_runs (deployment_id, state);
