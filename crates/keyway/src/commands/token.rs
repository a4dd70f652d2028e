//! `keyway token get`: a token by client credentials, with a secret or a certificate.

use anyhow::Context;
use base64::Engine;
use clap::Subcommand;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use keyway_core::token::CLIENT_ASSERTION_TYPE;
use keyway_crypto::certificate::Certificate;
use uuid::Uuid;

use crate::Global;
use crate::client::Client;
use crate::output;

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Get an access token with client credentials (the profile's own when no --client-id).
    Get {
        /// The application (client) id; its secret comes from KEYWAY_CLIENT_SECRET or --client-secret-stdin.
        #[arg(long)]
        client_id: Option<Uuid>,
        /// Read the client secret from standard input.
        #[arg(long)]
        client_secret_stdin: bool,
        /// Authenticate with a certificate (PEM) instead of a secret; needs --key.
        #[arg(long, requires = "key")]
        certificate: Option<std::path::PathBuf>,
        /// The certificate's private key (PEM, RSA).
        #[arg(long, requires = "certificate")]
        key: Option<std::path::PathBuf>,
        /// `{resource}/.default`.
        #[arg(long, default_value = "https://graph.microsoft.com/.default")]
        scope: String,
        /// Print only the access token.
        #[arg(long)]
        raw: bool,
    },
}

fn assertion(
    cert_path: &std::path::Path,
    key_path: &std::path::Path,
    client_id: &str,
    audience: &str,
) -> anyhow::Result<String> {
    let cert_text = std::fs::read_to_string(cert_path)
        .with_context(|| format!("reading {}", cert_path.display()))?;
    let cert = Certificate::from_text(
        cert_text
            .split_inclusive("-----END CERTIFICATE-----")
            .find(|b| b.contains("BEGIN CERTIFICATE"))
            .context("no certificate in the PEM file")?,
    )?;
    let key_pem =
        std::fs::read(key_path).with_context(|| format!("reading {}", key_path.display()))?;
    let key =
        EncodingKey::from_rsa_pem(&key_pem).context("the key must be an RSA private key in PEM")?;
    let mut header = Header::new(Algorithm::PS256);
    header.x5t_s256 = Some(cert.x5t_s256());
    #[allow(clippy::disallowed_methods)] // a client stamping its own assertion
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let claims = serde_json::json!({
        "aud": audience, "iss": client_id, "sub": client_id,
        "jti": Uuid::new_v4().to_string(), "iat": now, "nbf": now, "exp": now + 300,
    });
    jsonwebtoken::encode(&header, &claims, &key).context("signing the client assertion")
}

pub async fn run(global: &Global, cmd: TokenCommand) -> anyhow::Result<()> {
    let c = Client::new(global)?;
    let TokenCommand::Get {
        client_id,
        client_secret_stdin,
        certificate,
        key,
        scope,
        raw,
    } = cmd;
    let id = client_id.unwrap_or(c.profile.client_id).to_string();
    let mut form: Vec<(&str, String)> = vec![
        ("grant_type", "client_credentials".into()),
        ("client_id", id.clone()),
        ("scope", scope),
    ];
    match (certificate, key) {
        (Some(cert), Some(key)) => {
            let aud = c.url(&format!("/{}/oauth2/v2.0/token", c.profile.tenant_id));
            form.push(("client_assertion_type", CLIENT_ASSERTION_TYPE.into()));
            form.push(("client_assertion", assertion(&cert, &key, &id, &aud)?));
        }
        _ => {
            let secret = if client_secret_stdin {
                let mut line = String::new();
                std::io::stdin().read_line(&mut line)?;
                line.trim_end_matches(['\r', '\n']).to_string()
            } else if client_id.is_none() {
                c.profile.client_secret.clone()
            } else {
                std::env::var("KEYWAY_CLIENT_SECRET")
                    .context("give the secret with --client-secret-stdin or KEYWAY_CLIENT_SECRET")?
            };
            form.push(("client_secret", secret));
        }
    }
    let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let t = c.token_for(&pairs).await?;
    if raw {
        println!("{}", t.access_token);
        return Ok(());
    }
    let claims = t
        .access_token
        .split('.')
        .nth(1)
        .and_then(|p| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(p)
                .ok()
        })
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .unwrap_or_default();
    output::pairs(
        global.output,
        &t,
        vec![
            (
                "aud",
                claims["aud"].as_str().unwrap_or_default().to_string(),
            ),
            (
                "roles",
                claims["roles"]
                    .as_array()
                    .map(|r| {
                        r.iter()
                            .filter_map(|x| x.as_str())
                            .collect::<Vec<_>>()
                            .join(" ")
                    })
                    .unwrap_or_default(),
            ),
            ("expires_in", t.expires_in.to_string()),
            ("access_token", t.access_token.clone()),
        ],
    )
}
