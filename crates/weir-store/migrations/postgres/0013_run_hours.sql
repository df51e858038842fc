-- The dashboard's runs-over-time chart reads hourly counts instead of counting runs: runs by
-- the hour they were created in (microseconds / 3,600,000,000), project and state now. The
-- triggers keep it exact in the transaction of every insert, state change and delete of a
-- run, whichever statement makes it (creation, claims, group commit, catch-up, retention,
-- imports). The 7-day chart of a 1,000,000-run database then reads ~2,000 rows instead of
-- counting ~70,000 runs through an index.
--
-- Writers only ever *append* a change (`fresh` rows of +n or -n), never update a shared
-- count: replicas changing runs of the same hour at once would otherwise queue on the same
-- rows until commit, and deadlock when they took them in different orders. A reader sums
-- every row of a key; `Store::fold_run_hours` (every tick of a server) folds a key's rows
-- into one, under an advisory lock so one replica folds at a time.
CREATE TABLE flow_run_hours (
    hour    BIGINT NOT NULL,
    project TEXT NOT NULL,
    state   TEXT NOT NULL,
    n       BIGINT NOT NULL,
    fresh   BOOLEAN NOT NULL DEFAULT TRUE
);
CREATE INDEX flow_run_hours_hour ON flow_run_hours (hour, project, state, n);
CREATE INDEX flow_run_hours_fresh ON flow_run_hours (hour, project, state) WHERE fresh;
INSERT INTO flow_run_hours (hour, project, state, n, fresh)
    SELECT created_at / 3600000000, project, state, COUNT(*), FALSE FROM flow_runs
    GROUP BY created_at / 3600000000, project, state;

CREATE FUNCTION flow_run_hours_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO flow_run_hours (hour, project, state, n)
        SELECT created_at / 3600000000, project, state, COUNT(*) FROM weir_new_runs
        GROUP BY created_at / 3600000000, project, state;
    RETURN NULL;
END
$$;
CREATE TRIGGER flow_run_hours_insert AFTER INSERT ON flow_runs
    REFERENCING NEW TABLE AS weir_new_runs
    FOR EACH STATEMENT EXECUTE FUNCTION flow_run_hours_inserted();

CREATE FUNCTION flow_run_hours_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO flow_run_hours (hour, project, state, n)
        SELECT created_at / 3600000000, project, state, -COUNT(*) FROM weir_old_runs
        GROUP BY created_at / 3600000000, project, state;
    RETURN NULL;
END
$$;
CREATE TRIGGER flow_run_hours_delete AFTER DELETE ON flow_runs
    REFERENCING OLD TABLE AS weir_old_runs
    FOR EACH STATEMENT EXECUTE FUNCTION flow_run_hours_deleted();

-- Per row, and only when a counted column changed: a heartbeat (which sets only the lease)
-- never calls it.
CREATE FUNCTION flow_run_hours_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO flow_run_hours (hour, project, state, n) VALUES
        (OLD.created_at / 3600000000, OLD.project, OLD.state, -1),
        (NEW.created_at / 3600000000, NEW.project, NEW.state, 1);
    RETURN NULL;
END
$$;
CREATE TRIGGER flow_run_hours_update AFTER UPDATE OF state, project, created_at ON flow_runs
    FOR EACH ROW
    WHEN (OLD.state IS DISTINCT FROM NEW.state OR OLD.project IS DISTINCT FROM NEW.project
          OR OLD.created_at IS DISTINCT FROM NEW.created_at)
    EXECUTE FUNCTION flow_run_hours_updated();

-- The chart's exact window edges (its first and last partial hour) count runs through
-- (created_at, state) or (project, created_at, state); nothing else reads the hour index.
DROP INDEX flow_runs_created_hour;
