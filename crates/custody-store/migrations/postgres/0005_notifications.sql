-- PostgreSQL twin of the SQLite migration. Notifications: actions (what to tell whom, on which environments and
-- triggers), and the transactional outbox: an event to deliver is written
-- in the same transaction as what caused it, then a worker delivers it.

CREATE TABLE actions (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id BIGINT NOT NULL REFERENCES orgs(id),
    name TEXT NOT NULL,
    -- The action as the API shows it (without its secret), JSON.
    doc TEXT NOT NULL,
    -- ",trigger,trigger," so one LIKE finds the actions on a trigger.
    triggers TEXT NOT NULL,
    -- The HMAC key webhook bodies are signed with; never shown again.
    secret TEXT,
    -- For reporter-silent: how many reporting intervals may pass.
    silent_intervals BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (org_id, name)
);

CREATE TABLE action_environments (
    action_id BIGINT NOT NULL REFERENCES actions(id),
    env_id BIGINT NOT NULL REFERENCES environments(id),
    PRIMARY KEY (action_id, env_id)
);
CREATE INDEX action_environments_by_env ON action_environments (env_id);

-- One row per (event, action). `event_id` is the idempotency key receivers
-- see; `state` is pending until delivered, or failed when retries ran out.
-- A worker claims a due row by moving its next_attempt_at forward (a
-- lease), so two workers never send the same row at once.
CREATE TABLE outbox (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id BIGINT NOT NULL REFERENCES orgs(id),
    action_id BIGINT NOT NULL REFERENCES actions(id),
    event_id TEXT NOT NULL UNIQUE,
    trig TEXT NOT NULL,
    env_id BIGINT NOT NULL REFERENCES environments(id),
    environment TEXT NOT NULL,
    event TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    state TEXT NOT NULL,
    last_status BIGINT,
    last_error TEXT,
    delivered_at BIGINT
);
CREATE INDEX outbox_due ON outbox (state, next_attempt_at);
CREATE INDEX outbox_by_org ON outbox (org_id, id);
CREATE INDEX outbox_by_action ON outbox (action_id, env_id, trig, created_at);

CREATE TABLE delivery_attempts (
    outbox_id BIGINT NOT NULL REFERENCES outbox(id),
    attempt BIGINT NOT NULL,
    at BIGINT NOT NULL,
    duration_ms BIGINT NOT NULL,
    status_code BIGINT,
    error TEXT,
    PRIMARY KEY (outbox_id, attempt)
);
