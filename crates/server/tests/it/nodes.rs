//! Several Keyway nodes on one PostgreSQL database: they bootstrap once, share replay state,
//! and see each other's directory changes within the cache lifetime.

use std::sync::Arc;

use keyway_core::{Clock, ManualClock, SystemClock};
use keyway_server::{App, Config};
use reqwest::StatusCode;
use serde_json::{Value, json};
use time::Duration;

use crate::helpers::*;

struct Node {
    base: String,
    http: reqwest::Client,
    clock: ManualClock,
    _dir: tempfile::TempDir,
}

async fn node(db_url: &str, master_key: &str) -> Node {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::new(dir.path(), "127.0.0.1:0".parse().unwrap());
    config.database_url = Some(db_url.to_string());
    config.rate_limit_per_second = 0;
    let clock = ManualClock::new(SystemClock.now());
    let app = App::build(
        config,
        Arc::new(clock.clone()),
        Some(master_key.to_string()),
    )
    .await
    .unwrap();
    let ca = std::fs::read(app.ca_path.clone().unwrap()).unwrap();
    let base = app.base_url.clone();
    tokio::spawn(async move { app.serve().await.unwrap() });
    let http = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&ca).unwrap()])
        .build()
        .unwrap();
    Node {
        base,
        http,
        clock,
        _dir: dir,
    }
}

impl Node {
    async fn token(&self, tenant: &str, form: &[(&str, &str)]) -> (StatusCode, Value) {
        let r = self
            .http
            .post(format!("{}/{tenant}/oauth2/v2.0/token", self.base))
            .form(form)
            .send()
            .await
            .unwrap();
        let s = r.status();
        (s, r.json().await.unwrap())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_share_one_postgres() {
    use base64::Engine;
    let url = keyway_store::testing::scratch_postgres().await.unwrap();
    let key = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
    // Both start at once on an empty database: one bootstraps, neither fails.
    let (a, b) = tokio::join!(node(&url, &key), node(&url, &key));

    // The tenant made by one is served by both, with the same keys.
    let store = keyway_store::open(&url).await.unwrap();
    use keyway_store::DirectoryStore;
    let tenants = store.tenant_list().await.unwrap();
    assert_eq!(tenants.len(), 1, "exactly one system tenant");
    let tid = tenants[0].id.to_string();
    let jwks_a: Value = a
        .http
        .get(format!("{}/{tid}/discovery/v2.0/keys", a.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let jwks_b: Value = b
        .http
        .get(format!("{}/{tid}/discovery/v2.0/keys", b.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(jwks_a, jwks_b);

    // Make a client directly through the store-backed API of node A (with the CLI-free path:
    // a test-only admin app is not needed, the bootstrap admin's secret is in A's admin.json
    // or B's, whichever bootstrapped).
    let profile_path = [&a._dir, &b._dir]
        .iter()
        .map(|d| d.path().join("admin.json"))
        .find(|p| p.exists())
        .unwrap();
    let profile: Value = serde_json::from_slice(&std::fs::read(profile_path).unwrap()).unwrap();
    let (cid, secret) = (
        profile["clientId"].as_str().unwrap(),
        profile["clientSecret"].as_str().unwrap(),
    );
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", cid),
        ("client_secret", secret),
        ("scope", "https://graph.microsoft.com/.default"),
    ];
    let (s, t) = a.token(&tid, &form).await;
    assert_eq!(s, StatusCode::OK, "{t}");
    assert_eq!(b.token(&tid, &form).await.0, StatusCode::OK);
    let admin = t["access_token"].as_str().unwrap().to_string();

    // A secret added through node A works on B; removed through A, B refuses it once its cache
    // has aged past the cache lifetime.
    let r: Value = a
        .http
        .post(format!("{}/v1.0/applications", a.base))
        .bearer_auth(&admin)
        .json(&json!({"displayName": "w"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (oid, app_id) = (
        r["id"].as_str().unwrap().to_string(),
        r["appId"].as_str().unwrap().to_string(),
    );
    a.http
        .post(format!("{}/v1.0/servicePrincipals", a.base))
        .bearer_auth(&admin)
        .json(&json!({"appId": app_id}))
        .send()
        .await
        .unwrap();
    let p: Value = a
        .http
        .post(format!("{}/v1.0/applications/{oid}/addPassword", a.base))
        .bearer_auth(&admin)
        .json(&json!({}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let s2 = p["secretText"].as_str().unwrap();
    let wf = [
        ("grant_type", "client_credentials"),
        ("client_id", app_id.as_str()),
        ("client_secret", s2),
        ("scope", "https://graph.microsoft.com/.default"),
    ];
    assert_eq!(b.token(&tid, &wf).await.0, StatusCode::OK);
    let r = a
        .http
        .post(format!("{}/v1.0/applications/{oid}/removePassword", a.base))
        .bearer_auth(&admin)
        .json(&json!({"keyId": p["keyId"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        a.token(&tid, &wf).await.0,
        StatusCode::UNAUTHORIZED,
        "at once on the node that changed it"
    );
    b.clock.advance(Duration::seconds(3));
    let (s, body) = b.token(&tid, &wf).await;
    assert_eq!(
        (s, aadsts(&body)),
        (StatusCode::UNAUTHORIZED, 7000215),
        "within the cache lifetime on the other"
    );
    drop(store);
    keyway_store::testing::drop_postgres(&url).await.unwrap();
}
