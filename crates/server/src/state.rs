//! What every request handler can reach: configuration, the store, keys, the clock, metrics.

use std::sync::Arc;

use keyway_core::Clock;
use keyway_crypto::seal::KeyRing;
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
    pub key_ring: Arc<KeyRing>,
    pub secrets: SecretHasher,
    pub signing: SigningKeys,
    pub tenants: TenantCache,
    /// Clients and resources as the token endpoint reads them; cleared by every directory write.
    pub directory: DirectoryCache,
    pub rate_limiter: Option<RateLimiter>,
    /// The URL clients reach this server at when the request names no usable host.
    pub base_url: String,
    pub metrics: metrics_exporter_prometheus::PrometheusHandle,
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}
