//! Connection references and solutions over HTTPS (seed 002's ALM): references through the Web
//! API (`connectionreferences`, one per logical name), flows that name a reference instead of a
//! connection (saved off while it is unbound, turned on once it is), and the deployment settings
//! round trip DEV→TEST→PROD: a solution exported from DEV, imported into TEST without settings
//! (the flow stays off, its missing reference listed), then with TEST's connection in the
//! settings file (the flow turns on and runs with TEST's connection), and the same for PROD.
//! Flows read environment variables: each environment's own value, else the default.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::flows::{
    Fx, WRITER, add_app_user, add_contact, assert_ran_with, dataverse_flow, ended_runs,
    put_connection, run_detail, sp_parameters,
};
use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(
    references_bind_flows_to_connections,
    settings_file_round_trip_dev_test_prod,
    environments_made_before_get_the_new_tables,
    flows_read_variables_as_their_parameter_types
);

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

/// The flow's parameter for the environment variable `pfx_Greeting`, named as Power Automate
/// names it.
const GREETING: &str = "Greeting (pfx_Greeting)";

/// Seed 002's flow through the reference, each contact's last name prefixed with the
/// environment's `pfx_Greeting`.
fn greeting_flow() -> Value {
    let mut def = flow_naming(KEY);
    def["parameters"] = json!({GREETING: {"type": "String", "defaultValue": "", "metadata": {"schemaName": "pfx_Greeting", "description": "Prefix of the contacts' last names"}}});
    def["actions"]["Add_a_new_row"]["inputs"]["parameters"]["item/lastname"] = json!(format!(
        "@{{parameters('{GREETING}')}}@{{triggerOutputs()?['body/name']}}"
    ));
    def
}

/// The last names of the environment's contacts, sorted.
async fn last_names(web: &WebApi<'_>, token: &str) -> Vec<String> {
    let contacts = web
        .ok(token, Method::GET, "contacts?$select=lastname", None)
        .await;
    let mut names: Vec<String> = contacts["value"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["lastname"].as_str().map(str::to_string))
        .collect();
    names.sort();
    names
}

/// Power Automate's clientdata: the key stands for the connection reference `REF`.
pub fn references() -> Value {
    json!({KEY: {"runtimeSource": "embedded", "connection": {"connectionReferenceLogicalName": REF}, "api": {"name": KEY}}})
}

async fn references_bind_flows_to_connections(backend: Backend) {
    let fx = Fx::writer(backend).await;
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

    // Binding picks the connection flows run with: only to a connection of the environment, of
    // the reference's connector, that the one binding it owns or may use.
    let (maker, _) = fx.app_user("maker", &["System Customizer"]).await;
    for (conn, status, code) in [
        ("sp-dataverse", StatusCode::FORBIDDEN, "0x80040220"),
        ("nope", StatusCode::BAD_REQUEST, "0x80060888"),
    ] {
        let (s, e, _) = web
            .call(
                &maker,
                Method::POST,
                "connectionreferences",
                Some(json!({"connectionreferencelogicalname": "pfx_mine", "connectorid": DV_ID, "connectionid": conn})),
            )
            .await;
        assert_eq!(s, status, "{e}");
        assert_eq!(e["error"]["code"], code, "{e}");
        assert!(error_message(&e).contains(conn), "{e}");
        let (s, e, _) = web
            .call(
                &maker,
                Method::PATCH,
                &format!("connectionreferences({reference})"),
                Some(json!({"connectionid": conn})),
            )
            .await;
        assert_eq!(s, status, "{e}");
    }
    let (s, e, _) = web
        .call(
            &fx.admin,
            Method::POST,
            "connectionreferences",
            Some(json!({"connectionreferencelogicalname": "pfx_office", "connectorid": "/providers/Microsoft.PowerApps/apis/shared_office365", "connectionid": "sp-dataverse"})),
        )
        .await;
    assert_eq!(
        s,
        StatusCode::BAD_REQUEST,
        "another connector's connection: {e}"
    );

    // Unbound: the flow is refused on, and saved off.
    let body = |state: &str| json!({"name": "Account to contact", "definition": flow_naming(KEY), "connectionReferences": references(), "state": state});
    let (s, e) = fx
        .app
        .graph(Method::POST, &fx.flows(), Some(body("on")))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    assert_eq!(e["error"]["code"], "ConnectionReferenceNotBound", "{e}");
    assert_eq!(e["error"]["connectionReference"], REF, "{e}");
    assert!(error_message(&e).contains(REF), "{e}");
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
    assert!(error_message(&e).contains("runtimeSource"), "{e}");

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
    let run = fx.last_run(&flow, 1).await;
    assert_ran_with(&run, "sp-dataverse", &fx.sp_user);

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

/// Number, Boolean and JSON variables reach a flow as Int, Bool and Object parameters; a value
/// that does not convert fails the run, saying which variable and why.
async fn flows_read_variables_as_their_parameter_types(backend: Backend) {
    let fx = Fx::new(backend, &[], &["Basic User"]).await;
    let web = WebApi {
        http: &fx.app.http,
        api: fx.api.clone(),
    };
    let mut ids = Vec::new();
    for (schema, kind, default) in [
        ("pfx_Limit", 100000001, "3"),
        ("pfx_Enabled", 100000002, "no"),
        ("pfx_Config", 100000003, r#"{"a": 1}"#),
    ] {
        ids.push(
            web.create(
                &fx.admin,
                "environmentvariabledefinitions",
                json!({"schemaname": schema, "type": kind, "defaultvalue": default}),
            )
            .await,
        );
    }
    let set = async |i: usize, value: &str| {
        web.create(
            &fx.admin,
            "environmentvariablevalues",
            json!({"value": value, "environmentvariabledefinitionid@odata.bind": format!("/environmentvariabledefinitions({})", ids[i])}),
        )
        .await
    };
    set(1, "yes").await;
    set(2, r#"{"a": 2}"#).await;
    let flow = fx
        .flow(
            "variables",
            json!({
                "parameters": {
                    "Limit (pfx_Limit)": {"type": "Int", "defaultValue": 0, "metadata": {"schemaName": "pfx_Limit"}},
                    "Enabled (pfx_Enabled)": {"type": "Bool", "metadata": {"schemaName": "pfx_Enabled"}},
                    "Config (pfx_Config)": {"type": "Object", "metadata": {"schemaName": "pfx_Config"}},
                },
                "triggers": {"manual": {"type": "Request", "kind": "Button"}},
                "actions": {"Echo": {"type": "Compose", "inputs": {
                    "limit": "@add(parameters('Limit (pfx_Limit)'), 1)",
                    "enabled": "@parameters('Enabled (pfx_Enabled)')",
                    "config": "@parameters('Config (pfx_Config)')",
                }}},
            }),
        )
        .await;
    let start = || fx.start(&flow);
    start().await;
    let run = fx.last_run(&flow, 1).await;
    assert_eq!(run["status"], "Succeeded", "{run}");
    assert_eq!(
        run["actions"][0]["outputs"],
        json!({"limit": 4, "enabled": true, "config": {"a": 2}}),
        "the default 3, the values yes and {{a: 2}}: {run}"
    );
    set(0, "many").await;
    start().await;
    let run = fx.last_run(&flow, 2).await;
    assert_eq!(run["status"], "Failed", "{run}");
    assert_eq!(
        run["error"]["code"], "InvalidEnvironmentVariableValue",
        "{run}"
    );
    let message = run["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("pfx_Limit") && message.contains("'many' is not a whole number"),
        "{run}"
    );
    fx.app.stop().await;
}

/// One environment of the pipeline: its id, Web API, administrator token.
struct Stage {
    name: &'static str,
    id: String,
    web: String,
    admin: String,
}

impl Stage {
    async fn new(app: &TestApp, name: &'static str) -> Stage {
        let (env, api, admin) = app.environment(name).await;
        Stage {
            name,
            id: env["id"].as_str().unwrap().to_string(),
            web: api,
            admin,
        }
    }

    fn api<'a>(&self, app: &'a TestApp) -> WebApi<'a> {
        WebApi {
            http: &app.http,
            api: self.web.clone(),
        }
    }

    fn path(&self, rest: &str) -> String {
        format!("/v1.0/environments/{}/{rest}", self.id)
    }

    /// The service principal as an application user holding `role`; its system user id.
    async fn app_user(&self, app: &TestApp, app_id: &str, role: &str) -> String {
        add_app_user(app, &self.id, app_id, &[role]).await
    }

    /// The environment's own Dataverse connection `sp-<stage>`, made with the service
    /// principal's secret (seed 002 step 5).
    async fn connection(&self, app: &TestApp, app_id: &str, secret: &str) -> String {
        let name = format!("sp-{}", self.name);
        let mut parameters = sp_parameters(app, app_id, secret, None);
        parameters["values"]["token:grantType"] = json!({"value": "client_credentials"});
        let (s, c) = put_connection(
            app,
            &app.platform_token().await,
            &self.id,
            &name,
            Some(&format!("Dataverse in {}", self.name)),
            parameters,
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{c}");
        assert_eq!(c["properties"]["statuses"][0]["status"], "Connected", "{c}");
        name
    }

    async fn import(
        &self,
        app: &TestApp,
        archive: &Value,
        settings: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut body = json!({"solution": archive});
        if let Some(s) = settings {
            body["settings"] = s;
        }
        app.graph(Method::POST, &self.path("solutions/import"), Some(body))
            .await
    }

    async fn flows(&self, app: &TestApp) -> Vec<Value> {
        let (s, f) = app.graph(Method::GET, &self.path("flows"), None).await;
        assert_eq!(s, StatusCode::OK, "{f}");
        f["value"].as_array().unwrap().clone()
    }

    /// Wait for the flow's one run to end; it with its actions.
    async fn one_run(&self, app: &TestApp, flow: &str) -> Value {
        let flows = self.path("flows");
        let runs = ended_runs(app, &flows, flow, 1, Duration::from_secs(20)).await;
        run_detail(app, &flows, flow, &runs[0]).await
    }
}

/// What the environment holds of the solution's kinds, to show an import changed nothing.
async fn holdings(app: &TestApp, st: &Stage) -> Value {
    let web = st.api(app);
    let mut out = json!({});
    for set in [
        "connectionreferences",
        "environmentvariabledefinitions",
        "environmentvariablevalues",
        "EntityDefinitions?$select=LogicalName",
    ] {
        out[set] = web.ok(&st.admin, Method::GET, set, None).await["value"].clone();
    }
    out["flows"] = json!(st.flows(app).await);
    let (s, l) = app.graph(Method::GET, &st.path("solutions"), None).await;
    assert_eq!(s, StatusCode::OK, "{l}");
    out["solutions"] = l["value"].clone();
    let (s, r) = app.graph(Method::GET, &st.path("roles"), None).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    out["roles"] = r;
    out
}

async fn settings_file_round_trip_dev_test_prod(backend: Backend) {
    let app = spawn_app(backend).await;
    // Seed 002 steps 1–2: one app registration and secret, the service identity everywhere.
    let (app_id, secret) = app
        .app_with_secret(
            "D365-App-Registration",
            json!({"passwordCredential": {"displayName": "D365AppSecret"}}),
        )
        .await;

    // DEV: a least-privilege role, the application user, its connection, a reference bound to
    // it, a variable, and seed 002's flow naming the reference.
    let dev = Stage::new(&app, "dev").await;
    let (s, r) = app
        .graph(
            Method::POST,
            &dev.path("roles"),
            Some(json!({"name": "Flow contact writer", "privileges": WRITER})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    dev.app_user(&app, &app_id, "Flow contact writer").await;
    let dev_conn = dev.connection(&app, &app_id, &secret).await;
    let web = dev.api(&app);
    web.create(
        &dev.admin,
        "connectionreferences",
        json!({"connectionreferencelogicalname": REF, "connectionreferencedisplayname": "Dataverse", "connectorid": DV_ID, "connectionid": dev_conn}),
    )
    .await;
    let var = web
        .create(
            &dev.admin,
            "environmentvariabledefinitions",
            json!({"schemaname": "pfx_Greeting", "displayname": "Greeting", "type": 100000000, "defaultvalue": "default-"}),
        )
        .await;
    let bind = format!("/environmentvariabledefinitions({var})");
    let value = web
        .create(
            &dev.admin,
            "environmentvariablevalues",
            json!({"schemaname": "pfx_Greeting", "value": "dev-", "environmentvariabledefinitionid@odata.bind": bind}),
        )
        .await;
    // The flow reads the variable as a parameter naming its schema name: a variable the
    // environment lacks, or one of another type, is refused at save.
    for (schema, kind, code) in [
        ("pfx_Missing", "String", "EnvironmentVariableNotFound"),
        ("pfx_Greeting", "Int", "EnvironmentVariableTypeMismatch"),
    ] {
        let mut def = greeting_flow();
        def["parameters"][GREETING] = json!({"type": kind, "metadata": {"schemaName": schema}});
        let (s, e) = app
            .graph(
                Method::POST,
                &dev.path("flows"),
                Some(json!({"name": "Refused", "definition": def, "connectionReferences": references()})),
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
        assert_eq!(e["error"]["code"], code, "{e}");
        assert!(error_message(&e).contains(schema), "{e}");
    }
    assert!(dev.flows(&app).await.is_empty(), "nothing saved");
    let (s, f) = app
        .graph(
            Method::POST,
            &dev.path("flows"),
            Some(json!({"name": "Account to contact", "definition": greeting_flow(), "connectionReferences": references()})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{f}");
    assert_eq!(f["state"], "on");
    assert_eq!(
        f["environmentVariables"],
        json!([{"parameter": GREETING, "schemaName": "pfx_Greeting"}]),
        "{f}"
    );
    let dev_flow = f["id"].as_str().unwrap().to_string();

    // Each run reads the variable as it starts: DEV's value, a new value from the next run on,
    // and the default value once the variable has none. The run history shows the value each
    // run used in its action's inputs.
    let dev_runs = async |n: usize, account: &str| {
        web.create(&dev.admin, "accounts", json!({"name": account}))
            .await;
        let flows = dev.path("flows");
        let runs = ended_runs(&app, &flows, &dev_flow, n, Duration::from_secs(20)).await;
        let run = run_detail(&app, &flows, &dev_flow, &runs[0]).await;
        assert_eq!(run["status"], "Succeeded", "{run}");
        let used = run["actions"][0]["inputs"]["parameters"]["item"]["lastname"].clone();
        (last_names(&web, &dev.admin).await, used)
    };
    let (_, used) = dev_runs(1, "Fabrikam").await;
    assert_eq!(used, "dev-Fabrikam");
    web.ok(
        &dev.admin,
        Method::PATCH,
        &format!("environmentvariablevalues({value})"),
        Some(json!({"value": "dev2-"})),
    )
    .await;
    let (_, used) = dev_runs(2, "Contoso").await;
    assert_eq!(used, "dev2-Contoso");
    web.ok(
        &dev.admin,
        Method::DELETE,
        &format!("environmentvariablevalues({value})"),
        None,
    )
    .await;
    let (names, used) = dev_runs(3, "Litware").await;
    assert_eq!(used, "default-Litware");
    assert_eq!(
        names,
        ["default-Litware", "dev-Fabrikam", "dev2-Contoso"],
        "{names:?}"
    );
    web.create(
        &dev.admin,
        "environmentvariablevalues",
        json!({"value": "dev-only value", "environmentvariabledefinitionid@odata.bind": bind}),
    )
    .await;

    // A custom table with a choice column.
    let (st, e, _) = web
        .call(
            &dev.admin,
            Method::POST,
            "EntityDefinitions",
            Some(json!({
                "@odata.type": "Microsoft.Dynamics.CRM.EntityMetadata",
                "SchemaName": "pfx_Project",
                "Attributes": [
                    {"@odata.type": "Microsoft.Dynamics.CRM.StringAttributeMetadata", "SchemaName": "pfx_Name", "IsPrimaryName": true, "MaxLength": 100},
                    {"@odata.type": "Microsoft.Dynamics.CRM.IntegerAttributeMetadata", "SchemaName": "pfx_Budget"},
                    {"@odata.type": "Microsoft.Dynamics.CRM.PicklistAttributeMetadata", "SchemaName": "pfx_Stage", "OptionSet": {"Options": [
                        {"Value": 1, "Label": {"LocalizedLabels": [{"Label": "New", "LanguageCode": 1033}]}},
                        {"Value": 2, "Label": {"LocalizedLabels": [{"Label": "Done", "LanguageCode": 1033}]}},
                    ]}},
                ],
            })),
        )
        .await;
    assert!(st.is_success(), "{e}");

    // The solution: the flow (its reference and variable come along), the role, the table.
    let (s, sol) = app
        .graph(
            Method::POST,
            &dev.path("solutions"),
            Some(json!({"uniqueName": "ContosoFlows", "friendlyName": "Contoso flows", "publisherPrefix": "pfx"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{sol}");
    assert_eq!(sol["version"], "1.0.0.0");
    for (kind, name) in [
        ("flow", "Account to contact"),
        ("role", "Flow contact writer"),
        ("table", "pfx_project"),
    ] {
        let (s, r) = app
            .graph(
                Method::POST,
                &dev.path("solutions/ContosoFlows/components"),
                Some(json!({"type": kind, "name": name})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{r}");
    }
    let (s, e) = app
        .graph(
            Method::POST,
            &dev.path("solutions/ContosoFlows/components"),
            Some(json!({"type": "table", "name": "account"})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    assert_eq!(e["error"]["code"], "InvalidComponent");
    let (s, archive) = app
        .graph(
            Method::POST,
            &dev.path("solutions/ContosoFlows/export"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{archive}");
    assert_eq!(archive["format"], "keyway-solution/1");
    assert_eq!(
        archive["solution"]["version"], "1.0.0.1",
        "bumped on export"
    );
    assert_eq!(archive["connectionReferences"][0]["logicalName"], REF);
    assert_eq!(archive["connectionReferences"][0]["connectorId"], DV_ID);
    assert_eq!(archive["flows"][0]["state"], "on");
    assert_eq!(archive["roles"][0]["name"], "Flow contact writer");
    assert_eq!(
        archive["environmentVariables"][0]["schemaName"],
        "pfx_Greeting"
    );
    assert_eq!(
        archive["environmentVariables"][0]["defaultValue"],
        "default-"
    );
    let text = archive.to_string();
    assert!(
        !text.contains("dev-only value") && !text.contains(&dev_conn) && !text.contains(&secret),
        "no current value, DEV connection or secret in the archive: {archive}"
    );
    let (s, shown) = app
        .graph(Method::GET, &dev.path("solutions/ContosoFlows"), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{shown}");
    assert_eq!(shown["version"], "1.0.0.1");

    // create-settings: pac's shape exactly, connections and values empty.
    let parsed = keyway_core::solutions::Archive::parse(&archive).unwrap();
    let template = keyway_core::solutions::settings_template(&parsed);
    assert_eq!(
        serde_json::to_string(&template).unwrap(),
        format!(
            r#"{{"EnvironmentVariables":[{{"SchemaName":"pfx_Greeting","Value":""}}],"ConnectionReferences":[{{"LogicalName":"{REF}","ConnectionId":"","ConnectorId":"{DV_ID}"}}]}}"#
        )
    );

    let mut connection_ids = Vec::new();
    for name in ["test", "prod"] {
        let st = Stage::new(&app, name).await;
        let filled = |conn: &str| {
            let mut s = serde_json::to_value(&template).unwrap();
            s["ConnectionReferences"][0]["ConnectionId"] = json!(conn);
            s["EnvironmentVariables"][0]["Value"] = json!(format!("{name}-"));
            s
        };
        // A bad settings file changes nothing: a connection this environment lacks (DEV's, or
        // its own before it exists), a reference the solution does not hold.
        let before = holdings(&app, &st).await;
        for bad in [
            filled(&dev_conn),
            filled(&format!("sp-{name}")),
            json!({"ConnectionReferences": [{"LogicalName": "pfx_other", "ConnectionId": "x", "ConnectorId": DV_ID}]}),
            json!({"EnvironmentVariables": "none"}),
        ] {
            let (s, e) = st.import(&app, &archive, Some(bad.clone())).await;
            assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}: {e}");
            assert_eq!(e["error"]["code"], "InvalidSettingsFile", "{e}");
        }
        // A flow naming DEV's connection directly, not through a reference, is refused too.
        let mut direct = archive.clone();
        direct["flows"][0]["definition"] = flow_naming(&dev_conn);
        direct["flows"][0]["connectionReferences"] = json!({});
        let (s, e) = st.import(&app, &direct, None).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
        assert_eq!(e["error"]["code"], "InvalidSolutionFile", "{e}");
        assert!(error_message(&e).contains(&dev_conn), "{e}");
        // So is a flow reading a variable neither the solution nor the environment has.
        let mut no_variable = archive.clone();
        no_variable["environmentVariables"] = json!([]);
        let (s, e) = st.import(&app, &no_variable, None).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
        assert_eq!(e["error"]["code"], "InvalidSolutionFile", "{e}");
        assert!(error_message(&e).contains("pfx_Greeting"), "{e}");
        assert_eq!(holdings(&app, &st).await, before, "nothing changed");

        // Without settings: imported, the flow off and its unbound reference listed.
        let (s, report) = st.import(&app, &archive, None).await;
        assert_eq!(s, StatusCode::OK, "{report}");
        let flow = &report["flows"][0];
        assert_eq!(flow["state"], "off", "{report}");
        assert_eq!(flow["sourceState"], "on");
        assert_eq!(
            flow["missingConnectionReferences"][0]["logicalName"], REF,
            "{report}"
        );
        assert_eq!(
            flow["missingConnectionReferences"][0]["code"],
            "ConnectionReferenceNotBound"
        );
        let flow_id = flow["id"].as_str().unwrap().to_string();
        assert_eq!(st.flows(&app).await[0]["state"], "off");
        // The table came with its columns and choices.
        assert_eq!(report["tables"], json!(["pfx_project"]), "{report}");
        let web = st.api(&app);
        web.create(
            &st.admin,
            "pfx_projects",
            json!({"pfx_name": "Apollo", "pfx_budget": 5, "pfx_stage": 2}),
        )
        .await;
        let (s, e, _) = web
            .call(
                &st.admin,
                Method::POST,
                "pfx_projects",
                Some(json!({"pfx_name": "Gemini", "pfx_stage": 7})),
            )
            .await;
        assert_eq!(
            s,
            StatusCode::BAD_REQUEST,
            "only the choices it came with: {e}"
        );

        // The role came with the solution: the application user gets it, then its connection.
        let sp_user = st.app_user(&app, &app_id, "Flow contact writer").await;
        let conn = st.connection(&app, &app_id, &secret).await;
        let (s, report) = st.import(&app, &archive, Some(filled(&conn))).await;
        assert_eq!(s, StatusCode::OK, "{report}");
        assert_eq!(report["flows"][0]["state"], "on", "{report}");
        assert_eq!(
            report["flows"][0]["id"],
            flow_id.as_str(),
            "upgraded in place"
        );
        assert_eq!(report["flows"][0]["missingConnectionReferences"], json!([]));
        assert_eq!(report["solution"]["version"], "1.0.0.1");
        let web = st.api(&app);
        let refs = web
            .ok(&st.admin, Method::GET, "connectionreferences", None)
            .await;
        assert_eq!(refs["value"][0]["connectionid"], conn.as_str(), "{refs}");
        let values = web
            .ok(&st.admin, Method::GET, "environmentvariablevalues", None)
            .await;
        assert_eq!(values["value"][0]["value"], format!("{name}-"), "{values}");

        // An account in this environment: the flow runs with this environment's connection.
        web.create(
            &st.admin,
            "accounts",
            json!({"name": format!("Fabrikam {name}")}),
        )
        .await;
        let run = st.one_run(&app, &flow_id).await;
        assert_ran_with(&run, &conn, &sp_user);
        connection_ids.push(
            run["actions"][0]["connection"]["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
        let contacts = web
            .ok(
                &st.admin,
                Method::GET,
                "contacts?$select=lastname,_createdby_value",
                None,
            )
            .await;
        assert_eq!(
            contacts["value"][0]["lastname"],
            format!("{name}-Fabrikam {name}"),
            "this environment's own value of the variable"
        );
        assert_eq!(contacts["value"][0]["_createdby_value"], sp_user.as_str());
    }
    assert_ne!(
        connection_ids[0], connection_ids[1],
        "TEST's and PROD's own connections"
    );

    // A newer export upgrades; the older archive no longer imports over it.
    let (s, newer) = app
        .graph(
            Method::POST,
            &dev.path("solutions/ContosoFlows/export"),
            Some(json!({"version": "1.1.0.0"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{newer}");
    let prod = Stage {
        name: "prod",
        id: "prod".into(),
        web: String::new(),
        admin: String::new(),
    };
    let (s, r) = prod.import(&app, &newer, None).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(r["flows"][0]["state"], "on", "still bound: {r}");
    assert_eq!(r["solution"]["version"], "1.1.0.0");
    let (s, e) = prod.import(&app, &archive, None).await;
    assert_eq!(s, StatusCode::CONFLICT, "{e}");
    assert_eq!(e["error"]["code"], "SolutionConflict");
    app.stop().await;
}

/// An environment made before connection references and environment variables existed gets
/// their tables, and the built-in roles their privileges, when the server starts.
async fn environments_made_before_get_the_new_tables(backend: Backend) {
    use keyway_store::EnvironmentStore;
    let app = spawn_app(backend).await;
    app.environment("old").await;
    let store = app.state_store();
    let env = store.environment_by_name("old").await.unwrap().unwrap();
    for t in [
        "environmentvariablevalue",
        "environmentvariabledefinition",
        "connectionreference",
    ] {
        keyway_store::testing::forget_builtin_table(&store, &env, t)
            .await
            .unwrap();
    }
    let tables = store.environment_tables(env.id).await.unwrap();
    assert!(
        !tables
            .iter()
            .any(|t| t.logical_name == "connectionreference")
    );
    drop(store);

    let app = app.restart().await;
    // A new port: the environment's URL and the administrator's token for it again.
    let url = format!("{}/env/old", app.base);
    let (st, t) = app
        .secret_token(
            &app.profile.client_id.to_string(),
            &app.profile.client_secret,
            &format!("{url}/.default"),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{t}");
    let admin = t["access_token"].as_str().unwrap().to_string();
    let web = WebApi {
        http: &app.http,
        api: format!("{url}/api/data/v9.2"),
    };
    let listed = web
        .ok(&admin, Method::GET, "connectionreferences", None)
        .await;
    assert_eq!(listed["value"], json!([]));
    web.create(
        &admin,
        "connectionreferences",
        json!({"connectionreferencelogicalname": REF, "connectorid": DV_ID}),
    )
    .await;
    let (s, e, _) = web
        .call(
            &admin,
            Method::POST,
            "connectionreferences",
            Some(json!({"connectionreferencelogicalname": REF, "connectorid": DV_ID})),
        )
        .await;
    assert_eq!(
        s,
        StatusCode::PRECONDITION_FAILED,
        "still one per logical name: {e}"
    );
    web.create(
        &admin,
        "environmentvariabledefinitions",
        json!({"schemaname": "pfx_Var", "type": 100000000}),
    )
    .await;
    // A second start changes nothing.
    let app = app.restart().await;
    let store = app.state_store();
    let tables = store.environment_tables(env.id).await.unwrap();
    assert_eq!(
        tables
            .iter()
            .filter(|t| t.logical_name == "connectionreference")
            .count(),
        1
    );
    app.stop().await;
}
