-- Refresh tokens of people's sign-ins. Only a keyed hash (HMAC-SHA256 under the server pepper)
-- of each token is kept. A family is one sign-in and every token rotated from it: each use
-- rotates the token (state 'rotated'), and a rotated token presented again revokes the family.
-- user_id is the object in the tenant (a member, or a guest); account_id the account whose
-- password signed in (the guest's home account). No foreign key to users: a deleted user's
-- token must still be recognised and refused as such.

CREATE TABLE refresh_tokens (
    id TEXT PRIMARY KEY,
    token_hash BYTEA NOT NULL UNIQUE,
    family_id TEXT NOT NULL,
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL,
    account_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    auth_time BIGINT NOT NULL,
    issued_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    state TEXT NOT NULL,
    changed_at BIGINT,
    revoked_reason TEXT
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id);
CREATE INDEX refresh_tokens_account ON refresh_tokens (account_id);
CREATE INDEX refresh_tokens_expiry ON refresh_tokens (expires_at);
