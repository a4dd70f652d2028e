//! What a running server is told: where its data lives, where it listens, how it speaks TLS.

use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsMode {
    /// Keyway's own CA and a server certificate made at start (the default).
    Auto,
    /// A certificate chain and key given by the operator.
    Files { cert: PathBuf, key: PathBuf },
    /// Plain HTTP, for running behind a TLS-terminating proxy.
    Plain,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    /// `postgres://…`; SQLite in the data directory when absent.
    pub database_url: Option<String>,
    pub tls: TlsMode,
    /// Extra names for the server certificate and for issuer URLs.
    pub hostnames: Vec<String>,
    /// The URL clients use, when it differs from the listening address (behind a proxy).
    pub public_url: Option<String>,
    /// With a domain, environments are also reached at `https://<name>.<domain>` (Host routing).
    pub environment_domain: Option<String>,
    /// The domain name of the tenant made at first start.
    pub bootstrap_domain: String,
    /// Token requests per second per client address; 0 turns the limit off.
    pub rate_limit_per_second: u32,
    pub rate_limit_burst: u32,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Connections warn this many days before the credential they use expires.
    pub connection_expiry_warning_days: i64,
    /// Older master keys (base64) still accepted for opening, with `KEYWAY_MASTER_KEY`.
    pub previous_master_keys: Vec<String>,
}

impl Config {
    pub fn new(data_dir: impl Into<PathBuf>, listen: SocketAddr) -> Self {
        Self {
            data_dir: data_dir.into(),
            listen,
            database_url: None,
            tls: TlsMode::Auto,
            hostnames: Vec::new(),
            public_url: None,
            environment_domain: None,
            bootstrap_domain: "keyway.local".into(),
            rate_limit_per_second: 200,
            rate_limit_burst: 400,
            max_body_bytes: 1024 * 1024,
            connection_expiry_warning_days: 14,
            previous_master_keys: Vec::new(),
        }
    }

    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.clone(),
            None => format!("sqlite://{}", self.data_dir.join("keyway.db").display()),
        }
    }

    pub fn scheme(&self) -> &'static str {
        match self.tls {
            TlsMode::Plain => "http",
            _ => "https",
        }
    }
}
