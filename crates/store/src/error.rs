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
    /// The row does not exist.
    #[error("no such row")]
    RowMissing,
    /// The row exists but the caller's scope does not reach it.
    #[error("the row is outside the caller's scope")]
    RowOutOfScope,
    /// The row changed since the version the caller named.
    #[error("the row's version is not the one expected")]
    VersionMismatch,
    /// A query that names what the table does not have, or asks what Keyway cannot do.
    #[error("{message}")]
    InvalidQuery { message: String, unsupported: bool },
}
