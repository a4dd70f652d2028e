//! Solutions through the real binary (seed 002's ALM): a flow in DEV names a connection reference
//! bound to DEV's connection; `keyway solution create|add|export` writes the archive,
//! `create-settings` the deployment settings file in pac's shape, and `import` into TEST leaves
//! the flow off (listing the reference) until the settings file gives TEST's connection — then the
//! flow turns on and runs there with TEST's connection.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

mod common;

use common::{json, keyway, ok, serve};

const REF: &str = "pfx_sharedcommondataserviceforapps_abc";
const DV_ID: &str = "/providers/Microsoft.PowerApps/apis/shared_commondataserviceforapps";

/// The Web API of an environment as the profile's application: (client, base, token).
fn web(profile: &Path, env: &str) -> (reqwest::Client, String, String) {
    let p: Value = serde_json::from_slice(&std::fs::read(profile).unwrap()).unwrap();
    let ca = std::fs::read(p["caPath"].as_str().unwrap()).unwrap();
    let http = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&ca).unwrap()])
        .build()
        .unwrap();
    let url = json(profile, &["env", "show", env])["url"]
        .as_str()
        .unwrap()
        .to_string();
    let token = ok(
        profile,
        &[
            "token",
            "get",
            "--scope",
            &format!("{url}/.default"),
            "--raw",
        ],
    )
    .trim()
    .to_string();
    (http, format!("{url}/api/data/v9.2"), token)
}

fn post(web: &(reqwest::Client, String, String), set: &str, body: Value) {
    let (http, api, token) = web;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (status, text) = rt.block_on(async {
        let r = http
            .post(format!("{api}/{set}"))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    });
    assert_eq!(status, 204, "{set}: {text}");
}

/// An environment with the service principal as an application user and its connection.
fn stage(profile: &Path, env: &str, app_id: &str, secret_file: &Path, tenant: &str) {
    json(profile, &["env", "create", env]);
    ok(
        profile,
        &[
            "env",
            "app-user",
            "add",
            env,
            "--app-id",
            app_id,
            "--role",
            "System Administrator",
        ],
    );
    let c = json(
        profile,
        &[
            "connection",
            "create",
            env,
            "--name",
            &format!("sp-{env}"),
            "--set",
            "ServicePrincipalOauth",
            "--value",
            &format!("token:clientId={app_id}"),
            "--value",
            &format!("token:TenantId={tenant}"),
            "--secret",
            &format!("token:clientSecret=@{}", secret_file.display()),
        ],
    );
    assert_eq!(c["properties"]["statuses"][0]["status"], "Connected", "{c}");
}

#[test]
fn export_create_settings_and_import_through_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let _server = serve(dir.path(), &[]);
    let profile = dir.path().join("admin.json");
    let app = json(&profile, &["app", "create", "D365-App-Registration"]);
    let app_id = app["appId"].as_str().unwrap().to_string();
    let secret = json(&profile, &["app", "secret", "add", &app_id])["secretText"]
        .as_str()
        .unwrap()
        .to_string();
    json(&profile, &["sp", "create", &app_id]);
    let tenant = json(&profile, &["tenant", "list"])[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let secret_file = dir.path().join("sp.secret");
    std::fs::write(&secret_file, &secret).unwrap();
    for env in ["dev", "test"] {
        stage(&profile, env, &app_id, &secret_file, &tenant);
    }

    // DEV: a reference bound to DEV's connection, and seed 002's flow naming the reference.
    post(
        &web(&profile, "dev"),
        "connectionreferences",
        json!({"connectionreferencelogicalname": REF, "connectorid": DV_ID, "connectionid": "sp-dev"}),
    );
    let host = json!({"connectionName": REF, "operationId": "CreateRecord"});
    let definition = json!({
        "triggers": {"When_a_row_is_added": {"type": "OpenApiConnectionWebhook", "inputs": {
            "host": {"connectionName": REF, "operationId": "SubscribeWebhookTrigger"},
            "parameters": {"subscriptionRequest/message": 1, "subscriptionRequest/entityname": "account", "subscriptionRequest/scope": 4},
        }}},
        "actions": {"Add_a_new_row": {"type": "OpenApiConnection", "runAfter": {}, "inputs": {
            "host": host,
            "parameters": {
                "entityName": "contacts",
                "item/lastname": "@triggerOutputs()?['body/name']",
                "item/parentcustomerid_account@odata.bind": "accounts(@{triggerOutputs()?['body/accountid']})",
            },
        }}},
    });
    let def_file = dir.path().join("flow.json");
    std::fs::write(&def_file, definition.to_string()).unwrap();
    let flow = json(
        &profile,
        &[
            "flow",
            "create",
            "dev",
            "--name",
            "Account to contact",
            "--definition",
            def_file.to_str().unwrap(),
        ],
    );
    assert_eq!(flow["state"], "on", "{flow}");

    // The solution, exported and its settings file written.
    let s = json(
        &profile,
        &[
            "solution",
            "create",
            "dev",
            "--name",
            "ContosoFlows",
            "--prefix",
            "pfx",
            "--display-name",
            "Contoso flows",
        ],
    );
    assert_eq!(s["version"], "1.0.0.0", "{s}");
    ok(
        &profile,
        &[
            "solution",
            "add",
            "dev",
            "ContosoFlows",
            "flow",
            "Account to contact",
        ],
    );
    let (success, _, err) = keyway(
        &profile,
        &[
            "solution",
            "add",
            "dev",
            "ContosoFlows",
            "flow",
            "No such flow",
        ],
    );
    assert!(!success && err.contains("No such flow"), "{err}");
    let shown = ok(&profile, &["solution", "show", "dev", "ContosoFlows"]);
    assert!(shown.contains("flow Account to contact"), "{shown}");
    let archive_file = dir.path().join("ContosoFlows.json");
    let archive_path = archive_file.to_str().unwrap();
    let out = ok(
        &profile,
        &[
            "solution",
            "export",
            "dev",
            "ContosoFlows",
            "--solution-file",
            archive_path,
            "--version",
            "1.2.0.0",
        ],
    );
    assert!(out.contains("1.2.0.0"), "{out}");
    let archive: Value = serde_json::from_slice(&std::fs::read(&archive_file).unwrap()).unwrap();
    assert_eq!(archive["format"], "keyway-solution/1");
    assert_eq!(
        archive["connectionReferences"][0]["logicalName"], REF,
        "{archive}"
    );
    let listed = ok(&profile, &["solution", "list", "dev"]);
    assert!(
        listed.contains("ContosoFlows") && listed.contains("1.2.0.0"),
        "{listed}"
    );

    let settings_file = dir.path().join("settings.json");
    let settings_path = settings_file.to_str().unwrap();
    ok(
        &profile,
        &[
            "solution",
            "create-settings",
            "--solution-file",
            archive_path,
            "--settings-file",
            settings_path,
        ],
    );
    let written = std::fs::read_to_string(&settings_file).unwrap();
    let compact: String = written.chars().filter(|c| !c.is_whitespace()).collect();
    assert_eq!(
        compact,
        format!(
            r#"{{"EnvironmentVariables":[],"ConnectionReferences":[{{"LogicalName":"{REF}","ConnectionId":"","ConnectorId":"{DV_ID}"}}]}}"#
        ),
        "pac's keys, in pac's order"
    );

    // TEST without settings: imported, the flow off, the unbound reference named.
    let out = ok(
        &profile,
        &[
            "solution",
            "import",
            "test",
            "--solution-file",
            archive_path,
        ],
    );
    assert!(
        out.contains("Account to contact") && out.contains(REF) && out.contains("stays off"),
        "{out}"
    );
    let flows = json(&profile, &["flow", "list", "test"]);
    assert_eq!(flows[0]["state"], "off", "{flows}");

    // A settings file naming a connection TEST lacks is refused.
    let mut settings: Value = serde_json::from_str(&written).unwrap();
    settings["ConnectionReferences"][0]["ConnectionId"] = json!("sp-dev");
    std::fs::write(&settings_file, settings.to_string()).unwrap();
    let (success, _, err) = keyway(
        &profile,
        &[
            "solution",
            "import",
            "test",
            "--solution-file",
            archive_path,
            "--settings-file",
            settings_path,
        ],
    );
    assert!(!success && err.contains("sp-dev"), "{err}");

    // With TEST's connection: the flow turns on and runs with it.
    settings["ConnectionReferences"][0]["ConnectionId"] = json!("sp-test");
    std::fs::write(&settings_file, settings.to_string()).unwrap();
    let report = json(
        &profile,
        &[
            "solution",
            "import",
            "test",
            "--solution-file",
            archive_path,
            "--settings-file",
            settings_path,
        ],
    );
    assert_eq!(report["flows"][0]["state"], "on", "{report}");
    assert_eq!(report["solution"]["version"], "1.2.0.0");
    post(
        &web(&profile, "test"),
        "accounts",
        json!({"name": "Fabrikam"}),
    );
    let mut runs = Value::Null;
    for _ in 0..200 {
        runs = json(&profile, &["flow", "runs", "test", "Account to contact"]);
        if runs.as_array().is_some_and(|r| {
            r.len() == 1 && !matches!(r[0]["status"].as_str(), Some("Queued" | "Running"))
        }) {
            break;
        }
        // A plain test thread, not an async runtime: sleeping blocks nothing else.
        #[allow(clippy::disallowed_methods)]
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(runs[0]["status"], "Succeeded", "{runs}");
    let run = json(
        &profile,
        &[
            "flow",
            "runs",
            "test",
            "Account to contact",
            "--run",
            runs[0]["id"].as_str().unwrap(),
        ],
    );
    assert_eq!(run["actions"][0]["connection"]["name"], "sp-test", "{run}");
}
