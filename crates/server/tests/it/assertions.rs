//! Certificate credentials and client assertions, as msal and azure-identity send them.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use keyway_core::Clock;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;
use crate::on_both_backends;

const TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

struct ClientCert {
    der: Vec<u8>,
    key: EncodingKey,
}

impl ClientCert {
    fn new() -> Self {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["worker.example".into()]).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "worker");
        let cert = params.self_signed(&key).unwrap();
        Self {
            der: cert.der().to_vec(),
            key: EncodingKey::from_rsa_pem(key.serialize_pem().as_bytes()).unwrap(),
        }
    }

    fn sha1(&self) -> Vec<u8> {
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, &self.der)
            .as_ref()
            .to_vec()
    }

    fn sha256(&self) -> Vec<u8> {
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &self.der)
            .as_ref()
            .to_vec()
    }

    /// msal Python's shape: PS256, x5t#S256 with padding, float times, no nbf.
    fn msal(&self, client_id: &str, aud: &str, now: f64, jti: &str) -> String {
        let mut h = Header::new(Algorithm::PS256);
        h.x5t_s256 = Some(format!("{}=", URL_SAFE_NO_PAD.encode(self.sha256())));
        let claims = json!({"aud": aud, "iss": client_id, "sub": client_id, "jti": jti, "iat": now, "exp": now + 600.0});
        jsonwebtoken::encode(&h, &claims, &self.key).unwrap()
    }

    /// azure-identity's shape: RS256, x5t (SHA-1) padded, float times.
    fn azure_identity(&self, client_id: &str, aud: &str, iat: f64, exp: f64, jti: &str) -> String {
        let mut h = Header::new(Algorithm::RS256);
        h.x5t = Some(format!("{}=", URL_SAFE_NO_PAD.encode(self.sha1())));
        let claims = json!({"aud": aud, "iss": client_id, "sub": client_id, "jti": jti, "iat": iat, "exp": exp});
        jsonwebtoken::encode(&h, &claims, &self.key).unwrap()
    }
}

on_both_backends!(
    certificate_credentials_and_assertions,
    assertion_replay_rules_hold_across_restarts
);

async fn register(app: &TestApp, oid: &str, cert: &ClientCert) -> Value {
    let (s, e) = app
        .graph(Method::PATCH, &format!("/v1.0/applications/{oid}"), Some(json!({"keyCredentials": [{
            "type": "AsymmetricX509Cert", "usage": "Verify", "key": STANDARD.encode(&cert.der), "displayName": "CN=worker"
        }]})))
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{e}");
    let (_, got) = app
        .graph(
            Method::GET,
            &format!("/v1.0/applications/{oid}?$select=keyCredentials"),
            None,
        )
        .await;
    got
}

async fn assert_token(app: &TestApp, app_id: &str, assertion: &str, scope: &str) -> Value {
    let (s, body) = app
        .token(&[
            ("grant_type", "client_credentials"),
            ("client_id", app_id),
            ("client_assertion_type", TYPE),
            ("client_assertion", assertion),
            ("scope", scope),
        ])
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    body
}

async fn refused(app: &TestApp, app_id: &str, assertion: &str) -> (StatusCode, u64) {
    let (s, body) = app
        .token(&[
            ("grant_type", "client_credentials"),
            ("client_id", app_id),
            ("client_assertion_type", TYPE),
            ("client_assertion", assertion),
            ("scope", "https://graph.microsoft.com/.default"),
        ])
        .await;
    (s, aadsts(&body))
}

async fn certificate_credentials_and_assertions(backend: Backend) {
    let app = spawn_app(backend).await;
    let (oid, app_id) = app.create_app("worker", json!({})).await;
    app.create_app("orders", json!({"identifierUris": ["api://orders"]}))
        .await;
    let cert = ClientCert::new();
    let got = register(&app, &oid, &cert).await;
    let kc = &got["keyCredentials"][0];
    assert_eq!(kc["type"], "AsymmetricX509Cert");
    assert_eq!(kc["usage"], "Verify");
    assert_eq!(kc["customKeyIdentifier"], hex::encode_upper(cert.sha1()));
    assert_eq!(
        kc["key"],
        STANDARD.encode(&cert.der),
        "key is returned with $select=keyCredentials"
    );
    let (_, plain) = app
        .graph(Method::GET, &format!("/v1.0/applications/{oid}"), None)
        .await;
    assert_eq!(plain["keyCredentials"][0]["key"], Value::Null);

    let now = app.clock.now().unix_timestamp() as f64 + 0.123;
    let aud = app.token_url();
    // One assertion, two scopes in a row: msal reuses it.
    let a = cert.msal(&app_id, &aud, now, "jti-1");
    let t1 = assert_token(&app, &app_id, &a, "https://graph.microsoft.com/.default").await;
    let t2 = assert_token(&app, &app_id, &a, "api://orders/.default").await;
    assert_eq!(
        claims(t1["access_token"].as_str().unwrap())["appidacr"],
        "2"
    );
    assert_eq!(
        claims(t2["access_token"].as_str().unwrap())["aud"],
        "api://orders"
    );
    // azure-identity's shape, addressed to the tenant by domain name.
    let by_domain = format!("{}/keyway.local/oauth2/v2.0/token", app.base);
    let b = cert.azure_identity(&app_id, &by_domain, now, now + 600.0, "jti-2");
    let (s, body) = app
        .token_at(
            &by_domain,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &app_id),
                ("client_assertion_type", TYPE),
                ("client_assertion", &b),
                ("scope", "https://graph.microsoft.com/.default"),
            ],
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");

    // Expired, over-long, misaddressed, unknown certificate, wrong signature.
    let expired = cert.azure_identity(&app_id, &aud, now - 1200.0, now - 600.0, "jti-3");
    assert_eq!(
        refused(&app, &app_id, &expired).await,
        (StatusCode::UNAUTHORIZED, 700024)
    );
    let long = cert.azure_identity(&app_id, &aud, now, now + 3600.0, "jti-4");
    assert_eq!(
        refused(&app, &app_id, &long).await,
        (StatusCode::UNAUTHORIZED, 700024)
    );
    let elsewhere = cert.azure_identity(
        &app_id,
        "https://login.example/token",
        now,
        now + 60.0,
        "jti-5",
    );
    assert_eq!(
        refused(&app, &app_id, &elsewhere).await,
        (StatusCode::BAD_REQUEST, 50027)
    );
    let stranger = ClientCert::new();
    let unknown = stranger.msal(&app_id, &aud, now, "jti-6");
    assert_eq!(
        refused(&app, &app_id, &unknown).await,
        (StatusCode::UNAUTHORIZED, 700027)
    );
    let mut forged_header = Header::new(Algorithm::RS256);
    forged_header.x5t = Some(URL_SAFE_NO_PAD.encode(cert.sha1()));
    let forged = jsonwebtoken::encode(&forged_header, &json!({"aud": aud, "iss": app_id, "sub": app_id, "jti": "jti-7", "iat": now, "exp": now + 60.0}), &stranger.key).unwrap();
    assert_eq!(
        refused(&app, &app_id, &forged).await,
        (StatusCode::UNAUTHORIZED, 700027)
    );
    let other_client = cert.msal("33333333-3333-3333-3333-333333333333", &aud, now, "jti-8");
    assert_eq!(
        refused(&app, &app_id, &other_client).await,
        (StatusCode::UNAUTHORIZED, 700021)
    );

    // Registration errors: junk, a private key, an unknown keyId to keep.
    for bad in [
        json!([{"type": "AsymmetricX509Cert", "usage": "Verify", "key": "bm90IGEgY2VydA=="}]),
        json!([{"type": "Symmetric", "usage": "Verify", "key": STANDARD.encode(&cert.der)}]),
        json!([{"keyId": "44444444-4444-4444-4444-444444444444"}]),
    ] {
        let (s, e) = app
            .graph(
                Method::PATCH,
                &format!("/v1.0/applications/{oid}"),
                Some(json!({"keyCredentials": bad})),
            )
            .await;
        assert_eq!(
            (s, e["error"]["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("Request_BadRequest")),
            "{e}"
        );
    }
    // Keeping the existing one by keyId and adding a second works; dropping it from the array removes it.
    let keep = json!({"keyId": kc["keyId"]});
    let (s, _) = app.graph(Method::PATCH, &format!("/v1.0/applications/{oid}"), Some(json!({"keyCredentials": [keep, {"type": "AsymmetricX509Cert", "usage": "Verify", "key": STANDARD.encode(&stranger.der)}]}))).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let unknown_now_known = stranger.msal(&app_id, &aud, now, "jti-9");
    assert_token(
        &app,
        &app_id,
        &unknown_now_known,
        "https://graph.microsoft.com/.default",
    )
    .await;
    let (s, _) = app
        .graph(
            Method::PATCH,
            &format!("/v1.0/applications/{oid}"),
            Some(json!({"keyCredentials": []})),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let again = cert.msal(&app_id, &aud, now, "jti-10");
    assert_eq!(
        refused(&app, &app_id, &again).await,
        (StatusCode::UNAUTHORIZED, 700027)
    );
    app.stop().await;
}

async fn assertion_replay_rules_hold_across_restarts(backend: Backend) {
    let app = spawn_app(backend).await;
    let (oid, app_id) = app.create_app("worker", json!({})).await;
    let cert = ClientCert::new();
    register(&app, &oid, &cert).await;
    let aud = app.token_url();
    let now = app.clock.now().unix_timestamp() as f64;
    let a = cert.msal(&app_id, &aud, now, "same-jti");
    assert_token(&app, &app_id, &a, "https://graph.microsoft.com/.default").await;
    // Same jti, different claims: refused.
    let b = cert.msal(&app_id, &aud, now + 1.0, "same-jti");
    assert_eq!(
        refused(&app, &app_id, &b).await,
        (StatusCode::UNAUTHORIZED, 50027)
    );

    let app = app.restart().await;
    let aud2 = app.token_url();
    assert_ne!(aud, aud2, "a new port after restart");
    // The jti is remembered across the restart (the store, not memory, holds it).
    let d = cert.msal(&app_id, &aud2, now + 3.0, "same-jti");
    assert_eq!(
        refused(&app, &app_id, &d).await,
        (StatusCode::UNAUTHORIZED, 50027)
    );
    let fresh = cert.msal(&app_id, &aud2, now, "new-jti");
    assert_token(
        &app,
        &app_id,
        &fresh,
        "https://graph.microsoft.com/.default",
    )
    .await;
    assert_token(
        &app,
        &app_id,
        &fresh,
        "https://graph.microsoft.com/.default",
    )
    .await;
    app.stop().await;
}
