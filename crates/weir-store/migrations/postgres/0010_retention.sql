-- Retention (weir-core::retention): a project's own window in days (NULL: the server's
-- default; 0: forever) and what the pruner has deleted so far. The index lets the pruner find
-- a project's finished runs past the window without scanning the table.
ALTER TABLE projects ADD COLUMN retain_days BIGINT;
ALTER TABLE projects ADD COLUMN pruned_runs BIGINT NOT NULL DEFAULT 0;
ALTER TABLE projects ADD COLUMN pruned_at BIGINT;
CREATE INDEX flow_runs_project_state_at ON flow_runs (project, state, state_at);
