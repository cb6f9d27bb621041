-- PostgreSQL twin of the SQLite migration. Only the latest attestation of each name and binding in a trail counts,
-- and reads of trails, provenance and policy facts want only those. A
-- window over every version made those reads grow with a trail's history;
-- the write now marks the latest of its group instead (evidence.rs), and
-- the reads take the marked rows through a partial index.
ALTER TABLE attestations ADD COLUMN latest BIGINT NOT NULL DEFAULT 0;
UPDATE attestations SET latest = 1 WHERE id IN (
    SELECT id FROM (
        SELECT id, ROW_NUMBER() OVER (
            PARTITION BY trail_id, name, COALESCE(artifact_name, ''), COALESCE(fingerprint, '')
            ORDER BY created_at DESC, id DESC) AS newest
        FROM attestations) ranked
    WHERE newest = 1);
CREATE INDEX attestations_latest ON attestations (trail_id, name) WHERE latest = 1;
