//! `keyway serve`: configuration from flags and environment, logs, and a graceful stop.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, ValueEnum};
use keyway_server::{App, Config, TlsMode};

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Where Keyway keeps its database (SQLite), keys, CA and admin.json.
    #[arg(long, env = "KEYWAY_DATA_DIR", default_value = "keyway-data")]
    data_dir: PathBuf,
    /// Address and port to listen on (port 0 picks a free one).
    #[arg(long, env = "KEYWAY_LISTEN", default_value = "127.0.0.1:8443")]
    listen: SocketAddr,
    /// Use PostgreSQL (postgres://…) instead of the embedded SQLite.
    #[arg(long, env = "KEYWAY_DATABASE_URL")]
    database_url: Option<String>,
    /// Another name for the server certificate and issuer URLs (repeatable).
    #[arg(long = "hostname")]
    hostnames: Vec<String>,
    /// Your own certificate chain (PEM) instead of Keyway's local CA.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key (PEM) for --tls-cert.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Plain HTTP, for running behind a TLS-terminating proxy.
    #[arg(long, conflicts_with_all = ["tls_cert", "tls_key"])]
    plain_http: bool,
    /// The URL clients use to reach Keyway, when it differs from the listening address.
    #[arg(long, env = "KEYWAY_PUBLIC_URL")]
    public_url: Option<String>,
    /// Also reach each environment at https://<name>.<domain> (DNS and certificate are yours).
    #[arg(long, env = "KEYWAY_ENVIRONMENT_DOMAIN")]
    environment_domain: Option<String>,
    /// The domain name of the tenant made at first start.
    #[arg(long, default_value = "keyway.local")]
    tenant_domain: String,
    /// Token requests per second per client address (0 turns the limit off).
    #[arg(long, default_value_t = 200)]
    rate_limit: u32,
    /// Burst allowed above --rate-limit.
    #[arg(long, default_value_t = 400)]
    rate_limit_burst: u32,
    /// Days before a connection's secret or certificate expires when it starts warning (in its
    /// status, `keyway connection list` and /metrics).
    #[arg(
        long,
        default_value_t = 14,
        env = "KEYWAY_CONNECTION_EXPIRY_WARNING_DAYS"
    )]
    connection_expiry_warning_days: i64,
    /// Log lines as text or JSON.
    #[arg(long, value_enum, default_value = "text", env = "KEYWAY_LOG_FORMAT")]
    log_format: LogFormat,
}

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_env("KEYWAY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    match args.log_format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
    let mut config = Config::new(&args.data_dir, args.listen);
    config.database_url = args.database_url;
    config.hostnames = args.hostnames;
    config.public_url = args.public_url;
    config.bootstrap_domain = args.tenant_domain;
    config.environment_domain = args
        .environment_domain
        .map(|d| d.trim_matches('.').to_ascii_lowercase());
    config.rate_limit_per_second = args.rate_limit;
    config.rate_limit_burst = args.rate_limit_burst;
    config.connection_expiry_warning_days = args.connection_expiry_warning_days.max(0);
    config.tls = match (args.plain_http, args.tls_cert, args.tls_key) {
        (true, _, _) => TlsMode::Plain,
        (false, Some(cert), Some(key)) => TlsMode::Files { cert, key },
        _ => TlsMode::Auto,
    };
    let master_key = std::env::var("KEYWAY_MASTER_KEY").ok();
    // Older keys still accepted for opening while `keyway keys rotate` re-wraps (comma-separated).
    config.previous_master_keys = std::env::var("KEYWAY_MASTER_KEY_PREVIOUS")
        .map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|k| !k.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let app = App::build(config, Arc::new(keyway_core::SystemClock), master_key)
        .await
        .context("starting Keyway")?;
    let handle = app.handle();
    let mut out = std::io::stdout();
    writeln!(out, "Keyway listening on {}", app.base_url)?;
    if let Some(ca) = &app.ca_path {
        writeln!(
            out,
            "Trust its CA: export REQUESTS_CA_BUNDLE={0} NODE_EXTRA_CA_CERTS={0}",
            ca.display()
        )?;
    }
    writeln!(out, "Administrator profile: {}", app.profile_path.display())?;
    out.flush()?;
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("stopping: finishing requests in flight");
        handle.graceful_shutdown(Some(std::time::Duration::from_secs(10)));
    });
    app.serve().await
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {},
                    _ = term.recv() => {},
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
