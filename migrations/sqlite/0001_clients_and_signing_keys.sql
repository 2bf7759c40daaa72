-- Same schema as migrations/postgres/0001, in SQLite's STRICT types.
CREATE TABLE clients (
    client_id                  TEXT PRIMARY KEY NOT NULL,
    secret_hash                TEXT NOT NULL,
    previous_secret_hash       TEXT,
    previous_secret_expires_at INTEGER,
    scopes                     TEXT NOT NULL,
    default_scopes             TEXT NOT NULL,
    audiences                  TEXT NOT NULL,
    default_audience           TEXT,
    grant_types                TEXT NOT NULL,
    token_ttl                  INTEGER,
    enabled                    INTEGER NOT NULL,
    created_at                 INTEGER NOT NULL,
    updated_at                 INTEGER NOT NULL
) STRICT;

CREATE TABLE signing_keys (
    kid          TEXT PRIMARY KEY NOT NULL,
    alg          TEXT NOT NULL,
    private_key  BLOB NOT NULL,
    public_jwk   TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    activates_at INTEGER NOT NULL
) STRICT;
