-- Streamed payloads are stored on the devices in chunks.
ALTER TABLE data_tokens ADD COLUMN chunks INTEGER NOT NULL DEFAULT 0;
