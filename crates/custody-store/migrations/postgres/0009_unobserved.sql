-- What reporters could not observe (a namespace they may not list, a task
-- they could not describe). A report with such parts is a partial
-- observation: it does not extend the environment's stretch of
-- observation, and is kept here so the gap it leaves can say why.
CREATE TABLE env_partial (
    env_id BIGINT NOT NULL REFERENCES environments(id),
    at BIGINT NOT NULL,
    reporter TEXT,
    -- JSON: [{scope, reason}]
    unobserved TEXT NOT NULL
);
CREATE INDEX env_partial_by_time ON env_partial (env_id, at);

-- The latest report's unobserved parts, as last_warnings.
ALTER TABLE environments ADD COLUMN last_unobserved TEXT;
-- The unobserved parts of the report that made a snapshot.
ALTER TABLE env_snapshots ADD COLUMN unobserved TEXT;
