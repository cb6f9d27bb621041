-- Runtime environments and what ran in them.
--
-- History is kept as intervals: one row per stretch of snapshots during
-- which an artifact ran with a constant number of instances. A row is
-- opened when the artifact starts (or is rescaled) and closed when it
-- stops (or is rescaled again); closed rows never change again. "What ran
-- at snapshot N" is a stabbing query answered by a relational interval
-- tree (Kriegel, Pötke, Seidl: "Managing intervals efficiently in
-- object-relational databases", VLDB 2000): every row carries the fork node
-- of its [first_idx, last_idx] in a virtual binary tree over snapshot
-- numbers, and two indexes on (env_id, node, bound) find the rows that
-- contain N with about 31 index probes, however long the history.
-- Snapshots and change events are derived from the intervals.

CREATE TABLE environments (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id BIGINT NOT NULL REFERENCES orgs(id),
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    description TEXT,
    archived_at BIGINT,
    -- The number of the latest snapshot; 0 before the first report.
    latest_index BIGINT NOT NULL DEFAULT 0,
    -- SHA-256 of the latest snapshot's artifact counts: an unchanged
    -- report is told by comparing it, without reading any interval.
    counts_digest TEXT,
    last_reported_at BIGINT,
    last_changed_at BIGINT,
    -- The stretch of time being observed now: reports that come within
    -- their reporter's interval extend it; a late one files it in
    -- env_coverage and starts a new one.
    observed_from BIGINT,
    observed_to BIGINT,
    observed_interval_ms BIGINT,
    observed_reports BIGINT NOT NULL DEFAULT 0,
    -- Who sent the last report, and what it could not read (JSON).
    last_reporter TEXT,
    last_warnings TEXT,
    created_at BIGINT NOT NULL,
    UNIQUE (org_id, name)
);

-- The physical environments a logical one is the union of.
CREATE TABLE environment_members (
    logical_id BIGINT NOT NULL REFERENCES environments(id),
    physical_id BIGINT NOT NULL REFERENCES environments(id),
    PRIMARY KEY (logical_id, physical_id)
);

CREATE TABLE env_snapshots (
    env_id BIGINT NOT NULL REFERENCES environments(id),
    idx BIGINT NOT NULL,
    ts BIGINT NOT NULL,
    artifacts BIGINT NOT NULL,
    instances BIGINT NOT NULL,
    changes BIGINT NOT NULL,
    PRIMARY KEY (env_id, idx)
);
CREATE INDEX env_snapshots_by_time ON env_snapshots (env_id, ts);

-- Each distinct (fingerprint, name) seen running, so that intervals hold
-- a small id and "where has this fingerprint run" is one index range.
-- The fingerprint is kept as its 32 bytes, and the index holds no name:
-- this table grows with every deploy, so its size is the history's.
-- Writes to one organisation are serialised (the ledger head lock), so a
-- lookup before the insert keeps (org, fingerprint, name) unique.
CREATE TABLE runtime_artifacts (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id BIGINT NOT NULL REFERENCES orgs(id),
    -- Empty when the platform gave no digest.
    fingerprint BYTEA NOT NULL,
    name TEXT NOT NULL
);
CREATE INDEX runtime_artifacts_by_fingerprint ON runtime_artifacts (org_id, fingerprint);

CREATE TABLE env_intervals (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    env_id BIGINT NOT NULL REFERENCES environments(id),
    artifact_id BIGINT NOT NULL REFERENCES runtime_artifacts(id),
    instances BIGINT NOT NULL,
    first_idx BIGINT NOT NULL,
    -- 2147483647 while it still runs.
    last_idx BIGINT NOT NULL,
    node BIGINT NOT NULL,
    started_at BIGINT NOT NULL,
    ended_at BIGINT,
    -- The instances (JSON) as first reported for this interval.
    detail TEXT NOT NULL
);
CREATE INDEX env_intervals_lower ON env_intervals (env_id, node, first_idx);
CREATE INDEX env_intervals_upper ON env_intervals (env_id, node, last_idx);
CREATE INDEX env_intervals_by_artifact ON env_intervals (artifact_id);

-- Finished stretches of observation; the current one is in environments.
CREATE TABLE env_coverage (
    env_id BIGINT NOT NULL REFERENCES environments(id),
    from_ts BIGINT NOT NULL,
    to_ts BIGINT NOT NULL,
    interval_ms BIGINT NOT NULL,
    reports BIGINT NOT NULL,
    PRIMARY KEY (env_id, from_ts)
);
