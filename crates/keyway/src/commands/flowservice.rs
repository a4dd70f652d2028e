//! `keyway flowservice org …` and `keyway flowservice sandbox …`: the organizations Flow Service
//! callers name in `x-gw-ims-org-id`, and their sandboxes.

use clap::Subcommand;
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::Global;
use crate::client::Client;
use crate::output;

#[derive(Subcommand)]
pub enum FlowServiceCommand {
    /// Organizations (`<id>@AdobeOrg`), each bound to one tenant.
    Org {
        #[command(subcommand)]
        command: OrgCommand,
    },
    /// An organization's sandboxes (`prod` comes with it).
    Sandbox {
        #[command(subcommand)]
        command: SandboxCommand,
    },
}

#[derive(Subcommand)]
pub enum OrgCommand {
    /// Create an organization; the principals of its tenant may then call the Flow Service API.
    Create {
        /// Its id, such as ABC123@AdobeOrg.
        id: String,
        /// The tenant it is bound to (default: the profile's; another needs a system administrator).
        #[arg(long)]
        tenant: Option<Uuid>,
        #[arg(long)]
        display_name: Option<String>,
    },
    /// List organizations.
    List,
}

#[derive(Subcommand)]
pub enum SandboxCommand {
    /// Create a sandbox (lowercase letters, digits and hyphens).
    Create { org: String, name: String },
    /// List an organization's sandboxes.
    List { org: String },
    /// Delete a sandbox and every connection in it.
    Delete { org: String, name: String },
}

fn sandboxes_path(org: &str) -> String {
    format!("/v1.0/flowservice/organizations/{org}/sandboxes")
}

fn text(v: &Value, k: &str) -> String {
    v[k].as_str().unwrap_or_default().to_string()
}

pub async fn run(global: &Global, cmd: FlowServiceCommand) -> anyhow::Result<()> {
    let mut c = Client::new(global)?;
    match cmd {
        FlowServiceCommand::Org { command } => match command {
            OrgCommand::Create {
                id,
                tenant,
                display_name,
            } => {
                let mut body = json!({"id": id});
                if let Some(t) = tenant {
                    body["tenantId"] = t.to_string().into();
                }
                if let Some(d) = display_name {
                    body["displayName"] = d.into();
                }
                let org: Value = c
                    .send(Method::POST, "/v1.0/flowservice/organizations", &body)
                    .await?;
                output::pairs(
                    global.output,
                    &org,
                    vec![
                        ("id", text(&org, "id")),
                        ("tenantId", text(&org, "tenantId")),
                        ("displayName", text(&org, "displayName")),
                        ("sandboxes", "prod".into()),
                    ],
                )?;
            }
            OrgCommand::List => {
                let list: Vec<Value> = c.list("/v1.0/flowservice/organizations").await?;
                let rows = list
                    .iter()
                    .map(|o| {
                        vec![
                            text(o, "id"),
                            text(o, "tenantId"),
                            text(o, "displayName"),
                            text(o, "createdDateTime"),
                        ]
                    })
                    .collect();
                output::show(
                    global.output,
                    &list,
                    &["ID", "TENANT", "NAME", "CREATED"],
                    rows,
                )?;
            }
        },
        FlowServiceCommand::Sandbox { command } => match command {
            SandboxCommand::Create { org, name } => {
                let s: Value = c
                    .send(Method::POST, &sandboxes_path(&org), &json!({"name": name}))
                    .await?;
                output::pairs(
                    global.output,
                    &s,
                    vec![
                        ("organizationId", text(&s, "organizationId")),
                        ("name", text(&s, "name")),
                    ],
                )?;
            }
            SandboxCommand::List { org } => {
                let list: Vec<Value> = c.list(&sandboxes_path(&org)).await?;
                let rows = list
                    .iter()
                    .map(|s| vec![text(s, "name"), text(s, "createdDateTime")])
                    .collect();
                output::show(global.output, &list, &["NAME", "CREATED"], rows)?;
            }
            SandboxCommand::Delete { org, name } => {
                c.send_empty::<Value>(
                    Method::DELETE,
                    &format!("{}/{name}", sandboxes_path(&org)),
                    None,
                )
                .await?;
                if global.output == crate::OutputFormat::Table {
                    println!("Deleted sandbox {name} of {org} and its connections.");
                }
            }
        },
    }
    Ok(())
}
