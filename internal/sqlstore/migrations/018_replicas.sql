-- The replicas sharing the database that may cache what it holds
-- (internal/coherence): a change is acknowledged only once every member
-- has dropped what the change made stale, or has been evicted (its row
-- deleted) and its cache has expired. until is Unix nanoseconds of the
-- member's clock; rows long past it are swept.
CREATE TABLE replicas (
    id    TEXT PRIMARY KEY,
    until BIGINT NOT NULL
);
