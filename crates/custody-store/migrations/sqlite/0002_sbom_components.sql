-- Every component of every SBOM attestation, so that "which artifacts
-- contain package X" is one indexed query. Written in the attestation's
-- transaction; never updated.
CREATE TABLE sbom_components (
    id INTEGER PRIMARY KEY,
    org_id BIGINT NOT NULL REFERENCES orgs(id),
    attestation_id TEXT NOT NULL REFERENCES attestations(id),
    trail_id BIGINT NOT NULL REFERENCES trails(id),
    artifact_name TEXT,
    fingerprint TEXT,
    name TEXT NOT NULL,
    version TEXT,
    purl TEXT,
    -- The purl without version, qualifiers or subpath: "any version of".
    purl_base TEXT,
    doc TEXT NOT NULL
);
CREATE INDEX sbom_components_by_name ON sbom_components (org_id, name);
CREATE INDEX sbom_components_by_purl ON sbom_components (org_id, purl);
CREATE INDEX sbom_components_by_purl_base ON sbom_components (org_id, purl_base);
CREATE INDEX sbom_components_by_attestation ON sbom_components (attestation_id, id);
