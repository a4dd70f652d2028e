//! `keyway app …`: registrations, secrets and certificates.

use anyhow::{Context, bail};
use clap::Subcommand;
use keyway_core::wire::{
    AddPasswordRequest, ApplicationInput, ApplicationView, KeyCredentialInput,
    PasswordCredentialInput, PasswordCredentialView, RemovePasswordRequest,
};
use reqwest::Method;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::Global;
use crate::client::Client;
use crate::output::{self, date};

#[derive(Subcommand)]
pub enum AppCommand {
    /// Register an application.
    Create {
        name: String,
        /// An identifier URI, so the app can be a resource (repeatable), e.g. api://orders.
        #[arg(long = "identifier-uri")]
        identifier_uris: Vec<String>,
        /// Allow the password grant without a client credential.
        #[arg(long)]
        public_client: bool,
    },
    /// List applications.
    List,
    /// Show one application (by object id or appId).
    Show { app: String },
    /// Delete an application and its service principal.
    Delete { app: String },
    /// Client secrets.
    Secret {
        #[command(subcommand)]
        command: SecretCommand,
    },
    /// Certificates.
    Cert {
        #[command(subcommand)]
        command: CertCommand,
    },
}

#[derive(Subcommand)]
pub enum SecretCommand {
    /// Add a secret; it is printed this once.
    Add {
        app: String,
        #[arg(long)]
        name: Option<String>,
        /// Lifetime in days (default 180, at most 730).
        #[arg(long)]
        days: Option<i64>,
    },
    /// List secrets (hints only, never values).
    List { app: String },
    /// Remove a secret by its key id.
    Remove { app: String, key_id: Uuid },
}

#[derive(Subcommand)]
pub enum CertCommand {
    /// Register a certificate (PEM) for client assertions.
    Add {
        app: String,
        #[arg(long)]
        pem: std::path::PathBuf,
        #[arg(long)]
        name: Option<String>,
    },
    /// List certificates.
    List { app: String },
    /// Remove a certificate by its key id.
    Remove { app: String, key_id: Uuid },
}

/// Find an application by object id or appId.
pub async fn find(c: &mut Client, reference: &str) -> anyhow::Result<ApplicationView> {
    let id = Uuid::parse_str(reference)
        .with_context(|| format!("'{reference}' is not an application id or appId"))?;
    let by_app_id: Vec<ApplicationView> = c
        .list(&format!("/v1.0/applications?$filter=appId eq '{id}'"))
        .await?;
    if let Some(a) = by_app_id.into_iter().next() {
        return Ok(a);
    }
    c.get(&format!("/v1.0/applications/{id}")).await
}

fn show_app(global: &Global, a: &ApplicationView) -> anyhow::Result<()> {
    output::pairs(
        global.output,
        a,
        vec![
            ("id", a.id.to_string()),
            ("appId", a.app_id.to_string()),
            ("displayName", a.display_name.clone()),
            ("identifierUris", a.identifier_uris.join(", ")),
            ("publicClient", a.is_fallback_public_client.to_string()),
            ("secrets", a.password_credentials.len().to_string()),
            ("certificates", a.key_credentials.len().to_string()),
            ("created", date(&a.created_date_time)),
        ],
    )
}

pub async fn run(global: &Global, cmd: AppCommand) -> anyhow::Result<()> {
    let mut c = Client::new(global)?;
    match cmd {
        AppCommand::Create {
            name,
            identifier_uris,
            public_client,
        } => {
            let input = ApplicationInput {
                display_name: Some(name),
                identifier_uris: Some(identifier_uris),
                is_fallback_public_client: Some(public_client),
                ..Default::default()
            };
            let a: ApplicationView = c.send(Method::POST, "/v1.0/applications", &input).await?;
            show_app(global, &a)?;
        }
        AppCommand::List => {
            let list: Vec<ApplicationView> = c.list("/v1.0/applications").await?;
            let rows = list
                .iter()
                .map(|a| {
                    vec![
                        a.app_id.to_string(),
                        a.display_name.clone(),
                        a.id.to_string(),
                        a.password_credentials.len().to_string(),
                        a.key_credentials.len().to_string(),
                    ]
                })
                .collect();
            output::show(
                global.output,
                &list,
                &["APP ID", "NAME", "OBJECT ID", "SECRETS", "CERTS"],
                rows,
            )?;
        }
        AppCommand::Show { app } => show_app(global, &find(&mut c, &app).await?)?,
        AppCommand::Delete { app } => {
            let a = find(&mut c, &app).await?;
            c.send_empty::<()>(
                Method::DELETE,
                &format!("/v1.0/applications/{}", a.id),
                None,
            )
            .await?;
            println!("deleted application {} ({})", a.display_name, a.app_id);
        }
        AppCommand::Secret { command } => secret(global, &mut c, command).await?,
        AppCommand::Cert { command } => cert(global, &mut c, command).await?,
    }
    Ok(())
}

async fn secret(global: &Global, c: &mut Client, cmd: SecretCommand) -> anyhow::Result<()> {
    match cmd {
        SecretCommand::Add { app, name, days } => {
            let a = find(c, &app).await?;
            #[allow(clippy::disallowed_methods)] // the CLI's own clock: only to compute an end date
            let end = days.map(|d| OffsetDateTime::now_utc() + Duration::days(d));
            let req = AddPasswordRequest {
                password_credential: Some(PasswordCredentialInput {
                    display_name: name,
                    start_date_time: None,
                    end_date_time: end,
                }),
            };
            let p: PasswordCredentialView = c
                .send(
                    Method::POST,
                    &format!("/v1.0/applications/{}/addPassword", a.id),
                    &req,
                )
                .await?;
            output::pairs(
                global.output,
                &p,
                vec![
                    ("appId", a.app_id.to_string()),
                    ("keyId", p.key_id.to_string()),
                    ("secretText", p.secret_text.clone().unwrap_or_default()),
                    ("expires", date(&p.end_date_time)),
                ],
            )?;
            if global.output == crate::OutputFormat::Table {
                eprintln!("The secret is shown this once: store it now.");
            }
        }
        SecretCommand::List { app } => {
            let a = find(c, &app).await?;
            let rows = a
                .password_credentials
                .iter()
                .map(|p| {
                    vec![
                        p.key_id.to_string(),
                        p.display_name.clone().unwrap_or_default(),
                        format!("{}…", p.hint),
                        date(&p.start_date_time),
                        date(&p.end_date_time),
                    ]
                })
                .collect();
            output::show(
                global.output,
                &a.password_credentials,
                &["KEY ID", "NAME", "HINT", "START", "END"],
                rows,
            )?;
        }
        SecretCommand::Remove { app, key_id } => {
            let a = find(c, &app).await?;
            c.send_empty(
                Method::POST,
                &format!("/v1.0/applications/{}/removePassword", a.id),
                Some(&RemovePasswordRequest { key_id }),
            )
            .await?;
            println!("removed secret {key_id}");
        }
    }
    Ok(())
}

fn keep(a: &ApplicationView, except: Option<Uuid>) -> Vec<KeyCredentialInput> {
    a.key_credentials
        .iter()
        .filter(|k| Some(k.key_id) != except)
        .map(|k| KeyCredentialInput {
            key_id: Some(k.key_id),
            ..Default::default()
        })
        .collect()
}

async fn cert(global: &Global, c: &mut Client, cmd: CertCommand) -> anyhow::Result<()> {
    match cmd {
        CertCommand::Add { app, pem, name } => {
            let a = find(c, &app).await?;
            let text = std::fs::read_to_string(&pem)
                .with_context(|| format!("reading {}", pem.display()))?;
            let cert_pem = text
                .split_inclusive("-----END CERTIFICATE-----")
                .find(|b| b.contains("-----BEGIN CERTIFICATE-----"))
                .with_context(|| {
                    format!(
                        "{} holds no certificate (-----BEGIN CERTIFICATE-----)",
                        pem.display()
                    )
                })?;
            let mut keys = keep(&a, None);
            keys.push(KeyCredentialInput {
                key_type: Some("AsymmetricX509Cert".into()),
                usage: Some("Verify".into()),
                key: Some(cert_pem.trim().to_string()),
                display_name: name,
                ..Default::default()
            });
            let patch = ApplicationInput {
                key_credentials: Some(keys),
                ..Default::default()
            };
            c.send_empty(
                Method::PATCH,
                &format!("/v1.0/applications/{}", a.id),
                Some(&patch),
            )
            .await?;
            let after = find(c, &a.id.to_string()).await?;
            let added = after
                .key_credentials
                .iter()
                .find(|k| !a.key_credentials.iter().any(|o| o.key_id == k.key_id))
                .context("the certificate was not added")?;
            output::pairs(
                global.output,
                added,
                vec![
                    ("keyId", added.key_id.to_string()),
                    (
                        "thumbprint",
                        added.custom_key_identifier.clone().unwrap_or_default(),
                    ),
                    ("expires", date(&added.end_date_time)),
                ],
            )?;
        }
        CertCommand::List { app } => {
            let a = find(c, &app).await?;
            let rows = a
                .key_credentials
                .iter()
                .map(|k| {
                    vec![
                        k.key_id.to_string(),
                        k.custom_key_identifier.clone().unwrap_or_default(),
                        k.display_name.clone().unwrap_or_default(),
                        date(&k.end_date_time),
                    ]
                })
                .collect();
            output::show(
                global.output,
                &a.key_credentials,
                &["KEY ID", "THUMBPRINT", "NAME", "END"],
                rows,
            )?;
        }
        CertCommand::Remove { app, key_id } => {
            let a = find(c, &app).await?;
            if !a.key_credentials.iter().any(|k| k.key_id == key_id) {
                bail!("application {} has no certificate {key_id}", a.app_id);
            }
            let patch = ApplicationInput {
                key_credentials: Some(keep(&a, Some(key_id))),
                ..Default::default()
            };
            c.send_empty(
                Method::PATCH,
                &format!("/v1.0/applications/{}", a.id),
                Some(&patch),
            )
            .await?;
            println!("removed certificate {key_id}");
        }
    }
    Ok(())
}
