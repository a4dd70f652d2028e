//! Environments: the admin API, and tokens whose audience is an environment's URL.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(environments_are_created_listed_and_named_by_tokens);

async fn environments_are_created_listed_and_named_by_tokens(backend: Backend) {
    let app = spawn_app(backend).await;
    let (s, dev) = app
        .graph(
            Method::POST,
            "/v1.0/environments",
            Some(json!({"name": "Dev"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{dev}");
    assert_eq!(dev["name"], "dev");
    let url = dev["url"].as_str().unwrap().to_string();
    assert_eq!(url, format!("{}/env/dev", app.base));
    assert_eq!(dev["tenantId"], app.tenant());
    assert!(dev["id"].as_str().unwrap().len() == 36);
    let (s, _) = app
        .graph(
            Method::POST,
            "/v1.0/environments",
            Some(json!({"name": "dev"})),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    for bad in [
        json!({"name": "9lives"}),
        json!({"name": "a/b"}),
        json!({}),
        json!({"name": "x", "extra": 1}),
    ] {
        let (s, e) = app
            .graph(Method::POST, "/v1.0/environments", Some(bad))
            .await;
        assert_eq!(
            (s, e["error"]["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("Request_BadRequest")),
            "{e}"
        );
    }
    let (_, list) = app.graph(Method::GET, "/v1.0/environments", None).await;
    assert_eq!(list["value"].as_array().unwrap().len(), 1);
    let id = dev["id"].as_str().unwrap();
    let (s, one) = app
        .graph(Method::GET, &format!("/v1.0/environments/{id}"), None)
        .await;
    assert_eq!(
        (s, one["url"].as_str()),
        (StatusCode::OK, Some(url.as_str()))
    );

    // Tokens for the environment: aud is its URL exactly as asked, with or without the slash.
    let (oid, app_id) = app.create_app("worker", json!({})).await;
    let secret = app.add_secret(&oid, json!({})).await["secretText"]
        .as_str()
        .unwrap()
        .to_string();
    for scope in [format!("{url}/.default"), format!("{url}//.default")] {
        let (s, t) = app.secret_token(&app_id, &secret, &scope).await;
        assert_eq!(s, StatusCode::OK, "{t}");
        let c = claims(t["access_token"].as_str().unwrap());
        assert_eq!(
            c["aud"].as_str().unwrap(),
            scope.trim_end_matches("/.default")
        );
        assert!(c["roles"].is_null());
    }
    let localhost = url.replace("127.0.0.1", "localhost");
    assert_eq!(
        app.secret_token(&app_id, &secret, &format!("{localhost}/.default"))
            .await
            .0,
        StatusCode::OK
    );
    // Unknown environment, another server's host: not a resource here.
    for scope in [
        format!("{}/env/nope/.default", app.base),
        "https://evil.example/env/dev/.default".to_string(),
    ] {
        let (s, t) = app.secret_token(&app_id, &secret, &scope).await;
        assert_eq!(
            (s, aadsts(&t)),
            (StatusCode::BAD_REQUEST, 500011),
            "{scope}"
        );
    }

    // Another tenant cannot get tokens for this tenant's environment.
    let (_, t) = app
        .graph(
            Method::POST,
            "/v1.0/tenants",
            Some(json!({"displayName": "Other", "domains": ["other.example"]})),
        )
        .await;
    let form = [
        ("grant_type", "client_credentials"),
        (
            "client_id",
            t["administrator"]["clientId"].as_str().unwrap(),
        ),
        (
            "client_secret",
            t["administrator"]["clientSecret"].as_str().unwrap(),
        ),
        ("scope", &format!("{url}/.default")),
    ];
    let (s, body) = app
        .token_at(
            &format!("{}/other.example/oauth2/v2.0/token", app.base),
            &form,
        )
        .await;
    assert_eq!((s, aadsts(&body)), (StatusCode::BAD_REQUEST, 500011));

    // An app without the environment role cannot manage environments.
    let (_, wt) = app
        .secret_token(&app_id, &secret, "https://graph.microsoft.com/.default")
        .await;
    let (s, _) = app
        .call(
            wt["access_token"].as_str().unwrap(),
            Method::POST,
            "/v1.0/environments",
            Some(json!({"name": "test"})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    let (s, _) = app
        .graph(Method::DELETE, &format!("/v1.0/environments/{id}"), None)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = app
        .graph(Method::GET, &format!("/v1.0/environments/{id}"), None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, t) = app
        .secret_token(&app_id, &secret, &format!("{url}/.default"))
        .await;
    assert_eq!(
        (s, aadsts(&t)),
        (StatusCode::BAD_REQUEST, 500011),
        "a deleted environment is no resource"
    );
    app.stop().await;
}

on_both_backends!(environments_are_reached_by_host_name);

async fn environments_are_reached_by_host_name(backend: Backend) {
    let app = spawn_with(
        backend,
        Options {
            rate_limit: 0,
            environment_domain: Some("crm.test".into()),
        },
    )
    .await;
    let (_, dev) = app
        .graph(
            Method::POST,
            "/v1.0/environments",
            Some(json!({"name": "dev"})),
        )
        .await;
    let port = app.base.rsplit(':').next().unwrap().to_string();
    assert_eq!(
        dev["url"].as_str().unwrap(),
        format!("https://dev.crm.test:{port}")
    );
    let (s, t) = app
        .secret_token(
            &app.profile.client_id.to_string(),
            &app.profile.client_secret,
            &format!("https://dev.crm.test:{port}/.default"),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{t}");
    let token = t["access_token"].as_str().unwrap();
    // The request goes to 127.0.0.1 with the environment's host name in the Host header.
    let r = app
        .http
        .get(format!("{}/api/data/v9.2/WhoAmI", app.base))
        .header("Host", format!("dev.crm.test:{port}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let who: serde_json::Value = r.json().await.unwrap();
    assert_eq!(who["OrganizationId"], dev["id"]);
    // Another host name is no environment; the path form still works.
    let r = app
        .http
        .get(format!("{}/api/data/v9.2/WhoAmI", app.base))
        .header("Host", format!("test.crm.test:{port}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = app
        .http
        .get(format!("{}/env/dev/api/data/v9.2/WhoAmI", app.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    app.stop().await;
}
