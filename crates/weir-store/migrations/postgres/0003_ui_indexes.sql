-- Lets the UI find a deployment's next scheduled run without scanning its history.
CREATE INDEX flow_runs_deployment_due ON flow_runs (deployment_id, state, scheduled_at);
