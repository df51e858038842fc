-- A task run's history gets a commit order: `seq`, the order its reports were stored in.
-- It is read in (at, seq) order: by time first, as the task run's own state is chosen (the
-- report with the latest `at` stands, a tie going to the one stored later), then by `seq`,
-- because times tie: they are the reporting process's clock (Running and Completed of a fast
-- task in one microsecond), and the table had nothing else to order them by. `seq` is the
-- rowid (INTEGER PRIMARY KEY, so VACUUM keeps it): with no AUTOINCREMENT a new row gets
-- max(seq) + 1, after every row stored; a batch's rows are inserted in the batch's order, after
-- the upsert of their task runs in the same transaction, so a task run's rows are in `seq`
-- order as committed. A value freed by deleting the newest rows (retention) may be given again,
-- still after every row that remains. Rows stored before are numbered in (at, rowid) order,
-- the order they were read in until now (the index on (task_run_id, at) ended in the rowid).
-- SQLite cannot add a primary key to a table: it is rebuilt.
CREATE TABLE task_run_states_ordered (
    seq         INTEGER PRIMARY KEY,
    task_run_id TEXT NOT NULL,
    state       TEXT NOT NULL,
    message     TEXT,
    attempt     BIGINT NOT NULL,
    at          BIGINT NOT NULL
);
INSERT INTO task_run_states_ordered (seq, task_run_id, state, message, attempt, at)
    SELECT ROW_NUMBER() OVER (ORDER BY at, rowid), task_run_id, state, message, attempt, at
    FROM task_run_states;
DROP TABLE task_run_states;
ALTER TABLE task_run_states_ordered RENAME TO task_run_states;
CREATE INDEX task_run_states_run ON task_run_states (task_run_id, at, seq);
