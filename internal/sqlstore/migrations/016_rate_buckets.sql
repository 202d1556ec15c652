-- Token buckets of the rate limits in cluster mode (internal/ratelimit):
-- authenticate failures and registrations counted across replicas. key is
-- a digest of the limit's name and key (no username or address in the
-- clear); times are Unix nanoseconds, 0 for none. A row past expires_at is
-- as good as absent and is swept.
CREATE TABLE rate_buckets (
    key        TEXT PRIMARY KEY,
    tokens     DOUBLE PRECISION NOT NULL,
    last_at    BIGINT NOT NULL,
    in_flight  INTEGER NOT NULL,
    last_fail  BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX rate_buckets_expiry ON rate_buckets (expires_at);
