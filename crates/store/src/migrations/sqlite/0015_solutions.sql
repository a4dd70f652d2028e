-- Solutions (seed 002's ALM): a named, versioned set of an environment's components, exported
-- as one archive and imported into another environment. Components are kept by kind and name and
-- read when the solution is exported, so the archive always holds what the environment has now.
-- A flow names connection references (Power Automate's clientdata `connectionReferences`),
-- which each environment binds to its own connection.

ALTER TABLE flows ADD COLUMN connection_references TEXT NOT NULL DEFAULT '{}';

CREATE TABLE solutions (
    id TEXT PRIMARY KEY,
    environment_id TEXT NOT NULL REFERENCES environments (id) ON DELETE CASCADE,
    unique_name TEXT NOT NULL,
    friendly_name TEXT NOT NULL,
    publisher_prefix TEXT NOT NULL,
    version TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    modified_at BIGINT NOT NULL,
    UNIQUE (environment_id, unique_name)
);

CREATE TABLE solution_components (
    solution_id TEXT NOT NULL REFERENCES solutions (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    PRIMARY KEY (solution_id, kind, name)
);
