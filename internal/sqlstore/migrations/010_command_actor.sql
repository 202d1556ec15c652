-- Who submitted a command (an OAuth application or a token's hash prefix): ballots show it.
ALTER TABLE commands ADD COLUMN actor TEXT NOT NULL DEFAULT '';
