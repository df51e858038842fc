-- Infrastructure per deployment, launchers per agent. The claim hands a run only to an agent
-- whose launchers include the run's deployment's infrastructure kind (ad-hoc runs: process).
-- `launchers` is the kinds between commas, ",process,docker,", so that one LIKE tests
-- membership in both dialects. The old `image` key of stored specs is gone (it now lives in
-- the infrastructure); specs never used it.
ALTER TABLE deployments ADD COLUMN infrastructure TEXT NOT NULL DEFAULT 'process';
ALTER TABLE agents ADD COLUMN launchers TEXT NOT NULL DEFAULT ',process,';
UPDATE deployments SET spec = (spec::jsonb - 'image')::text WHERE spec::jsonb ? 'image';
UPDATE deployment_versions SET spec = (spec::jsonb - 'image')::text WHERE spec::jsonb ? 'image';
