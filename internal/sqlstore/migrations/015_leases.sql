-- Named leases (internal/lease): the replica (owner) that does a periodic
-- job (voting deadlines, outbox deliveries, the janitor, command pruning)
-- until expires_at (Unix nanoseconds). A lease is taken when it is free or
-- expired, in one statement, so at most one replica holds it at a time.
CREATE TABLE leases (
    name       TEXT PRIMARY KEY,
    owner      TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
