//! The `keyway` binary end to end: `serve` as a newcomer runs it, the CLI against it, a
//! `kill -9` that loses nothing acknowledged, and the TLS modes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::{BIN, json, keyway, ok, serve};

#[test]
fn a_newcomer_registers_an_app_and_gets_a_token_and_kill_9_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path(), &[]);
    assert!(server.base.starts_with("https://127.0.0.1:"));
    let profile: PathBuf = dir.path().join("admin.json");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&profile).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            std::fs::metadata(dir.path().join("master.key"))
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o600
        );
        assert_eq!(
            std::fs::metadata(dir.path().join("tls/ca.key"))
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o600
        );
    }

    let app = json(&profile, &["app", "create", "Invoice robot"]);
    let app_id = app["appId"].as_str().unwrap().to_string();
    let secret = json(
        &profile,
        &[
            "app", "secret", "add", &app_id, "--name", "robot", "--days", "30",
        ],
    );
    let secret_text = secret["secretText"].as_str().unwrap().to_string();
    json(&profile, &["sp", "create", &app_id]);
    let listed = ok(&profile, &["app", "secret", "list", &app_id]);
    assert!(
        listed.contains("robot") && !listed.contains(&secret_text),
        "{listed}"
    );

    // A token for the new app, with its secret from the environment.
    let out = Command::new(BIN)
        .args(["token", "get", "--client-id", &app_id, "--raw"])
        .env("KEYWAY_PROFILE", &profile)
        .env("KEYWAY_CLIENT_SECRET", &secret_text)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .split('.')
            .count(),
        3
    );

    // A wrong secret is a clear message and a failing exit code.
    let out = Command::new(BIN)
        .args(["token", "get", "--client-id", &app_id])
        .env("KEYWAY_PROFILE", &profile)
        .env("KEYWAY_CLIENT_SECRET", "wrong")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("AADSTS7000215"));

    // Roles, users and tenants through the CLI.
    ok(
        &profile,
        &[
            "sp",
            "role",
            "add",
            &app_id,
            "--role",
            "Application.ReadWrite.All",
        ],
    );
    assert!(ok(&profile, &["sp", "role", "list", &app_id]).contains("Application.ReadWrite.All"));
    let (fails, _, err) = keyway(
        &profile,
        &["sp", "role", "add", &app_id, "--role", "Bogus.Role"],
    );
    assert!(!fails && err.contains("unknown role"), "{err}");
    let tenant = json(
        &profile,
        &["tenant", "create", "Contoso", "--domain", "contoso.example"],
    );
    assert!(
        tenant["administrator"]["clientSecret"]
            .as_str()
            .unwrap()
            .len()
            >= 43
    );
    assert!(ok(&profile, &["tenant", "list"]).contains("contoso.example"));
    let env = json(&profile, &["env", "create", "dev"]);
    assert_eq!(env["name"], "dev");
    assert_eq!(
        env["url"].as_str().unwrap(),
        format!("{}/env/dev", server.base)
    );
    assert!(uuid::Uuid::parse_str(env["id"].as_str().unwrap()).is_ok());
    assert!(ok(&profile, &["env", "list"]).contains("/env/dev"));
    let role = json(
        &profile,
        &[
            "env",
            "role",
            "create",
            "dev",
            "Invoice reader",
            "--privilege",
            "prvReadaccount:BusinessUnit",
        ],
    );
    assert_eq!(role["name"], "Invoice reader");
    let (bad, _, err) = keyway(
        &profile,
        &[
            "env",
            "role",
            "create",
            "dev",
            "Bad",
            "--privilege",
            "prvReadaccount",
        ],
    );
    assert!(!bad && err.contains("prvName:Depth"), "{err}");
    let user = json(
        &profile,
        &[
            "env",
            "app-user",
            "add",
            "dev",
            "--app-id",
            &app_id,
            "--role",
            "Basic User",
        ],
    );
    assert_eq!(user["roles"], serde_json::json!(["Basic User"]));
    ok(
        &profile,
        &[
            "env",
            "role",
            "assign",
            "dev",
            "Invoice reader",
            "--app-id",
            &app_id,
        ],
    );
    assert!(ok(&profile, &["env", "role", "list", "dev"]).contains("Invoice reader"));
    ok(
        &profile,
        &[
            "env",
            "table",
            "create",
            "dev",
            "new_Project",
            "--primary-name",
            "new_Name",
            "--column",
            "new_Budget:Money",
        ],
    );
    ok(
        &profile,
        &[
            "env",
            "table",
            "add-column",
            "dev",
            "new_project",
            "new_Priority:Integer",
        ],
    );
    ok(
        &profile,
        &[
            "env",
            "table",
            "add-column",
            "dev",
            "new_project",
            "new_Color",
            "--type",
            "choice",
            "--option",
            "1=Red",
            "--option",
            "2=Blue",
        ],
    );
    ok(
        &profile,
        &[
            "env",
            "table",
            "add-column",
            "dev",
            "new_project",
            "new_AccountId",
            "--type",
            "lookup",
            "--target",
            "account",
        ],
    );
    let (bad, _, err) = keyway(
        &profile,
        &[
            "env",
            "table",
            "add-column",
            "dev",
            "new_project",
            "new_Size",
            "--type",
            "choice",
        ],
    );
    assert!(!bad && err.contains("--option"), "{err}");
    let (dup, _, err) = keyway(
        &profile,
        &[
            "env",
            "table",
            "create",
            "dev",
            "new_Project",
            "--primary-name",
            "new_Name",
        ],
    );
    assert!(!dup && err.contains("0x80040237"), "{err}");
    // Changes to rows leave an audit chain that `keyway audit verify` checks; an edited row fails it.
    let env_url = env["url"].as_str().unwrap().to_string();
    let admin =
        serde_json::from_slice::<serde_json::Value>(&std::fs::read(&profile).unwrap()).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let ca = std::fs::read(admin["caPath"].as_str().unwrap()).unwrap();
        let http = reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(&ca).unwrap()])
            .build()
            .unwrap();
        let t: serde_json::Value = http
            .post(format!(
                "{}/{}/oauth2/v2.0/token",
                admin["baseUrl"].as_str().unwrap(),
                admin["tenantId"].as_str().unwrap()
            ))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", admin["clientId"].as_str().unwrap()),
                ("client_secret", admin["clientSecret"].as_str().unwrap()),
                ("scope", &format!("{env_url}/.default")),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let r = http
            .post(format!("{env_url}/api/data/v9.2/accounts"))
            .bearer_auth(t["access_token"].as_str().unwrap())
            .json(&serde_json::json!({"name": "audited"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), reqwest::StatusCode::NO_CONTENT);
        // The columns the CLI added: a lookup with its relationship, a choice with its values.
        let token = t["access_token"].as_str().unwrap();
        let api = format!("{env_url}/api/data/v9.2");
        let meta: serde_json::Value = http
            .get(format!("{api}/EntityDefinitions(LogicalName='new_project')/ManyToOneRelationships?$filter=ReferencedEntity eq 'account'"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            meta["value"][0]["ReferencingAttribute"], "new_accountid",
            "{meta}"
        );
        for (color, status) in [
            (2, reqwest::StatusCode::NO_CONTENT),
            (7, reqwest::StatusCode::BAD_REQUEST),
        ] {
            let r = http
                .post(format!("{api}/new_projects"))
                .bearer_auth(token)
                .json(&serde_json::json!({"new_name": "Apollo", "new_color": color}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), status, "new_color {color}");
        }
    });
    let verified = json(&profile, &["audit", "verify", "dev"]);
    assert_eq!(
        (
            verified["intact"].as_bool(),
            verified["rows"].as_i64().map(|n| n > 0)
        ),
        (Some(true), Some(true)),
        "{verified}"
    );
    let db = format!("sqlite://{}", dir.path().join("keyway.db").display());
    rt.block_on(keyway_store::testing::execute_raw(
        &db,
        "UPDATE dv_audit SET changedata = replace(changedata, 'audited', 'forged')",
    ))
    .unwrap();
    let (intact, out, err) = keyway(&profile, &["audit", "verify", "dev"]);
    assert!(!intact && err.contains("tampered"), "{out} {err}");
    let rotated = json(&profile, &["tenant", "rotate-keys"]);
    assert_eq!(rotated["status"], "active");

    // kill -9, then start again on the same data directory: everything acknowledged is there.
    let mut server = server;
    server.child.kill().unwrap(); // SIGKILL
    server.child.wait().unwrap();
    let again = serve(dir.path(), &[]);
    let apps = ok(&profile, &["app", "list"]);
    assert!(apps.contains("Invoice robot"), "{apps}");
    let reloaded: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&profile).unwrap()).unwrap();
    assert_eq!(
        reloaded["baseUrl"],
        again.base.as_str(),
        "admin.json follows the new port"
    );
    let out = Command::new(BIN)
        .args(["token", "get", "--client-id", &app_id, "--raw"])
        .env("KEYWAY_PROFILE", &profile)
        .env("KEYWAY_CLIENT_SECRET", &secret_text)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the secret survives kill -9: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    ok(&profile, &["app", "delete", &app_id]);
    let (gone, _, _) = keyway(&profile, &["app", "show", &app_id]);
    assert!(!gone);
    drop(again);
}

#[test]
fn certificates_through_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let _server = serve(dir.path(), &[]);
    let profile = dir.path().join("admin.json");
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
    let cert = rcgen::CertificateParams::new(vec!["robot.example".into()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let (cert_path, key_path) = (
        dir.path().join("robot-cert.pem"),
        dir.path().join("robot-key.pem"),
    );
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();

    let app_id = json(&profile, &["app", "create", "Robot"])["appId"]
        .as_str()
        .unwrap()
        .to_string();
    json(&profile, &["sp", "create", &app_id]);
    let added = json(
        &profile,
        &[
            "app",
            "cert",
            "add",
            &app_id,
            "--pem",
            cert_path.to_str().unwrap(),
        ],
    );
    assert_eq!(added["customKeyIdentifier"].as_str().unwrap().len(), 40);
    let token = ok(
        &profile,
        &[
            "token",
            "get",
            "--client-id",
            &app_id,
            "--certificate",
            cert_path.to_str().unwrap(),
            "--key",
            key_path.to_str().unwrap(),
            "--raw",
        ],
    );
    assert_eq!(token.trim().split('.').count(), 3);
    let key_id = added["keyId"].as_str().unwrap();
    ok(&profile, &["app", "cert", "remove", &app_id, key_id]);
    let (success, _, err) = keyway(
        &profile,
        &[
            "token",
            "get",
            "--client-id",
            &app_id,
            "--certificate",
            cert_path.to_str().unwrap(),
            "--key",
            key_path.to_str().unwrap(),
        ],
    );
    assert!(!success && err.contains("AADSTS700027"), "{err}");
}

#[test]
fn plain_http_and_an_operator_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let plain = serve(dir.path(), &["--plain-http"]);
    assert!(plain.base.starts_with("http://"));
    let profile = dir.path().join("admin.json");
    assert!(ok(&profile, &["app", "list"]).contains("Keyway administrator"));
    drop(plain);

    // An operator's own CA and server certificate.
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()])
        .unwrap()
        .signed_by(&leaf_key, &issuer)
        .unwrap();
    let own = tempfile::tempdir().unwrap();
    let (c, k, ca_file) = (
        own.path().join("server.pem"),
        own.path().join("server.key"),
        own.path().join("ca.pem"),
    );
    std::fs::write(&c, leaf.pem()).unwrap();
    std::fs::write(&k, leaf_key.serialize_pem()).unwrap();
    std::fs::write(&ca_file, ca.pem()).unwrap();
    let data = tempfile::tempdir().unwrap();
    let server = serve(
        data.path(),
        &[
            "--tls-cert",
            c.to_str().unwrap(),
            "--tls-key",
            k.to_str().unwrap(),
        ],
    );
    assert!(server.base.starts_with("https://"));
    let out = Command::new(BIN)
        .args(["app", "list"])
        .env("KEYWAY_PROFILE", data.path().join("admin.json"))
        .env("KEYWAY_CA", &ca_file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Without trusting that CA the CLI refuses the connection.
    let start = Instant::now();
    let (success, _, err) = keyway(&data.path().join("admin.json"), &["app", "list"]);
    assert!(!success, "{err}");
    assert!(start.elapsed() < Duration::from_secs(30));
}

#[test]
fn connections_through_the_cli_and_no_secret_in_the_server_log() {
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("server.log");
    let log = std::fs::File::create(&log_path).unwrap();
    // The most talkative log there is: a secret must not appear even at debug level.
    let mut cmd = Command::new(BIN);
    cmd.args(["serve", "--data-dir"])
        .arg(dir.path())
        .args(["--listen", "127.0.0.1:0"])
        .env("KEYWAY_LOG", "debug")
        .stderr(log);
    let server = common::start(cmd);
    let profile = dir.path().join("admin.json");

    json(&profile, &["env", "create", "dev"]);
    let app = json(&profile, &["app", "create", "Flow robot"]);
    let app_id = app["appId"].as_str().unwrap().to_string();
    let secret = json(&profile, &["app", "secret", "add", &app_id])["secretText"]
        .as_str()
        .unwrap()
        .to_string();
    let sp = json(&profile, &["sp", "create", &app_id]);
    let sp_id = sp["id"].as_str().unwrap().to_string();
    ok(
        &profile,
        &[
            "env",
            "app-user",
            "add",
            "dev",
            "--app-id",
            &app_id,
            "--role",
            "Basic User",
        ],
    );
    let tenant = json(&profile, &["tenant", "list"])[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let secret_file = dir.path().join("robot.secret");
    std::fs::write(&secret_file, format!("{secret}\n")).unwrap();

    let connectors = ok(&profile, &["connector", "list"]);
    assert!(
        connectors.contains("shared_commondataserviceforapps")
            && connectors.contains("ServicePrincipalOauth"),
        "{connectors}"
    );
    let sets = ok(
        &profile,
        &["connector", "show", "shared_commondataserviceforapps"],
    );
    assert!(
        sets.contains("token:clientSecret") && sets.contains("secret"),
        "{sets}"
    );

    let secret_arg = format!("token:clientSecret=@{}", secret_file.display());
    let id_arg = format!("token:clientId={app_id}");
    let tenant_arg = format!("token:TenantId={tenant}");
    let create = [
        "connection",
        "create",
        "dev",
        "--name",
        "robot-dv",
        "--set",
        "ServicePrincipalOauth",
        "--value",
        &id_arg,
        "--value",
        &tenant_arg,
        "--secret",
        &secret_arg,
    ];
    let c = json(&profile, &create);
    assert_eq!(c["properties"]["statuses"][0]["status"], "Connected", "{c}");
    assert_eq!(
        c["properties"]["connectionParametersSet"]["values"]["token:clientSecret"]["value"],
        "********"
    );
    // A secret on the command line is refused before anything is sent.
    let plain = format!("token:clientSecret={secret}");
    let (success, _, err) = keyway(
        &profile,
        &[
            "connection",
            "create",
            "dev",
            "--name",
            "leaky",
            "--set",
            "ServicePrincipalOauth",
            "--value",
            &id_arg,
            "--value",
            &tenant_arg,
            "--secret",
            &plain,
        ],
    );
    assert!(
        !success && err.contains("never on the command line"),
        "{err}"
    );

    let listed = ok(&profile, &["connection", "list", "dev"]);
    assert!(
        listed.contains("robot-dv") && listed.contains("Connected"),
        "{listed}"
    );
    let shown = ok(&profile, &["connection", "show", "dev", "robot-dv"]);
    assert!(
        shown.contains("token:clientSecret = ********") && !shown.contains(&secret),
        "{shown}"
    );
    let tested = ok(&profile, &["connection", "test", "dev", "robot-dv"]);
    assert!(tested.contains("Connected"), "{tested}");
    ok(
        &profile,
        &[
            "connection",
            "share",
            "dev",
            "robot-dv",
            "--principal",
            &sp_id,
            "--role",
            "CanView",
        ],
    );
    ok(
        &profile,
        &[
            "connection",
            "unshare",
            "dev",
            "robot-dv",
            "--principal",
            &sp_id,
        ],
    );
    let (success, _, err) = keyway(
        &profile,
        &[
            "connection",
            "unshare",
            "dev",
            "robot-dv",
            "--principal",
            &sp_id,
        ],
    );
    assert!(!success && err.contains("not shared"), "{err}");
    ok(&profile, &["connection", "delete", "dev", "robot-dv"]);
    let (success, _, err) = keyway(&profile, &["connection", "show", "dev", "robot-dv"]);
    assert!(!success && err.contains("no connection"), "{err}");

    drop(server);
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(log.lines().count() > 10, "the server logged at debug level");
    assert!(
        !log.contains(&secret),
        "the client secret is in the server log"
    );
    let db: Vec<u8> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("keyway.db"))
        .flat_map(|e| std::fs::read(e.path()).unwrap())
        .collect();
    assert!(!db.is_empty());
    assert!(
        !db.windows(secret.len()).any(|w| w == secret.as_bytes()),
        "the client secret is in the database files"
    );
}

/// A guest through the CLI: `env user add` by object id, `env user license`, and
/// `env role assign --system-user`; the guest's token from the inviting tenant then works.
#[test]
fn a_guest_is_added_licensed_and_given_a_role_through_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let _server = serve(dir.path(), &[]);
    let profile: PathBuf = dir.path().join("admin.json");
    let admin: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&profile).unwrap()).unwrap();
    let contoso = json(
        &profile,
        &["tenant", "create", "Contoso", "--domain", "contoso.example"],
    );
    let env = json(&profile, &["env", "create", "dev"]);
    let base = admin["baseUrl"].as_str().unwrap().to_string();
    let tenant_a = admin["tenantId"].as_str().unwrap().to_string();
    let tenant_b = contoso["tenant"]["id"].as_str().unwrap().to_string();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let ca = std::fs::read(admin["caPath"].as_str().unwrap()).unwrap();
    let http = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&ca).unwrap()])
        .build()
        .unwrap();
    let token = |tenant: String, form: Vec<(&'static str, String)>| {
        let (http, base) = (http.clone(), base.clone());
        async move {
            let t: serde_json::Value = http
                .post(format!("{base}/{tenant}/oauth2/v2.0/token"))
                .form(&form)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            t["access_token"]
                .as_str()
                .unwrap_or_else(|| panic!("{t}"))
                .to_string()
        }
    };
    let graph = |tenant: String, id: &str, secret: &str| {
        token(
            tenant,
            vec![
                ("grant_type", "client_credentials".into()),
                ("client_id", id.into()),
                ("client_secret", secret.into()),
                ("scope", "https://graph.microsoft.com/.default".into()),
            ],
        )
    };
    let post = |token: String, path: &str, body: serde_json::Value| {
        let (http, url) = (http.clone(), format!("{base}{path}"));
        async move {
            let r = http
                .post(url)
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap();
            assert!(r.status().is_success(), "{}", r.status());
            r.json::<serde_json::Value>().await.unwrap()
        }
    };
    let guest_id = rt.block_on(async {
        let admin_b = graph(
            tenant_b.clone(),
            contoso["administrator"]["clientId"].as_str().unwrap(),
            contoso["administrator"]["clientSecret"].as_str().unwrap(),
        )
        .await;
        post(admin_b, "/v1.0/users", serde_json::json!({"displayName": "Alice", "userPrincipalName": "alice@contoso.example", "passwordProfile": {"password": "correct horse battery"}})).await;
        let admin_a = graph(
            tenant_a.clone(),
            admin["clientId"].as_str().unwrap(),
            admin["clientSecret"].as_str().unwrap(),
        )
        .await;
        let inv = post(admin_a, "/v1.0/invitations", serde_json::json!({"invitedUserEmailAddress": "alice@contoso.example", "inviteRedirectUrl": "https://myapps.example"})).await;
        inv["invitedUser"]["id"].as_str().unwrap().to_string()
    });
    let su = json(&profile, &["env", "user", "add", "dev", &guest_id]);
    assert_eq!(
        (su["isguest"].as_bool(), su["islicensed"].as_bool()),
        (Some(true), Some(false)),
        "{su}"
    );
    let sid = su["systemuserid"].as_str().unwrap().to_string();
    let cli = json(&profile, &["app", "create", "cli", "--public-client"]);
    let cli_id = cli["appId"].as_str().unwrap().to_string();
    json(&profile, &["sp", "create", &cli_id]);
    let env_url = env["url"].as_str().unwrap().to_string();
    let who_am_i = || {
        let (http, env_url, tenant_a, cli_id) = (
            http.clone(),
            env_url.clone(),
            tenant_a.clone(),
            cli_id.clone(),
        );
        let token = &token;
        rt.block_on(async move {
            let t = token(
                tenant_a,
                vec![
                    ("grant_type", "password".into()),
                    ("client_id", cli_id),
                    ("username", "alice@contoso.example".into()),
                    ("password", "correct horse battery".into()),
                    ("scope", format!("{env_url}/.default")),
                ],
            )
            .await;
            let r = http
                .get(format!("{env_url}/api/data/v9.2/WhoAmI"))
                .bearer_auth(t)
                .send()
                .await
                .unwrap();
            (r.status(), r.json::<serde_json::Value>().await.unwrap())
        })
    };
    let (s, e) = who_am_i();
    assert_eq!(
        (s.as_u16(), e["error"]["code"].as_str()),
        (403, Some("0x8004d24b")),
        "{e}"
    );
    let out = ok(&profile, &["env", "user", "license", "dev", &sid]);
    assert!(out.contains("licensed"), "{out}");
    let (s, e) = who_am_i();
    assert_eq!(
        (s.as_u16(), e["error"]["code"].as_str()),
        (403, Some("0x80040220")),
        "{e}"
    );
    ok(
        &profile,
        &[
            "env",
            "role",
            "assign",
            "dev",
            "Basic User",
            "--system-user",
            &sid,
        ],
    );
    let (s, who) = who_am_i();
    assert_eq!(
        (s.as_u16(), who["UserId"].as_str()),
        (200, Some(sid.as_str())),
        "{who}"
    );
    ok(
        &profile,
        &["env", "user", "license", "dev", &sid, "--remove"],
    );
    assert_eq!(who_am_i().0.as_u16(), 403);
}

/// `keyway token get` for an app with its secret; true when a JWT came back.
fn token_works(profile: &Path, app_id: &str, secret: &str) -> bool {
    let out = Command::new(BIN)
        .args(["token", "get", "--client-id", app_id, "--raw"])
        .env("KEYWAY_PROFILE", profile)
        .env("KEYWAY_CLIENT_SECRET", secret)
        .output()
        .unwrap();
    out.status.success()
        && String::from_utf8_lossy(&out.stdout)
            .trim()
            .split('.')
            .count()
            == 3
}

fn key_file_ids(dir: &Path) -> (String, Vec<String>) {
    let f: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("master.key")).unwrap()).unwrap();
    (
        f["current"].as_str().unwrap().to_string(),
        f["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["id"].as_str().unwrap().to_string())
            .collect(),
    )
}

#[test]
fn keys_rotate_through_the_cli_and_a_kill_9_midway_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = serve(dir.path(), &[]);
    let profile: PathBuf = dir.path().join("admin.json");
    let app = json(&profile, &["app", "create", "Rotation robot"]);
    let app_id = app["appId"].as_str().unwrap().to_string();
    let secret = json(&profile, &["app", "secret", "add", &app_id, "--name", "r"])["secretText"]
        .as_str()
        .unwrap()
        .to_string();
    json(&profile, &["sp", "create", &app_id]);
    assert!(token_works(&profile, &app_id, &secret));

    let status = json(&profile, &["keys", "status"]);
    let m0 = status["currentMasterKeyId"].as_str().unwrap().to_string();
    assert_eq!(key_file_ids(dir.path()), (m0.clone(), vec![m0.clone()]));
    let table = ok(&profile, &["keys", "status"]);
    assert!(table.contains(&m0) && table.contains("DATA KEY"), "{table}");

    // Rotate: the file holds only the new key, and a restarted server works from it.
    let r = json(&profile, &["keys", "rotate"]);
    let m1 = r["currentMasterKeyId"].as_str().unwrap().to_string();
    assert_ne!(m1, m0);
    assert_eq!(r["removedMasterKeys"], serde_json::json!([m0]));
    assert_eq!(key_file_ids(dir.path()), (m1.clone(), vec![m1.clone()]));
    drop(server);
    server = serve(dir.path(), &[]);
    assert!(token_works(&profile, &app_id, &secret), "after a restart");
    assert_eq!(
        json(&profile, &["keys", "status"])["currentMasterKeyId"],
        m1.as_str()
    );

    // kill -9 once the new key is written but before anything is re-wrapped (the server waits
    // a second in between): the old key stays in the file, so nothing is lost.
    let rotating = Command::new(BIN)
        .args(["keys", "rotate"])
        .env("KEYWAY_PROFILE", &profile)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while key_file_ids(dir.path()).1.len() < 2 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the new key was never written"
        );
        // A plain test thread, not an async runtime: sleeping blocks nothing else.
        #[allow(clippy::disallowed_methods)]
        std::thread::sleep(Duration::from_millis(5));
    }
    server.child.kill().unwrap(); // SIGKILL
    server.child.wait().unwrap();
    let mut rotating = rotating;
    assert!(!rotating.wait().unwrap().success());
    let (m2, ids) = key_file_ids(dir.path());
    assert_eq!(ids, vec![m2.clone(), m1.clone()]);
    drop(server);
    server = serve(dir.path(), &[]);
    assert!(
        token_works(&profile, &app_id, &secret),
        "after kill -9 midway"
    );
    let status = json(&profile, &["keys", "status"]);
    assert_eq!(status["currentMasterKeyId"], m2.as_str());
    let old = &status["masterKeys"][1];
    assert_eq!(old["id"], m1.as_str(), "{status}");
    assert_eq!(
        old["dataKeys"], 1,
        "still sealed under the old key: {status}"
    );

    // The next rotation finishes the job and empties the file of both retired keys.
    let out = ok(&profile, &["keys", "rotate"]);
    assert!(out.contains("Removed from master.key"), "{out}");
    let (m3, ids) = key_file_ids(dir.path());
    assert_eq!(ids, vec![m3.clone()]);
    assert!(out.contains(&m1) && out.contains(&m2), "{out}");
    drop(server);
    let _server = serve(dir.path(), &[]);
    assert!(
        token_works(&profile, &app_id, &secret),
        "after the last restart"
    );
    assert_eq!(
        json(&profile, &["keys", "status"])["currentMasterKeyId"],
        m3.as_str()
    );
}

/// `keyway` with `input` on standard input.
fn keyway_stdin(profile: &Path, args: &[&str], input: &str) -> (bool, String, String) {
    use std::io::Write;
    let mut child = Command::new(BIN)
        .args(args)
        .env("KEYWAY_PROFILE", profile)
        .env_remove("KEYWAY_CA")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn a_delegated_connection_signs_the_user_in_and_keeps_only_the_refresh_token() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = serve(dir.path(), &[]);
    let profile = dir.path().join("admin.json");
    let password = "erin's long password";
    json(&profile, &["env", "create", "dev"]);
    let (success, out, err) = keyway_stdin(
        &profile,
        &[
            "user",
            "create",
            "erin@keyway.local",
            "--display-name",
            "Erin",
            "--password-stdin",
            "--output",
            "json",
        ],
        &format!("{password}\n"),
    );
    assert!(success, "{err}");
    let erin: serde_json::Value = serde_json::from_str(&out).unwrap();
    let erin_id = erin["id"].as_str().unwrap().to_string();
    let su = json(&profile, &["env", "user", "add", "dev", &erin_id]);
    let sid = su["systemuserid"].as_str().unwrap().to_string();
    ok(
        &profile,
        &[
            "env",
            "role",
            "assign",
            "dev",
            "Basic User",
            "--system-user",
            &sid,
        ],
    );

    // --sign-in goes with OAuthSignIn only, and a wrong password creates nothing.
    let (success, _, err) = keyway_stdin(
        &profile,
        &[
            "connection",
            "create",
            "dev",
            "--name",
            "erin-dv",
            "--set",
            "ServicePrincipalOauth",
            "--sign-in",
            "erin@keyway.local",
        ],
        &format!("{password}\n"),
    );
    assert!(!success && err.contains("--set OAuthSignIn"), "{err}");
    let (success, _, err) = keyway_stdin(
        &profile,
        &[
            "connection",
            "create",
            "dev",
            "--name",
            "erin-dv",
            "--set",
            "OAuthSignIn",
            "--sign-in",
            "erin@keyway.local",
        ],
        "not her password\n",
    );
    assert!(!success && err.contains("AADSTS50126"), "{err}");

    let create = [
        "connection",
        "create",
        "dev",
        "--name",
        "erin-dv",
        "--set",
        "OAuthSignIn",
        "--sign-in",
        "erin@keyway.local",
        "--output",
        "json",
    ];
    let (success, out, err) = keyway_stdin(&profile, &create, &format!("{password}\n"));
    assert!(success, "{err}");
    let c: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(c["properties"]["statuses"][0]["status"], "Connected", "{c}");
    let values = &c["properties"]["connectionParametersSet"]["values"];
    assert_eq!(values["token:refreshToken"]["value"], "********", "{c}");
    assert!(values.get("token:password").is_none(), "{c}");
    let client = values["token:clientId"]["value"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        c["properties"]["expirationTime"].is_string(),
        "the refresh token's deadline is known: {c}"
    );
    // The built-in public client is registered once and reused.
    let apps = ok(&profile, &["app", "list"]);
    assert_eq!(
        apps.matches("Keyway CLI (delegated sign-in)").count(),
        1,
        "{apps}"
    );
    let (success, out, err) = keyway_stdin(
        &profile,
        &[
            "connection",
            "create",
            "dev",
            "--name",
            "erin-dv2",
            "--set",
            "OAuthSignIn",
            "--sign-in",
            "erin@keyway.local",
            "--output",
            "json",
        ],
        &format!("{password}\n"),
    );
    assert!(success, "{err}");
    let c2: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        c2["properties"]["connectionParametersSet"]["values"]["token:clientId"]["value"],
        client.as_str()
    );
    let tested = ok(&profile, &["connection", "test", "dev", "erin-dv"]);
    assert!(tested.contains("Connected"), "{tested}");

    // The password never reached the connection: not in the database files.
    let _ = server.child.kill();
    let _ = server.child.wait();
    let db: Vec<u8> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("keyway.db"))
        .flat_map(|e| std::fs::read(e.path()).unwrap())
        .collect();
    assert!(!db.is_empty());
    assert!(
        !db.windows(password.len()).any(|w| w == password.as_bytes()),
        "the password is in the database files"
    );
}
