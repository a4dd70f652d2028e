-- Teams and sharing. Team rows live in the environment's own `team` table; here are who belongs
-- to which team, which roles a team holds (its members hold them too), and which rows are shared
-- with which user or team with what rights (`access_mask`, Dataverse's AccessRights flags).

CREATE TABLE dv_team_members (
    environment_id TEXT NOT NULL REFERENCES environments (id) ON DELETE CASCADE,
    team_id TEXT NOT NULL,
    systemuser_id TEXT NOT NULL,
    PRIMARY KEY (environment_id, team_id, systemuser_id)
);
CREATE INDEX dv_team_members_user ON dv_team_members (environment_id, systemuser_id);

CREATE TABLE dv_team_roles (
    environment_id TEXT NOT NULL REFERENCES environments (id) ON DELETE CASCADE,
    team_id TEXT NOT NULL,
    role_id TEXT NOT NULL,
    PRIMARY KEY (environment_id, team_id, role_id)
);
CREATE INDEX dv_team_roles_role ON dv_team_roles (environment_id, role_id);

-- `table_name` is the row's SQL table (dv<n>_<entity>), unique across environments, so a
-- query's share condition needs nothing but the table it already reads.
CREATE TABLE dv_shares (
    environment_id TEXT NOT NULL REFERENCES environments (id) ON DELETE CASCADE,
    table_name TEXT NOT NULL,
    object_id TEXT NOT NULL,
    principal_id TEXT NOT NULL,
    principal_type TEXT NOT NULL,
    access_mask BIGINT NOT NULL,
    PRIMARY KEY (table_name, object_id, principal_id)
);
CREATE INDEX dv_shares_principal ON dv_shares (table_name, principal_id, object_id);
