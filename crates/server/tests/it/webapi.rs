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
    let (s, _, e) = get(
        format!("{api}/accounts?$expand=primarycontactid($top=1)"),
        token.clone(),
    )
    .await;
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

    // Collections: filter, select, order, top, count and paging, all in the database.
    let (s, _, roles) = get(
        format!("{api}/roles?$select=name&$orderby=name desc&$count=true"),
        token.clone(),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{roles}");
    let names: Vec<&str> = roles["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        vec![
            "System Customizer",
            "System Administrator",
            "Environment Maker",
            "Delegate",
            "Basic User"
        ]
    );
    assert_eq!(roles["@odata.count"], 5);
    let (s, _, one) = get(format!("{api}/roles?$filter=startswith(name,'system') and name ne 'System Customizer'&$select=name"), token.clone()).await;
    assert_eq!(s, StatusCode::OK, "{one}");
    assert_eq!(one["value"].as_array().unwrap().len(), 1);
    assert_eq!(one["value"][0]["name"], "System Administrator");
    let (_, _, top) = get(format!("{api}/roles?$top=2&$orderby=name"), token.clone()).await;
    assert_eq!(top["value"].as_array().unwrap().len(), 2);
    assert!(
        top.get("@odata.nextLink").is_none(),
        "$top ends the collection"
    );
    // Paging with Prefer: odata.maxpagesize, following @odata.nextLink to the end.
    let mut next = Some(format!("{api}/roles?$orderby=name&$select=name"));
    let mut seen = Vec::new();
    while let Some(link) = next {
        let r = app
            .http
            .get(&link)
            .bearer_auth(&token)
            .header("Prefer", "odata.maxpagesize=2")
            .send()
            .await
            .unwrap();
        assert_eq!(r.headers()["Preference-Applied"], "odata.maxpagesize=2");
        let page: Value = r.json().await.unwrap();
        assert!(page["value"].as_array().unwrap().len() <= 2);
        seen.extend(
            page["value"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x["name"].as_str().unwrap().to_string()),
        );
        next = page["@odata.nextLink"].as_str().map(str::to_string);
    }
    assert_eq!(
        seen,
        vec![
            "Basic User",
            "Delegate",
            "Environment Maker",
            "System Administrator",
            "System Customizer"
        ]
    );
    let (_, _, me_by_filter) = get(
        format!(
            "{api}/systemusers?$filter=systemuserid eq {}",
            who["UserId"].as_str().unwrap()
        ),
        token.clone(),
    )
    .await;
    assert_eq!(me_by_filter["value"].as_array().unwrap().len(), 1);
    for bad in [
        "$filter=name eq",
        "$filter=nope eq 1",
        "$filter=name eq 1",
        "$orderby=nope",
        "$select=nope",
        "$skip=1",
        "$top=0",
        "$skiptoken=garbage",
    ] {
        let (s, _, e) = get(format!("{api}/roles?{bad}"), token.clone()).await;
        assert_eq!(
            (s, code(&e)),
            (StatusCode::BAD_REQUEST, "0x80060888".into()),
            "{bad}: {e}"
        );
    }

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
