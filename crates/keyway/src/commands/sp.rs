//! `keyway sp …`: service principals and their app roles.

use anyhow::Context;
use clap::Subcommand;
use keyway_core::graph_roles::{self, GRAPH_APP_ID};
use keyway_core::wire::{
    AppRoleAssignmentInput, AppRoleAssignmentView, ServicePrincipalInput, ServicePrincipalView,
};
use reqwest::Method;
use uuid::Uuid;

use crate::Global;
use crate::client::Client;
use crate::output::{self, date};

#[derive(Subcommand)]
pub enum SpCommand {
    /// Create the service principal of an application (by its appId).
    Create { app_id: Uuid },
    /// List service principals.
    List,
    /// Show one (by object id or appId).
    Show { sp: String },
    /// Let it sign in again.
    Enable { sp: String },
    /// Stop it from getting tokens.
    Disable { sp: String },
    /// Delete it.
    Delete { sp: String },
    /// Microsoft Graph roles held by a service principal.
    Role {
        #[command(subcommand)]
        command: RoleCommand,
    },
}

#[derive(Subcommand)]
pub enum RoleCommand {
    /// Grant a role, e.g. Application.ReadWrite.All or Directory.ReadWrite.All.
    Add {
        sp: String,
        #[arg(long)]
        role: String,
    },
    /// List the roles granted.
    List { sp: String },
    /// Revoke a role by name.
    Remove {
        sp: String,
        #[arg(long)]
        role: String,
    },
}

async fn find(c: &mut Client, reference: &str) -> anyhow::Result<ServicePrincipalView> {
    let id = Uuid::parse_str(reference)
        .with_context(|| format!("'{reference}' is not a service principal id or appId"))?;
    let by_app: Vec<ServicePrincipalView> = c
        .list(&format!("/v1.0/servicePrincipals?$filter=appId eq '{id}'"))
        .await?;
    if let Some(sp) = by_app.into_iter().next() {
        return Ok(sp);
    }
    c.get(&format!("/v1.0/servicePrincipals/{id}")).await
}

fn show(global: &Global, sp: &ServicePrincipalView) -> anyhow::Result<()> {
    output::pairs(
        global.output,
        sp,
        vec![
            ("id", sp.id.to_string()),
            ("appId", sp.app_id.to_string()),
            ("displayName", sp.display_name.clone()),
            ("accountEnabled", sp.account_enabled.to_string()),
            ("created", date(&sp.created_date_time)),
        ],
    )
}

pub async fn run(global: &Global, cmd: SpCommand) -> anyhow::Result<()> {
    let mut c = Client::new(global)?;
    match cmd {
        SpCommand::Create { app_id } => {
            let sp: ServicePrincipalView = c
                .send(
                    Method::POST,
                    "/v1.0/servicePrincipals",
                    &ServicePrincipalInput {
                        app_id: Some(app_id),
                        ..Default::default()
                    },
                )
                .await?;
            show(global, &sp)?;
        }
        SpCommand::List => {
            let list: Vec<ServicePrincipalView> = c.list("/v1.0/servicePrincipals").await?;
            let rows = list
                .iter()
                .map(|s| {
                    vec![
                        s.app_id.to_string(),
                        s.display_name.clone(),
                        s.id.to_string(),
                        s.account_enabled.to_string(),
                    ]
                })
                .collect();
            output::show(
                global.output,
                &list,
                &["APP ID", "NAME", "OBJECT ID", "ENABLED"],
                rows,
            )?;
        }
        SpCommand::Show { sp } => show(global, &find(&mut c, &sp).await?)?,
        SpCommand::Enable { sp } => set_enabled(&mut c, &sp, true).await?,
        SpCommand::Disable { sp } => set_enabled(&mut c, &sp, false).await?,
        SpCommand::Delete { sp } => {
            let s = find(&mut c, &sp).await?;
            c.send_empty::<()>(
                Method::DELETE,
                &format!("/v1.0/servicePrincipals/{}", s.id),
                None,
            )
            .await?;
            println!("deleted service principal {} ({})", s.display_name, s.id);
        }
        SpCommand::Role { command } => role(global, &mut c, command).await?,
    }
    Ok(())
}

async fn set_enabled(c: &mut Client, reference: &str, enabled: bool) -> anyhow::Result<()> {
    let s = find(c, reference).await?;
    let patch = ServicePrincipalInput {
        account_enabled: Some(enabled),
        ..Default::default()
    };
    c.send_empty(
        Method::PATCH,
        &format!("/v1.0/servicePrincipals/{}", s.id),
        Some(&patch),
    )
    .await?;
    println!(
        "{} service principal {}",
        if enabled { "enabled" } else { "disabled" },
        s.id
    );
    Ok(())
}

async fn role(global: &Global, c: &mut Client, cmd: RoleCommand) -> anyhow::Result<()> {
    let graph = find(c, &GRAPH_APP_ID.to_string()).await?;
    match cmd {
        RoleCommand::Add { sp, role } => {
            let s = find(c, &sp).await?;
            let r = graph_roles::by_value(&role).with_context(|| {
                format!(
                    "unknown role '{role}'; known: {}",
                    graph_roles::ALL
                        .iter()
                        .map(|r| r.value)
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })?;
            let input = AppRoleAssignmentInput {
                principal_id: s.id,
                resource_id: graph.id,
                app_role_id: r.id,
            };
            let a: AppRoleAssignmentView = c
                .send(
                    Method::POST,
                    &format!("/v1.0/servicePrincipals/{}/appRoleAssignments", s.id),
                    &input,
                )
                .await?;
            output::pairs(
                global.output,
                &a,
                vec![
                    ("assignment", a.id.to_string()),
                    ("role", r.value.to_string()),
                    ("principal", s.display_name.clone()),
                ],
            )?;
        }
        RoleCommand::List { sp } => {
            let s = find(c, &sp).await?;
            let list: Vec<AppRoleAssignmentView> = c
                .list(&format!(
                    "/v1.0/servicePrincipals/{}/appRoleAssignments",
                    s.id
                ))
                .await?;
            let rows = list
                .iter()
                .map(|a| {
                    let name = graph_roles::by_id(a.app_role_id)
                        .map(|r| r.value.to_string())
                        .unwrap_or_else(|| a.app_role_id.to_string());
                    vec![a.id.to_string(), name, a.resource_display_name.clone()]
                })
                .collect();
            output::show(
                global.output,
                &list,
                &["ASSIGNMENT", "ROLE", "RESOURCE"],
                rows,
            )?;
        }
        RoleCommand::Remove { sp, role } => {
            let s = find(c, &sp).await?;
            let r =
                graph_roles::by_value(&role).with_context(|| format!("unknown role '{role}'"))?;
            let list: Vec<AppRoleAssignmentView> = c
                .list(&format!(
                    "/v1.0/servicePrincipals/{}/appRoleAssignments",
                    s.id
                ))
                .await?;
            let a = list
                .iter()
                .find(|a| a.app_role_id == r.id)
                .with_context(|| format!("{} does not hold {}", s.display_name, r.value))?;
            c.send_empty::<()>(
                Method::DELETE,
                &format!(
                    "/v1.0/servicePrincipals/{}/appRoleAssignments/{}",
                    s.id, a.id
                ),
                None,
            )
            .await?;
            println!("revoked {} from {}", r.value, s.display_name);
        }
    }
    Ok(())
}
