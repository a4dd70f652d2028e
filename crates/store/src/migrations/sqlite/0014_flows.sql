-- Cloud flows and their runs. A flow's trigger columns are copied out of its definition so a row
-- change finds the flows it triggers with one indexed query inside its own transaction; each
-- triggering change inserts its run there too (the run's id is the trigger event's), so no change
-- goes without its run and no run without its change. Workers claim queued runs under a lease.

CREATE TABLE flows (
    id TEXT PRIMARY KEY,
    environment_id TEXT NOT NULL REFERENCES environments (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    owner_id TEXT NOT NULL,
    state TEXT NOT NULL,
    definition TEXT NOT NULL,
    trigger_kind TEXT NOT NULL,
    trigger_entity TEXT,
    trigger_message BIGINT,
    trigger_attributes TEXT,
    created_at BIGINT NOT NULL,
    modified_at BIGINT NOT NULL,
    version BIGINT NOT NULL,
    UNIQUE (environment_id, name)
);
CREATE INDEX flows_trigger ON flows (environment_id, trigger_entity, state);

CREATE TABLE flow_runs (
    id TEXT PRIMARY KEY,
    flow_id TEXT NOT NULL REFERENCES flows (id) ON DELETE CASCADE,
    environment_id TEXT NOT NULL,
    status TEXT NOT NULL,
    trigger_outputs TEXT NOT NULL,
    attempt BIGINT NOT NULL,
    not_before BIGINT NOT NULL,
    lease_owner TEXT,
    lease_until BIGINT,
    created_at BIGINT NOT NULL,
    started_at BIGINT,
    ended_at BIGINT,
    error_code TEXT,
    error_message TEXT
);
CREATE INDEX flow_runs_queue ON flow_runs (status, not_before);
CREATE INDEX flow_runs_flow ON flow_runs (flow_id, created_at);

CREATE TABLE flow_run_actions (
    run_id TEXT NOT NULL REFERENCES flow_runs (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    inputs TEXT NOT NULL,
    outputs TEXT NOT NULL,
    connection_id TEXT,
    identity TEXT,
    error_code TEXT,
    error_message TEXT,
    started_at BIGINT NOT NULL,
    ended_at BIGINT NOT NULL,
    PRIMARY KEY (run_id, name)
);
