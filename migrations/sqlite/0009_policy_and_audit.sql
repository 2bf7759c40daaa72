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
    window_start INTEGER NOT NULL,
    count        INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    PRIMARY KEY (name, window_start)
) STRICT;
CREATE INDEX counters_expires_at ON counters (expires_at);

-- Who changed what, and when: every administrative write, in the same
-- transaction as the write. Never a secret or a hash: `fields` names the
-- changed fields only.
CREATE TABLE audit (
    id     INTEGER PRIMARY KEY AUTOINCREMENT,
    at     INTEGER NOT NULL,
    actor  TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    fields TEXT NOT NULL
) STRICT;
CREATE INDEX audit_target ON audit (target, id);
CREATE INDEX audit_at ON audit (at);
