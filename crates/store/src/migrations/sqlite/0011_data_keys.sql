-- Data keys for envelope encryption: secrets (connection secrets) are sealed under a data key,
-- and each data key is stored only wrapped (sealed) by the master key ring, its id bound as
-- associated data. Rotating the master key re-wraps these rows and nothing else. The newest
-- generation seals; generation is unique so nodes starting together agree on one key.

CREATE TABLE data_keys (
    id TEXT PRIMARY KEY,
    generation BIGINT NOT NULL UNIQUE,
    wrapped BLOB NOT NULL,
    created_at BIGINT NOT NULL
);
