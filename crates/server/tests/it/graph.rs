//! The Graph-shaped management API: who may call it, the shapes it returns, the errors it gives.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;
use crate::on_both_backends;

const GRAPH: &str = "https://graph.microsoft.com/.default";

on_both_backends!(
    callers_need_a_graph_token_and_a_role,
    applications_crud_and_bad_input,
    tenants_are_isolated
);

async fn callers_need_a_graph_token_and_a_role(backend: Backend) {
    let app = spawn_app(backend).await;
    let r = app
        .http
        .get(format!("{}/v1.0/applications", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "InvalidAuthenticationToken");
    assert!(body["error"]["innerError"]["request-id"].is_string());
    for junk in ["junk", "a.b.c", "eyJhbGciOiJub25lIn0.eyJ0aWQiOiJ4In0."] {
        let (s, e) = app
            .call(junk, Method::GET, "/v1.0/applications", None)
            .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{e}");
    }

    let (oid, app_id) = app.create_app("worker", json!({})).await;
    app.create_app("orders", json!({"identifierUris": ["api://orders"]}))
        .await;
    let secret = app.add_secret(&oid, json!({})).await["secretText"]
        .as_str()
        .unwrap()
        .to_string();
    // A token for another resource is not a management token.
    let (_, t) = app
        .secret_token(&app_id, &secret, "api://orders/.default")
        .await;
    let (s, e) = app
        .call(
            t["access_token"].as_str().unwrap(),
            Method::GET,
            "/v1.0/applications",
            None,
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{e}");
    // A Graph token without roles is refused with 403.
    let (_, t) = app.secret_token(&app_id, &secret, GRAPH).await;
    let worker = t["access_token"].as_str().unwrap().to_string();
    let (s, e) = app
        .call(&worker, Method::GET, "/v1.0/applications", None)
        .await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("Authorization_RequestDenied")),
        "{e}"
    );

    // Grant Application.ReadWrite.All; a fresh token carries it.
    let (_, sps) = app
        .graph(Method::GET, "/v1.0/servicePrincipals", None)
        .await;
    let find = |app_id: &str| {
        sps["value"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["appId"] == app_id)
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let worker_sp = find(&app_id);
    let graph_sp = find("00000003-0000-0000-c000-000000000000");
    let grant = json!({"principalId": worker_sp, "resourceId": graph_sp, "appRoleId": "1bfefb4e-e0b5-418b-a88f-73c46d2cc8e9"});
    let (s, a) = app
        .graph(
            Method::POST,
            &format!("/v1.0/servicePrincipals/{worker_sp}/appRoleAssignments"),
            Some(grant.clone()),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{a}");
    assert_eq!(a["resourceDisplayName"], "Microsoft Graph");
    let (s, _) = app
        .graph(
            Method::POST,
            &format!("/v1.0/servicePrincipals/{worker_sp}/appRoleAssignments"),
            Some(grant),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    let (_, t) = app.secret_token(&app_id, &secret, GRAPH).await;
    let worker = t["access_token"].as_str().unwrap().to_string();
    assert_eq!(
        claims(&worker)["roles"],
        json!(["Application.ReadWrite.All"])
    );
    let (s, _) = app
        .call(&worker, Method::GET, "/v1.0/applications", None)
        .await;
    assert_eq!(s, StatusCode::OK);
    // …but not users, role grants or tenants.
    let (s, _) = app.call(&worker, Method::GET, "/v1.0/users", None).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let self_grant = json!({"principalId": worker_sp, "resourceId": graph_sp, "appRoleId": "19dbc75e-c2e2-444c-a770-ec69d8559fc7"});
    let (s, _) = app
        .call(
            &worker,
            Method::POST,
            &format!("/v1.0/servicePrincipals/{worker_sp}/appRoleAssignments"),
            Some(self_grant),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = app
        .call(
            &worker,
            Method::POST,
            "/v1.0/tenants",
            Some(json!({"displayName": "x", "domains": ["x.example"]})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // Revoking takes effect on the next token.
    let (s, _) = app
        .graph(
            Method::DELETE,
            &format!(
                "/v1.0/servicePrincipals/{worker_sp}/appRoleAssignments/{}",
                a["id"].as_str().unwrap()
            ),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (_, t) = app.secret_token(&app_id, &secret, GRAPH).await;
    assert!(claims(t["access_token"].as_str().unwrap())["roles"].is_null());
    // An unknown role is refused.
    let (s, _) = app.graph(Method::POST, &format!("/v1.0/servicePrincipals/{worker_sp}/appRoleAssignments"), Some(json!({"principalId": worker_sp, "resourceId": graph_sp, "appRoleId": "55555555-5555-5555-5555-555555555555"}))).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    app.stop().await;
}

async fn applications_crud_and_bad_input(backend: Backend) {
    let app = spawn_app(backend).await;
    let (s, created) = app
        .graph(
            Method::POST,
            "/v1.0/applications",
            Some(json!({"displayName": "Orders", "identifierUris": ["api://orders"]})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    for field in [
        "id",
        "appId",
        "displayName",
        "createdDateTime",
        "signInAudience",
    ] {
        assert!(created[field].is_string(), "{field} in {created}");
    }
    assert_eq!(created["passwordCredentials"], json!([]));
    assert_eq!(created["keyCredentials"], json!([]));
    assert!(
        created["@odata.context"]
            .as_str()
            .unwrap()
            .ends_with("$metadata#applications/$entity")
    );
    let id = created["id"].as_str().unwrap();
    let (s, _) = app
        .graph(
            Method::PATCH,
            &format!("/v1.0/applications/{id}"),
            Some(json!({"displayName": "Orders v2"})),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (_, got) = app
        .graph(Method::GET, &format!("/v1.0/applications/{id}"), None)
        .await;
    assert_eq!(got["displayName"], "Orders v2");
    let (_, list) = app
        .graph(
            Method::GET,
            &format!(
                "/v1.0/applications?$filter=appId eq '{}'&$select=displayName",
                created["appId"].as_str().unwrap()
            ),
            None,
        )
        .await;
    assert_eq!(list["value"].as_array().unwrap().len(), 1);
    assert_eq!(list["value"][0]["displayName"], "Orders v2");
    assert!(list["value"][0].get("appId").is_none(), "$select trims");
    let (_, top) = app
        .graph(Method::GET, "/v1.0/applications?$top=1", None)
        .await;
    assert_eq!(top["value"].as_array().unwrap().len(), 1);

    // Bad input: clear 400s that change nothing.
    let bad: Vec<(Method, String, Option<&str>)> = vec![
        (
            Method::POST,
            "/v1.0/applications".into(),
            Some(r#"{"displayName": "#),
        ),
        (
            Method::POST,
            "/v1.0/applications".into(),
            Some(r#"{"displayName": "x", "bogus": 1}"#),
        ),
        (Method::POST, "/v1.0/applications".into(), Some(r#"{}"#)),
        (
            Method::POST,
            "/v1.0/applications".into(),
            Some(r#"{"displayName": "   "}"#),
        ),
        (
            Method::POST,
            "/v1.0/applications".into(),
            Some(r#"{"displayName": "x", "identifierUris": ["not a uri"]}"#),
        ),
        (
            Method::POST,
            "/v1.0/applications".into(),
            Some(r#"{"displayName": "x", "signInAudience": "AzureADMultipleOrgs"}"#),
        ),
        (
            Method::GET,
            "/v1.0/applications?$orderby=displayName".into(),
            None,
        ),
        (
            Method::GET,
            "/v1.0/applications?$filter=startswith(displayName,'O')".into(),
            None,
        ),
        (Method::GET, "/v1.0/applications?$top=0".into(), None),
        (
            Method::POST,
            "/v1.0/servicePrincipals".into(),
            Some(r#"{"appId": "66666666-6666-6666-6666-666666666666"}"#),
        ),
    ];
    let token = app.admin_token().await;
    for (m, path, body) in bad {
        let mut req = app
            .http
            .request(m.clone(), format!("{}{path}", app.base))
            .bearer_auth(&token);
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{m} {path} {body:?}");
        let e: Value = r.json().await.unwrap();
        assert_eq!(e["error"]["code"], "Request_BadRequest", "{e}");
        assert!(!e["error"]["message"].as_str().unwrap().is_empty());
    }
    let (_, list) = app.graph(Method::GET, "/v1.0/applications", None).await;
    assert_eq!(
        list["value"].as_array().unwrap().len(),
        2,
        "only the admin app and Orders exist"
    );
    let (s, _) = app
        .graph(
            Method::POST,
            "/v1.0/applications",
            Some(json!({"displayName": "dup", "identifierUris": ["API://ORDERS"]})),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);

    // Service principal: one per app, deleted with the app.
    let (s, sp) = app
        .graph(
            Method::POST,
            "/v1.0/servicePrincipals",
            Some(json!({"appId": created["appId"]})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(
        (
            sp["accountEnabled"].as_bool(),
            sp["servicePrincipalType"].as_str()
        ),
        (Some(true), Some("Application"))
    );
    let (s, _) = app
        .graph(
            Method::POST,
            "/v1.0/servicePrincipals",
            Some(json!({"appId": created["appId"]})),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    let (s, _) = app
        .graph(Method::DELETE, &format!("/v1.0/applications/{id}"), None)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, e) = app
        .graph(Method::GET, &format!("/v1.0/applications/{id}"), None)
        .await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("Request_ResourceNotFound"))
    );
    let (s, _) = app
        .graph(
            Method::GET,
            &format!("/v1.0/servicePrincipals/{}", sp["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = app
        .graph(Method::GET, "/v1.0/applications/not-a-guid", None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // The Graph principal and the caller itself cannot be deleted.
    let (_, sps) = app
        .graph(Method::GET, "/v1.0/servicePrincipals", None)
        .await;
    for s in sps["value"].as_array().unwrap() {
        let (status, _) = app
            .graph(
                Method::DELETE,
                &format!("/v1.0/servicePrincipals/{}", s["id"].as_str().unwrap()),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{s}");
    }
    app.stop().await;
}

async fn tenants_are_isolated(backend: Backend) {
    let app = spawn_app(backend).await;
    let (s, t) = app
        .graph(
            Method::POST,
            "/v1.0/tenants",
            Some(json!({"displayName": "Contoso", "domains": ["contoso.example"]})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{t}");
    let tid = t["tenant"]["id"].as_str().unwrap();
    let (cid, csecret) = (
        t["administrator"]["clientId"].as_str().unwrap(),
        t["administrator"]["clientSecret"].as_str().unwrap(),
    );
    let (s, _) = app
        .graph(
            Method::POST,
            "/v1.0/tenants",
            Some(json!({"displayName": "Again", "domains": ["Contoso.example"]})),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    let (s, _) = app
        .graph(
            Method::POST,
            "/v1.0/tenants",
            Some(json!({"displayName": "NoDomain"})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    // The new administrator signs in at its own tenant (by domain), not at the system tenant.
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", cid),
        ("client_secret", csecret),
        ("scope", GRAPH),
    ];
    let (s, body) = app
        .token_at(
            &format!("{}/contoso.example/oauth2/v2.0/token", app.base),
            &form,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let contoso = body["access_token"].as_str().unwrap().to_string();
    assert_eq!(claims(&contoso)["tid"], tid);
    let (s, body) = app.token(&form).await;
    assert_eq!((s, aadsts(&body)), (StatusCode::BAD_REQUEST, 700016));
    let (_, apps) = app
        .call(&contoso, Method::GET, "/v1.0/applications", None)
        .await;
    let names: Vec<&str> = apps["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["displayName"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["Keyway administrator"]);
    assert_ne!(
        apps["value"][0]["appId"].as_str(),
        Some(app.profile.client_id.to_string().as_str())
    );
    let (s, _) = app
        .call(
            &contoso,
            Method::POST,
            "/v1.0/tenants",
            Some(json!({"displayName": "x", "domains": ["y.example"]})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (_, own) = app.call(&contoso, Method::GET, "/v1.0/tenants", None).await;
    assert_eq!(own["value"].as_array().unwrap().len(), 1);
    // Objects of one tenant are not found from another.
    let sys_app = app.graph(Method::GET, "/v1.0/applications", None).await.1["value"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (s, _) = app
        .call(
            &contoso,
            Method::GET,
            &format!("/v1.0/applications/{sys_app}"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // Users belong to their tenant's domains.
    let (s, _) = app.call(&contoso, Method::POST, "/v1.0/users", Some(json!({"displayName": "Bob", "userPrincipalName": "bob@keyway.local", "passwordProfile": {"password": "long enough 1"}}))).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = app.call(&contoso, Method::POST, "/v1.0/users", Some(json!({"displayName": "Bob", "userPrincipalName": "bob@contoso.example", "passwordProfile": {"password": "long enough 1"}}))).await;
    assert_eq!(s, StatusCode::CREATED);
    let (_, all) = app.graph(Method::GET, "/v1.0/tenants", None).await;
    assert_eq!(all["value"].as_array().unwrap().len(), 2);
    app.stop().await;
}
