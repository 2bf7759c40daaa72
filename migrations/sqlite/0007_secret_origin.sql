-- Where a client's current secret came from: 'generated' (256 random bits,
-- hashed at argon2id's minimum cost) or 'imported' (chosen elsewhere, hashed
-- at the strong cost). NULL for secrets stored before this column existed:
-- their hash is strong, and is re-made on the next successful verification
-- under the policy its secret falls under.
ALTER TABLE clients ADD COLUMN secret_origin TEXT;
