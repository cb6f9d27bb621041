-- Entries by kind, in order: an audit bundle finds an environment's
-- snapshots and reports, and the provenance of what ran, without reading
-- the rest of the ledger.
CREATE INDEX ledger_by_kind ON ledger (org_id, kind, seq);
