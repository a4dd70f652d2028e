//! Security roles through the Web API alone, as a Dataverse client manages them: look privileges
//! up by name, create a role, add, replace and remove its privileges, give it to a user and take
//! it back — each change in force on the very next request, audited, and refused to callers
//! without the privileges for it or reaching beyond their own.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(roles_privileges_and_assignments_through_the_web_api);

struct Env<'a> {
    app: &'a TestApp,
    web: WebApi<'a>,
}

impl<'a> std::ops::Deref for Env<'a> {
    type Target = WebApi<'a>;
    fn deref(&self) -> &WebApi<'a> {
        &self.web
    }
}

impl Env<'_> {
    async fn privilege_id(&self, token: &str, name: &str) -> String {
        let v = self
            .ok(
                token,
                Method::GET,
                &format!("privileges?$filter=name eq '{name}'&$select=privilegeid,name"),
                None,
            )
            .await;
        let list = v["value"].as_array().unwrap();
        assert_eq!(list.len(), 1, "{v}");
        list[0]["privilegeid"].as_str().unwrap().to_string()
    }

    async fn role(&self, token: &str, name: &str, unit: &str) -> String {
        let (s, v, loc) = self
            .call(
                token,
                Method::POST,
                "roles",
                Some(json!({"name": name, "businessunitid@odata.bind": format!("/businessunits({unit})")})),
            )
            .await;
        assert_eq!(s, StatusCode::NO_CONTENT, "{v}");
        id_of(&loc.unwrap())
    }

    async fn add(&self, token: &str, role: &str, privileges: Value) -> (StatusCode, Value) {
        let (s, v, _) = self
            .call(
                token,
                Method::POST,
                &format!("roles({role})/Microsoft.Dynamics.CRM.AddPrivilegesRole"),
                Some(json!({ "Privileges": privileges })),
            )
            .await;
        (s, v)
    }

    async fn accounts_status(&self, token: &str) -> StatusCode {
        self.call(token, Method::GET, "accounts?$select=name", None)
            .await
            .0
    }

    /// An application user with no role: (its system user id, its token).
    async fn robot(&self, name: &str, env_id: &str, scope: &str) -> (String, String) {
        let (object_id, app_id) = self.app.create_app(name, json!({})).await;
        let secret = self.app.add_secret(&object_id, json!({})).await;
        let (s, user) = self
            .app
            .graph(
                Method::POST,
                &format!("/v1.0/environments/{env_id}/addAppUser"),
                Some(json!({"servicePrincipalAppId": app_id})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{user}");
        let (s, t) = self
            .app
            .secret_token(&app_id, secret["secretText"].as_str().unwrap(), scope)
            .await;
        assert_eq!(s, StatusCode::OK, "{t}");
        (
            user["systemuserid"].as_str().unwrap().to_string(),
            t["access_token"].as_str().unwrap().to_string(),
        )
    }
}

fn id_of(location: &str) -> String {
    location
        .rsplit('(')
        .next()
        .unwrap()
        .trim_end_matches(')')
        .to_string()
}

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

async fn roles_privileges_and_assignments_through_the_web_api(backend: Backend) {
    let app = spawn_app(backend).await;
    let (env, api, admin) = app.environment("dev").await;
    let env_id = env["id"].as_str().unwrap().to_string();
    let scope = format!("{}/.default", env["url"].as_str().unwrap());
    let e = Env {
        app: &app,
        web: WebApi {
            http: &app.http,
            api,
        },
    };
    let root = e.ok(&admin, Method::GET, "WhoAmI", None).await["BusinessUnitId"]
        .as_str()
        .unwrap()
        .to_string();
    let (robot, robot_token) = e.robot("Robot", &env_id, &scope).await;
    // The robot's privileges are read (and cached) now: it holds none.
    let (s, v, _) = e.call(&robot_token, Method::GET, "accounts", None).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    missing(&v, "prvReadaccount");

    // Privileges are listed with stable ids, and found by name.
    let read_account = e.privilege_id(&admin, "prvReadaccount").await;
    assert_eq!(read_account, e.privilege_id(&admin, "prvReadaccount").await);
    let create_account = e.privilege_id(&admin, "prvCreateaccount").await;
    let write_role = e.privilege_id(&admin, "prvWriterole").await;
    let one = e
        .ok(
            &admin,
            Method::GET,
            &format!("privileges({write_role})"),
            None,
        )
        .await;
    assert_eq!(one["name"], "prvWriterole");
    assert_eq!(one["canbebasic"], false, "roles are organization-owned");
    assert_eq!(one["canbeglobal"], true);
    let all = e.ok(&admin, Method::GET, "privileges", None).await;
    assert!(all["value"].as_array().unwrap().len() >= 6 * 8);
    let (s, _, _) = e
        .call(
            &admin,
            Method::POST,
            "privileges",
            Some(json!({"name": "prvX"})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    // A role, then its privileges: by id with a depth name or number, clamped for
    // organization-owned tables; an unknown privilege is refused by name.
    let readers = e.role(&admin, "Readers", &root).await;
    let (s, v) = e
        .add(
            &admin,
            &readers,
            json!([
                {"PrivilegeId": read_account, "Depth": "Global", "BusinessUnitId": root},
                {"PrivilegeId": create_account, "Depth": 0},
                {"PrivilegeId": write_role, "Depth": "Basic", "PrivilegeName": "prvWriterole"},
            ]),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{v}");
    let unknown = "00000000-0000-0000-0000-00000000abcd";
    let (s, v) = e
        .add(
            &admin,
            &readers,
            json!([{"PrivilegeId": unknown, "Depth": "Global"}]),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        v["error"]["message"].as_str().unwrap().contains(unknown),
        "{v}"
    );
    let (s, v) = e
        .add(
            &admin,
            &readers,
            json!([{"PrivilegeId": read_account, "Depth": "Everywhere"}]),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let held = e
        .ok(
            &admin,
            Method::GET,
            &format!("RetrieveRolePrivilegesRole(RoleId={readers})"),
            None,
        )
        .await;
    let depth_of = |v: &Value, name: &str| {
        v["RolePrivileges"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["PrivilegeName"] == name)
            .map(|p| p["Depth"].as_str().unwrap().to_string())
    };
    assert_eq!(depth_of(&held, "prvReadaccount").as_deref(), Some("Global"));
    assert_eq!(
        depth_of(&held, "prvCreateaccount").as_deref(),
        Some("Basic")
    );
    assert_eq!(depth_of(&held, "prvWriterole").as_deref(), Some("Global"));
    let entry = held["RolePrivileges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["PrivilegeName"] == "prvReadaccount")
        .unwrap();
    assert_eq!(entry["PrivilegeId"], read_account.as_str());
    assert_eq!(entry["BusinessUnitId"], root.as_str());

    // Giving the role: in force on the robot's very next request, listed, audited.
    let (s, v, _) = e
        .call(
            &admin,
            Method::POST,
            &format!("systemusers({robot})/systemuserroles_association/$ref"),
            Some(json!({"@odata.id": format!("{}/roles({readers})", e.api)})),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{v}");
    assert_eq!(e.accounts_status(&robot_token).await, StatusCode::OK);
    let held = e
        .ok(
            &admin,
            Method::GET,
            &format!("systemusers({robot})/systemuserroles_association?$select=name"),
            None,
        )
        .await;
    let names: Vec<&str> = held["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Readers"]);
    let (s, v, _) = e
        .call(
            &admin,
            Method::POST,
            &format!("systemusers({robot})/systemuserroles_association/$ref"),
            Some(json!({"@odata.id": format!("/roles({readers})")})),
        )
        .await;
    assert_eq!(s, StatusCode::PRECONDITION_FAILED, "{v}");
    assert_eq!(v["error"]["code"], "0x80040237");

    // Replacing and removing privileges also take effect at once.
    let (s, v, _) = e
        .call(
            &admin,
            Method::POST,
            &format!("roles({readers})/Microsoft.Dynamics.CRM.ReplacePrivilegesRole"),
            Some(json!({"Privileges": [{"PrivilegeId": create_account, "Depth": "Basic"}]})),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{v}");
    assert_eq!(e.accounts_status(&robot_token).await, StatusCode::FORBIDDEN);
    let (s, v) = e
        .add(
            &admin,
            &readers,
            json!([{"PrivilegeId": read_account, "Depth": "Local"}]),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{v}");
    assert_eq!(e.accounts_status(&robot_token).await, StatusCode::OK);
    let (s, v, _) = e
        .call(
            &admin,
            Method::POST,
            &format!("roles({readers})/Microsoft.Dynamics.CRM.RemovePrivilegeRole"),
            Some(json!({"PrivilegeId": read_account})),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{v}");
    assert_eq!(e.accounts_status(&robot_token).await, StatusCode::FORBIDDEN);
    let changes = e
        .ok(
            &admin,
            Method::GET,
            &format!("audits?$filter=_objectid_value eq {readers}"),
            None,
        )
        .await;
    let privilege_updates = changes["value"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["action"] == 2 && a["attributemask"] == "privileges")
        .count();
    assert_eq!(privilege_updates, 4, "{changes}");

    // Without prvWriterole, prvWritesystemuser and prvAssignrole the robot changes nothing.
    let (s, v) = e
        .add(
            &robot_token,
            &readers,
            json!([{"PrivilegeId": read_account, "Depth": "Global"}]),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    missing(&v, "prvWriterole");
    let (s, v, _) = e
        .call(
            &robot_token,
            Method::POST,
            &format!("systemusers({robot})/systemuserroles_association/$ref"),
            Some(json!({"@odata.id": format!("roles({readers})")})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    missing(&v, "prvWritesystemuser");

    // A role editor may hand out only what it holds itself.
    let editors = e.role(&admin, "Role editors", &root).await;
    let mut grants = Vec::new();
    for name in [
        "prvReadrole",
        "prvWriterole",
        "prvAssignrole",
        "prvReadsystemuser",
        "prvWritesystemuser",
    ] {
        grants.push(json!({"PrivilegeName": name, "Depth": "Global"}));
    }
    grants.push(json!({"PrivilegeId": read_account, "Depth": "Basic"}));
    grants.push(json!({"PrivilegeId": create_account, "Depth": "Basic"}));
    let (s, v) = e.add(&admin, &editors, Value::Array(grants)).await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{v}");
    let (editor, editor_token) = e.robot("Editor", &env_id, &scope).await;
    let (s, v, _) = e
        .call(
            &admin,
            Method::POST,
            &format!("roles({editors})/systemuserroles_association/$ref"),
            Some(json!({"@odata.id": format!("{}/systemusers({editor})", e.api)})),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{v}");
    let (s, v) = e
        .add(
            &editor_token,
            &readers,
            json!([{"PrivilegeId": read_account, "Depth": "Global"}]),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    missing(&v, "prvReadaccount");
    let (s, v) = e
        .add(
            &editor_token,
            &readers,
            json!([{"PrivilegeId": read_account, "Depth": "Basic"}]),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{v}");
    let admins = e
        .ok(
            &admin,
            Method::GET,
            "roles?$filter=name eq 'System Administrator'&$select=roleid",
            None,
        )
        .await;
    let admin_role = admins["value"][0]["roleid"].as_str().unwrap().to_string();
    let (s, v, _) = e
        .call(
            &editor_token,
            Method::POST,
            &format!("systemusers({editor})/systemuserroles_association/$ref"),
            Some(json!({"@odata.id": format!("roles({admin_role})")})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    assert_eq!(v["error"]["code"], "0x80040220");
    // …but it may give the robot the role it just widened within its own reach.
    let (s, v, _) = e
        .call(
            &editor_token,
            Method::DELETE,
            &format!("systemusers({robot})/systemuserroles_association({readers})/$ref"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{v}");
    assert_eq!(e.accounts_status(&robot_token).await, StatusCode::FORBIDDEN);
    let (s, v, _) = e
        .call(
            &editor_token,
            Method::DELETE,
            &format!("systemusers({robot})/systemuserroles_association({readers})/$ref"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    let (s, v, _) = e
        .call(
            &editor_token,
            Method::POST,
            &format!("systemusers({robot})/systemuserroles_association/$ref"),
            Some(json!({"@odata.id": format!("roles({readers})")})),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{v}");
    assert_eq!(e.accounts_status(&robot_token).await, StatusCode::OK);
    // Unlinking by `$id` works as well.
    let id = format!("{}/roles({readers})", e.api);
    let (s, v, _) = e
        .call(
            &admin,
            Method::DELETE,
            &format!(
                "systemusers({robot})/systemuserroles_association/$ref?$id={}",
                id.replace(':', "%3A").replace('/', "%2F")
            ),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{v}");
    assert_eq!(e.accounts_status(&robot_token).await, StatusCode::FORBIDDEN);

    // Each link and unlink left its audit row: 55 Assign Role To User, 56 Remove Role From User.
    let history = e
        .ok(
            &admin,
            Method::GET,
            &format!("audits?$filter=_objectid_value eq {robot}"),
            None,
        )
        .await;
    let mut actions: Vec<i64> = history["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["action"].as_i64().unwrap())
        .filter(|a| *a == 55 || *a == 56)
        .collect();
    actions.sort();
    assert_eq!(actions, [55, 55, 56, 56], "{history}");
    let by_editor = history["value"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["_userid_value"] == editor.as_str())
        .count();
    assert_eq!(by_editor, 2, "{history}");
    app.stop().await;
}
