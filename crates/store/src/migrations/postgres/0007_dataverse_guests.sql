-- Guests (Entra B2B): a user object in the inviting tenant that stands for a user of another
-- tenant, who signs in with their home password. `user_type` is Graph's userType; `mail` the
-- invited address; `home_*` the account that signs in for the guest. Members keep the defaults.
-- The environments' systemuser tables already have `isguest` and `islicensed` (every
-- environment was made with them), so nothing changes there: addUser now sets them for guests.

ALTER TABLE users ADD COLUMN user_type TEXT NOT NULL DEFAULT 'Member';
ALTER TABLE users ADD COLUMN mail TEXT;
ALTER TABLE users ADD COLUMN home_tenant_id TEXT;
ALTER TABLE users ADD COLUMN home_user_id TEXT;
-- One guest per home account per tenant; and sign-in finds the guest by its home account.
CREATE UNIQUE INDEX users_guest_home ON users (tenant_id, home_user_id) WHERE home_user_id IS NOT NULL;
