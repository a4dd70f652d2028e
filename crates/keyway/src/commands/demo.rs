//! `keyway demo`: the newcomer's first command. It starts an embedded server in a temporary
//! directory and walks through seed 002 over the server's own HTTP API — an app registration
//! whose secret is shown once, its application user holding a least-privilege role, a
//! connection tested, a flow, a row, the flow's run and the audit history naming the
//! application user — then promotes the flow from DEV to TEST through a solution and its
//! deployment settings file. Every step is a real call a script could make.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use keyway_server::{App, Config};
use reqwest::Method;
use serde_json::{Value, json};

use keyway_core::solutions::{Archive, settings_template};

use crate::client::{Client, web_answer};
use crate::{Global, OutputFormat};

#[derive(clap::Args)]
pub struct DemoArgs {
    /// Where the demo server keeps its data (default: a new temporary directory).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// The address to listen on (default: a free port on 127.0.0.1).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Stop the server when the walkthrough ends instead of serving until Ctrl-C.
    #[arg(long)]
    exit: bool,
}

const DV: &str = "shared_commondataserviceforapps";
const ROLE: &str = "Flow contact writer";
const FLOW: &str = "Add a contact for each new account";
const REFERENCE: &str = "kw_sharedcommondataserviceforapps_contoso";
const SOLUTION: &str = "ContosoFlows";
/// The least the flow's identity needs: add contacts under accounts, read both.
const PRIVILEGES: &[&str] = &[
    "prvCreatecontact:Global",
    "prvReadcontact:Global",
    "prvAppendcontact:Global",
    "prvAppendToaccount:Global",
    "prvReadaccount:Global",
];

/// The walkthrough's narration: numbered steps with indented details.
struct Narrator {
    step: usize,
}

impl Narrator {
    fn step(&mut self, title: &str) {
        self.step += 1;
        println!("\n{:>2}. {title}", self.step);
    }

    fn line(&self, label: &str, value: impl std::fmt::Display) {
        println!("    {label:<22} {value}");
    }
}

/// What the walkthrough makes, for the closing summary.
struct Made {
    app_id: String,
    secret: String,
    dev: Env,
    test: Env,
    solution_file: PathBuf,
    settings_file: PathBuf,
}

#[derive(Clone)]
struct Env {
    id: String,
    name: String,
    url: String,
}

pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let (data_dir, _temp) = match args.data_dir {
        Some(d) => (d, None),
        None => {
            let t = tempfile::Builder::new()
                .prefix("keyway-demo.")
                .tempdir()
                .context("creating a temporary directory")?;
            (t.path().to_path_buf(), Some(t))
        }
    };
    let app = App::build(
        Config::new(&data_dir, args.listen),
        Arc::new(keyway_core::SystemClock),
        None,
    )
    .await
    .context("starting the demo server")?;
    let handle = app.handle();
    let base_url = app.base_url.clone();
    let profile = app.profile_path.clone();
    let ca = app.ca_path.clone();
    let server = tokio::spawn(app.serve());
    println!(
        "Keyway demo: a server at {base_url}, data in {}",
        data_dir.display()
    );

    let global = Global {
        profile: profile.clone(),
        output: OutputFormat::Table,
    };
    let made = walkthrough(&global, &data_dir).await?;
    let took = started.elapsed();

    println!("\nDone in {:.1} s. Keep exploring:", took.as_secs_f64());
    let n = Narrator { step: 0 };
    n.line("server", &base_url);
    n.line("DEV Web API", format!("{}/api/data/v9.2", made.dev.url));
    n.line("TEST Web API", format!("{}/api/data/v9.2", made.test.url));
    n.line("admin profile", profile.display());
    if let Some(ca) = &ca {
        n.line("CA to trust", ca.display());
    }
    n.line("app (client id)", &made.app_id);
    n.line("app secret", &made.secret);
    n.line("solution archive", made.solution_file.display());
    n.line("settings file", made.settings_file.display());
    println!(
        "\n    export KEYWAY_PROFILE={}\n    keyway flow runs {} '{FLOW}'\n    KEYWAY_CLIENT_SECRET='<app secret>' keyway token get --client-id {} --scope {}/.default",
        profile.display(),
        made.test.name,
        made.app_id,
        made.dev.url
    );
    if args.exit {
        handle.graceful_shutdown(Some(Duration::from_secs(5)));
        server.await.context("the demo server")??;
        return Ok(());
    }
    println!(
        "\nServing until Ctrl-C (the data directory goes with it unless you passed --data-dir)."
    );
    tokio::select! {
        r = server => { r.context("the demo server")??; }
        _ = tokio::signal::ctrl_c() => {
            handle.graceful_shutdown(Some(Duration::from_secs(5)));
        }
    }
    Ok(())
}

/// A token for `scope` with an application's secret.
async fn token(c: &Client, client_id: &str, secret: &str, scope: &str) -> anyhow::Result<String> {
    Ok(c.token_for(&[
        ("grant_type", "client_credentials"),
        ("client_id", client_id),
        ("client_secret", secret),
        ("scope", scope),
    ])
    .await?
    .access_token)
}

/// A Web API call with a bearer token: (body, the `OData-EntityId` header).
async fn web(
    c: &Client,
    token: &str,
    method: Method,
    url: &str,
    body: Option<&Value>,
) -> anyhow::Result<(Value, Option<String>)> {
    let mut req = c.http.request(method, url).bearer_auth(token);
    if let Some(b) = body {
        req = req.json(b);
    }
    let resp = req
        .send()
        .await
        .with_context(|| format!("cannot reach {url}"))?;
    let (text, location) = web_answer(resp).await?;
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).context("a Web API answer that is not JSON")?
    };
    Ok((body, location))
}

fn id_in(location: Option<String>) -> anyhow::Result<String> {
    let l = location.context("the create answered no OData-EntityId")?;
    let open = l.rfind('(').context("an OData-EntityId without an id")?;
    Ok(l[open + 1..l.len() - 1].to_string())
}

fn flow_definition(connection: &str) -> Value {
    let host = |op: &str| json!({"connectionName": connection, "operationId": op, "apiId": format!("/providers/Microsoft.PowerApps/apis/{DV}")});
    json!({
        "$schema": "https://schema.management.azure.com/providers/Microsoft.Logic/schemas/2016-06-01/workflowdefinition.json#",
        "contentVersion": "1.0.0.0",
        "triggers": {"When_a_row_is_added": {
            "type": "OpenApiConnectionWebhook",
            "inputs": {"host": host("SubscribeWebhookTrigger"), "parameters": {
                "subscriptionRequest/message": 1,
                "subscriptionRequest/entityname": "account",
                "subscriptionRequest/scope": 4,
                "subscriptionRequest/runas": 3,
            }},
        }},
        "actions": {"Add_a_new_row": {
            "runAfter": {},
            "type": "OpenApiConnection",
            "inputs": {"host": host("CreateRecord"), "parameters": {
                "entityName": "contacts",
                "item/lastname": "Contact of @{triggerOutputs()?['body/name']}",
                "item/parentcustomerid_account@odata.bind": "accounts(@{triggerOutputs()?['body/accountid']})",
            }},
        }},
    })
}

/// A new environment; with the least-privilege role when `role` (TEST gets it from the solution).
async fn environment(c: &mut Client, name: &str, role: bool) -> anyhow::Result<Env> {
    let e: Value = c
        .send(Method::POST, "/v1.0/environments", &json!({"name": name}))
        .await?;
    let env = Env {
        id: e["id"]
            .as_str()
            .context("an environment without id")?
            .into(),
        name: name.into(),
        url: e["url"]
            .as_str()
            .context("an environment without url")?
            .into(),
    };
    if role {
        let _: Value = c
            .send(
                Method::POST,
                &format!("/v1.0/environments/{}/roles", env.id),
                &json!({"name": ROLE, "privileges": PRIVILEGES}),
            )
            .await?;
    }
    Ok(env)
}

/// The application user and a tested connection with the app's credentials; the user's id.
async fn identity_in(
    c: &mut Client,
    n: &Narrator,
    env: &Env,
    app_id: &str,
    secret: &str,
    connection: &str,
) -> anyhow::Result<String> {
    let u: Value = c
        .send(
            Method::POST,
            &format!("/v1.0/environments/{}/addAppUser", env.id),
            &json!({"servicePrincipalAppId": app_id, "roles": [ROLE]}),
        )
        .await?;
    let user = u["systemuserid"].as_str().unwrap_or_default().to_string();
    n.line("application user", format!("{user} (role: {ROLE})"));
    let tenant = c.profile.tenant_id.to_string();
    let made = c
        .platform(
            Method::PUT,
            &format!("/connectivity/connectors/{DV}/connections/{connection}?api-version=1"),
            Some(&json!({"properties": {
                "displayName": format!("Dataverse as D365-App-Registration ({})", env.name),
                "environment": {"name": env.id},
                "connectionParametersSet": {"name": "ServicePrincipalOauth", "values": {
                    "token:clientId": {"value": app_id},
                    "token:clientSecret": {"value": secret},
                    "token:TenantId": {"value": tenant},
                    "token:grantType": {"value": "client_credentials"},
                }},
            }})),
        )
        .await?
        .context("the connection answered nothing")?;
    let status = &made["properties"]["statuses"][0];
    if status["status"] != "Connected" {
        bail!("the connection {connection} did not test as Connected: {status}");
    }
    n.line(
        "connection",
        format!("{connection}: Connected (a token with the secret, then WhoAmI)"),
    );
    Ok(user)
}

/// Wait for a flow's newest run to end; the run with its actions.
async fn run_of(c: &mut Client, env: &Env, flow: &str, count: usize) -> anyhow::Result<Value> {
    let path = format!("/v1.0/environments/{}/flows/{flow}/runs", env.id);
    for _ in 0..200 {
        let runs: Value = c.get(&path).await?;
        let runs = runs["value"].as_array().cloned().unwrap_or_default();
        if runs.len() >= count
            && let Some(r) = runs.first()
            && !matches!(r["status"].as_str(), Some("Queued" | "Running"))
        {
            let id = r["id"].as_str().unwrap_or_default();
            return c.get(&format!("{path}/{id}")).await;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    bail!("the flow's run did not end within 5 seconds")
}

async fn walkthrough(global: &Global, data_dir: &Path) -> anyhow::Result<Made> {
    let mut c = Client::new(global)?;
    let mut n = Narrator { step: 0 };

    n.step("Tenant and its administrator");
    n.line("tenant", c.profile.tenant_id);
    n.line("admin client id", c.profile.client_id);

    n.step("App registration (seed 002, step 1)");
    let app: Value = c
        .send(
            Method::POST,
            "/v1.0/applications",
            &json!({"displayName": "D365-App-Registration"}),
        )
        .await?;
    let app_id = app["appId"]
        .as_str()
        .context("an app without appId")?
        .to_string();
    let object_id = app["id"].as_str().unwrap_or_default().to_string();
    let _: Value = c
        .send(
            Method::POST,
            "/v1.0/servicePrincipals",
            &json!({"appId": app_id}),
        )
        .await?;
    n.line("application (client) id", &app_id);

    n.step("Client secret (step 2): shown once, stored only as a hash");
    let pw: Value = c
        .send(
            Method::POST,
            &format!("/v1.0/applications/{object_id}/addPassword"),
            &json!({"passwordCredential": {"displayName": "D365AppSecret"}}),
        )
        .await?;
    let secret = pw["secretText"]
        .as_str()
        .context("no secretText")?
        .to_string();
    n.line("secret", &secret);
    n.line("expires", pw["endDateTime"].as_str().unwrap_or_default());

    n.step("Environments DEV and TEST; a least-privilege role in DEV");
    let dev = environment(&mut c, "dev", true).await?;
    let test = environment(&mut c, "test", false).await?;
    n.line("DEV", &dev.url);
    n.line("TEST", &test.url);
    n.line("role", format!("{ROLE}: {}", PRIVILEGES.join(", ")));

    n.step("Application user and connection in DEV (steps 3-5)");
    let dev_user = identity_in(&mut c, &n, &dev, &app_id, &secret, "sp-dev").await?;

    n.step("Connection reference in DEV: flows name it, never the connection");
    let dev_maker = maker_token(&c, &dev).await?;
    web(
        &c,
        &dev_maker,
        Method::POST,
        &format!("{}/api/data/v9.2/connectionreferences", dev.url),
        Some(&json!({
            "connectionreferencelogicalname": REFERENCE,
            "connectionreferencedisplayname": "Dataverse for the Contoso flows",
            "connectorid": format!("/providers/Microsoft.PowerApps/apis/{DV}"),
            "connectionid": "sp-dev",
        })),
    )
    .await?;
    n.line("reference", format!("{REFERENCE} -> sp-dev"));

    n.step("Cloud flow in DEV: when an account is added, add a contact");
    let flow: Value = c
        .send(
            Method::POST,
            &format!("/v1.0/environments/{}/flows", dev.id),
            &json!({
                "name": FLOW,
                "definition": flow_definition(DV),
                "connectionReferences": {DV: {
                    "runtimeSource": "embedded",
                    "connection": {"connectionReferenceLogicalName": REFERENCE},
                    "api": {"name": DV},
                }},
            }),
        )
        .await?;
    let flow_id = flow["id"]
        .as_str()
        .context("a flow without id")?
        .to_string();
    n.line(
        "flow",
        format!("{FLOW} ({})", flow["state"].as_str().unwrap_or_default()),
    );

    n.step("A row added in DEV");
    let contact = row_and_run(&mut c, &n, &dev, &dev_maker, &flow_id, &dev_user).await?;

    n.step("The contact's audit history names the application user");
    let (audits, _) = web(
        &c,
        &dev_maker,
        Method::GET,
        &format!(
            "{}/api/data/v9.2/audits?$filter=_objectid_value eq {contact}",
            dev.url
        ),
        None,
    )
    .await?;
    let rows = audits["value"].as_array().cloned().unwrap_or_default();
    for a in &rows {
        n.line(
            "audit",
            format!(
                "{} by {}",
                match a["operation"].as_i64() {
                    Some(1) => "Create",
                    Some(2) => "Update",
                    Some(3) => "Delete",
                    _ => "Change",
                },
                a["_userid_value"].as_str().unwrap_or_default()
            ),
        );
    }
    if rows.is_empty() || rows.iter().any(|a| a["_userid_value"] != dev_user.as_str()) {
        bail!("the audit history does not name the application user: {audits}");
    }

    let (solution_file, settings_file) =
        promote(&mut c, &mut n, data_dir, &dev, &test, &app_id, &secret).await?;
    Ok(Made {
        app_id,
        secret,
        dev,
        test,
        solution_file,
        settings_file,
    })
}

/// The administrator's Web API token for an environment.
async fn maker_token(c: &Client, env: &Env) -> anyhow::Result<String> {
    let id = c.profile.client_id.to_string();
    let secret = c.profile.client_secret.clone();
    token(c, &id, &secret, &format!("{}/.default", env.url)).await
}

/// Add an account, wait for the flow's run, check it acted as `user`: the contact it added.
async fn row_and_run(
    c: &mut Client,
    n: &Narrator,
    env: &Env,
    maker: &str,
    flow_id: &str,
    user: &str,
) -> anyhow::Result<String> {
    let (_, loc) = web(
        c,
        maker,
        Method::POST,
        &format!("{}/api/data/v9.2/accounts", env.url),
        Some(&json!({"name": "Contoso"})),
    )
    .await?;
    n.line("account", format!("Contoso ({})", id_in(loc)?));
    let run = run_of(c, env, flow_id, 1).await?;
    let action = run["actions"]
        .as_array()
        .and_then(|a| a.first())
        .cloned()
        .unwrap_or_default();
    n.line(
        "the flow's run",
        format!(
            "{}: {} {}",
            run["status"].as_str().unwrap_or_default(),
            action["name"].as_str().unwrap_or_default(),
            action["status"].as_str().unwrap_or_default()
        ),
    );
    n.line(
        "connection used",
        action["connection"]["name"].as_str().unwrap_or_default(),
    );
    let acted_as = action["identity"]["systemUserId"]
        .as_str()
        .unwrap_or_default();
    n.line("acted as", format!("{acted_as} (the application user)"));
    if run["status"] != "Succeeded" || acted_as != user {
        bail!("the run did not succeed as the application user: {run}");
    }
    Ok(action["outputs"]["body"]["contactid"]
        .as_str()
        .context("the action's output names no contact")?
        .to_string())
}

/// DEV -> TEST through a solution and its deployment settings file, as `pac` does it.
async fn promote(
    c: &mut Client,
    n: &mut Narrator,
    data_dir: &Path,
    dev: &Env,
    test: &Env,
    app_id: &str,
    secret: &str,
) -> anyhow::Result<(PathBuf, PathBuf)> {
    n.step("Export the solution from DEV: the role, the reference, the flow");
    let solutions = format!("/v1.0/environments/{}/solutions", dev.id);
    let _: Value = c
        .send(
            Method::POST,
            &solutions,
            &json!({"uniqueName": SOLUTION, "friendlyName": "Contoso flows", "publisherPrefix": "kw"}),
        )
        .await?;
    for (kind, name) in [
        ("role", ROLE),
        ("connectionreference", REFERENCE),
        ("flow", FLOW),
    ] {
        let _: Value = c
            .send(
                Method::POST,
                &format!("{solutions}/{SOLUTION}/components"),
                &json!({"type": kind, "name": name}),
            )
            .await?;
    }
    let archive: Value = c
        .send(
            Method::POST,
            &format!("{solutions}/{SOLUTION}/export"),
            &json!({}),
        )
        .await?;
    let parsed = Archive::parse(&archive).map_err(anyhow::Error::msg)?;
    let version = parsed.solution.version.clone();
    let solution_file = data_dir.join(format!("{SOLUTION}_{}.json", version.replace('.', "_")));
    std::fs::write(&solution_file, serde_json::to_vec_pretty(&archive)?)?;
    n.line(
        "archive",
        format!("{} (version {version})", solution_file.display()),
    );

    let settings_file = data_dir.join("settings.test.json");
    let mut settings = settings_template(&parsed);
    n.line("settings (template)", serde_json::to_string(&settings)?);

    n.step("Import into TEST without a connection: the flow stays off");
    let import = format!("/v1.0/environments/{}/solutions/import", test.id);
    let report: Value = c
        .send(Method::POST, &import, &json!({"solution": archive}))
        .await?;
    let flow = &report["flows"][0];
    n.line("flow", flow["state"].as_str().unwrap_or_default());
    for m in flow["missingConnectionReferences"]
        .as_array()
        .into_iter()
        .flatten()
    {
        n.line(
            "missing",
            format!(
                "{}: {}",
                m["logicalName"].as_str().unwrap_or_default(),
                m["message"].as_str().unwrap_or_default()
            ),
        );
    }
    if flow["state"] != "off" {
        bail!("an import without connections turned the flow on: {report}");
    }

    n.step("TEST's own application user and connection");
    let test_user = identity_in(c, n, test, app_id, secret, "sp-test").await?;

    n.step("Import into TEST with the settings file: the reference bound, the flow on");
    for r in &mut settings.connection_references {
        r.connection_id = "sp-test".into();
    }
    std::fs::write(&settings_file, serde_json::to_vec_pretty(&settings)?)?;
    n.line("settings file", settings_file.display());
    let report: Value = c
        .send(
            Method::POST,
            &import,
            &json!({"solution": archive, "settings": settings}),
        )
        .await?;
    let flow = &report["flows"][0];
    n.line("flow", flow["state"].as_str().unwrap_or_default());
    if flow["state"] != "on" {
        bail!("the import with settings left the flow off: {report}");
    }
    let flow_id = flow["id"].as_str().unwrap_or_default().to_string();

    n.step("A row added in TEST runs the promoted flow with TEST's connection");
    let maker = maker_token(c, test).await?;
    row_and_run(c, n, test, &maker, &flow_id, &test_user).await?;
    Ok((solution_file, settings_file))
}
