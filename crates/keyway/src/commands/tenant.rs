//! `keyway tenant …`

use clap::Subcommand;
use keyway_core::wire::{SigningKeyView, TenantCreated, TenantInput, TenantView};
use reqwest::Method;
use uuid::Uuid;

use crate::Global;
use crate::client::Client;
use crate::output::{self, date};

#[derive(Subcommand)]
pub enum TenantCommand {
    /// Create a tenant with its own administrator application (its secret is shown once).
    Create {
        /// The tenant's display name.
        name: String,
        /// A domain name of the tenant (repeatable); users' names end in one of them.
        #[arg(long = "domain", required = true)]
        domains: Vec<String>,
    },
    /// List tenants.
    List,
    /// List a tenant's signing keys.
    Keys {
        /// The tenant (default: the profile's).
        #[arg(long)]
        tenant: Option<Uuid>,
    },
    /// Make a new signing key; the old one keeps verifying until its tokens expire.
    RotateKeys {
        #[arg(long)]
        tenant: Option<Uuid>,
    },
}

pub async fn run(global: &Global, cmd: TenantCommand) -> anyhow::Result<()> {
    let mut c = Client::new(global)?;
    match cmd {
        TenantCommand::Create { name, domains } => {
            let created: TenantCreated = c
                .send(
                    Method::POST,
                    "/v1.0/tenants",
                    &TenantInput {
                        display_name: name,
                        domains,
                    },
                )
                .await?;
            output::pairs(
                global.output,
                &created,
                vec![
                    ("tenantId", created.tenant.id.to_string()),
                    ("displayName", created.tenant.display_name.clone()),
                    ("domains", created.tenant.domains.join(", ")),
                    ("adminClientId", created.administrator.client_id.to_string()),
                    (
                        "adminClientSecret",
                        created.administrator.client_secret.clone(),
                    ),
                ],
            )?;
            if global.output == crate::OutputFormat::Table {
                eprintln!("The secret is shown this once: store it now.");
            }
        }
        TenantCommand::List => {
            let list: Vec<TenantView> = c.list("/v1.0/tenants").await?;
            let rows = list
                .iter()
                .map(|t| {
                    vec![
                        t.id.to_string(),
                        t.display_name.clone(),
                        t.domains.join(","),
                        t.is_system.to_string(),
                        date(&t.created_date_time),
                    ]
                })
                .collect();
            output::show(
                global.output,
                &list,
                &["ID", "NAME", "DOMAINS", "SYSTEM", "CREATED"],
                rows,
            )?;
        }
        TenantCommand::Keys { tenant } => {
            let tid = tenant.unwrap_or(c.profile.tenant_id);
            let keys: Vec<SigningKeyView> =
                c.list(&format!("/v1.0/tenants/{tid}/signingKeys")).await?;
            let rows = keys
                .iter()
                .map(|k| {
                    vec![
                        k.kid.clone(),
                        k.alg.clone(),
                        k.status.clone(),
                        date(&k.created_date_time),
                    ]
                })
                .collect();
            output::show(
                global.output,
                &keys,
                &["KID", "ALG", "STATUS", "CREATED"],
                rows,
            )?;
        }
        TenantCommand::RotateKeys { tenant } => {
            let tid = tenant.unwrap_or(c.profile.tenant_id);
            let key: SigningKeyView = c
                .send(
                    Method::POST,
                    &format!("/v1.0/tenants/{tid}/signingKeys/rotate"),
                    &serde_json::json!({}),
                )
                .await?;
            output::pairs(
                global.output,
                &key,
                vec![("kid", key.kid.clone()), ("status", key.status.clone())],
            )?;
        }
    }
    Ok(())
}
