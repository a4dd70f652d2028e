-- The Flow Service's organizations (`<id>@AdobeOrg`), each bound to one Keyway tenant whose
-- principals may act in it, and their sandboxes (`prod` is made with the organization).
-- A connection's scope is `<org>/<sandbox>`.

CREATE TABLE flowservice_orgs (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    display_name TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX flowservice_orgs_tenant ON flowservice_orgs (tenant_id);

CREATE TABLE flowservice_sandboxes (
    org_id TEXT NOT NULL REFERENCES flowservice_orgs (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (org_id, name)
);
