-- A deployment removed from its project's weir.toml (`weir deploy --prune`, `weir deployments
-- rm`) is archived, not deleted: its runs and versions stay readable, it never schedules and
-- gets no new runs. NULL = active; otherwise when it was archived (microseconds, UTC).
ALTER TABLE deployments ADD COLUMN archived_at BIGINT;
