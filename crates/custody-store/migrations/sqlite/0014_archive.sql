-- Kosli's archive verbs: an archived flow takes no new trails, artifacts
-- or attestations and is listed only when asked for; its history stays.
ALTER TABLE flows ADD COLUMN archived_at BIGINT;

-- An archived custom attestation type takes no new attestations until a
-- new version of it is created.
CREATE TABLE attestation_types_archived (
    org_id BIGINT NOT NULL REFERENCES orgs(id),
    name TEXT NOT NULL,
    archived_at BIGINT NOT NULL,
    PRIMARY KEY (org_id, name)
);
