//! Why a Web API request was refused, in Dataverse's terms; the HTTP layer gives each its
//! status and `0x8004…` code.

use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DataverseError {
    /// No usable token for this environment (401).
    #[error("{0}")]
    Unauthenticated(String),
    /// The caller is not a user of this environment (403).
    #[error("{0}")]
    NotAMember(String),
    #[error("The user is disabled: {0}")]
    UserDisabled(String),
    /// A person without a license (Dataverse's UserNotAssignedLicense, 403 0x8004d24b).
    #[error("The user has not been assigned any License: {0}")]
    Unlicensed(String),
    /// A privilege is missing (403, 0x80040220).
    #[error("{0}")]
    MissingPrivilege(String),
    /// 404, 0x80040217.
    #[error("{entity} With Id = {id} Does Not Exist")]
    RecordNotFound { entity: String, id: String },
    /// A row with the same key exists (412, 0x80040237).
    #[error("A record with matching key values already exists.")]
    Duplicate,
    /// The row changed since the caller read it (412, 0x80060882).
    #[error("The version of the existing record doesn't match the RowVersion property provided.")]
    VersionMismatch,
    /// An unknown path segment (404, 0x8006088a).
    #[error("Resource not found for the segment '{0}'.")]
    UnknownSegment(String),
    /// A query or body Dataverse would not accept (400, 0x80060888).
    #[error("{0}")]
    Syntax(String),
    /// A request Keyway does not support (400, naming the feature).
    #[error("{0}")]
    Unsupported(String),
}
