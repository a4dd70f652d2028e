//! Keyway's server: the Entra-shaped token service, the Graph-shaped management API and the
//! operations endpoints, over the store.

pub mod app;
pub mod config;
mod files;
pub mod http;
pub mod keys;
pub mod services;
pub mod state;
pub mod tls;
mod workers;

pub use app::App;
pub use config::{Config, TlsMode};
pub use files::write_private;
