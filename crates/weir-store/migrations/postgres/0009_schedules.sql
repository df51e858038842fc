-- Schedules (weir-core::schedule). A deployment's catch-up policy for ticks missed while no
-- server ran is copied from its spec, like `on_limit`. Each run keeps the schedule tick it is
-- for (`tick_at`: scheduler, catch-up and backfill runs), which stays put when a retry or a
-- catch-up moves `scheduled_at`; runs put ahead before this migration get theirs from
-- `scheduled_at`, which no claim has moved yet.
ALTER TABLE deployments ADD COLUMN catchup TEXT NOT NULL DEFAULT 'latest';
ALTER TABLE flow_runs ADD COLUMN tick_at BIGINT;
UPDATE flow_runs SET tick_at = scheduled_at WHERE auto_scheduled = 1 AND attempt = 0;
