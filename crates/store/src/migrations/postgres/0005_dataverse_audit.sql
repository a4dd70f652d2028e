-- Each environment's audit history: append-only, one hash chain per environment (seq orders it,
-- hash covers the previous row's hash and this row's canonical bytes).

CREATE TABLE dv_audit (
    environment_id TEXT NOT NULL REFERENCES environments (id) ON DELETE CASCADE,
    seq BIGINT NOT NULL,
    auditid TEXT NOT NULL UNIQUE,
    action BIGINT NOT NULL,
    operation BIGINT NOT NULL,
    entity TEXT NOT NULL,
    objecttypecode BIGINT NOT NULL,
    objectid TEXT NOT NULL,
    userid TEXT NOT NULL,
    callinguserid TEXT,
    transactionid TEXT NOT NULL,
    createdon BIGINT NOT NULL,
    attributemask TEXT NOT NULL,
    changedata TEXT NOT NULL,
    hash BYTEA NOT NULL,
    PRIMARY KEY (environment_id, seq)
);
CREATE INDEX dv_audit_object ON dv_audit (environment_id, objectid, seq);

-- The head of each environment's chain, written with every audit row: removing the newest row
-- is detected too.
ALTER TABLE environments ADD COLUMN audit_seq BIGINT NOT NULL DEFAULT 0;
ALTER TABLE environments ADD COLUMN audit_hash BYTEA;
