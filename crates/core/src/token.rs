//! Token issuance in the domain's words: what an access token says, and every reason the token
//! endpoint refuses (the HTTP layer maps each to Entra's AADSTS code in one place).

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

/// Lifetime of an access token; `expires_in` is one second less, as Entra reports it.
pub const ACCESS_TOKEN_LIFETIME: Duration = Duration::hours(1);
/// Tolerated clock difference between a client and Keyway.
pub const CLOCK_SKEW: Duration = Duration::minutes(5);
/// The longest a client assertion may be valid for (`exp` − `iat`/`nbf`).
pub const MAX_ASSERTION_LIFETIME: Duration = Duration::minutes(10);
pub const CLIENT_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// A refresh token unused this long expires (Entra's default inactivity limit).
pub const REFRESH_TOKEN_INACTIVITY: Duration = Duration::days(90);
/// However often it is used, a sign-in's refresh tokens end this long after the password was
/// last given.
pub const REFRESH_TOKEN_MAX_AGE: Duration = Duration::days(365);
/// A rotated-out refresh token presented again this soon after its rotation is refused without
/// revoking its sign-in: two nodes of one client racing with the same token is not theft.
pub const REFRESH_REUSE_LEEWAY: Duration = Duration::seconds(10);

/// The deadline of a refresh token issued at `now` for a sign-in at `auth_time`: sliding
/// inactivity, capped by the maximum age.
pub fn refresh_deadline(auth_time: OffsetDateTime, now: OffsetDateTime) -> OffsetDateTime {
    std::cmp::min(
        now + REFRESH_TOKEN_INACTIVITY,
        auth_time + REFRESH_TOKEN_MAX_AGE,
    )
}

/// Whether a scope asks for a refresh token.
pub fn wants_refresh_token(scope: &str) -> bool {
    scope.split_whitespace().any(|s| s == "offline_access")
}

/// The claims of a Keyway access token, app-only or delegated.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AccessTokenClaims {
    pub aud: String,
    pub iss: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    pub tid: String,
    pub oid: String,
    pub sub: String,
    /// The client application (client id).
    pub appid: String,
    pub azp: String,
    /// How the client authenticated: "0" public, "1" secret, "2" certificate.
    pub appidacr: String,
    pub azpacr: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A guest's home identity provider (its home tenant's issuer), as Entra sets it for B2B.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idp: Option<String>,
    /// 1 for a guest, as Entra sets it; absent for members and apps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acct: Option<u8>,
    /// "app" or "user".
    pub idtyp: String,
    pub ver: String,
    /// Unique token id.
    pub uti: String,
}

impl AccessTokenClaims {
    pub fn is_app(&self) -> bool {
        self.idtyp == "app"
    }
}

/// The claims of an ID token (delegated grants whose scope holds `openid`): who signed in, for
/// the client (`aud`). Libraries such as msal read the account's name from it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct IdTokenClaims {
    pub aud: String,
    pub iss: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    pub sub: String,
    pub oid: String,
    pub tid: String,
    pub name: String,
    pub preferred_username: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idp: Option<String>,
    pub ver: String,
}

/// An account of another tenant that tried to sign in where it is no guest (boxed: errors stay
/// small).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForeignAccount {
    pub user: String,
    /// The account's home issuer.
    pub idp: String,
    pub tenant: String,
}

/// How a client proved who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuthMethod {
    None,
    Secret,
    Certificate,
}

impl ClientAuthMethod {
    pub fn acr(self) -> &'static str {
        match self {
            Self::None => "0",
            Self::Secret => "1",
            Self::Certificate => "2",
        }
    }
}

/// Every reason a token request is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("tenant '{0}' not found")]
    UnknownTenant(String),
    #[error("application '{client_id}' was not found in the directory '{tenant}'")]
    UnknownClient { client_id: String, tenant: String },
    #[error("application '{0}' is disabled")]
    DisabledClient(String),
    #[error("invalid client secret provided for '{0}'")]
    InvalidSecret(String),
    #[error("the client secret used by '{client_id}' expired (key id {key_id})")]
    ExpiredSecret { client_id: String, key_id: String },
    #[error("no certificate with thumbprint '{0}' is registered for the application")]
    UnknownCertificate(String),
    #[error("client assertion failed signature validation")]
    BadAssertionSignature,
    #[error("client assertion is not within its valid time range: {0}")]
    AssertionTime(String),
    #[error("client assertion is invalid: {0}")]
    BadAssertion(String),
    #[error("client assertion was already used with different claims")]
    AssertionReplay,
    #[error("client assertion names '{0}', not the client_id of the request")]
    AssertionClientMismatch(String),
    #[error("the request must contain 'client_assertion' or 'client_secret'")]
    MissingClientCredential,
    #[error("the scope '{0}' is not valid")]
    InvalidScope(String),
    #[error("resource '{0}' was not found in the tenant")]
    UnknownResource(String),
    #[error("the grant type '{0}' is not supported")]
    UnsupportedGrantType(String),
    #[error("the request body must contain the parameter '{0}'")]
    MissingParameter(&'static str),
    #[error("malformed request: {0}")]
    Malformed(String),
    #[error("invalid username or password")]
    InvalidUserCredentials,
    #[error("the user account is disabled")]
    UserDisabled,
    /// The password was right, but the account is neither a member of nor a guest in the tenant.
    #[error("user account '{}' from identity provider '{}' does not exist in tenant '{}'", .0.user, .0.idp, .0.tenant)]
    UserNotInTenant(Box<ForeignAccount>),
    #[error("too many requests")]
    RateLimited { retry_after_secs: u64 },
    /// A refresh token that is unknown, malformed, or bound to another client or tenant.
    #[error("the refresh token is invalid: {0}")]
    InvalidRefreshToken(String),
    /// Unused longer than the inactivity limit.
    #[error("the refresh token has expired due to inactivity")]
    RefreshTokenInactive { issued_at: OffsetDateTime },
    /// Its sign-in is older than the maximum age.
    #[error("the refresh token has expired (maximum age)")]
    RefreshTokenMaxAge { auth_time: OffsetDateTime },
    /// Already redeemed; `family_revoked` when this reuse revoked every token of its sign-in.
    #[error("the refresh token was already redeemed")]
    RefreshTokenReused { family_revoked: bool },
    /// Revoked (sign-out everywhere, a disabled account, a new password, or a detected reuse).
    #[error("the refresh token was revoked")]
    RefreshTokenRevoked(Box<RevokedGrant>),
}

/// When a revoked grant was issued and since when its user's tokens are invalid (boxed: errors
/// stay small).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokedGrant {
    pub auth_time: OffsetDateTime,
    pub valid_from: OffsetDateTime,
    /// `signout`, `disabled`, `password` or `reuse`.
    pub reason: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_deadline_slides_until_the_maximum_age() {
        let t0 = OffsetDateTime::UNIX_EPOCH + Duration::days(20_000);
        assert_eq!(refresh_deadline(t0, t0), t0 + Duration::days(90));
        assert_eq!(
            refresh_deadline(t0, t0 + Duration::days(80)),
            t0 + Duration::days(170)
        );
        assert_eq!(
            refresh_deadline(t0, t0 + Duration::days(300)),
            t0 + Duration::days(365),
            "capped a year after the sign-in"
        );
        assert!(wants_refresh_token(
            "openid offline_access https://x/.default"
        ));
        assert!(!wants_refresh_token("https://x/.default offline_accessx"));
    }

    #[test]
    fn acr_values_match_entra() {
        assert_eq!(ClientAuthMethod::Secret.acr(), "1");
        assert_eq!(ClientAuthMethod::Certificate.acr(), "2");
        assert_eq!(ClientAuthMethod::None.acr(), "0");
    }
}
