//! Least privilege across a three-level business-unit tree: application users with custom roles
//! can do exactly what each privilege and depth allows, and are refused the rest by name.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(application_users_get);

fn missing(v: &Value, privilege: &str) {
    assert_eq!(v["error"]["code"], "0x80040220", "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains(&format!("is missing {privilege} privilege")),
        "{v}"
    );
}

async fn application_users_get(backend: Backend) {
    let app = spawn_app(backend).await;
    let (_, env) = app
        .graph(
            Method::POST,
            "/v1.0/environments",
            Some(json!({"name": "dev"})),
        )
        .await;
    let (env_id, url) = (
        env["id"].as_str().unwrap().to_string(),
        env["url"].as_str().unwrap().to_string(),
    );
    let api = WebApi {
        http: &app.http,
        api: format!("{url}/api/data/v9.2"),
    };
    let scope = format!("{url}/.default");
    let token_for = |cid: String, secret: String| {
        let (app, scope) = (&app, scope.clone());
        async move {
            app.secret_token(&cid, &secret, &scope).await.1["access_token"]
                .as_str()
                .unwrap()
                .to_string()
        }
    };
    let admin = token_for(
        app.profile.client_id.to_string(),
        app.profile.client_secret.clone(),
    )
    .await;

    // The tree: root → A → A1, and root → B.
    let (_, who, _) = api.call(&admin, Method::GET, "WhoAmI", None).await;
    let root = who["BusinessUnitId"].as_str().unwrap().to_string();
    let a = api.create(&admin, "businessunits", json!({"name": "A", "parentbusinessunitid@odata.bind": format!("/businessunits({root})")})).await;
    let a1 = api.create(&admin, "businessunits", json!({"name": "A1", "parentbusinessunitid@odata.bind": format!("/businessunits({a})")})).await;
    let b = api.create(&admin, "businessunits", json!({"name": "B", "parentbusinessunitid@odata.bind": format!("/businessunits({root})")})).await;

    // Roles, made through the admin API.
    let role = |name: &str, privileges: &[&str]| {
        let (app, env_id) = (&app, env_id.clone());
        let body = json!({"name": name, "privileges": privileges});
        async move {
            let (s, r) = app
                .graph(
                    Method::POST,
                    &format!("/v1.0/environments/{env_id}/roles"),
                    Some(body),
                )
                .await;
            assert_eq!(s, StatusCode::CREATED, "{r}");
            r["roleid"].as_str().unwrap().to_string()
        }
    };
    role(
        "Own accounts",
        &[
            "prvCreateaccount:User",
            "prvReadaccount:User",
            "prvWriteaccount:User",
        ],
    )
    .await;
    role(
        "Unit reader",
        &[
            "prvReadaccount:BusinessUnit",
            "prvCreateaccount:User",
            "prvWriteaccount:User",
        ],
    )
    .await;
    let deep = role("Deep reader", &["prvReadaccount:Deep"]).await;
    let (s, e) = app
        .graph(
            Method::POST,
            &format!("/v1.0/environments/{env_id}/roles"),
            Some(json!({"name": "Bad", "privileges": ["prvReadwidget:User"]})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");

    // Application users in each unit.
    let app_user = |name: &'static str, unit: String, roles: Vec<&'static str>| {
        let (app, env_id) = (&app, env_id.clone());
        async move {
            let (oid, cid) = app.create_app(name, json!({})).await;
            let secret = app.add_secret(&oid, json!({})).await["secretText"]
                .as_str()
                .unwrap()
                .to_string();
            let (s, u) = app
                .graph(Method::POST, &format!("/v1.0/environments/{env_id}/addAppUser"), Some(json!({"servicePrincipalAppId": cid, "businessUnitId": unit, "roles": roles})))
                .await;
            assert_eq!(s, StatusCode::CREATED, "{u}");
            (cid, secret, u["systemuserid"].as_str().unwrap().to_string())
        }
    };
    let (worker_id, worker_secret, worker_user) =
        app_user("worker", a.clone(), vec!["Unit reader"]).await;
    let (a1_id, a1_secret, a1_user) = app_user("a1 writer", a1.clone(), vec!["Own accounts"]).await;
    let (b_id, b_secret, _) = app_user("b writer", b.clone(), vec!["Own accounts"]).await;
    let (s, _) = app
        .graph(
            Method::POST,
            &format!("/v1.0/environments/{env_id}/addAppUser"),
            Some(json!({"servicePrincipalAppId": worker_id})),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "one application user per app");
    let worker = token_for(worker_id.clone(), worker_secret).await;
    let a1w = token_for(a1_id, a1_secret).await;
    let bw = token_for(b_id, b_secret).await;

    let mine = api
        .create(&worker, "accounts", json!({"name": "in A"}))
        .await;
    let in_a1 = api.create(&a1w, "accounts", json!({"name": "in A1"})).await;
    api.create(&bw, "accounts", json!({"name": "in B"})).await;
    api.create(&admin, "accounts", json!({"name": "in root"}))
        .await;

    // User depth: own rows only. Business-unit depth: the unit's rows. Organization: all.
    assert_eq!(api.names(&a1w).await, vec!["in A1"]);
    assert_eq!(api.names(&worker).await, vec!["in A"]);
    assert_eq!(
        api.names(&admin).await,
        vec!["in A", "in A1", "in B", "in root"]
    );
    let (s, e, _) = api
        .call(&worker, Method::GET, &format!("accounts({in_a1})"), None)
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    missing(&e, "prvReadaccount");

    // Roles add up: Deep reader reaches A and A1, not B or root.
    let (s, _) = app
        .graph(
            Method::POST,
            &format!("/v1.0/environments/{env_id}/roles/{deep}/assign"),
            Some(json!({"applicationId": worker_id})),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(api.names(&worker).await, vec!["in A", "in A1"]);
    let (s, _, _) = api
        .call(&worker, Method::GET, &format!("accounts({in_a1})"), None)
        .await;
    assert_eq!(s, StatusCode::OK);

    // Write reaches own rows only; no Delete at all; no Read on roles.
    let (s, e, _) = api
        .call(
            &worker,
            Method::PATCH,
            &format!("accounts({in_a1})"),
            Some(json!({"name": "hijacked"})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    missing(&e, "prvWriteaccount");
    let (s, _, _) = api
        .call(
            &worker,
            Method::PATCH,
            &format!("accounts({mine})"),
            Some(json!({"name": "in A (renamed)"})),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, e, _) = api
        .call(&worker, Method::DELETE, &format!("accounts({mine})"), None)
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    missing(&e, "prvDeleteaccount");
    let (s, e, _) = api.call(&worker, Method::GET, "roles", None).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    missing(&e, "prvReadrole");
    let (s, e, _) = api
        .call(
            &worker,
            Method::POST,
            "contacts",
            Some(json!({"fullname": "x"})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    missing(&e, "prvCreatecontact");
    // Nothing the refusals touched changed.
    assert_eq!(
        api.names(&admin).await,
        vec!["in A (renamed)", "in A1", "in B", "in root"]
    );

    // Impersonation: only with prvActOnBehalfOfAnotherUser, and then with the intersection of rights.
    let as_a1 = |method: Method, path: String, body: Option<Value>| {
        let (http, api, worker, a1_user) = (
            api.http.clone(),
            api.api.clone(),
            worker.clone(),
            a1_user.clone(),
        );
        async move {
            let mut req = http
                .request(method, format!("{api}/{path}"))
                .bearer_auth(worker)
                .header("MSCRMCallerID", a1_user);
            if let Some(b) = body {
                req = req.json(&b);
            }
            let r = req.send().await.unwrap();
            let status = r.status();
            let loc = r
                .headers()
                .get("OData-EntityId")
                .map(|v| v.to_str().unwrap().to_string());
            (status, r.json::<Value>().await.unwrap_or(Value::Null), loc)
        }
    };
    let (s, e, _) = as_a1(Method::GET, "accounts".into(), None).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    missing(&e, "prvActOnBehalfOfAnotherUser");
    let (s, _) = app
        .graph(
            Method::POST,
            &format!(
                "/v1.0/environments/{env_id}/roles/{}/assign",
                delegate_role(&app, &env_id).await
            ),
            Some(json!({"applicationId": worker_id})),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, v, _) = as_a1(Method::GET, "accounts?$select=name".into(), None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let seen: Vec<&str> = v["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        seen,
        vec!["in A1"],
        "a1 writer's own rows only: the intersection, not the worker's Deep read"
    );
    let (s, e, loc) = as_a1(
        Method::POST,
        "accounts".into(),
        Some(json!({"name": "on behalf"})),
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{e}");
    let behalf = loc
        .unwrap()
        .rsplit('(')
        .next()
        .unwrap()
        .trim_end_matches(')')
        .to_string();
    let (_, row, _) = api
        .call(&admin, Method::GET, &format!("accounts({behalf})"), None)
        .await;
    assert_eq!(row["_createdby_value"], a1_user.as_str());
    assert_eq!(row["_ownerid_value"], a1_user.as_str());
    assert_eq!(row["_createdonbehalfby_value"], worker_user.as_str());

    // The audit trail shows the application user, not a person, made its changes.
    let (s, v, _) = api
        .call(
            &worker,
            Method::GET,
            "accounts?$select=name&$expand=createdby($select=fullname)",
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(
        v["value"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["createdby"].is_null()),
        "users it may not read expand to null: {v}"
    );
    let (_, v, _) = api
        .call(
            &admin,
            Method::GET,
            "accounts?$select=name&$expand=createdby($select=fullname)",
            None,
        )
        .await;
    assert!(
        v["value"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["createdby"]["fullname"].is_string()),
        "{v}"
    );
    let (s, e, _) = api
        .call(
            &worker,
            Method::POST,
            "EntityDefinitions",
            Some(json!({"SchemaName": "new_x", "Attributes": []})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    missing(&e, "prvCustomizeEntities");
    let (s, e, _) = api.call(&worker, Method::GET, "audits", None).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    missing(&e, "prvReadAuditSummary");
    let (s, audits, _) = api
        .call(
            &admin,
            Method::GET,
            &format!("audits?$filter=_objectid_value eq {mine}"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{audits}");
    let rows = audits["value"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().all(|r| r["_userid_value"] == worker_user.as_str() && r["objecttypecode"] == "account"));
    assert_eq!(
        (rows[0]["action"].as_i64(), rows[1]["action"].as_i64()),
        (Some(2), Some(1))
    );
    let history = format!(
        "RetrieveRecordChangeHistory(Target=@target)?@target={{'@odata.id':'accounts({mine})'}}"
    );
    let (s, h, _) = api.call(&admin, Method::GET, &history, None).await;
    assert_eq!(s, StatusCode::OK, "{h}");
    let details = h["AuditDetailCollection"]["AuditDetails"]
        .as_array()
        .unwrap();
    assert_eq!(details[0]["OldValue"]["name"], "in A");
    assert_eq!(details[0]["NewValue"]["name"], "in A (renamed)");
    let (s, e, _) = api.call(&worker, Method::GET, &history, None).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    missing(&e, "prvReadRecordAuditHistory");
    let (s, _, _) = api
        .call(&admin, Method::GET, "audits?$filter=action eq 1", None)
        .await;
    assert_eq!(
        s,
        StatusCode::BAD_REQUEST,
        "an audit filter not supported is a clear 400"
    );

    use keyway_store::{EnvironmentStore, RecordStore};
    let store = app.state_store();
    let e = store.environment_by_name("dev").await.unwrap().unwrap();
    let trail = store
        .audit_entries(&e, Some(mine.parse().unwrap()), 10, 0)
        .await
        .unwrap();
    assert_eq!(trail.len(), 2);
    assert!(
        trail
            .iter()
            .all(|t| t.entry.user_id.to_string() == worker_user),
        "{trail:?}"
    );
    app.stop().await;
}

async fn delegate_role(app: &TestApp, env_id: &str) -> String {
    let (_, roles) = app
        .graph(
            Method::GET,
            &format!("/v1.0/environments/{env_id}/roles"),
            None,
        )
        .await;
    roles["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "Delegate")
        .unwrap()["roleid"]
        .as_str()
        .unwrap()
        .to_string()
}

on_both_backends!(people_are_system_users_too);

async fn people_are_system_users_too(backend: Backend) {
    let app = spawn_app(backend).await;
    let (_, env) = app
        .graph(
            Method::POST,
            "/v1.0/environments",
            Some(json!({"name": "dev"})),
        )
        .await;
    let (env_id, url) = (
        env["id"].as_str().unwrap().to_string(),
        env["url"].as_str().unwrap().to_string(),
    );
    let (_, cli) = app
        .create_app("cli", json!({"isFallbackPublicClient": true}))
        .await;
    let (s, _) = app
        .graph(Method::POST, "/v1.0/users", Some(json!({"displayName": "Alice", "userPrincipalName": "alice@keyway.local", "passwordProfile": {"password": "correct horse battery"}})))
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let login = |scope: String| {
        let (app, cli) = (&app, cli.clone());
        async move {
            let (s, t) = app
                .token(&[
                    ("grant_type", "password"),
                    ("client_id", &cli),
                    ("username", "alice@keyway.local"),
                    ("password", "correct horse battery"),
                    ("scope", &scope),
                ])
                .await;
            assert_eq!(s, StatusCode::OK, "{t}");
            t["access_token"].as_str().unwrap().to_string()
        }
    };
    let token = login(format!("{url}/.default")).await;
    let api = WebApi {
        http: &app.http,
        api: format!("{url}/api/data/v9.2"),
    };
    let (s, e, _) = api.call(&token, Method::GET, "WhoAmI", None).await;
    assert_eq!(
        s,
        StatusCode::FORBIDDEN,
        "not yet a user of the environment: {e}"
    );
    let (s, u) = app
        .graph(
            Method::POST,
            &format!("/v1.0/environments/{env_id}/addUser"),
            Some(json!({"userPrincipalName": "alice@keyway.local", "roles": ["Basic User"]})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{u}");
    let (s, _) = app
        .graph(
            Method::POST,
            &format!("/v1.0/environments/{env_id}/addUser"),
            Some(json!({"userPrincipalName": "alice@keyway.local"})),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    let (s, who, _) = api.call(&token, Method::GET, "WhoAmI", None).await;
    assert_eq!(
        (s, who["UserId"].as_str()),
        (StatusCode::OK, u["systemuserid"].as_str())
    );
    let admin = app
        .secret_token(
            &app.profile.client_id.to_string(),
            &app.profile.client_secret,
            &format!("{url}/.default"),
        )
        .await
        .1["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    api.create(&admin, "accounts", json!({"name": "admin's"}))
        .await;
    let mine = api
        .create(&token, "accounts", json!({"name": "alice's"}))
        .await;
    assert_eq!(
        api.names(&token).await,
        vec!["alice's"],
        "Basic User reads its own rows"
    );
    let (_, row, _) = api
        .call(&admin, Method::GET, &format!("accounts({mine})"), None)
        .await;
    assert_eq!(row["_ownerid_value"], who["UserId"]);
    // A disabled person is refused.
    let (s, _, _) = api
        .call(
            &admin,
            Method::PATCH,
            &format!("systemusers({})", who["UserId"].as_str().unwrap()),
            Some(json!({"isdisabled": true})),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, e, _) = api.call(&token, Method::GET, "WhoAmI", None).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{e}");
    app.stop().await;
}
