//! Solutions refuse bad input with a 4xx and a stable code, and a refused import changes
//! nothing: not malformed bodies, odd archives (huge versions, duplicate components, odd
//! names), nor an archive whose flow the environment cannot take after its other components
//! would have been written.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::flows::{Fx, add_contact, dataverse_flow};
use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(
    a_refused_import_changes_nothing,
    malformed_solution_bodies_are_4xx,
    an_import_overwrites_only_its_own_flows,
    only_those_who_may_append_to_a_variable_set_its_value
);

fn archive(extra: Value) -> Value {
    let mut a = json!({
        "format": "keyway-solution/1",
        "solution": {"uniqueName": "Odd", "friendlyName": "Odd", "publisherPrefix": "pfx", "version": "1.0.0.0"},
    });
    for (k, v) in extra.as_object().unwrap() {
        a[k] = v.clone();
    }
    a
}

/// What an import could have written: variables, references, roles, flows and solutions.
async fn holdings(fx: &Fx) -> Value {
    let web = WebApi {
        http: &fx.app.http,
        api: fx.api.clone(),
    };
    let names = |v: Value, key: &str| -> Vec<Value> {
        v["value"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r[key].clone())
            .collect()
    };
    let variables = web
        .ok(
            &fx.admin,
            Method::GET,
            "environmentvariabledefinitions",
            None,
        )
        .await;
    let references = web
        .ok(&fx.admin, Method::GET, "connectionreferences", None)
        .await;
    let roles = web
        .ok(&fx.admin, Method::GET, "roles?$select=name", None)
        .await;
    let (s, flows) = fx.app.graph(Method::GET, &fx.flows(), None).await;
    assert_eq!(s, StatusCode::OK, "{flows}");
    let (s, solutions) = fx
        .app
        .graph(
            Method::GET,
            &format!("/v1.0/environments/{}/solutions", fx.env_id),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{solutions}");
    json!({
        "variables": names(variables, "schemaname"),
        "references": names(references, "connectionreferencelogicalname"),
        "roles": names(roles, "name"),
        "flows": names(flows, "name"),
        "solutions": names(solutions, "uniqueName"),
    })
}

async fn import(fx: &Fx, body: Value) -> (StatusCode, Value) {
    fx.app
        .graph(
            Method::POST,
            &format!("/v1.0/environments/{}/solutions/import", fx.env_id),
            Some(body),
        )
        .await
}

async fn a_refused_import_changes_nothing(backend: Backend) {
    let fx = Fx::new(backend, &[], &["Basic User"]).await;
    let before = holdings(&fx).await;
    let variable = json!({"schemaName": "pfx_Leak", "type": "String", "defaultValue": "x"});
    let reference = json!({"logicalName": "pfx_ref", "connectorId": "/providers/Microsoft.PowerApps/apis/shared_commondataserviceforapps"});
    let role = json!({"name": "Imported role", "privileges": [{"name": "prvReadaccount", "depth": "Global"}]});
    let good_flow = |name: &str| json!({"name": name, "state": "off", "definition": dataverse_flow("account", 1, json!({}), add_contact(""))});
    let cases = [
        // The flow's trigger table is not in the environment nor in the archive: the flow
        // cannot be saved, so neither the variable, the reference nor the role may be written.
        (
            archive(json!({
                "roles": [role],
                "environmentVariables": [variable],
                "connectionReferences": [reference],
                "flows": [{"name": "bad trigger", "state": "off", "definition": dataverse_flow("nosuchtable", 1, json!({}), add_contact(""))}],
            })),
            "InvalidSolutionFile",
        ),
        // The same flow twice.
        (
            archive(json!({"flows": [good_flow("twice"), good_flow("twice")]})),
            "InvalidSolutionFile",
        ),
        // The same variable twice, or a variable or role without a usable name.
        (
            archive(json!({"environmentVariables": [variable, variable]})),
            "InvalidSolutionFile",
        ),
        (
            archive(json!({"environmentVariables": [{"schemaName": " ", "type": "String"}]})),
            "InvalidSolutionFile",
        ),
        (
            archive(
                json!({"environmentVariables": [{"schemaName": "x".repeat(5000), "type": "String"}]}),
            ),
            "InvalidSolutionFile",
        ),
        (
            archive(json!({"roles": [role, role]})),
            "InvalidSolutionFile",
        ),
        (
            archive(json!({"roles": [{"name": "", "privileges": []}]})),
            "InvalidSolutionFile",
        ),
        // A built-in role would lose what it grants (the System Administrator's everything).
        (
            archive(json!({"roles": [{"name": "System Administrator", "privileges": []}]})),
            "InvalidSolutionFile",
        ),
        (
            archive(json!({"roles": [{"name": "basic user", "privileges": []}]})),
            "InvalidSolutionFile",
        ),
        (
            archive(
                json!({"flows": [{"name": "", "state": "off", "definition": dataverse_flow("account", 1, json!({}), add_contact(""))}]}),
            ),
            "InvalidSolutionFile",
        ),
    ];
    for (a, code) in cases {
        let (s, e) = import(&fx, json!({"solution": a})).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{a}: {e}");
        assert_eq!(holdings(&fx).await, before, "{a}: {e}");
        assert_eq!(e["error"]["code"], code, "{a}: {e}");
    }
    // A customizer's import of a flow using the administrator's connection (not shared with
    // them) is refused before its variable is written.
    let maker = fx.member("maker", &["System Customizer"]).await.token;
    let a = archive(json!({
        "environmentVariables": [variable],
        "flows": [good_flow("not mine")],
    }));
    let (s, e) = fx
        .app
        .call(
            &maker,
            Method::POST,
            &format!("/v1.0/environments/{}/solutions/import", fx.env_id),
            Some(json!({"solution": a})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    assert!(error_message(&e).contains("sp-dataverse"), "{e}");
    assert_eq!(holdings(&fx).await, before, "{e}");

    // An Environment Maker (their own rows only) importing over the administrator's reference
    // is refused before their variable is written.
    let web = WebApi {
        http: &fx.app.http,
        api: fx.api.clone(),
    };
    web.create(
        &fx.admin,
        "connectionreferences",
        json!({"connectionreferencelogicalname": "pfx_admins", "connectorid": "/providers/Microsoft.PowerApps/apis/shared_commondataserviceforapps"}),
    )
    .await;
    let before = holdings(&fx).await;
    let env_maker = fx.member("env maker", &["Environment Maker"]).await.token;
    let a = archive(json!({
        "environmentVariables": [variable],
        "connectionReferences": [{"logicalName": "pfx_admins", "connectorId": "/providers/Microsoft.PowerApps/apis/shared_commondataserviceforapps", "description": "mine now"}],
    }));
    let (s, e) = fx
        .app
        .call(
            &env_maker,
            Method::POST,
            &format!("/v1.0/environments/{}/solutions/import", fx.env_id),
            Some(json!({"solution": a})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{e}");
    assert!(error_message(&e).contains("pfx_admins"), "{e}");
    assert_eq!(holdings(&fx).await, before, "{e}");
}

async fn malformed_solution_bodies_are_4xx(backend: Backend) {
    let fx = Fx::new(backend, &[], &["Basic User"]).await;
    let base = format!("/v1.0/environments/{}/solutions", fx.env_id);
    let token = fx.app.admin_token().await;
    let raw = async |path: &str, body: &'static str| {
        let r = fx
            .app
            .http
            .post(format!("{}{path}", fx.app.base))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let s = r.status();
        (s, r.json::<Value>().await.unwrap_or(Value::Null))
    };
    for path in [base.clone(), format!("{base}/import")] {
        for body in ["{", "[1,", "\"\u{0}", "nul"] {
            let (s, e) = raw(&path, body).await;
            assert_eq!(s, StatusCode::BAD_REQUEST, "{path} {body:?}: {e}");
            assert!(e["error"]["code"].is_string(), "{e}");
        }
    }
    // A body over the server's limit: 413 with a code, as JSON.
    let r = fx
        .app
        .http
        .post(format!("{}{base}/import", fx.app.base))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(format!(
            "{{\"solution\": \"{}\"}}",
            "x".repeat(2 * 1024 * 1024)
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["code"], "RequestTooLarge", "{e}");
    let (s, e) = fx
        .app
        .graph(
            Method::POST,
            &base,
            Some(json!({"uniqueName": "Big", "publisherPrefix": "pfx", "version": "4294967296.0.0.0"})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    assert_eq!(e["error"]["code"], "InvalidSolution", "{e}");
    let (s, e) = fx
        .app
        .graph(
            Method::POST,
            &base,
            Some(json!({"uniqueName": "../../etc", "publisherPrefix": "pfx"})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    // The largest version still exports (its revision stays at the largest).
    let (s, e) = fx
        .app
        .graph(
            Method::POST,
            &base,
            Some(json!({"uniqueName": "Max", "publisherPrefix": "pfx", "version": "4294967295.4294967295.4294967295.4294967295"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{e}");
    let (s, e) = fx
        .app
        .graph(Method::POST, &format!("{base}/Max/export"), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{e}");
    for bad in [
        json!({"solution": archive(json!({})), "settings": "nope"}),
        json!({"solution": archive(json!({})), "settings": {"EnvironmentVariables": 5}}),
        json!({"solution": archive(json!({})), "settings": {"ConnectionReferences": [{"LogicalName": "nope", "ConnectionId": "x"}]}}),
        json!({"solution": "nope"}),
        json!({"solution": archive(json!({"solution": {"uniqueName": "Odd", "friendlyName": "Odd", "publisherPrefix": "pfx", "version": "4294967296.0.0.0"}}))}),
        json!({"solution": archive(json!({"flows": [{"name": "f", "state": "on", "definition": {"triggers": 5}}]}))}),
        json!([1, 2]),
    ] {
        let (s, e) = import(&fx, bad.clone()).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}: {e}");
        assert!(e["error"]["code"].is_string(), "{bad}: {e}");
    }
    for body in [
        json!({"type": "flow", "name": "../x"}),
        json!({"type": "nope", "name": "x"}),
        json!({"type": "table", "name": "account"}),
        json!({"type": 5}),
    ] {
        let (s, e) = fx
            .app
            .graph(
                Method::POST,
                &format!("{base}/Max/components"),
                Some(body.clone()),
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}: {e}");
        assert!(e["error"]["code"].is_string(), "{body}: {e}");
    }
}

/// A flow reads its environment variables' current values: a user who cannot see a variable
/// must not be able to give it one (a value row is appended to its definition), or they would
/// choose the parameters of everyone's flows that read it.
async fn only_those_who_may_append_to_a_variable_set_its_value(backend: Backend) {
    let fx = Fx::new(backend, &[], &["Basic User"]).await;
    let web = WebApi {
        http: &fx.app.http,
        api: fx.api.clone(),
    };
    let definition = web
        .create(
            &fx.admin,
            "environmentvariabledefinitions",
            json!({"schemaname": "pfx_Target", "type": 100000000, "defaultvalue": "https://contoso.example"}),
        )
        .await;
    let flow = fx
        .flow(
            "reads a variable",
            json!({
                "parameters": {"Target (pfx_Target)": {"type": "String", "metadata": {"schemaName": "pfx_Target"}}},
                "triggers": {"manual": {"type": "Request", "kind": "Button"}},
                "actions": {"Echo": {"type": "Compose", "inputs": "@parameters('Target (pfx_Target)')"}},
            }),
        )
        .await;
    let (basic, _) = fx.app_user("basic", &["Basic User"]).await;
    let (s, e, _) = web
        .call(
            &basic,
            Method::POST,
            "environmentvariablevalues",
            Some(json!({"value": "https://evil.example", "environmentvariabledefinitionid@odata.bind": format!("/environmentvariabledefinitions({definition})")})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{e}");
    assert_eq!(e["error"]["code"], "0x80040220", "{e}");
    assert!(error_message(&e).contains("pfx_Target"), "{e}");
    // Their own variable they give a value; re-pointing that value at another's is refused.
    let own = web
        .create(
            &basic,
            "environmentvariabledefinitions",
            json!({"schemaname": "pfx_Mine", "type": 100000000}),
        )
        .await;
    let value = web
        .create(
            &basic,
            "environmentvariablevalues",
            json!({"value": "mine", "environmentvariabledefinitionid@odata.bind": format!("/environmentvariabledefinitions({own})")}),
        )
        .await;
    let (s, e, _) = web
        .call(
            &basic,
            Method::PATCH,
            &format!("environmentvariablevalues({value})"),
            Some(json!({"environmentvariabledefinitionid@odata.bind": format!("/environmentvariabledefinitions({definition})")})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{e}");
    fx.start(&flow).await;
    let run = fx.last_run(&flow, 1).await;
    assert_eq!(run["status"], "Succeeded", "{run}");
    assert_eq!(
        run["actions"][0]["outputs"], "https://contoso.example",
        "{run}"
    );
}

/// Import finds flows by name: a flow of that name that is not the solution's is refused (409),
/// not overwritten; the solution's own flow is replaced on the next import.
async fn an_import_overwrites_only_its_own_flows(backend: Backend) {
    let fx = Fx::new(backend, &[], &["Basic User"]).await;
    let definition = |prefix: &str| dataverse_flow("account", 1, json!({}), add_contact(prefix));
    let someones = fx.flow("Sync", definition("")).await;
    let (s, e) = import(
        &fx,
        json!({"solution": archive(json!({"flows": [{"name": "Sync", "state": "on", "definition": definition("imported ")}]}))}),
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT, "{e}");
    assert_eq!(e["error"]["code"], "SolutionConflict", "{e}");
    assert!(error_message(&e).contains("'Sync'"), "{e}");
    let (s, f) = fx
        .app
        .graph(Method::GET, &format!("{}/{someones}", fx.flows()), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{f}");
    assert_eq!(f["definition"], definition(""), "{f}");
    assert_eq!(f["version"], 1, "{f}");
    // The solution's own flow: made by the first import, replaced by the next.
    for (version, prefix) in [("1.0.0.0", "one "), ("1.0.0.1", "two ")] {
        let mut a = archive(
            json!({"flows": [{"name": "Solution sync", "state": "off", "definition": definition(prefix)}]}),
        );
        a["solution"]["version"] = json!(version);
        let (s, r) = import(&fx, json!({"solution": a})).await;
        assert_eq!(s, StatusCode::OK, "{r}");
    }
    let (_, flows) = fx.app.graph(Method::GET, &fx.flows(), None).await;
    let ours: Vec<&Value> = flows["value"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["name"] == "Solution sync")
        .collect();
    assert_eq!(ours.len(), 1, "{flows}");
    assert_eq!(ours[0]["definition"], definition("two "), "{flows}");
}
