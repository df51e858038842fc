-- Notification rules and the outbox of their deliveries. An outbox row is written in the
-- same transaction as the state change or deployment write it is about, so no event is lost
-- by a crash; the delivery loop claims rows with a lease (claimed_by, claim_expires_at) and
-- the row doubles as the delivery log. Destinations hold secret references only.
CREATE TABLE notification_rules (
    id          TEXT PRIMARY KEY,
    project     TEXT NOT NULL REFERENCES projects(name),
    name        TEXT NOT NULL,
    spec        TEXT NOT NULL,
    source      TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    UNIQUE (project, name)
);

CREATE TABLE notification_outbox (
    id                TEXT PRIMARY KEY,
    rule_id           TEXT NOT NULL,
    rule              TEXT NOT NULL,
    project           TEXT NOT NULL,
    event             TEXT NOT NULL,
    title             TEXT NOT NULL,
    message           TEXT NOT NULL,
    destination       TEXT NOT NULL,
    rate_count        BIGINT NOT NULL,
    rate_per_s        BIGINT NOT NULL,
    status            TEXT NOT NULL,
    attempts          BIGINT NOT NULL DEFAULT 0,
    next_at           BIGINT NOT NULL,
    claimed_by        TEXT,
    claim_expires_at  BIGINT,
    last_error        TEXT,
    created_at        BIGINT NOT NULL,
    delivered_at      BIGINT
);
CREATE INDEX notification_outbox_due ON notification_outbox (status, next_at);
CREATE INDEX notification_outbox_sent ON notification_outbox (rule_id, delivered_at);
CREATE INDEX notification_outbox_project ON notification_outbox (project, id);
