//! What every request handler can reach: configuration, the store, keys, the clock, metrics.

use std::sync::Arc;

use keyway_core::Clock;
use keyway_crypto::secret::SecretHasher;
use keyway_store::SqlStore;

use crate::config::Config;
use crate::services::directory_cache::DirectoryCache;
use crate::services::signing::SigningKeys;
use crate::services::tenants::TenantCache;
use crate::services::tokens::RateLimiter;

#[derive(Clone)]
pub struct AppState(pub Arc<Inner>);

pub struct Inner {
    pub config: Config,
    pub store: Arc<SqlStore>,
    pub clock: Arc<dyn Clock>,
    /// The master keys, swapped whole by a rotation.
    pub key_ring: crate::keys::MasterKeys,
    /// The unwrapped data keys that seal secrets.
    pub vault: crate::services::vault::Vault,
    pub secrets: SecretHasher,
    pub signing: SigningKeys,
    pub tenants: TenantCache,
    /// Clients and resources as the token endpoint reads them; cleared by every directory write.
    pub directory: DirectoryCache,
    pub rate_limiter: Option<RateLimiter>,
    /// The URL clients reach this server at when the request names no usable host.
    pub base_url: String,
    pub metrics: metrics_exporter_prometheus::PrometheusHandle,
    /// Calls to other servers on a connection's behalf.
    pub outbound: crate::services::outbound::Outbound,
    /// Tokens connections obtained, reused until shortly before they expire.
    pub connection_tokens: crate::services::connection_tokens::TokenCache,
    /// Signalled when flow runs were queued, so an idle run worker starts at once.
    pub flow_wake: Arc<tokio::sync::Notify>,
}

impl Inner {
    /// Is `host` (a name or address, without port) one this server answers to?
    pub fn is_our_host(&self, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        ["localhost", "127.0.0.1", "::1"].contains(&host.as_str())
            || self
                .config
                .hostnames
                .iter()
                .any(|h| h.eq_ignore_ascii_case(&host))
            || host_of_url(&self.base_url).is_some_and(|b| b == host)
    }
}

/// The host of `scheme://host[:port]/…`, lower-case, without brackets or port.
pub fn host_of_url(url: &str) -> Option<String> {
    let rest = url.split("://").nth(1)?;
    Some(host_of_authority(rest.split('/').next()?))
}

/// `host[:port]` or `[v6]:port` → the host, lower-case.
pub fn host_of_authority(authority: &str) -> String {
    if let Some(rest) = authority.strip_prefix('[') {
        return rest
            .split(']')
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
    }
    authority
        .rsplit_once(':')
        .map(|(h, _)| h)
        .unwrap_or(authority)
        .to_ascii_lowercase()
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}
