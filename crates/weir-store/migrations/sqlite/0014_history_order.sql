-- A run's history has an order of its own: `seq`, the order its changes were committed in.
-- Times cannot order it: a change is stamped no earlier than the state it leaves
-- (`weir_core::orchestration::stamp`), so several changes of one run can share `at`, and
-- `id` is a transition id a client makes (random). `seq` is the rowid (INTEGER PRIMARY KEY,
-- so VACUUM keeps it): with no AUTOINCREMENT a new row gets max(seq) + 1, after every row
-- stored, and a run's changes are serialised by the compare-and-set on its row, each
-- inserting its history row after it in the same transaction, so a run's rows are in
-- `seq` order as committed. A value freed by deleting the newest rows (retention, catch-up)
-- may be given again, still after every row that remains. Rows stored before are numbered
-- in (at, id) order, the order they were read in until now. SQLite cannot add a primary key
-- to a table: it is rebuilt.
CREATE TABLE flow_run_states_ordered (
    seq         INTEGER PRIMARY KEY,
    id          TEXT NOT NULL UNIQUE,
    flow_run_id TEXT NOT NULL,
    state       TEXT NOT NULL,
    message     TEXT,
    attempt     BIGINT NOT NULL,
    at          BIGINT NOT NULL
);
INSERT INTO flow_run_states_ordered (seq, id, flow_run_id, state, message, attempt, at)
    SELECT ROW_NUMBER() OVER (ORDER BY at, id), id, flow_run_id, state, message, attempt, at
    FROM flow_run_states;
DROP TABLE flow_run_states;
ALTER TABLE flow_run_states_ordered RENAME TO flow_run_states;
CREATE INDEX flow_run_states_run ON flow_run_states (flow_run_id, seq);
