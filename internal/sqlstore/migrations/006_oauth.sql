-- OAuth applications, authorization codes, and the OAuth links of tokens.
CREATE TABLE oauth_applications (
    id           TEXT PRIMARY KEY,
    profile_id   TEXT NOT NULL,
    name         TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    scopes       TEXT NOT NULL,
    client_id    TEXT NOT NULL UNIQUE,
    secret_hash  TEXT NOT NULL DEFAULT '',
    retrieved_at BIGINT NOT NULL DEFAULT 0,
    created_at   BIGINT NOT NULL
);
CREATE INDEX oauth_applications_profile ON oauth_applications (profile_id);

CREATE TABLE oauth_codes (
    id             TEXT PRIMARY KEY,
    application_id TEXT NOT NULL,
    profile_id     TEXT NOT NULL,
    nonce          TEXT NOT NULL,
    scopes         TEXT NOT NULL,
    code_hash      TEXT NOT NULL DEFAULT '',
    created_at     BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL,
    retrieved_at   BIGINT NOT NULL DEFAULT 0,
    used_at        BIGINT NOT NULL DEFAULT 0,
    UNIQUE (application_id, nonce)
);
CREATE INDEX oauth_codes_hash ON oauth_codes (code_hash);

ALTER TABLE tokens ADD COLUMN application_id TEXT NOT NULL DEFAULT '';
ALTER TABLE tokens ADD COLUMN family TEXT NOT NULL DEFAULT '';
ALTER TABLE tokens ADD COLUMN pair TEXT NOT NULL DEFAULT '';
CREATE INDEX tokens_application ON tokens (application_id);
CREATE INDEX tokens_family ON tokens (family);
