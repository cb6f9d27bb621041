-- PostgreSQL twin of the SQLite migration. Controls over what runs: environment policies (versioned, immutable),
-- their attachment to environments, controls and their versions, the
-- allowlist, and the record of every evaluation of an environment.

-- Flow tags, for policy conditions (`flow.tags.<key>`): a JSON object.
ALTER TABLE flows ADD COLUMN tags TEXT;

-- The control a decision attestation was made for, so that policies can
-- ask for it without decoding every attestation document.
ALTER TABLE attestations ADD COLUMN control TEXT;

CREATE TABLE policies (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id BIGINT NOT NULL REFERENCES orgs(id),
    name TEXT NOT NULL,
    -- `kosli` (policy v1 YAML) or `rego`.
    kind TEXT NOT NULL,
    latest_version BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (org_id, name)
);

-- Every version ever created; a new content is a new version, never an
-- edit.
CREATE TABLE policy_versions (
    policy_id BIGINT NOT NULL REFERENCES policies(id),
    version BIGINT NOT NULL,
    content TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    description TEXT,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (policy_id, version)
);

-- An environment is judged by the latest version of each attached policy.
CREATE TABLE environment_policies (
    env_id BIGINT NOT NULL REFERENCES environments(id),
    policy_id BIGINT NOT NULL REFERENCES policies(id),
    attached_at BIGINT NOT NULL,
    PRIMARY KEY (env_id, policy_id)
);
CREATE INDEX environment_policies_by_policy ON environment_policies (policy_id);

CREATE TABLE controls (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id BIGINT NOT NULL REFERENCES orgs(id),
    identifier TEXT NOT NULL,
    latest_version BIGINT NOT NULL,
    archived_at BIGINT,
    created_at BIGINT NOT NULL,
    UNIQUE (org_id, identifier)
);

CREATE TABLE control_versions (
    control_id BIGINT NOT NULL REFERENCES controls(id),
    version BIGINT NOT NULL,
    -- name, description, links, tags (JSON)
    doc TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (control_id, version)
);

-- Artifacts trusted in one environment without provenance (third-party
-- images). An entry is never removed; a later one for the same
-- fingerprint replaces its reason.
CREATE TABLE allowlist (
    env_id BIGINT NOT NULL REFERENCES environments(id),
    fingerprint TEXT NOT NULL,
    artifact_name TEXT,
    reason TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (env_id, fingerprint)
);

-- Every evaluation of an environment against its policies: why it ran
-- (a new snapshot, a policy attached, evidence for a running artifact),
-- what it read, and what it found, per artifact and rule (`doc`).
CREATE TABLE env_evaluations (
    env_id BIGINT NOT NULL REFERENCES environments(id),
    seq BIGINT NOT NULL,
    snapshot_idx BIGINT NOT NULL,
    ts BIGINT NOT NULL,
    -- COMPLIANT, NON-COMPLIANT or UNKNOWN (no policy).
    status TEXT NOT NULL,
    cause TEXT NOT NULL,
    doc TEXT NOT NULL,
    PRIMARY KEY (env_id, seq)
);
CREATE INDEX env_evaluations_by_snapshot ON env_evaluations (env_id, snapshot_idx, seq);

ALTER TABLE environments ADD COLUMN compliance TEXT;
ALTER TABLE environments ADD COLUMN evaluation_seq BIGINT NOT NULL DEFAULT 0;
