//! Acting with a connection: its secrets opened (each opening recorded with who asked, whom it
//! acts as, and why), a token from its credentials (cached until shortly before it expires), and
//! the real test — a token, then the target's `WhoAmI`.

use std::collections::BTreeMap;

use keyway_core::connections::{self as conn, Api, AuthKind, Connection, Status};
use keyway_store::{ConnectionStore, DirectoryStore, EnvironmentStore};
use serde_json::Value;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;
use zeroize::Zeroizing;

use super::connection_tokens::TokenKey;
use super::connections::event;
use super::{Result, ServiceError, vault};
use crate::state::AppState;

/// The connection's certificate with its key, opened with its password.
fn certificate(
    secrets: &BTreeMap<String, Zeroizing<String>>,
) -> Option<std::result::Result<keyway_crypto::client_certificate::ClientCertificate, String>> {
    let text = secrets.get("token:clientCertificate")?;
    Some(
        keyway_crypto::client_certificate::ClientCertificate::load(
            text,
            secrets
                .get("token:clientCertificatePassword")
                .map(|p| p.as_str()),
        )
        .map_err(|e| e.to_string()),
    )
}

/// When the credential a connection uses expires, if Keyway can know: its certificate's end, or
/// a client secret of an application registered here.
pub(crate) async fn expiry(
    state: &AppState,
    c: &Connection,
    secrets: &BTreeMap<String, Zeroizing<String>>,
) -> Result<Option<OffsetDateTime>> {
    if let Some(Ok(cert)) = certificate(secrets) {
        return Ok(Some(cert.certificate.not_after));
    }
    if let Some(rt) = secrets.get("token:refreshToken") {
        return refresh_deadline(state, rt).await;
    }
    let (client, secret) = match (
        c.public_values
            .get("token:clientId")
            .or_else(|| c.public_values.get("servicePrincipalId"))
            .and_then(Value::as_str),
        secrets
            .get("token:clientSecret")
            .or_else(|| secrets.get("servicePrincipalKey")),
    ) {
        (Some(client), Some(secret)) => (client, secret),
        _ => return Ok(c.expires_at),
    };
    let Ok(app_id) = Uuid::parse_str(client) else {
        return Ok(None);
    };
    let Some(app) = state.store.application_by_app_id(app_id).await? else {
        return Ok(None);
    };
    let presented = state.secrets.hash(secret);
    Ok(state
        .store
        .passwords(app.id)
        .await?
        .into_iter()
        .find(|p| state.secrets.matches(&presented, &p.secret_hash))
        .map(|p| p.end))
}

/// A connection's secrets, opened — with an event naming who asked, whom it acts as, and why.
pub(crate) async fn open_secrets(
    state: &AppState,
    c: &Connection,
    caller: &str,
    purpose: &str,
) -> Result<BTreeMap<String, Zeroizing<String>>> {
    Ok(open_sealed(state, c, caller, purpose)
        .await?
        .into_iter()
        .map(|(field, (_, plain))| (field, plain))
        .collect())
}

/// [`open_secrets`], each with the sealed bytes it was opened from (to replace it if unchanged).
#[allow(clippy::type_complexity)]
async fn open_sealed(
    state: &AppState,
    c: &Connection,
    caller: &str,
    purpose: &str,
) -> Result<BTreeMap<String, (Vec<u8>, Zeroizing<String>)>> {
    let acting = c
        .public_values
        .get("token:clientId")
        .or_else(|| c.public_values.get("servicePrincipalId"))
        .or_else(|| c.public_values.get("token:username"))
        .or_else(|| c.public_values.get("username"))
        .and_then(Value::as_str)
        .map(str::to_string);
    let sealed = state
        .store
        .connection_secrets(
            c.id,
            &event(state, c.id, "decrypt", caller, acting, purpose),
        )
        .await?;
    sealed
        .into_iter()
        .map(|s| {
            let plain = vault::open(state, &vault::aad("connection", &c.id, &s.field), &s.sealed)?;
            let text = String::from_utf8(plain.to_vec())
                .map_err(|_| ServiceError::Internal("a sealed secret is not text".into()))?;
            Ok((s.field, (s.sealed, Zeroizing::new(text))))
        })
        .collect()
}

/// The Dataverse-compatible environment a connection acts in.
pub(crate) fn target_url(
    state: &AppState,
    c: &Connection,
    env: Option<&keyway_core::environment::Environment>,
) -> Option<String> {
    c.public_values
        .get("environmentUrl")
        .or_else(|| c.public_values.get("serviceUri"))
        .and_then(Value::as_str)
        .map(|s| s.trim_end_matches('/').to_string())
        .or_else(|| {
            env.map(|e| {
                super::environments::url(state, e)
                    .trim_end_matches('/')
                    .to_string()
            })
        })
}

/// How a token request or a Web API call failed, as the target said it.
fn failure(code: impl Into<String>, message: impl Into<String>) -> Status {
    Status::Error {
        code: code.into(),
        message: message.into(),
    }
}

/// A token for `resource` with the connection's credentials: from the cache while fresh, else
/// from the authority. `Err(status)` carries the authority's own error.
pub async fn token_for(
    state: &AppState,
    c: &Connection,
    resource: &str,
    caller: &str,
    purpose: &str,
) -> Result<std::result::Result<Zeroizing<String>, Status>> {
    token_with(state, c, resource, caller, purpose, TokenUse::Cached).await
}

/// Whether a token may come from the cache, or must come from the authority now (a test that
/// proves the credentials still work).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenUse {
    Cached,
    Fresh,
}

/// [`token_for`], choosing whether the cache may answer.
pub async fn token_with(
    state: &AppState,
    c: &Connection,
    resource: &str,
    caller: &str,
    purpose: &str,
    using: TokenUse,
) -> Result<std::result::Result<Zeroizing<String>, Status>> {
    let key = TokenKey {
        connection: c.id,
        version: c.version,
        resource: resource.to_string(),
    };
    let now = state.clock.now();
    if using == TokenUse::Cached
        && let Some(t) = state.connection_tokens.get(&key, now)
    {
        return Ok(Ok(t));
    }
    let connector = conn::connector(&c.connector)
        .ok_or_else(|| ServiceError::Internal(format!("connector {} vanished", c.connector)))?;
    let set = connector.parameter_set(&c.parameter_set).ok_or_else(|| {
        ServiceError::Internal(format!("parameter set {} vanished", c.parameter_set))
    })?;
    if set.auth == AuthKind::RefreshToken {
        return refresh_grant(state, c, resource, caller, purpose, key, using).await;
    }
    let secrets = open_secrets(state, c, caller, purpose).await?;
    let v = |k: &str| {
        c.public_values
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let s = |k: &str| {
        secrets
            .get(k)
            .map(|z| z.as_str().to_string())
            .unwrap_or_default()
    };
    let scope = format!("{}/.default", resource.trim_end_matches('/'));
    let mut form: Vec<(&str, String)> = vec![("scope", scope)];
    let tenant = match set.auth {
        AuthKind::ClientSecret if c.connector == conn::catalog::DYNAMICS_SPEC => {
            form.extend([
                ("grant_type", "client_credentials".into()),
                ("client_id", v("servicePrincipalId")),
                ("client_secret", s("servicePrincipalKey")),
            ]);
            None
        }
        AuthKind::ClientSecret => {
            form.extend([
                ("grant_type", "client_credentials".into()),
                ("client_id", v("token:clientId")),
                ("client_secret", s("token:clientSecret")),
            ]);
            Some(v("token:TenantId"))
        }
        AuthKind::UsernamePassword if c.connector == conn::catalog::DYNAMICS_SPEC => {
            form.extend([
                ("grant_type", "password".into()),
                ("username", v("username")),
                ("password", s("password")),
                // Dynamics' own public client, as the Flow Service signs users in.
                (
                    "client_id",
                    keyway_core::directory::FIRST_PARTY_PUBLIC_CLIENTS[0]
                        .0
                        .to_string(),
                ),
            ]);
            None
        }
        AuthKind::UsernamePassword => {
            form.extend([
                ("grant_type", "password".into()),
                ("username", v("token:username")),
                ("password", s("token:password")),
                ("client_id", v("token:clientId")),
            ]);
            Some(v("token:TenantId"))
        }
        AuthKind::ClientCertificate => {
            form.extend([
                ("grant_type", "client_credentials".into()),
                ("client_id", v("token:clientId")),
            ]);
            Some(v("token:TenantId"))
        }
        AuthKind::RefreshToken => unreachable!("refresh-token connections returned above"),
        AuthKind::MachineAccount => {
            return Ok(Err(failure(
                "NotSupported",
                format!(
                    "Keyway cannot obtain tokens for the '{}' parameter set yet.",
                    set.name
                ),
            )));
        }
    };
    let authority = match c
        .public_values
        .get("token:authority")
        .and_then(Value::as_str)
    {
        Some(a) => a.trim_end_matches('/').to_string(),
        None => match authority_for(state, resource, tenant.as_deref()).await? {
            Ok(a) => a,
            Err(status) => return Ok(Err(status)),
        },
    };
    super::outbound::check_target(state, "token:authority", &authority)?;
    if set.auth == AuthKind::ClientCertificate {
        let cert = match certificate(&secrets) {
            Some(Ok(cert)) => cert,
            Some(Err(why)) => return Ok(Err(failure("InvalidCertificate", why))),
            None => {
                return Ok(Err(failure(
                    "InvalidCertificate",
                    "The connection holds no certificate.",
                )));
            }
        };
        let assertion = cert
            .assertion(
                &v("token:clientId"),
                &format!("{authority}/oauth2/v2.0/token"),
                now,
            )
            .map_err(|e| ServiceError::Internal(format!("signing a client assertion: {e}")))?;
        form.extend([
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".into(),
            ),
            ("client_assertion", assertion),
        ]);
    }
    let sent = state
        .outbound
        .request(
            state,
            reqwest::Method::POST,
            &format!("{authority}/oauth2/v2.0/token"),
        )
        .form(&form)
        .send()
        .await;
    drop(form);
    let resp = match sent {
        Ok(r) => r,
        Err(e) => {
            return Ok(Err(failure(
                "AuthorityUnreachable",
                format!("The authority {authority} could not be reached: {e}."),
            )));
        }
    };
    let status = resp.status();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        let code = body["error_codes"][0]
            .as_u64()
            .map(|n| format!("AADSTS{n}"))
            .or_else(|| body["error"].as_str().map(str::to_string))
            .unwrap_or_else(|| format!("HTTP{}", status.as_u16()));
        let message = body["error_description"]
            .as_str()
            .unwrap_or("The authority refused the credentials.")
            .to_string();
        return Ok(Err(failure(code, message)));
    }
    let Some(token) = body["access_token"].as_str() else {
        return Ok(Err(failure(
            "InvalidTokenResponse",
            "The authority answered without an access token.",
        )));
    };
    let token = Zeroizing::new(token.to_string());
    prove(state, c, &token).await?;
    let lifetime = body["expires_in"].as_i64().unwrap_or(300).clamp(1, 86_400);
    state
        .connection_tokens
        .put(key, token.clone(), now, now + Duration::seconds(lifetime));
    Ok(Ok(token))
}

/// How often a connection that keeps proving the same identity records it again.
const REPROVE: Duration = Duration::hours(1);

/// Record whom the connection's own credential just signed in as: the object id of `token`, if
/// this server signed it. A token from another authority proves nothing here — `token:authority`
/// may name one the maker runs — so such a connection never gets the expired-credential fallback.
async fn prove(state: &AppState, c: &Connection, token: &str) -> Result<()> {
    let claims: keyway_core::token::AccessTokenClaims =
        match state.signing.verify(state, token).await {
            Ok(claims) => claims,
            Err(ServiceError::Unauthenticated(_)) => return Ok(()),
            Err(e) => return Err(e),
        };
    let Ok(identity) = Uuid::parse_str(&claims.oid) else {
        return Ok(());
    };
    let now = state.clock.now();
    if c.proof
        .is_some_and(|p| p.identity == identity && p.at <= now && now - p.at < REPROVE)
    {
        return Ok(());
    }
    // `false`: the connection was edited meanwhile, and this was its old credential.
    state
        .store
        .connection_prove(c.id, c.version, &conn::Proof { identity, at: now })
        .await?;
    Ok(())
}

/// One refresh at a time per connection on this node: a refresh token is good for one use, so a
/// second caller waits and then finds the fresh access token in the cache.
static REFRESHING: std::sync::LazyLock<
    std::sync::Mutex<std::collections::HashMap<Uuid, std::sync::Arc<tokio::sync::Mutex<()>>>>,
> = std::sync::LazyLock::new(Default::default);

fn refresh_lock(id: Uuid) -> std::sync::Arc<tokio::sync::Mutex<()>> {
    let mut map = REFRESHING.lock().unwrap_or_else(|p| p.into_inner());
    map.entry(id).or_default().clone()
}

fn refresh_unlock(id: Uuid, lock: std::sync::Arc<tokio::sync::Mutex<()>>) {
    let mut map = REFRESHING.lock().unwrap_or_else(|p| p.into_inner());
    // Ours and the map's: nobody else waits, so the entry can go.
    if std::sync::Arc::strong_count(&lock) <= 2 {
        map.remove(&id);
    }
}

/// The inactivity deadline of a refresh token this server issued (others' are not known).
async fn refresh_deadline(state: &AppState, token: &str) -> Result<Option<OffsetDateTime>> {
    use keyway_store::RefreshTokenStore;
    Ok(state
        .store
        .refresh_token_find(&state.secrets.hash(token))
        .await?
        .filter(|t| t.state == keyway_store::RefreshState::Active)
        .map(|t| t.expires_at))
}

/// A token with the user's refresh token (`OAuthSignIn`). The authority rotates the refresh
/// token; the new one is sealed and stored back in place of the one used (compare-and-set, no
/// version bump). If another node rotated it meanwhile, the newer one is tried once.
async fn refresh_grant(
    state: &AppState,
    c: &Connection,
    resource: &str,
    caller: &str,
    purpose: &str,
    key: TokenKey,
    using: TokenUse,
) -> Result<std::result::Result<Zeroizing<String>, Status>> {
    let lock = refresh_lock(c.id);
    let outcome = {
        let _held = lock.lock().await;
        let cached = match using {
            TokenUse::Cached => state.connection_tokens.get(&key, state.clock.now()),
            TokenUse::Fresh => None,
        };
        match cached {
            Some(t) => Ok(Ok(t)),
            None => refresh_grant_locked(state, c, resource, caller, purpose, key).await,
        }
    };
    refresh_unlock(c.id, lock);
    outcome
}

const REFRESH_FIELD: &str = "token:refreshToken";

async fn refresh_grant_locked(
    state: &AppState,
    c: &Connection,
    resource: &str,
    caller: &str,
    purpose: &str,
    key: TokenKey,
) -> Result<std::result::Result<Zeroizing<String>, Status>> {
    let v = |k: &str| {
        c.public_values
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let authority = match c
        .public_values
        .get("token:authority")
        .and_then(Value::as_str)
    {
        Some(a) => a.trim_end_matches('/').to_string(),
        None => match authority_for(state, resource, Some(&v("token:TenantId"))).await? {
            Ok(a) => a,
            Err(status) => return Ok(Err(status)),
        },
    };
    super::outbound::check_target(state, "token:authority", &authority)?;
    let scope = format!("{}/.default offline_access", resource.trim_end_matches('/'));
    let client_id = v("token:clientId");
    let mut current = open_sealed(state, c, caller, purpose).await?;
    let mut retried = false;
    loop {
        let Some((sealed, refresh_token)) = current.remove(REFRESH_FIELD) else {
            return Ok(Err(failure(
                "InvalidConnectionParameters",
                "The connection holds no refresh token.",
            )));
        };
        let form: Vec<(&str, &str)> = vec![
            ("grant_type", "refresh_token"),
            ("client_id", client_id.as_str()),
            ("refresh_token", refresh_token.as_str()),
            ("scope", scope.as_str()),
        ];
        let now = state.clock.now();
        let sent = post_token(state, &authority, &form).await;
        drop(form);
        let body = match sent {
            Ok(body) => body,
            Err(refusal) if refusal.grant_refused && !retried => {
                // Another node may have rotated it between our read and our use: then the stored
                // one is newer, and worth one more try.
                current = open_sealed(state, c, caller, "retry: refresh token refused").await?;
                if current
                    .get(REFRESH_FIELD)
                    .is_some_and(|(s, _)| *s != sealed)
                {
                    retried = true;
                    continue;
                }
                refused(state, c, caller, &refusal.status).await?;
                return Ok(Err(refusal.status));
            }
            Err(refusal) => {
                if refusal.grant_refused {
                    refused(state, c, caller, &refusal.status).await?;
                }
                return Ok(Err(refusal.status));
            }
        };
        let Some(token) = body["access_token"].as_str() else {
            return Ok(Err(failure(
                "InvalidTokenResponse",
                "The authority answered without an access token.",
            )));
        };
        let token = Zeroizing::new(token.to_string());
        prove(state, c, &token).await?;
        if let Some(next) = body["refresh_token"].as_str() {
            let next = Zeroizing::new(next.to_string());
            let resealed = vault::seal(
                state,
                &vault::aad("connection", &c.id, REFRESH_FIELD),
                next.as_bytes(),
            )?;
            let deadline = refresh_deadline(state, &next).await?;
            let stored = state
                .store
                .connection_secret_replace(
                    c.id,
                    REFRESH_FIELD,
                    &resealed,
                    &sealed,
                    deadline,
                    &event(
                        state,
                        c.id,
                        "rotate",
                        caller,
                        Some(client_id.clone()),
                        "the authority rotated the refresh token",
                    ),
                )
                .await?;
            if !stored {
                // Someone replaced it meanwhile (an edit of the connection): theirs stands.
                tracing::warn!(connection = %c.id, "a rotated refresh token was not stored: the connection's token changed meanwhile");
            }
        }
        let lifetime = body["expires_in"].as_i64().unwrap_or(300).clamp(1, 86_400);
        state
            .connection_tokens
            .put(key, token.clone(), now, now + Duration::seconds(lifetime));
        return Ok(Ok(token));
    }
}

/// A refresh token the authority refused for good: the connection shows it until someone signs
/// in again.
async fn refused(state: &AppState, c: &Connection, caller: &str, status: &Status) -> Result<()> {
    state
        .store
        .connection_status_set(
            c.id,
            status,
            state.clock.now(),
            &event(state, c.id, "refresh", caller, None, status.name()),
        )
        .await?;
    Ok(())
}

/// How the authority refused a token request.
struct Refusal {
    status: Status,
    /// `invalid_grant`: the grant itself (the refresh token, or its user) is no good.
    grant_refused: bool,
}

/// POST a token request to `{authority}/oauth2/v2.0/token`; the body, or the authority's error.
async fn post_token(
    state: &AppState,
    authority: &str,
    form: &[(&str, &str)],
) -> std::result::Result<Value, Refusal> {
    let sent = state
        .outbound
        .client
        .post(format!("{authority}/oauth2/v2.0/token"))
        .form(form)
        .send()
        .await;
    let resp = sent.map_err(|e| Refusal {
        status: failure(
            "AuthorityUnreachable",
            format!("The authority {authority} could not be reached: {e}."),
        ),
        grant_refused: false,
    })?;
    let status = resp.status();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    if status.is_success() {
        return Ok(body);
    }
    let code = body["error_codes"][0]
        .as_u64()
        .map(|n| format!("AADSTS{n}"))
        .or_else(|| body["error"].as_str().map(str::to_string))
        .unwrap_or_else(|| format!("HTTP{}", status.as_u16()));
    let message = body["error_description"]
        .as_str()
        .unwrap_or("The authority refused the credentials.")
        .to_string();
    Err(Refusal {
        grant_refused: body["error"] == "invalid_grant",
        status: failure(code, message),
    })
}

/// The authority for a target: this server's for its own environments (the environment's tenant,
/// unless the connection names one), else what the target's 401 challenge names.
async fn authority_for(
    state: &AppState,
    resource: &str,
    tenant: Option<&str>,
) -> Result<std::result::Result<String, Status>> {
    let base = state.base_url.trim_end_matches('/');
    if let Some(t) = tenant.filter(|t| !t.is_empty()) {
        return Ok(Ok(format!("{base}/{t}")));
    }
    if let Some(name) = keyway_core::environment::environment_in_url(
        resource,
        |h| state.is_our_host(h),
        state.config.environment_domain.as_deref(),
    ) && let Some(env) = state.store.environment_by_name(&name).await?
    {
        return Ok(Ok(format!("{base}/{}", env.tenant_id)));
    }
    // Dataverse names its authority in the challenge of an anonymous call.
    let probe = state
        .outbound
        .request(
            state,
            reqwest::Method::GET,
            &format!("{}/api/data/v9.2/", resource.trim_end_matches('/')),
        )
        .send()
        .await;
    let challenge = probe.ok().and_then(|r| {
        r.headers()
            .get("WWW-Authenticate")
            .and_then(|h| h.to_str().ok())
            .map(str::to_string)
    });
    let uri = challenge.as_deref().and_then(|c| {
        c.split("authorization_uri=").nth(1).map(|rest| {
            rest.trim_matches('"')
                .split(['"', ','])
                .next()
                .unwrap_or_default()
                .to_string()
        })
    });
    Ok(match uri {
        Some(u) => Ok(u.trim_end_matches("/oauth2/authorize").to_string()),
        None => Err(failure(
            "AuthorityUnknown",
            format!("{resource} names no authority: set 'token:authority'."),
        )),
    })
}

/// Test a connection for real: a token with its credentials, then the target's `WhoAmI`. The
/// outcome is stored as its status and returned.
pub async fn test(state: &AppState, caller: &str, c: &Connection) -> Result<Status> {
    test_with(state, caller, c, TokenUse::Fresh).await
}

/// [`test`], with a cached token when `using` allows: the Web API call is still made, but the
/// credentials are not shown to the authority again while the token is fresh.
pub async fn test_with(
    state: &AppState,
    caller: &str,
    c: &Connection,
    using: TokenUse,
) -> Result<Status> {
    let env = match c.api {
        Api::PowerPlatform => match Uuid::parse_str(&c.scope) {
            Ok(id) => state.store.environment_get(id).await?,
            Err(_) => None,
        },
        Api::FlowService => None,
    };
    let status = match conn::connector(&c.connector).and_then(|k| k.parameter_set(&c.parameter_set))
    {
        Some(set) if set.auth == AuthKind::MachineAccount => Status::Unknown,
        _ => match target_url(state, c, env.as_ref()) {
            None => failure("NoTarget", "The connection names no environment to act in."),
            Some(target) => match token_with(state, c, &target, caller, "test", using).await? {
                Err(s) => s,
                Ok(token) => who_am_i(state, &target, &token).await,
            },
        },
    };
    let now = state.clock.now();
    // Repeated tests with the same outcome within a minute change nothing worth a write.
    let unchanged = status == c.status
        && c.tested_at
            .is_some_and(|t| now - t < Duration::minutes(1) && t <= now);
    if !unchanged {
        state
            .store
            .connection_status_set(
                c.id,
                &status,
                now,
                &event(state, c.id, "test", caller, None, status.name()),
            )
            .await?;
    }
    Ok(status)
}

async fn who_am_i(state: &AppState, target: &str, token: &str) -> Status {
    let sent = state
        .outbound
        .request(
            state,
            reqwest::Method::GET,
            &format!("{target}/api/data/v9.2/WhoAmI"),
        )
        .bearer_auth(token)
        .send()
        .await;
    match sent {
        Err(e) => failure(
            "TargetUnreachable",
            format!("{target} could not be reached: {e}."),
        ),
        Ok(r) if r.status().is_success() => Status::Connected,
        Ok(r) => {
            let http = r.status().as_u16();
            let body: Value = r.json().await.unwrap_or(Value::Null);
            failure(
                body["error"]["code"]
                    .as_str()
                    .map_or_else(|| format!("HTTP{http}"), str::to_string),
                body["error"]["message"]
                    .as_str()
                    .unwrap_or("The environment refused the call.")
                    .to_string(),
            )
        }
    }
}
