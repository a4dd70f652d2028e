//! A stored connection as the domain sees it: where it lives, what it connects with (public
//! values; secrets are sealed elsewhere and only named here), who made it, whom it acts as, and
//! its last known status.

use serde_json::{Map, Value};
use time::OffsetDateTime;
use uuid::Uuid;

/// Which API a connection belongs to (they never see each other's connections).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// Power Platform connectivity: scoped to an environment.
    PowerPlatform,
    /// Adobe Flow Service: scoped to an organization's sandbox.
    FlowService,
}

impl Api {
    pub fn name(self) -> &'static str {
        match self {
            Self::PowerPlatform => "powerplatform",
            Self::FlowService => "flowservice",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::PowerPlatform, Self::FlowService]
            .into_iter()
            .find(|a| a.name() == s)
    }
}

/// Whether the connection works, as its last test found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Not tested yet.
    Unknown,
    Connected,
    /// The target's own error: an AADSTS code from the authority, or the environment's.
    Error {
        code: String,
        message: String,
    },
}

impl Status {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Unknown => "Unknown",
            Self::Connected => "Connected",
            Self::Error { .. } => "Error",
        }
    }
}

/// An identity as connections record it (creator, run owner, grantee).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The directory object id (a user's or a service principal's).
    pub id: Uuid,
    /// `User` or `ServicePrincipal`.
    pub kind: String,
    pub display_name: String,
    pub tenant_id: Uuid,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Connection {
    /// Keyway's own id.
    pub id: Uuid,
    pub api: Api,
    /// The environment id (Power Platform) or `<org>/<sandbox>` (Flow Service).
    pub scope: String,
    /// The name clients address it by: the connection id in the Power Platform URL, or the id.
    pub name: String,
    pub tenant_id: Uuid,
    pub connector: String,
    pub parameter_set: String,
    pub display_name: String,
    pub description: String,
    /// Values that are not secret, as given.
    pub public_values: Map<String, Value>,
    /// The names of the secret values stored (sealed) for it.
    pub secret_fields: Vec<String>,
    pub created_by: Identity,
    pub modified_by: Identity,
    /// Whose runs these are; defaults to the creator.
    pub run_owner: Option<Uuid>,
    pub status: Status,
    pub tested_at: Option<OffsetDateTime>,
    /// When the secret or certificate it uses expires, when known.
    pub expires_at: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
    pub modified_at: OffsetDateTime,
    /// Bumped by every change; the etag.
    pub version: i64,
    /// Whom its own credential has proven to sign in as, since that credential was last set.
    pub proof: Option<Proof>,
}

/// A connection's credential signed in as `identity` (the object id of a token Keyway signed for
/// it) at `at`. Only a proven identity may act for a connection whose credential lapsed: what the
/// parameters merely name (a client id, a username) proves nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Proof {
    pub identity: Uuid,
    pub at: OffsetDateTime,
}

impl Connection {
    /// Days until the credential expires, when known (negative when it has).
    pub fn days_left(&self, now: OffsetDateTime) -> Option<i64> {
        self.expires_at.map(|e| (e - now).whole_days())
    }
}
