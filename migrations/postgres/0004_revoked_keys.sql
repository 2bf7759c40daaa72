-- Signing keys withdrawn after a compromise. Key rows themselves are never
-- updated; a revocation is a row here, read with the keys.
CREATE TABLE revoked_keys (
    kid        TEXT PRIMARY KEY NOT NULL,
    revoked_at BIGINT NOT NULL
);
