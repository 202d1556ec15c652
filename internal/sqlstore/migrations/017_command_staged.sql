-- What a command's Prepare did, recorded (JSON) before a vote may hold the
-- command (internal/command Task.StageBeforeGate): whichever replica ends
-- the command applies it, or compensates it on a rejection. '' for none.
ALTER TABLE commands ADD COLUMN staged TEXT NOT NULL DEFAULT '';
