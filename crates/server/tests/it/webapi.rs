//! The Dataverse Web API: who is calling, WhoAmI, the service document, retrieving a row.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(web_api_callers_who_am_i_and_retrieve);

async fn web_api_callers_who_am_i_and_retrieve(backend: Backend) {
    let app = spawn_app(backend).await;
    let (_, dev) = app
        .graph(
            Method::POST,
            "/v1.0/environments",
            Some(json!({"name": "dev"})),
        )
        .await;
    let (_, other) = app
        .graph(
            Method::POST,
            "/v1.0/environments",
            Some(json!({"name": "test"})),
        )
        .await;
    let url = dev["url"].as_str().unwrap().to_string();
    let api = format!("{url}/api/data/v9.2");
    let (cid, secret) = (
        app.profile.client_id.to_string(),
        app.profile.client_secret.clone(),
    );
    let (s, t) = app
        .secret_token(&cid, &secret, &format!("{url}/.default"))
        .await;
    assert_eq!(s, StatusCode::OK, "{t}");
    let token = t["access_token"].as_str().unwrap().to_string();
    let get = |path: String, token: String| {
        let http = app.http.clone();
        async move {
            let r = http
                .get(path)
                .bearer_auth(token)
                .header("OData-MaxVersion", "4.0")
                .send()
                .await
                .unwrap();
            let status = r.status();
            let odata_version = r
                .headers()
                .get("OData-Version")
                .map(|v| v.to_str().unwrap().to_string());
            (
                status,
                odata_version,
                r.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };

    // The creator of the environment is its first System Administrator.
    let (s, v, who) = get(format!("{api}/WhoAmI"), token.clone()).await;
    assert_eq!((s, v.as_deref()), (StatusCode::OK, Some("4.0")), "{who}");
    assert_eq!(who["OrganizationId"], dev["id"]);
    let bu = who["BusinessUnitId"].as_str().unwrap().to_string();
    let (s, _, again) = get(format!("{api}/WhoAmI()"), token.clone()).await;
    assert_eq!((s, &again["UserId"]), (StatusCode::OK, &who["UserId"]));

    let (s, _, doc) = get(format!("{api}/"), token.clone()).await;
    assert_eq!(s, StatusCode::OK);
    let sets: Vec<&str> = doc["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["name"].as_str().unwrap())
        .collect();
    for set in [
        "accounts",
        "contacts",
        "systemusers",
        "businessunits",
        "roles",
        "teams",
    ] {
        assert!(sets.contains(&set), "{set} in {sets:?}");
    }

    // Retrieve the root business unit, with and without $select.
    let (s, _, root) = get(format!("{api}/businessunits({bu})"), token.clone()).await;
    assert_eq!(s, StatusCode::OK, "{root}");
    assert_eq!(root["name"], "dev");
    assert_eq!(root["businessunitid"], bu);
    assert_eq!(root["@odata.etag"], "W/\"1\"");
    assert!(
        root["@odata.context"]
            .as_str()
            .unwrap()
            .ends_with("$metadata#businessunits/$entity")
    );
    assert!(root.get("_parentbusinessunitid_value").is_some());
    let (_, _, me) = get(
        format!(
            "{api}/systemusers({})?$select=fullname,_businessunitid_value",
            who["UserId"].as_str().unwrap()
        ),
        token.clone(),
    )
    .await;
    assert_eq!(me["_businessunitid_value"], bu.as_str());
    assert!(
        me["fullname"]
            .as_str()
            .unwrap()
            .contains("Keyway administrator")
    );
    assert!(me.get("applicationid").is_none(), "$select trims: {me}");

    // Errors with Dataverse codes.
    let code = |v: &Value| v["error"]["code"].as_str().unwrap_or_default().to_string();
    let (s, _, e) = get(
        format!("{api}/businessunits({bu})?$select=nope"),
        token.clone(),
    )
    .await;
    assert_eq!(
        (s, code(&e)),
        (StatusCode::BAD_REQUEST, "0x80060888".into())
    );
    let (s, _, e) = get(format!("{api}/widgets"), token.clone()).await;
    assert_eq!((s, code(&e)), (StatusCode::NOT_FOUND, "0x8006088a".into()));
    let (s, _, e) = get(
        format!("{api}/accounts(00000000-0000-0000-0000-000000000001)"),
        token.clone(),
    )
    .await;
    assert_eq!((s, code(&e)), (StatusCode::NOT_FOUND, "0x80040217".into()));
    let (s, _, e) = get(format!("{api}/accounts(not-a-guid)"), token.clone()).await;
    assert_eq!(
        (s, code(&e)),
        (StatusCode::BAD_REQUEST, "0x80060888".into())
    );
    let (s, _, e) = get(format!("{api}/accounts?$filter=name eq 'x'"), token.clone()).await;
    assert_eq!(
        s,
        StatusCode::BAD_REQUEST,
        "a feature not built yet is a clear 400: {e}"
    );
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not supported")
    );

    // Who may not call: no token, a token for another environment, an app with no application user.
    let r = app.http.get(format!("{api}/WhoAmI")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let (_, t2) = app
        .secret_token(
            &cid,
            &secret,
            &format!("{}/.default", other["url"].as_str().unwrap()),
        )
        .await;
    let (s, _, e) = get(
        format!("{api}/WhoAmI"),
        t2["access_token"].as_str().unwrap().to_string(),
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{e}");
    let (_, graph) = app
        .secret_token(&cid, &secret, "https://graph.microsoft.com/.default")
        .await;
    let (s, _, _) = get(
        format!("{api}/WhoAmI"),
        graph["access_token"].as_str().unwrap().to_string(),
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (oid, worker) = app.create_app("worker", json!({})).await;
    let ws = app.add_secret(&oid, json!({})).await["secretText"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, wt) = app
        .secret_token(&worker, &ws, &format!("{url}/.default"))
        .await;
    let (s, _, e) = get(
        format!("{api}/WhoAmI"),
        wt["access_token"].as_str().unwrap().to_string(),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{e}");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no application user")
    );
    let (s, _, _) = get(
        format!("{}/env/nowhere/api/data/v9.2/WhoAmI", app.base),
        token.clone(),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    app.stop().await;
}
