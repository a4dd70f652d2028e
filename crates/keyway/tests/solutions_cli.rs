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

use common::{
    ServicePrincipal, account_to_contact, app_user, create_flow, json, keyway, ok, serve,
    service_principal, web,
};

const REF: &str = "pfx_sharedcommondataserviceforapps_abc";
const DV_ID: &str = "/providers/Microsoft.PowerApps/apis/shared_commondataserviceforapps";

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
fn stage(profile: &Path, env: &str, sp: &ServicePrincipal) {
    json(profile, &["env", "create", env]);
    app_user(profile, env, &sp.app_id, "System Administrator");
    sp.connection(profile, env, &format!("sp-{env}"));
}

#[test]
fn export_create_settings_and_import_through_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let _server = serve(dir.path(), &[]);
    let profile = dir.path().join("admin.json");
    let sp = service_principal(
        &profile,
        "D365-App-Registration",
        &dir.path().join("sp.secret"),
    );
    for env in ["dev", "test"] {
        stage(&profile, env, &sp);
    }

    // DEV: a reference bound to DEV's connection, and seed 002's flow naming the reference.
    post(
        &web(&profile, "dev"),
        "connectionreferences",
        json!({"connectionreferencelogicalname": REF, "connectorid": DV_ID, "connectionid": "sp-dev"}),
    );
    let definition = account_to_contact(REF);
    let flow = create_flow(
        &profile,
        "dev",
        "Account to contact",
        &definition,
        &dir.path().join("flow.json"),
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
    let import_with_settings = [
        "solution",
        "import",
        "test",
        "--solution-file",
        archive_path,
        "--settings-file",
        settings_path,
    ];
    let (success, _, err) = keyway(&profile, &import_with_settings);
    assert!(!success && err.contains("sp-dev"), "{err}");

    // With TEST's connection: the flow turns on and runs with it.
    settings["ConnectionReferences"][0]["ConnectionId"] = json!("sp-test");
    std::fs::write(&settings_file, settings.to_string()).unwrap();
    let report = json(&profile, &import_with_settings);
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
