//! Seed 004's connection rules for cloud flows: in the flow's own environment a Dataverse action
//! keeps running after its connection's credential expires, as the connection's identity, until
//! that identity is disabled; against another environment the connection must stay valid.

use keyway_core::Clock;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::flows::{DV, Fx, Member, WRITER, add_app_user, assert_ran_with, sp_parameters};
use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(
    expired_connections_run_on_in_their_own_environment,
    run_only_users_run_with_their_own_connections,
    a_revoked_sign_in_runs_on_as_its_user,
    a_connection_acts_only_as_the_identity_it_proved,
    run_only_users_list_their_flows_and_cancel_their_own_runs
);

/// A manual flow whose one action adds a contact through `connection`.
fn add_contact_by_hand(connection: &str) -> Value {
    json!({
        "triggers": {"manual": {"type": "Request", "kind": "Button", "inputs": {"schema": {"type": "object"}}}},
        "actions": {"Add_a_contact": {"type": "OpenApiConnection", "inputs": {
            "host": {"connectionName": connection, "operationId": "CreateRecord", "apiId": format!("/providers/Microsoft.PowerApps/apis/{DV}")},
            "parameters": {"entityName": "contacts", "item/lastname": "@triggerBody()?['name']"},
        }}},
    })
}

/// A Dataverse connection of `fx`'s environment with a service principal's secret, acting in
/// `environment_url` when given; it must work.
async fn sp_connection(
    fx: &Fx,
    name: &str,
    client_id: &str,
    secret: &str,
    environment_url: Option<&str>,
) {
    let (s, c) = put_sp_connection(fx, name, client_id, secret, environment_url).await;
    assert!(s.is_success(), "{c}");
    assert_eq!(c["properties"]["statuses"][0]["status"], "Connected", "{c}");
}

/// PUT a service principal connection (created or changed); the answer, however it tested.
async fn put_sp_connection(
    fx: &Fx,
    name: &str,
    client_id: &str,
    secret: &str,
    environment_url: Option<&str>,
) -> (StatusCode, Value) {
    fx.put_connection(
        &fx.app.platform_token().await,
        name,
        Some(name),
        sp_parameters(&fx.app, client_id, secret, environment_url),
    )
    .await
}

/// Start a manual run and wait for it to end; the run with its actions.
async fn run_by_hand(fx: &Fx, flow: &str, n: usize, name: &str) -> Value {
    let (s, r) = fx
        .app
        .graph(
            Method::POST,
            &format!("{}/{flow}/run", fx.flows()),
            Some(json!({"name": name})),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{r}");
    let runs = fx.runs(flow, n).await;
    assert_eq!(runs[0]["id"], r["id"]);
    fx.run(flow, &runs[0]).await
}

async fn expired_connections_run_on_in_their_own_environment(backend: Backend) {
    let fx = Fx::writer(backend).await;
    // An application whose only secret ends in 30 minutes, with an application user (and the
    // same role) here and in a second environment.
    let end = fx.app.clock.now() + time::Duration::minutes(30);
    let end = end
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let (cid, secret) = fx
        .app
        .app_with_secret(
            "Expiring",
            json!({"passwordCredential": {"endDateTime": end}}),
        )
        .await;
    let app_user = fx.add_app_user(&cid, &["Flow contact writer"]).await;
    let (prod, prod_api, prod_admin) = fx.app.environment("prod").await;
    let prod_id = prod["id"].as_str().unwrap();
    let (s, r) = fx
        .app
        .graph(
            Method::POST,
            &format!("/v1.0/environments/{prod_id}/roles"),
            Some(json!({"name": "Flow contact writer", "privileges": WRITER})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    add_app_user(&fx.app, prod_id, &cid, &["Flow contact writer"]).await;
    let prod_url = prod["url"].as_str().unwrap();
    sp_connection(&fx, "sp-expiring", &cid, &secret, None).await;
    sp_connection(&fx, "sp-prod", &cid, &secret, Some(prod_url)).await;
    let here = fx.flow("here", add_contact_by_hand("sp-expiring")).await;
    let there = fx.flow("there", add_contact_by_hand("sp-prod")).await;

    // While the secret is valid both work, with the connection's own token.
    for (flow, name) in [(&here, "Before"), (&there, "Before prod")] {
        let run = run_by_hand(&fx, flow, 1, name).await;
        assert_eq!(run["status"], "Succeeded", "{run}");
        assert!(run["actions"][0]["inputs"]["host"]["credential"].is_null());
    }

    // The secret expires (and the tokens it gave leave the cache).
    fx.app.clock.advance(time::Duration::minutes(56));
    let (s, e) = fx
        .app
        .secret_token(&cid, &secret, &format!("{prod_url}/.default"))
        .await;
    assert_eq!((s, aadsts(&e)), (StatusCode::UNAUTHORIZED, 7000222), "{e}");

    // Here: the action runs on as the application user, and says why.
    let run = run_by_hand(&fx, &here, 2, "After").await;
    assert_eq!(run["status"], "Succeeded", "{run}");
    let action = &run["actions"][0];
    assert_eq!(action["inputs"]["host"]["credential"], "expired", "{run}");
    assert_eq!(action["inputs"]["host"]["credentialError"], "AADSTS7000222");
    assert_eq!(action["connection"]["name"], "sp-expiring");
    assert_eq!(action["identity"]["systemUserId"], app_user.as_str());
    assert!(!run.to_string().contains(&secret), "no secret: {run}");
    assert!(!run.to_string().contains("eyJ"), "no token: {run}");
    let contact = action["outputs"]["body"]["contactid"].as_str().unwrap();
    let c = fx.get(&format!("contacts({contact})")).await;
    assert_eq!(c["lastname"], "After");
    assert_eq!(c["_createdby_value"], app_user.as_str(), "{c}");
    let audits = fx
        .get(&format!("audits?$filter=_objectid_value eq {contact}"))
        .await;
    let rows = audits["value"].as_array().unwrap();
    assert!(
        !rows.is_empty() && rows.iter().all(|r| r["_userid_value"] == app_user.as_str()),
        "the audit names the application user: {audits}"
    );

    // There: another environment needs a valid connection; the authority's error fails it.
    let run = run_by_hand(&fx, &there, 2, "After prod").await;
    assert_eq!(run["status"], "Failed", "{run}");
    let action = &run["actions"][0];
    assert_eq!(action["error"]["code"], "AADSTS7000222", "{run}");
    assert!(action["inputs"]["host"]["credential"].is_null(), "{run}");
    let (s, _, rows) = web_call(
        &fx.app.http,
        &prod_admin,
        Method::GET,
        format!("{prod_api}/contacts?$filter=lastname eq 'After prod'"),
        None,
        &[],
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{rows}");
    assert_eq!(rows["value"].as_array().unwrap().len(), 0, "{rows}");

    // Disabling the application user stops the next action, with Dataverse's error.
    let disable = |on: bool| {
        let fx = &fx;
        let path = format!("systemusers({app_user})");
        async move {
            let (s, _, b) = fx
                .web(
                    &fx.admin,
                    Method::PATCH,
                    &path,
                    Some(json!({"isdisabled": on})),
                )
                .await;
            assert_eq!(s, StatusCode::NO_CONTENT, "{b}");
        }
    };
    disable(true).await;
    let run = run_by_hand(&fx, &here, 3, "Disabled").await;
    assert_eq!(run["status"], "Failed", "{run}");
    assert_eq!(run["actions"][0]["error"]["code"], "0x8004882e", "{run}");
    disable(false).await;
    let run = run_by_hand(&fx, &here, 4, "Enabled again").await;
    assert_eq!(run["status"], "Succeeded", "{run}");

    // A disabled service principal gets no token at all.
    let (_, sps) = fx
        .app
        .graph(
            Method::GET,
            &format!("/v1.0/servicePrincipals?$filter=appId eq '{cid}'"),
            None,
        )
        .await;
    let sp = sps["value"][0]["id"].as_str().unwrap();
    let (s, b) = fx
        .app
        .graph(
            Method::PATCH,
            &format!("/v1.0/servicePrincipals/{sp}"),
            Some(json!({"accountEnabled": false})),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{b}");
    let run = run_by_hand(&fx, &here, 5, "SP disabled").await;
    assert_eq!(run["status"], "Failed", "{run}");
    assert_eq!(run["actions"][0]["error"]["code"], "AADSTS7000112", "{run}");
    fx.app.stop().await;
}

/// `who`'s own Dataverse connection `name` with their credentials (acting in `url` if given).
async fn own_connection(fx: &Fx, who: &Member, name: &str, url: Option<&str>) -> Value {
    let (s, c) = fx
        .put_connection(
            &who.token,
            name,
            Some(name),
            sp_parameters(&fx.app, &who.client_id, &who.secret, url),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{c}");
    c
}

/// An instant flow: `Mine` adds a contact with the connection of whoever runs it (`dv-invoker`),
/// `Theirs` one with the owner's (`sp-dataverse`).
fn invoker_flow(invoker_connection: &str) -> Value {
    let add = |connection: &str, prefix: &str| {
        json!({"type": "OpenApiConnection", "inputs": {
            "host": {"connectionName": connection, "operationId": "CreateRecord"},
            "parameters": {"entityName": "contacts", "item/lastname": format!("{prefix}@{{triggerBody()?['name']}}")},
        }})
    };
    let mut theirs = add("sp-dataverse", "owner-");
    theirs["runAfter"] = json!({"Mine": ["Succeeded"]});
    json!({
        "name": "Add my contact",
        "definition": {
            "triggers": {"manual": {"type": "Request", "kind": "Button", "inputs": {"schema": {"type": "object"}}}},
            "actions": {"Mine": add("dv-invoker", "mine-"), "Theirs": theirs},
        },
        "connectionReferences": {
            "dv-invoker": {"runtimeSource": "invoker", "connection": {"name": invoker_connection}, "api": {"name": DV}},
            "sp-dataverse": {"runtimeSource": "embedded", "connection": {"name": "sp-dataverse"}, "api": {"name": DV}},
        },
    })
}

async fn run_only_users_run_with_their_own_connections(backend: Backend) {
    let fx = Fx::writer(backend).await;
    let maker = fx.member("maker", &["Flow contact writer"]).await;
    own_connection(&fx, &maker, "maker-dv", None).await;
    let runner = fx.member("runner", &["Flow contact writer"]).await;
    own_connection(&fx, &runner, "runner-dv", None).await;
    let stranger = fx.member("stranger", &["Flow contact writer"]).await;
    own_connection(&fx, &stranger, "stranger-dv", None).await;
    let as_who = |who: &Member, method: Method, path: String, body: Option<Value>| {
        let fx = &fx;
        let token = who.token.clone();
        async move { fx.app.call(&token, method, &path, body).await }
    };

    // Saving a flow with connections provided by run-only users needs Delegate.
    let mut body = invoker_flow("maker-dv");
    body["connectionReferences"]["sp-dataverse"]["connection"]["name"] = json!("maker-dv");
    let (s, e) = as_who(&maker, Method::POST, fx.flows(), Some(body)).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{e}");
    assert_eq!(e["error"]["code"], "0x80040220");
    assert!(
        error_message(&e).contains("prvActOnBehalfOfAnotherUser"),
        "{e}"
    );
    // And an instant trigger.
    let (s, e) = fx
        .app
        .graph(
            Method::POST,
            &fx.flows(),
            Some(json!({
                "name": "automated",
                "definition": crate::flows::dataverse_flow("account", 1, json!({}), crate::flows::add_contact("")),
                "connectionReferences": {"sp-dataverse": {"runtimeSource": "invoker", "connection": {"name": "sp-dataverse"}}},
            })),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    assert!(error_message(&e).contains("instant trigger"), "{e}");

    // The administrator holds Delegate.
    let (s, f) = fx
        .app
        .graph(
            Method::POST,
            &fx.flows(),
            Some(invoker_flow("sp-dataverse")),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{f}");
    assert_eq!(
        f["connectionReferences"]["dv-invoker"]["runtimeSource"],
        "invoker"
    );
    let flow = f["id"].as_str().unwrap().to_string();
    let path = |rest: &str| format!("{}/{flow}{rest}", fx.flows());
    let run_body =
        |connection: &str| json!({"name": "Ada", "$connections": {"dv-invoker": connection}});
    // A manual run started by `who`, naming their connection for the invoker reference.
    let run_with = |who: &Member, connection: &str| {
        as_who(who, Method::POST, path("/run"), Some(run_body(connection)))
    };

    // Nobody but the owner may run it yet.
    let (s, e) = run_with(&runner, "runner-dv").await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{e}");

    // The owner makes the runner a run-only user (once).
    let grant = json!({"systemUserId": runner.user});
    let (s, g) = fx
        .app
        .graph(Method::POST, &path("/runOnlyUsers"), Some(grant.clone()))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{g}");
    assert_eq!(g["systemUserId"], runner.user.as_str());
    let (s, _) = fx
        .app
        .graph(Method::POST, &path("/runOnlyUsers"), Some(grant))
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, e) = fx
        .app
        .graph(
            Method::POST,
            &path("/runOnlyUsers"),
            Some(json!({"systemUserId": "00000000-0000-0000-0000-000000000042"})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    let (s, l) = fx
        .app
        .graph(Method::GET, &path("/runOnlyUsers"), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{l}");
    assert_eq!(l["value"].as_array().unwrap().len(), 1, "{l}");
    // Run-only users see it without its definition (and the connection they must bring), and
    // may not change it.
    let (s, e) = as_who(&runner, Method::GET, path(""), None).await;
    assert_eq!(s, StatusCode::OK, "{e}");
    assert_eq!(e["access"], "runOnly", "{e}");
    assert_eq!(
        e["runnerConnections"],
        json!([{"name": "dv-invoker", "api": DV}]),
        "{e}"
    );
    assert!(!e.to_string().contains("Mine"), "no definition: {e}");
    assert!(
        !e.to_string().contains("sp-dataverse"),
        "no connections: {e}"
    );
    let (s, e) = as_who(
        &runner,
        Method::PUT,
        path(""),
        Some(json!({"name": "mine now"})),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{e}");
    let (s, e) = as_who(&runner, Method::GET, path("/runOnlyUsers"), None).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{e}");

    // The runner supplies their own connection for the invoker reference.
    let (s, e) = as_who(
        &runner,
        Method::POST,
        path("/run"),
        Some(json!({"name": "Ada"})),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    assert!(error_message(&e).contains("dv-invoker"), "{e}");
    let (s, e) = run_with(&runner, "stranger-dv").await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "not theirs: {e}");
    let (s, r) = run_with(&runner, "runner-dv").await;
    assert_eq!(s, StatusCode::ACCEPTED, "{r}");
    let runs = fx.runs(&flow, 1).await;
    let run = fx.run(&flow, &runs[0]).await;
    assert_eq!(run["status"], "Succeeded", "{run}");
    assert_eq!(
        run["trigger"]["outputs"]["keyway"]["modifiedBy"],
        runner.user.as_str()
    );
    assert_eq!(
        run["trigger"]["outputs"]["body"],
        json!({"name": "Ada"}),
        "{run}"
    );
    let action = |name: &str| {
        run["actions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == name)
            .unwrap()
            .clone()
    };
    let (mine, theirs) = (action("Mine"), action("Theirs"));
    assert_eq!(mine["connection"]["name"], "runner-dv", "{run}");
    assert_eq!(mine["identity"]["systemUserId"], runner.user.as_str());
    assert_eq!(mine["inputs"]["host"]["runtimeSource"], "invoker");
    assert_eq!(theirs["connection"]["name"], "sp-dataverse", "{run}");
    assert_eq!(theirs["identity"]["systemUserId"], fx.sp_user.as_str());
    for (a, by) in [(&mine, &runner.user), (&theirs, &fx.sp_user)] {
        let contact = a["outputs"]["body"]["contactid"].as_str().unwrap();
        let c = fx.get(&format!("contacts({contact})")).await;
        assert_eq!(c["_createdby_value"], by.as_str(), "{c}");
    }

    // The owner's own run; the runner sees only theirs, without its actions.
    let (s, r) = fx
        .app
        .graph(Method::POST, &path("/run"), Some(run_body("sp-dataverse")))
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{r}");
    let owner_run = r["id"].as_str().unwrap().to_string();
    fx.runs(&flow, 2).await;
    let (s, mine) = as_who(&runner, Method::GET, path("/runs"), None).await;
    assert_eq!(s, StatusCode::OK, "{mine}");
    let mine = mine["value"].as_array().unwrap();
    assert_eq!(mine.len(), 1, "{mine:?}");
    assert_eq!(mine[0]["id"], runs[0]["id"]);
    let own = format!("/runs/{}", runs[0]["id"].as_str().unwrap());
    let (s, r) = as_who(&runner, Method::GET, path(&own), None).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert!(r["actions"].is_null(), "{r}");
    let (s, _) = as_who(
        &runner,
        Method::GET,
        path(&format!("/runs/{owner_run}")),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // Someone who is not a run-only user cannot run it, until a team of theirs may.
    let (s, e) = run_with(&stranger, "stranger-dv").await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{e}");
    let (_, _, who) = fx.web(&fx.admin, Method::GET, "WhoAmI", None).await;
    let team = fx
        .create(
            &fx.admin,
            "teams",
            json!({"name": "Runners", "teamtype": 0, "businessunitid@odata.bind": format!("/businessunits({})", who["BusinessUnitId"].as_str().unwrap())}),
        )
        .await;
    let (s, _, b) = fx
        .web(
            &fx.admin,
            Method::POST,
            &format!("teams({team})/Microsoft.Dynamics.CRM.AddMembersTeam"),
            Some(json!({"Members": [{"systemuserid": stranger.user}]})),
        )
        .await;
    assert!(s.is_success(), "{b}");
    let (s, g) = fx
        .app
        .graph(
            Method::POST,
            &path("/runOnlyUsers"),
            Some(json!({"teamId": team})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{g}");
    assert_eq!(g["type"], "team");
    let (s, l) = as_who(&stranger, Method::GET, fx.flows(), None).await;
    assert_eq!(s, StatusCode::OK, "{l}");
    assert_eq!(
        l["value"][0]["id"],
        flow.as_str(),
        "listed through the team: {l}"
    );
    assert_eq!(l["value"][0]["access"], "runOnly", "{l}");
    let (s, r) = run_with(&stranger, "stranger-dv").await;
    assert_eq!(s, StatusCode::ACCEPTED, "through the team: {r}");
    let run = fx.last_run(&flow, 3).await;
    assert_ran_with(&run, "stranger-dv", &stranger.user);

    // A connection to another environment is refused for a run-only user's connection: at save
    // when the flow is saved with one, at run time when the runner brings one.
    let (prod, _, _) = fx.app.environment("prod").await;
    let prod_url = prod["url"].as_str().unwrap();
    own_connection(&fx, &runner, "runner-prod", Some(prod_url)).await;
    let (s, r) = run_with(&runner, "runner-prod").await;
    assert_eq!(s, StatusCode::ACCEPTED, "{r}");
    let run = fx.last_run(&flow, 4).await;
    assert_eq!(run["status"], "Failed", "{run}");
    assert_eq!(
        run["actions"][0]["error"]["code"], "InvokerConnectionNotSupported",
        "{run}"
    );
    let admin = Member {
        token: fx.app.platform_token().await,
        user: String::new(),
        client_id: fx.app.profile.client_id.to_string(),
        secret: fx.app.profile.client_secret.clone(),
    };
    own_connection(&fx, &admin, "admin-prod", Some(prod_url)).await;
    let mut cross = invoker_flow("admin-prod");
    cross["name"] = json!("cross");
    let (s, e) = fx.app.graph(Method::POST, &fx.flows(), Some(cross)).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    assert!(error_message(&e).contains("another environment"), "{e}");

    // Revoked: the runner may run it no more.
    let (s, _) = fx
        .app
        .graph(
            Method::DELETE,
            &path(&format!("/runOnlyUsers/{}", runner.user)),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, e) = run_with(&runner, "runner-dv").await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{e}");
    fx.app.stop().await;
}

/// A person's sign-in connection (a refresh token): revoked sign-in sessions do not stop the
/// flow's actions in its own environment, which run on as the person until their account is
/// disabled.
async fn a_revoked_sign_in_runs_on_as_its_user(backend: Backend) {
    use crate::refresh_tokens::{public_client, rt, sign_in, user};
    let fx = Fx::new(backend, &[("Flow contact writer", WRITER)], &[]).await;
    let (erin_id, erin) = user(&fx.app, "erin").await;
    let client = public_client(&fx.app, "cli").await;
    let (s, su) = fx
        .app
        .graph(
            Method::POST,
            &format!("/v1.0/environments/{}/addUser", fx.env_id),
            Some(json!({"userId": erin_id})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{su}");
    let sid = su["systemuserid"].as_str().unwrap().to_string();
    fx.app
        .assign_role(&fx.env_id, "Flow contact writer", &sid)
        .await;
    let url = fx.api.trim_end_matches("/api/data/v9.2");
    let (s, t) = sign_in(
        &fx.app,
        &client,
        &erin,
        &format!("{url}/.default offline_access"),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{t}");
    let (s, c) = fx
        .put_connection(
            &fx.app.platform_token().await,
            "erin-dv",
            None,
            json!({"name": "OAuthSignIn", "values": {
                "token:refreshToken": {"value": rt(&t)},
                "token:clientId": {"value": client},
                "token:TenantId": {"value": fx.app.tenant()},
            }}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{c}");
    assert_eq!(c["properties"]["statuses"][0]["status"], "Connected", "{c}");
    let flow = fx.flow("as erin", add_contact_by_hand("erin-dv")).await;
    let run = run_by_hand(&fx, &flow, 1, "Signed in").await;
    assert_eq!(run["status"], "Succeeded", "{run}");
    assert_eq!(run["actions"][0]["identity"]["systemUserId"], sid.as_str());

    // Erin's sign-in sessions are revoked; an hour on, no cached token is left either.
    let (s, _) = fx
        .app
        .graph(
            Method::POST,
            &format!("/v1.0/users/{erin_id}/revokeSignInSessions"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    fx.app.clock.advance(time::Duration::minutes(56));
    let run = run_by_hand(&fx, &flow, 2, "Revoked").await;
    assert_eq!(run["status"], "Succeeded", "{run}");
    let action = &run["actions"][0];
    assert_eq!(action["inputs"]["host"]["credential"], "expired", "{run}");
    assert_eq!(action["inputs"]["host"]["credentialError"], "AADSTS50173");
    assert_eq!(action["identity"]["systemUserId"], sid.as_str());
    let contact = action["outputs"]["body"]["contactid"].as_str().unwrap();
    let c = fx.get(&format!("contacts({contact})")).await;
    assert_eq!(c["_createdby_value"], sid.as_str(), "{c}");

    // A disabled account gets no token.
    let (s, b) = fx
        .app
        .graph(
            Method::PATCH,
            &format!("/v1.0/users/{erin_id}"),
            Some(json!({"accountEnabled": false})),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{b}");
    let run = run_by_hand(&fx, &flow, 3, "Disabled").await;
    assert_eq!(run["status"], "Failed", "{run}");
    assert_eq!(run["actions"][0]["error"]["code"], "AADSTS50057", "{run}");
    fx.app.stop().await;
}

/// An application with a secret and an application user holding the contact writer role here:
/// its client id, secret and system user id.
async fn app_user(fx: &Fx, name: &str) -> (String, String, String) {
    let (cid, secret) = fx.app.app_with_secret(name, json!({})).await;
    let user = fx.add_app_user(&cid, &["Flow contact writer"]).await;
    (cid, secret, user)
}

/// The contacts named `lastname` in the flow's environment.
async fn contacts_named(fx: &Fx, lastname: &str) -> usize {
    let (s, _, rows) = fx
        .web(
            &fx.admin,
            Method::GET,
            &format!("contacts?$filter=lastname eq '{lastname}'"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{rows}");
    rows["value"].as_array().unwrap().len()
}

/// The expired-connection fallback acts only as an identity the connection proved with its own
/// credential: naming another application's client id with a made-up secret, or replacing a
/// proven secret with a wrong one, acts as no one — the authority's error fails the action. A
/// flow whose connection is not connected cannot be saved on or turned on.
async fn a_connection_acts_only_as_the_identity_it_proved(backend: Backend) {
    let fx = Fx::new(
        backend,
        &[("Flow contact writer", WRITER)],
        &["Flow contact writer"],
    )
    .await;
    let (victim, victim_secret, _) = app_user(&fx, "Victim").await;
    let (mine, my_secret, my_user) = app_user(&fx, "Mine").await;

    // Another application's client id with a made-up secret: stored, but not connected, and a
    // flow using it saves only off ("a valid connection is required when saving or publishing").
    let (s, c) = put_sp_connection(&fx, "forged", &victim, "not-the-secret", None).await;
    assert_eq!(s, StatusCode::CREATED, "{c}");
    assert_eq!(c["properties"]["statuses"][0]["status"], "Error", "{c}");
    assert!(c.to_string().contains("AADSTS7000215"), "{c}");
    let forged_flow = json!({"name": "forged", "definition": add_contact_by_hand("forged")});
    let (s, e) = fx
        .app
        .graph(Method::POST, &fx.flows(), Some(forged_flow.clone()))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    assert_eq!(e["error"]["code"], "ConnectionNotConnected", "{e}");
    let message = e["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("'forged'") && message.contains("AADSTS7000215"),
        "{e}"
    );
    let mut off = forged_flow;
    off["state"] = "off".into();
    let (s, f) = fx.app.graph(Method::POST, &fx.flows(), Some(off)).await;
    assert_eq!(s, StatusCode::CREATED, "{f}");
    assert_eq!(f["state"], "off", "{f}");
    let forged = f["id"].as_str().unwrap().to_string();
    let turn_on = format!("{}/{forged}/turnOn", fx.flows());
    let (s, e) = fx.app.graph(Method::POST, &turn_on, None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    assert_eq!(e["error"]["code"], "ConnectionNotConnected", "{e}");

    // A connection proven with its own secret works...
    sp_connection(&fx, "mine", &mine, &my_secret, None).await;
    let flow = fx.flow("mine", add_contact_by_hand("mine")).await;
    let run = run_by_hand(&fx, &flow, 1, "Proven").await;
    assert_eq!(run["status"], "Succeeded", "{run}");
    assert_eq!(
        run["actions"][0]["identity"]["systemUserId"],
        my_user.as_str()
    );
    // ...but a wrong secret put in its place (the flow is on already) drops the proof: the
    // action fails as the authority said, with no fallback to the application.
    let (s, c) = put_sp_connection(&fx, "mine", &mine, "a-wrong-secret", None).await;
    assert!(s.is_success(), "{c}");
    assert_eq!(c["properties"]["statuses"][0]["status"], "Error", "{c}");
    let run = run_by_hand(&fx, &flow, 2, "Wrong secret").await;
    assert_eq!(run["status"], "Failed", "{run}");
    assert_eq!(run["actions"][0]["error"]["code"], "AADSTS7000215", "{run}");
    assert!(run["actions"][0]["inputs"]["host"]["credential"].is_null());
    assert_eq!(contacts_named(&fx, "Wrong secret").await, 0);
    // Nor does pointing the proven connection at another application.
    let (s, c) = put_sp_connection(&fx, "mine", &victim, "not-the-secret", None).await;
    assert!(s.is_success(), "{c}");
    let run = run_by_hand(&fx, &flow, 3, "Other app").await;
    assert_eq!(run["status"], "Failed", "{run}");
    assert_eq!(run["actions"][0]["error"]["code"], "AADSTS7000215", "{run}");
    assert_eq!(contacts_named(&fx, "Other app").await, 0);
    // Its own secret back proves it again.
    sp_connection(&fx, "mine", &mine, &my_secret, None).await;
    let run = run_by_hand(&fx, &flow, 4, "Proven again").await;
    assert_eq!(run["status"], "Succeeded", "{run}");
    // The victim's real secret still works for the victim (the forged connection, fixed).
    sp_connection(&fx, "forged", &victim, &victim_secret, None).await;
    let (s, f) = fx.app.graph(Method::POST, &turn_on, None).await;
    assert!(s.is_success(), "{f}");
    let run = run_by_hand(&fx, &forged, 1, "Fixed").await;
    assert_eq!(run["status"], "Succeeded", "{run}");
    fx.app.stop().await;
}

/// Run-only users find the flows they may run in the flow list (without their definitions),
/// start them and cancel the runs they started — not the owner's or anyone else's; the owner
/// cancels theirs.
async fn run_only_users_list_their_flows_and_cancel_their_own_runs(backend: Backend) {
    use std::sync::atomic::Ordering;
    let fx = Fx::new(backend, &[], &["Basic User"]).await;
    let (slow, hits) = crate::flows::slow_server(std::time::Duration::from_millis(1500)).await;
    let schema = json!({"type": "object", "properties": {"url": {"type": "string"}}});
    let flow = fx
        .flow(
            "Call slowly",
            json!({
                "triggers": {"manual": {"type": "Request", "kind": "Button", "inputs": {"schema": schema}}},
                "actions": {
                    "Call": {"type": "Http", "inputs": {"method": "GET", "uri": "@{triggerBody()?['url']}"}},
                    "After_the_call": {"type": "Compose", "runAfter": {"Call": ["Succeeded"]}, "inputs": "done"},
                },
            }),
        )
        .await;
    let unshared = fx
        .flow(
            "Not shared",
            json!({
                "triggers": {"manual": {"type": "Request", "kind": "Button"}},
                "actions": {"Hello": {"type": "Compose", "inputs": 1}},
            }),
        )
        .await;
    let runner = fx.member("runner", &["Basic User"]).await;
    let stranger = fx.member("stranger", &["Basic User"]).await;
    let path = |rest: &str| format!("{}/{flow}{rest}", fx.flows());
    let (s, g) = fx
        .app
        .graph(
            Method::POST,
            &path("/runOnlyUsers"),
            Some(json!({"systemUserId": runner.user})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{g}");

    // The runner's list holds the flow they may run, marked so, with what they need to run it
    // and nothing more.
    let (s, l) = fx
        .app
        .call(&runner.token, Method::GET, &fx.flows(), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{l}");
    let listed = l["value"].as_array().unwrap();
    assert_eq!(listed.len(), 1, "{l}");
    let f = &listed[0];
    assert_eq!(f["id"], flow.as_str(), "{f}");
    assert_eq!(f["name"], "Call slowly");
    assert_eq!(f["access"], "runOnly");
    assert_eq!(f["state"], "on");
    assert_eq!(f["trigger"]["kind"], "manual");
    assert_eq!(f["trigger"]["inputsSchema"], schema, "{f}");
    assert_eq!(f["runnerConnections"], json!([]));
    for hidden in ["definition", "connectionReferences", "connectionNames"] {
        assert!(f.get(hidden).is_none(), "{hidden}: {f}");
    }
    assert!(!f.to_string().contains("After_the_call"), "{f}");
    // The flow by id: the same view.
    let (s, one) = fx
        .app
        .call(&runner.token, Method::GET, &path(""), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{one}");
    assert_eq!(&one, f);
    // The flow they may not run is neither listed nor found.
    let (s, e) = fx
        .app
        .call(
            &runner.token,
            Method::GET,
            &format!("{}/{unshared}", fx.flows()),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{e}");
    // The owner's list: both flows, whole, as their owner; a stranger's: nothing.
    let (s, l) = fx.app.graph(Method::GET, &fx.flows(), None).await;
    assert_eq!(s, StatusCode::OK, "{l}");
    let owned = l["value"].as_array().unwrap();
    assert_eq!(owned.len(), 2, "{l}");
    assert!(
        owned
            .iter()
            .all(|f| f["access"] == "owner" && f["definition"].is_object()),
        "{l}"
    );
    let (s, l) = fx
        .app
        .call(&stranger.token, Method::GET, &fx.flows(), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{l}");
    assert_eq!(l["value"], json!([]), "{l}");

    // The runner starts a run and cancels it while its call is in flight.
    let before = hits.load(Ordering::SeqCst);
    let (s, r) = fx
        .app
        .call(
            &runner.token,
            Method::POST,
            &path("/run"),
            Some(json!({"url": slow})),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{r}");
    let mine = r["id"].as_str().unwrap().to_string();
    for _ in 0..250 {
        if hits.load(Ordering::SeqCst) > before {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let cancel = |who: &Member, run: &str| {
        let (token, p) = (who.token.clone(), path(&format!("/runs/{run}/cancel")));
        let app = &fx.app;
        async move { app.call(&token, Method::POST, &p, None).await }
    };
    let (s, c) = cancel(&runner, &mine).await;
    assert_eq!(s, StatusCode::OK, "{c}");
    assert_eq!(c["status"], "Cancelled", "{c}");
    let (s, c) = cancel(&runner, &mine).await;
    assert_eq!(s, StatusCode::CONFLICT, "{c}");

    // The owner's run: the runner may not cancel it, nor may a stranger cancel the runner's.
    let (s, r) = fx
        .app
        .graph(Method::POST, &path("/run"), Some(json!({"url": slow})))
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{r}");
    let theirs = r["id"].as_str().unwrap().to_string();
    let (s, e) = cancel(&runner, &theirs).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{e}");
    assert_eq!(e["error"]["code"], "0x80040217", "{e}");
    assert!(error_message(&e).contains("runs they started"), "{e}");
    let (s, e) = cancel(&stranger, &mine).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{e}");
    let runs = fx.runs(&flow, 2).await;
    let status = |id: &str| {
        runs.iter()
            .find(|r| r["id"] == id)
            .map(|r| r["status"].clone())
            .unwrap()
    };
    assert_eq!(status(&theirs), "Succeeded", "{runs:?}");
    assert_eq!(status(&mine), "Cancelled", "{runs:?}");
    let run = fx.run(&flow, &json!({"id": mine})).await;
    assert!(
        !run["actions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["name"] == "After_the_call"),
        "the cancelled run went no further: {run}"
    );
    // The runner sees only their own run.
    let (s, l) = fx
        .app
        .call(&runner.token, Method::GET, &path("/runs"), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{l}");
    assert_eq!(l["value"].as_array().unwrap().len(), 1, "{l}");
    assert_eq!(l["value"][0]["id"], mine.as_str());

    // The owner cancels a run-only user's run.
    let (s, r) = fx
        .app
        .call(
            &runner.token,
            Method::POST,
            &path("/run"),
            Some(json!({"url": slow})),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{r}");
    let (s, c) = fx
        .app
        .graph(
            Method::POST,
            &path(&format!("/runs/{}/cancel", r["id"].as_str().unwrap())),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{c}");
    assert_eq!(c["status"], "Cancelled", "{c}");
    fx.app.stop().await;
}
