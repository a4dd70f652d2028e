//! `keyway user …`

use anyhow::Context;
use clap::Subcommand;
use keyway_core::wire::{PasswordProfile, UserInput, UserView};
use reqwest::Method;

use crate::Global;
use crate::client::Client;
use crate::output::{self, date};

#[derive(Subcommand)]
pub enum UserCommand {
    /// Create a user; the password is read from --password-stdin or KEYWAY_USER_PASSWORD.
    Create {
        /// alias@domain, where the domain is one of the tenant's.
        upn: String,
        #[arg(long)]
        display_name: String,
        /// Read the password from standard input (one line).
        #[arg(long)]
        password_stdin: bool,
        /// Create the account disabled.
        #[arg(long)]
        disabled: bool,
    },
    List,
    Show {
        upn: String,
    },
    Enable {
        upn: String,
    },
    Disable {
        upn: String,
    },
    Delete {
        upn: String,
    },
}

fn password(from_stdin: bool) -> anyhow::Result<String> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        return Ok(line.trim_end_matches(['\r', '\n']).to_string());
    }
    std::env::var("KEYWAY_USER_PASSWORD").context("give the password with --password-stdin or KEYWAY_USER_PASSWORD (never on the command line)")
}

async fn find(c: &mut Client, upn: &str) -> anyhow::Result<UserView> {
    let list: Vec<UserView> = c
        .list(&format!(
            "/v1.0/users?$filter=userPrincipalName eq '{}'",
            upn.replace('\'', "''")
        ))
        .await?;
    list.into_iter()
        .next()
        .with_context(|| format!("no user {upn}"))
}

fn show(global: &Global, u: &UserView) -> anyhow::Result<()> {
    output::pairs(
        global.output,
        u,
        vec![
            ("id", u.id.to_string()),
            ("userPrincipalName", u.user_principal_name.clone()),
            ("displayName", u.display_name.clone()),
            ("accountEnabled", u.account_enabled.to_string()),
            ("created", date(&u.created_date_time)),
        ],
    )
}

pub async fn run(global: &Global, cmd: UserCommand) -> anyhow::Result<()> {
    let mut c = Client::new(global)?;
    match cmd {
        UserCommand::Create {
            upn,
            display_name,
            password_stdin,
            disabled,
        } => {
            let input = UserInput {
                user_principal_name: Some(upn),
                display_name: Some(display_name),
                account_enabled: Some(!disabled),
                password_profile: Some(PasswordProfile {
                    password: Some(password(password_stdin)?),
                    force_change_password_next_sign_in: Some(false),
                }),
                ..Default::default()
            };
            let u: UserView = c.send(Method::POST, "/v1.0/users", &input).await?;
            show(global, &u)?;
        }
        UserCommand::List => {
            let list: Vec<UserView> = c.list("/v1.0/users").await?;
            let rows = list
                .iter()
                .map(|u| {
                    vec![
                        u.user_principal_name.clone(),
                        u.display_name.clone(),
                        u.id.to_string(),
                        u.account_enabled.to_string(),
                    ]
                })
                .collect();
            output::show(
                global.output,
                &list,
                &["UPN", "NAME", "ID", "ENABLED"],
                rows,
            )?;
        }
        UserCommand::Show { upn } => show(global, &find(&mut c, &upn).await?)?,
        UserCommand::Enable { upn } => set_enabled(&mut c, &upn, true).await?,
        UserCommand::Disable { upn } => set_enabled(&mut c, &upn, false).await?,
        UserCommand::Delete { upn } => {
            let u = find(&mut c, &upn).await?;
            c.send_empty::<()>(Method::DELETE, &format!("/v1.0/users/{}", u.id), None)
                .await?;
            println!("deleted user {}", u.user_principal_name);
        }
    }
    Ok(())
}

async fn set_enabled(c: &mut Client, upn: &str, enabled: bool) -> anyhow::Result<()> {
    let u = find(c, upn).await?;
    let patch = UserInput {
        account_enabled: Some(enabled),
        ..Default::default()
    };
    c.send_empty(
        Method::PATCH,
        &format!("/v1.0/users/{}", u.id),
        Some(&patch),
    )
    .await?;
    println!(
        "{} {}",
        if enabled { "enabled" } else { "disabled" },
        u.user_principal_name
    );
    Ok(())
}
