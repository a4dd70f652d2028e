//! The Adobe Flow Service API (seed 003): an administrator binds an organization to the tenant
//! and adds a sandbox; seed 003's two POSTs (a Keyway user of the Dynamics environment with
//! basic auth, an application user with key-based auth) give `{id, etag}` and test Connected;
//! wrong credentials keep the connection with the error; PATCH needs a fresh If-Match; lists
//! filter, sort, count and page; explore reads the environment's tables and columns through the
//! connection's own credentials; the gateway's codes; other sandboxes and organizations see 404.
//! And seed 003's curl commands, run as written with only the host and placeholders changed.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(flow_service_api, seed_003_curl);

const DYNAMICS: &str = "38ad80fe-8b06-4938-94f4-d4ee80266b07";
const BASIC: &str = "Basic Authentication for Dynamics-Online";
const KEY: &str = "Service Principal Key Based Authentication";
const ORG: &str = "ABC123@AdobeOrg";

/// A Flow Service caller: its token, its client id (the API key), its organization.
struct Caller<'a> {
    app: &'a TestApp,
    token: String,
    api_key: String,
    org: String,
}

impl Caller<'_> {
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> (StatusCode, Value) {
        let mut req = self
            .app
            .http
            .request(
                method,
                format!("{}/data/foundation/flowservice{path}", self.app.base),
            )
            .bearer_auth(&self.token)
            .header("x-api-key", &self.api_key)
            .header("x-gw-ims-org-id", &self.org);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        let s = r.status();
        (s, r.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str, sandbox: Option<&str>) -> (StatusCode, Value) {
        let h: Vec<(&str, &str)> = sandbox.map(|s| ("x-sandbox-name", s)).into_iter().collect();
        self.send(Method::GET, path, None, &h).await
    }

    async fn create(
        &self,
        sandbox: &str,
        name: &str,
        spec: &str,
        params: Value,
    ) -> (String, String) {
        let (s, c) = self
            .send(
                Method::POST,
                "/connections",
                Some(json!({
                    "name": name,
                    "description": format!("{name} description"),
                    "auth": {"specName": spec, "params": params},
                    "connectionSpec": {"id": DYNAMICS, "version": "1.0"},
                })),
                &[("x-sandbox-name", sandbox)],
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{c}");
        let etag = c["etag"].as_str().unwrap().to_string();
        assert!(etag.starts_with('"') && etag.ends_with('"'), "{c}");
        assert_eq!(c.as_object().unwrap().len(), 2, "only id and etag: {c}");
        (c["id"].as_str().unwrap().to_string(), etag)
    }

    async fn item(&self, id: &str, sandbox: &str) -> Value {
        let (s, v) = self.get(&format!("/connections/{id}"), Some(sandbox)).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        v["items"][0].clone()
    }
}

/// An app with a secret: (client id, secret).
async fn app_with_secret(app: &TestApp, name: &str) -> (String, String) {
    let (oid, cid) = app.create_app(name, json!({})).await;
    let secret = app.add_secret(&oid, json!({})).await["secretText"]
        .as_str()
        .unwrap()
        .to_string();
    (cid, secret)
}

async fn platform_token(app: &TestApp, token_url: &str, cid: &str, secret: &str) -> String {
    let (s, t) = app
        .token_at(
            token_url,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", cid),
                ("client_secret", secret),
                ("scope", "https://platform.adobe.io/.default"),
            ],
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{t}");
    t["access_token"].as_str().unwrap().to_string()
}

/// Everything seed 003 needs: the environment, an organization with sandbox `dev`, a Flow
/// Service caller, a user and an application user of the environment.
struct World<'a> {
    caller: Caller<'a>,
    service_uri: String,
    env_id: String,
    reader_cid: String,
    reader_secret: String,
}

async fn world(app: &TestApp) -> World<'_> {
    let (env, _, _) = app.environment("dyn").await;
    let env_id = env["id"].as_str().unwrap().to_string();
    let service_uri = env["url"].as_str().unwrap().to_string();
    let (s, org) = app
        .graph(
            Method::POST,
            "/v1.0/flowservice/organizations",
            Some(json!({"id": ORG, "displayName": "Acme"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{org}");
    assert_eq!(org["tenantId"], app.tenant().as_str());
    let (s, sb) = app
        .graph(
            Method::POST,
            &format!("/v1.0/flowservice/organizations/{ORG}/sandboxes"),
            Some(json!({"name": "dev"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{sb}");
    let (s, users) = app
        .graph(
            Method::POST,
            "/v1.0/users",
            Some(json!({"displayName": "Dana", "userPrincipalName": "dana@keyway.local", "passwordProfile": {"password": "dynamics pass 1"}})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{users}");
    let (s, u) = app
        .graph(
            Method::POST,
            &format!("/v1.0/environments/{env_id}/addUser"),
            Some(json!({"userPrincipalName": "dana@keyway.local", "roles": ["Basic User"]})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{u}");
    let (reader_cid, reader_secret) = app_with_secret(app, "dynamics reader").await;
    let (s, u) = app
        .graph(
            Method::POST,
            &format!("/v1.0/environments/{env_id}/addAppUser"),
            Some(json!({"servicePrincipalAppId": reader_cid, "roles": ["Basic User"]})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{u}");
    let (cid, secret) = app_with_secret(app, "flow caller").await;
    let token = platform_token(app, &app.token_url(), &cid, &secret).await;
    World {
        caller: Caller {
            app,
            token,
            api_key: cid,
            org: ORG.into(),
        },
        service_uri,
        env_id,
        reader_cid,
        reader_secret,
    }
}

async fn flow_service_api(backend: Backend) {
    let app = spawn_app(backend).await;
    let w = world(&app).await;
    let api = &w.caller;

    // The organization and its sandboxes, as administrators see them.
    let (s, e) = app
        .graph(
            Method::POST,
            "/v1.0/flowservice/organizations",
            Some(json!({"id": ORG})),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{e}");
    let (s, e) = app
        .graph(
            Method::POST,
            "/v1.0/flowservice/organizations",
            Some(json!({"id": "nope"})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    let (s, list) = app
        .graph(
            Method::GET,
            &format!("/v1.0/flowservice/organizations/{ORG}/sandboxes"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let names: Vec<&str> = list["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["prod", "dev"]);

    // The connection spec.
    let (s, specs) = api
        .get("/connectionSpecs?property=name==\"Dynamics\"", None)
        .await;
    assert_eq!(s, StatusCode::OK, "{specs}");
    let spec = &specs["items"][0];
    assert_eq!(spec["id"], DYNAMICS);
    assert_eq!(spec["version"], "1.0");
    let auth: Vec<&str> = spec["authSpec"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(auth, vec![BASIC, KEY]);
    assert_eq!(
        spec["authSpec"][0]["spec"]["properties"]["password"]["format"],
        "password"
    );
    let (s, none) = api
        .get("/connectionSpecs?property=name==\"Salesforce\"", None)
        .await;
    assert_eq!(
        (s, none["items"].as_array().unwrap().len()),
        (StatusCode::OK, 0)
    );
    let (s, one) = api.get(&format!("/connectionSpecs/{DYNAMICS}"), None).await;
    assert_eq!(
        (s, &one["items"][0]["name"]),
        (StatusCode::OK, &json!("dynamics-online"))
    );

    // Seed 003's two requests: basic auth as a user of the environment (in prod, the default
    // sandbox), key-based as an application user (in dev).
    let (basic, basic_etag) = api
        .create("prod", "Dynamics connection", BASIC, json!({"serviceUri": w.service_uri, "username": "dana@keyway.local", "password": "dynamics pass 1"}))
        .await;
    let c = api.item(&basic, "prod").await;
    assert_eq!(c["status"]["status"], "Connected", "{c}");
    assert_eq!(c["state"], "enabled");
    assert_eq!(c["auth"]["params"]["password"], "********", "{c}");
    assert_eq!(c["auth"]["params"]["username"], "dana@keyway.local");
    assert_eq!(
        (c["etag"].as_str(), c["version"].as_str()),
        (Some(basic_etag.as_str()), Some(basic_etag.as_str()))
    );
    assert_eq!(
        (&c["imsOrgId"], &c["sandboxName"]),
        (&json!(ORG), &json!("prod"))
    );
    assert_eq!(
        c["connectionSpec"],
        json!({"id": DYNAMICS, "version": "1.0"})
    );
    let (s, same) = api.get(&format!("/connections/{basic}"), None).await;
    assert_eq!(
        (s, &same["items"][0]["id"]),
        (StatusCode::OK, &json!(basic)),
        "no x-sandbox-name is prod"
    );
    let (key, _) = api
        .create("dev", "Key connection", KEY, json!({"serviceUri": w.service_uri, "servicePrincipalId": w.reader_cid, "servicePrincipalKey": w.reader_secret}))
        .await;
    let k = api.item(&key, "dev").await;
    assert_eq!(k["status"]["status"], "Connected", "{k}");
    assert_eq!(k["auth"]["params"]["servicePrincipalKey"], "********");

    // Wrong credentials: the connection is kept, with the authority's error.
    app.clock.advance(time::Duration::seconds(1));
    let (wrong_pw, _) = api
        .create("prod", "Wrong password", BASIC, json!({"serviceUri": w.service_uri, "username": "dana@keyway.local", "password": "not it"}))
        .await;
    let c = api.item(&wrong_pw, "prod").await;
    assert_eq!(
        (c["state"].as_str(), c["status"]["code"].as_str()),
        (Some("error"), Some("AADSTS50126")),
        "{c}"
    );
    let (wrong_key, _) = api
        .create("dev", "Wrong key", KEY, json!({"serviceUri": w.service_uri, "servicePrincipalId": w.reader_cid, "servicePrincipalKey": "not it"}))
        .await;
    let c = api.item(&wrong_key, "dev").await;
    assert_eq!(c["status"]["code"], "AADSTS7000215", "{c}");

    // An app the environment does not know: the environment's own refusal, in status and explore.
    let (stranger_cid, stranger_secret) = app_with_secret(&app, "stranger").await;
    let (stranger, _) = api
        .create("dev", "Stranger", KEY, json!({"serviceUri": w.service_uri, "servicePrincipalId": stranger_cid, "servicePrincipalKey": stranger_secret}))
        .await;
    let c = api.item(&stranger, "dev").await;
    assert_eq!(c["status"]["status"], "Error", "{c}");
    let (s, e) = api
        .get(
            &format!("/connections/{stranger}/explore?objectType=root"),
            Some("dev"),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{e}");
    assert!(
        e["errorMessage"]
            .as_str()
            .unwrap()
            .contains("Dynamics environment answered 403"),
        "{e}"
    );

    // Refused bodies name what is wrong, in Adobe's shape.
    let (s, e) = api
        .send(Method::POST, "/connections", Some(json!({"name": "x", "auth": {"specName": BASIC, "params": {"serviceUri": w.service_uri, "username": "u"}}, "connectionSpec": {"id": DYNAMICS, "version": "1.0"}})), &[])
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    assert_eq!(e["report"]["field"], "password", "{e}");
    assert_eq!(e["status"], 400);
    assert!(
        e["type"]
            .as_str()
            .unwrap()
            .starts_with("https://ns.adobe.com/aep/errors/FLOW-")
    );
    let (s, e) = api
        .send(Method::POST, "/connections", Some(json!({"name": "x", "auth": {"specName": "Nope", "params": {}}, "connectionSpec": {"id": DYNAMICS}})), &[])
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    let (s, e) = api
        .send(Method::POST, "/connections", Some(json!({"name": "x", "auth": {"specName": BASIC, "params": {}}, "connectionSpec": {"id": "shared_commondataserviceforapps"}})), &[])
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{e}");

    let (s, e) = {
        let r = app
            .http
            .post(format!(
                "{}/data/foundation/flowservice/connections",
                app.base
            ))
            .bearer_auth(&api.token)
            .header("x-api-key", &api.api_key)
            .header("x-gw-ims-org-id", ORG)
            .body("{}")
            .send()
            .await
            .unwrap();
        (r.status(), r.json::<Value>().await.unwrap())
    };
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    assert!(
        e["errorMessage"].as_str().unwrap().contains("content-type"),
        "{e}"
    );

    // PATCH: If-Match required, a stale one refused, the right one (quoted or bare) applies.
    let rename = json!([{"op": "replace", "path": "/name", "value": "Dynamics (renamed)"}]);
    let (s, e) = api
        .send(
            Method::PATCH,
            &format!("/connections/{basic}"),
            Some(rename.clone()),
            &[],
        )
        .await;
    assert_eq!(s, StatusCode::PRECONDITION_FAILED, "{e}");
    assert!(
        e["errorMessage"].as_str().unwrap().contains("If-Match"),
        "{e}"
    );
    let stale = "\"00000000-0000-0200-0000-000000000000\"";
    let (s, e) = api
        .send(
            Method::PATCH,
            &format!("/connections/{basic}"),
            Some(rename.clone()),
            &[("If-Match", stale)],
        )
        .await;
    assert_eq!(s, StatusCode::PRECONDITION_FAILED, "{e}");
    assert!(
        e["errorMessage"]
            .as_str()
            .unwrap()
            .contains("does not match the current version"),
        "{e}"
    );
    let (s, p) = api
        .send(
            Method::PATCH,
            &format!("/connections/{basic}"),
            Some(rename.clone()),
            &[("If-Match", &basic_etag)],
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{p}");
    let new_etag = p["etag"].as_str().unwrap().to_string();
    assert_ne!(new_etag, basic_etag);
    assert_eq!(p["id"], basic.as_str());
    let (s, _) = api
        .send(
            Method::PATCH,
            &format!("/connections/{basic}"),
            Some(rename),
            &[("If-Match", &basic_etag)],
        )
        .await;
    assert_eq!(
        s,
        StatusCode::PRECONDITION_FAILED,
        "the old etag is stale now"
    );
    let c = api.item(&basic, "prod").await;
    assert_eq!(c["name"], "Dynamics (renamed)");
    assert_eq!(
        c["status"]["status"], "Connected",
        "the masked password was kept: {c}"
    );
    let (s, p) = api
        .send(
            Method::PATCH,
            &format!("/connections/{basic}"),
            Some(json!([{"op": "add", "path": "/description", "value": "patched"}, {"op": "replace", "path": "/auth/params/password", "value": "not it"}])),
            &[("If-Match", new_etag.trim_matches('"'))],
        )
        .await;
    assert_eq!(s, StatusCode::OK, "a bare etag works too: {p}");
    let c = api.item(&basic, "prod").await;
    assert_eq!(
        (c["description"].as_str(), c["status"]["code"].as_str()),
        (Some("patched"), Some("AADSTS50126")),
        "{c}"
    );
    let (s, p) = api
        .send(Method::PATCH, &format!("/connections/{basic}"), Some(json!([{"op": "replace", "path": "/auth/params/password", "value": "dynamics pass 1"}])), &[("If-Match", p["etag"].as_str().unwrap())])
        .await;
    assert_eq!(s, StatusCode::OK, "{p}");
    let (s, e) = api
        .send(
            Method::PATCH,
            &format!("/connections/{basic}"),
            Some(json!([{"op": "replace", "path": "/connectionSpec/id", "value": "x"}])),
            &[("If-Match", p["etag"].as_str().unwrap())],
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");

    // Lists: a sandbox's own connections, filtered, sorted, counted and paged.
    let names = |v: &Value| -> Vec<String> {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["name"].as_str().unwrap().to_string())
            .collect()
    };
    let (s, l) = api.get("/connections?orderby=%2Bname", Some("dev")).await;
    assert_eq!(s, StatusCode::OK, "{l}");
    assert_eq!(names(&l), vec!["Key connection", "Stranger", "Wrong key"]);
    let (_, l) = api
        .get("/connections?orderby=-createdAt", Some("prod"))
        .await;
    assert_eq!(names(&l), vec!["Wrong password", "Dynamics (renamed)"]);
    let (_, l) = api
        .get("/connections?property=name==\"Wrong key\"", Some("dev"))
        .await;
    assert_eq!(names(&l), vec!["Wrong key"]);
    let (_, l) = api.get(&format!("/connections?property=connectionSpec.id=={DYNAMICS}&property=name!=Stranger&orderby=name"), Some("dev")).await;
    assert_eq!(names(&l), vec!["Key connection", "Wrong key"]);
    let (_, l) = api
        .get("/connections?property=state==error&count=true", Some("dev"))
        .await;
    assert_eq!(l, json!({"count": 2}));
    let (_, l) = api.get("/connections?count=true", None).await;
    assert_eq!(l, json!({"count": 2}));
    let (_, page) = api
        .get("/connections?orderby=name&limit=2", Some("dev"))
        .await;
    assert_eq!(names(&page), vec!["Key connection", "Stranger"]);
    let next = page["_links"]["next"]["href"].as_str().unwrap().to_string();
    let (_, rest) = api
        .get(
            next.trim_start_matches("/data/foundation/flowservice"),
            Some("dev"),
        )
        .await;
    assert_eq!(names(&rest), vec!["Wrong key"]);
    assert!(rest["_links"]["next"].is_null(), "{rest}");
    let (s, e) = api.get("/connections?property=na%20me==x", None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");

    // Explore: the environment's tables and a table's columns, through each connection's identity.
    for (id, sandbox) in [(&basic, "prod"), (&key, "dev")] {
        let (s, tables) = api
            .get(
                &format!("/connections/{id}/explore?objectType=root"),
                Some(sandbox),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{tables}");
        let paths: Vec<&str> = tables
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["path"].as_str().unwrap())
            .collect();
        assert!(
            paths.contains(&"account") && paths.contains(&"contact"),
            "{tables}"
        );
        assert_eq!(tables[0]["type"], "table");
        assert_eq!(
            (&tables[0]["canPreview"], &tables[0]["canFetchSchema"]),
            (&json!(true), &json!(true))
        );
    }
    let (s, t) = api
        .get(
            &format!("/connections/{key}/explore?objectType=table&object=account"),
            Some("dev"),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{t}");
    assert_eq!(t["format"], "flat");
    let cols = t["schema"]["columns"].as_array().unwrap();
    let col = |n: &str| {
        cols.iter()
            .find(|c| c["name"] == n)
            .unwrap_or_else(|| panic!("no {n} in {t}"))
            .clone()
    };
    assert_eq!(
        col("name"),
        json!({"name": "name", "type": "string", "xdm": {"type": "string"}})
    );
    assert_eq!(
        col("createdon")["xdm"],
        json!({"type": "string", "format": "date-time"})
    );
    for (query, status) in [
        ("objectType=table&object=nosuchtable", StatusCode::NOT_FOUND),
        ("objectType=table&object=a'b", StatusCode::BAD_REQUEST),
        ("objectType=folder", StatusCode::BAD_REQUEST),
    ] {
        let (s, e) = api
            .get(&format!("/connections/{key}/explore?{query}"), Some("dev"))
            .await;
        assert_eq!(s, status, "{query}: {e}");
    }

    // The gateway's codes, in Adobe's order.
    let raw = |headers: Vec<(&'static str, String)>| {
        let app = &app;
        async move {
            let mut req = app.http.get(format!(
                "{}/data/foundation/flowservice/connections",
                app.base
            ));
            for (k, v) in headers {
                req = req.header(k, v);
            }
            let r = req.send().await.unwrap();
            let s = r.status();
            (s, r.json::<Value>().await.unwrap())
        }
    };
    let bearer = format!("Bearer {}", api.token);
    type Headers = Vec<(&'static str, String)>;
    let cases: Vec<(Headers, StatusCode, &str)> = vec![
        (vec![], StatusCode::FORBIDDEN, "403010"),
        (
            vec![("authorization", "Bearer not-a-token".into())],
            StatusCode::UNAUTHORIZED,
            "401013",
        ),
        (
            vec![("authorization", bearer.clone())],
            StatusCode::FORBIDDEN,
            "403000",
        ),
        (
            vec![
                ("authorization", bearer.clone()),
                ("x-api-key", w.reader_cid.clone()),
            ],
            StatusCode::FORBIDDEN,
            "403003",
        ),
        (
            vec![
                ("authorization", bearer.clone()),
                ("x-api-key", api.api_key.clone()),
            ],
            StatusCode::BAD_REQUEST,
            "400003",
        ),
        (
            vec![
                ("authorization", bearer.clone()),
                ("x-api-key", api.api_key.clone()),
                ("x-gw-ims-org-id", "NOPE1@AdobeOrg".into()),
            ],
            StatusCode::FORBIDDEN,
            "403025",
        ),
    ];
    for (headers, status, code) in cases {
        let (s, e) = raw(headers).await;
        assert_eq!((s, e["error_code"].as_str()), (status, Some(code)), "{e}");
        assert!(e["message"].is_string(), "{e}");
    }
    let graph_token = app.admin_token().await;
    let (s, e) = raw(vec![
        ("authorization", format!("Bearer {graph_token}")),
        ("x-api-key", app.profile.client_id.to_string()),
        ("x-gw-ims-org-id", ORG.into()),
    ])
    .await;
    assert_eq!(
        (s, e["error_code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("401013")),
        "a Graph token is not for this API: {e}"
    );
    let (s, e) = api.get("/connections", Some("staging")).await;
    assert_eq!(
        (s, e["status"].as_u64()),
        (StatusCode::NOT_FOUND, Some(404)),
        "{e}"
    );
    assert_eq!(e["title"], "Resource not found");

    // Other sandboxes and organizations: 404, never 403.
    let (s, e) = api.get(&format!("/connections/{basic}"), Some("dev")).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{e}");
    assert_eq!(e["type"], "https://ns.adobe.com/aep/errors/FLOW-1439-404");
    assert!(e["errorMessage"].as_str().unwrap().contains(&basic), "{e}");
    let (s, _) = api
        .send(Method::DELETE, &format!("/connections/{key}"), None, &[])
        .await;
    assert_eq!(
        s,
        StatusCode::NOT_FOUND,
        "prod cannot delete dev's connection"
    );
    let (s, other) = app
        .graph(
            Method::POST,
            "/v1.0/tenants",
            Some(json!({"displayName": "Other", "domains": ["other.example"]})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{other}");
    let other_tid = other["tenant"]["id"].as_str().unwrap().to_string();
    let other_cid = other["administrator"]["clientId"]
        .as_str()
        .unwrap()
        .to_string();
    let other_secret = other["administrator"]["clientSecret"]
        .as_str()
        .unwrap()
        .to_string();
    let (s, o) = app
        .graph(
            Method::POST,
            "/v1.0/flowservice/organizations",
            Some(json!({"id": "XYZ789@AdobeOrg", "tenantId": other_tid})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{o}");
    let other_url = format!("{}/{other_tid}/oauth2/v2.0/token", app.base);
    let outsider = Caller {
        app: &app,
        token: platform_token(&app, &other_url, &other_cid, &other_secret).await,
        api_key: other_cid.clone(),
        org: "XYZ789@AdobeOrg".into(),
    };
    let (s, e) = outsider.get(&format!("/connections/{basic}"), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{e}");
    let (s, l) = outsider.get("/connections?count=true", None).await;
    assert_eq!((s, l), (StatusCode::OK, json!({"count": 0})));
    let intruder = Caller {
        org: ORG.into(),
        ..outsider
    };
    let (s, e) = intruder.get(&format!("/connections/{basic}"), None).await;
    assert_eq!(
        (s, e["error_code"].as_str()),
        (StatusCode::FORBIDDEN, Some("403025")),
        "{e}"
    );
    // The other tenant's administrators see their organization only, and cannot touch Acme's.
    let other_graph = {
        let (s, t) = app
            .token_at(
                &other_url,
                &[
                    ("grant_type", "client_credentials"),
                    ("client_id", &other_cid),
                    ("client_secret", &other_secret),
                    ("scope", "https://graph.microsoft.com/.default"),
                ],
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{t}");
        t["access_token"].as_str().unwrap().to_string()
    };
    let (s, l) = app
        .call(
            &other_graph,
            Method::GET,
            "/v1.0/flowservice/organizations",
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{l}");
    assert_eq!(l["value"].as_array().unwrap().len(), 1);
    assert_eq!(l["value"][0]["id"], "XYZ789@AdobeOrg");
    let (s, e) = app
        .call(
            &other_graph,
            Method::POST,
            &format!("/v1.0/flowservice/organizations/{ORG}/sandboxes"),
            Some(json!({"name": "sneaky"})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{e}");

    // Another caller of the tenant may use and edit the sandbox's connections.
    let (cid2, secret2) = app_with_secret(&app, "second caller").await;
    let second = Caller {
        app: &app,
        token: platform_token(&app, &app.token_url(), &cid2, &secret2).await,
        api_key: cid2,
        org: ORG.into(),
    };
    let c = second.item(&key, "dev").await;
    let (s, p) = second
        .send(
            Method::PATCH,
            &format!("/connections/{key}"),
            Some(json!([{"op": "replace", "path": "/description", "value": "by another"}])),
            &[
                ("x-sandbox-name", "dev"),
                ("If-Match", c["etag"].as_str().unwrap()),
            ],
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{p}");

    // DELETE, then 404; deleting a sandbox takes its connections with it.
    let (s, _) = api
        .send(
            Method::DELETE,
            &format!("/connections/{wrong_pw}"),
            None,
            &[],
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, e) = api.get(&format!("/connections/{wrong_pw}"), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{e}");
    let (s, _) = api
        .send(
            Method::DELETE,
            &format!("/connections/{wrong_pw}"),
            None,
            &[],
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, e) = app
        .graph(
            Method::DELETE,
            &format!("/v1.0/flowservice/organizations/{ORG}/sandboxes/prod"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    let (s, _) = app
        .graph(
            Method::DELETE,
            &format!("/v1.0/flowservice/organizations/{ORG}/sandboxes/dev"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = app
        .graph(
            Method::POST,
            &format!("/v1.0/flowservice/organizations/{ORG}/sandboxes"),
            Some(json!({"name": "dev"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (_, l) = api.get("/connections?count=true", Some("dev")).await;
    assert_eq!(l, json!({"count": 0}), "a new dev sandbox starts empty");
    let _ = &w.env_id;
    app.stop().await;
}

/// Seed 003's two curl commands, exactly as the tutorial prints them; only the host and the
/// placeholders change (and `--cacert` trusts Keyway's CA).
const SEED_003_CURLS: [&str; 2] = [
    r#"curl -X POST \
    'https://platform.adobe.io/data/foundation/flowservice/connections' \
    -H 'Authorization: Bearer {ACCESS_TOKEN}' \
    -H 'x-api-key: {API_KEY}' \
    -H 'x-gw-ims-org-id: {IMS_ORG}' \
    -H 'x-sandbox-name: {SANDBOX_NAME}' \
    -H 'Content-Type: application/json' \
    -d '{
        "name": "Dynamics connection",
        "description": "Dynamics connection using basic auth",
        "auth": {
            "specName": "Basic Authentication for Dynamics-Online",
            "params": {
                "serviceUri": "{SERVICE_URI}",
                "username": "{USERNAME}",
                "password": "{PASSWORD}"
            }
        },
        "connectionSpec": {
            "id": "38ad80fe-8b06-4938-94f4-d4ee80266b07",
            "version": "1.0"
        }
    }'"#,
    r#"curl -X POST \
    'https://platform.adobe.io/data/foundation/flowservice/connections' \
    -H 'Authorization: Bearer {ACCESS_TOKEN}' \
    -H 'x-api-key: {API_KEY}' \
    -H 'x-gw-ims-org-id: {IMS_ORG}' \
    -H 'x-sandbox-name: {SANDBOX_NAME}' \
    -H 'Content-Type: application/json' \
    -d '{
        "name": "Dynamics connection",
        "description": "Dynamics connection using key-based authentication",
        "auth": {
            "specName": "Service Principal Key Based Authentication",
            "params": {
                "serviceUri": "{SERVICE_URI}",
                "servicePrincipalId": "{SERVICE_PRINCIPAL_ID}",
                "servicePrincipalKey": "{SERVICE_PRINCIPAL_KEY}"
            }
        },
        "connectionSpec": {
            "id": "38ad80fe-8b06-4938-94f4-d4ee80266b07",
            "version": "1.0"
        }
    }'"#,
];

async fn seed_003_curl(backend: Backend) {
    let app = spawn_app(backend).await;
    let w = world(&app).await;
    let ca = app.profile.ca_path.clone().unwrap();
    let values = [
        ("{ACCESS_TOKEN}", w.caller.token.clone()),
        ("{API_KEY}", w.caller.api_key.clone()),
        ("{IMS_ORG}", ORG.to_string()),
        ("{SANDBOX_NAME}", "dev".to_string()),
        ("{SERVICE_URI}", w.service_uri.clone()),
        ("{USERNAME}", "dana@keyway.local".to_string()),
        ("{PASSWORD}", "dynamics pass 1".to_string()),
        ("{SERVICE_PRINCIPAL_ID}", w.reader_cid.clone()),
        ("{SERVICE_PRINCIPAL_KEY}", w.reader_secret.clone()),
    ];
    for template in SEED_003_CURLS {
        let mut cmd = template
            .replacen(
                "curl ",
                &format!("curl -sS --cacert '{ca}' -w '\\n%{{http_code}}' "),
                1,
            )
            .replace("https://platform.adobe.io", &app.base);
        for (k, v) in &values {
            cmd = cmd.replace(k, v);
        }
        let out = tokio::process::Command::new("bash")
            .arg("-c")
            .arg(&cmd)
            .output()
            .await
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            out.status.success(),
            "{stdout} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let (body, code) = stdout.rsplit_once('\n').unwrap();
        assert_eq!(code, "201", "{body}");
        let created: Value = serde_json::from_str(body).unwrap();
        let id = created["id"].as_str().unwrap();
        assert!(
            created["etag"].as_str().unwrap().starts_with('"'),
            "{created}"
        );
        let c = w.caller.item(id, "dev").await;
        assert_eq!(c["status"]["status"], "Connected", "{c}");
        assert_eq!(c["name"], "Dynamics connection");
    }
    app.stop().await;
}
