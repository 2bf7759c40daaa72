-- Clients that authenticate without a secret (private_key_jwt, workload
-- identity federation). A client without a secret keeps '' in secret_hash,
-- which no argon2id PHC string equals, so that the column stays NOT NULL on
-- both databases (SQLite cannot drop a constraint in place).
ALTER TABLE clients ADD COLUMN auth_method TEXT NOT NULL DEFAULT 'client_secret_basic';
ALTER TABLE clients ADD COLUMN jwks TEXT;
ALTER TABLE clients ADD COLUMN jwks_uri TEXT;
-- Space-delimited ISSUER=SUBJECT pairs, the client's copy; the index below
-- answers "which client is this subject?" and keeps a pair to one client.
ALTER TABLE clients ADD COLUMN federated_identities TEXT NOT NULL DEFAULT '';
-- Bumped by every write; a write must name the revision it read (optimistic
-- concurrency: two admins changing one client never undo each other).
ALTER TABLE clients ADD COLUMN revision INTEGER NOT NULL DEFAULT 0;

-- issuer_id is the id of the trusted issuer the binding was made under: an
-- issuer removed and added again under its name gets a new id, so a binding
-- that outlived the old one (a write racing the removal) never counts.
CREATE TABLE client_identities (
    issuer    TEXT NOT NULL,
    issuer_id TEXT NOT NULL,
    subject   TEXT NOT NULL,
    client_id TEXT NOT NULL,
    PRIMARY KEY (issuer_id, subject)
) STRICT;
CREATE INDEX client_identities_client ON client_identities (client_id);

-- A private_key_jwt assertion's jti, kept until the assertion expires so
-- that it is accepted once across every instance (RFC 7523 §3, item 7).
CREATE TABLE used_assertions (
    client_id  TEXT NOT NULL,
    jti        TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (client_id, jti)
) STRICT;
CREATE INDEX used_assertions_expires_at ON used_assertions (expires_at);

-- Platforms whose identity tokens authenticate clients. Neither jwks_uri
-- nor jwks: the keys are found by OIDC discovery at the issuer.
CREATE TABLE trusted_issuers (
    name          TEXT PRIMARY KEY NOT NULL,
    id            TEXT NOT NULL UNIQUE,
    issuer        TEXT NOT NULL UNIQUE,
    jwks_uri      TEXT,
    jwks          TEXT,
    audience      TEXT,
    max_token_age INTEGER NOT NULL,
    created_at    INTEGER NOT NULL
) STRICT;
