//! Connection references and solutions over HTTPS (seed 002's ALM): references through the Web
//! API (`connectionreferences`, one per logical name), flows that name a reference instead of a
//! connection (saved off while it is unbound, turned on once it is), and the deployment settings
//! round trip DEV→TEST→PROD: a solution exported from DEV, imported into TEST without settings
//! (the flow stays off, its missing reference listed), then with TEST's connection in the
//! settings file (the flow turns on and runs with TEST's connection), and the same for PROD.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::flows::{Fx, WRITER, add_contact, dataverse_flow};
use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(references_bind_flows_to_connections);

pub const DV_ID: &str = "/providers/Microsoft.PowerApps/apis/shared_commondataserviceforapps";
pub const REF: &str = "pfx_sharedcommondataserviceforapps_abc";
const KEY: &str = "shared_commondataserviceforapps";

/// Seed 002's flow with its connection named `key` in the trigger and the action.
pub fn flow_naming(key: &str) -> Value {
    let mut def = dataverse_flow("account", 1, json!({}), add_contact(""));
    def["triggers"]["When_a_row_is_added"]["inputs"]["host"]["connectionName"] = json!(key);
    def["actions"]["Add_a_new_row"]["inputs"]["host"]["connectionName"] = json!(key);
    def
}

/// Power Automate's clientdata: the key stands for the connection reference `REF`.
pub fn references() -> Value {
    json!({KEY: {"runtimeSource": "embedded", "connection": {"connectionReferenceLogicalName": REF}, "api": {"name": KEY}}})
}

async fn references_bind_flows_to_connections(backend: Backend) {
    let fx = Fx::new(
        backend,
        &[("Flow contact writer", WRITER)],
        &["Flow contact writer"],
    )
    .await;
    let web = WebApi {
        http: &fx.app.http,
        api: fx.api.clone(),
    };
    let listed = web
        .ok(&fx.admin, Method::GET, "connectionreferences", None)
        .await;
    assert_eq!(listed["value"], json!([]), "{listed}");
    let reference = web
        .create(
            &fx.admin,
            "connectionreferences",
            json!({
                "connectionreferencelogicalname": REF,
                "connectionreferencedisplayname": "Dataverse (service principal)",
                "connectorid": DV_ID,
            }),
        )
        .await;
    // One reference per logical name in an environment.
    let (s, e, _) = web
        .call(
            &fx.admin,
            Method::POST,
            "connectionreferences",
            Some(json!({"connectionreferencelogicalname": REF, "connectorid": DV_ID})),
        )
        .await;
    assert_eq!(s, StatusCode::PRECONDITION_FAILED, "{e}");
    assert_eq!(e["error"]["code"], "0x80040237", "{e}");
    let listed = web
        .ok(
            &fx.admin,
            Method::GET,
            &format!("connectionreferences?$filter=connectionreferencelogicalname eq '{REF}'"),
            None,
        )
        .await;
    assert_eq!(listed["value"].as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed["value"][0]["connectorid"], DV_ID);
    assert!(listed["value"][0]["connectionid"].is_null(), "{listed}");

    // Unbound: the flow is refused on, and saved off.
    let body = |state: &str| json!({"name": "Account to contact", "definition": flow_naming(KEY), "connectionReferences": references(), "state": state});
    let (s, e) = fx
        .app
        .graph(Method::POST, &fx.flows(), Some(body("on")))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    assert_eq!(e["error"]["code"], "ConnectionReferenceNotBound", "{e}");
    assert_eq!(e["error"]["connectionReference"], REF, "{e}");
    assert!(e["error"]["message"].as_str().unwrap().contains(REF), "{e}");
    let (s, f) = fx
        .app
        .graph(Method::POST, &fx.flows(), Some(body("off")))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{f}");
    assert_eq!(f["state"], "off");
    assert_eq!(
        f["connectionReferences"][KEY]["connection"]["connectionReferenceLogicalName"],
        REF
    );
    assert_eq!(f["connectionReferences"][KEY]["runtimeSource"], "embedded");
    let flow = f["id"].as_str().unwrap().to_string();
    let turn_on = format!("{}/{flow}/turnOn", fx.flows());
    let (s, e) = fx.app.graph(Method::POST, &turn_on, None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    assert_eq!(e["error"]["code"], "ConnectionReferenceNotBound", "{e}");
    // A bad connectionReferences names its field.
    let (s, e) = fx
        .app
        .graph(
            Method::PUT,
            &format!("{}/{flow}", fx.flows()),
            Some(json!({"connectionReferences": {KEY: {"runtimeSource": "owner"}}})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("runtimeSource"),
        "{e}"
    );

    // Bound to the environment's connection: it turns on and runs with that connection.
    web.ok(
        &fx.admin,
        Method::PATCH,
        &format!("connectionreferences({reference})"),
        Some(json!({"connectionid": "sp-dataverse"})),
    )
    .await;
    let (s, f) = fx.app.graph(Method::POST, &turn_on, None).await;
    assert_eq!(s, StatusCode::OK, "{f}");
    assert_eq!(f["state"], "on");
    web.create(&fx.admin, "accounts", json!({"name": "Fabrikam"}))
        .await;
    let runs = fx.runs(&flow, 1).await;
    let run = fx.run(&flow, &runs[0]).await;
    assert_eq!(run["status"], "Succeeded", "{run}");
    assert_eq!(
        run["actions"][0]["connection"]["name"], "sp-dataverse",
        "{run}"
    );
    assert_eq!(
        run["actions"][0]["identity"]["systemUserId"],
        fx.sp_user.as_str()
    );

    // A connection name that is a reference's logical name goes through the reference.
    let (s, f) = fx
        .app
        .graph(
            Method::POST,
            &fx.flows(),
            Some(
                json!({"name": "By logical name", "definition": flow_naming(REF), "state": "off"}),
            ),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{f}");
    web.ok(
        &fx.admin,
        Method::PATCH,
        &format!("connectionreferences({reference})"),
        Some(json!({"connectionid": null})),
    )
    .await;
    let (s, e) = fx
        .app
        .graph(
            Method::POST,
            &format!("{}/{}/turnOn", fx.flows(), f["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    assert_eq!(e["error"]["code"], "ConnectionReferenceNotBound", "{e}");

    // Environment variables: one definition per schema name, its type one of Dataverse's.
    let var = json!({"schemaname": "pfx_Greeting", "displayname": "Greeting", "type": 100000000, "defaultvalue": "Hello"});
    web.create(&fx.admin, "environmentvariabledefinitions", var.clone())
        .await;
    let (s, e, _) = web
        .call(
            &fx.admin,
            Method::POST,
            "environmentvariabledefinitions",
            Some(var),
        )
        .await;
    assert_eq!(s, StatusCode::PRECONDITION_FAILED, "{e}");
    let (s, e, _) = web
        .call(
            &fx.admin,
            Method::POST,
            "environmentvariabledefinitions",
            Some(json!({"schemaname": "pfx_Other", "type": 7})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    fx.app.stop().await;
}
