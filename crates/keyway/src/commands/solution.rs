//! `keyway solution …`: solutions of an environment (seed 002's ALM) as the profile's
//! application, which needs System Customizer or System Administrator there: make one, add its
//! components, export it to a versioned archive, write the deployment settings file in `pac`'s
//! shape, and import the archive into another environment with that file filled in.

use anyhow::{Context, bail};
use clap::Subcommand;
use reqwest::Method;
use serde_json::{Value, json};

use crate::client::Client;
use crate::{Global, output};

#[derive(Subcommand)]
pub enum SolutionCommand {
    /// Make an empty solution.
    Create {
        /// The environment (name or id).
        env: String,
        /// Its unique name (letters, digits, underscores).
        #[arg(long)]
        name: String,
        /// The publisher's customization prefix (2–8 lower-case letters or digits).
        #[arg(long)]
        prefix: String,
        #[arg(long)]
        display_name: Option<String>,
        /// Its first version (default 1.0.0.0).
        #[arg(long)]
        version: Option<String>,
    },
    /// Add a component the environment has: table, role, flow, connectionreference or
    /// environmentvariable, by its name (logical name, role name, flow name, reference logical
    /// name, variable schema name).
    Add {
        env: String,
        solution: String,
        #[arg(value_name = "TYPE")]
        kind: String,
        name: String,
    },
    /// Take a component out of the solution (the component itself stays).
    Remove {
        env: String,
        solution: String,
        #[arg(value_name = "TYPE")]
        kind: String,
        name: String,
    },
    /// The environment's solutions.
    List { env: String },
    /// One solution with its components.
    Show { env: String, solution: String },
    /// Write the solution to an archive (one JSON document, format keyway-solution/1), at the
    /// next revision or at --version.
    Export {
        env: String,
        solution: String,
        #[arg(long)]
        solution_file: String,
        #[arg(long)]
        version: Option<String>,
    },
    /// Write the deployment settings file for an archive (pac's shape: EnvironmentVariables
    /// and ConnectionReferences, values and ConnectionIds empty for you to fill).
    CreateSettings {
        #[arg(long)]
        solution_file: String,
        #[arg(long)]
        settings_file: String,
    },
    /// Import an archive into an environment, binding its connection references and setting its
    /// variables from the settings file. Flows that were on turn on only when every reference
    /// they use is bound; the rest stay off and are listed with what they miss.
    Import {
        env: String,
        #[arg(long)]
        solution_file: String,
        #[arg(long)]
        settings_file: Option<String>,
    },
}

fn text(v: &Value, k: &str) -> String {
    match &v[k] {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn read_json(path: &str) -> anyhow::Result<Value> {
    let raw = std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
    serde_json::from_str(&raw).with_context(|| format!("{path} is not JSON"))
}

fn write_json(path: &str, v: &impl serde::Serialize) -> anyhow::Result<()> {
    let mut text = serde_json::to_string_pretty(v)?;
    text.push('\n');
    std::fs::write(path, text).with_context(|| format!("writing {path}"))
}

fn show_solution(global: &Global, s: &Value) -> anyhow::Result<()> {
    let components: Vec<String> = s["components"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| format!("{} {}", text(c, "type"), text(c, "name")))
        .collect();
    output::pairs(
        global.output,
        s,
        vec![
            ("name", text(s, "uniqueName")),
            ("display name", text(s, "friendlyName")),
            ("publisher prefix", text(s, "publisherPrefix")),
            ("version", text(s, "version")),
            ("components", components.join(", ")),
        ],
    )
}

fn show_import(global: &Global, r: &Value) -> anyhow::Result<()> {
    if global.output == crate::OutputFormat::Json {
        println!("{}", serde_json::to_string_pretty(r)?);
        return Ok(());
    }
    let s = &r["solution"];
    println!(
        "imported {} {} into the environment",
        text(s, "uniqueName"),
        text(s, "version")
    );
    let flows = r["flows"].as_array().cloned().unwrap_or_default();
    let rows = flows
        .iter()
        .map(|f| {
            let missing: Vec<String> = f["missingConnectionReferences"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|m| text(m, "logicalName"))
                .collect();
            vec![text(f, "name"), text(f, "state"), missing.join(", ")]
        })
        .collect();
    output::table(&["FLOW", "STATE", "MISSING CONNECTION REFERENCES"], rows);
    for f in &flows {
        for m in f["missingConnectionReferences"]
            .as_array()
            .into_iter()
            .flatten()
        {
            println!(
                "flow '{}' stays off: {} {}",
                text(f, "name"),
                text(m, "code"),
                text(m, "message")
            );
        }
    }
    Ok(())
}

pub async fn run(global: &Global, cmd: SolutionCommand) -> anyhow::Result<()> {
    // Writing a settings file needs no server.
    if let SolutionCommand::CreateSettings {
        solution_file,
        settings_file,
    } = &cmd
    {
        let archive = keyway_core::solutions::Archive::parse(&read_json(solution_file)?)
            .map_err(|e| anyhow::anyhow!("{solution_file}: {e}"))?;
        let settings = keyway_core::solutions::settings_template(&archive);
        write_json(settings_file, &settings)?;
        println!(
            "wrote {settings_file}: {} environment variables, {} connection references — fill in each Value and ConnectionId (a connection's name in the target environment)",
            settings.environment_variables.len(),
            settings.connection_references.len()
        );
        return Ok(());
    }
    let mut c = Client::new(global)?;
    let base = |env: &str| format!("/v1.0/environments/{env}/solutions");
    match cmd {
        SolutionCommand::CreateSettings { .. } => Ok(()),
        SolutionCommand::Create {
            env,
            name,
            prefix,
            display_name,
            version,
        } => {
            let mut body = json!({"uniqueName": name, "publisherPrefix": prefix});
            if let Some(d) = display_name {
                body["friendlyName"] = d.into();
            }
            if let Some(v) = version {
                body["version"] = v.into();
            }
            let s: Value = c.send(Method::POST, &base(&env), &body).await?;
            show_solution(global, &s)
        }
        SolutionCommand::Add {
            env,
            solution,
            kind,
            name,
        } => {
            let s: Value = c
                .send(
                    Method::POST,
                    &format!("{}/{solution}/components", base(&env)),
                    &json!({"type": kind, "name": name}),
                )
                .await?;
            show_solution(global, &s)
        }
        SolutionCommand::Remove {
            env,
            solution,
            kind,
            name,
        } => {
            let s: Value = c
                .send(
                    Method::POST,
                    &format!("{}/{solution}/components/remove", base(&env)),
                    &json!({"type": kind, "name": name}),
                )
                .await?;
            show_solution(global, &s)
        }
        SolutionCommand::List { env } => {
            let all: Vec<Value> = c.list(&base(&env)).await?;
            let rows = all
                .iter()
                .map(|s| {
                    vec![
                        text(s, "uniqueName"),
                        text(s, "version"),
                        text(s, "publisherPrefix"),
                        text(s, "friendlyName"),
                    ]
                })
                .collect();
            output::show(
                global.output,
                &all,
                &["NAME", "VERSION", "PREFIX", "DISPLAY NAME"],
                rows,
            )
        }
        SolutionCommand::Show { env, solution } => {
            let s: Value = c.get(&format!("{}/{solution}", base(&env))).await?;
            show_solution(global, &s)
        }
        SolutionCommand::Export {
            env,
            solution,
            solution_file,
            version,
        } => {
            let body = match version {
                Some(v) => json!({"version": v}),
                None => json!({}),
            };
            let archive: Value = c
                .send(
                    Method::POST,
                    &format!("{}/{solution}/export", base(&env)),
                    &body,
                )
                .await?;
            write_json(&solution_file, &archive)?;
            output::pairs(
                global.output,
                &archive["solution"],
                vec![
                    ("exported", text(&archive["solution"], "uniqueName")),
                    ("version", text(&archive["solution"], "version")),
                    ("file", solution_file.clone()),
                ],
            )
        }
        SolutionCommand::Import {
            env,
            solution_file,
            settings_file,
        } => {
            let mut body = json!({"solution": read_json(&solution_file)?});
            if let Some(s) = &settings_file {
                body["settings"] = read_json(s)?;
            }
            let r: Value = c
                .send(Method::POST, &format!("{}/import", base(&env)), &body)
                .await?;
            if !r["flows"].is_array() {
                bail!("the server's answer has no flows: {r}");
            }
            show_import(global, &r)
        }
    }
}
