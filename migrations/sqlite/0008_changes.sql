-- What changed, for the other instances and processes sharing this store:
-- every write of a client, a trusted issuer or a signing key adds a row, and
-- each instance reads the rows after the last one it saw (every 50 ms on
-- SQLite) to drop what it holds in memory. Rows older than an hour are pruned.
CREATE TABLE changes (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    kind    TEXT NOT NULL,
    subject TEXT NOT NULL,
    at      INTEGER NOT NULL
) STRICT;
