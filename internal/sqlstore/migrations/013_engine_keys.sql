-- The engine's own keys (the engine key, the master key) when they live in
-- the database: sealed under the key-encryption key every replica is given
-- (internal/keyring), never in the clear. sealed is the sealed bytes in
-- standard base64 (TEXT reads the same on SQLite and PostgreSQL). A row is
-- written once, by the first replica to start; the others read it.
CREATE TABLE engine_keys (
    name       TEXT PRIMARY KEY,
    sealed     TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
