-- Tokens of a client issued before this time (Unix seconds) are inactive:
-- revoke-tokens, disabling and re-creating a client move it forward.
ALTER TABLE clients ADD COLUMN tokens_valid_after INTEGER NOT NULL DEFAULT 0;
