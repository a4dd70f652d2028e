//! `keyway env …`: environments.

use anyhow::Context;
use clap::Subcommand;
use keyway_core::wire::{
    AppUserInput, EnvUserInput, EnvironmentInput, EnvironmentView, RoleAssignInput, RoleInput,
    RoleView, SystemUserView,
};
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
    /// Application users: service principals that act in the environment.
    AppUser {
        #[command(subcommand)]
        command: AppUserCommand,
    },
    /// Security roles.
    Role {
        #[command(subcommand)]
        command: RoleCommand,
    },
    /// Custom tables and columns.
    Table {
        #[command(subcommand)]
        command: TableCommand,
    },
    /// People as system users: members of the tenant and invited guests, and their licenses.
    User {
        #[command(subcommand)]
        command: EnvUserCommand,
    },
}

#[derive(Subcommand)]
pub enum EnvUserCommand {
    /// Add a person by user principal name or object id (a guest starts unlicensed).
    Add {
        env: String,
        /// alice@contoso.example, a guest's alice_fabrikam.example#EXT#@contoso.example, or an id.
        user: String,
        /// A role to give (repeatable), e.g. "Basic User".
        #[arg(long = "role")]
        roles: Vec<String>,
    },
    /// Give a system user a license (`islicensed`), or take it away with --remove.
    License {
        env: String,
        /// The systemuserid.
        system_user: uuid::Uuid,
        #[arg(long)]
        remove: bool,
    },
}

#[derive(Subcommand)]
pub enum TableCommand {
    /// Create a table: `keyway env table create dev new_Project --primary-name new_Name --column new_Budget:Money`.
    Create {
        env: String,
        schema_name: String,
        /// The primary name column (a String).
        #[arg(long)]
        primary_name: String,
        /// More columns as SchemaName:Type (String, Memo, Integer, BigInt, Decimal, Double, Money, Boolean, DateTime).
        #[arg(long = "column")]
        columns: Vec<String>,
        /// OrganizationOwned instead of UserOwned.
        #[arg(long)]
        organization_owned: bool,
    },
    /// Add a column: `keyway env table add-column dev new_project new_Priority:Integer`,
    /// a choice `new_Color --type choice --option 1=Red --option 2=Blue`, or a lookup
    /// `new_AccountId --type lookup --target account`.
    AddColumn {
        env: String,
        table: String,
        /// SchemaName, or SchemaName:Type.
        column: String,
        /// The type (String, Memo, Integer, …, Choice, Lookup), if not given after a colon.
        #[arg(long = "type")]
        kind: Option<String>,
        /// A choice as Value=Label (repeatable; for --type choice).
        #[arg(long = "option")]
        options: Vec<String>,
        /// The table a lookup points at (for --type lookup).
        #[arg(long)]
        target: Option<String>,
    },
}

/// The label shape of the metadata API.
fn label(text: &str) -> serde_json::Value {
    serde_json::json!({"LocalizedLabels": [{"Label": text, "LanguageCode": 1033}]})
}

/// A choice column's body: `1=Red` options become its OptionSet.
fn choice_json(name: &str, options: &[String]) -> anyhow::Result<serde_json::Value> {
    anyhow::ensure!(
        !options.is_empty(),
        "a choice column needs its choices: --option 1=Red --option 2=Blue"
    );
    let options = options
        .iter()
        .map(|o| {
            let (value, text) = o
                .split_once('=')
                .with_context(|| format!("'{o}' is not Value=Label, such as 1=Red"))?;
            let value: i32 = value
                .trim()
                .parse()
                .with_context(|| format!("'{value}' in '{o}' is not a whole number"))?;
            Ok(serde_json::json!({"Value": value, "Label": label(text.trim())}))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(serde_json::json!({
        "@odata.type": "Microsoft.Dynamics.CRM.PicklistAttributeMetadata",
        "SchemaName": name,
        "OptionSet": {"IsGlobal": false, "OptionSetType": "Picklist", "Options": options},
    }))
}

/// A lookup is made as Dataverse makes it: a one-to-many relationship from `target` to `table`.
fn lookup_json(table: &str, name: &str, target: Option<&str>) -> anyhow::Result<serde_json::Value> {
    let target = target
        .context("a lookup column needs --target <table>, such as --target account")?
        .to_ascii_lowercase();
    Ok(serde_json::json!({
        "@odata.type": "Microsoft.Dynamics.CRM.OneToManyRelationshipMetadata",
        "SchemaName": format!("{target}_{table}_{}", name.to_ascii_lowercase()),
        "ReferencedEntity": target,
        "ReferencingEntity": table,
        "Lookup": {
            "@odata.type": "Microsoft.Dynamics.CRM.LookupAttributeMetadata",
            "AttributeType": "Lookup",
            "SchemaName": name,
        },
    }))
}

fn column_json(spec: &str) -> anyhow::Result<serde_json::Value> {
    let (name, kind) = spec
        .split_once(':')
        .with_context(|| format!("'{spec}' is not SchemaName:Type"))?;
    Ok(
        serde_json::json!({"@odata.type": format!("Microsoft.Dynamics.CRM.{kind}AttributeMetadata"), "SchemaName": name}),
    )
}

#[derive(Subcommand)]
pub enum AppUserCommand {
    /// Make a service principal an application user, with roles.
    Add {
        env: String,
        /// The app registration's client id (it needs a service principal).
        #[arg(long)]
        app_id: uuid::Uuid,
        /// A role to give (repeatable), e.g. "Basic User" or a custom one.
        #[arg(long = "role")]
        roles: Vec<String>,
        /// The business unit (default: the root).
        #[arg(long)]
        business_unit: Option<uuid::Uuid>,
    },
}

#[derive(Subcommand)]
pub enum RoleCommand {
    /// Create a role: `--privilege prvReadaccount:BusinessUnit` (repeatable).
    Create {
        env: String,
        name: String,
        #[arg(long = "privilege")]
        privileges: Vec<String>,
    },
    /// List the roles.
    List { env: String },
    /// Give a role to an application user (--app-id) or a system user (--system-user).
    Assign {
        env: String,
        role: String,
        #[arg(
            long,
            required_unless_present = "system_user",
            conflicts_with = "system_user"
        )]
        app_id: Option<uuid::Uuid>,
        #[arg(long)]
        system_user: Option<uuid::Uuid>,
    },
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
        EnvCommand::AppUser {
            command:
                AppUserCommand::Add {
                    env,
                    app_id,
                    roles,
                    business_unit,
                },
        } => {
            let e = find(&mut c, &env).await?;
            let input = AppUserInput {
                service_principal_app_id: app_id,
                business_unit_id: business_unit,
                roles,
            };
            let u: SystemUserView = c
                .send(
                    Method::POST,
                    &format!("/v1.0/environments/{}/addAppUser", e.id),
                    &input,
                )
                .await?;
            output::pairs(
                global.output,
                &u,
                vec![
                    ("systemuserid", u.systemuserid.to_string()),
                    ("applicationid", app_id.to_string()),
                    ("businessunitid", u.businessunitid.to_string()),
                    ("roles", u.roles.join(", ")),
                ],
            )?;
        }
        EnvCommand::Role { command } => role(global, &mut c, command).await?,
        EnvCommand::User { command } => user(global, &mut c, command).await?,
        EnvCommand::Table { command } => match command {
            TableCommand::Create {
                env,
                schema_name,
                primary_name,
                columns,
                organization_owned,
            } => {
                let e = find(&mut c, &env).await?;
                let mut attributes = vec![
                    serde_json::json!({"@odata.type": "Microsoft.Dynamics.CRM.StringAttributeMetadata", "SchemaName": primary_name, "IsPrimaryName": true, "MaxLength": 100, "RequiredLevel": {"Value": "ApplicationRequired"}}),
                ];
                for col in &columns {
                    attributes.push(column_json(col)?);
                }
                let body = serde_json::json!({
                    "@odata.type": "Microsoft.Dynamics.CRM.EntityMetadata",
                    "SchemaName": schema_name,
                    "OwnershipType": if organization_owned { "OrganizationOwned" } else { "UserOwned" },
                    "Attributes": attributes,
                });
                let at = c.web_api_post(&e.url, "EntityDefinitions", &body).await?;
                println!(
                    "created table {} in {} ({})",
                    schema_name.to_ascii_lowercase(),
                    e.name,
                    at.unwrap_or_default()
                );
            }
            TableCommand::AddColumn {
                env,
                table,
                column,
                kind,
                options,
                target,
            } => {
                let e = find(&mut c, &env).await?;
                let table = table.to_ascii_lowercase();
                let (name, kind) = match (column.split_once(':'), kind) {
                    (Some((n, k)), None) => (n.to_string(), k.to_string()),
                    (None, Some(k)) => (column.clone(), k),
                    (Some(_), Some(_)) => {
                        anyhow::bail!("give the type once: SchemaName:Type or --type")
                    }
                    (None, None) => {
                        anyhow::bail!("'{column}' needs a type: SchemaName:Type or --type")
                    }
                };
                let (path, body) = match kind.to_ascii_lowercase().as_str() {
                    "lookup" => (
                        "RelationshipDefinitions".to_string(),
                        lookup_json(&table, &name, target.as_deref())?,
                    ),
                    "choice" | "picklist" => (
                        format!("EntityDefinitions(LogicalName='{table}')/Attributes"),
                        choice_json(&name, &options)?,
                    ),
                    _ => (
                        format!("EntityDefinitions(LogicalName='{table}')/Attributes"),
                        column_json(&format!("{name}:{kind}"))?,
                    ),
                };
                c.web_api_post(&e.url, &path, &body).await?;
                println!("added column {name} to {table} in {}", e.name);
            }
        },
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

async fn role(global: &Global, c: &mut Client, cmd: RoleCommand) -> anyhow::Result<()> {
    match cmd {
        RoleCommand::Create {
            env,
            name,
            privileges,
        } => {
            let e = find(c, &env).await?;
            let r: RoleView = c
                .send(
                    Method::POST,
                    &format!("/v1.0/environments/{}/roles", e.id),
                    &RoleInput {
                        name,
                        business_unit_id: None,
                        privileges,
                    },
                )
                .await?;
            output::pairs(
                global.output,
                &r,
                vec![("roleid", r.roleid.to_string()), ("name", r.name.clone())],
            )?;
        }
        RoleCommand::List { env } => {
            let e = find(c, &env).await?;
            let roles: Vec<RoleView> = c
                .list(&format!("/v1.0/environments/{}/roles", e.id))
                .await?;
            let rows = roles
                .iter()
                .map(|r| vec![r.name.clone(), r.roleid.to_string()])
                .collect();
            output::show(global.output, &roles, &["NAME", "ID"], rows)?;
        }
        RoleCommand::Assign {
            env,
            role,
            app_id,
            system_user,
        } => {
            let e = find(c, &env).await?;
            let roles: Vec<RoleView> = c
                .list(&format!("/v1.0/environments/{}/roles", e.id))
                .await?;
            let r = roles
                .iter()
                .find(|r| r.name.eq_ignore_ascii_case(&role) || r.roleid.to_string() == role)
                .with_context(|| {
                    format!(
                        "no role '{role}' in {} (see `keyway env role list {}`)",
                        e.name, e.name
                    )
                })?;
            let input = RoleAssignInput {
                system_user_id: system_user,
                application_id: app_id,
            };
            c.send_empty(
                Method::POST,
                &format!("/v1.0/environments/{}/roles/{}/assign", e.id, r.roleid),
                Some(&input),
            )
            .await?;
            let who = match (app_id, system_user) {
                (Some(a), _) => format!("application {a}"),
                (None, Some(u)) => format!("system user {u}"),
                (None, None) => String::new(),
            };
            println!("gave '{}' to {who} in {}", r.name, e.name);
        }
    }
    Ok(())
}

async fn user(global: &Global, c: &mut Client, cmd: EnvUserCommand) -> anyhow::Result<()> {
    match cmd {
        EnvUserCommand::Add { env, user, roles } => {
            let e = find(c, &env).await?;
            let (user_principal_name, user_id) = match uuid::Uuid::parse_str(&user) {
                Ok(id) => (None, Some(id)),
                Err(_) => (Some(user), None),
            };
            let input = EnvUserInput {
                user_principal_name,
                user_id,
                business_unit_id: None,
                roles,
            };
            let u: SystemUserView = c
                .send(
                    Method::POST,
                    &format!("/v1.0/environments/{}/addUser", e.id),
                    &input,
                )
                .await?;
            output::pairs(
                global.output,
                &u,
                vec![
                    ("systemuserid", u.systemuserid.to_string()),
                    ("fullname", u.fullname.clone()),
                    ("isguest", u.isguest.to_string()),
                    ("islicensed", u.islicensed.to_string()),
                    ("roles", u.roles.join(", ")),
                ],
            )?;
        }
        EnvUserCommand::License {
            env,
            system_user,
            remove,
        } => {
            let e = find(c, &env).await?;
            let method = if remove { Method::DELETE } else { Method::POST };
            c.send_empty::<()>(
                method,
                &format!("/v1.0/environments/{}/users/{system_user}/license", e.id),
                None,
            )
            .await?;
            if remove {
                println!(
                    "took the license of system user {system_user} in {}",
                    e.name
                );
            } else {
                println!("licensed system user {system_user} in {}", e.name);
            }
        }
    }
    Ok(())
}
