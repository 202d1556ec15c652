-- Data tokens and where their blobs are. Payloads are never stored here.
CREATE TABLE data_tokens (
    id             TEXT PRIMARY KEY,
    profile_id     TEXT NOT NULL,
    temp_token     TEXT NOT NULL UNIQUE,
    token          TEXT UNIQUE,
    reservation_id TEXT NOT NULL UNIQUE,
    blob_id        TEXT NOT NULL DEFAULT '',
    context        TEXT NOT NULL,
    meta           TEXT NOT NULL DEFAULT '{}',
    file_name      TEXT NOT NULL DEFAULT '',
    file_extension TEXT NOT NULL DEFAULT '',
    data_type      TEXT NOT NULL DEFAULT '',
    state          TEXT NOT NULL,
    size           BIGINT NOT NULL DEFAULT 0,
    wrapped_key    TEXT NOT NULL DEFAULT '',
    application    TEXT NOT NULL DEFAULT '',
    expires_at     BIGINT NOT NULL DEFAULT 0,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL
);
CREATE INDEX data_tokens_profile ON data_tokens (profile_id, state, created_at);
CREATE INDEX data_tokens_expiry ON data_tokens (state, expires_at);
CREATE INDEX data_tokens_blob ON data_tokens (blob_id);

CREATE TABLE device_blobs (
    device_id TEXT NOT NULL,
    blob_id   TEXT NOT NULL,
    size      BIGINT NOT NULL,
    PRIMARY KEY (device_id, blob_id)
);
CREATE INDEX device_blobs_blob ON device_blobs (blob_id);

CREATE TABLE device_outbox (
    device_id  TEXT NOT NULL,
    blob_id    TEXT NOT NULL,
    op         TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (device_id, blob_id, op)
);

CREATE INDEX commands_profile_type ON commands (profile_id, type, created_at);
