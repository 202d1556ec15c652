-- The sweep of lapsed reservations looks by expiry alone; an index that
-- also holds the state was rewritten by every exchange.
DROP INDEX data_tokens_expiry;
CREATE INDEX data_tokens_expires ON data_tokens (expires_at);
