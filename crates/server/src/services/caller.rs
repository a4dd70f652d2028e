//! Who is calling the management API: a verified Keyway access token for Microsoft Graph.

use keyway_core::graph_roles::{GRAPH_APP_ID, GRAPH_RESOURCE_URI, Permission};
use keyway_core::token::{AccessTokenClaims, CLOCK_SKEW};
use uuid::Uuid;

use super::{Result, ServiceError};
use crate::state::AppState;

#[derive(Debug, Clone)]
pub struct Caller {
    pub tenant_id: Uuid,
    pub app_id: Uuid,
    /// The service principal or user the token was issued to.
    pub object_id: Uuid,
    pub is_app: bool,
    pub roles: Vec<String>,
}

impl Caller {
    pub fn require(&self, p: Permission) -> Result<()> {
        if p.is_granted(&self.roles) {
            return Ok(());
        }
        Err(ServiceError::Forbidden(format!(
            "Insufficient privileges to complete the operation: the token needs one of the roles {}. An administrator can grant one with `keyway sp role add`.",
            p.granted_by().join(", ")
        )))
    }
}

/// Verify a bearer token meant for the management API (audience Microsoft Graph).
pub async fn authenticate(state: &AppState, token: &str) -> Result<Caller> {
    let claims: AccessTokenClaims = state.signing.verify(state, token).await?;
    let now = state.clock.now().unix_timestamp();
    let skew = CLOCK_SKEW.whole_seconds();
    if claims.exp + skew <= now {
        return Err(ServiceError::Unauthenticated(
            "Lifetime validation failed, the token is expired.".into(),
        ));
    }
    if claims.nbf - skew > now {
        return Err(ServiceError::Unauthenticated(
            "The token is not yet valid.".into(),
        ));
    }
    let aud = claims.aud.trim_end_matches('/');
    if !aud.eq_ignore_ascii_case(GRAPH_RESOURCE_URI) && aud != GRAPH_APP_ID.to_string() {
        return Err(ServiceError::Unauthenticated(format!(
            "Invalid audience '{}': ask for a token with scope {GRAPH_RESOURCE_URI}/.default.",
            claims.aud
        )));
    }
    let parse = |s: &str, what: &str| {
        Uuid::parse_str(s)
            .map_err(|_| ServiceError::Unauthenticated(format!("The token's {what} is not valid.")))
    };
    Ok(Caller {
        tenant_id: parse(&claims.tid, "tid")?,
        app_id: parse(&claims.appid, "appid")?,
        object_id: parse(&claims.oid, "oid")?,
        is_app: claims.is_app(),
        roles: claims.roles,
    })
}
