-- Environments are judged after the write that changed what their
-- judgement depends on, not inside it (evaluation.rs): the write marks
-- them with the organisation's ledger size after it, and a judgement
-- records the ledger size it read at.
ALTER TABLE environments ADD COLUMN judge_mark BIGINT;
ALTER TABLE environments ADD COLUMN judge_cause TEXT;
ALTER TABLE environments ADD COLUMN judged_as_of BIGINT NOT NULL DEFAULT 0;
CREATE INDEX environments_judge_pending ON environments (org_id, judge_mark) WHERE judge_mark IS NOT NULL;
