//! The token endpoint with client secrets and passwords: success verified against the JWKS,
//! and every refusal in Entra's shape.

use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use keyway_core::Clock;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use time::Duration;

use crate::helpers::*;
use crate::on_both_backends;

const GRAPH: &str = "https://graph.microsoft.com/.default";

on_both_backends!(
    secret_token_verifies_against_the_jwks,
    secrets_are_shown_once_and_stored_only_as_hashes,
    two_secrets_live_at_once_and_a_removed_one_is_refused,
    expired_secret_is_refused,
    errors_are_shaped_like_entra,
    disabled_service_principal_is_refused,
    password_grant_for_users,
    rotated_keys_keep_tokens_in_flight_valid,
);

async fn secret_token_verifies_against_the_jwks(backend: Backend) {
    let app = spawn_app(backend).await;
    let (oid, app_id) = app.create_app("worker", json!({})).await;
    let secret = app
        .add_secret(&oid, json!({"passwordCredential": {"displayName": "s1"}}))
        .await;
    let secret = secret["secretText"].as_str().unwrap();
    let (_, api_app_id) = app
        .create_app("orders", json!({"identifierUris": ["api://orders"]}))
        .await;

    // Discovery is what the libraries read; its endpoints are where they will go.
    let disco: Value = app
        .http
        .get(format!(
            "{}/{}/v2.0/.well-known/openid-configuration",
            app.base,
            app.tenant()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(disco["token_endpoint"], app.token_url());
    assert_eq!(
        disco["issuer"],
        format!("{}/{}/v2.0", app.base, app.tenant())
    );
    let jwks: Value = app
        .http
        .get(disco["jwks_uri"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();

    for (scope, aud) in [
        (GRAPH, "https://graph.microsoft.com"),
        ("api://orders/.default", "api://orders"),
        (
            &format!("{api_app_id}/.default") as &str,
            api_app_id.as_str(),
        ),
    ] {
        let (s, body) = app.secret_token(&app_id, secret, scope).await;
        assert_eq!(s, StatusCode::OK, "{body}");
        assert_eq!(body["token_type"], "Bearer");
        assert_eq!(body["expires_in"], 3599);
        assert_eq!(body["ext_expires_in"], 3599);
        let token = body["access_token"].as_str().unwrap();
        let header = jsonwebtoken::decode_header(token).unwrap();
        assert_eq!(header.alg, Algorithm::ES256);
        let jwk = jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["kid"] == header.kid.clone().unwrap())
            .expect("kid in JWKS");
        let key =
            DecodingKey::from_ec_components(jwk["x"].as_str().unwrap(), jwk["y"].as_str().unwrap())
                .unwrap();
        let mut v = Validation::new(Algorithm::ES256);
        v.set_audience(&[aud]);
        v.set_issuer(&[disco["issuer"].as_str().unwrap()]);
        let c = jsonwebtoken::decode::<Value>(token, &key, &v)
            .unwrap()
            .claims;
        assert_eq!(c["appid"], app_id);
        assert_eq!(c["azp"], app_id);
        assert_eq!(c["tid"], app.tenant());
        assert_eq!(c["idtyp"], "app");
        assert_eq!(c["ver"], "2.0");
        assert_eq!(c["appidacr"], "1");
        assert!(c["oid"].as_str().is_some() && c["sub"] == c["oid"]);
        assert!(c["roles"].is_null(), "a new app holds no roles: {c}");
        assert_eq!(
            c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(),
            3600
        );
    }

    // client_secret_basic works too, and the domain name is a tenant path.
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{app_id}:{secret}"));
    let resp = app
        .http
        .post(format!("{}/keyway.local/oauth2/v2.0/token", app.base))
        .header("Authorization", format!("Basic {basic}"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", GRAPH),
            ("client_info", "1"),
            ("x-client-SKU", "test"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["cache-control"], "no-store, no-cache");
    app.stop().await;
}

async fn secrets_are_shown_once_and_stored_only_as_hashes(backend: Backend) {
    let app = spawn_app(backend).await;
    let (oid, _) = app.create_app("worker", json!({})).await;
    let created = app
        .add_secret(&oid, json!({"passwordCredential": {"displayName": "s1"}}))
        .await;
    let text = created["secretText"].as_str().unwrap().to_string();
    assert!(text.len() >= 43, "256 bits in base64url");
    assert_eq!(created["hint"], &text[..3]);
    let (start, end) = (
        created["startDateTime"].as_str().unwrap(),
        created["endDateTime"].as_str().unwrap(),
    );
    let days = (time::OffsetDateTime::parse(end, &time::format_description::well_known::Rfc3339)
        .unwrap()
        - time::OffsetDateTime::parse(start, &time::format_description::well_known::Rfc3339)
            .unwrap())
    .whole_days();
    assert_eq!(days, 180, "default lifetime");

    let (_, got) = app
        .graph(Method::GET, &format!("/v1.0/applications/{oid}"), None)
        .await;
    assert_eq!(got["passwordCredentials"][0]["secretText"], Value::Null);
    assert!(!got.to_string().contains(&text));
    let (_, listed) = app.graph(Method::GET, "/v1.0/applications", None).await;
    assert!(!listed.to_string().contains(&text));

    // Nor in the database: only a keyed hash is kept.
    if backend == Backend::Sqlite {
        let mut all = Vec::new();
        for entry in std::fs::read_dir(app.dir.path()).unwrap() {
            let p = entry.unwrap().path();
            if p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("keyway.db")
            {
                all.extend(std::fs::read(p).unwrap());
            }
        }
        assert!(
            !all.windows(text.len()).any(|w| w == text.as_bytes()),
            "secret found in the database files"
        );
        assert!(
            !all.windows(app.profile.client_secret.len())
                .any(|w| w == app.profile.client_secret.as_bytes())
        );
    }

    // Too long a lifetime is refused.
    let (s, err) = app
        .graph(
            Method::POST,
            &format!("/v1.0/applications/{oid}/addPassword"),
            Some(json!({"passwordCredential": {"endDateTime": "2099-01-01T00:00:00Z"}})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{err}");
    assert_eq!(err["error"]["code"], "Request_BadRequest");
    // Secrets cannot be set by PATCH.
    let (s, _) = app
        .graph(
            Method::PATCH,
            &format!("/v1.0/applications/{oid}"),
            Some(json!({"passwordCredentials": []})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    app.stop().await;
}

async fn two_secrets_live_at_once_and_a_removed_one_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let (oid, app_id) = app.create_app("worker", json!({})).await;
    let a = app.add_secret(&oid, json!({})).await;
    let b = app
        .add_secret(&oid, json!({"passwordCredential": {"displayName": "next"}}))
        .await;
    for s in [&a, &b] {
        let (status, body) = app
            .secret_token(&app_id, s["secretText"].as_str().unwrap(), GRAPH)
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (s, _) = app
        .graph(
            Method::POST,
            &format!("/v1.0/applications/{oid}/removePassword"),
            Some(json!({"keyId": a["keyId"]})),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (status, body) = app
        .secret_token(&app_id, a["secretText"].as_str().unwrap(), GRAPH)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(aadsts(&body), 7000215);
    let (status, _) = app
        .secret_token(&app_id, b["secretText"].as_str().unwrap(), GRAPH)
        .await;
    assert_eq!(status, StatusCode::OK);
    // Removing it again is a 404.
    let (s, err) = app
        .graph(
            Method::POST,
            &format!("/v1.0/applications/{oid}/removePassword"),
            Some(json!({"keyId": a["keyId"]})),
        )
        .await;
    assert_eq!(
        (s, err["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("Request_ResourceNotFound"))
    );
    app.stop().await;
}

async fn expired_secret_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let (oid, app_id) = app.create_app("worker", json!({})).await;
    let end = app.clock.now() + Duration::days(2);
    let s = app
        .add_secret(&oid, json!({"passwordCredential": {"endDateTime": keyway_core::wire::graph_time::format(&end)}}))
        .await;
    let secret = s["secretText"].as_str().unwrap();
    assert_eq!(
        app.secret_token(&app_id, secret, GRAPH).await.0,
        StatusCode::OK
    );
    app.clock.advance(Duration::days(3));
    let (status, body) = app.secret_token(&app_id, secret, GRAPH).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(aadsts(&body), 7000222);
    assert_eq!(body["error"], "invalid_client");
    app.stop().await;
}

async fn errors_are_shaped_like_entra(backend: Backend) {
    let app = spawn_app(backend).await;
    let (oid, app_id) = app.create_app("worker", json!({})).await;
    let secret = app.add_secret(&oid, json!({})).await["secretText"]
        .as_str()
        .unwrap()
        .to_string();
    let ok = |extra: &[(&'static str, &'static str)]| {
        let mut f: Vec<(&str, String)> = vec![
            ("grant_type", "client_credentials".into()),
            ("client_id", app_id.clone()),
            ("client_secret", secret.clone()),
            ("scope", GRAPH.into()),
        ];
        for (k, v) in extra {
            f.retain(|(x, _)| x != k);
            if !v.is_empty() {
                f.push((k, v.to_string()));
            }
        }
        f
    };
    type Case<'a> = (Vec<(&'a str, String)>, u16, &'a str, u64);
    let cases: Vec<Case> = vec![
        (
            ok(&[("client_secret", "nope")]),
            401,
            "invalid_client",
            7000215,
        ),
        (
            ok(&[("client_id", "11111111-1111-1111-1111-111111111111")]),
            400,
            "unauthorized_client",
            700016,
        ),
        (
            ok(&[("client_id", "not-a-guid")]),
            400,
            "unauthorized_client",
            700016,
        ),
        (
            ok(&[("scope", "https://graph.microsoft.com/User.Read")]),
            400,
            "invalid_scope",
            1002012,
        ),
        (
            ok(&[("scope", "a/.default b/.default")]),
            400,
            "invalid_scope",
            1002012,
        ),
        (
            ok(&[("scope", "api://nothing-here/.default")]),
            400,
            "invalid_resource",
            500011,
        ),
        (
            ok(&[("grant_type", "authorization_code")]),
            400,
            "unsupported_grant_type",
            70003,
        ),
        (ok(&[("grant_type", "")]), 400, "invalid_request", 900144),
        (ok(&[("scope", "")]), 400, "invalid_request", 900144),
        (ok(&[("client_secret", "")]), 401, "invalid_client", 7000218),
        (
            ok(&[("client_assertion", "x.y.z")]),
            400,
            "invalid_request",
            9002313,
        ),
    ];
    for (form, status, error, code) in cases {
        let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let resp = app
            .http
            .post(app.token_url())
            .header("client-request-id", "corr-42")
            .form(&pairs)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), status, "{pairs:?}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"], error, "{body}");
        assert_eq!(aadsts(&body), code, "{body}");
        let desc = body["error_description"].as_str().unwrap();
        assert!(desc.starts_with(&format!("AADSTS{code}: ")), "{desc}");
        assert!(
            desc.contains("\r\nTrace ID: ")
                && desc.contains("\r\nCorrelation ID: corr-42\r\nTimestamp: "),
            "{desc}"
        );
        assert_eq!(body["correlation_id"], "corr-42");
        assert!(body["trace_id"].as_str().is_some() && body["timestamp"].as_str().is_some());
        assert!(
            body["error_uri"]
                .as_str()
                .unwrap()
                .ends_with(&format!("code={code}"))
        );
    }

    // Unknown tenant, by id and by domain; the correlation id may come in the query.
    for t in ["22222222-2222-2222-2222-222222222222", "nowhere.example"] {
        let url = format!("{}/{t}/oauth2/v2.0/token?client-request-id=q-7", app.base);
        let (s, body) = app
            .token_at(&url, &[("grant_type", "client_credentials")])
            .await;
        assert_eq!(
            (s, aadsts(&body)),
            (StatusCode::BAD_REQUEST, 90002),
            "{body}"
        );
        assert_eq!(body["correlation_id"], "q-7");
        let resp = app
            .http
            .get(format!(
                "{}/{t}/v2.0/.well-known/openid-configuration",
                app.base
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    }

    // Not a form, a JSON body, an oversized body: clear 4xx, never a 500.
    let resp = app
        .http
        .post(app.token_url())
        .json(&json!({"grant_type": "client_credentials"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let big = "x".repeat(2 * 1024 * 1024);
    let resp = app
        .http
        .post(app.token_url())
        .form(&[("grant_type", big.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    app.stop().await;

    // Rate limiting: 429 with Retry-After, in Entra's shape.
    let limited = spawn_with(
        backend,
        Options {
            rate_limit: 2,
            ..Default::default()
        },
    )
    .await;
    let mut saw = None;
    for _ in 0..10 {
        let resp = limited
            .http
            .post(limited.token_url())
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap();
        if resp.status() == StatusCode::TOO_MANY_REQUESTS {
            let retry = resp.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse::<u64>()
                .unwrap();
            saw = Some((retry, resp.json::<Value>().await.unwrap()));
            break;
        }
    }
    let (retry, body) = saw.expect("no 429 within 10 quick requests at 2/s");
    assert!(retry >= 1);
    assert_eq!(aadsts(&body), 90055);
    limited.stop().await;
}

async fn disabled_service_principal_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let (oid, app_id) = app.create_app("worker", json!({})).await;
    let secret = app.add_secret(&oid, json!({})).await["secretText"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, sps) = app
        .graph(
            Method::GET,
            &format!("/v1.0/servicePrincipals?$filter=appId eq '{app_id}'"),
            None,
        )
        .await;
    let sp_id = sps["value"][0]["id"].as_str().unwrap().to_string();
    let (s, _) = app
        .graph(
            Method::PATCH,
            &format!("/v1.0/servicePrincipals/{sp_id}"),
            Some(json!({"accountEnabled": false})),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (status, body) = app.secret_token(&app_id, &secret, GRAPH).await;
    assert_eq!(
        (status, aadsts(&body)),
        (StatusCode::BAD_REQUEST, 7000112),
        "{body}"
    );
    // An app without a service principal cannot get tokens either.
    let (s, bare) = app
        .graph(
            Method::POST,
            "/v1.0/applications",
            Some(json!({"displayName": "bare"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let bare_secret = app
        .add_secret(bare["id"].as_str().unwrap(), json!({}))
        .await;
    let (status, body) = app
        .secret_token(
            bare["appId"].as_str().unwrap(),
            bare_secret["secretText"].as_str().unwrap(),
            GRAPH,
        )
        .await;
    assert_eq!(
        (status, aadsts(&body)),
        (StatusCode::BAD_REQUEST, 700016),
        "{body}"
    );
    // Enabled again, it works.
    app.graph(
        Method::PATCH,
        &format!("/v1.0/servicePrincipals/{sp_id}"),
        Some(json!({"accountEnabled": true})),
    )
    .await;
    assert_eq!(
        app.secret_token(&app_id, &secret, GRAPH).await.0,
        StatusCode::OK
    );
    app.stop().await;
}

async fn password_grant_for_users(backend: Backend) {
    let app = spawn_app(backend).await;
    let (_, public_app) = app
        .create_app("cli tool", json!({"isFallbackPublicClient": true}))
        .await;
    let (_, confidential) = app.create_app("web", json!({})).await;
    let (s, user) = app
        .graph(Method::POST, "/v1.0/users", Some(json!({
            "accountEnabled": true, "displayName": "Alice", "mailNickname": "alice",
            "userPrincipalName": "alice@keyway.local",
            "passwordProfile": {"forceChangePasswordNextSignIn": false, "password": "correct horse battery"}
        })))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{user}");
    assert!(user.get("passwordProfile").is_none() && !user.to_string().contains("correct horse"));
    let pw = |client: &str, password: &str| {
        vec![
            ("grant_type", "password".to_string()),
            ("client_id", client.to_string()),
            ("username", "Alice@keyway.local".into()),
            ("password", password.to_string()),
            ("scope", "User.Read openid profile".into()),
        ]
    };
    let app_ref = &app;
    let send = |f: Vec<(&'static str, String)>| async move {
        let p: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
        app_ref.token(&p).await
    };
    let (s, body) = send(pw(&public_app, "correct horse battery")).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let c = claims(body["access_token"].as_str().unwrap());
    assert_eq!(
        (c["idtyp"].as_str(), c["upn"].as_str(), c["scp"].as_str()),
        (Some("user"), Some("alice@keyway.local"), Some("User.Read"))
    );
    assert_eq!(c["oid"], user["id"]);
    assert_eq!(c["aud"], "https://graph.microsoft.com");

    let (s, body) = send(pw(&public_app, "wrong password!")).await;
    assert_eq!(
        (s, aadsts(&body), body["error"].as_str()),
        (StatusCode::BAD_REQUEST, 50126, Some("invalid_grant"))
    );
    let mut unknown = pw(&public_app, "whatever1");
    unknown[2].1 = "bob@keyway.local".into();
    assert_eq!(aadsts(&send(unknown).await.1), 50126);
    // A confidential client must authenticate.
    let (s, body) = send(pw(&confidential, "correct horse battery")).await;
    assert_eq!((s, aadsts(&body)), (StatusCode::UNAUTHORIZED, 7000218));

    let uid = user["id"].as_str().unwrap();
    let (s, _) = app
        .graph(
            Method::PATCH,
            &format!("/v1.0/users/{uid}"),
            Some(json!({"accountEnabled": false})),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, body) = send(pw(&public_app, "correct horse battery")).await;
    assert_eq!((s, aadsts(&body)), (StatusCode::BAD_REQUEST, 50057));
    // A disabled user with a wrong password learns nothing more than 50126.
    assert_eq!(
        aadsts(&send(pw(&public_app, "wrong password!")).await.1),
        50126
    );

    // Bad input to the users API.
    for bad in [
        json!({"displayName": "x", "userPrincipalName": "x@elsewhere.example", "passwordProfile": {"password": "long enough 1"}}),
        json!({"displayName": "x", "userPrincipalName": "x@keyway.local", "passwordProfile": {"password": "short"}}),
        json!({"displayName": "x", "userPrincipalName": "x@keyway.local"}),
    ] {
        let (s, e) = app.graph(Method::POST, "/v1.0/users", Some(bad)).await;
        assert_eq!(
            (s, e["error"]["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("Request_BadRequest")),
            "{e}"
        );
    }
    let (s, _) = app.graph(Method::POST, "/v1.0/users", Some(json!({"displayName": "A2", "userPrincipalName": "alice@keyway.local", "passwordProfile": {"password": "long enough 1"}}))).await;
    assert_eq!(s, StatusCode::CONFLICT);
    app.stop().await;
}

async fn rotated_keys_keep_tokens_in_flight_valid(backend: Backend) {
    let app = spawn_app(backend).await;
    let before = app.admin_token().await;
    let kid_before = jsonwebtoken::decode_header(&before).unwrap().kid.unwrap();
    let (s, key) = app
        .graph(
            Method::POST,
            &format!("/v1.0/tenants/{}/signingKeys/rotate", app.tenant()),
            Some(json!({})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{key}");
    assert_ne!(key["kid"].as_str().unwrap(), kid_before);
    // The old token still works and the JWKS publishes both keys.
    let (s, _) = app
        .call(&before, Method::GET, "/v1.0/applications", None)
        .await;
    assert_eq!(s, StatusCode::OK);
    let jwks: Value = app
        .http
        .get(format!("{}/{}/discovery/v2.0/keys", app.base, app.tenant()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert!(
        kids.contains(&kid_before.as_str()) && kids.contains(&key["kid"].as_str().unwrap()),
        "{kids:?}"
    );
    // New tokens are signed with the new key.
    let (_, t) = app
        .secret_token(
            &app.profile.client_id.to_string(),
            &app.profile.client_secret,
            GRAPH,
        )
        .await;
    let kid_after = jsonwebtoken::decode_header(t["access_token"].as_str().unwrap())
        .unwrap()
        .kid
        .unwrap();
    assert_eq!(kid_after, key["kid"].as_str().unwrap());
    let (_, listed) = app
        .graph(
            Method::GET,
            &format!("/v1.0/tenants/{}/signingKeys", app.tenant()),
            None,
        )
        .await;
    let statuses: Vec<&str> = listed["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, vec!["active", "retired"]);
    app.stop().await;
}
