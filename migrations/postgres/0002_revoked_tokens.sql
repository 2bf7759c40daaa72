-- RFC 7009 revocation: the jti of each revoked token, kept until the token
-- would have expired anyway, then pruned. Nothing else is stored per token.
CREATE TABLE revoked_tokens (
    jti        TEXT PRIMARY KEY,
    client_id  TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX revoked_tokens_expires_at ON revoked_tokens (expires_at);
