//! The Power Platform connectivity API: a service principal creates a Dataverse connection as
//! itself (seed 000's request) and it tests Connected for real; a wrong secret shows the
//! authority's AADSTS7000215; an app without an application user shows the environment's error;
//! masked values keep the secret; sharing follows the connector's rules; no secret is stored in
//! plaintext anywhere in the database.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(
    connectivity_api,
    certificate_connections,
    environment_from_the_host_name
);

struct Api<'a> {
    app: &'a TestApp,
    env_id: String,
}

impl Api<'_> {
    async fn call(
        &self,
        token: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let sep = if path.contains('?') { '&' } else { '?' };
        let mut req = self
            .app
            .http
            .request(method, format!("{}{path}{sep}api-version=1", self.app.base))
            .bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        let s = r.status();
        (s, r.json().await.unwrap_or(Value::Null))
    }

    fn body(&self, set: &str, values: Value) -> Value {
        let values: serde_json::Map<String, Value> = values
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), json!({"value": v})))
            .collect();
        json!({"properties": {
            "environment": {"id": format!("/providers/Microsoft.PowerApps/environments/{}", self.env_id), "name": self.env_id},
            "connectionParametersSet": {"name": set, "values": values},
        }})
    }
}

/// An app with a secret and (optionally) an application user: (client id, secret, platform token).
async fn principal(
    app: &TestApp,
    env_id: &str,
    name: &str,
    app_user: bool,
) -> (String, String, String) {
    let (oid, cid) = app.create_app(name, json!({})).await;
    let secret = app.add_secret(&oid, json!({})).await["secretText"]
        .as_str()
        .unwrap()
        .to_string();
    if app_user {
        let (s, u) = app
            .graph(
                Method::POST,
                &format!("/v1.0/environments/{env_id}/addAppUser"),
                Some(json!({"servicePrincipalAppId": cid, "roles": ["Basic User"]})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{u}");
    }
    let (s, t) = app
        .secret_token(&cid, &secret, "https://api.powerplatform.com/.default")
        .await;
    assert_eq!(s, StatusCode::OK, "{t}");
    let token = t["access_token"].as_str().unwrap().to_string();
    assert_eq!(claims(&token)["aud"], "https://api.powerplatform.com");
    (cid, secret, token)
}

fn status(v: &Value) -> (&str, Option<&str>) {
    let s = &v["properties"]["statuses"][0];
    (s["status"].as_str().unwrap(), s["error"]["code"].as_str())
}

async fn connectivity_api(backend: Backend) {
    let app = spawn_app(backend).await;
    let (env, _, _) = app.environment("dev").await;
    let env_id = env["id"].as_str().unwrap().to_string();
    let api = Api {
        app: &app,
        env_id: env_id.clone(),
    };
    let tenant = app.tenant();
    let (flow_cid, flow_secret, flow) = principal(&app, &env_id, "flow runner", true).await;
    let dv = "/connectivity/connectors/shared_commondataserviceforapps/connections";

    // Seed 000's request, as the service principal itself (POST, as the seed sends it).
    let good = api.body(
        "ServicePrincipalOauth",
        json!({"token:clientId": flow_cid, "token:clientSecret": flow_secret, "token:TenantId": tenant, "token:grantType": "client_credentials"}),
    );
    let (s, c) = api
        .call(
            &flow,
            Method::POST,
            &format!("{dv}/conn-good"),
            Some(good.clone()),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{c}");
    assert_eq!(status(&c), ("Connected", None), "{c}");
    assert_eq!(c["name"], "conn-good");
    assert_eq!(
        c["id"],
        "/providers/Microsoft.PowerApps/apis/shared_commondataserviceforapps/connections/conn-good"
    );
    assert_eq!(c["properties"]["createdBy"]["type"], "ServicePrincipal");
    assert_eq!(c["properties"]["createdBy"]["displayName"], "flow runner");
    assert_eq!(
        c["properties"]["runOwner"]["id"], c["properties"]["createdBy"]["id"],
        "the run owner defaults to the creator"
    );
    assert_eq!(c["properties"]["runOwner"]["explicit"], false);
    assert_eq!(c["properties"]["environment"]["name"], env_id.as_str());
    let values = &c["properties"]["connectionParametersSet"]["values"];
    assert_eq!(values["token:clientSecret"]["value"], "********", "{c}");
    assert_eq!(values["token:clientId"]["value"], flow_cid.as_str());
    assert!(
        c["properties"]["expirationTime"].is_string(),
        "a local app's secret has a known end: {c}"
    );

    // A secret that ends in 5 days: the connection works and warns, in its status and /metrics.
    let (soon_oid, soon_cid) = app.create_app("short-lived", json!({})).await;
    let end =
        keyway_core::Clock::now(&app.clock) + time::Duration::days(5) + time::Duration::hours(1);
    let soon_secret = app
        .add_secret(&soon_oid, json!({"passwordCredential": {"endDateTime": keyway_core::wire::graph_time::format(&end)}}))
        .await["secretText"]
        .as_str()
        .unwrap()
        .to_string();
    let (s, u) = app
        .graph(
            Method::POST,
            &format!("/v1.0/environments/{env_id}/addAppUser"),
            Some(json!({"servicePrincipalAppId": soon_cid})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{u}");
    let soon = api.body(
        "ServicePrincipalOauth",
        json!({"token:clientId": soon_cid, "token:clientSecret": soon_secret, "token:TenantId": tenant}),
    );
    let (s, c) = api
        .call(&flow, Method::PUT, &format!("{dv}/conn-soon"), Some(soon))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{c}");
    let statuses = &c["properties"]["statuses"];
    assert_eq!(statuses[0]["status"], "Connected", "{c}");
    assert_eq!(statuses[1]["status"], "Warning", "{c}");
    assert_eq!(statuses[1]["error"]["code"], "CredentialExpiresSoon", "{c}");
    assert!(
        statuses[1]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("in 5 days"),
        "{c}"
    );
    let metrics = app
        .http
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let line = metrics
        .lines()
        .find(|l| {
            l.starts_with("keyway_connection_credential_days_left")
                && l.contains("connection=\"conn-soon\"")
        })
        .unwrap_or_else(|| panic!("no gauge for conn-soon in {metrics}"));
    assert!(line.ends_with(" 5"), "{line}");
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("keyway_connections_expiring ") && !l.ends_with(" 0")),
        "{metrics}"
    );

    // A wrong secret: created, but its status carries the authority's own error.
    let wrong = api.body(
        "ServicePrincipalOauth",
        json!({"token:clientId": flow_cid, "token:clientSecret": "not-the-secret", "token:TenantId": tenant}),
    );
    let (s, c) = api
        .call(&flow, Method::PUT, &format!("{dv}/conn-wrong"), Some(wrong))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{c}");
    assert_eq!(status(&c), ("Error", Some("AADSTS7000215")), "{c}");

    // An app with no application user in the environment: the environment's refusal.
    let (stray_cid, stray_secret, _) = principal(&app, &env_id, "stray", false).await;
    let stray = api.body(
        "ServicePrincipalOauth",
        json!({"token:clientId": stray_cid, "token:clientSecret": stray_secret, "token:TenantId": tenant}),
    );
    let (s, c) = api
        .call(&flow, Method::PUT, &format!("{dv}/conn-stray"), Some(stray))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{c}");
    assert_eq!(status(&c), ("Error", Some("0x80072560")), "{c}");

    // Bad values name the field; an unknown connector or environment is a 404.
    let (s, e) = api
        .call(
            &flow,
            Method::PUT,
            &format!("{dv}/bad"),
            Some(api.body(
                "ServicePrincipalOauth",
                json!({"token:clientId": flow_cid, "token:TenantId": tenant}),
            )),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    assert_eq!(e["error"]["code"], "InvalidConnectionParameters");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("token:clientSecret"),
        "{e}"
    );
    let (s, e) = api
        .call(
            &flow,
            Method::PUT,
            "/connectivity/connectors/shared_nope/connections/x",
            Some(good.clone()),
        )
        .await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("ApiNotFound"))
    );
    let (s, e) = api
        .call(&flow, Method::GET, &format!("{dv}/conn-good"), None)
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "no environment named: {e}");
    let (s, _) = app
        .http
        .get(format!(
            "{}{dv}/conn-good?$filter=environment eq '{env_id}'",
            app.base
        ))
        .bearer_auth(&flow)
        .send()
        .await
        .map(|r| (r.status(), ()))
        .unwrap();
    assert_eq!(s, StatusCode::BAD_REQUEST, "api-version is required");

    // Read back and list; a masked secret sent back keeps the stored one.
    let by_filter = format!("{dv}/conn-good?$filter=environment eq '{env_id}'");
    let (s, c) = api.call(&flow, Method::GET, &by_filter, None).await;
    assert_eq!((s, status(&c).0), (StatusCode::OK, "Connected"), "{c}");
    let mut masked = good.clone();
    masked["properties"]["connectionParametersSet"]["values"]["token:clientSecret"]["value"] =
        json!("********");
    masked["properties"]["displayName"] = json!("Dataverse as flow runner");
    let (s, c) = api
        .call(&flow, Method::PUT, &format!("{dv}/conn-good"), Some(masked))
        .await;
    assert_eq!(s, StatusCode::OK, "{c}");
    assert_eq!(
        status(&c),
        ("Connected", None),
        "the stored secret still works: {c}"
    );
    assert_eq!(c["properties"]["displayName"], "Dataverse as flow runner");
    let (s, l) = api
        .call(
            &flow,
            Method::GET,
            &format!("/connectivity/connections?$filter=environment eq '{env_id}'"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let mut names: Vec<&str> = l["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        vec!["conn-good", "conn-soon", "conn-stray", "conn-wrong"]
    );

    // Sharing: Can use sees no parameters and changes nothing; Can edit reads them masked.
    let (reader_cid, _, reader) = principal(&app, &env_id, "reader", true).await;
    let (_, _, editor) = principal(&app, &env_id, "editor", true).await;
    let sp_id = |cid: String| {
        let app = &app;
        async move {
            let (_, l) = app
                .graph(Method::GET, "/v1.0/servicePrincipals", None)
                .await;
            l["value"]
                .as_array()
                .unwrap()
                .iter()
                .find(|s| s["appId"] == cid.as_str())
                .unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string()
        }
    };
    let reader_sp = sp_id(reader_cid).await;
    let (_, l) = app
        .graph(Method::GET, "/v1.0/servicePrincipals", None)
        .await;
    let editor_sp = l["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["displayName"] == "editor")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let share = |id: &str, role: &str| json!({"put": [{"properties": {"roleName": role, "principal": {"id": id, "type": "ServicePrincipal"}}}]});
    let (s, e) = api.call(&reader, Method::GET, &by_filter, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "not shared yet: {e}");
    let perms = format!("{dv}/conn-good/modifyPermissions?$filter=environment eq '{env_id}'");
    let (s, e) = api
        .call(
            &flow,
            Method::POST,
            &perms,
            Some(share(&reader_sp, "CanView")),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{e}");
    let (s, e) = api
        .call(
            &flow,
            Method::POST,
            &perms,
            Some(share(&editor_sp, "CanEdit")),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{e}");
    let (s, c) = api.call(&reader, Method::GET, &by_filter, None).await;
    assert_eq!(s, StatusCode::OK, "{c}");
    assert!(
        c["properties"].get("connectionParametersSet").is_none(),
        "Can use never reads parameters: {c}"
    );
    assert_eq!(c["properties"]["yourRole"], "CanView");
    let (s, e) = api
        .call(
            &reader,
            Method::PUT,
            &format!("{dv}/conn-good"),
            Some(good.clone()),
        )
        .await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("Forbidden")),
        "{e}"
    );
    let (s, e) = api
        .call(
            &reader,
            Method::POST,
            &perms,
            Some(share(&editor_sp, "CanView")),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "Can use cannot share: {e}");
    let (s, e) = api.call(&reader, Method::DELETE, &by_filter, None).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{e}");
    let (s, c) = api.call(&editor, Method::GET, &by_filter, None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        c["properties"]["connectionParametersSet"]["values"]["token:clientSecret"]["value"],
        "********"
    );
    let (s, p) = api
        .call(
            &flow,
            Method::GET,
            &format!("{dv}/conn-good/permissions?$filter=environment eq '{env_id}'"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let roles: Vec<&str> = p["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["properties"]["roleName"].as_str().unwrap())
        .collect();
    assert_eq!(roles, vec!["Owner", "CanView", "CanEdit"], "{p}");
    let (s, e) = api.call(&flow, Method::POST, &perms, Some(json!({"put": [{"properties": {"roleName": "CanView", "principal": {"id": reader_sp, "type": "Group"}}}]}))).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");

    // Desktop-flow connections: shareable only with a run owner, only to service principals.
    let ui = "/connectivity/connectors/shared_uiflow/connections";
    let relay = api.body("azureRelay", json!({"username": "CONTOSO\\robot", "password": "machine-pass-1", "targetId": "d6b3c0c6-0000-0000-0000-000000000001"}));
    let (s, c) = api
        .call(&flow, Method::PUT, &format!("{ui}/desk"), Some(relay))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{c}");
    let (s, e) = api
        .call(
            &flow,
            Method::POST,
            &format!("{ui}/desk/modifyPermissions?$filter=environment eq '{env_id}'"),
            Some(share(&reader_sp, "CanView")),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{e}");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("run owner"),
        "{e}"
    );
    let owned = api.body(
        "azureRelayRunOwner",
        json!({"username": "CONTOSO\\robot", "password": "machine-pass-1", "targetId": "d6b3c0c6-0000-0000-0000-000000000001",
               "tokenRunOwnerCert:clientId": flow_cid, "tokenRunOwnerCert:clientCertificateSecret": "MIIrunownerpfx"}),
    );
    let (s, c) = api
        .call(&flow, Method::PUT, &format!("{ui}/desk-owned"), Some(owned))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{c}");
    assert_eq!(c["properties"]["runOwner"]["explicit"], true, "{c}");
    assert_eq!(c["properties"]["runOwner"]["id"], flow_cid.as_str());
    let owned_perms =
        format!("{ui}/desk-owned/modifyPermissions?$filter=environment eq '{env_id}'");
    let (s, e) = api
        .call(
            &flow,
            Method::POST,
            &owned_perms,
            Some(share(&reader_sp, "CanView")),
        )
        .await;
    assert_eq!(
        s,
        StatusCode::OK,
        "with a run owner, to a service principal: {e}"
    );
    let (s, e) = api
        .call(
            &flow,
            Method::POST,
            &owned_perms,
            Some(share(&reader_sp, "CanViewWithShare")),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{e}");
    let (s, e) = api
        .call(&flow, Method::POST, &owned_perms, Some(json!({"put": [{"properties": {"roleName": "CanView", "principal": {"id": reader_sp, "type": "User"}}}]})))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "only service principals: {e}");

    // Every opening of the secrets is in the history, naming the caller, the identity and why.
    let (s, h) = api
        .call(
            &flow,
            Method::GET,
            &format!("{dv}/conn-good/events?$filter=environment eq '{env_id}'"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{h}");
    let events = h["value"].as_array().unwrap();
    let decrypts: Vec<&Value> = events.iter().filter(|e| e["kind"] == "decrypt").collect();
    assert!(!decrypts.is_empty(), "{h}");
    assert_eq!(decrypts[0]["purpose"], "test");
    assert_eq!(decrypts[0]["actingAs"], flow_cid.as_str());
    assert!(decrypts[0]["caller"].is_string());
    for kind in ["create", "update", "test", "share"] {
        assert!(events.iter().any(|e| e["kind"] == kind), "{kind} in {h}");
    }
    let (s, _) = api
        .call(
            &reader,
            Method::GET,
            &format!("{dv}/conn-good/events?$filter=environment eq '{env_id}'"),
            None,
        )
        .await;
    assert_eq!(
        s,
        StatusCode::FORBIDDEN,
        "Can use holders do not read the history"
    );

    // Delete: gone for everyone.
    let (s, _) = api
        .call(
            &flow,
            Method::DELETE,
            &format!("{dv}/conn-stray?$filter=environment eq '{env_id}'"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, e) = api
        .call(
            &flow,
            Method::GET,
            &format!("{dv}/conn-stray?$filter=environment eq '{env_id}'"),
            None,
        )
        .await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("ConnectionNotFound"))
    );

    // No secret in plaintext anywhere in the database.
    let dump = match &app.db_url {
        None => {
            let mut all = Vec::new();
            for entry in std::fs::read_dir(app.dir.path()).unwrap() {
                let p = entry.unwrap().path();
                if p.is_file() {
                    all.extend(std::fs::read(p).unwrap());
                }
            }
            all
        }
        Some(url) => {
            let out = std::process::Command::new("pg_dump")
                .args(["--data-only", url])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            out.stdout
        }
    };
    assert!(dump.len() > 10_000, "the dump has the database in it");
    for secret in [
        flow_secret.as_str(),
        stray_secret.as_str(),
        "not-the-secret",
        "machine-pass-1",
    ] {
        assert!(
            !dump.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "'{secret}' is stored in plaintext"
        );
    }
}

/// A Dataverse connection with a client certificate (PEM with its key): it signs a client
/// assertion and tests Connected; its expiry is the certificate's; a key of another certificate
/// is refused naming the field.
async fn certificate_connections(backend: Backend) {
    use base64::Engine;
    let app = spawn_app(backend).await;
    let (env, _, _) = app.environment("dev").await;
    let env_id = env["id"].as_str().unwrap().to_string();
    let api = Api {
        app: &app,
        env_id: env_id.clone(),
    };
    let (_, _, flow) = principal(&app, &env_id, "flow runner", true).await;
    let (oid, cid) = app.create_app("cert robot", json!({})).await;
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["robot.example".into()]).unwrap();
    params.not_after = rcgen::date_time_ymd(2031, 6, 30);
    let cert = params.self_signed(&key).unwrap();
    let (s, e) = app
        .graph(Method::PATCH, &format!("/v1.0/applications/{oid}"), Some(json!({"keyCredentials": [{
            "type": "AsymmetricX509Cert", "usage": "Verify", "key": base64::engine::general_purpose::STANDARD.encode(cert.der()), "displayName": "CN=robot"
        }]})))
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{e}");
    let (s, u) = app
        .graph(
            Method::POST,
            &format!("/v1.0/environments/{env_id}/addAppUser"),
            Some(json!({"servicePrincipalAppId": cid})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{u}");
    let pem = format!("{}{}", cert.pem(), key.serialize_pem());
    let body = api.body("CertOauth", json!({"token:clientId": cid, "token:TenantId": app.tenant(), "token:clientCertificate": pem}));
    let dv = "/connectivity/connectors/shared_commondataserviceforapps/connections";
    let (s, c) = api
        .call(&flow, Method::PUT, &format!("{dv}/by-cert"), Some(body))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{c}");
    assert_eq!(status(&c), ("Connected", None), "{c}");
    assert!(
        c["properties"]["expirationTime"]
            .as_str()
            .unwrap()
            .starts_with("2031-06-30"),
        "{c}"
    );
    assert_eq!(
        c["properties"]["connectionParametersSet"]["values"]["token:clientCertificate"]["value"],
        "********"
    );

    let other = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
    let wrong = api.body("CertOauth", json!({"token:clientId": cid, "token:TenantId": app.tenant(), "token:clientCertificate": format!("{}{}", cert.pem(), other.serialize_pem())}));
    let (s, e) = api
        .call(&flow, Method::PUT, &format!("{dv}/wrong-key"), Some(wrong))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    assert_eq!(e["error"]["code"], "InvalidConnectionParameters");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("does not belong"),
        "{e}"
    );
    assert!(
        !e.to_string().contains("PRIVATE KEY"),
        "the key is never echoed: {e}"
    );

    // A certificate the app does not know: the authority's own refusal.
    let stranger = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let stranger_cert = rcgen::CertificateParams::new(vec!["x".into()])
        .unwrap()
        .self_signed(&stranger)
        .unwrap();
    let unknown = api.body("CertOauth", json!({"token:clientId": cid, "token:TenantId": app.tenant(), "token:clientCertificate": format!("{}{}", stranger_cert.pem(), stranger.serialize_pem())}));
    let (s, c) = api
        .call(
            &flow,
            Method::PUT,
            &format!("{dv}/unknown-cert"),
            Some(unknown),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{c}");
    assert_eq!(status(&c), ("Error", Some("AADSTS700027")), "{c}");
}

/// With an environment domain, the environment comes from the host, as on the real service:
/// `<envid minus its last two characters>.<last two>.environment.<domain>`, or the plain id.
async fn environment_from_the_host_name(backend: Backend) {
    let app = spawn_with(
        backend,
        Options {
            rate_limit: 0,
            environment_domain: Some("crm.test".into()),
        },
    )
    .await;
    let (env, _, _) = app.environment("dev").await;
    let env_id = env["id"].as_str().unwrap().to_string();
    let (cid, secret, flow) = principal(&app, &env_id, "flow runner", true).await;
    let port = app.base.rsplit(':').next().unwrap().to_string();
    let bare = env_id.replace('-', "");
    let split_host = format!(
        "{}.{}.environment.crm.test:{port}",
        &bare[..30],
        &bare[30..]
    );
    // The environment is named by the host alone: no body field, no $filter.
    let body = json!({"properties": {"connectionParametersSet": {"name": "ServicePrincipalOauth", "values": {
        "token:clientId": {"value": cid}, "token:clientSecret": {"value": secret}, "token:TenantId": {"value": app.tenant()},
    }}}});
    let url = |q: &str| {
        format!(
            "{}/connectivity/connectors/shared_commondataserviceforapps/connections/by-host?api-version=1{q}",
            app.base
        )
    };
    let r = app
        .http
        .put(url(""))
        .header("Host", &split_host)
        .bearer_auth(&flow)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let c: Value = r.json().await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{c}");
    assert_eq!(c["properties"]["environment"]["name"], env_id.as_str());
    // Its environment URL defaults to https://dev.crm.test:<port>, which no DNS knows: Keyway
    // reaches its own environment host names directly.
    assert_eq!(c["properties"]["statuses"][0]["status"], "Connected", "{c}");
    let dashed_host = format!("{env_id}.environment.crm.test:{port}");
    let r = app
        .http
        .get(url(""))
        .header("Host", &dashed_host)
        .bearer_auth(&flow)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // A host and a filter that disagree are refused.
    let other = uuid::Uuid::new_v4();
    let r = app
        .http
        .get(url(&format!("&$filter=environment eq '{other}'")))
        .header("Host", &dashed_host)
        .bearer_auth(&flow)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}
