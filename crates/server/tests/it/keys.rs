//! Master key rotation keeps every connection working: a connection's secret sealed under a data
//! key, a token issued before, an app secret made before (the pepper) all keep working after
//! `POST /v1.0/keys/rotate` and after a restart on the rewritten master.key; only the system
//! tenant's administrator may rotate or look; environment keys rotate with
//! KEYWAY_MASTER_KEY_PREVIOUS; and neither secrets nor the master key reach the database.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use keyway_core::wire::Profile;
use keyway_core::{Clock, ManualClock, SystemClock};
use keyway_server::{App, Config};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(
    master_key_rotation_keeps_every_connection_working,
    environment_master_keys_rotate_with_the_previous_key_set
);

const DV: &str = "/connectivity/connectors/shared_commondataserviceforapps/connections";

/// A connection call with `api-version`, scoped to the environment.
async fn conn_call(
    app: &TestApp,
    token: &str,
    method: Method,
    path: &str,
    env_id: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = app
        .http
        .request(
            method,
            format!(
                "{}{path}?api-version=1&$filter=environment eq '{env_id}'",
                app.base
            ),
        )
        .bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    let s = r.status();
    (s, r.json().await.unwrap_or(Value::Null))
}

fn connection_status(v: &Value) -> &str {
    v["properties"]["statuses"][0]["status"]
        .as_str()
        .unwrap_or("(none)")
}

/// The connection `kept`, tested with a fresh platform token of the application `client_id`,
/// is Connected.
async fn kept_tests_connected(app: &TestApp, client_id: &str, secret: &str, env_id: &str) {
    let platform = "https://api.powerplatform.com/.default";
    let flow = token_for(app, client_id, secret, platform).await;
    let (s, c) = conn_call(
        app,
        &flow,
        Method::POST,
        &format!("{DV}/kept/test"),
        env_id,
        None,
    )
    .await;
    assert_eq!(
        (s, connection_status(&c)),
        (StatusCode::OK, "Connected"),
        "{c}"
    );
}

async fn token_for(app: &TestApp, client_id: &str, secret: &str, scope: &str) -> String {
    let (s, t) = app.secret_token(client_id, secret, scope).await;
    assert_eq!(s, StatusCode::OK, "{t}");
    t["access_token"].as_str().unwrap().to_string()
}

fn key_file(dir: &std::path::Path) -> Value {
    serde_json::from_slice(&std::fs::read(dir.join("master.key")).unwrap()).unwrap()
}

/// Every byte the database holds: its files for SQLite (and everything beside master.key),
/// a data dump for PostgreSQL.
fn database_bytes(app: &TestApp) -> Vec<u8> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(app.dir.path()).unwrap() {
        let p = entry.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        if p.is_file() && name != "master.key" {
            all.extend(std::fs::read(p).unwrap());
        }
    }
    if let Some(url) = &app.db_url {
        let out = std::process::Command::new("pg_dump")
            .args(["--data-only", url])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        all.extend(out.stdout);
    }
    all
}

fn holds(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

async fn master_key_rotation_keeps_every_connection_working(backend: Backend) {
    let app = spawn_app(backend).await;
    let (env, _, _) = app.environment("dev").await;
    let env_id = env["id"].as_str().unwrap().to_string();
    let tenant = app.tenant();

    // A service principal with a secret (checked through the pepper) and an application user.
    let (oid, cid) = app.create_app("flow runner", json!({})).await;
    let secret = app.add_secret(&oid, json!({})).await["secretText"]
        .as_str()
        .unwrap()
        .to_string();
    let (s, u) = app
        .graph(
            Method::POST,
            &format!("/v1.0/environments/{env_id}/addAppUser"),
            Some(json!({"servicePrincipalAppId": cid, "roles": ["Basic User"]})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{u}");
    let platform = "https://api.powerplatform.com/.default";
    let flow = token_for(&app, &cid, &secret, platform).await;

    // A connection whose client secret is sealed under the data key.
    let body = json!({"properties": {
        "environment": {"id": format!("/providers/Microsoft.PowerApps/environments/{env_id}"), "name": env_id},
        "connectionParametersSet": {"name": "ServicePrincipalOauth", "values": {
            "token:clientId": {"value": cid}, "token:clientSecret": {"value": secret},
            "token:TenantId": {"value": tenant}, "token:grantType": {"value": "client_credentials"}}},
    }});
    let (s, c) = conn_call(
        &app,
        &flow,
        Method::PUT,
        &format!("{DV}/kept"),
        &env_id,
        Some(body),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{c}");
    assert_eq!(connection_status(&c), "Connected", "{c}");

    // Status before: one master key, one data key wrapped by it sealing the connection's secret.
    let (s, before) = app.graph(Method::GET, "/v1.0/keys", None).await;
    assert_eq!(s, StatusCode::OK, "{before}");
    let m0 = before["currentMasterKeyId"].as_str().unwrap().to_string();
    assert!(m0.starts_with("mk-"), "{before}");
    assert_eq!(before["source"], "file");
    assert_eq!(
        before["masterKeys"].as_array().unwrap().len(),
        1,
        "{before}"
    );
    assert_eq!(before["masterKeys"][0]["dataKeys"], 1);
    assert_eq!(before["masterKeys"][0]["serverSecrets"], 1);
    assert!(before["masterKeys"][0]["signingKeys"].as_u64().unwrap() >= 1);
    let dk = before["dataKeys"][0].clone();
    assert_eq!(before["dataKeys"].as_array().unwrap().len(), 1, "{before}");
    assert_eq!(dk["wrappedBy"], m0.as_str());
    assert_eq!(dk["current"], true);
    assert_eq!(dk["secrets"], 1, "{before}");
    let text = before.to_string();
    let key_b64 = key_file(app.dir.path())["keys"][0]["key"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        !text.contains(&key_b64),
        "no key material in the status: {text}"
    );

    // Only the system tenant's administrator sees or rotates keys.
    let (_, other) = crate::guests::tenant_b(&app).await;
    let other = other.as_str();
    for (method, path) in [
        (Method::GET, "/v1.0/keys"),
        (Method::POST, "/v1.0/keys/rotate"),
    ] {
        let (s, e) = app.call(other, method, path, None).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{path}: {e}");
    }
    let (s, _) = app
        .call("not-a-token", Method::GET, "/v1.0/keys", None)
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    // Rotate: everything sealed under the master key moves to the new one, the old key goes.
    let admin_before = app.admin_token().await;
    let (s, r) = app.graph(Method::POST, "/v1.0/keys/rotate", None).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    let m1 = r["currentMasterKeyId"].as_str().unwrap().to_string();
    assert_ne!(m1, m0);
    assert_eq!(r["previousMasterKeyId"], m0.as_str());
    assert_eq!(r["rewrapped"]["dataKeys"], 1, "{r}");
    assert_eq!(r["rewrapped"]["serverSecrets"], 1, "{r}");
    assert!(r["rewrapped"]["signingKeys"].as_u64().unwrap() >= 2, "{r}");
    assert_eq!(r["removedMasterKeys"], json!([m0]), "{r}");
    assert_eq!(r["masterKeys"].as_array().unwrap().len(), 1, "{r}");
    let file = key_file(app.dir.path());
    assert_eq!(file["current"], m1.as_str());
    assert_eq!(file["keys"].as_array().unwrap().len(), 1, "{file}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(app.dir.path().join("master.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    // The data key is the same one, re-wrapped; it still seals the same secret.
    let (s, after) = app.graph(Method::GET, "/v1.0/keys", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(after["currentMasterKeyId"], m1.as_str());
    assert_eq!(after["dataKeys"][0]["id"], dk["id"]);
    assert_eq!(after["dataKeys"][0]["wrappedBy"], m1.as_str());
    assert_eq!(after["dataKeys"][0]["secrets"], 1);

    // A token from before still verifies; the secrets from before still get tokens; the
    // connection still tests Connected.
    let (s, _) = app
        .call(&admin_before, Method::GET, "/v1.0/applications", None)
        .await;
    assert_eq!(s, StatusCode::OK);
    kept_tests_connected(&app, &cid, &secret, &env_id).await;

    // A restart reads only the new key from master.key; nothing cached: the connection's
    // secret is opened afresh through the re-wrapped data key.
    let app = app.restart().await;
    let (s, _) = app
        .call(&admin_before, Method::GET, "/v1.0/applications", None)
        .await;
    assert_eq!(s, StatusCode::OK, "a token from before the rotation");
    kept_tests_connected(&app, &cid, &secret, &env_id).await;
    let (s, again) = app.graph(Method::GET, "/v1.0/keys", None).await;
    assert_eq!(s, StatusCode::OK, "{again}");
    assert_eq!(again["currentMasterKeyId"], m1.as_str());

    // Neither the secret nor the master key is anywhere in the database.
    let dump = database_bytes(&app);
    assert!(dump.len() > 10_000, "the dump has the database in it");
    let master = STANDARD
        .decode(key_file(app.dir.path())["keys"][0]["key"].as_str().unwrap())
        .unwrap();
    assert!(
        !holds(&dump, secret.as_bytes()),
        "the secret is stored in plaintext"
    );
    assert!(!holds(&dump, &master), "the master key is in the database");
    app.stop().await;
}

/// A server on `dir` (and `db_url`) with environment master keys; (base, client, profile,
/// handle).
async fn env_node(
    dir: &std::path::Path,
    db_url: Option<&String>,
    key: &str,
    previous: &[String],
) -> anyhow::Result<(
    String,
    reqwest::Client,
    Profile,
    axum_server::Handle<std::net::SocketAddr>,
)> {
    let mut config = Config::new(dir, "127.0.0.1:0".parse().unwrap());
    config.database_url = db_url.cloned();
    config.rate_limit_per_second = 0;
    config.previous_master_keys = previous.to_vec();
    let clock = ManualClock::new(SystemClock.now());
    let app = App::build(config, Arc::new(clock), Some(key.to_string())).await?;
    let ca = std::fs::read(app.ca_path.clone().unwrap()).unwrap();
    let profile: Profile =
        serde_json::from_slice(&std::fs::read(&app.profile_path).unwrap()).unwrap();
    let base = app.base_url.clone();
    let handle = app.handle();
    tokio::spawn(async move { app.serve().await.unwrap() });
    let http = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&ca).unwrap()])
        .build()
        .unwrap();
    Ok((base, http, profile, handle))
}

async fn admin_call(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    method: Method,
    path: &str,
) -> (StatusCode, Value) {
    let r = http
        .request(method, format!("{base}{path}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let s = r.status();
    (s, r.json().await.unwrap_or(Value::Null))
}

async fn admin_token(http: &reqwest::Client, base: &str, p: &Profile) -> String {
    let r = http
        .post(format!("{base}/{}/oauth2/v2.0/token", p.tenant_id))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", &p.client_id.to_string()),
            ("client_secret", &p.client_secret),
            ("scope", "https://graph.microsoft.com/.default"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let t: Value = r.json().await.unwrap();
    t["access_token"].as_str().unwrap().to_string()
}

async fn environment_master_keys_rotate_with_the_previous_key_set(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let db_url = match backend {
        Backend::Sqlite => None,
        Backend::Postgres => Some(keyway_store::testing::scratch_postgres().await.unwrap()),
    };
    let k0 = STANDARD.encode(keyway_crypto::random::bytes::<32>());
    let k1 = STANDARD.encode(keyway_crypto::random::bytes::<32>());

    let (base, http, profile, handle) = env_node(dir.path(), db_url.as_ref(), &k0, &[])
        .await
        .unwrap();
    let before = admin_token(&http, &base, &profile).await;
    let (s, st) = admin_call(&http, &base, &before, Method::GET, "/v1.0/keys").await;
    assert_eq!(s, StatusCode::OK, "{st}");
    assert_eq!(st["source"], "environment");
    let e0 = st["currentMasterKeyId"].as_str().unwrap().to_string();
    assert!(e0.starts_with("env-"));
    assert!(!dir.path().join("master.key").exists());
    // With environment keys, rotation adopts the operator's key: nothing to do yet.
    let (s, r) = admin_call(&http, &base, &before, Method::POST, "/v1.0/keys/rotate").await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(r["currentMasterKeyId"], e0.as_str());
    assert_eq!(
        r["rewrapped"],
        json!({"dataKeys": 0, "signingKeys": 0, "serverSecrets": 0})
    );
    handle.shutdown();

    // The new key alone cannot open what the old one sealed: the server refuses to start.
    let Err(err) = env_node(dir.path(), db_url.as_ref(), &k1, &[]).await else {
        panic!("a server without the old key must not start");
    };
    assert!(format!("{err:#}").contains("master key"), "{err:#}");

    // New key plus the previous one: everything opens; rotate re-wraps under the new key.
    let (base, http, profile, handle) =
        env_node(dir.path(), db_url.as_ref(), &k1, std::slice::from_ref(&k0))
            .await
            .unwrap();
    let (s, _) = admin_call(&http, &base, &before, Method::GET, "/v1.0/applications").await;
    assert_eq!(s, StatusCode::OK, "a token from before");
    let token = admin_token(&http, &base, &profile).await;
    let (s, st) = admin_call(&http, &base, &token, Method::GET, "/v1.0/keys").await;
    assert_eq!(s, StatusCode::OK, "{st}");
    let e1 = st["currentMasterKeyId"].as_str().unwrap().to_string();
    assert_ne!(e1, e0);
    assert_eq!(st["masterKeys"][1]["id"], e0.as_str());
    assert_eq!(st["masterKeys"][1]["dataKeys"], 1, "{st}");
    let (s, r) = admin_call(&http, &base, &token, Method::POST, "/v1.0/keys/rotate").await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(r["previousMasterKeyId"], e1.as_str());
    assert_eq!(r["currentMasterKeyId"], e1.as_str());
    assert_eq!(r["rewrapped"]["dataKeys"], 1, "{r}");
    assert_eq!(r["rewrapped"]["serverSecrets"], 1, "{r}");
    assert_eq!(r["rewrapped"]["signingKeys"], 1, "{r}");
    assert_eq!(r["removedMasterKeys"], json!([]));
    let old = &r["masterKeys"][1];
    assert_eq!(old["id"], e0.as_str());
    assert_eq!(
        (&old["dataKeys"], &old["signingKeys"], &old["serverSecrets"]),
        (&json!(0), &json!(0), &json!(0)),
        "{r}"
    );
    handle.shutdown();

    // The previous key can go now.
    let (base, http, profile, handle) = env_node(dir.path(), db_url.as_ref(), &k1, &[])
        .await
        .unwrap();
    let (s, _) = admin_call(&http, &base, &before, Method::GET, "/v1.0/applications").await;
    assert_eq!(s, StatusCode::OK, "a token from before both restarts");
    let token = admin_token(&http, &base, &profile).await;
    let (s, st) = admin_call(&http, &base, &token, Method::GET, "/v1.0/keys").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(st["masterKeys"].as_array().unwrap().len(), 1, "{st}");
    handle.shutdown();
    if let Some(url) = &db_url {
        let _ = keyway_store::testing::drop_postgres(url).await;
    }
}
