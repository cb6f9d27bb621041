-- Web UI sign-ins. Operational state, not records: a session is a
-- browser's stand-in for the API key pasted into it, so it lives exactly
-- as long as that key does (the join to api_keys on every read) or less
-- (expires_at, sign-out). Kept in the database so every server replica
-- sees the same sessions. Only the SHA-256 of the cookie's token is kept.
CREATE TABLE web_sessions (
    token_hash BLOB PRIMARY KEY,
    key_id TEXT NOT NULL REFERENCES api_keys(id),
    -- The form token of this session (CSRF), random, compared in constant time.
    csrf TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX web_sessions_by_expiry ON web_sessions (expires_at);

-- Runs that began within a window, by snapshot number: with a stab at
-- the window's start (what already ran), the timeline of any window is
-- two index ranges, however long the history.
CREATE INDEX env_intervals_by_start ON env_intervals (env_id, first_idx);

-- Search by name: what pipelines called an artifact, and what reporters
-- saw running (an image reference, a function, a path).
CREATE INDEX artifacts_by_name ON artifacts (org_id, template_name);
CREATE INDEX runtime_artifacts_by_name ON runtime_artifacts (org_id, name);

-- A flow's trails, newest first, a page at a time.
CREATE INDEX trails_by_created ON trails (flow_id, created_at, id);

-- Each snapshot's changes counted with all before it in its environment:
-- a page of the change log is found by that count in an index, however
-- long the history, instead of by summing it.
ALTER TABLE env_snapshots ADD COLUMN changes_upto BIGINT NOT NULL DEFAULT 0;
UPDATE env_snapshots SET changes_upto = w.upto FROM (
    SELECT env_id, idx, SUM(changes) OVER (PARTITION BY env_id ORDER BY idx) AS upto FROM env_snapshots
) w WHERE w.env_id = env_snapshots.env_id AND w.idx = env_snapshots.idx;
CREATE INDEX env_snapshots_by_count ON env_snapshots (env_id, changes_upto);
