-- Devices: storage devices, authenticators and signers enrolled under a profile.
CREATE TABLE devices (
    id                 TEXT PRIMARY KEY,
    profile_id         TEXT NOT NULL,
    request_command_id TEXT NOT NULL,
    name               TEXT NOT NULL DEFAULT '',
    display_name       TEXT NOT NULL DEFAULT '',
    tags               TEXT NOT NULL DEFAULT '[]',
    meta               TEXT NOT NULL DEFAULT '{}',
    role               TEXT NOT NULL DEFAULT 'none',
    state              TEXT NOT NULL DEFAULT 'pending',
    public_key         TEXT NOT NULL DEFAULT '',
    client_id          TEXT NOT NULL DEFAULT '',
    secret_hash        TEXT NOT NULL DEFAULT '',
    qr_token_id        TEXT NOT NULL DEFAULT '',
    qr_role            TEXT NOT NULL DEFAULT '',
    last_seen_at       BIGINT NOT NULL DEFAULT 0,
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL
);
CREATE INDEX devices_profile ON devices (profile_id, created_at);
CREATE INDEX devices_request ON devices (request_command_id);
CREATE INDEX devices_client ON devices (client_id);
