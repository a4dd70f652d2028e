//! `spawn_app()`: a real server on port 0 with a fresh database, and a client that trusts its CA.

use std::sync::Arc;

use keyway_core::wire::Profile;
use keyway_core::{Clock, ManualClock, SystemClock};
use keyway_server::{App, Config};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Generate a test per backend from `async fn name(backend: Backend)`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name($crate::helpers::Backend::Sqlite).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$name($crate::helpers::Backend::Postgres).await
                }
            }
        )*
    };
}

pub struct TestApp {
    pub base: String,
    pub profile: Profile,
    pub http: reqwest::Client,
    pub clock: ManualClock,
    pub dir: tempfile::TempDir,
    pub db_url: Option<String>,
    handle: axum_server::Handle<std::net::SocketAddr>,
    store: std::sync::Arc<keyway_store::SqlStore>,
    /// The server's outbound client (counts the calls it made to itself in process).
    pub outbound: keyway_server::services::outbound::Outbound,
    admin_token: tokio::sync::OnceCell<String>,
}

#[derive(Default)]
pub struct Options {
    /// Token requests per second per address; 0 (the default here) turns the limit off.
    pub rate_limit: u32,
    /// `--environment-domain`.
    pub environment_domain: Option<String>,
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_with(backend, Options::default()).await
}

pub async fn spawn_with(backend: Backend, opts: Options) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let db_url = match backend {
        Backend::Sqlite => None,
        Backend::Postgres => Some(keyway_store::testing::scratch_postgres().await.unwrap()),
    };
    let clock = ManualClock::new(SystemClock.now());
    start(dir, db_url, clock, opts).await
}

async fn start(
    dir: tempfile::TempDir,
    db_url: Option<String>,
    clock: ManualClock,
    opts: Options,
) -> TestApp {
    let mut config = Config::new(dir.path(), "127.0.0.1:0".parse().unwrap());
    config.database_url = db_url.clone();
    config.rate_limit_per_second = opts.rate_limit;
    config.rate_limit_burst = opts.rate_limit;
    config.environment_domain = opts.environment_domain.clone();
    let app = App::build(config, Arc::new(clock.clone()), None)
        .await
        .unwrap();
    let base = app.base_url.clone();
    let ca = std::fs::read(app.ca_path.as_ref().unwrap()).unwrap();
    let profile: Profile =
        serde_json::from_slice(&std::fs::read(&app.profile_path).unwrap()).unwrap();
    let handle = app.handle();
    let store = app.state.store.clone();
    let outbound = app.state.outbound.clone();
    tokio::spawn(async move { app.serve().await.unwrap() });
    let http = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&ca).unwrap()])
        .build()
        .unwrap();
    TestApp {
        base,
        profile,
        http,
        clock,
        dir,
        db_url,
        handle,
        store,
        outbound,
        admin_token: Default::default(),
    }
}

impl TestApp {
    /// Stop this server and start another on the same database and data directory.
    pub async fn restart(self) -> TestApp {
        self.handle.shutdown();
        let TestApp {
            dir, db_url, clock, ..
        } = self;
        start(dir, db_url, clock, Options::default()).await
    }

    pub fn tenant(&self) -> String {
        self.profile.tenant_id.to_string()
    }

    pub fn token_url(&self) -> String {
        format!("{}/{}/oauth2/v2.0/token", self.base, self.tenant())
    }

    pub async fn token_at(&self, url: &str, form: &[(&str, &str)]) -> (StatusCode, Value) {
        let resp = self.http.post(url).form(form).send().await.unwrap();
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    pub async fn token(&self, form: &[(&str, &str)]) -> (StatusCode, Value) {
        self.token_at(&self.token_url(), form).await
    }

    pub async fn secret_token(
        &self,
        client_id: &str,
        secret: &str,
        scope: &str,
    ) -> (StatusCode, Value) {
        self.token(&[
            ("grant_type", "client_credentials"),
            ("client_id", client_id),
            ("client_secret", secret),
            ("scope", scope),
        ])
        .await
    }

    pub async fn admin_token(&self) -> String {
        self.admin_token
            .get_or_init(|| async {
                let (s, body) = self
                    .secret_token(
                        &self.profile.client_id.to_string(),
                        &self.profile.client_secret,
                        "https://graph.microsoft.com/.default",
                    )
                    .await;
                assert_eq!(s, StatusCode::OK, "{body}");
                body["access_token"].as_str().unwrap().to_string()
            })
            .await
            .clone()
    }

    pub async fn call(
        &self,
        token: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub async fn graph(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let t = self.admin_token().await;
        self.call(&t, method, path, body).await
    }

    /// An application with a service principal; returns (object id, appId).
    pub async fn create_app(&self, name: &str, extra: Value) -> (String, String) {
        let mut body = json!({"displayName": name});
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        let (s, app) = self
            .graph(Method::POST, "/v1.0/applications", Some(body))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{app}");
        let app_id = app["appId"].as_str().unwrap().to_string();
        let (s, sp) = self
            .graph(
                Method::POST,
                "/v1.0/servicePrincipals",
                Some(json!({"appId": app_id})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{sp}");
        (app["id"].as_str().unwrap().to_string(), app_id)
    }

    pub async fn add_secret(&self, object_id: &str, body: Value) -> Value {
        let (s, p) = self
            .graph(
                Method::POST,
                &format!("/v1.0/applications/{object_id}/addPassword"),
                Some(body),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{p}");
        p
    }

    /// An application with a service principal and a secret added with `secret` (addPassword's
    /// body); returns (appId, secretText).
    pub async fn app_with_secret(&self, name: &str, secret: Value) -> (String, String) {
        let (oid, app_id) = self.create_app(name, json!({})).await;
        let p = self.add_secret(&oid, secret).await;
        (app_id, p["secretText"].as_str().unwrap().to_string())
    }

    /// The administrator's Power Platform token (what connections are made with).
    pub async fn platform_token(&self) -> String {
        let (s, t) = self
            .secret_token(
                &self.profile.client_id.to_string(),
                &self.profile.client_secret,
                "https://api.powerplatform.com/.default",
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{t}");
        t["access_token"].as_str().unwrap().to_string()
    }

    /// A new environment and the administrator's token for it: (environment, Web API base, token).
    pub async fn environment(&self, name: &str) -> (Value, String, String) {
        let (s, env) = self
            .graph(
                Method::POST,
                "/v1.0/environments",
                Some(json!({"name": name})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{env}");
        let url = env["url"].as_str().unwrap().to_string();
        let (s, t) = self
            .secret_token(
                &self.profile.client_id.to_string(),
                &self.profile.client_secret,
                &format!("{url}/.default"),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{t}");
        let api = format!("{url}/api/data/v9.2");
        (env, api, t["access_token"].as_str().unwrap().to_string())
    }

    /// Give the system user `system_user_id` of environment `env_id` the role named `role`.
    pub async fn assign_role(&self, env_id: &str, role: &str, system_user_id: &str) {
        let roles = format!("/v1.0/environments/{env_id}/roles");
        let (s, list) = self.graph(Method::GET, &roles, None).await;
        assert_eq!(s, StatusCode::OK, "{list}");
        let id = list["value"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == role)
            .unwrap_or_else(|| panic!("no role {role}: {list}"))["roleid"]
            .as_str()
            .unwrap()
            .to_string();
        let (s, e) = self
            .graph(
                Method::POST,
                &format!("{roles}/{id}/assign"),
                Some(json!({"systemUserId": system_user_id})),
            )
            .await;
        assert_eq!(s, StatusCode::NO_CONTENT, "{e}");
    }

    /// The server's store, for checks that no API shows (audit chains, raw rows).
    pub fn state_store(&self) -> std::sync::Arc<keyway_store::SqlStore> {
        self.store.clone()
    }

    pub async fn stop(self) {
        self.handle.shutdown();
        if let Some(url) = &self.db_url {
            let _ = keyway_store::testing::drop_postgres(url).await;
        }
    }
}

/// The AADSTS code of an Entra error body.
pub fn aadsts(body: &Value) -> u64 {
    body["error_codes"][0]
        .as_u64()
        .unwrap_or_else(|| panic!("not an Entra error: {body}"))
}

/// The message of an error body (`{"error": {"code", "message"}}`).
pub fn error_message(body: &Value) -> &str {
    body["error"]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("not an error: {body}"))
}

/// Claims of a JWT, unverified (for assertions about content).
pub fn claims(jwt: &str) -> Value {
    use base64::Engine;
    let p = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(p)
            .unwrap(),
    )
    .unwrap()
}

/// One call to a Web API URL with a bearer token: the status, the `OData-EntityId` header, and
/// the JSON body (null when there is none).
pub async fn web_call(
    http: &reqwest::Client,
    token: &str,
    method: Method,
    url: String,
    body: Option<Value>,
    headers: &[(&str, &str)],
) -> (StatusCode, Option<String>, Value) {
    let mut req = http.request(method, url).bearer_auth(token);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    let status = r.status();
    let entity_id = r
        .headers()
        .get("OData-EntityId")
        .map(|v| v.to_str().unwrap().to_string());
    (
        status,
        entity_id,
        r.json::<Value>().await.unwrap_or(Value::Null),
    )
}

/// An environment's Web API base and the client that reaches it, with the calls tests make.
pub struct WebApi<'a> {
    pub http: &'a reqwest::Client,
    pub api: String,
}

impl WebApi<'_> {
    /// (status, JSON body, `OData-EntityId`).
    pub async fn call(
        &self,
        token: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value, Option<String>) {
        let (s, loc, v) = web_call(
            self.http,
            token,
            method,
            format!("{}/{path}", self.api),
            body,
            &[],
        )
        .await;
        (s, v, loc)
    }

    /// The body of a call that must succeed.
    pub async fn ok(&self, token: &str, method: Method, path: &str, body: Option<Value>) -> Value {
        let (s, v, _) = self.call(token, method.clone(), path, body).await;
        assert!(s.is_success(), "{method} {path}: {s} {v}");
        v
    }

    /// The names of the accounts the caller may read, in order.
    pub async fn names(&self, token: &str) -> Vec<String> {
        let (s, v, _) = self
            .call(
                token,
                Method::GET,
                "accounts?$select=name&$orderby=name",
                None,
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        v["value"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap().to_string())
            .collect()
    }

    /// Create a row (204) and return its id.
    pub async fn create(&self, token: &str, set: &str, body: Value) -> String {
        let (s, e, loc) = self.call(token, Method::POST, set, Some(body)).await;
        assert_eq!(s, StatusCode::NO_CONTENT, "{e}");
        loc.unwrap()
            .rsplit('(')
            .next()
            .unwrap()
            .trim_end_matches(')')
            .to_string()
    }
}
