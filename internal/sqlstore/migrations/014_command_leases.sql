-- Commands executed once, in order, by whichever replica leases them
-- (internal/command, docs/architecture.md "Command model"):
-- order_key is the ordering key (the profile, or a Task's Key); seq the
-- acceptance order (SQLite: the rowid); held 1 while a vote holds the
-- command, 2 when its vote was decided while it ran (it is then not held);
-- lease_owner/lease_until the replica executing it and until when
-- (renewed while it runs); origin/origin_until the replica that holds the
-- command's in-memory input, which the others leave it to while that
-- reservation is renewed.
ALTER TABLE commands ADD COLUMN order_key TEXT NOT NULL DEFAULT '';
ALTER TABLE commands ADD COLUMN held INTEGER NOT NULL DEFAULT 0;
ALTER TABLE commands ADD COLUMN lease_owner TEXT NOT NULL DEFAULT '';
ALTER TABLE commands ADD COLUMN lease_until BIGINT NOT NULL DEFAULT 0;
ALTER TABLE commands ADD COLUMN origin TEXT NOT NULL DEFAULT '';
ALTER TABLE commands ADD COLUMN origin_until BIGINT NOT NULL DEFAULT 0;
UPDATE commands SET order_key = CASE WHEN profile_id = '' THEN id ELSE profile_id END WHERE status = 1;
/*postgres*/ CREATE SEQUENCE command_seq;
/*postgres*/ ALTER TABLE commands ADD COLUMN seq BIGINT NOT NULL DEFAULT nextval('command_seq');
/*postgres*/ CREATE INDEX commands_pending_key ON commands (order_key, seq) WHERE status = 1;
/*postgres*/ CREATE INDEX commands_pending_seq ON commands (seq) WHERE status = 1;
/*sqlite*/ CREATE INDEX commands_pending_key ON commands (order_key) WHERE status = 1;
