//! The store's one error type. Database text stays here and in the log, never on the wire.

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule was broken (the caller explains which in its own words).
    #[error("conflict: {0}")]
    Conflict(String),
    /// A referenced row does not exist.
    #[error("missing reference: {0}")]
    MissingReference(String),
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("database configuration: {0}")]
    Config(String),
    #[error("database error: {0}")]
    Database(String),
    /// A query that names what the table does not have, or asks what Keyway cannot do.
    #[error("{message}")]
    InvalidQuery { message: String, unsupported: bool },
}
