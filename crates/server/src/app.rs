//! Building and running a server: data directory, key ring, store, TLS, first-start bootstrap,
//! background workers, and the listener.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use anyhow::Context;
use keyway_core::Clock;
use keyway_core::wire::Profile;
use keyway_crypto::secret::SecretHasher;
use keyway_store::{DirectoryStore, StoreError};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::config::{Config, TlsMode};
use crate::files::write_private;
use crate::services::signing::SigningKeys;
use crate::services::tenants::{self, TenantCache};
use crate::services::tokens::RateLimiter;
use crate::services::vault::Vault;
use crate::state::{AppState, Inner};
use crate::{keys, tls, workers};

pub struct App {
    pub addr: SocketAddr,
    pub base_url: String,
    /// The CA clients must trust, when Keyway made its own.
    pub ca_path: Option<PathBuf>,
    /// Where the administrator's credentials were written (first start only keeps the secret).
    pub profile_path: PathBuf,
    pub state: AppState,
    listener: std::net::TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    handle: axum_server::Handle<SocketAddr>,
}

/// The process-wide Prometheus recorder (the metrics facade allows one).
fn metrics_handle() -> anyhow::Result<PrometheusHandle> {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    if let Some(h) = HANDLE.get() {
        return Ok(h.clone());
    }
    let handle = PrometheusBuilder::new()
        .install_recorder()
        .or_else(|_| Ok::<_, anyhow::Error>(PrometheusBuilder::new().build_recorder().handle()))?;
    Ok(HANDLE.get_or_init(|| handle).clone())
}

const PEPPER: &str = "client-secret-pepper";

impl App {
    pub async fn build(
        config: Config,
        clock: Arc<dyn Clock>,
        master_key: Option<String>,
    ) -> anyhow::Result<Self> {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        std::fs::create_dir_all(&config.data_dir).with_context(|| {
            format!("creating the data directory {}", config.data_dir.display())
        })?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ =
                std::fs::set_permissions(&config.data_dir, std::fs::Permissions::from_mode(0o700));
        }
        let key_ring = keys::load(
            &config.data_dir,
            master_key.as_deref(),
            &config.previous_master_keys,
        )?;
        let store = keyway_store::open(&config.database_url())
            .await
            .with_context(|| "opening the database")?;
        crate::services::builtin_tables::ensure(&store, clock.now())
            .await
            .with_context(|| "adding new built-in tables to existing environments")?;

        let now = clock.now();
        let fresh = zeroize::Zeroizing::new(keyway_crypto::random::bytes::<32>());
        let sealed = key_ring.seal(fresh.as_slice(), &keys::server_secret_aad(PEPPER))?;
        let stored = store
            .server_secret_get_or_insert(PEPPER, sealed, now)
            .await?;
        let pepper_bytes = key_ring
            .open(&stored, &keys::server_secret_aad(PEPPER))
            .context("the master key does not open this database's secrets: is KEYWAY_MASTER_KEY or master.key the one it was made with?")?;
        let vault = Vault::load(store.as_ref(), &key_ring.ring(), now).await?;
        let pepper: [u8; 32] = pepper_bytes
            .as_slice()
            .try_into()
            .map_err(|_| anyhow::anyhow!("the stored pepper is not 32 bytes"))?;

        let listener = std::net::TcpListener::bind(config.listen)
            .with_context(|| format!("listening on {}", config.listen))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let base_url = match &config.public_url {
            Some(u) => u.trim_end_matches('/').to_string(),
            None => {
                let host = match addr.ip() {
                    IpAddr::V4(ip) if ip.is_unspecified() => "localhost".to_string(),
                    IpAddr::V6(ip) if ip.is_unspecified() => "localhost".to_string(),
                    IpAddr::V6(ip) => format!("[{ip}]"),
                    IpAddr::V4(ip) => ip.to_string(),
                };
                format!("{}://{host}:{}", config.scheme(), addr.port())
            }
        };
        let (tls, ca_path) = match &config.tls {
            TlsMode::Auto => (
                Some(tls::auto(&config.data_dir, &config.hostnames, now)?),
                Some(tls::ca_path(&config.data_dir)),
            ),
            TlsMode::Files { cert, key } => (Some(tls::from_files(cert, key)?), None),
            TlsMode::Plain => (None, None),
        };

        let rate_limiter = RateLimiter::new(config.rate_limit_per_second, config.rate_limit_burst);
        let profile_path = config.data_dir.join("admin.json");
        let state = AppState(Arc::new(Inner {
            store,
            clock,
            key_ring,
            vault,
            secrets: SecretHasher::new(&pepper),
            signing: SigningKeys::default(),
            tenants: TenantCache::default(),
            directory: Default::default(),
            rate_limiter,
            base_url: base_url.clone(),
            metrics: metrics_handle()?,
            outbound: crate::services::outbound::Outbound::new(
                ca_path.as_ref().map(std::fs::read).transpose()?.as_deref(),
            )?,
            connection_tokens: Default::default(),
            flow_wake: Default::default(),
            config,
        }));
        bootstrap(&state, &profile_path, ca_path.as_ref()).await?;
        Ok(Self {
            addr,
            base_url,
            ca_path,
            profile_path,
            state,
            listener,
            tls,
            handle: axum_server::Handle::new(),
        })
    }

    /// A handle to stop the server (gracefully or at once).
    pub fn handle(&self) -> axum_server::Handle<SocketAddr> {
        self.handle.clone()
    }

    pub async fn serve(self) -> anyhow::Result<()> {
        workers::spawn(self.state.clone());
        crate::services::flow_runs::spawn(self.state.clone());
        // Host routing rewrites the path, so it wraps the router rather than running inside it.
        let rewrite = crate::http::route_by_host(self.state.config.environment_domain.clone());
        let router = crate::http::router(self.state.clone());
        // Flow actions calling this server go through the router in process while it serves.
        let local = Arc::new(router.clone());
        self.state.outbound.serve_locally(&local);
        let app = axum::ServiceExt::<axum::http::Request<hyper::body::Incoming>>::into_make_service_with_connect_info::<SocketAddr>(
            tower::ServiceExt::<axum::http::Request<hyper::body::Incoming>>::map_request(router, rewrite),
        );
        match self.tls {
            Some(tls) => {
                let config = axum_server::tls_rustls::RustlsConfig::from_config(tls);
                axum_server::tls_rustls::from_tcp_rustls(self.listener, config)?
                    .handle(self.handle)
                    .serve(app)
                    .await?
            }
            None => {
                axum_server::from_tcp(self.listener)?
                    .handle(self.handle)
                    .serve(app)
                    .await?
            }
        }
        drop(local);
        Ok(())
    }
}

/// First start: make the system tenant and its administrator, and write their credentials once
/// to admin.json (0600). Later starts only refresh the URL and CA path in that file.
async fn bootstrap(
    state: &AppState,
    profile_path: &std::path::Path,
    ca_path: Option<&PathBuf>,
) -> anyhow::Result<()> {
    let ca = ca_path.map(|p| p.display().to_string());
    if state.store.tenant_system().await?.is_none() {
        let now = state.clock.now();
        let (birth, secret) = tenants::birth(
            state,
            "Keyway",
            vec![state.config.bootstrap_domain.clone()],
            true,
            now,
        )
        .map_err(|e| anyhow::anyhow!("bootstrap: {e}"))?;
        match state.store.tenant_create(&birth).await {
            Ok(()) => {
                let profile = Profile {
                    tenant_id: birth.tenant.id,
                    client_id: birth.admin_app.app_id,
                    client_secret: secret.to_string(),
                    base_url: state.base_url.clone(),
                    ca_path: ca,
                };
                write_private(
                    profile_path,
                    serde_json::to_string_pretty(&profile)?.as_bytes(),
                )
                .with_context(|| format!("writing {}", profile_path.display()))?;
                tracing::info!(tenant = %birth.tenant.id, path = %profile_path.display(), "created the system tenant; administrator credentials written");
                return Ok(());
            }
            // Another node bootstrapped the same database first.
            Err(StoreError::Conflict(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    if profile_path.exists() {
        let mut profile: Profile = serde_json::from_slice(&std::fs::read(profile_path)?)
            .with_context(|| format!("{} is not a Keyway profile", profile_path.display()))?;
        if profile.base_url != state.base_url || profile.ca_path != ca {
            profile.base_url = state.base_url.clone();
            profile.ca_path = ca;
            write_private(
                profile_path,
                serde_json::to_string_pretty(&profile)?.as_bytes(),
            )?;
        }
    }
    Ok(())
}
