//! `keyway env …`: environments.

use anyhow::Context;
use clap::Subcommand;
use keyway_core::wire::{EnvironmentInput, EnvironmentView};
use reqwest::Method;

use crate::Global;
use crate::client::Client;
use crate::output::{self, date};

#[derive(Subcommand)]
pub enum EnvCommand {
    /// Create an environment (you become its first System Administrator).
    Create { name: String },
    /// List the tenant's environments.
    List,
    /// Show one environment by name or id.
    Show { env: String },
    /// Delete an environment and everything in it.
    Delete { env: String },
}

async fn find(c: &mut Client, reference: &str) -> anyhow::Result<EnvironmentView> {
    let list: Vec<EnvironmentView> = c.list("/v1.0/environments").await?;
    list.into_iter()
        .find(|e| {
            e.name.eq_ignore_ascii_case(reference)
                || e.id.to_string() == reference.to_ascii_lowercase()
        })
        .with_context(|| {
            format!("no environment '{reference}' in this tenant (see `keyway env list`)")
        })
}

fn show(global: &Global, e: &EnvironmentView) -> anyhow::Result<()> {
    output::pairs(
        global.output,
        e,
        vec![
            ("id", e.id.to_string()),
            ("name", e.name.clone()),
            ("url", e.url.clone()),
            ("webApi", format!("{}/api/data/v9.2/", e.url)),
            ("created", date(&e.created_date_time)),
        ],
    )
}

pub async fn run(global: &Global, cmd: EnvCommand) -> anyhow::Result<()> {
    let mut c = Client::new(global)?;
    match cmd {
        EnvCommand::Create { name } => {
            let e: EnvironmentView = c
                .send(
                    Method::POST,
                    "/v1.0/environments",
                    &EnvironmentInput { name },
                )
                .await?;
            show(global, &e)?;
        }
        EnvCommand::List => {
            let list: Vec<EnvironmentView> = c.list("/v1.0/environments").await?;
            let rows = list
                .iter()
                .map(|e| {
                    vec![
                        e.name.clone(),
                        e.url.clone(),
                        e.id.to_string(),
                        date(&e.created_date_time),
                    ]
                })
                .collect();
            output::show(
                global.output,
                &list,
                &["NAME", "URL", "ID", "CREATED"],
                rows,
            )?;
        }
        EnvCommand::Show { env } => show(global, &find(&mut c, &env).await?)?,
        EnvCommand::Delete { env } => {
            let e = find(&mut c, &env).await?;
            c.send_empty::<()>(
                Method::DELETE,
                &format!("/v1.0/environments/{}", e.id),
                None,
            )
            .await?;
            println!("deleted environment {} ({})", e.name, e.id);
        }
    }
    Ok(())
}
