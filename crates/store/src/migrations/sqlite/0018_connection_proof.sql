-- Whom a connection's own credential has proven to sign in as (the object id in a token this
-- server signed for it) and when. The expired-connection fallback mints only for this identity,
-- so a connection that names someone else's client id or username with a wrong secret acts as
-- no one. Cleared when the connection's credential is edited; nothing secret is kept.

ALTER TABLE connections ADD COLUMN proven_identity TEXT;
ALTER TABLE connections ADD COLUMN proven_at BIGINT;
