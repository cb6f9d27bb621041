-- Custody schema for PostgreSQL. Identical to the SQLite migration but for
-- the id and byte column types. Integers are BIGINT (times are milliseconds
-- since the epoch, booleans 0/1) and JSON is TEXT, so one set of queries
-- through sqlx's Any driver serves both backends.

CREATE TABLE orgs (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);

CREATE TABLE ledger_heads (
    org_id BIGINT PRIMARY KEY REFERENCES orgs(id),
    size BIGINT NOT NULL
);

-- The append-only ledger: one row per accepted write, in the same
-- transaction as the write. `entry` is the canonical JSON envelope and
-- `leaf_hash` = SHA-256(0x00 || entry). Rows are never updated or deleted.
CREATE TABLE ledger (
    org_id BIGINT NOT NULL REFERENCES orgs(id),
    seq BIGINT NOT NULL,
    kind TEXT NOT NULL,
    ts BIGINT NOT NULL,
    entry TEXT NOT NULL,
    leaf_hash BYTEA NOT NULL,
    PRIMARY KEY (org_id, seq)
);

CREATE TABLE service_accounts (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id BIGINT NOT NULL REFERENCES orgs(id),
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    description TEXT,
    server_admin BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    UNIQUE (org_id, name)
);

CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    service_account_id BIGINT NOT NULL REFERENCES service_accounts(id),
    key_hash BYTEA NOT NULL UNIQUE,
    description TEXT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT,
    revoked_at BIGINT
);

CREATE TABLE flows (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id BIGINT NOT NULL REFERENCES orgs(id),
    name TEXT NOT NULL,
    description TEXT,
    template_version BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (org_id, name)
);

CREATE TABLE flow_templates (
    flow_id BIGINT NOT NULL REFERENCES flows(id),
    version BIGINT NOT NULL,
    yaml TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (flow_id, version)
);

-- `doc` holds the trail as the API shows it; columns hold what is queried.
CREATE TABLE trails (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id BIGINT NOT NULL REFERENCES orgs(id),
    flow_id BIGINT NOT NULL REFERENCES flows(id),
    name TEXT NOT NULL,
    git_commit TEXT,
    doc TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (flow_id, name)
);

CREATE TABLE artifacts (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id BIGINT NOT NULL REFERENCES orgs(id),
    flow_id BIGINT NOT NULL REFERENCES flows(id),
    trail_id BIGINT NOT NULL REFERENCES trails(id),
    template_name TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    git_commit TEXT,
    doc TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX artifacts_by_fingerprint ON artifacts (org_id, fingerprint);
CREATE INDEX artifacts_by_commit ON artifacts (org_id, git_commit);
CREATE INDEX artifacts_by_trail ON artifacts (trail_id, id);
CREATE INDEX artifacts_by_flow ON artifacts (flow_id, id);

CREATE TABLE attestation_types (
    org_id BIGINT NOT NULL REFERENCES orgs(id),
    name TEXT NOT NULL,
    version BIGINT NOT NULL,
    doc TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (org_id, name, version)
);

CREATE TABLE attestations (
    id TEXT PRIMARY KEY,
    org_id BIGINT NOT NULL REFERENCES orgs(id),
    trail_id BIGINT NOT NULL REFERENCES trails(id),
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    artifact_name TEXT,
    fingerprint TEXT,
    compliant BIGINT NOT NULL,
    doc TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX attestations_by_trail ON attestations (trail_id, name, created_at);

-- Content-addressed files in the blob store, shared across organisations.
CREATE TABLE blobs (
    sha256 TEXT PRIMARY KEY,
    size BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);

-- Which organisation may read which blob, and through which attestation.
CREATE TABLE evidence (
    org_id BIGINT NOT NULL REFERENCES orgs(id),
    attestation_id TEXT NOT NULL REFERENCES attestations(id),
    sha256 TEXT NOT NULL REFERENCES blobs(sha256),
    filename TEXT NOT NULL,
    PRIMARY KEY (attestation_id, filename)
);
CREATE INDEX evidence_by_blob ON evidence (org_id, sha256);
