-- Security of each environment: the privileges each role grants, and who holds which role.
-- Roles, users and business units themselves are rows of the environment's own tables.

CREATE TABLE dv_role_privileges (
    environment_id TEXT NOT NULL REFERENCES environments (id) ON DELETE CASCADE,
    role_id TEXT NOT NULL,
    privilege TEXT NOT NULL,
    depth TEXT NOT NULL,
    PRIMARY KEY (environment_id, role_id, privilege)
);

CREATE TABLE dv_user_roles (
    environment_id TEXT NOT NULL REFERENCES environments (id) ON DELETE CASCADE,
    systemuser_id TEXT NOT NULL,
    role_id TEXT NOT NULL,
    PRIMARY KEY (environment_id, systemuser_id, role_id)
);
CREATE INDEX dv_user_roles_role ON dv_user_roles (environment_id, role_id);
