//! Cloud flows end to end over HTTPS: seed 002 (a service principal's connection adds a contact
//! when an account is added; the run history names the connection and the application user, the
//! contact's audit history the application user), run-as (seed 004) and the Delegate it needs,
//! a missing privilege (or one revoked after the flow was saved) failing an action with
//! Dataverse's error, filtering attributes, filter
//! expressions and scope skipping runs, manual runs, turning off and cancelling.

use std::time::Duration as Wait;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(
    seed_002_flow_acts_as_the_service_principal,
    run_as_modifying_user_and_row_owner,
    filters_and_scope_skip_runs,
    manual_runs_turn_off_and_cancel,
    makers_manage_only_their_own_flows,
    built_in_roles_get_flow_privileges_at_start
);

pub const DV: &str = "shared_commondataserviceforapps";

/// An environment with a service principal (its application user holding `roles`), a
/// connection `sp-dataverse` made with its secret, and the administrator's tokens.
pub struct Fx {
    pub app: TestApp,
    pub env_id: String,
    /// The Web API base URL.
    pub api: String,
    /// The administrator's token for the environment.
    pub admin: String,
    /// The service principal's application user.
    pub sp_user: String,
}

/// A person-like caller of the flows API ([`Fx::member`]): its Power Platform token, its system
/// user id, and its application's credentials.
pub struct Member {
    pub token: String,
    pub user: String,
    pub client_id: String,
    pub secret: String,
}

impl Fx {
    pub async fn new(backend: Backend, roles: &[(&str, &[&str])], sp_roles: &[&str]) -> Fx {
        let app = spawn_app(backend).await;
        let (env, api, admin) = app.environment("dev").await;
        let env_id = env["id"].as_str().unwrap().to_string();
        for (name, privileges) in roles {
            let (s, r) = app
                .graph(
                    Method::POST,
                    &format!("/v1.0/environments/{env_id}/roles"),
                    Some(json!({"name": name, "privileges": privileges})),
                )
                .await;
            assert_eq!(s, StatusCode::CREATED, "{r}");
        }
        // Seed 002 steps 1–4: the app registration, its secret, its application user.
        let (cid, secret) = app
            .app_with_secret(
                "D365-App-Registration",
                json!({"passwordCredential": {"displayName": "D365AppSecret"}}),
            )
            .await;
        let sp_user = add_app_user(&app, &env_id, &cid, sp_roles).await;
        // Step 5: a Dataverse connection with the service principal's credentials.
        let mut parameters = sp_parameters(&app, &cid, &secret, None);
        parameters["values"]["token:grantType"] = json!({"value": "client_credentials"});
        let (s, c) = put_connection(
            &app,
            &app.platform_token().await,
            &env_id,
            "sp-dataverse",
            Some("Dataverse as D365-App-Registration"),
            parameters,
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{c}");
        assert_eq!(c["properties"]["statuses"][0]["status"], "Connected", "{c}");
        Fx {
            app,
            env_id,
            api,
            admin,
            sp_user,
        }
    }

    /// The service principal holding the contact writer role ([`WRITER`]).
    pub async fn writer(backend: Backend) -> Fx {
        Fx::new(
            backend,
            &[("Flow contact writer", WRITER)],
            &["Flow contact writer"],
        )
        .await
    }

    pub fn flows(&self) -> String {
        format!("/v1.0/environments/{}/flows", self.env_id)
    }

    /// Save a flow as the administrator.
    pub async fn flow(&self, name: &str, definition: Value) -> String {
        let (s, f) = self
            .app
            .graph(
                Method::POST,
                &self.flows(),
                Some(json!({"name": name, "definition": definition})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{f}");
        assert_eq!(f["state"], "on");
        f["id"].as_str().unwrap().to_string()
    }

    /// Save a flow as the administrator that must be refused with 400; the error body.
    pub async fn refused(&self, name: &str, definition: Value) -> Value {
        let (s, e) = self
            .app
            .graph(
                Method::POST,
                &self.flows(),
                Some(json!({"name": name, "definition": definition})),
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
        e
    }

    /// Start a manual run of the flow with no inputs as the administrator.
    pub async fn start(&self, flow: &str) {
        let (s, r) = self
            .app
            .graph(
                Method::POST,
                &format!("{}/{flow}/run", self.flows()),
                Some(json!({})),
            )
            .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{r}");
    }

    /// Turn the flow on or off as the administrator; the flow.
    pub async fn turn(&self, flow: &str, on: bool) -> Value {
        let action = if on { "turnOn" } else { "turnOff" };
        let (s, f) = self
            .app
            .graph(
                Method::POST,
                &format!("{}/{flow}/{action}", self.flows()),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{f}");
        f
    }

    pub async fn web(
        &self,
        token: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Option<String>, Value) {
        web_call(
            &self.app.http,
            token,
            method,
            format!("{}/{path}", self.api),
            body,
            &[],
        )
        .await
    }

    /// A Web API read as the administrator that must answer 200; its body.
    pub async fn get(&self, path: &str) -> Value {
        let (s, _, b) = self.web(&self.admin, Method::GET, path, None).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        b
    }

    /// Create a row; its id.
    pub async fn create(&self, token: &str, set: &str, body: Value) -> String {
        let (s, id, b) = self.web(token, Method::POST, set, Some(body)).await;
        assert_eq!(s, StatusCode::NO_CONTENT, "{b}");
        let id = id.unwrap();
        id[id.rfind('(').unwrap() + 1..id.len() - 1].to_string()
    }

    /// Wait until the flow has `n` runs, all ended; newest first.
    pub async fn runs(&self, flow: &str, n: usize) -> Vec<Value> {
        ended_runs(&self.app, &self.flows(), flow, n, Wait::from_secs(20)).await
    }

    pub async fn run(&self, flow: &str, run: &Value) -> Value {
        run_detail(&self.app, &self.flows(), flow, run).await
    }

    /// Wait until the flow has `n` runs, all ended; the newest with its actions.
    pub async fn last_run(&self, flow: &str, n: usize) -> Value {
        let runs = self.runs(flow, n).await;
        self.run(flow, &runs[0]).await
    }

    /// A person or application's Web API token for the environment, through an app with its
    /// own application user holding `roles`: (token, system user id).
    pub async fn app_user(&self, name: &str, roles: &[&str]) -> (String, String) {
        let (cid, secret) = self.app.app_with_secret(name, json!({})).await;
        let user = self.add_app_user(&cid, roles).await;
        let url = self.api.trim_end_matches("/api/data/v9.2");
        let (s, t) = self
            .app
            .secret_token(&cid, &secret, &format!("{url}/.default"))
            .await;
        assert_eq!(s, StatusCode::OK, "{t}");
        (t["access_token"].as_str().unwrap().to_string(), user)
    }

    /// A caller of the flows API: an application with an application user here holding
    /// `roles`, with its Power Platform token.
    pub async fn member(&self, name: &str, roles: &[&str]) -> Member {
        let (client_id, secret) = self.app.app_with_secret(name, json!({})).await;
        let user = self.add_app_user(&client_id, roles).await;
        let (s, t) = self
            .app
            .secret_token(
                &client_id,
                &secret,
                "https://api.powerplatform.com/.default",
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{t}");
        Member {
            token: t["access_token"].as_str().unwrap().to_string(),
            user,
            client_id,
            secret,
        }
    }

    /// An application user here for the application `client_id`, holding `roles`; its id.
    pub async fn add_app_user(&self, client_id: &str, roles: &[&str]) -> String {
        add_app_user(&self.app, &self.env_id, client_id, roles).await
    }

    /// PUT the Dataverse connection `name` of this environment with `token`; the answer.
    pub async fn put_connection(
        &self,
        token: &str,
        name: &str,
        display_name: Option<&str>,
        parameters: Value,
    ) -> (StatusCode, Value) {
        put_connection(
            &self.app,
            token,
            &self.env_id,
            name,
            display_name,
            parameters,
        )
        .await
    }
}

/// An application user in environment `env_id` for the application `client_id`, holding `roles`;
/// its system user id.
pub async fn add_app_user(app: &TestApp, env_id: &str, client_id: &str, roles: &[&str]) -> String {
    let (s, u) = app
        .graph(
            Method::POST,
            &format!("/v1.0/environments/{env_id}/addAppUser"),
            Some(json!({"servicePrincipalAppId": client_id, "roles": roles})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{u}");
    u["systemuserid"].as_str().unwrap().to_string()
}

/// A Dataverse connection's parameter set for a service principal's secret (acting in
/// `environment_url` when given).
pub fn sp_parameters(
    app: &TestApp,
    client_id: &str,
    secret: &str,
    environment_url: Option<&str>,
) -> Value {
    let mut values = json!({
        "token:clientId": {"value": client_id},
        "token:clientSecret": {"value": secret},
        "token:TenantId": {"value": app.tenant()},
    });
    if let Some(url) = environment_url {
        values["environmentUrl"] = json!({"value": url});
    }
    json!({"name": "ServicePrincipalOauth", "values": values})
}

/// PUT the Dataverse connection `name` of environment `env_id` with `token` (created or changed,
/// `parameters` its connectionParametersSet); the answer, however it tested.
pub async fn put_connection(
    app: &TestApp,
    token: &str,
    env_id: &str,
    name: &str,
    display_name: Option<&str>,
    parameters: Value,
) -> (StatusCode, Value) {
    let mut properties = json!({
        "environment": {"id": format!("/providers/Microsoft.PowerApps/environments/{env_id}"), "name": env_id},
        "connectionParametersSet": parameters,
    });
    if let Some(display_name) = display_name {
        properties["displayName"] = json!(display_name);
    }
    app.call(
        token,
        Method::PUT,
        &format!("/connectivity/connectors/{DV}/connections/{name}?api-version=1"),
        Some(json!({ "properties": properties })),
    )
    .await
}

/// Wait (up to `patience`) until the flow under `flows` has `n` runs, all ended; newest first.
pub async fn ended_runs(
    app: &TestApp,
    flows: &str,
    flow: &str,
    n: usize,
    patience: Wait,
) -> Vec<Value> {
    let path = format!("{flows}/{flow}/runs?$top=500");
    let every = Wait::from_millis(50);
    let mut last = Value::Null;
    for _ in 0..patience.as_millis() / every.as_millis() {
        let (s, r) = app.graph(Method::GET, &path, None).await;
        assert_eq!(s, StatusCode::OK, "{r}");
        let runs = r["value"].as_array().unwrap().clone();
        let ended = |x: &Value| !matches!(x["status"].as_str(), Some("Queued" | "Running"));
        assert!(runs.len() <= n, "more than {n} runs: {r}");
        if runs.len() == n && runs.iter().all(ended) {
            return runs;
        }
        last = r;
        tokio::time::sleep(every).await;
    }
    panic!("flow {flow} did not end {n} runs: {last}");
}

/// The run (from a list of runs) of the flow under `flows`, with its actions.
pub async fn run_detail(app: &TestApp, flows: &str, flow: &str, run: &Value) -> Value {
    let (s, r) = app
        .graph(
            Method::GET,
            &format!("{flows}/{flow}/runs/{}", run["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    r
}

/// A second server process on the same database and master key as `app`, with `clock`; its
/// handle, to shut it down.
pub async fn second_node(
    app: &TestApp,
    clock: std::sync::Arc<dyn keyway_core::Clock>,
) -> axum_server::Handle<std::net::SocketAddr> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        app.dir.path().join("master.key"),
        dir.path().join("master.key"),
    )
    .unwrap();
    let mut config = keyway_server::Config::new(dir.path(), "127.0.0.1:0".parse().unwrap());
    config.database_url = app.db_url.clone();
    config.rate_limit_per_second = 0;
    let b = keyway_server::App::build(config, clock, None)
        .await
        .unwrap();
    let handle = b.handle();
    // The node's files live as long as it serves.
    tokio::spawn(async move {
        let _dir = dir;
        b.serve().await.unwrap()
    });
    handle
}

/// Assert the run succeeded, its first action through `connection` as system user `user`.
pub fn assert_ran_with(run: &Value, connection: &str, user: &str) {
    assert_eq!(run["status"], "Succeeded", "{run}");
    let action = &run["actions"][0];
    assert_eq!(action["connection"]["name"], connection, "{run}");
    assert_eq!(action["identity"]["systemUserId"], user, "{run}");
}

/// "When a row is …" on `entity`, then `actions`.
pub fn dataverse_flow(entity: &str, message: u8, extra: Value, actions: Value) -> Value {
    let mut parameters = json!({
        "subscriptionRequest/message": message,
        "subscriptionRequest/entityname": entity,
        "subscriptionRequest/scope": 4,
    });
    for (k, v) in extra.as_object().unwrap() {
        parameters[format!("subscriptionRequest/{k}")] = v.clone();
    }
    json!({
        "$schema": "https://schema.management.azure.com/providers/Microsoft.Logic/schemas/2016-06-01/workflowdefinition.json#",
        "contentVersion": "1.0.0.0",
        "triggers": {"When_a_row_is_added": {
            "type": "OpenApiConnectionWebhook",
            "inputs": {
                "host": {"connectionName": "sp-dataverse", "operationId": "SubscribeWebhookTrigger", "apiId": format!("/providers/Microsoft.PowerApps/apis/{DV}")},
                "parameters": parameters,
            },
        }},
        "actions": actions,
    })
}

/// "Add a new row" to contacts for the triggering account.
pub fn add_contact(prefix: &str) -> Value {
    json!({"Add_a_new_row": {
        "runAfter": {},
        "type": "OpenApiConnection",
        "inputs": {
            "host": {"connectionName": "sp-dataverse", "operationId": "CreateRecord", "apiId": format!("/providers/Microsoft.PowerApps/apis/{DV}")},
            "parameters": {
                "entityName": "contacts",
                "item/lastname": format!("{prefix}@{{triggerOutputs()?['body/name']}}"),
                "item/parentcustomerid_account@odata.bind": "accounts(@{triggerOutputs()?['body/accountid']})",
            },
        },
    }})
}

pub const WRITER: &[&str] = &[
    "prvCreatecontact:Global",
    "prvReadcontact:Global",
    "prvWritecontact:Global",
    "prvAppendcontact:Global",
    "prvAppendToaccount:Global",
    "prvReadaccount:Global",
];

async fn seed_002_flow_acts_as_the_service_principal(backend: Backend) {
    let fx = Fx::writer(backend).await;

    // A definition error answers its path and the offset inside the expression.
    let mut bad = dataverse_flow("account", 1, json!({}), add_contact(""));
    bad["actions"]["Add_a_new_row"]["inputs"]["parameters"]["item/lastname"] =
        json!("@concatt('a')");
    let e = fx.refused("bad", bad).await;
    assert_eq!(e["error"]["code"], "InvalidFlowDefinition");
    assert_eq!(
        e["error"]["path"],
        "actions.Add_a_new_row.inputs.parameters.item/lastname"
    );
    assert_eq!(e["error"]["offset"], 1, "{e}");
    assert!(error_message(&e).contains("concat"), "{e}");
    // A connection that does not exist is named.
    let mut unknown = dataverse_flow("account", 1, json!({}), add_contact(""));
    unknown["actions"]["Add_a_new_row"]["inputs"]["host"]["connectionName"] = json!("nope");
    let e = fx.refused("x", unknown).await;
    assert!(error_message(&e).contains("'nope'"), "{e}");

    // Step 6: "when an account is added, add a contact" through the connection.
    let flow = fx
        .flow(
            "Account to contact",
            dataverse_flow("account", 1, json!({"runas": 3}), add_contact("")),
        )
        .await;
    let (s, listed) = fx.app.graph(Method::GET, &fx.flows(), None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        listed["value"][0]["trigger"]["entity"], "account",
        "{listed}"
    );
    let (sales, sales_user) = fx.app_user("sales", &["System Administrator"]).await;
    let calls = fx.app.outbound.in_process_calls();
    let handed = fx.app.state_store().runs_handed_over();
    let account = fx
        .create(&sales, "accounts", json!({"name": "Fabrikam"}))
        .await;

    let runs = fx.runs(&flow, 1).await;
    assert_eq!(runs[0]["status"], "Succeeded", "{runs:?}");
    // The action's request to this server went through its router in process, and was still
    // authenticated, authorized and audited as the connection's identity (below).
    assert!(fx.app.outbound.in_process_calls() > calls);
    // The run was leased to this server in the create's transaction and started without a claim.
    assert_eq!(fx.app.state_store().runs_handed_over(), handed + 1);
    let run = fx.run(&flow, &runs[0]).await;
    let action = &run["actions"][0];
    assert_eq!(action["name"], "Add_a_new_row");
    assert_eq!(action["status"], "Succeeded", "{run}");
    assert_eq!(action["connection"]["name"], "sp-dataverse", "{run}");
    assert_eq!(action["connection"]["connector"], DV);
    assert_eq!(
        action["identity"]["systemUserId"],
        fx.sp_user.as_str(),
        "{run}"
    );
    assert_eq!(
        run["trigger"]["outputs"]["keyway"]["modifiedBy"],
        sales_user.as_str()
    );
    let text = run.to_string();
    assert!(
        !text.contains("secret") && !text.contains("eyJ"),
        "no secret nor token: {run}"
    );
    let contact = action["outputs"]["body"]["contactid"]
        .as_str()
        .unwrap()
        .to_string();

    // The contact exists, for the account, made by the application user.
    let c = fx.get(&format!("contacts({contact})")).await;
    assert_eq!(c["lastname"], "Fabrikam");
    assert_eq!(c["_parentcustomerid_value"], account.as_str());
    assert_eq!(c["_createdby_value"], fx.sp_user.as_str());
    let audits = fx
        .get(&format!("audits?$filter=_objectid_value eq {contact}"))
        .await;
    let rows = audits["value"].as_array().unwrap();
    assert!(!rows.is_empty(), "{audits}");
    assert!(
        rows.iter()
            .all(|r| r["_userid_value"] == fx.sp_user.as_str()),
        "the audit history names the application user: {audits}"
    );

    // Least privilege: creating an account is beyond the role, and the run history says so.
    let denied = fx
        .flow(
            "Copy account",
            dataverse_flow(
                "contact",
                1,
                json!({}),
                json!({"Add_an_account": {"type": "OpenApiConnection", "inputs": {
                    "host": {"connectionName": "sp-dataverse", "operationId": "CreateRecord"},
                    "parameters": {"entityName": "accounts", "item/name": "@triggerOutputs()?['body/lastname']"},
                }}}),
            ),
        )
        .await;
    let calls = fx.app.outbound.in_process_calls();
    fx.create(&sales, "contacts", json!({"lastname": "Ward"}))
        .await;
    let runs = fx.runs(&denied, 1).await;
    assert!(fx.app.outbound.in_process_calls() > calls, "in process");
    assert_eq!(runs[0]["status"], "Failed", "{runs:?}");
    assert_eq!(runs[0]["error"]["code"], "0x80040220", "{runs:?}");
    let run = fx.run(&denied, &runs[0]).await;
    let action = &run["actions"][0];
    assert_eq!(action["status"], "Failed");
    assert_eq!(action["error"]["code"], "0x80040220", "{run}");
    assert!(error_message(action).contains("prvCreateaccount"), "{run}");
    assert_eq!(action["identity"]["systemUserId"], fx.sp_user.as_str());

    // Revoking the role makes the next action fail (the connection itself is untouched).
    let roles = fx
        .get("roles?$filter=name eq 'Flow contact writer'&$select=roleid")
        .await;
    let role = roles["value"][0]["roleid"].as_str().unwrap().to_string();
    let (s, _, b) = fx
        .web(
            &fx.admin,
            Method::DELETE,
            &format!(
                "systemusers({})/systemuserroles_association({role})/$ref",
                fx.sp_user
            ),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{b}");
    fx.create(&sales, "accounts", json!({"name": "Contoso"}))
        .await;
    let runs = fx.runs(&flow, 2).await;
    assert_eq!(runs[0]["status"], "Failed", "{runs:?}");
    assert_eq!(runs[0]["error"]["code"], "0x80040220", "{runs:?}");
    assert!(
        error_message(&runs[0]).contains("prvCreatecontact"),
        "{runs:?}"
    );
    fx.app.stop().await;
}

async fn run_as_modifying_user_and_row_owner(backend: Backend) {
    let fx = Fx::new(
        backend,
        &[("Flow contact writer", WRITER)],
        &["Flow contact writer", "Delegate"],
    )
    .await;
    // Running as someone else needs Delegate to save (seed 004).
    let maker = fx.member("maker graph", &["Basic User"]).await;
    let as_modifier = dataverse_flow("account", 3, json!({"runas": 1}), add_contact("modifier-"));
    let (s, e) = fx
        .app
        .call(
            &maker.token,
            Method::POST,
            &fx.flows(),
            Some(json!({"name": "as modifier", "definition": as_modifier})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{e}");
    assert_eq!(e["error"]["code"], "0x80040220");
    assert!(
        error_message(&e).contains("prvActOnBehalfOfAnotherUser"),
        "{e}"
    );

    // The administrator holds it.
    let modifier_flow = fx.flow("as modifier", as_modifier).await;
    let owner_flow = fx
        .flow(
            "as owner",
            dataverse_flow("account", 3, json!({"runas": 2}), add_contact("owner-")),
        )
        .await;
    let (_, sales_user) = fx.app_user("sales", &["Flow contact writer"]).await;
    // The administrator creates an account owned by sales, then changes it.
    let (_, who) = {
        let (s, _, w) = fx.web(&fx.admin, Method::GET, "WhoAmI", None).await;
        (s, w)
    };
    let admin_user = who["UserId"].as_str().unwrap().to_string();
    let account = fx
        .create(
            &fx.admin,
            "accounts",
            json!({"name": "Northwind", "ownerid@odata.bind": format!("/systemusers({sales_user})")}),
        )
        .await;
    let (s, _, b) = fx
        .web(
            &fx.admin,
            Method::PATCH,
            &format!("accounts({account})"),
            Some(json!({"name": "Northwind Traders"})),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{b}");

    let check = |flow: String, who: String, prefix: &'static str| {
        let fx = &fx;
        async move {
            let runs = fx.runs(&flow, 1).await;
            assert_eq!(runs[0]["status"], "Succeeded", "{runs:?}");
            let run = fx.run(&flow, &runs[0]).await;
            let action = &run["actions"][0];
            assert_eq!(action["identity"]["systemUserId"], who.as_str(), "{run}");
            assert_eq!(action["connection"]["name"], "sp-dataverse");
            let contact = action["outputs"]["body"]["contactid"].as_str().unwrap();
            let c = fx.get(&format!("contacts({contact})")).await;
            assert_eq!(c["lastname"], format!("{prefix}Northwind Traders"));
            assert_eq!(c["_createdby_value"], who.as_str(), "{c}");
            assert_eq!(
                c["_createdonbehalfby_value"],
                fx.sp_user.as_str(),
                "the connection's identity acted on their behalf: {c}"
            );
        }
    };
    check(modifier_flow, admin_user, "modifier-").await;
    check(owner_flow, sales_user, "owner-").await;
    fx.app.stop().await;
}

async fn filters_and_scope_skip_runs(backend: Backend) {
    let fx = Fx::new(backend, &[], &["Basic User"]).await;
    let compose =
        json!({"Note": {"type": "Compose", "inputs": "@triggerOutputs()?['body/revenue']"}});
    let revenue = fx
        .flow(
            "big revenue",
            dataverse_flow(
                "account",
                3,
                json!({"filteringattributes": "revenue", "filterexpression": "revenue gt 1000"}),
                compose.clone(),
            ),
        )
        .await;
    // A filter on a column the table lacks is refused at save.
    let bad = dataverse_flow(
        "account",
        3,
        json!({"filterexpression": "nosuch eq 1"}),
        compose.clone(),
    );
    let e = fx.refused("bad", bad).await;
    assert!(error_message(&e).contains("nosuch"), "{e}");
    // Scope 1 (user): only rows the flow's owner owns.
    let mut mine = dataverse_flow("account", 1, json!({}), compose.clone());
    mine["triggers"]["When_a_row_is_added"]["inputs"]["parameters"]["subscriptionRequest/scope"] =
        json!(1);
    let mine = fx.flow("my accounts", mine).await;

    let (other, _) = fx.app_user("other", &["System Administrator"]).await;
    let account = fx
        .create(&fx.admin, "accounts", json!({"name": "Mine"}))
        .await;
    fx.create(&other, "accounts", json!({"name": "Theirs"}))
        .await;
    let runs = fx.runs(&mine, 2).await;
    let statuses: Vec<&str> = runs.iter().map(|r| r["status"].as_str().unwrap()).collect();
    assert!(
        statuses.contains(&"Succeeded") && statuses.contains(&"Skipped"),
        "{runs:?}"
    );

    let patch = |body: Value| {
        let fx = &fx;
        let path = format!("accounts({account})");
        async move {
            let (s, _, b) = fx.web(&fx.admin, Method::PATCH, &path, Some(body)).await;
            assert_eq!(s, StatusCode::NO_CONTENT, "{b}");
        }
    };
    patch(json!({"name": "Renamed"})).await; // not a filtering attribute: no run
    patch(json!({"revenue": 500})).await; // queued, but the filter expression skips it
    let runs = fx.runs(&revenue, 1).await;
    assert_eq!(runs[0]["status"], "Skipped", "{runs:?}");
    assert_eq!(runs[0]["error"]["code"], "TriggerConditionNotMet");
    patch(json!({"revenue": 5000})).await;
    let runs = fx.runs(&revenue, 2).await;
    assert_eq!(runs[0]["status"], "Succeeded", "{runs:?}");
    let run = fx.run(&revenue, &runs[0]).await;
    assert_eq!(run["actions"][0]["outputs"], 5000.0, "{run}");
    fx.app.stop().await;
}

/// A plain-HTTP server on this machine that answers every request after `delay`, counting them.
pub async fn slow_server(
    delay: std::time::Duration,
) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hits = std::sync::Arc::new(AtomicUsize::new(0));
    let counted = hits.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            counted.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = sock.read(&mut buf).await;
                tokio::time::sleep(delay).await;
                let body = "{\"ok\":true}";
                let _ = sock
                    .write_all(format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).as_bytes())
                    .await;
            });
        }
    });
    (format!("http://127.0.0.1:{}", addr.port()), hits)
}

async fn manual_runs_turn_off_and_cancel(backend: Backend) {
    use std::sync::atomic::Ordering;
    let fx = Fx::new(backend, &[], &["Basic User"]).await;
    let (slow, hits) = slow_server(std::time::Duration::from_millis(1500)).await;
    let definition = json!({
        "triggers": {"manual": {"type": "Request", "kind": "Button", "inputs": {"schema": {"type": "object"}}}},
        "actions": {
            "Echo": {"type": "Compose", "inputs": {"hello": "@triggerBody()?['who']"}},
            "Call": {"type": "Http", "runAfter": {"Echo": ["Succeeded"]}, "inputs": {"method": "GET", "uri": "@{triggerBody()?['url']}"}},
            "After": {"type": "Compose", "runAfter": {"Call": ["Succeeded"]}, "inputs": "@body('Call')?['ok']"},
        },
    });
    let flow = fx.flow("button", definition).await;
    let start = |inputs: Value| {
        let fx = &fx;
        let path = format!("{}/{flow}/run", fx.flows());
        async move { fx.app.graph(Method::POST, &path, Some(inputs)).await }
    };
    // A manual run: 202 with its id, then its history.
    let (s, r) = start(json!({"who": "Ada", "url": slow})).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{r}");
    let runs = fx.runs(&flow, 1).await;
    assert_eq!(runs[0]["id"], r["id"]);
    assert_eq!(runs[0]["status"], "Succeeded", "{runs:?}");
    let run = fx.run(&flow, &runs[0]).await;
    let names: Vec<&str> = run["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Echo", "Call", "After"], "{run}");
    assert_eq!(run["actions"][0]["outputs"]["hello"], "Ada");
    assert_eq!(run["actions"][2]["outputs"], true, "{run}");

    // Cancelled while its HTTP call is in flight: the next action never starts.
    let before = hits.load(Ordering::SeqCst);
    let (_, r) = start(json!({"who": "Grace", "url": slow})).await;
    let run_path = format!("{}/{flow}/runs/{}", fx.flows(), r["id"].as_str().unwrap());
    for _ in 0..100 {
        if hits.load(Ordering::SeqCst) > before {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let (s, c) = fx
        .app
        .graph(Method::POST, &format!("{run_path}/cancel"), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{c}");
    assert_eq!(c["status"], "Cancelled");
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let (_, run) = fx.app.graph(Method::GET, &run_path, None).await;
    assert_eq!(run["status"], "Cancelled", "{run}");
    let names: Vec<&str> = run["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert!(!names.contains(&"After"), "{run}");
    let (s, c) = fx
        .app
        .graph(Method::POST, &format!("{run_path}/cancel"), None)
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{c}");

    // Off: no new runs.
    let f = fx.turn(&flow, false).await;
    assert_eq!(f["state"], "off");
    let (s, e) = start(json!({})).await;
    assert_eq!(s, StatusCode::CONFLICT, "{e}");
    let account_flow = fx
        .flow(
            "off later",
            dataverse_flow(
                "account",
                1,
                json!({}),
                json!({"N": {"type": "Compose", "inputs": 1}}),
            ),
        )
        .await;
    fx.turn(&account_flow, false).await;
    fx.create(&fx.admin, "accounts", json!({"name": "Quiet"}))
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let (_, runs) = fx
        .app
        .graph(
            Method::GET,
            &format!("{}/{account_flow}/runs", fx.flows()),
            None,
        )
        .await;
    assert_eq!(runs["value"].as_array().unwrap().len(), 0, "{runs}");
    // A desktop flow cannot be turned on without machines.
    let desktop = json!({
        "triggers": {"manual": {"type": "Request", "kind": "Button"}},
        "actions": {"Desk": {"type": "RunDesktopFlow", "inputs": {"host": {"connectionName": "sp-dataverse"}, "parameters": {"desktopFlowId": "00000000-0000-0000-0000-000000000001", "runMode": "unattended"}}}},
    });
    fx.refused("desk", desktop).await;
    fx.app.stop().await;
}

/// Two server processes' worth of run workers on one PostgreSQL: a burst of trigger events,
/// each run claimed once (attempt 1), each contact made once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_on_one_postgres_run_each_event_once() {
    use std::sync::Arc;

    use keyway_core::{Clock, ManualClock, SystemClock};
    let fx = Fx::writer(Backend::Postgres).await;
    // A second node on the same database and master key.
    let b_handle = second_node(&fx.app, Arc::new(ManualClock::new(SystemClock.now()))).await;

    let flow = fx
        .flow(
            "Account to contact",
            dataverse_flow("account", 1, json!({}), add_contact("")),
        )
        .await;
    let n = 60;
    let creates = (0..n).map(|i| {
        let fx = &fx;
        async move {
            fx.create(&fx.admin, "accounts", json!({"name": format!("Burst {i}")}))
                .await
        }
    });
    let accounts = futures_join_all(creates).await;
    let runs = fx.runs(&flow, n).await;
    assert!(runs.iter().all(|r| r["status"] == "Succeeded"), "{runs:?}");
    assert!(
        runs.iter().all(|r| r["attempt"] == 1),
        "no run was claimed twice: {runs:?}"
    );
    let contacts = fx.get("contacts?$select=_parentcustomerid_value").await;
    let mut parents: Vec<String> = contacts["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["_parentcustomerid_value"].as_str().unwrap().to_string())
        .collect();
    parents.sort();
    let mut expected = accounts;
    expected.sort();
    assert_eq!(parents, expected, "one contact per account");
    b_handle.shutdown();
    fx.app.stop().await;
}

/// Await every future, concurrently, in order.
async fn futures_join_all<F: std::future::Future>(fs: impl Iterator<Item = F>) -> Vec<F::Output> {
    let handles: Vec<_> = fs.collect();
    let mut out = Vec::with_capacity(handles.len());
    // Poll them together by pinning each into a join set of boxed futures.
    let mut pinned: Vec<std::pin::Pin<Box<F>>> = handles.into_iter().map(Box::pin).collect();
    let mut results: Vec<Option<F::Output>> = (0..pinned.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in pinned.iter_mut().enumerate() {
            if results[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => results[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.extend(results.into_iter().map(|r| r.unwrap()));
    out
}

/// An Environment Maker holds prvCustomizeEntities but the flow privileges only at User depth:
/// someone else's flow, its runs and its run-only users are not found, it is not listed and no
/// solution of theirs may carry it; their own flow they manage. A System Customizer
/// (Organization depth) reads, changes and exports everyone's.
async fn makers_manage_only_their_own_flows(backend: Backend) {
    let fx = Fx::new(backend, &[], &["Basic User"]).await;
    let maker = fx.member("maker", &["Environment Maker"]).await;
    let customizer = fx.member("customizer", &["System Customizer"]).await;
    let button = json!({
        "triggers": {"manual": {"type": "Request", "kind": "Button", "inputs": {"schema": {"type": "object"}}}},
        "actions": {"Echo": {"type": "Compose", "inputs": "@triggerBody()?['secret']"}},
    });
    let admins = fx.flow("admins", button.clone()).await;
    let theirs = format!("{}/{admins}", fx.flows());
    let (s, r) = fx
        .app
        .graph(
            Method::POST,
            &format!("{theirs}/run"),
            Some(json!({"secret": "not for makers"})),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{r}");
    let run = fx.runs(&admins, 1).await[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (s, mine) = fx
        .app
        .call(
            &maker.token,
            Method::POST,
            &fx.flows(),
            Some(json!({"name": "mine", "definition": button})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{mine}");
    let mine = format!("{}/{}", fx.flows(), mine["id"].as_str().unwrap());

    // The maker: only their own flow is listed; the administrator's is not found, whatever
    // they ask of it.
    let (s, l) = fx
        .app
        .call(&maker.token, Method::GET, &fx.flows(), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{l}");
    let names: Vec<&str> = l["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["mine"], "{l}");
    let replace = json!({"name": "taken over", "definition": button});
    for (method, path, body) in [
        (Method::GET, theirs.clone(), None),
        (Method::PUT, theirs.clone(), Some(replace.clone())),
        (Method::POST, format!("{theirs}/turnOff"), None),
        (Method::GET, format!("{theirs}/runs"), None),
        (Method::GET, format!("{theirs}/runs/{run}"), None),
        (Method::POST, format!("{theirs}/runs/{run}/cancel"), None),
        (Method::GET, format!("{theirs}/runOnlyUsers"), None),
        (Method::DELETE, theirs.clone(), None),
    ] {
        let (s, e) = fx.app.call(&maker.token, method.clone(), &path, body).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{method} {path}: {e}");
        assert_eq!(e["error"]["code"], "0x80040217", "{e}");
        assert!(!e.to_string().contains("not for makers"), "{e}");
    }
    let f = fx.app.graph(Method::GET, &theirs, None).await.1;
    assert_eq!(f["name"], "admins", "unchanged: {f}");
    assert_eq!(f["state"], "on", "{f}");
    // Their own: read, changed, its runs read, turned off.
    for (method, path, body) in [
        (Method::GET, mine.clone(), None),
        (Method::PUT, mine.clone(), Some(replace.clone())),
        (Method::GET, format!("{mine}/runs"), None),
        (Method::POST, format!("{mine}/turnOff"), None),
    ] {
        let (s, r) = fx.app.call(&maker.token, method.clone(), &path, body).await;
        assert_eq!(s, StatusCode::OK, "{method} {path}: {r}");
    }

    // Solutions: the maker's own flow goes in; the administrator's is not found, and a
    // solution carrying it is not exported for the maker.
    let sols = format!("/v1.0/environments/{}/solutions", fx.env_id);
    for (token, name) in [
        (&maker.token, "MakerFlows"),
        (&fx.app.admin_token().await, "AdminFlows"),
    ] {
        let (s, r) = fx
            .app
            .call(
                token,
                Method::POST,
                &sols,
                Some(json!({"uniqueName": name, "friendlyName": name, "publisherPrefix": "pfx"})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{r}");
    }
    let add = |token: String, sol: &'static str, flow: &'static str| {
        let (fx, sols) = (&fx, &sols);
        async move {
            fx.app
                .call(
                    &token,
                    Method::POST,
                    &format!("{sols}/{sol}/components"),
                    Some(json!({"type": "flow", "name": flow})),
                )
                .await
        }
    };
    let (s, r) = add(maker.token.clone(), "MakerFlows", "taken over").await;
    assert_eq!(s, StatusCode::OK, "{r}");
    let (s, e) = add(maker.token.clone(), "MakerFlows", "admins").await;
    assert!(s.is_client_error() && s != StatusCode::FORBIDDEN, "{s} {e}");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no flow 'admins'"),
        "{e}"
    );
    let (s, r) = add(fx.app.admin_token().await, "AdminFlows", "admins").await;
    assert_eq!(s, StatusCode::OK, "{r}");
    let export = |token: String, sol: &'static str| {
        let (fx, sols) = (&fx, &sols);
        async move {
            fx.app
                .call(&token, Method::POST, &format!("{sols}/{sol}/export"), None)
                .await
        }
    };
    let (s, e) = export(maker.token.clone(), "AdminFlows").await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{e}");
    assert_eq!(e["error"]["code"], "0x80040220", "{e}");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("prvReadWorkflow"),
        "{e}"
    );
    assert!(!e.to_string().contains("not for makers"), "{e}");

    // The customizer: every flow, its runs, and solutions carrying it.
    let (s, l) = fx
        .app
        .call(&customizer.token, Method::GET, &fx.flows(), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{l}");
    assert_eq!(l["value"].as_array().unwrap().len(), 2, "{l}");
    assert!(
        l["value"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["access"] == "admin"),
        "{l}"
    );
    let (s, r) = fx
        .app
        .call(
            &customizer.token,
            Method::GET,
            &format!("{theirs}/runs/{run}"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(r["actions"][0]["outputs"], "not for makers", "{r}");
    let (s, r) = fx
        .app
        .call(
            &customizer.token,
            Method::PUT,
            &theirs,
            Some(json!({"name": "customized"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    let (s, r) = add(customizer.token.clone(), "MakerFlows", "customized").await;
    assert_eq!(s, StatusCode::OK, "{r}");
    let (s, a) = export(customizer.token.clone(), "MakerFlows").await;
    assert_eq!(s, StatusCode::OK, "{a}");
    assert_eq!(a["flows"].as_array().unwrap().len(), 2, "{a}");
    // The maker may no longer export their own solution, which now carries someone else's flow,
    // nor import it over that flow.
    let (s, e) = export(maker.token.clone(), "MakerFlows").await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{e}");
    let mut archive = a.clone();
    for f in archive["flows"].as_array_mut().unwrap() {
        f["definition"]["actions"]["Echo"]["inputs"] = json!("imported");
    }
    let (s, e) = fx
        .app
        .call(
            &maker.token,
            Method::POST,
            &format!("{sols}/import"),
            Some(json!({"solution": archive})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{e}");
    assert_eq!(e["error"]["code"], "0x80040220", "{e}");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("prvWriteWorkflow"),
        "{e}"
    );
    let f = fx.app.graph(Method::GET, &theirs, None).await.1;
    assert_eq!(
        f["definition"]["actions"]["Echo"]["inputs"], "@triggerBody()?['secret']",
        "{f}"
    );
    let f = fx.app.call(&maker.token, Method::GET, &mine, None).await.1;
    assert_eq!(
        f["definition"]["actions"]["Echo"]["inputs"], "@triggerBody()?['secret']",
        "{f}"
    );
    // The customizer may.
    let (s, r) = fx
        .app
        .call(
            &customizer.token,
            Method::POST,
            &format!("{sols}/import"),
            Some(json!({"solution": archive})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    let f = fx.app.graph(Method::GET, &theirs, None).await.1;
    assert_eq!(
        f["definition"]["actions"]["Echo"]["inputs"], "imported",
        "{f}"
    );
    fx.app.stop().await;
}

/// The environment's Web API base URL and its administrator's token (again after a restart:
/// the port changes).
async fn web_api_of(app: &TestApp, env_id: &str) -> (String, String) {
    let (s, env) = app
        .graph(Method::GET, &format!("/v1.0/environments/{env_id}"), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{env}");
    let url = env["url"].as_str().unwrap().to_string();
    let (s, t) = app
        .secret_token(
            &app.profile.client_id.to_string(),
            &app.profile.client_secret,
            &format!("{url}/.default"),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{t}");
    (
        format!("{url}/api/data/v9.2"),
        t["access_token"].as_str().unwrap().to_string(),
    )
}

/// The Web API's answer to a GET that must succeed.
async fn web_ok(app: &TestApp, api: &str, token: &str, path: &str) -> Value {
    let (s, _, v) = web_call(
        &app.http,
        token,
        Method::GET,
        format!("{api}/{path}"),
        None,
        &[],
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{path}: {v}");
    v
}

/// A built-in role's flow privileges, as (name, depth) by name.
async fn flow_privileges(
    app: &TestApp,
    api: &str,
    token: &str,
    role: &str,
) -> Vec<(String, String)> {
    let roles = web_ok(
        app,
        api,
        token,
        &format!("roles?$filter=name eq '{role}'&$select=roleid"),
    )
    .await;
    let id = roles["value"][0]["roleid"].as_str().unwrap().to_string();
    let held = web_ok(
        app,
        api,
        token,
        &format!("RetrieveRolePrivilegesRole(RoleId={id})"),
    )
    .await;
    let mut out: Vec<(String, String)> = held["RolePrivileges"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["PrivilegeName"].as_str().unwrap().ends_with("Workflow"))
        .map(|p| {
            (
                p["PrivilegeName"].as_str().unwrap().to_string(),
                p["Depth"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

/// New environments' built-in roles hold the flow privileges (makers at Basic depth, customizers
/// Global); a built-in role of an environment from before them, holding none, gets them when the
/// server starts, and only once.
async fn built_in_roles_get_flow_privileges_at_start(backend: Backend) {
    let app = spawn_app(backend).await;
    let (env, _, _) = app.environment("dev").await;
    let env_id = env["id"].as_str().unwrap().to_string();
    let (api, admin) = web_api_of(&app, &env_id).await;
    let names = ["prvDeleteWorkflow", "prvReadWorkflow", "prvWriteWorkflow"];
    let at = |depth: &str| -> Vec<(String, String)> {
        names
            .iter()
            .map(|n| (n.to_string(), depth.to_string()))
            .collect()
    };
    assert_eq!(
        flow_privileges(&app, &api, &admin, "Environment Maker").await,
        at("Basic")
    );
    assert_eq!(
        flow_privileges(&app, &api, &admin, "Basic User").await,
        at("Basic")
    );
    assert_eq!(
        flow_privileges(&app, &api, &admin, "System Customizer").await,
        at("Global")
    );
    assert_eq!(
        flow_privileges(&app, &api, &admin, "System Administrator").await,
        at("Global")
    );
    assert_eq!(
        flow_privileges(&app, &api, &admin, "Delegate").await,
        vec![]
    );

    // As an environment from before flow privileges: the maker role holds none of them.
    let roles = web_ok(
        &app,
        &api,
        &admin,
        "roles?$filter=name eq 'Environment Maker'&$select=roleid",
    )
    .await;
    let maker = roles["value"][0]["roleid"].as_str().unwrap().to_string();
    for n in names {
        let p = web_ok(
            &app,
            &api,
            &admin,
            &format!("privileges?$filter=name eq '{n}'&$select=privilegeid"),
        )
        .await;
        let id = p["value"][0]["privilegeid"].as_str().unwrap().to_string();
        let (s, _, v) = web_call(
            &app.http,
            &admin,
            Method::POST,
            format!("{api}/roles({maker})/Microsoft.Dynamics.CRM.RemovePrivilegeRole"),
            Some(json!({"PrivilegeId": id})),
            &[],
        )
        .await;
        assert_eq!(s, StatusCode::NO_CONTENT, "{v}");
    }
    assert_eq!(
        flow_privileges(&app, &api, &admin, "Environment Maker").await,
        vec![]
    );

    let app = app.restart().await;
    let (api, admin) = web_api_of(&app, &env_id).await;
    assert_eq!(
        flow_privileges(&app, &api, &admin, "Environment Maker").await,
        at("Basic")
    );
    assert_eq!(
        flow_privileges(&app, &api, &admin, "System Customizer").await,
        at("Global")
    );
    let audits = web_ok(
        &app,
        &api,
        &admin,
        &format!("audits?$filter=_objectid_value eq {maker}"),
    )
    .await;
    let updates = audits["value"].as_array().unwrap().len();
    // Started again: nothing more to add, nothing more audited.
    let app = app.restart().await;
    let (api, admin) = web_api_of(&app, &env_id).await;
    let audits = web_ok(
        &app,
        &api,
        &admin,
        &format!("audits?$filter=_objectid_value eq {maker}"),
    )
    .await;
    assert_eq!(
        audits["value"].as_array().unwrap().len(),
        updates,
        "{audits}"
    );
    assert_eq!(
        flow_privileges(&app, &api, &admin, "Environment Maker").await,
        at("Basic")
    );
    app.stop().await;
}
