//! `keyway connection …` and `keyway connector …`: connections of an environment through the
//! Power Platform connectivity API, as the profile's application. Secret values are read from a
//! file (`name=@path`), standard input (`name=-`) or an environment variable (`name=env:VAR`), so
//! they stay out of shell history and process lists. `--sign-in` signs a user in here and stores
//! only their refresh token.

use std::io::BufRead;

use anyhow::{Context, bail};
use clap::Subcommand;
use reqwest::Method;
use serde_json::{Map, Value, json};

use crate::client::Client;
use crate::{Global, output};

#[derive(Subcommand)]
pub enum ConnectorCommand {
    /// Every connector and its parameter sets.
    List,
    /// One connector: its parameter sets and their parameters (secrets marked).
    Show { connector: String },
}

#[derive(Subcommand)]
pub enum ConnectionCommand {
    /// Create (or update) a connection and test it.
    Create {
        /// The environment (name or id).
        env: String,
        /// The connection's name (its id in URLs); generated when absent.
        #[arg(long)]
        name: Option<String>,
        #[arg(long, default_value = "shared_commondataserviceforapps")]
        connector: String,
        /// The parameter set, e.g. ServicePrincipalOauth.
        #[arg(long = "set")]
        parameter_set: Option<String>,
        /// A parameter value, `name=value` (repeat).
        #[arg(long = "value")]
        values: Vec<String>,
        /// A secret value: `name=@file`, `name=-` (standard input) or `name=env:VAR` (repeat).
        #[arg(long = "secret")]
        secrets: Vec<String>,
        #[arg(long)]
        display_name: Option<String>,
        /// With `--set OAuthSignIn`: sign this user in (password from standard input, or
        /// prompted on a terminal) and store only their refresh token in the connection.
        #[arg(long = "sign-in", value_name = "USERNAME")]
        sign_in: Option<String>,
        /// The public client the user signs in through (default: the tenant's
        /// "Keyway CLI (delegated sign-in)" app, registered on first use).
        #[arg(long)]
        client_id: Option<uuid::Uuid>,
    },
    /// Connections of an environment you own or that are shared with you.
    List { env: String },
    /// One connection (secrets masked; none at all if you may only use it).
    Show { env: String, name: String },
    /// Test a connection again now.
    Test { env: String, name: String },
    /// Share a connection: Can use (CanView), Can edit (CanEdit) or CanViewWithShare.
    Share {
        env: String,
        name: String,
        /// The object id of the user or service principal.
        #[arg(long)]
        principal: uuid::Uuid,
        /// User or ServicePrincipal.
        #[arg(long = "type", default_value = "ServicePrincipal")]
        kind: String,
        #[arg(long, default_value = "CanView")]
        role: String,
    },
    /// Take a share away (by the principal it was granted to).
    Unshare {
        env: String,
        name: String,
        #[arg(long)]
        principal: uuid::Uuid,
    },
    /// Delete a connection (its owner only).
    Delete { env: String, name: String },
}

fn split(kv: &str) -> anyhow::Result<(&str, &str)> {
    kv.split_once('=')
        .with_context(|| format!("'{kv}' is not name=value"))
}

fn secret_value(spec: &str) -> anyhow::Result<String> {
    if spec == "-" {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("reading a secret from standard input")?;
        return Ok(line.trim_end_matches(['\r', '\n']).to_string());
    }
    if let Some(path) = spec.strip_prefix('@') {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
        return Ok(text.trim_end_matches(['\r', '\n']).to_string());
    }
    if let Some(var) = spec.strip_prefix("env:") {
        return std::env::var(var).with_context(|| format!("the variable {var} is not set"));
    }
    bail!("give a secret as @file, - (standard input) or env:VAR, never on the command line")
}

async fn environment(
    c: &mut Client,
    env: &str,
) -> anyhow::Result<keyway_core::wire::EnvironmentView> {
    let list: Vec<keyway_core::wire::EnvironmentView> = c.list("/v1.0/environments").await?;
    list.into_iter()
        .find(|e| e.name.eq_ignore_ascii_case(env) || e.id.to_string() == env.to_ascii_lowercase())
        .with_context(|| format!("no environment '{env}' (see `keyway env list`)"))
}

async fn environment_id(c: &mut Client, env: &str) -> anyhow::Result<String> {
    Ok(environment(c, env).await?.id.to_string())
}

/// The public client the CLI signs people in through, registered once per tenant.
const SIGN_IN_CLIENT: &str = "Keyway CLI (delegated sign-in)";

async fn sign_in_client(c: &mut Client) -> anyhow::Result<uuid::Uuid> {
    use keyway_core::wire::ApplicationView;
    let filter = format!("/v1.0/applications?$filter=displayName eq '{SIGN_IN_CLIENT}'");
    let found: Vec<ApplicationView> = c.list(&filter).await?;
    let app = match found.into_iter().find(|a| a.is_fallback_public_client) {
        Some(a) => a,
        None => {
            c.send(
                Method::POST,
                "/v1.0/applications",
                &json!({"displayName": SIGN_IN_CLIENT, "isFallbackPublicClient": true}),
            )
            .await?
        }
    };
    let sps: Vec<Value> = c
        .list(&format!(
            "/v1.0/servicePrincipals?$filter=appId eq '{}'",
            app.app_id
        ))
        .await?;
    if sps.is_empty() {
        c.send::<_, Value>(
            Method::POST,
            "/v1.0/servicePrincipals",
            &json!({"appId": app.app_id}),
        )
        .await?;
    }
    Ok(app.app_id)
}

/// A password from standard input, or typed at a terminal without echo.
fn read_password(username: &str) -> anyhow::Result<String> {
    use std::io::IsTerminal;
    if !std::io::stdin().is_terminal() {
        return secret_value("-");
    }
    eprint!("Password for {username}: ");
    let stty = |arg: &str| {
        std::fs::File::open("/dev/tty").ok().and_then(|tty| {
            std::process::Command::new("stty")
                .arg(arg)
                .stdin(tty)
                .status()
                .ok()
        })
    };
    let hidden = stty("-echo").is_some_and(|s| s.success());
    let read = secret_value("-");
    if hidden {
        stty("echo");
        eprintln!();
    }
    read
}

/// Sign a user in with their password for the environment's resource (offline_access), so the
/// connection holds their refresh token and never the password.
async fn delegated_sign_in(
    c: &mut Client,
    env: &keyway_core::wire::EnvironmentView,
    username: &str,
    client_id: Option<uuid::Uuid>,
) -> anyhow::Result<(uuid::Uuid, String)> {
    let client_id = match client_id {
        Some(id) => id,
        None => sign_in_client(c).await?,
    };
    let password = read_password(username)?;
    let scope = format!("{}/.default offline_access", env.url.trim_end_matches('/'));
    let client = client_id.to_string();
    let t = c
        .token_for(&[
            ("grant_type", "password"),
            ("client_id", &client),
            ("username", username),
            ("password", &password),
            ("scope", &scope),
        ])
        .await
        .with_context(|| format!("signing {username} in"))?;
    let refresh = t
        .refresh_token
        .context("the authority issued no refresh token (is offline_access allowed?)")?;
    Ok((client_id, refresh))
}

fn status_of(v: &Value) -> String {
    let statuses: Vec<String> = v["properties"]["statuses"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| match s["error"]["code"].as_str() {
            Some(code) => format!("{} ({code})", s["status"].as_str().unwrap_or_default()),
            None => s["status"].as_str().unwrap_or_default().to_string(),
        })
        .collect();
    statuses.join(", ")
}

fn show(global: &Global, v: &Value) -> anyhow::Result<()> {
    let p = &v["properties"];
    let mut pairs = vec![
        ("name", v["name"].as_str().unwrap_or_default().to_string()),
        (
            "connector",
            p["apiId"]
                .as_str()
                .unwrap_or_default()
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .to_string(),
        ),
        (
            "displayName",
            p["displayName"].as_str().unwrap_or_default().to_string(),
        ),
        ("status", status_of(v)),
        (
            "createdBy",
            format!(
                "{} ({})",
                p["createdBy"]["displayName"].as_str().unwrap_or_default(),
                p["createdBy"]["type"].as_str().unwrap_or_default()
            ),
        ),
        (
            "expires",
            p["expirationTime"]
                .as_str()
                .unwrap_or("unknown")
                .to_string(),
        ),
        (
            "yourRole",
            p["yourRole"].as_str().unwrap_or_default().to_string(),
        ),
    ];
    if let Some(e) = p["statuses"][0]["error"]["message"].as_str() {
        pairs.push(("error", e.to_string()));
    }
    for (k, val) in p["connectionParametersSet"]["values"]
        .as_object()
        .into_iter()
        .flatten()
    {
        let shown = val["value"]
            .as_str()
            .map_or_else(|| val["value"].to_string(), str::to_string);
        pairs.push(("parameter", format!("{k} = {shown}")));
    }
    output::pairs(global.output, v, pairs)
}

pub async fn connectors(global: &Global, cmd: ConnectorCommand) -> anyhow::Result<()> {
    let c = Client::new(global)?;
    match cmd {
        ConnectorCommand::List => {
            let v = c
                .platform(Method::GET, "/connectivity/connectors?api-version=1", None)
                .await?
                .unwrap_or_default();
            let rows = v["value"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|k| {
                    let sets: Vec<&str> = k["properties"]["connectionParameterSets"]["values"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|s| s["name"].as_str())
                        .collect();
                    vec![
                        k["name"].as_str().unwrap_or_default().to_string(),
                        k["properties"]["displayName"]
                            .as_str()
                            .unwrap_or_default()
                            .to_string(),
                        sets.join(", "),
                    ]
                })
                .collect();
            output::show(
                global.output,
                &v,
                &["CONNECTOR", "NAME", "PARAMETER SETS"],
                rows,
            )
        }
        ConnectorCommand::Show { connector } => {
            let v = c
                .platform(
                    Method::GET,
                    &format!("/connectivity/connectors/{connector}?api-version=1"),
                    None,
                )
                .await?
                .unwrap_or_default();
            let mut rows = Vec::new();
            for set in v["properties"]["connectionParameterSets"]["values"]
                .as_array()
                .into_iter()
                .flatten()
            {
                let required: Vec<&str> = set["required"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                for (name, p) in set["parameters"].as_object().into_iter().flatten() {
                    rows.push(vec![
                        set["name"].as_str().unwrap_or_default().to_string(),
                        name.clone(),
                        if p["format"] == "password" {
                            "secret"
                        } else {
                            ""
                        }
                        .to_string(),
                        if required.contains(&name.as_str()) {
                            "required"
                        } else {
                            ""
                        }
                        .to_string(),
                        p["description"].as_str().unwrap_or_default().to_string(),
                    ]);
                }
            }
            output::show(
                global.output,
                &v,
                &["SET", "PARAMETER", "SECRET", "REQUIRED", "DESCRIPTION"],
                rows,
            )
        }
    }
}

pub async fn run(global: &Global, cmd: ConnectionCommand) -> anyhow::Result<()> {
    let mut c = Client::new(global)?;
    let path = |env_id: &str, connector: &str, name: &str, tail: &str| {
        format!(
            "/connectivity/connectors/{connector}/connections/{name}{tail}?api-version=1&$filter=environment%20eq%20'{env_id}'"
        )
    };
    // Which connector a named connection belongs to (the URL needs it).
    async fn locate(c: &Client, env_id: &str, name: &str) -> anyhow::Result<Value> {
        let v = c
            .platform(
                Method::GET,
                &format!(
                    "/connectivity/connections?api-version=1&$filter=environment%20eq%20'{env_id}'"
                ),
                None,
            )
            .await?
            .unwrap_or_default();
        v["value"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|x| x["name"] == name)
            .cloned()
            .with_context(|| format!("no connection '{name}' you can see in this environment"))
    }
    let connector_of = |v: &Value| {
        v["properties"]["apiId"]
            .as_str()
            .unwrap_or_default()
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_string()
    };
    match cmd {
        ConnectionCommand::Create {
            env,
            name,
            connector,
            parameter_set,
            values,
            secrets,
            display_name,
            sign_in,
            client_id,
        } => {
            let environment = environment(&mut c, &env).await?;
            let env_id = environment.id.to_string();
            let mut vals = Map::new();
            for kv in &values {
                let (k, v) = split(kv)?;
                vals.insert(k.to_string(), json!({"value": v}));
            }
            for kv in &secrets {
                let (k, spec) = split(kv)?;
                vals.insert(k.to_string(), json!({"value": secret_value(spec)?}));
            }
            if let Some(user) = &sign_in {
                if parameter_set.as_deref() != Some("OAuthSignIn") {
                    bail!("--sign-in goes with --set OAuthSignIn");
                }
                let (client, refresh) =
                    delegated_sign_in(&mut c, &environment, user, client_id).await?;
                vals.insert("token:refreshToken".into(), json!({"value": refresh}));
                vals.insert("token:clientId".into(), json!({"value": client}));
                vals.entry("token:TenantId")
                    .or_insert_with(|| json!({"value": environment.tenant_id}));
            }
            let name = name.unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
            let mut props = json!({
                "environment": {"id": format!("/providers/Microsoft.PowerApps/environments/{env_id}"), "name": env_id},
                "connectionParametersSet": {"name": parameter_set, "values": vals},
            });
            if parameter_set.is_none() {
                props["connectionParametersSet"]
                    .as_object_mut()
                    .map(|o| o.remove("name"));
            }
            if let Some(d) = display_name {
                props["displayName"] = json!(d);
            }
            let v = c
                .platform(
                    Method::PUT,
                    &path(&env_id, &connector, &name, ""),
                    Some(&json!({"properties": props})),
                )
                .await?
                .unwrap_or_default();
            show(global, &v)
        }
        ConnectionCommand::List { env } => {
            let env_id = environment_id(&mut c, &env).await?;
            let v = c
                .platform(Method::GET, &format!("/connectivity/connections?api-version=1&$filter=environment%20eq%20'{env_id}'"), None)
                .await?
                .unwrap_or_default();
            let rows = v["value"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|x| {
                    vec![
                        x["name"].as_str().unwrap_or_default().to_string(),
                        connector_of(x),
                        status_of(x),
                        x["properties"]["expirationTime"]
                            .as_str()
                            .unwrap_or("-")
                            .to_string(),
                        x["properties"]["createdBy"]["displayName"]
                            .as_str()
                            .unwrap_or_default()
                            .to_string(),
                        x["properties"]["yourRole"]
                            .as_str()
                            .unwrap_or_default()
                            .to_string(),
                    ]
                })
                .collect();
            output::show(
                global.output,
                &v,
                &[
                    "NAME",
                    "CONNECTOR",
                    "STATUS",
                    "EXPIRES",
                    "CREATED BY",
                    "ROLE",
                ],
                rows,
            )
        }
        ConnectionCommand::Show { env, name } => {
            let env_id = environment_id(&mut c, &env).await?;
            let found = locate(&c, &env_id, &name).await?;
            let v = c
                .platform(
                    Method::GET,
                    &path(&env_id, &connector_of(&found), &name, ""),
                    None,
                )
                .await?
                .unwrap_or_default();
            show(global, &v)
        }
        ConnectionCommand::Test { env, name } => {
            let env_id = environment_id(&mut c, &env).await?;
            let found = locate(&c, &env_id, &name).await?;
            let v = c
                .platform(
                    Method::POST,
                    &path(&env_id, &connector_of(&found), &name, "/test"),
                    None,
                )
                .await?
                .unwrap_or_default();
            show(global, &v)?;
            if v["properties"]["statuses"][0]["status"] == "Error" {
                bail!("the connection does not work: {}", status_of(&v));
            }
            Ok(())
        }
        ConnectionCommand::Share {
            env,
            name,
            principal,
            kind,
            role,
        } => {
            let env_id = environment_id(&mut c, &env).await?;
            let found = locate(&c, &env_id, &name).await?;
            let body = json!({"put": [{"properties": {"roleName": role, "principal": {"id": principal, "type": kind}}}]});
            c.platform(
                Method::POST,
                &path(&env_id, &connector_of(&found), &name, "/modifyPermissions"),
                Some(&body),
            )
            .await?;
            println!("shared {name} with {principal} as {role}");
            Ok(())
        }
        ConnectionCommand::Unshare {
            env,
            name,
            principal,
        } => {
            let env_id = environment_id(&mut c, &env).await?;
            let found = locate(&c, &env_id, &name).await?;
            let connector = connector_of(&found);
            let perms = c
                .platform(
                    Method::GET,
                    &path(&env_id, &connector, &name, "/permissions"),
                    None,
                )
                .await?
                .unwrap_or_default();
            let id = perms["value"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|p| {
                    p["properties"]["principal"]["id"] == principal.to_string()
                        && p["properties"]["roleName"] != "Owner"
                })
                .and_then(|p| p["name"].as_str().map(str::to_string))
                .with_context(|| format!("{name} is not shared with {principal}"))?;
            c.platform(
                Method::POST,
                &path(&env_id, &connector, &name, "/modifyPermissions"),
                Some(&json!({"delete": [{"id": id}]})),
            )
            .await?;
            println!("{principal} no longer holds {name}");
            Ok(())
        }
        ConnectionCommand::Delete { env, name } => {
            let env_id = environment_id(&mut c, &env).await?;
            let found = locate(&c, &env_id, &name).await?;
            c.platform(
                Method::DELETE,
                &path(&env_id, &connector_of(&found), &name, ""),
                None,
            )
            .await?;
            println!("deleted {name}");
            Ok(())
        }
    }
}
