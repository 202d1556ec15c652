-- Acks that outlive their replica (internal/command, announce.go): a
-- finished command's announcer is the replica that recorded its outcome
-- and publishes its ack (shared mode; '' otherwise). An announcers row says
-- that its replica has handed to the bus the acks of every outcome it
-- recorded before through, and lives until until (Unix nanoseconds of its
-- clock, renewed while it runs). A row past its until is a replica that
-- died: another one publishes the acks of its outcomes from through on,
-- then deletes the row.
ALTER TABLE commands ADD COLUMN announcer TEXT NOT NULL DEFAULT '';
CREATE INDEX commands_announcer ON commands (announcer, updated_at, id) WHERE announcer <> '';
CREATE TABLE announcers (
    replica TEXT PRIMARY KEY,
    through BIGINT NOT NULL,
    until   BIGINT NOT NULL
);
