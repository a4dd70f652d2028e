//! Keyway's domain: tenants, applications, credentials, principals, users, scopes and time.
//! No I/O and no async here: the server and the store build on these types.

pub mod clock;
pub mod connections;
pub mod dataverse;
pub mod directory;
pub mod environment;
pub mod flows;
pub mod graph_roles;
pub mod odata;
pub mod scope;
pub mod solutions;
pub mod token;
pub mod wire;

pub use clock::{Clock, ManualClock, SystemClock};
