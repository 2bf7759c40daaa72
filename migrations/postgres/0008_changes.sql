-- What changed, for the other instances sharing this database: every write
-- of a client, a trusted issuer or a signing key adds a row. Each instance
-- LISTENs on tokenmint_changes and reads the rows after the last one it saw
-- when woken (polling only while its notification connection is down).
-- Rows older than an hour are pruned.
CREATE TABLE changes (
    id      BIGSERIAL PRIMARY KEY,
    kind    TEXT NOT NULL,
    subject TEXT NOT NULL,
    at      BIGINT NOT NULL
);

CREATE FUNCTION tokenmint_notify_change() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('tokenmint_changes', NEW.id::text);
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER changes_notify AFTER INSERT ON changes
    FOR EACH ROW EXECUTE FUNCTION tokenmint_notify_change();
