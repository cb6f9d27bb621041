-- Keys that can be listed, revoked and rotated; accounts that can be
-- deleted or given another role; an organisation-wide cap on how long a
-- key may live. Who did each of these is in the ledger entry it wrote.
ALTER TABLE api_keys ADD COLUMN last_used_at BIGINT;
-- The key this one replaced (`rotate api-key`).
ALTER TABLE api_keys ADD COLUMN rotated_from TEXT;
ALTER TABLE service_accounts ADD COLUMN deleted_at BIGINT;
ALTER TABLE orgs ADD COLUMN max_key_lifetime_ms BIGINT;
-- Who reported each snapshot (JSON of the ledger's actor).
ALTER TABLE env_snapshots ADD COLUMN actor TEXT;
