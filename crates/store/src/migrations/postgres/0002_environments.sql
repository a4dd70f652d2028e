-- Environments: a tenant's record stores, each reached at its own URL.

CREATE TABLE environments (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name TEXT NOT NULL UNIQUE,
    number BIGINT NOT NULL UNIQUE,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX environments_tenant ON environments (tenant_id, name);

-- Every number ever given out, so a number (and the table names made from it) is never reused.
CREATE TABLE environment_numbers (
    number BIGINT PRIMARY KEY
);
