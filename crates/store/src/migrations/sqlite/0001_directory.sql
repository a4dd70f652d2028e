-- The directory: tenants, signing keys, applications and their credentials, service principals,
-- app role assignments, users, and the client assertions seen (for replay checks).
-- Ids are lower-case UUID text; instants are Unix microseconds.

CREATE TABLE server_secrets (
    name TEXT PRIMARY KEY,
    sealed BLOB NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE tenants (
    id TEXT PRIMARY KEY,
    display_name TEXT NOT NULL,
    is_system INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX tenants_one_system ON tenants (is_system) WHERE is_system = 1;

CREATE TABLE tenant_domains (
    domain TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    position INTEGER NOT NULL
);
CREATE INDEX tenant_domains_tenant ON tenant_domains (tenant_id);

CREATE TABLE signing_keys (
    kid TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    alg TEXT NOT NULL,
    sealed_private_key BLOB NOT NULL,
    public_x TEXT NOT NULL,
    public_y TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    retired_at INTEGER
);
CREATE INDEX signing_keys_tenant ON signing_keys (tenant_id, created_at);

CREATE TABLE applications (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    app_id TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    sign_in_audience TEXT NOT NULL,
    identifier_uris TEXT NOT NULL,
    is_fallback_public_client INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX applications_tenant ON applications (tenant_id, created_at);

CREATE TABLE application_identifier_uris (
    tenant_id TEXT NOT NULL,
    uri TEXT NOT NULL,
    application_id TEXT NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
    PRIMARY KEY (tenant_id, uri)
);
CREATE INDEX application_identifier_uris_app ON application_identifier_uris (application_id);

CREATE TABLE password_credentials (
    key_id TEXT PRIMARY KEY,
    application_id TEXT NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
    display_name TEXT,
    hint TEXT NOT NULL,
    secret_hash BLOB NOT NULL,
    start_at INTEGER NOT NULL,
    end_at INTEGER NOT NULL
);
CREATE INDEX password_credentials_app ON password_credentials (application_id);

CREATE TABLE key_credentials (
    key_id TEXT PRIMARY KEY,
    application_id TEXT NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
    display_name TEXT,
    thumbprint_sha1 TEXT NOT NULL,
    thumbprint_sha256 TEXT NOT NULL,
    der BLOB NOT NULL,
    start_at INTEGER NOT NULL,
    end_at INTEGER NOT NULL,
    UNIQUE (application_id, thumbprint_sha1)
);

CREATE TABLE service_principals (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    app_id TEXT NOT NULL,
    display_name TEXT NOT NULL,
    account_enabled INTEGER NOT NULL,
    app_owner_organization_id TEXT,
    created_at INTEGER NOT NULL,
    UNIQUE (tenant_id, app_id)
);

CREATE TABLE app_role_assignments (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    principal_id TEXT NOT NULL REFERENCES service_principals (id) ON DELETE CASCADE,
    resource_id TEXT NOT NULL REFERENCES service_principals (id) ON DELETE CASCADE,
    app_role_id TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (principal_id, resource_id, app_role_id)
);
CREATE INDEX app_role_assignments_resource ON app_role_assignments (resource_id);

CREATE TABLE users (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    user_principal_name TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    mail_nickname TEXT NOT NULL,
    account_enabled INTEGER NOT NULL,
    password_hash TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX users_tenant ON users (tenant_id, created_at);

CREATE TABLE client_assertions (
    client_id TEXT NOT NULL,
    jti TEXT NOT NULL,
    claims_hash BLOB NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (client_id, jti)
);
CREATE INDEX client_assertions_expiry ON client_assertions (expires_at);
