-- Tombstones of expired reservations, swept from data_tokens: an exchange
-- (or stream upload) arriving later is told the reservation expired, not
-- that it never existed. Keyed by a SHA-256 of the temporary token (or of
-- the reservation's id, for stream uploads): no usable secret is kept, and
-- only the owning profile hears of it.
CREATE TABLE expired_reservations (
    key_hash   TEXT PRIMARY KEY,
    profile_id TEXT NOT NULL,
    expired_at BIGINT NOT NULL
);
CREATE INDEX expired_reservations_at ON expired_reservations (expired_at);
