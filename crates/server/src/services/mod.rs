//! Use cases, free of HTTP: each takes the state, the caller and validated input, and returns a
//! domain result or a `ServiceError`.

pub mod applications;
pub mod audit_read;
pub mod builtin_tables;
pub mod caller;
pub mod connection_auth;
pub mod connection_identity;
pub mod connection_tokens;
pub mod connections;
pub mod customization;
pub mod directory_cache;
pub mod env_security;
pub mod environments;
pub mod flow_actions;
pub mod flow_run_only;
pub mod flow_runs;
pub mod flow_variables;
pub mod flows;
pub mod flowservice;
pub mod flowservice_query;
pub mod master_keys;
pub mod metadata;
pub mod outbound;
pub mod principals;
pub mod records;
pub mod recurrence;
pub mod reference_binding;
pub mod roles;
pub mod sharing;
pub mod signing;
pub mod solutions;
pub mod tenants;
pub mod tokens;
pub mod users;
pub mod variable_binding;
pub mod vault;
pub mod webapi;

use keyway_core::directory::DirectoryError;
use keyway_core::token::TokenError;
use keyway_store::StoreError;

/// The service layer's one error type; `http::error` maps it to each API family's wire shape.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Directory(#[from] DirectoryError),
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error(transparent)]
    Dataverse(#[from] keyway_core::dataverse::error::DataverseError),
    /// Boxed: it is the largest variant, and errors travel by value through every handler.
    #[error(transparent)]
    Connection(Box<keyway_core::connections::ConnectionError>),
    /// No usable bearer token.
    #[error("{0}")]
    Unauthenticated(String),
    /// A valid caller without the permission needed.
    #[error("{0}")]
    Forbidden(String),
    /// Logged with the request id; the client sees only a generic message.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<keyway_core::connections::ConnectionError> for ServiceError {
    fn from(e: keyway_core::connections::ConnectionError) -> Self {
        Self::Connection(Box::new(e))
    }
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(_) => Self::Directory(DirectoryError::Conflict(
                "an object with the same unique value already exists".into(),
            )),
            other => Self::Internal(other.to_string()),
        }
    }
}

impl From<keyway_crypto::CryptoError> for ServiceError {
    fn from(e: keyway_crypto::CryptoError) -> Self {
        Self::Internal(e.to_string())
    }
}

pub type Result<T> = std::result::Result<T, ServiceError>;
