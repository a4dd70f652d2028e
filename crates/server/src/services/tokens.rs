//! The token endpoint's use case: authenticate the client (secret or certificate assertion) or
//! the user (password grant, or a refresh token from one), resolve the resource from the scope,
//! and sign an access token. Refresh tokens rotate on every use.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use keyway_core::directory::{ServicePrincipal, Tenant, User, is_current};
use keyway_core::graph_roles::{self, GRAPH_APP_ID, GRAPH_RESOURCE_URI};
use keyway_core::scope;
use keyway_core::token::{
    ACCESS_TOKEN_LIFETIME, AccessTokenClaims, CLIENT_ASSERTION_TYPE, CLOCK_SKEW, ClientAuthMethod,
    ForeignAccount, IdTokenClaims, REFRESH_REUSE_LEEWAY, REFRESH_TOKEN_MAX_AGE, RevokedGrant,
    TokenError, refresh_deadline, wants_refresh_token,
};
use keyway_core::wire::TokenResponse;
use keyway_crypto::assertion;
use keyway_crypto::certificate::Certificate;
use std::sync::Arc;

use keyway_store::{
    AssertionUse, ClientRecord, DirectoryStore, EnvironmentStore, RefreshState, RefreshTokenStore,
    Rotation, StoredRefreshToken,
};

use super::directory_cache::{CachedClient, Resource};
use uuid::Uuid;

use super::{Result, ServiceError};
use crate::state::AppState;

/// A token request as the HTTP layer read it.
pub struct TokenRequest {
    /// The tenant segment of the path: an id or a domain name.
    pub tenant: String,
    /// `scheme://host[:port]` the client used, for the issuer and the assertion audience.
    pub origin: String,
    pub form: HashMap<String, String>,
    /// Client id and secret from an `Authorization: Basic` header.
    pub basic: Option<(String, String)>,
    pub client_addr: Option<IpAddr>,
}

/// Token requests per second per client address, answered with 429 and `Retry-After` beyond.
pub struct RateLimiter {
    limiter: DefaultKeyedRateLimiter<IpAddr>,
}

impl RateLimiter {
    pub fn new(per_second: u32, burst: u32) -> Option<Self> {
        let rate = NonZeroU32::new(per_second)?;
        let burst = NonZeroU32::new(burst.max(per_second)).unwrap_or(rate);
        Some(Self {
            limiter: governor::RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst)),
        })
    }

    fn check(&self, addr: IpAddr) -> std::result::Result<(), TokenError> {
        self.limiter.check_key(&addr).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            TokenError::RateLimited {
                retry_after_secs: wait.as_secs().max(1),
            }
        })
    }
}

fn field<'a>(req: &'a TokenRequest, name: &'static str) -> Option<&'a str> {
    req.form
        .get(name)
        .map(String::as_str)
        .filter(|v| !v.is_empty())
}

fn required<'a>(
    req: &'a TokenRequest,
    name: &'static str,
) -> std::result::Result<&'a str, TokenError> {
    field(req, name).ok_or(TokenError::MissingParameter(name))
}

pub async fn issue(state: &AppState, req: TokenRequest) -> Result<TokenResponse> {
    if let (Some(limiter), Some(addr)) = (&state.rate_limiter, req.client_addr) {
        limiter.check(addr)?;
    }
    let grant = required(&req, "grant_type")?;
    if !["client_credentials", "password", "refresh_token"].contains(&grant) {
        return Err(TokenError::UnsupportedGrantType(grant.to_string()).into());
    }
    let tenant = super::tenants::resolve(state, &req.tenant)
        .await?
        .ok_or_else(|| TokenError::UnknownTenant(req.tenant.clone()))?;
    let result = match grant {
        "client_credentials" => client_credentials(state, &req, &tenant).await,
        "refresh_token" => refresh(state, &req, &tenant).await,
        _ => password(state, &req, &tenant).await,
    };
    let outcome = match &result {
        Ok(_) => "issued",
        Err(_) => "refused",
    };
    metrics::counter!("keyway_token_requests_total", "grant" => grant.to_string(), "outcome" => outcome).increment(1);
    result
}

/// Who the client is, and how it proved it.
struct AuthenticatedClient {
    client: Arc<CachedClient>,
    principal: ServicePrincipal,
    method: ClientAuthMethod,
}

fn client_id_of(req: &TokenRequest) -> std::result::Result<String, TokenError> {
    let form = field(req, "client_id");
    match (&req.basic, form) {
        (Some((b, _)), Some(f)) if b != f => Err(TokenError::Malformed(
            "client_id in the body differs from the one in the Authorization header".into(),
        )),
        (Some((b, _)), _) => Ok(b.clone()),
        (None, Some(f)) => Ok(f.to_string()),
        (None, None) => Err(TokenError::MissingParameter("client_id")),
    }
}

async fn authenticate_client(
    state: &AppState,
    req: &TokenRequest,
    tenant: &Tenant,
    allow_public: bool,
) -> Result<AuthenticatedClient> {
    let client_id = client_id_of(req)?;
    let unknown = || TokenError::UnknownClient {
        client_id: client_id.clone(),
        tenant: tenant.id.to_string(),
    };
    let app_id = Uuid::parse_str(&client_id).map_err(|_| unknown())?;
    let client = state
        .directory
        .client(state, tenant.id, app_id)
        .await?
        .filter(|c| c.record.application.tenant_id == tenant.id)
        .ok_or_else(unknown)?;
    let record = &client.record;
    let principal = record.service_principal.clone().ok_or_else(unknown)?;
    if !principal.account_enabled {
        return Err(TokenError::DisabledClient(client_id).into());
    }
    let now = state.clock.now();
    let secret = req
        .basic
        .as_ref()
        .map(|(_, s)| s.as_str())
        .or_else(|| field(req, "client_secret"));
    let assertion = field(req, "client_assertion");
    let method = match (secret, assertion) {
        (Some(_), Some(_)) => {
            return Err(TokenError::Malformed(
                "send either client_secret or client_assertion, not both".into(),
            )
            .into());
        }
        (Some(secret), None) => {
            check_secret(state, record, &client_id, secret, now)?;
            ClientAuthMethod::Secret
        }
        (None, Some(jwt)) => {
            if field(req, "client_assertion_type") != Some(CLIENT_ASSERTION_TYPE) {
                return Err(TokenError::Malformed(format!(
                    "client_assertion_type must be {CLIENT_ASSERTION_TYPE}"
                ))
                .into());
            }
            check_assertion(state, req, tenant, record, jwt, now).await?;
            ClientAuthMethod::Certificate
        }
        (None, None) if allow_public && record.application.is_fallback_public_client => {
            ClientAuthMethod::None
        }
        (None, None) => return Err(TokenError::MissingClientCredential.into()),
    };
    Ok(AuthenticatedClient {
        client,
        principal,
        method,
    })
}

fn check_secret(
    state: &AppState,
    record: &ClientRecord,
    client_id: &str,
    secret: &str,
    now: time::OffsetDateTime,
) -> std::result::Result<(), TokenError> {
    let presented = state.secrets.hash(secret);
    let mut expired = None;
    for p in &record.passwords {
        if state.secrets.matches(&presented, &p.secret_hash) {
            // A secret made a moment ago on a node whose clock runs ahead is already good here.
            if is_current(p.start - CLOCK_SKEW, p.end, now) {
                return Ok(());
            }
            if p.end <= now {
                expired = Some(p.key_id);
            }
        }
    }
    Err(match expired {
        Some(key_id) => TokenError::ExpiredSecret {
            client_id: client_id.to_string(),
            key_id: key_id.to_string(),
        },
        None => TokenError::InvalidSecret(client_id.to_string()),
    })
}

/// The token endpoint URLs an assertion may be addressed to: the tenant by id, by the segment
/// the client used, and by each of its domain names.
fn audiences(req: &TokenRequest, tenant: &Tenant) -> Vec<String> {
    let mut segments = vec![tenant.id.to_string(), req.tenant.clone()];
    segments.extend(tenant.domains.iter().cloned());
    segments
        .iter()
        .map(|s| format!("{}/{s}/oauth2/v2.0/token", req.origin))
        .collect()
}

async fn check_assertion(
    state: &AppState,
    req: &TokenRequest,
    tenant: &Tenant,
    record: &ClientRecord,
    jwt: &str,
    now: time::OffsetDateTime,
) -> Result<()> {
    let header = assertion::read_header(jwt)?;
    let key = record
        .keys
        .iter()
        .find(|k| {
            header
                .thumbprint
                .matches(&k.thumbprint_sha1, &k.thumbprint_sha256)
        })
        .ok_or_else(|| TokenError::UnknownCertificate(header.thumbprint.as_str().to_string()))?;
    if !is_current(key.start - CLOCK_SKEW, key.end, now) {
        return Err(TokenError::AssertionTime(format!(
            "the certificate {} is valid from {} to {}",
            header.thumbprint.as_str(),
            key.start,
            key.end
        ))
        .into());
    }
    let cert = Certificate::from_der(&key.der)?;
    let client_id = record.application.app_id.to_string();
    let verified = assertion::verify(jwt, &cert, &client_id, &audiences(req, tenant), now)?;
    match state
        .store
        .assertion_record(
            record.application.app_id,
            &verified.jti,
            &verified.claims_hash,
            verified.expires_at,
        )
        .await?
    {
        AssertionUse::New | AssertionUse::Repeat => Ok(()),
        AssertionUse::Conflict => Err(TokenError::AssertionReplay.into()),
    }
}

/// The resource a scope names: an environment of the tenant, or the service principal that
/// represents an API in it.
async fn resolve_resource(state: &AppState, tenant: &Tenant, resource: &str) -> Result<Resource> {
    state
        .directory
        .resource(state, tenant.id, resource, || {
            load_resource(state, tenant, resource)
        })
        .await?
        .ok_or_else(|| TokenError::UnknownResource(resource.to_string()).into())
}

async fn load_resource(
    state: &AppState,
    tenant: &Tenant,
    resource: &str,
) -> Result<Option<Resource>> {
    if let Some(env) = super::environments::from_resource(state, tenant.id, resource).await? {
        return Ok(Some(Resource::Environment(env)));
    }
    let trimmed = resource.trim_end_matches('/');
    if let Some(api) = super::connections::BUILT_IN_RESOURCES
        .iter()
        .find(|r| r.eq_ignore_ascii_case(trimmed))
    {
        return Ok(Some(Resource::BuiltIn(api)));
    }
    let app_id = if trimmed.eq_ignore_ascii_case(GRAPH_RESOURCE_URI) {
        GRAPH_APP_ID
    } else if let Ok(id) = Uuid::parse_str(trimmed) {
        id
    } else {
        let app = state
            .store
            .application_by_identifier_uri(tenant.id, resource)
            .await?;
        let app = match app {
            Some(a) => Some(a),
            None if trimmed != resource => {
                state
                    .store
                    .application_by_identifier_uri(tenant.id, trimmed)
                    .await?
            }
            None => None,
        };
        match app {
            Some(a) => a.app_id,
            None => return Ok(None),
        }
    };
    Ok(state
        .store
        .service_principal_by_app_id(tenant.id, app_id)
        .await?
        .map(Resource::Principal))
}

/// The app roles the client holds on the resource (environments use security roles instead).
fn roles_on(client: &CachedClient, resource: &Resource) -> Vec<String> {
    let Resource::Principal(resource) = resource else {
        return Vec::new();
    };
    let mut roles: Vec<String> = client
        .assignments
        .iter()
        .filter(|a| a.resource_id == resource.id)
        .filter_map(|a| {
            if resource.app_id == GRAPH_APP_ID {
                graph_roles::by_id(a.app_role_id).map(|r| r.value.to_string())
            } else {
                None
            }
        })
        .collect();
    roles.sort();
    roles.dedup();
    roles
}

async fn client_credentials(
    state: &AppState,
    req: &TokenRequest,
    tenant: &Tenant,
) -> Result<TokenResponse> {
    let client = authenticate_client(state, req, tenant, false).await?;
    let scope = required(req, "scope")?;
    let resource_name = scope::client_credentials_resource(scope)
        .map_err(|_| TokenError::InvalidScope(scope.to_string()))?;
    let resource = resolve_resource(state, tenant, &resource_name).await?;
    let roles = roles_on(&client.client, &resource);
    let now = state.clock.now().unix_timestamp();
    let app_id = client.client.record.application.app_id.to_string();
    let claims = AccessTokenClaims {
        aud: resource_name,
        iss: issuer(req, tenant),
        iat: now,
        nbf: now,
        exp: now + ACCESS_TOKEN_LIFETIME.whole_seconds(),
        tid: tenant.id.to_string(),
        oid: client.principal.id.to_string(),
        sub: client.principal.id.to_string(),
        appid: app_id.clone(),
        azp: app_id,
        appidacr: client.method.acr().into(),
        azpacr: client.method.acr().into(),
        roles,
        scp: None,
        upn: None,
        name: None,
        idp: None,
        acct: None,
        idtyp: "app".into(),
        ver: "2.0".into(),
        uti: URL_SAFE_NO_PAD.encode(keyway_crypto::random::bytes::<16>()),
    };
    sign(state, tenant, &claims).await
}

/// The resource of a user's token. An environment of another tenant is named too: Entra issues
/// Dataverse tokens in any tenant (Dataverse is a multi-tenant app), and the environment then
/// refuses a token whose tenant is not its own, saying so.
async fn delegated_resource(state: &AppState, tenant: &Tenant, resource: &str) -> Result<Resource> {
    match resolve_resource(state, tenant, resource).await {
        Err(ServiceError::Token(TokenError::UnknownResource(r))) => {
            let elsewhere = match keyway_core::environment::environment_in_url(
                resource,
                |h| state.is_our_host(h),
                state.config.environment_domain.as_deref(),
            ) {
                Some(name) => state.store.environment_by_name(&name).await?,
                None => None,
            };
            elsewhere
                .map(Resource::Environment)
                .ok_or_else(|| TokenError::UnknownResource(r).into())
        }
        other => other,
    }
}

/// Who signs in with a password at a tenant: a member, or a guest of it through their home
/// account (named by its home name or by the guest's `#EXT#` name). The password checked is
/// always the home account's.
struct SignIn {
    /// The account whose password was checked.
    account: User,
    /// The guest object in this tenant when the account lives in another tenant.
    guest: Option<User>,
}

async fn sign_in(
    state: &AppState,
    req: &TokenRequest,
    tenant: &Tenant,
    username: &str,
    password: String,
) -> Result<SignIn> {
    let named = state.store.user_by_upn(username).await?;
    let (account, guest) = match named {
        Some(g) if g.is_guest() && g.tenant_id == tenant.id => {
            let account = match g.home {
                Some(h) => state.store.user_get(h.tenant_id, h.user_id).await?,
                None => None,
            };
            (account, Some(g))
        }
        // A guest object elsewhere cannot sign in anywhere; its home account can.
        Some(g) if g.is_guest() => (None, None),
        other => (other, None),
    };
    let stored = account
        .as_ref()
        .map(|u| u.password_hash.clone())
        .unwrap_or_else(|| keyway_crypto::password::dummy_hash().to_string());
    // argon2id takes ~20 ms of CPU: keep it off the async threads. An unknown user costs the
    // same as a wrong password, so timing does not reveal who exists.
    let ok =
        tokio::task::spawn_blocking(move || keyway_crypto::password::verify(&password, &stored))
            .await
            .map_err(|e| ServiceError::Internal(format!("password check: {e}")))?;
    let account = match (ok, account) {
        (true, Some(u)) => u,
        _ => return Err(TokenError::InvalidUserCredentials.into()),
    };
    if !account.account_enabled {
        return Err(TokenError::UserDisabled.into());
    }
    if account.tenant_id == tenant.id {
        return Ok(SignIn {
            account,
            guest: None,
        });
    }
    let guest = match guest {
        Some(g) => Some(g),
        None => state.store.user_guest_of(tenant.id, account.id).await?,
    };
    let Some(guest) = guest else {
        return Err(TokenError::UserNotInTenant(Box::new(ForeignAccount {
            user: account.user_principal_name.clone(),
            idp: format!("{}/{}/v2.0", req.origin, account.tenant_id),
            tenant: tenant.id.to_string(),
        }))
        .into());
    };
    if !guest.account_enabled {
        return Err(TokenError::UserDisabled.into());
    }
    Ok(SignIn {
        account,
        guest: Some(guest),
    })
}

async fn password(state: &AppState, req: &TokenRequest, tenant: &Tenant) -> Result<TokenResponse> {
    let client = authenticate_client(state, req, tenant, true).await?;
    let username = required(req, "username")?.to_ascii_lowercase();
    let password = required(req, "password")?.to_string();
    let scope = required(req, "scope")?;
    let delegated = delegated_scope(state, tenant, scope).await?;
    let signed_in = sign_in(state, req, tenant, &username, password).await?;
    let refresh_token = if wants_refresh_token(scope) {
        let now = state.clock.now();
        let issued = state.secrets.generate();
        let record = StoredRefreshToken {
            id: Uuid::now_v7(),
            family_id: Uuid::now_v7(),
            tenant_id: tenant.id,
            user_id: signed_in.user().id,
            account_id: signed_in.account.id,
            client_id: client.client.record.application.app_id,
            auth_time: now,
            issued_at: now,
            expires_at: refresh_deadline(now, now),
            state: RefreshState::Active,
            changed_at: None,
            revoked_reason: None,
        };
        state
            .store
            .refresh_token_create(&record, &issued.hash)
            .await?;
        Some(issued.text)
    } else {
        None
    };
    delegated_token(
        state,
        req,
        tenant,
        &client,
        &signed_in,
        &delegated,
        scope,
        refresh_token,
    )
    .await
}

/// A delegated scope and the resource it names.
struct Delegated {
    scope: scope::DelegatedScope,
    resource: Resource,
}

async fn delegated_scope(state: &AppState, tenant: &Tenant, scope: &str) -> Result<Delegated> {
    let parsed = scope::delegated(scope, GRAPH_RESOURCE_URI)
        .map_err(|_| TokenError::InvalidScope(scope.to_string()))?;
    let resource = delegated_resource(state, tenant, &parsed.resource).await?;
    Ok(Delegated {
        scope: parsed,
        resource,
    })
}

impl SignIn {
    /// The user object the tokens are about: the guest in the tenant, or the member.
    fn user(&self) -> &User {
        self.guest.as_ref().unwrap_or(&self.account)
    }
}

/// `refresh_token` grant: redeem a refresh token (bound to the tenant, the user and the client)
/// for an access token to the same or another resource, and a new refresh token in its place.
async fn refresh(state: &AppState, req: &TokenRequest, tenant: &Tenant) -> Result<TokenResponse> {
    let client = authenticate_client(state, req, tenant, true).await?;
    let presented = required(req, "refresh_token")?;
    let scope = required(req, "scope")?;
    let Some(old) = state
        .store
        .refresh_token_find(&state.secrets.hash(presented))
        .await?
    else {
        return Err(TokenError::InvalidRefreshToken("it is unknown".into()).into());
    };
    if old.tenant_id != tenant.id {
        return Err(
            TokenError::InvalidRefreshToken("it was issued in another tenant".into()).into(),
        );
    }
    if old.client_id != client.client.record.application.app_id {
        return Err(TokenError::InvalidRefreshToken(
            "it was issued to another client application".into(),
        )
        .into());
    }
    // The account's own state answers first, as for a password: 50057 disabled, 50126 deleted.
    let signed_in = signed_in_again(state, tenant, &old).await?;
    let delegated = delegated_scope(state, tenant, scope).await?;
    let now = state.clock.now();
    let issued = state.secrets.generate();
    let next = StoredRefreshToken {
        id: Uuid::now_v7(),
        issued_at: now,
        expires_at: refresh_deadline(old.auth_time, now),
        state: RefreshState::Active,
        changed_at: None,
        revoked_reason: None,
        ..old.clone()
    };
    let refused = match state
        .store
        .refresh_token_rotate(old.id, &next, &issued.hash, now, REFRESH_REUSE_LEEWAY)
        .await?
    {
        Rotation::Rotated => None,
        Rotation::Unknown => Some(TokenError::InvalidRefreshToken("it is unknown".into())),
        Rotation::Reused { family_revoked, .. } => {
            if family_revoked {
                tracing::warn!(family = %old.family_id, user = %old.user_id, "a rotated-out refresh token was redeemed again: its sign-in is revoked");
            }
            Some(TokenError::RefreshTokenReused { family_revoked })
        }
        Rotation::Revoked { at, reason } => {
            Some(TokenError::RefreshTokenRevoked(Box::new(RevokedGrant {
                auth_time: old.auth_time,
                valid_from: at.unwrap_or(now),
                reason: reason.unwrap_or_default(),
            })))
        }
        Rotation::Expired if now >= old.auth_time + REFRESH_TOKEN_MAX_AGE => {
            Some(TokenError::RefreshTokenMaxAge {
                auth_time: old.auth_time,
            })
        }
        Rotation::Expired => Some(TokenError::RefreshTokenInactive {
            issued_at: old.issued_at,
        }),
    };
    if let Some(e) = refused {
        return Err(e.into());
    }
    delegated_token(
        state,
        req,
        tenant,
        &client,
        &signed_in,
        &delegated,
        scope,
        Some(issued.text),
    )
    .await
}

/// The user a refresh token is about, checked as a password sign-in checks them: deleted is a
/// wrong user name (50126), disabled (here or, for a guest, at home) is 50057.
async fn signed_in_again(
    state: &AppState,
    tenant: &Tenant,
    token: &StoredRefreshToken,
) -> Result<SignIn> {
    let user = state
        .store
        .user_get(tenant.id, token.user_id)
        .await?
        .ok_or(TokenError::InvalidUserCredentials)?;
    let signed_in = match user.home {
        Some(home) if user.is_guest() => {
            let account = state
                .store
                .user_get(home.tenant_id, home.user_id)
                .await?
                .ok_or(TokenError::InvalidUserCredentials)?;
            SignIn {
                account,
                guest: Some(user),
            }
        }
        _ => SignIn {
            account: user,
            guest: None,
        },
    };
    if !signed_in.account.account_enabled || !signed_in.user().account_enabled {
        return Err(TokenError::UserDisabled.into());
    }
    Ok(signed_in)
}

/// A delegated access token (and the ID token, client info and refresh token the request
/// asked for) about a signed-in user.
#[allow(clippy::too_many_arguments)]
async fn delegated_token(
    state: &AppState,
    req: &TokenRequest,
    tenant: &Tenant,
    client: &AuthenticatedClient,
    signed_in: &SignIn,
    delegated: &Delegated,
    scope: &str,
    refresh_token: Option<zeroize::Zeroizing<String>>,
) -> Result<TokenResponse> {
    let permissions: Vec<String> = delegated
        .scope
        .permissions
        .iter()
        .map(|p| {
            if p == ".default" {
                "user_impersonation".to_string()
            } else {
                p.clone()
            }
        })
        .collect();
    let now = state.clock.now().unix_timestamp();
    let app_id = client.client.record.application.app_id.to_string();
    let aud = match &delegated.resource {
        Resource::Principal(sp) if sp.app_id == GRAPH_APP_ID => GRAPH_RESOURCE_URI.to_string(),
        _ => delegated.scope.resource.clone(),
    };
    // A guest's token is the inviting tenant's, about the guest object; Entra adds the home
    // identity provider (`idp`) and `acct` = 1, and no `upn`.
    let user = signed_in.user();
    let home_issuer = format!("{}/{}/v2.0", req.origin, signed_in.account.tenant_id);
    let (upn, idp, acct) = match &signed_in.guest {
        Some(_) => (None, Some(home_issuer), Some(1)),
        None => (
            Some(signed_in.account.user_principal_name.clone()),
            None,
            None,
        ),
    };
    let claims = AccessTokenClaims {
        aud,
        iss: issuer(req, tenant),
        iat: now,
        nbf: now,
        exp: now + ACCESS_TOKEN_LIFETIME.whole_seconds(),
        tid: tenant.id.to_string(),
        oid: user.id.to_string(),
        sub: user.id.to_string(),
        appid: app_id.clone(),
        azp: app_id.clone(),
        appidacr: client.method.acr().into(),
        azpacr: client.method.acr().into(),
        roles: vec![],
        scp: Some(permissions.join(" ")),
        upn,
        name: Some(user.display_name.clone()),
        idp: idp.clone(),
        acct,
        idtyp: "user".into(),
        ver: "2.0".into(),
        uti: URL_SAFE_NO_PAD.encode(keyway_crypto::random::bytes::<16>()),
    };
    let mut response = sign(state, tenant, &claims).await?;
    if scope.split_whitespace().any(|s| s == "openid") {
        let id = IdTokenClaims {
            aud: app_id,
            iss: claims.iss.clone(),
            iat: now,
            nbf: now,
            exp: claims.exp,
            sub: claims.sub.clone(),
            oid: claims.oid.clone(),
            tid: claims.tid.clone(),
            name: user.display_name.clone(),
            preferred_username: signed_in.account.user_principal_name.clone(),
            idp,
            ver: "2.0".into(),
        };
        let key = state.signing.signer(state, tenant.id).await?;
        response.id_token = Some(key.sign(&id)?);
    }
    // msal keys its account cache on the home account: for a guest, the home object and tenant.
    if field(req, "client_info") == Some("1") {
        let info = serde_json::json!({
            "uid": signed_in.account.id,
            "utid": signed_in.account.tenant_id,
        });
        response.client_info = Some(URL_SAFE_NO_PAD.encode(info.to_string()));
    }
    response.refresh_token = refresh_token.map(|t| t.to_string());
    Ok(response)
}

pub fn issuer(req: &TokenRequest, tenant: &Tenant) -> String {
    format!("{}/{}/v2.0", req.origin, tenant.id)
}

async fn sign(
    state: &AppState,
    tenant: &Tenant,
    claims: &AccessTokenClaims,
) -> Result<TokenResponse> {
    let key = state.signing.signer(state, tenant.id).await?;
    let access_token = key.sign(claims)?;
    let lifetime = claims.exp - claims.iat - 1;
    Ok(TokenResponse {
        token_type: "Bearer".into(),
        expires_in: lifetime,
        ext_expires_in: lifetime,
        access_token,
        refresh_in: None,
        refresh_token: None,
        id_token: None,
        client_info: None,
    })
}
