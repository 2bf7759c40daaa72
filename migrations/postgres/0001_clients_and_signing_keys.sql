-- Registered clients. Lists are space-delimited text so that both stores
-- hold identical values; times are Unix seconds.
CREATE TABLE clients (
    client_id                  TEXT PRIMARY KEY,
    secret_hash                TEXT NOT NULL,      -- argon2id PHC string
    previous_secret_hash       TEXT,               -- during a rotation overlap
    previous_secret_expires_at BIGINT,
    scopes                     TEXT NOT NULL,
    default_scopes             TEXT NOT NULL,
    audiences                  TEXT NOT NULL,
    default_audience           TEXT,
    grant_types                TEXT NOT NULL,
    token_ttl                  BIGINT,             -- NULL: server default
    enabled                    BOOLEAN NOT NULL,
    created_at                 BIGINT NOT NULL,
    updated_at                 BIGINT NOT NULL
);

-- JWT signing keys, shared by every instance. private_key is sealed with
-- AES-256-GCM under the key-encryption key; no plain private key is stored.
CREATE TABLE signing_keys (
    kid          TEXT PRIMARY KEY,                 -- RFC 7638 thumbprint
    alg          TEXT NOT NULL,
    private_key  BYTEA NOT NULL,
    public_jwk   TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    activates_at BIGINT NOT NULL                  -- a key retires when its successor activates
);
