-- Voting pools and their answers (one row per device and attempt).
CREATE TABLE pools (
    id           TEXT PRIMARY KEY,
    profile_id   TEXT NOT NULL,
    command_id   TEXT NOT NULL,
    event        TEXT NOT NULL,
    title        TEXT NOT NULL,
    question     TEXT NOT NULL,
    nonce        TEXT NOT NULL,
    detail       TEXT NOT NULL,
    strategy     TEXT NOT NULL,
    percentage   INTEGER NOT NULL,
    quorum_size  INTEGER NOT NULL,
    time_limit   INTEGER NOT NULL,
    eligible     TEXT NOT NULL,
    attempt      INTEGER NOT NULL,
    max_attempts INTEGER NOT NULL,
    state        TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    resolved_at  BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX pools_command ON pools (command_id);
CREATE INDEX pools_state ON pools (state, expires_at);

CREATE TABLE pool_answers (
    pool_id   TEXT NOT NULL,
    attempt   INTEGER NOT NULL,
    device_id TEXT NOT NULL,
    yes       INTEGER NOT NULL,
    at        BIGINT NOT NULL,
    PRIMARY KEY (pool_id, attempt, device_id)
);
