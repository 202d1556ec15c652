-- Voting: each profile's strategy (absent: the defaults) and named voting configurations.
CREATE TABLE voting_strategies (
    profile_id  TEXT PRIMARY KEY,
    strategy    TEXT NOT NULL,
    percentage  INTEGER NOT NULL,
    quorum_size INTEGER NOT NULL,
    time_limit  INTEGER NOT NULL,
    attempts    INTEGER NOT NULL,
    updated_at  BIGINT NOT NULL
);

CREATE TABLE voting_configurations (
    id          TEXT PRIMARY KEY,
    profile_id  TEXT NOT NULL,
    name        TEXT NOT NULL,
    strategy    TEXT NOT NULL,
    percentage  INTEGER NOT NULL,
    time_limit  INTEGER NOT NULL,
    device_ids  TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    UNIQUE (profile_id, name)
);
