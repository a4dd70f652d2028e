-- Connections: stored authentication contexts. Public values are JSON; each secret value is a
-- row of its own, sealed (AES-256-GCM, key id in the ciphertext, connection and field bound as
-- associated data). Every use of a secret is an event.

CREATE TABLE connections (
    id TEXT PRIMARY KEY,
    api TEXT NOT NULL,
    scope TEXT NOT NULL,
    name TEXT NOT NULL,
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    environment_id TEXT REFERENCES environments (id) ON DELETE CASCADE,
    connector TEXT NOT NULL,
    parameter_set TEXT NOT NULL,
    display_name TEXT NOT NULL,
    description TEXT NOT NULL,
    public_values TEXT NOT NULL,
    created_by TEXT NOT NULL,
    modified_by TEXT NOT NULL,
    run_owner TEXT,
    status TEXT NOT NULL,
    status_code TEXT,
    status_message TEXT,
    tested_at BIGINT,
    expires_at BIGINT,
    created_at BIGINT NOT NULL,
    modified_at BIGINT NOT NULL,
    version BIGINT NOT NULL,
    UNIQUE (api, scope, name)
);
CREATE INDEX connections_tenant ON connections (tenant_id, api, scope);

CREATE TABLE connection_secrets (
    connection_id TEXT NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    field TEXT NOT NULL,
    sealed BYTEA NOT NULL,
    PRIMARY KEY (connection_id, field)
);

CREATE TABLE connection_permissions (
    id TEXT PRIMARY KEY,
    connection_id TEXT NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    principal_id TEXT NOT NULL,
    principal_type TEXT NOT NULL,
    role TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (connection_id, principal_id)
);
CREATE INDEX connection_permissions_principal ON connection_permissions (principal_id);

-- Not a foreign key: the history of a connection outlives it.
CREATE TABLE connection_events (
    id TEXT PRIMARY KEY,
    connection_id TEXT NOT NULL,
    at BIGINT NOT NULL,
    kind TEXT NOT NULL,
    caller TEXT NOT NULL,
    acting_as TEXT,
    purpose TEXT NOT NULL
);
CREATE INDEX connection_events_connection ON connection_events (connection_id, at);
