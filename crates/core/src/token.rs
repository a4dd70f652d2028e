//! Token issuance in the domain's words: what an access token says, and every reason the token
//! endpoint refuses (the HTTP layer maps each to Entra's AADSTS code in one place).

use serde::{Deserialize, Serialize};
use time::Duration;

/// Lifetime of an access token; `expires_in` is one second less, as Entra reports it.
pub const ACCESS_TOKEN_LIFETIME: Duration = Duration::hours(1);
/// Tolerated clock difference between a client and Keyway.
pub const CLOCK_SKEW: Duration = Duration::minutes(5);
/// The longest a client assertion may be valid for (`exp` − `iat`/`nbf`).
pub const MAX_ASSERTION_LIFETIME: Duration = Duration::minutes(10);
pub const CLIENT_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acr_values_match_entra() {
        assert_eq!(ClientAuthMethod::Secret.acr(), "1");
        assert_eq!(ClientAuthMethod::Certificate.acr(), "2");
        assert_eq!(ClientAuthMethod::None.acr(), "0");
    }
}
