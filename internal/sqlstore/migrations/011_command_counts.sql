-- Finished commands are pruned after the retention period; the succeeded
-- ones are first folded into these per-day counts, which the transaction
-- count statistics read together with the commands still kept.
CREATE TABLE command_counts (
    profile_id TEXT NOT NULL,
    type       TEXT NOT NULL,
    day        BIGINT NOT NULL,
    n          BIGINT NOT NULL,
    PRIMARY KEY (profile_id, type, day)
);
