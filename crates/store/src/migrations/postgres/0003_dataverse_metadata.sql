-- Each environment's table and column metadata. The rows of each table live in a real SQL table
-- of its own, named dv<environment number>_<logical name>, made from these rows.

CREATE TABLE dv_entities (
    environment_id TEXT NOT NULL REFERENCES environments (id) ON DELETE CASCADE,
    logical_name TEXT NOT NULL,
    schema_name TEXT NOT NULL,
    entity_set_name TEXT NOT NULL,
    primary_id TEXT NOT NULL,
    primary_name TEXT NOT NULL,
    object_type_code BIGINT NOT NULL,
    ownership TEXT NOT NULL,
    is_custom BOOLEAN NOT NULL,
    audited BOOLEAN NOT NULL,
    metadata_id TEXT NOT NULL,
    position BIGINT NOT NULL,
    PRIMARY KEY (environment_id, logical_name),
    UNIQUE (environment_id, entity_set_name)
);

CREATE TABLE dv_attributes (
    environment_id TEXT NOT NULL,
    entity TEXT NOT NULL,
    logical_name TEXT NOT NULL,
    schema_name TEXT NOT NULL,
    attribute_type TEXT NOT NULL,
    max_length BIGINT,
    required BOOLEAN NOT NULL,
    target TEXT,
    system BOOLEAN NOT NULL,
    metadata_id TEXT NOT NULL,
    position BIGINT NOT NULL,
    PRIMARY KEY (environment_id, entity, logical_name),
    FOREIGN KEY (environment_id, entity) REFERENCES dv_entities (environment_id, logical_name) ON DELETE CASCADE
);
