-- Where a log line came from: its attempt, the sender's stream (a random number each sender
-- picks once) and the line's number in that stream, assigned by the sender. The unique index
-- makes ingest idempotent: a batch sent again because its answer was lost (the server died
-- after committing it) is stored once. Lines without them (older senders) are never merged:
-- NULLs are distinct.
ALTER TABLE logs ADD COLUMN attempt BIGINT;
ALTER TABLE logs ADD COLUMN stream BIGINT;
ALTER TABLE logs ADD COLUMN stream_seq BIGINT;
CREATE UNIQUE INDEX logs_origin ON logs (flow_run_id, attempt, stream, stream_seq);
