//! `keyway flow …`: cloud flows of an environment as the profile's application (its system user
//! there owns what it creates): save a definition, turn flows on and off, start a manual run,
//! read runs with each action's connection and identity, cancel a run.

use anyhow::{Context, bail};
use clap::Subcommand;
use reqwest::Method;
use serde_json::{Map, Value, json};

use crate::client::Client;
use crate::{Global, output};

#[derive(Subcommand)]
pub enum FlowCommand {
    /// Save a flow from a definition file (the Logic Apps JSON Power Automate exports).
    Create {
        /// The environment (name or id).
        env: String,
        #[arg(long)]
        name: String,
        /// The definition: a JSON file, or `-` for standard input. A file holding
        /// `{"properties": {"definition": …}}` (an export) is read too.
        #[arg(long)]
        definition: String,
        /// Save it off (flows are saved on by default).
        #[arg(long)]
        off: bool,
    },
    /// Flows you own (every flow, for System Administrators) and the flows you may only run
    /// (ACCESS runOnly).
    List { env: String },
    /// One flow, by name or id (a flow you may only run shows without its definition).
    Show { env: String, flow: String },
    /// Turn a flow on.
    On { env: String, flow: String },
    /// Turn a flow off: it starts no new runs.
    Off { env: String, flow: String },
    /// Start a flow with a manual trigger; prints the run's id.
    Run {
        env: String,
        flow: String,
        /// A trigger input, `name=value` (repeat); values that read as JSON are JSON.
        #[arg(long = "input")]
        inputs: Vec<String>,
        /// Your own connection for a connection the flow takes from whoever runs it
        /// (`runtimeSource: invoker`): `name=connection` (repeat).
        #[arg(long = "connection")]
        connections: Vec<String>,
    },
    /// A flow's runs, newest first; with --run, one run with each action.
    Runs {
        env: String,
        flow: String,
        #[arg(long)]
        run: Option<String>,
        #[arg(long, default_value_t = 50)]
        top: u32,
    },
    /// Cancel a run that has not ended (a run-only user cancels only the runs they started).
    Cancel {
        env: String,
        flow: String,
        run: String,
    },
    /// Delete a flow and its runs.
    Delete { env: String, flow: String },
    /// Run-only users: who may run an instant flow without reading or editing it.
    #[command(subcommand)]
    RunOnly(RunOnlyCommand),
}

#[derive(Subcommand)]
pub enum RunOnlyCommand {
    /// Let a system user or a team of the environment run the flow.
    Add {
        env: String,
        flow: String,
        /// The system user's id (`keyway env user list`).
        #[arg(long, required_unless_present = "team", conflicts_with = "team")]
        system_user: Option<String>,
        /// The team's id.
        #[arg(long)]
        team: Option<String>,
    },
    /// Take the permission back.
    Remove {
        env: String,
        flow: String,
        /// The system user's or team's id.
        principal: String,
    },
    /// Who may run the flow.
    List { env: String, flow: String },
}

fn text(v: &Value, k: &str) -> String {
    match &v[k] {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn read_definition(spec: &str) -> anyhow::Result<Value> {
    let raw = if spec == "-" {
        std::io::read_to_string(std::io::stdin()).context("reading the definition from stdin")?
    } else {
        std::fs::read_to_string(spec).with_context(|| format!("reading {spec}"))?
    };
    let v: Value = serde_json::from_str(&raw).with_context(|| format!("{spec} is not JSON"))?;
    Ok(match v.pointer("/properties/definition") {
        Some(d) => d.clone(),
        None => v,
    })
}

/// The flow's id, from its id or name.
async fn flow_id(c: &mut Client, env: &str, flow: &str) -> anyhow::Result<String> {
    if uuid::Uuid::parse_str(flow).is_ok() {
        return Ok(flow.to_string());
    }
    let all: Vec<Value> = c.list(&format!("/v1.0/environments/{env}/flows")).await?;
    all.iter()
        .find(|f| f["name"].as_str() == Some(flow))
        .map(|f| text(f, "id"))
        .with_context(|| format!("no flow named '{flow}' in {env} (see `keyway flow list {env}`)"))
}

fn show_flow(global: &Global, f: &Value) -> anyhow::Result<()> {
    let t = &f["trigger"];
    // A run-only user sees the connections they bring (`--connection`), not the flow's.
    let connections = match f.get("runnerConnections") {
        Some(bring) => bring.to_string(),
        None => f["connectionNames"].to_string(),
    };
    let trigger = match t["entity"].as_str() {
        Some(e) => format!(
            "{} on {e} (message {}, scope {}, run as {})",
            text(t, "kind"),
            text(t, "message"),
            text(t, "scope"),
            text(t, "runAs")
        ),
        None => text(t, "kind"),
    };
    output::pairs(
        global.output,
        f,
        vec![
            ("id", text(f, "id")),
            ("name", text(f, "name")),
            ("state", text(f, "state")),
            ("trigger", trigger),
            ("access", text(f, "access")),
            ("connections", connections),
            ("owner", text(f, "ownerId")),
            ("modified", text(f, "lastModifiedDateTime")),
        ],
    )
}

fn show_run(global: &Global, r: &Value) -> anyhow::Result<()> {
    let mut pairs = vec![
        ("run", text(r, "id")),
        ("status", text(r, "status")),
        ("started", text(r, "startDateTime")),
        ("ended", text(r, "endDateTime")),
    ];
    if !r["error"].is_null() {
        pairs.push((
            "error",
            format!(
                "{} {}",
                text(&r["error"], "code"),
                text(&r["error"], "message")
            ),
        ));
    }
    if global.output == crate::OutputFormat::Json {
        return output::pairs(global.output, r, pairs);
    }
    output::pairs(global.output, r, pairs)?;
    println!();
    let rows = r["actions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| {
            vec![
                text(a, "name"),
                text(a, "status"),
                a["connection"]["name"].as_str().unwrap_or("").to_string(),
                a["identity"]["systemUserId"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
                a["error"]["code"].as_str().unwrap_or("").to_string(),
            ]
        })
        .collect();
    output::table(
        &["ACTION", "STATUS", "CONNECTION", "ACTED AS", "ERROR"],
        rows,
    );
    Ok(())
}

pub async fn run(global: &Global, cmd: FlowCommand) -> anyhow::Result<()> {
    let mut c = Client::new(global)?;
    let base = |env: &str| format!("/v1.0/environments/{env}/flows");
    match cmd {
        FlowCommand::Create {
            env,
            name,
            definition,
            off,
        } => {
            let body = json!({
                "name": name,
                "definition": read_definition(&definition)?,
                "state": if off { "off" } else { "on" },
            });
            let f: Value = c.send(Method::POST, &base(&env), &body).await?;
            show_flow(global, &f)
        }
        FlowCommand::List { env } => {
            let all: Vec<Value> = c.list(&base(&env)).await?;
            let rows = all
                .iter()
                .map(|f| {
                    vec![
                        text(f, "name"),
                        text(f, "state"),
                        text(&f["trigger"], "kind"),
                        text(&f["trigger"], "entity"),
                        text(f, "access"),
                        text(f, "id"),
                    ]
                })
                .collect();
            output::show(
                global.output,
                &all,
                &["NAME", "STATE", "TRIGGER", "TABLE", "ACCESS", "ID"],
                rows,
            )
        }
        FlowCommand::Show { env, flow } => {
            let id = flow_id(&mut c, &env, &flow).await?;
            let f: Value = c.get(&format!("{}/{id}", base(&env))).await?;
            show_flow(global, &f)
        }
        FlowCommand::On { env, flow } => {
            let id = flow_id(&mut c, &env, &flow).await?;
            let f: Value = c
                .send(
                    Method::POST,
                    &format!("{}/{id}/turnOn", base(&env)),
                    &json!({}),
                )
                .await?;
            show_flow(global, &f)
        }
        FlowCommand::Off { env, flow } => {
            let id = flow_id(&mut c, &env, &flow).await?;
            let f: Value = c
                .send(
                    Method::POST,
                    &format!("{}/{id}/turnOff", base(&env)),
                    &json!({}),
                )
                .await?;
            show_flow(global, &f)
        }
        FlowCommand::Run {
            env,
            flow,
            inputs,
            connections,
        } => {
            let id = flow_id(&mut c, &env, &flow).await?;
            let mut body = Map::new();
            for kv in &inputs {
                let (k, v) = kv
                    .split_once('=')
                    .with_context(|| format!("'{kv}' is not name=value"))?;
                let value = serde_json::from_str(v).unwrap_or_else(|_| Value::String(v.into()));
                body.insert(k.to_string(), value);
            }
            if !connections.is_empty() {
                let mut chosen = Map::new();
                for kv in &connections {
                    let (k, v) = kv
                        .split_once('=')
                        .with_context(|| format!("'{kv}' is not name=connection"))?;
                    chosen.insert(k.to_string(), Value::String(v.into()));
                }
                body.insert("$connections".into(), Value::Object(chosen));
            }
            let r: Value = c
                .send(
                    Method::POST,
                    &format!("{}/{id}/run", base(&env)),
                    &Value::Object(body),
                )
                .await?;
            output::pairs(
                global.output,
                &r,
                vec![("run", text(&r, "id")), ("status", text(&r, "status"))],
            )
        }
        FlowCommand::Runs {
            env,
            flow,
            run,
            top,
        } => {
            let id = flow_id(&mut c, &env, &flow).await?;
            if let Some(run) = run {
                let r: Value = c.get(&format!("{}/{id}/runs/{run}", base(&env))).await?;
                return show_run(global, &r);
            }
            let all: Vec<Value> = c
                .list(&format!("{}/{id}/runs?$top={top}", base(&env)))
                .await?;
            let rows = all
                .iter()
                .map(|r| {
                    vec![
                        text(r, "id"),
                        text(r, "status"),
                        text(r, "startDateTime"),
                        text(r, "endDateTime"),
                        r["error"]["code"].as_str().unwrap_or("").to_string(),
                    ]
                })
                .collect();
            output::show(
                global.output,
                &all,
                &["RUN", "STATUS", "STARTED", "ENDED", "ERROR"],
                rows,
            )
        }
        FlowCommand::Cancel { env, flow, run } => {
            let id = flow_id(&mut c, &env, &flow).await?;
            let r: Value = c
                .send(
                    Method::POST,
                    &format!("{}/{id}/runs/{run}/cancel", base(&env)),
                    &json!({}),
                )
                .await?;
            if r["status"] != "Cancelled" {
                bail!("the run is {}", text(&r, "status"));
            }
            show_run(global, &r)
        }
        FlowCommand::Delete { env, flow } => {
            let id = flow_id(&mut c, &env, &flow).await?;
            c.send_empty::<Value>(Method::DELETE, &format!("{}/{id}", base(&env)), None)
                .await?;
            println!("deleted {id}");
            Ok(())
        }
        FlowCommand::RunOnly(cmd) => run_only(global, &mut c, cmd).await,
    }
}

async fn run_only(global: &Global, c: &mut Client, cmd: RunOnlyCommand) -> anyhow::Result<()> {
    let path = |env: &str, id: &str| format!("/v1.0/environments/{env}/flows/{id}/runOnlyUsers");
    match cmd {
        RunOnlyCommand::Add {
            env,
            flow,
            system_user,
            team,
        } => {
            let id = flow_id(c, &env, &flow).await?;
            let body = match (system_user, team) {
                (Some(u), _) => json!({"systemUserId": u}),
                (None, Some(t)) => json!({"teamId": t}),
                (None, None) => bail!("name a --system-user or a --team"),
            };
            let g: Value = c.send(Method::POST, &path(&env, &id), &body).await?;
            output::pairs(
                global.output,
                &g,
                vec![
                    ("type", text(&g, "type")),
                    (
                        "id",
                        g["systemUserId"]
                            .as_str()
                            .or(g["teamId"].as_str())
                            .unwrap_or("")
                            .to_string(),
                    ),
                    ("granted", text(&g, "grantedDateTime")),
                ],
            )
        }
        RunOnlyCommand::Remove {
            env,
            flow,
            principal,
        } => {
            let id = flow_id(c, &env, &flow).await?;
            c.send_empty::<Value>(
                Method::DELETE,
                &format!("{}/{principal}", path(&env, &id)),
                None,
            )
            .await?;
            println!("removed {principal}");
            Ok(())
        }
        RunOnlyCommand::List { env, flow } => {
            let id = flow_id(c, &env, &flow).await?;
            let all: Vec<Value> = c.list(&path(&env, &id)).await?;
            let rows = all
                .iter()
                .map(|g| {
                    vec![
                        text(g, "type"),
                        g["systemUserId"]
                            .as_str()
                            .or(g["teamId"].as_str())
                            .unwrap_or("")
                            .to_string(),
                        text(g, "grantedDateTime"),
                    ]
                })
                .collect();
            output::show(global.output, &all, &["TYPE", "ID", "GRANTED"], rows)
        }
    }
}
