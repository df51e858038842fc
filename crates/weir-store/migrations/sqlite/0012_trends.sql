-- The dashboard's runs-over-time chart counts runs by the hour they were created in and their
-- state. An index on that hour (microseconds / 3,600,000,000) lets the count stream through
-- the index in group order, with no sort: ~70,000 runs of the last 7 days of a 1,000,000-run
-- database in ~15 ms on SQLite instead of ~45 ms for a GROUP BY over (created_at, state).
-- created_at rides along so the exact window's edges are read from the index too.
CREATE INDEX flow_runs_created_hour ON flow_runs (created_at / 3600000000, state, created_at);
-- A deployment page shows its success rate over the runs that ended in the last 7 days and
-- the durations of its last runs to end: both read this index alone, newest end first,
-- instead of walking the deployment's whole history.
CREATE INDEX flow_runs_deployment_ended ON flow_runs (deployment_id, ended_at, state);
