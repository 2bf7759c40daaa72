-- Client ids compare bytewise, as in SQLite: a page of the client list is
-- then a range of the primary key whatever the database's locale (under a
-- linguistic collation, ids sharing a prefix need not sort together).
ALTER TABLE clients ALTER COLUMN client_id TYPE TEXT COLLATE "C";

-- Per-client policy: claims copied into every token (a JSON object as text)
-- and a token quota ('100/min', '1000/h').
ALTER TABLE clients ADD COLUMN claims TEXT;
ALTER TABLE clients ADD COLUMN token_quota TEXT;

-- Counters every instance adds to: issued tokens per client (quotas) and
-- failed authentications (the brute-force throttle), one row per name and
-- fixed window. Instances add their counts in batches; rows go once their
-- window has ended.
CREATE TABLE counters (
    name         TEXT NOT NULL,
    window_start BIGINT NOT NULL,
    count        BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    PRIMARY KEY (name, window_start)
);
CREATE INDEX counters_expires_at ON counters (expires_at);

-- Who changed what, and when: every administrative write, in the same
-- transaction as the write. Never a secret or a hash: `fields` names the
-- changed fields only.
CREATE TABLE audit (
    id     BIGSERIAL PRIMARY KEY,
    at     BIGINT NOT NULL,
    actor  TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    fields TEXT NOT NULL
);
CREATE INDEX audit_target ON audit (target, id);
CREATE INDEX audit_at ON audit (at);
