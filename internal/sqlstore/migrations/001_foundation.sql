-- Foundation: profiles, tokens, commands. Portable SQL (SQLite and PostgreSQL).
-- Times are BIGINT Unix nanoseconds; 0 means "not set".
CREATE TABLE profiles (
    id            TEXT PRIMARY KEY,
    username      TEXT NOT NULL,
    username_key  TEXT NOT NULL UNIQUE,
    given_name    TEXT NOT NULL DEFAULT '',
    family_name   TEXT NOT NULL DEFAULT '',
    password_hash TEXT NOT NULL,
    public_key    TEXT NOT NULL DEFAULT '',
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);

CREATE TABLE tokens (
    id         TEXT PRIMARY KEY,
    profile_id TEXT NOT NULL,
    kind       TEXT NOT NULL,
    role       TEXT NOT NULL DEFAULT '',
    scope      TEXT NOT NULL DEFAULT '',
    ref        TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT NOT NULL DEFAULT 0,
    used_at    BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX tokens_profile ON tokens (profile_id);
CREATE INDEX tokens_expires ON tokens (expires_at);

CREATE TABLE commands (
    id         TEXT PRIMARY KEY,
    profile_id TEXT NOT NULL,
    type       TEXT NOT NULL,
    payload    TEXT NOT NULL,
    status     INTEGER NOT NULL,
    body       TEXT NOT NULL DEFAULT '',
    attempts   INTEGER NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX commands_status ON commands (status, created_at);
