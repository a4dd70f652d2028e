//! Whom a Dataverse connection acts as, and a token for that identity when the connection's own
//! credential has expired or been revoked. Seed 004: in the flow's own environment, Dataverse
//! actions keep running after the connection expires as long as its identity is enabled and
//! holds the privileges. Keyway is the identity provider too, so it mints a short-lived token
//! for the identity itself — signed like any other, audience the environment — and the
//! environment then enforces a disabled system user and missing privileges as for any caller.
//! The token is never cached, stored or logged; the identity must still be enabled here.
//!
//! Only an identity the connection has proven counts: one its own credential signed in as (a
//! token this server signed, recorded as the connection's proof) since that credential was last
//! set. What the parameters merely name — a client id, a username — proves nothing, else anyone
//! could store a connection with another app's client id and a made-up secret and act as it.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use keyway_core::connections::{self as conn, AuthKind, Connection, Status};
use keyway_core::directory::{ServicePrincipal, User};
use keyway_core::environment::Environment;
use keyway_core::token::AccessTokenClaims;
use keyway_store::{DirectoryStore, RefreshTokenStore};
use serde_json::Value;
use time::Duration;
use uuid::Uuid;
use zeroize::Zeroizing;

use super::Result;
use crate::state::AppState;

/// How long a minted token lives: long enough for one action's calls.
const LIFETIME: Duration = Duration::minutes(5);

/// The authority's codes that say the credential itself lapsed (expired, removed, rotated out or
/// revoked), not that its identity is disabled or unknown: a secret or certificate no longer
/// registered or expired, a changed password, a refresh token expired or revoked. Some (7000215,
/// 700027, 50126) equally mean a credential that was never right; that is safe only because the
/// fallback also needs the connection's proof ([`proven`]): a wrong credential never proved one.
const LAPSED: [&str; 8] = [
    "AADSTS7000222",
    "AADSTS7000215",
    "AADSTS700027",
    "AADSTS50126",
    "AADSTS700082",
    "AADSTS70008",
    "AADSTS50173",
    "AADSTS70000",
];

/// Whether the authority's refusal `code` means the connection's credential lapsed.
pub fn credential_lapsed(code: &str) -> bool {
    LAPSED.contains(&code)
}

/// The directory identity a connection signs in as, in the environment's tenant.
pub enum Identity {
    App(ServicePrincipal),
    /// A person, with the client application their sign-in goes through.
    User(Box<User>, Uuid),
}

impl Identity {
    /// The directory object id (a token's `oid`).
    fn object_id(&self) -> Uuid {
        match self {
            Identity::App(sp) => sp.id,
            Identity::User(user, _) => user.id,
        }
    }
}

/// The identity `c` acts as when its credential has lapsed: the one it proved with that
/// credential, and only while its parameters still name that identity (see [`of`]). `None`
/// without a proof: the connection's own error stands.
pub async fn proven(
    state: &AppState,
    env: &Environment,
    c: &Connection,
    caller: &str,
    purpose: &str,
) -> Result<Option<Identity>> {
    let Some(proof) = c.proof else {
        return Ok(None);
    };
    Ok(of(state, env, c, caller, purpose)
        .await?
        .filter(|who| who.object_id() == proof.identity))
}

fn value<'a>(c: &'a Connection, keys: &[&str]) -> Option<&'a str> {
    keys.iter()
        .find_map(|k| c.public_values.get(*k).and_then(Value::as_str))
}

/// The identity `c` signs in as in `env`'s tenant, if it can be known: the service principal of
/// its client id, the user of its username, or the user its refresh token was issued to (the
/// refresh token is opened for that, and the opening recorded).
async fn of(
    state: &AppState,
    env: &Environment,
    c: &Connection,
    caller: &str,
    purpose: &str,
) -> Result<Option<Identity>> {
    let Some(set) = conn::connector(&c.connector).and_then(|k| k.parameter_set(&c.parameter_set))
    else {
        return Ok(None);
    };
    let client =
        value(c, &["token:clientId", "servicePrincipalId"]).and_then(|s| Uuid::parse_str(s).ok());
    match set.auth {
        AuthKind::ClientSecret | AuthKind::ClientCertificate => {
            let Some(app_id) = client else {
                return Ok(None);
            };
            Ok(state
                .store
                .service_principal_by_app_id(env.tenant_id, app_id)
                .await?
                .map(Identity::App))
        }
        AuthKind::UsernamePassword => {
            let Some(upn) = value(c, &["token:username", "username"]) else {
                return Ok(None);
            };
            let Some(account) = state.store.user_by_upn(upn).await? else {
                return Ok(None);
            };
            let user = if account.tenant_id == env.tenant_id {
                Some(account)
            } else {
                state.store.user_guest_of(env.tenant_id, account.id).await?
            };
            let client = client.unwrap_or(keyway_core::directory::FIRST_PARTY_PUBLIC_CLIENTS[0].0);
            Ok(user.map(|u| Identity::User(Box::new(u), client)))
        }
        AuthKind::RefreshToken => {
            let secrets = super::connection_auth::open_secrets(state, c, caller, purpose).await?;
            let Some(rt) = secrets.get("token:refreshToken") else {
                return Ok(None);
            };
            let Some(record) = state
                .store
                .refresh_token_find(&state.secrets.hash(rt))
                .await?
                .filter(|r| r.tenant_id == env.tenant_id)
            else {
                return Ok(None);
            };
            Ok(state
                .store
                .user_get(record.tenant_id, record.user_id)
                .await?
                .map(|u| Identity::User(Box::new(u), record.client_id)))
        }
        AuthKind::MachineAccount => Ok(None),
    }
}

fn refused(code: &str, message: String) -> Status {
    Status::Error {
        code: code.into(),
        message,
    }
}

/// A short-lived access token for `who`, audience `resource` (the environment's URL). A disabled
/// application or account gets none: the authority's own refusal, as for a sign-in.
pub async fn mint(
    state: &AppState,
    env: &Environment,
    who: &Identity,
    resource: &str,
) -> Result<std::result::Result<Zeroizing<String>, Status>> {
    let now = state.clock.now().unix_timestamp();
    let (oid, appid, idtyp, scp, upn, name) = match who {
        Identity::App(sp) => {
            if !sp.account_enabled {
                return Ok(Err(refused(
                    "AADSTS7000112",
                    format!("Application '{}' is disabled.", sp.app_id),
                )));
            }
            (sp.id, sp.app_id, "app", None, None, None)
        }
        Identity::User(user, client) => {
            if !user.account_enabled {
                return Ok(Err(refused(
                    "AADSTS50057",
                    "The user account is disabled.".into(),
                )));
            }
            (
                user.id,
                *client,
                "user",
                Some("user_impersonation".to_string()),
                Some(user.user_principal_name.clone()),
                Some(user.display_name.clone()),
            )
        }
    };
    let claims = AccessTokenClaims {
        aud: resource.trim_end_matches('/').to_string(),
        iss: format!(
            "{}/{}/v2.0",
            state.base_url.trim_end_matches('/'),
            env.tenant_id
        ),
        iat: now,
        nbf: now,
        exp: now + LIFETIME.whole_seconds(),
        tid: env.tenant_id.to_string(),
        oid: oid.to_string(),
        sub: oid.to_string(),
        appid: appid.to_string(),
        azp: appid.to_string(),
        // No client credential was presented.
        appidacr: "0".into(),
        azpacr: "0".into(),
        roles: Vec::new(),
        scp,
        upn,
        name,
        idp: None,
        acct: None,
        idtyp: idtyp.into(),
        ver: "2.0".into(),
        uti: URL_SAFE_NO_PAD.encode(keyway_crypto::random::bytes::<16>()),
    };
    let key = state.signing.signer(state, env.tenant_id).await?;
    Ok(Ok(Zeroizing::new(key.sign(&claims)?)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lapsed_credentials_are_told_from_disabled_identities() {
        for code in [
            "AADSTS7000222",
            "AADSTS700082",
            "AADSTS50173",
            "AADSTS50126",
        ] {
            assert!(credential_lapsed(code), "{code}");
        }
        // A disabled application or account, an unknown one, or a target's error: no fallback.
        for code in [
            "AADSTS7000112",
            "AADSTS50057",
            "AADSTS700016",
            "0x80040220",
            "AuthorityUnreachable",
        ] {
            assert!(!credential_lapsed(code), "{code}");
        }
    }
}
