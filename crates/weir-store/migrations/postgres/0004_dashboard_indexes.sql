-- The dashboard (and /metrics) count runs by state over the last 24 hours, across all
-- projects or within a project-scoped key's one. Covering indexes answer both from the
-- index alone; (created_at, state) supersedes the index on created_at alone.
DROP INDEX flow_runs_created;
CREATE INDEX flow_runs_created_state ON flow_runs (created_at, state);
CREATE INDEX flow_runs_project_created ON flow_runs (project, created_at, state);
