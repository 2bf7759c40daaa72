-- Sender-constrained tokens (RFC 9449 DPoP, RFC 8705 mutual TLS) and the two
-- certificate methods of client authentication.
--
-- dpop_bound_access_tokens: the client must send a DPoP proof (RFC 9449 §5.2).
ALTER TABLE clients ADD COLUMN dpop_bound_access_tokens INTEGER NOT NULL DEFAULT 0;
-- tls_client_certificate_bound_access_tokens: tokens carry cnf.x5t#S256 when
-- a certificate was presented (RFC 8705 §3.4).
ALTER TABLE clients ADD COLUMN tls_client_certificate_bound_access_tokens INTEGER NOT NULL DEFAULT 0;
-- The one subject a tls_client_auth client's certificate must carry, as
-- KIND=VALUE with KIND one of dn, san_dns, san_uri, san_ip, san_email
-- (RFC 8705 §2.1.2).
ALTER TABLE clients ADD COLUMN tls_subject TEXT;
