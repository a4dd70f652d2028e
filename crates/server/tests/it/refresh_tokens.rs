//! Refresh tokens, as Entra v2.0 issues them: the password grant returns one for
//! `offline_access`; `grant_type=refresh_token` returns an access token (for the same or another
//! resource) and a new refresh token; a rotated-out token used again revokes its sign-in; tokens
//! expire after 90 days unused (at most a year after the sign-in); revokeSignInSessions, a
//! disabled account or a new password end them. A Dataverse connection that holds a user's
//! refresh token acts as that user and stores each rotated token.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use time::Duration;

use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(
    refresh_tokens_rotate_and_detect_reuse,
    refresh_tokens_expire_and_are_revoked,
    delegated_connection_acts_as_the_user
);

const PASSWORD: &str = "correct horse battery";
const GRAPH: &str = "https://graph.microsoft.com/.default";

/// A member of the server's tenant: (object id, user principal name).
pub(crate) async fn user(app: &TestApp, alias: &str) -> (String, String) {
    let upn = format!("{alias}@keyway.local");
    let (s, u) = app
        .graph(
            Method::POST,
            "/v1.0/users",
            Some(json!({"displayName": alias, "userPrincipalName": upn, "passwordProfile": {"password": PASSWORD}})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{u}");
    (u["id"].as_str().unwrap().to_string(), upn)
}

/// A public client application (with its service principal): its appId.
pub(crate) async fn public_client(app: &TestApp, name: &str) -> String {
    app.create_app(name, json!({"isFallbackPublicClient": true}))
        .await
        .1
}

pub(crate) async fn sign_in(
    app: &TestApp,
    client: &str,
    upn: &str,
    scope: &str,
) -> (StatusCode, Value) {
    app.token(&[
        ("grant_type", "password"),
        ("client_id", client),
        ("username", upn),
        ("password", PASSWORD),
        ("scope", scope),
        ("client_info", "1"),
    ])
    .await
}

async fn refresh(app: &TestApp, client: &str, rt: &str, scope: &str) -> (StatusCode, Value) {
    app.token(&[
        ("grant_type", "refresh_token"),
        ("client_id", client),
        ("refresh_token", rt),
        ("scope", scope),
    ])
    .await
}

pub(crate) fn rt(v: &Value) -> String {
    v["refresh_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no refresh token in {v}"))
        .to_string()
}

fn description(v: &Value) -> &str {
    v["error_description"].as_str().unwrap_or_default()
}

async fn refresh_tokens_rotate_and_detect_reuse(backend: Backend) {
    let app = spawn_app(backend).await;
    let (alice_id, alice) = user(&app, "alice").await;
    let client = public_client(&app, "cli").await;
    let offline = format!("{GRAPH} offline_access openid profile");

    // No offline_access, no refresh token.
    let (s, t) = sign_in(&app, &client, &alice, GRAPH).await;
    assert_eq!(s, StatusCode::OK, "{t}");
    assert!(t.get("refresh_token").is_none(), "{t}");

    // With it (msal always adds it): a refresh token, the ID token and client_info msal keys on.
    let (s, t) = sign_in(&app, &client, &alice, &offline).await;
    assert_eq!(s, StatusCode::OK, "{t}");
    let rt0 = rt(&t);
    assert_eq!(rt0.len(), 43, "32 random bytes, base64url");
    let id = claims(t["id_token"].as_str().unwrap());
    assert_eq!(id["aud"], client.as_str());
    assert_eq!(id["oid"], alice_id.as_str());
    assert_eq!(id["preferred_username"], alice.as_str());
    use base64::Engine;
    let info: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(t["client_info"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(info, json!({"uid": alice_id, "utid": app.tenant()}));

    // Redeemed for another resource: an environment's token, and a new refresh token.
    let (env, api, _) = app.environment("dev").await;
    let env_scope = format!("{}/.default", env["url"].as_str().unwrap());
    let (s, t) = refresh(&app, &client, &rt0, &env_scope).await;
    assert_eq!(s, StatusCode::OK, "{t}");
    let rt1 = rt(&t);
    assert_ne!(rt1, rt0, "rotated");
    let c = claims(t["access_token"].as_str().unwrap());
    assert_eq!(c["aud"], env["url"]);
    assert_eq!(c["oid"], alice_id.as_str());
    assert_eq!(c["upn"], alice.as_str());
    assert_eq!(c["idtyp"], "user");
    assert_eq!(c["appidacr"], "0");
    assert!(t.get("id_token").is_none(), "no openid asked: {t}");
    let _ = api;

    // The rotated-out token again at once (two nodes racing): refused, the sign-in lives on.
    let (s, e) = refresh(&app, &client, &rt0, GRAPH).await;
    assert_eq!((s, aadsts(&e)), (StatusCode::BAD_REQUEST, 70008), "{e}");
    assert_eq!(e["error"], "invalid_grant");
    assert!(!description(&e).contains("revoked every"), "{e}");
    let (s, t) = refresh(&app, &client, &rt1, GRAPH).await;
    assert_eq!(s, StatusCode::OK, "{t}");
    let rt2 = rt(&t);

    // Later, a rotated-out token is theft: the whole sign-in is revoked, the newest token too.
    app.clock.advance(Duration::minutes(1));
    let (s, e) = refresh(&app, &client, &rt1, GRAPH).await;
    assert_eq!((s, aadsts(&e)), (StatusCode::BAD_REQUEST, 70008), "{e}");
    assert!(
        description(&e).contains("revoked every refresh token of this sign-in"),
        "{e}"
    );
    let (s, e) = refresh(&app, &client, &rt2, GRAPH).await;
    assert_eq!((s, aadsts(&e)), (StatusCode::BAD_REQUEST, 50173), "{e}");
    assert!(description(&e).contains("redeemed twice"), "{e}");

    // Bound to its client and tenant; garbage is no grant.
    let (s, t) = sign_in(&app, &client, &alice, &offline).await;
    assert_eq!(s, StatusCode::OK, "{t}");
    let live = rt(&t);
    let other = public_client(&app, "other").await;
    let (s, e) = refresh(&app, &other, &live, GRAPH).await;
    assert_eq!((s, aadsts(&e)), (StatusCode::BAD_REQUEST, 70000), "{e}");
    let (s, e) = refresh(&app, &client, "not-a-refresh-token", GRAPH).await;
    assert_eq!((s, aadsts(&e)), (StatusCode::BAD_REQUEST, 70000), "{e}");
    let (s, e) = app
        .token(&[
            ("grant_type", "refresh_token"),
            ("client_id", &client),
            ("scope", GRAPH),
        ])
        .await;
    assert_eq!((s, aadsts(&e)), (StatusCode::BAD_REQUEST, 900144), "{e}");
    let (s, t) = refresh(&app, &client, &live, GRAPH).await;
    assert_eq!(s, StatusCode::OK, "still good after the refusals: {t}");
    let live = rt(&t);

    // Two refreshes with one token at the same moment: exactly one succeeds.
    let (a, b) = tokio::join!(
        refresh(&app, &client, &live, GRAPH),
        refresh(&app, &client, &live, GRAPH)
    );
    let ok: Vec<&(StatusCode, Value)> = [&a, &b]
        .into_iter()
        .filter(|(s, _)| *s == StatusCode::OK)
        .collect();
    assert_eq!(ok.len(), 1, "{a:?} {b:?}");
    let loser = if a.0 == StatusCode::OK { &b } else { &a };
    assert_eq!(aadsts(&loser.1), 70008, "{loser:?}");

    // A confidential client must authenticate to redeem, as for its other grants.
    let (oid, confidential) = app.create_app("web app", json!({})).await;
    let secret = app.add_secret(&oid, json!({})).await["secretText"]
        .as_str()
        .unwrap()
        .to_string();
    let (s, t) = app
        .token(&[
            ("grant_type", "password"),
            ("client_id", &confidential),
            ("client_secret", &secret),
            ("username", &alice),
            ("password", PASSWORD),
            ("scope", &offline),
        ])
        .await;
    assert_eq!(s, StatusCode::OK, "{t}");
    let crt = rt(&t);
    let (s, e) = refresh(&app, &confidential, &crt, GRAPH).await;
    assert_eq!((s, aadsts(&e)), (StatusCode::UNAUTHORIZED, 7000218), "{e}");
    let (s, t) = app
        .token(&[
            ("grant_type", "refresh_token"),
            ("client_id", &confidential),
            ("client_secret", &secret),
            ("refresh_token", &crt),
            ("scope", GRAPH),
        ])
        .await;
    assert_eq!(s, StatusCode::OK, "{t}");
    assert_eq!(claims(t["access_token"].as_str().unwrap())["appidacr"], "1");

    // Only a keyed hash is stored: no refresh token in the database files.
    if app.db_url.is_none() {
        let mut all = Vec::new();
        for entry in std::fs::read_dir(app.dir.path()).unwrap() {
            let p = entry.unwrap().path();
            if p.is_file() {
                all.extend(std::fs::read(p).unwrap());
            }
        }
        for t in [&rt0, &rt1, &rt2, &crt] {
            assert!(
                !all.windows(t.len()).any(|w| w == t.as_bytes()),
                "a refresh token is stored in plaintext"
            );
        }
    }
    app.stop().await;
}

async fn refresh_tokens_expire_and_are_revoked(backend: Backend) {
    let app = spawn_app(backend).await;
    let (bob_id, bob) = user(&app, "bob").await;
    let client = public_client(&app, "cli").await;
    let offline = format!("{GRAPH} offline_access");

    // revokeSignInSessions ends every sign-in of the user.
    let (_, t) = sign_in(&app, &client, &bob, &offline).await;
    let first = rt(&t);
    let (_, t) = sign_in(&app, &client, &bob, &offline).await;
    let second = rt(&t);
    let (s, v) = app
        .graph(
            Method::POST,
            &format!("/v1.0/users/{bob_id}/revokeSignInSessions"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["value"], true);
    for t in [&first, &second] {
        let (s, e) = refresh(&app, &client, t, GRAPH).await;
        assert_eq!((s, aadsts(&e)), (StatusCode::BAD_REQUEST, 50173), "{e}");
        assert!(description(&e).contains("TokensValidFrom"), "{e}");
    }
    let (s, _) = app
        .graph(
            Method::POST,
            &format!("/v1.0/users/{}/revokeSignInSessions", uuid::Uuid::new_v4()),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // A disabled account: 50057 as for its password; enabled again, its old tokens stay revoked.
    let (_, t) = sign_in(&app, &client, &bob, &offline).await;
    let before = rt(&t);
    let bob_path = format!("/v1.0/users/{bob_id}");
    let patch = |enabled: bool| {
        app.graph(
            Method::PATCH,
            &bob_path,
            Some(json!({"accountEnabled": enabled})),
        )
    };
    assert_eq!(patch(false).await.0, StatusCode::NO_CONTENT);
    let (s, e) = refresh(&app, &client, &before, GRAPH).await;
    assert_eq!((s, aadsts(&e)), (StatusCode::BAD_REQUEST, 50057), "{e}");
    assert_eq!(patch(true).await.0, StatusCode::NO_CONTENT);
    let (s, e) = refresh(&app, &client, &before, GRAPH).await;
    assert_eq!((s, aadsts(&e)), (StatusCode::BAD_REQUEST, 50173), "{e}");
    assert!(description(&e).contains("disabled"), "{e}");

    // A new password ends the sign-ins made with the old one.
    let (_, t) = sign_in(&app, &client, &bob, &offline).await;
    let old_password = rt(&t);
    let (s, _) = app
        .graph(
            Method::PATCH,
            &format!("/v1.0/users/{bob_id}"),
            Some(json!({"passwordProfile": {"password": "a brand new password"}})),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, e) = refresh(&app, &client, &old_password, GRAPH).await;
    assert_eq!((s, aadsts(&e)), (StatusCode::BAD_REQUEST, 50173), "{e}");

    // A deleted account: 50126, as for a password.
    let (carol_id, carol) = user(&app, "carol").await;
    let (_, t) = sign_in(&app, &client, &carol, &offline).await;
    let gone = rt(&t);
    let (s, _) = app
        .graph(Method::DELETE, &format!("/v1.0/users/{carol_id}"), None)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, e) = refresh(&app, &client, &gone, GRAPH).await;
    assert_eq!((s, aadsts(&e)), (StatusCode::BAD_REQUEST, 50126), "{e}");

    // A guest's refreshed token keeps the home identity provider.
    let (tenant_b, tb) = crate::guests::tenant_b(&app).await;
    let (s, home) = app
        .call(
            &tb,
            Method::POST,
            "/v1.0/users",
            Some(json!({"displayName": "Dana", "userPrincipalName": "dana@contoso.example", "passwordProfile": {"password": PASSWORD}})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{home}");
    let (s, inv) = app
        .graph(
            Method::POST,
            "/v1.0/invitations",
            Some(json!({"invitedUserEmailAddress": "dana@contoso.example", "inviteRedirectUrl": "https://myapps.example"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{inv}");
    let (s, t) = sign_in(&app, &client, "dana@contoso.example", &offline).await;
    assert_eq!(s, StatusCode::OK, "{t}");
    let (s, t) = refresh(&app, &client, &rt(&t), GRAPH).await;
    assert_eq!(s, StatusCode::OK, "{t}");
    let c = claims(t["access_token"].as_str().unwrap());
    assert_eq!(c["oid"], inv["invitedUser"]["id"]);
    assert_eq!(c["idp"], format!("{}/{tenant_b}/v2.0", app.base));
    assert_eq!(c["acct"], 1);
    assert!(c.get("upn").is_none(), "{c}");
    // Revoking the home account's sessions (in its own tenant) ends the guest's too.
    let (s, v) = app
        .call(
            &tb,
            Method::POST,
            &format!(
                "/v1.0/users/{}/revokeSignInSessions",
                home["id"].as_str().unwrap()
            ),
            None,
        )
        .await;
    assert_eq!((s, &v["value"]), (StatusCode::OK, &json!(true)), "{v}");
    let (s, e) = refresh(&app, &client, &rt(&t), GRAPH).await;
    assert_eq!((s, aadsts(&e)), (StatusCode::BAD_REQUEST, 50173), "{e}");

    // Last, as the clock moves a year on (the administrator's token would expire with it).
    let (_, frank) = user(&app, "frank").await;
    // 90 days unused: expired, in Entra's words.
    let (_, t) = sign_in(&app, &client, &frank, &offline).await;
    let idle = rt(&t);
    app.clock.advance(Duration::days(90) + Duration::seconds(1));
    let (s, e) = refresh(&app, &client, &idle, GRAPH).await;
    assert_eq!((s, aadsts(&e)), (StatusCode::BAD_REQUEST, 700082), "{e}");
    assert!(
        description(&e).contains("was inactive for 90.00:00:00"),
        "{e}"
    );

    // Used every 80 days it slides on, but never past a year from the sign-in.
    let (_, t) = sign_in(&app, &client, &frank, &offline).await;
    let mut current = rt(&t);
    for _ in 0..4 {
        app.clock.advance(Duration::days(80));
        let (s, t) = refresh(&app, &client, &current, GRAPH).await;
        assert_eq!(s, StatusCode::OK, "{t}");
        current = rt(&t);
    }
    app.clock.advance(Duration::days(80));
    let (s, e) = refresh(&app, &client, &current, GRAPH).await;
    assert_eq!((s, aadsts(&e)), (StatusCode::BAD_REQUEST, 70008), "{e}");
    assert!(description(&e).contains("maximum age"), "{e}");

    app.stop().await;
}

async fn platform(app: &TestApp, token: &str, method: Method, path: &str) -> (StatusCode, Value) {
    platform_with(app, token, method, path, None).await
}

async fn platform_with(
    app: &TestApp,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let sep = if path.contains('?') { '&' } else { '?' };
    app.call(token, method, &format!("{path}{sep}api-version=1"), body)
        .await
}

fn status(v: &Value) -> (String, Option<String>) {
    let s = &v["properties"]["statuses"][0];
    (
        s["status"].as_str().unwrap_or_default().to_string(),
        s["error"]["code"].as_str().map(str::to_string),
    )
}

async fn delegated_connection_acts_as_the_user(backend: Backend) {
    let app = spawn_app(backend).await;
    let (env, _, _) = app.environment("dev").await;
    let env_id = env["id"].as_str().unwrap().to_string();
    let url = env["url"].as_str().unwrap().to_string();
    let (erin_id, erin) = user(&app, "erin").await;
    let client = public_client(&app, "cli").await;

    // A flow runner (an application user) makes the connection with Erin's refresh token.
    let (oid, runner) = app.create_app("flow runner", json!({})).await;
    let secret = app.add_secret(&oid, json!({})).await["secretText"]
        .as_str()
        .unwrap()
        .to_string();
    let (s, u) = app
        .graph(
            Method::POST,
            &format!("/v1.0/environments/{env_id}/addAppUser"),
            Some(json!({"servicePrincipalAppId": runner, "roles": ["Basic User"]})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{u}");
    let flow_token = || async {
        let (_, t) = app
            .secret_token(&runner, &secret, "https://api.powerplatform.com/.default")
            .await;
        t["access_token"].as_str().unwrap().to_string()
    };
    let mut flow = flow_token().await;
    let (s, t) = sign_in(
        &app,
        &client,
        &erin,
        &format!("{url}/.default offline_access"),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{t}");
    let original = rt(&t);
    let dv = "/connectivity/connectors/shared_commondataserviceforapps/connections/erin";
    let filter = format!("$filter=environment eq '{env_id}'");
    let body = json!({"properties": {
        "environment": {"id": format!("/providers/Microsoft.PowerApps/environments/{env_id}"), "name": env_id},
        "connectionParametersSet": {"name": "OAuthSignIn", "values": {
            "token:refreshToken": {"value": original},
            "token:clientId": {"value": client},
            "token:TenantId": {"value": app.tenant()},
        }},
    }});
    let (s, c) = platform_with(&app, &flow, Method::PUT, dv, Some(body)).await;
    assert_eq!(s, StatusCode::CREATED, "{c}");
    // Erin is no system user of the environment yet: the environment says so, as her.
    assert_eq!(
        status(&c),
        ("Error".into(), Some("0x80072560".into())),
        "{c}"
    );
    let values = &c["properties"]["connectionParametersSet"]["values"];
    assert_eq!(values["token:refreshToken"]["value"], "********", "{c}");

    // Added (members are licensed) and given a role: Connected, as Erin.
    let (s, su) = app
        .graph(
            Method::POST,
            &format!("/v1.0/environments/{env_id}/addUser"),
            Some(json!({"userId": erin_id})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{su}");
    let sid = su["systemuserid"].as_str().unwrap().to_string();
    app.assign_role(&env_id, "Basic User", &sid).await;
    let test = format!("{dv}/test?{filter}");
    let (s, c) = platform(&app, &flow, Method::POST, &test).await;
    assert_eq!(s, StatusCode::OK, "{c}");
    assert_eq!(status(&c), ("Connected".into(), None), "{c}");

    // Two more refreshes, each after the access token's lifetime; each rotated token stored.
    for _ in 0..2 {
        app.clock.advance(Duration::minutes(61));
        flow = flow_token().await;
        let (s, c) = platform(&app, &flow, Method::POST, &test).await;
        assert_eq!(s, StatusCode::OK, "{c}");
        assert_eq!(status(&c), ("Connected".into(), None), "{c}");
    }
    let (s, h) = platform(&app, &flow, Method::GET, &format!("{dv}/events?{filter}")).await;
    assert_eq!(s, StatusCode::OK, "{h}");
    let rotations = h["value"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "rotate")
        .count();
    assert_eq!(
        rotations, 4,
        "one per refresh (the first test, then three): {h}"
    );
    // The expiry shown is the stored token's inactivity deadline, 90 days after the last use.
    let (s, c) = platform(&app, &flow, Method::GET, &format!("{dv}?{filter}")).await;
    assert_eq!(s, StatusCode::OK, "{c}");
    let expires = time::OffsetDateTime::parse(
        c["properties"]["expirationTime"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let now = keyway_core::Clock::now(&app.clock);
    let left = expires - now;
    assert!(
        left > Duration::days(89) && left <= Duration::days(90),
        "{left}"
    );
    // The original token was rotated out long ago: redeeming it now is theft, and would revoke
    // the connection's sign-in — so a copy kept elsewhere is worthless. Not done here.
    let _ = original;

    // Revoked sign-in sessions: the connection shows the authority's code. (The cached
    // administrator token expired with the clock: a fresh one.)
    let (_, admin) = app
        .secret_token(
            &app.profile.client_id.to_string(),
            &app.profile.client_secret,
            GRAPH,
        )
        .await;
    let (s, _) = app
        .call(
            admin["access_token"].as_str().unwrap(),
            Method::POST,
            &format!("/v1.0/users/{erin_id}/revokeSignInSessions"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, c) = platform(&app, &flow, Method::POST, &test).await;
    assert_eq!(s, StatusCode::OK, "{c}");
    assert_eq!(
        status(&c),
        ("Error".into(), Some("AADSTS50173".into())),
        "{c}"
    );
    app.stop().await;
}
