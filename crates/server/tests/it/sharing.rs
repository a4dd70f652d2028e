//! Sharing, teams and assignment: a shared row is reachable with exactly the rights shared and
//! only with the privilege itself; nobody shares or hands out what they lack; team members enjoy
//! the team's rows, shares and roles; assigning a row moves it to the new owner's unit; every
//! change is in the audit history.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(sharing_teams_and_assignment);

struct Env<'a> {
    app: &'a TestApp,
    env_id: String,
    web: WebApi<'a>,
    url: String,
}

impl<'a> std::ops::Deref for Env<'a> {
    type Target = WebApi<'a>;
    fn deref(&self) -> &WebApi<'a> {
        &self.web
    }
}

impl Env<'_> {
    async fn role(&self, name: &str, privileges: &[&str]) -> String {
        let (s, r) = self
            .app
            .graph(
                Method::POST,
                &format!("/v1.0/environments/{}/roles", self.env_id),
                Some(json!({"name": name, "privileges": privileges})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{r}");
        r["roleid"].as_str().unwrap().to_string()
    }

    /// An application user in `unit` holding `roles`: (systemuserid, token).
    async fn user(&self, name: &str, unit: &str, roles: &[&str]) -> (String, String) {
        let (oid, cid) = self.app.create_app(name, json!({})).await;
        let secret = self.app.add_secret(&oid, json!({})).await["secretText"]
            .as_str()
            .unwrap()
            .to_string();
        let (s, u) = self
            .app
            .graph(
                Method::POST,
                &format!("/v1.0/environments/{}/addAppUser", self.env_id),
                Some(json!({"servicePrincipalAppId": cid, "businessUnitId": unit, "roles": roles})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{u}");
        let (s, t) = self
            .app
            .secret_token(&cid, &secret, &format!("{}/.default", self.url))
            .await;
        assert_eq!(s, StatusCode::OK, "{t}");
        (
            u["systemuserid"].as_str().unwrap().to_string(),
            t["access_token"].as_str().unwrap().to_string(),
        )
    }
}

fn missing(s: StatusCode, v: &Value, privilege: &str) {
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    assert_eq!(v["error"]["code"], "0x80040220", "{v}");
    let m = v["error"]["message"].as_str().unwrap();
    assert!(m.contains(privilege), "wanted {privilege}: {v}");
}

fn share(account: &str, to: Value, mask: &str) -> Value {
    json!({
        "Target": {"@odata.type": "Microsoft.Dynamics.CRM.account", "accountid": account},
        "PrincipalAccess": {"Principal": to, "AccessMask": mask},
    })
}

fn user_ref(id: &str) -> Value {
    json!({"@odata.type": "Microsoft.Dynamics.CRM.systemuser", "systemuserid": id})
}

fn team_ref(id: &str) -> Value {
    json!({"@odata.type": "Microsoft.Dynamics.CRM.team", "teamid": id})
}

async fn sharing_teams_and_assignment(backend: Backend) {
    let app = spawn_app(backend).await;
    let (env, api, admin) = app.environment("dev").await;
    let e = Env {
        app: &app,
        env_id: env["id"].as_str().unwrap().to_string(),
        url: env["url"].as_str().unwrap().to_string(),
        web: WebApi {
            http: &app.http,
            api,
        },
    };
    let root = e.ok(&admin, Method::GET, "WhoAmI", None).await["BusinessUnitId"]
        .as_str()
        .unwrap()
        .to_string();
    let bu = |name: &str| json!({"name": name, "parentbusinessunitid@odata.bind": format!("/businessunits({root})")});
    let a = e.create(&admin, "businessunits", bu("A")).await;
    let b = e.create(&admin, "businessunits", bu("B")).await;
    e.role(
        "Owner of accounts",
        &[
            "prvCreateaccount:User",
            "prvReadaccount:User",
            "prvWriteaccount:User",
            "prvShareaccount:User",
            "prvAssignaccount:User",
        ],
    )
    .await;
    e.role(
        "Reader and writer",
        &["prvReadaccount:User", "prvWriteaccount:User"],
    )
    .await;
    let org_reader = e.role("Org reader", &["prvReadaccount:Organization"]).await;
    let (alice, alice_t) = e.user("alice", &a, &["Owner of accounts"]).await;
    let (bob, bob_t) = e.user("bob", &b, &["Reader and writer"]).await;

    let x = e.create(&alice_t, "accounts", json!({"name": "X"})).await;
    let xpath = format!("accounts({x})");
    let (s, v, _) = e.call(&bob_t, Method::GET, &xpath, None).await;
    missing(s, &v, "prvReadaccount");
    assert!(e.names(&bob_t).await.is_empty());

    // Shared to read: bob reads X (by id and in lists) but may not write it.
    e.ok(
        &alice_t,
        Method::POST,
        "GrantAccess",
        Some(share(&x, user_ref(&bob), "ReadAccess")),
    )
    .await;
    assert_eq!(e.ok(&bob_t, Method::GET, &xpath, None).await["name"], "X");
    assert_eq!(e.names(&bob_t).await, vec!["X"]);
    let (s, v, _) = e
        .call(
            &bob_t,
            Method::PATCH,
            &xpath,
            Some(json!({"name": "bob was here"})),
        )
        .await;
    missing(s, &v, "prvWriteaccount");

    // GrantAccess adds rights; nobody shares a right they lack (alice has no Delete).
    e.ok(
        &alice_t,
        Method::POST,
        "GrantAccess",
        Some(share(&x, user_ref(&bob), "WriteAccess")),
    )
    .await;
    let (s, v, _) = e
        .call(&bob_t, Method::PATCH, &xpath, Some(json!({"name": "X2"})))
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{v}");
    let (s, v, _) = e
        .call(
            &alice_t,
            Method::POST,
            "GrantAccess",
            Some(share(&x, user_ref(&bob), "DeleteAccess")),
        )
        .await;
    missing(s, &v, "prvDeleteaccount");
    let who = e
        .ok(
            &alice_t,
            Method::GET,
            &format!("RetrieveSharedPrincipalsAndAccess(Target=@tid)?@tid={{'@odata.id':'accounts({x})'}}"),
            None,
        )
        .await;
    assert_eq!(
        who["PrincipalAccesses"][0]["AccessMask"], "ReadAccess, WriteAccess",
        "{who}"
    );
    assert_eq!(
        who["PrincipalAccesses"][0]["Principal"]["ownerid"],
        bob.as_str()
    );

    // ModifyAccess replaces; RevokeAccess removes; bob (no Share privilege) cannot share.
    e.ok(
        &alice_t,
        Method::POST,
        "ModifyAccess",
        Some(share(&x, user_ref(&bob), "ReadAccess")),
    )
    .await;
    let (s, v, _) = e
        .call(&bob_t, Method::PATCH, &xpath, Some(json!({"name": "X3"})))
        .await;
    missing(s, &v, "prvWriteaccount");
    let (s, v, _) = e
        .call(
            &bob_t,
            Method::POST,
            "GrantAccess",
            Some(share(&x, user_ref(&bob), "WriteAccess")),
        )
        .await;
    missing(s, &v, "prvShareaccount");
    e.ok(
        &alice_t,
        Method::POST,
        "RevokeAccess",
        Some(json!({"Target": {"@odata.id": format!("accounts({x})")}, "Revokee": user_ref(&bob)})),
    )
    .await;
    let (s, v, _) = e.call(&bob_t, Method::GET, &xpath, None).await;
    missing(s, &v, "prvReadaccount");

    // Bad requests change nothing and say why.
    for (body, why) in [
        (share(&x, user_ref(&bob), "FlyAccess"), "FlyAccess"),
        (
            share(
                &x,
                json!({"@odata.type": "Microsoft.Dynamics.CRM.account", "accountid": x}),
                "ReadAccess",
            ),
            "systemuser or a team",
        ),
        (
            json!({"Target": {"@odata.type": "Microsoft.Dynamics.CRM.account"}}),
            "accountid",
        ),
    ] {
        let (s, v, _) = e
            .call(&alice_t, Method::POST, "GrantAccess", Some(body))
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
        assert!(v["error"]["message"].as_str().unwrap().contains(why), "{v}");
    }
    let (s, v, _) = e
        .call(
            &alice_t,
            Method::POST,
            "GrantAccess",
            Some(share(&x, user_ref(&x), "ReadAccess")),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "an unknown user: {v}");

    // Teams: members see what is shared with the team and hold the team's roles.
    let team = e
        .create(
            &admin,
            "teams",
            json!({"name": "Support", "teamtype": 0, "businessunitid@odata.bind": format!("/businessunits({b})")}),
        )
        .await;
    let (s, v, _) = e
        .call(
            &alice_t,
            Method::POST,
            &format!("teams({team})/Microsoft.Dynamics.CRM.AddMembersTeam"),
            Some(json!({"Members": [{"systemuserid": alice}]})),
        )
        .await;
    missing(s, &v, "prvWriteteam");
    e.ok(
        &admin,
        Method::POST,
        &format!("teams({team})/Microsoft.Dynamics.CRM.AddMembersTeam"),
        Some(json!({"Members": [{"@odata.type": "Microsoft.Dynamics.CRM.systemuser", "systemuserid": bob}]})),
    )
    .await;
    let members = e
        .ok(
            &admin,
            Method::GET,
            &format!("teams({team})/teammembership_association"),
            None,
        )
        .await;
    assert_eq!(
        members["value"][0]["systemuserid"],
        bob.as_str(),
        "{members}"
    );
    e.ok(
        &alice_t,
        Method::POST,
        "GrantAccess",
        Some(share(&x, team_ref(&team), "ReadAccess")),
    )
    .await;
    assert_eq!(e.names(&bob_t).await, vec!["X2"]);
    e.ok(
        &alice_t,
        Method::POST,
        "RevokeAccess",
        Some(json!({"Target": {"@odata.type": "Microsoft.Dynamics.CRM.account", "accountid": x}, "Revokee": team_ref(&team)})),
    )
    .await;
    assert!(e.names(&bob_t).await.is_empty());

    let y = e.create(&admin, "accounts", json!({"name": "Y"})).await;
    e.ok(
        &admin,
        Method::POST,
        &format!("teams({team})/teamroles_association/$ref"),
        Some(json!({"@odata.id": format!("{}/roles({org_reader})", e.api)})),
    )
    .await;
    assert_eq!(
        e.names(&bob_t).await,
        vec!["X2", "Y"],
        "the team's role is bob's"
    );
    e.ok(
        &admin,
        Method::DELETE,
        &format!("teams({team})/teamroles_association({org_reader})/$ref"),
        None,
    )
    .await;
    assert!(e.names(&bob_t).await.is_empty(), "and gone with it");

    // Nobody hands out a role deeper than they hold: a team manager without Organization read.
    e.role(
        "Team manager",
        &[
            "prvWriteteam:Organization",
            "prvReadteam:Organization",
            "prvReadrole:Organization",
        ],
    )
    .await;
    let (_, carol_t) = e.user("carol", &a, &["Team manager"]).await;
    let (s, v, _) = e
        .call(
            &carol_t,
            Method::POST,
            &format!("teams({team})/teamroles_association/$ref"),
            Some(json!({"@odata.id": format!("roles({org_reader})")})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("prvReadaccount"),
        "{v}"
    );
    let (s, v, _) = e
        .call(
            &carol_t,
            Method::POST,
            &format!("teams({team})/teammembership_association/$ref"),
            Some(json!({"@odata.id": format!("systemusers({alice})")})),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "carol may manage members: {v}");

    // Assign: the owner (with Assign) gives X to bob; it moves to bob's unit, alice loses it.
    let (s, v, _) = e
        .call(
            &alice_t,
            Method::PATCH,
            &xpath,
            Some(json!({"ownerid@odata.bind": format!("/systemusers({bob})")})),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{v}");
    let row = e.ok(&bob_t, Method::GET, &xpath, None).await;
    assert_eq!(row["_ownerid_value"], bob.as_str());
    assert_eq!(row["_owningbusinessunit_value"], b.as_str());
    let (s, v, _) = e.call(&alice_t, Method::GET, &xpath, None).await;
    missing(s, &v, "prvReadaccount");
    // bob holds no Assign privilege.
    let (s, v, _) = e
        .call(
            &bob_t,
            Method::PATCH,
            &xpath,
            Some(json!({"ownerid@odata.bind": format!("/systemusers({alice})")})),
        )
        .await;
    missing(s, &v, "prvAssignaccount");
    let (s, v, _) = e
        .call(&bob_t, Method::POST, "accounts", Some(json!({"name": "for alice", "ownerid@odata.bind": format!("/systemusers({alice})")})))
        .await;
    missing(s, &v, "prvCreateaccount");
    let for_bob = e
        .create(
            &alice_t,
            "accounts",
            json!({"name": "for bob", "ownerid@odata.bind": format!("/systemusers({bob})")}),
        )
        .await;
    let row = e
        .ok(&bob_t, Method::GET, &format!("accounts({for_bob})"), None)
        .await;
    assert_eq!(
        (
            row["_ownerid_value"].as_str(),
            row["_owningbusinessunit_value"].as_str()
        ),
        (Some(bob.as_str()), Some(b.as_str()))
    );
    let (s, v, _) = e
        .call(
            &admin,
            Method::PATCH,
            &xpath,
            Some(json!({"ownerid@odata.bind": format!("/systemusers({y})")})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "an owner that is no user: {v}");

    // A row owned by a team is its members' own: alice (now a member) writes Y once it is the team's.
    let (s, v, _) = e
        .call(
            &admin,
            Method::PATCH,
            &format!("accounts({y})"),
            Some(json!({"ownerid@odata.bind": format!("/teams({team})")})),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{v}");
    let (s, v, _) = e
        .call(
            &alice_t,
            Method::PATCH,
            &format!("accounts({y})"),
            Some(json!({"name": "Y by the team"})),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{v}");

    // The audit history holds the shares, the assignment (owner before and after) and who did it.
    let history = e
        .ok(
            &admin,
            Method::GET,
            &format!("RetrieveRecordChangeHistory(Target=@target)?@target={{'@odata.id':'accounts({x})'}}"),
            None,
        )
        .await;
    let details = history["AuditDetailCollection"]["AuditDetails"]
        .as_array()
        .unwrap();
    let actions: Vec<i64> = details
        .iter()
        .map(|d| d["AuditRecord"]["action"].as_i64().unwrap())
        .collect();
    for want in [1, 2, 13, 14, 48, 49] {
        assert!(actions.contains(&want), "action {want} in {actions:?}");
    }
    let assign = details
        .iter()
        .find(|d| d["AuditRecord"]["action"] == 13)
        .unwrap();
    assert_eq!(
        assign["AuditRecord"]["_userid_value"],
        alice.as_str(),
        "{assign}"
    );
    assert_eq!(assign["OldValue"]["ownerid"], alice.as_str(), "{assign}");
    assert_eq!(assign["NewValue"]["ownerid"], bob.as_str(), "{assign}");
    assert_eq!(
        assign["NewValue"]["owningbusinessunit"],
        b.as_str(),
        "{assign}"
    );
    let (s, v) = app
        .graph(
            Method::GET,
            &format!("/v1.0/environments/{}/audit/verify", e.env_id),
            None,
        )
        .await;
    assert_eq!(
        (s, v["intact"].as_bool()),
        (StatusCode::OK, Some(true)),
        "{v}"
    );
}
