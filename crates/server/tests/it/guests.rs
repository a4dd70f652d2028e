//! Guests (Entra B2B into Dataverse): a user of tenant B invited into tenant A signs in at A with
//! their home password, gets A's token about the guest object, and acts in A's environment only
//! once licensed and given a role; home-tenant tokens, disabled or deleted accounts are refused.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;
use crate::on_both_backends;

const PASSWORD: &str = "correct horse battery";

/// Tenant B ("Contoso"): its id and an administrator Graph token there.
pub async fn tenant_b(app: &TestApp) -> (String, String) {
    let (s, t) = app
        .graph(
            Method::POST,
            "/v1.0/tenants",
            Some(json!({"displayName": "Contoso", "domains": ["contoso.example"]})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{t}");
    let id = t["tenant"]["id"].as_str().unwrap().to_string();
    let (s, tok) = app
        .token_at(
            &format!("{}/{id}/oauth2/v2.0/token", app.base),
            &[
                ("grant_type", "client_credentials"),
                (
                    "client_id",
                    t["administrator"]["clientId"].as_str().unwrap(),
                ),
                (
                    "client_secret",
                    t["administrator"]["clientSecret"].as_str().unwrap(),
                ),
                ("scope", "https://graph.microsoft.com/.default"),
            ],
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{tok}");
    (id, tok["access_token"].as_str().unwrap().to_string())
}

/// A public client (for the password grant) in the tenant of `admin`'s token.
async fn public_client(app: &TestApp, admin: &str) -> String {
    let (s, a) = app
        .call(
            admin,
            Method::POST,
            "/v1.0/applications",
            Some(json!({"displayName": "cli", "isFallbackPublicClient": true})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{a}");
    let app_id = a["appId"].as_str().unwrap().to_string();
    let (s, sp) = app
        .call(
            admin,
            Method::POST,
            "/v1.0/servicePrincipals",
            Some(json!({"appId": app_id})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{sp}");
    app_id
}

async fn password_token(
    app: &TestApp,
    tenant: &str,
    client: &str,
    username: &str,
    scope: &str,
) -> (StatusCode, Value) {
    app.token_at(
        &format!("{}/{tenant}/oauth2/v2.0/token", app.base),
        &[
            ("grant_type", "password"),
            ("client_id", client),
            ("username", username),
            ("password", PASSWORD),
            ("scope", scope),
        ],
    )
    .await
}

async fn web(app: &TestApp, token: &str, method: Method, url: String) -> (StatusCode, Value) {
    let (s, _, v) = web_call(&app.http, token, method, url, None, &[]).await;
    (s, v)
}

fn code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or_default()
}

fn message(v: &Value) -> &str {
    v["error"]["message"].as_str().unwrap_or_default()
}

async fn invite(app: &TestApp, body: Value) -> (StatusCode, Value) {
    app.graph(Method::POST, "/v1.0/invitations", Some(body))
        .await
}

on_both_backends!(guests_sign_in_at_the_inviting_tenant_and_need_license_and_role);

async fn guests_sign_in_at_the_inviting_tenant_and_need_license_and_role(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant_a = app.tenant();
    let (tenant_b, admin_b) = tenant_b(&app).await;
    let (s, home) = app
        .call(
            &admin_b,
            Method::POST,
            "/v1.0/users",
            Some(json!({"displayName": "Alice", "userPrincipalName": "alice@contoso.example", "passwordProfile": {"password": PASSWORD}})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{home}");
    let home_id = home["id"].as_str().unwrap().to_string();

    // Invitations: only users of another tenant here; Keyway sends no mail.
    let (s, e) = invite(&app, json!({"invitedUserEmailAddress": "nobody@nowhere.example", "inviteRedirectUrl": "https://myapps.example"})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    assert!(message(&e).contains("no mail"), "{e}");
    let (s, e) = invite(&app, json!({"invitedUserEmailAddress": "alice@contoso.example", "inviteRedirectUrl": "https://myapps.example", "sendInvitationMessage": true})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    let (s, e) = invite(
        &app,
        json!({"invitedUserEmailAddress": "alice@contoso.example"}),
    )
    .await;
    assert_eq!(
        s,
        StatusCode::BAD_REQUEST,
        "inviteRedirectUrl is required: {e}"
    );
    let (s, inv) = invite(&app, json!({"invitedUserEmailAddress": "Alice@Contoso.example", "inviteRedirectUrl": "https://myapps.example", "sendInvitationMessage": false, "invitedUserDisplayName": "Alice (Contoso)"})).await;
    assert_eq!(s, StatusCode::CREATED, "{inv}");
    assert_eq!(inv["status"], "Completed");
    assert_eq!(inv["invitedUserEmailAddress"], "alice@contoso.example");
    assert_eq!(inv["invitedUserType"], "Guest");
    assert_eq!(inv["inviteRedeemUrl"], "https://myapps.example");
    let guest_id = inv["invitedUser"]["id"].as_str().unwrap().to_string();
    let (s, again) = invite(&app, json!({"invitedUserEmailAddress": "alice@contoso.example", "inviteRedirectUrl": "https://myapps.example"})).await;
    assert_eq!(s, StatusCode::CREATED, "{again}");
    assert_eq!(
        again["invitedUser"]["id"], guest_id,
        "inviting again answers with the same guest"
    );
    let (s, guest) = app
        .graph(Method::GET, &format!("/v1.0/users/{guest_id}"), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{guest}");
    assert_eq!(guest["userType"], "Guest");
    assert_eq!(guest["creationType"], "Invitation");
    assert_eq!(guest["externalUserState"], "Accepted");
    assert_eq!(guest["mail"], "alice@contoso.example");
    assert_eq!(guest["displayName"], "Alice (Contoso)");
    assert_eq!(
        guest["userPrincipalName"],
        "alice_contoso.example#EXT#@keyway.local"
    );
    let (s, guests) = app
        .graph(
            Method::GET,
            "/v1.0/users?$filter=userType%20eq%20'Guest'",
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{guests}");
    let ids: Vec<&str> = guests["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![guest_id.as_str()]);
    let (s, e) = app
        .graph(
            Method::PATCH,
            &format!("/v1.0/users/{guest_id}"),
            Some(json!({"passwordProfile": {"password": "another long one"}})),
        )
        .await;
    assert_eq!(
        s,
        StatusCode::BAD_REQUEST,
        "a guest has no password here: {e}"
    );

    // The guest signs in at A with the home password; the token is A's, about the guest.
    let (env, api, admin) = app.environment("dev").await;
    let env_id = env["id"].as_str().unwrap().to_string();
    let url = env["url"].as_str().unwrap().to_string();
    let scope = format!("{url}/.default");
    let client_a = public_client(&app, &app.admin_token().await).await;
    let (s, t) = password_token(&app, &tenant_a, &client_a, "alice@contoso.example", &scope).await;
    assert_eq!(s, StatusCode::OK, "{t}");
    let token = t["access_token"].as_str().unwrap().to_string();
    let c = claims(&token);
    assert_eq!(c["iss"], format!("{}/{tenant_a}/v2.0", app.base));
    assert_eq!(c["tid"], tenant_a);
    assert_eq!(c["oid"], guest_id);
    assert_eq!(c["idp"], format!("{}/{tenant_b}/v2.0", app.base));
    assert_eq!(c["acct"], 1);
    assert_eq!(c["aud"], url);
    assert!(c.get("upn").is_none(), "Entra gives guests no upn: {c}");
    // Also by the guest's own #EXT# name.
    let (s, t2) = password_token(
        &app,
        &tenant_a,
        &client_a,
        "alice_contoso.example#EXT#@keyway.local",
        &scope,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{t2}");
    assert_eq!(
        claims(t2["access_token"].as_str().unwrap())["oid"],
        guest_id
    );
    let (s, e) = app
        .token_at(
            &format!("{}/{tenant_a}/oauth2/v2.0/token", app.base),
            &[
                ("grant_type", "password"),
                ("client_id", &client_a),
                ("username", "alice@contoso.example"),
                ("password", "wrong password"),
                ("scope", &scope),
            ],
        )
        .await;
    assert_eq!((s, aadsts(&e)), (StatusCode::BAD_REQUEST, 50126));

    // Not yet a system user, then one: a guest, unlicensed, refused on every call.
    let (s, e) = web(&app, &token, Method::GET, format!("{api}/WhoAmI")).await;
    assert_eq!((s, code(&e)), (StatusCode::FORBIDDEN, "0x80072560"), "{e}");
    let (s, su) = app
        .graph(
            Method::POST,
            &format!("/v1.0/environments/{env_id}/addUser"),
            Some(json!({"userId": guest_id})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{su}");
    assert_eq!(
        (su["isguest"].as_bool(), su["islicensed"].as_bool()),
        (Some(true), Some(false))
    );
    let sid = su["systemuserid"].as_str().unwrap().to_string();
    let (s, row) = web(
        &app,
        &admin,
        Method::GET,
        format!("{api}/systemusers({sid})?$select=isguest,islicensed,azureactivedirectoryobjectid,internalemailaddress"),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{row}");
    assert_eq!(row["isguest"], true);
    assert_eq!(row["islicensed"], false);
    assert_eq!(row["azureactivedirectoryobjectid"], guest_id);
    assert_eq!(row["internalemailaddress"], "alice@contoso.example");
    for path in ["WhoAmI", "accounts"] {
        let (s, e) = web(&app, &token, Method::GET, format!("{api}/{path}")).await;
        assert_eq!(
            (s, code(&e)),
            (StatusCode::FORBIDDEN, "0x8004d24b"),
            "{path}: {e}"
        );
        assert!(message(&e).contains("keyway env user license"), "{e}");
    }

    // Licensed, but without a role: every call names the missing privilege.
    let (s, e) = app
        .graph(
            Method::POST,
            &format!("/v1.0/environments/{env_id}/users/{sid}/license"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{e}");
    for path in ["WhoAmI", "accounts"] {
        let (s, e) = web(&app, &token, Method::GET, format!("{api}/{path}")).await;
        assert_eq!(
            (s, code(&e)),
            (StatusCode::FORBIDDEN, "0x80040220"),
            "{path}: {e}"
        );
        assert!(message(&e).contains("prvReadOrganization"), "{e}");
    }

    // With a role it works, and the audit names the guest's system user.
    app.assign_role(&env_id, "Basic User", &sid).await;
    let (s, who) = web(&app, &token, Method::GET, format!("{api}/WhoAmI")).await;
    assert_eq!(s, StatusCode::OK, "{who}");
    assert_eq!(who["UserId"], sid);
    let (s, loc, e) = web_call(
        &app.http,
        &token,
        Method::POST,
        format!("{api}/accounts"),
        Some(json!({"name": "Contoso deal"})),
        &[],
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{e}");
    let account = loc
        .unwrap()
        .rsplit('(')
        .next()
        .unwrap()
        .trim_end_matches(')')
        .to_string();
    let (s, row) = web(
        &app,
        &token,
        Method::GET,
        format!("{api}/accounts({account})"),
    )
    .await;
    assert_eq!(
        (s, row["_ownerid_value"].as_str()),
        (StatusCode::OK, Some(sid.as_str()))
    );
    let (s, audits) = web(
        &app,
        &admin,
        Method::GET,
        format!("{api}/audits?$filter=_objectid_value eq {account}"),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{audits}");
    let rows = audits["value"].as_array().unwrap();
    assert!(!rows.is_empty(), "{audits}");
    assert!(rows.iter().all(|r| r["_userid_value"] == sid), "{audits}");

    // The license can be taken away, and given back by a System Administrator's PATCH.
    let (s, _) = app
        .graph(
            Method::DELETE,
            &format!("/v1.0/environments/{env_id}/users/{sid}/license"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, e) = web(&app, &token, Method::GET, format!("{api}/WhoAmI")).await;
    assert_eq!((s, code(&e)), (StatusCode::FORBIDDEN, "0x8004d24b"), "{e}");
    let (s, _, e) = web_call(
        &app.http,
        &admin,
        Method::PATCH,
        format!("{api}/systemusers({sid})"),
        Some(json!({"islicensed": true})),
        &[],
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{e}");
    let (s, _) = web(&app, &token, Method::GET, format!("{api}/WhoAmI")).await;
    assert_eq!(s, StatusCode::OK);

    // The guest's home-tenant token (Entra issues Dataverse tokens in any tenant) is refused by
    // the environment, naming both tenants.
    let client_b = public_client(&app, &admin_b).await;
    let (s, t) = password_token(&app, &tenant_b, &client_b, "alice@contoso.example", &scope).await;
    assert_eq!(s, StatusCode::OK, "{t}");
    let home_token = t["access_token"].as_str().unwrap().to_string();
    assert_eq!(claims(&home_token)["tid"], tenant_b);
    assert_eq!(claims(&home_token)["oid"], home_id);
    let (s, e) = web(&app, &home_token, Method::GET, format!("{api}/WhoAmI")).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{e}");
    assert!(
        message(&e).contains(&tenant_b) && message(&e).contains(&tenant_a),
        "{e}"
    );

    // A disabled home account cannot sign in as the guest.
    let disable = |enabled: bool| {
        let (app, admin_b, home_id) = (&app, admin_b.clone(), home_id.clone());
        async move {
            let (s, e) = app
                .call(
                    &admin_b,
                    Method::PATCH,
                    &format!("/v1.0/users/{home_id}"),
                    Some(json!({"accountEnabled": enabled})),
                )
                .await;
            assert_eq!(s, StatusCode::NO_CONTENT, "{e}");
        }
    };
    disable(false).await;
    let (s, e) = password_token(&app, &tenant_a, &client_a, "alice@contoso.example", &scope).await;
    assert_eq!((s, aadsts(&e)), (StatusCode::BAD_REQUEST, 50057));
    disable(true).await;

    // Removing the guest object stops tokens at once.
    let (s, _) = app
        .graph(Method::DELETE, &format!("/v1.0/users/{guest_id}"), None)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, e) = password_token(&app, &tenant_a, &client_a, "alice@contoso.example", &scope).await;
    assert_eq!((s, aadsts(&e)), (StatusCode::BAD_REQUEST, 50020), "{e}");
    let (s, e) = password_token(
        &app,
        &tenant_a,
        &client_a,
        "alice_contoso.example#EXT#@keyway.local",
        &scope,
    )
    .await;
    assert_eq!((s, aadsts(&e)), (StatusCode::BAD_REQUEST, 50126), "{e}");

    // Invited again, then the home account is deleted: the guest is an unknown user.
    let (s, inv) = invite(&app, json!({"invitedUserEmailAddress": "alice@contoso.example", "inviteRedirectUrl": "https://myapps.example"})).await;
    assert_eq!(s, StatusCode::CREATED, "{inv}");
    assert_ne!(inv["invitedUser"]["id"], guest_id, "a new guest object");
    let (s, t) = password_token(&app, &tenant_a, &client_a, "alice@contoso.example", &scope).await;
    assert_eq!(s, StatusCode::OK, "{t}");
    let (s, _) = app
        .call(
            &admin_b,
            Method::DELETE,
            &format!("/v1.0/users/{home_id}"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    for name in [
        "alice@contoso.example",
        "alice_contoso.example#EXT#@keyway.local",
    ] {
        let (s, e) = password_token(&app, &tenant_a, &client_a, name, &scope).await;
        assert_eq!(
            (s, aadsts(&e)),
            (StatusCode::BAD_REQUEST, 50126),
            "{name}: {e}"
        );
    }
    app.stop().await;
}

on_both_backends!(members_cannot_be_invited_and_invitations_need_the_user_role);

async fn members_cannot_be_invited_and_invitations_need_the_user_role(backend: Backend) {
    let app = spawn_app(backend).await;
    let (s, _) = app
        .graph(Method::POST, "/v1.0/users", Some(json!({"displayName": "Bob", "userPrincipalName": "bob@keyway.local", "passwordProfile": {"password": PASSWORD}})))
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, e) = invite(&app, json!({"invitedUserEmailAddress": "bob@keyway.local", "inviteRedirectUrl": "https://myapps.example"})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    assert!(message(&e).contains("already a user of this tenant"), "{e}");
    // An app without User.ReadWrite.All may not invite.
    let (object_id, app_id) = app.create_app("reader", json!({})).await;
    let secret = app.add_secret(&object_id, json!({})).await;
    let (_, t) = app
        .secret_token(
            &app_id,
            secret["secretText"].as_str().unwrap(),
            "https://graph.microsoft.com/.default",
        )
        .await;
    let (s, e) = app
        .call(
            t["access_token"].as_str().unwrap(),
            Method::POST,
            "/v1.0/invitations",
            Some(json!({"invitedUserEmailAddress": "bob@keyway.local", "inviteRedirectUrl": "https://myapps.example"})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{e}");
    app.stop().await;
}
