//! Connections: stored authentication contexts that flows use to act as an identity — the
//! connectors and their parameter sets, values checked against them, and who may use, edit and
//! share a connection.

pub mod catalog;
pub mod error;
pub mod model;
pub mod permissions;
pub mod values;

pub use catalog::{AuthKind, Connector, ParameterSet, SharingPolicy, connector, connectors};
pub use error::ConnectionError;
pub use model::{Api, Connection, Identity, Proof, Status};
pub use permissions::{PrincipalKind, Role, ShareRefused, may_share};
pub use values::{Checked, MASK, ValueError};
