//! What the CLI tests share: the real binary, a server started on a data directory, and the
//! CLI run against its administrator profile.

// Each test binary compiles this module and uses a part of it.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub const BIN: &str = env!("CARGO_BIN_EXE_keyway");

/// A `keyway serve` child process, killed when dropped.
pub struct Server {
    pub child: Child,
    /// The URL the server announced.
    pub base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start `keyway serve` on `dir` (a free port, `extra` flags) and wait until it listens.
pub fn serve(dir: &Path, extra: &[&str]) -> Server {
    let mut cmd = Command::new(BIN);
    cmd.args(["serve", "--data-dir"])
        .arg(dir)
        .args(["--listen", "127.0.0.1:0"])
        .args(extra)
        .env("KEYWAY_LOG", "warn")
        .stderr(Stdio::inherit());
    start(cmd)
}

/// Spawn a prepared `keyway serve` command and wait until it announces where it listens.
pub fn start(mut cmd: Command) -> Server {
    let mut child = cmd.stdout(Stdio::piped()).spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(url) = line.strip_prefix("Keyway listening on ") {
                let _ = tx.send(url.to_string());
            }
        }
    });
    let base = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the server did not announce itself");
    Server { child, base }
}

/// Run the CLI with `profile`: (success, stdout, stderr).
pub fn keyway(profile: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .env("KEYWAY_PROFILE", profile)
        .env_remove("KEYWAY_CA")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// Run the CLI, which must succeed: its stdout.
pub fn ok(profile: &Path, args: &[&str]) -> String {
    let (success, out, err) = keyway(profile, args);
    assert!(success, "keyway {args:?} failed: {err}");
    out
}

/// Run the CLI with `--output json`, which must succeed: the JSON it printed.
pub fn json(profile: &Path, args: &[&str]) -> serde_json::Value {
    let mut all = args.to_vec();
    all.extend(["--output", "json"]);
    serde_json::from_str(&ok(profile, &all)).unwrap()
}

/// An environment's Web API as the profile's application: a client trusting the server's CA,
/// the Web API base, and a token for it.
pub fn web(profile: &Path, env: &str) -> (reqwest::Client, String, String) {
    let p: serde_json::Value = serde_json::from_slice(&std::fs::read(profile).unwrap()).unwrap();
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

/// An application registered with a service principal and a secret (seed 002 steps 1–3).
pub struct ServicePrincipal {
    pub app_id: String,
    /// The secret, in a file for `--secret token:clientSecret=@file`.
    pub secret_file: PathBuf,
    pub tenant: String,
}

/// Register `name` with a service principal and add a secret, written to `secret_file`.
pub fn service_principal(profile: &Path, name: &str, secret_file: &Path) -> ServicePrincipal {
    let app_id = json(profile, &["app", "create", name])["appId"]
        .as_str()
        .unwrap()
        .to_string();
    let secret = json(profile, &["app", "secret", "add", &app_id])["secretText"]
        .as_str()
        .unwrap()
        .to_string();
    std::fs::write(secret_file, &secret).unwrap();
    json(profile, &["sp", "create", &app_id]);
    let tenant = json(profile, &["tenant", "list"])[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    ServicePrincipal {
        app_id,
        secret_file: secret_file.to_path_buf(),
        tenant,
    }
}

impl ServicePrincipal {
    /// Its Dataverse connection `name` in `env`, made with its secret; it must test Connected.
    pub fn connection(&self, profile: &Path, env: &str, name: &str) -> serde_json::Value {
        let c = json(
            profile,
            &[
                "connection",
                "create",
                env,
                "--name",
                name,
                "--set",
                "ServicePrincipalOauth",
                "--value",
                &format!("token:clientId={}", self.app_id),
                "--value",
                &format!("token:TenantId={}", self.tenant),
                "--secret",
                &format!("token:clientSecret=@{}", self.secret_file.display()),
            ],
        );
        assert_eq!(c["properties"]["statuses"][0]["status"], "Connected", "{c}");
        c
    }
}

/// Add the application `app_id`'s application user to `env` holding `role`: the user.
pub fn app_user(profile: &Path, env: &str, app_id: &str, role: &str) -> serde_json::Value {
    json(
        profile,
        &[
            "env", "app-user", "add", env, "--app-id", app_id, "--role", role,
        ],
    )
}

/// Save the flow `name` in `env` from `definition` (written to `file`): the flow.
pub fn create_flow(
    profile: &Path,
    env: &str,
    name: &str,
    definition: &serde_json::Value,
    file: &Path,
) -> serde_json::Value {
    std::fs::write(file, definition.to_string()).unwrap();
    json(
        profile,
        &[
            "flow",
            "create",
            env,
            "--name",
            name,
            "--definition",
            file.to_str().unwrap(),
        ],
    )
}

/// Seed 002's flow definition: when an account is added, add a contact for it, both through
/// the connection (or connection reference) `connection`.
pub fn account_to_contact(connection: &str) -> serde_json::Value {
    serde_json::json!({
        "triggers": {"When_a_row_is_added": {"type": "OpenApiConnectionWebhook", "inputs": {
            "host": {"connectionName": connection, "operationId": "SubscribeWebhookTrigger"},
            "parameters": {"subscriptionRequest/message": 1, "subscriptionRequest/entityname": "account", "subscriptionRequest/scope": 4},
        }}},
        "actions": {"Add_a_new_row": {"type": "OpenApiConnection", "runAfter": {}, "inputs": {
            "host": {"connectionName": connection, "operationId": "CreateRecord"},
            "parameters": {
                "entityName": "contacts",
                "item/lastname": "@triggerOutputs()?['body/name']",
                "item/parentcustomerid_account@odata.bind": "accounts(@{triggerOutputs()?['body/accountid']})",
            },
        }}},
    })
}
