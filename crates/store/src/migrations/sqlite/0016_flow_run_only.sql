-- Run-only users of instant flows (seed 004): system users or teams of the flow's environment the
-- owner lets start the flow (with their own connections where the flow asks for them) without
-- reading or editing it. Gone with the flow.

CREATE TABLE flow_run_only (
    flow_id TEXT NOT NULL REFERENCES flows (id) ON DELETE CASCADE,
    principal_id TEXT NOT NULL,
    principal_kind TEXT NOT NULL,
    granted_by TEXT NOT NULL,
    granted_at BIGINT NOT NULL,
    PRIMARY KEY (flow_id, principal_id)
);
CREATE INDEX flow_run_only_principal ON flow_run_only (principal_id);
