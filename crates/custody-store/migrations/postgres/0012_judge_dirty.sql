-- PostgreSQL twin of the SQLite migration. Judging an environment after evidence about a few of its artifacts
-- re-judges those artifacts only (evaluation.rs). A write that reports
-- evidence names the fingerprints it is about here, with the ledger size
-- after it; any other cause of a judgement (a policy, the allowlist, a
-- flow's template or tags) sets judge_whole, and the next judgement reads
-- every artifact again. Existing marks are judged whole.
ALTER TABLE environments ADD COLUMN judge_whole BIGINT NOT NULL DEFAULT 1;
CREATE TABLE env_judge_dirty (
    env_id BIGINT NOT NULL,
    fingerprint TEXT NOT NULL,
    mark BIGINT NOT NULL,
    PRIMARY KEY (env_id, fingerprint)
);
