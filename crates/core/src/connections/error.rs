//! What can go wrong with a connection request, in domain words; each API family (Power Platform
//! connectivity, Flow Service) maps these to its own wire shape in one place.

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectionError {
    /// No such connection in this scope (or the caller may not know of it): 404.
    #[error("{0}")]
    NotFound(String),
    /// An unknown connector or parameter set: 404.
    #[error("{0}")]
    UnknownConnector(String),
    /// A parameter value the connector refuses: 400, naming the field.
    #[error("{message}")]
    InvalidParameter { field: String, message: String },
    /// A malformed request: 400.
    #[error("{0}")]
    BadRequest(String),
    /// The caller may not do this to this connection: 403.
    #[error("{0}")]
    Forbidden(String),
    /// The name is taken: 409.
    #[error("{0}")]
    Conflict(String),
    /// The connection changed since the caller read it, or no etag was sent: 412 / 428.
    #[error("{0}")]
    Precondition(String),
}
