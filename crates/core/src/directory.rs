//! The directory: tenants, app registrations, their credentials, service principals and users,
//! with the rules that hold whatever API or store touches them.

use std::fmt;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

/// How long a new client secret lives when the caller does not say (Entra's portal default).
pub const DEFAULT_SECRET_LIFETIME: Duration = Duration::days(180);
/// The longest a client secret may live (Entra: 24 months).
pub const MAX_SECRET_LIFETIME: Duration = Duration::days(731);
const MAX_NAME_LEN: usize = 256;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    pub id: Uuid,
    pub display_name: String,
    pub domains: Vec<String>,
    /// The tenant made at first start; its administrators manage the whole server.
    pub is_system: bool,
    pub created_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Application {
    /// Graph's object id.
    pub id: Uuid,
    pub tenant_id: Uuid,
    /// The client id.
    pub app_id: Uuid,
    pub display_name: String,
    pub sign_in_audience: String,
    pub identifier_uris: Vec<String>,
    /// May this app use the password grant without a client credential (a public client)?
    pub is_fallback_public_client: bool,
    pub created_at: OffsetDateTime,
}

/// A client secret. The secret itself is never kept: only its keyed hash.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordCredential {
    pub key_id: Uuid,
    pub application_id: Uuid,
    pub display_name: Option<String>,
    pub hint: String,
    pub start: OffsetDateTime,
    pub end: OffsetDateTime,
    pub secret_hash: Vec<u8>,
}

impl fmt::Debug for PasswordCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasswordCredential")
            .field("key_id", &self.key_id)
            .field("hint", &self.hint)
            .field("end", &self.end)
            .finish_non_exhaustive()
    }
}

/// A certificate registered on an application; assertions signed by its key authenticate the app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyCredential {
    pub key_id: Uuid,
    pub application_id: Uuid,
    pub display_name: Option<String>,
    /// SHA-1 thumbprint, base64url without padding (the `x5t` an assertion names).
    pub thumbprint_sha1: String,
    /// SHA-256 thumbprint, base64url without padding (`x5t#S256`).
    pub thumbprint_sha256: String,
    pub der: Vec<u8>,
    pub start: OffsetDateTime,
    pub end: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServicePrincipal {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub app_id: Uuid,
    pub display_name: String,
    pub account_enabled: bool,
    pub app_owner_organization_id: Option<Uuid>,
    pub created_at: OffsetDateTime,
}

#[derive(Clone, PartialEq, Eq)]
pub struct User {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub user_principal_name: String,
    pub display_name: String,
    pub mail_nickname: String,
    pub account_enabled: bool,
    /// argon2id PHC string; empty for a guest, who signs in with their home account's password.
    pub password_hash: String,
    pub created_at: OffsetDateTime,
    pub user_type: UserType,
    /// The guest's address as invited (Graph's `mail`); none for members.
    pub mail: Option<String>,
    /// For a guest: the account in another tenant that signs in for it.
    pub home: Option<HomeAccount>,
}

/// Graph's `userType`: a member of the tenant, or a guest invited from another one (B2B).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserType {
    Member,
    Guest,
}

impl UserType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Member => "Member",
            Self::Guest => "Guest",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "Member" => Some(Self::Member),
            "Guest" => Some(Self::Guest),
            _ => None,
        }
    }
}

/// Where a guest really lives: their home tenant and their user object there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HomeAccount {
    pub tenant_id: Uuid,
    pub user_id: Uuid,
}

impl User {
    pub fn is_guest(&self) -> bool {
        self.user_type == UserType::Guest
    }
}

/// The user principal name Entra gives a guest in the inviting tenant:
/// `alice@contoso.example` invited into `fabrikam.example` is
/// `alice_contoso.example#EXT#@fabrikam.example`.
pub fn guest_user_principal_name(address: &str, inviting_domain: &str) -> String {
    normalize_upn(&format!(
        "{}#EXT#@{inviting_domain}",
        address.trim().replace('@', "_")
    ))
}

/// User principal names compare without regard to case: they are kept in lower case, except
/// a guest's `#EXT#` marker, kept as Entra writes it (members' names cannot hold `#`).
pub fn normalize_upn(upn: &str) -> String {
    upn.trim().to_ascii_lowercase().replace("#ext#@", "#EXT#@")
}

impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("user_principal_name", &self.user_principal_name)
            .field("account_enabled", &self.account_enabled)
            .field("user_type", &self.user_type)
            .field("home", &self.home)
            .finish_non_exhaustive()
    }
}

/// An app role of a resource granted to a service principal (Graph's appRoleAssignment).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppRoleAssignment {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub principal_id: Uuid,
    pub resource_id: Uuid,
    pub app_role_id: Uuid,
    pub created_at: OffsetDateTime,
}

/// Why a directory change or lookup was refused, in the domain's words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DirectoryError {
    #[error("{kind} '{id}' was not found")]
    NotFound { kind: &'static str, id: String },
    #[error("invalid value for '{field}': {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Forbidden(String),
}

impl DirectoryError {
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            reason: reason.into(),
        }
    }

    pub fn not_found(kind: &'static str, id: impl fmt::Display) -> Self {
        Self::NotFound {
            kind,
            id: id.to_string(),
        }
    }
}

/// A display name as Graph accepts it: present, trimmed, not absurdly long.
pub fn validate_display_name(field: &'static str, name: &str) -> Result<String, DirectoryError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(DirectoryError::invalid(field, "must not be empty"));
    }
    if name.chars().count() > MAX_NAME_LEN {
        return Err(DirectoryError::invalid(
            field,
            format!("must be at most {MAX_NAME_LEN} characters"),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(DirectoryError::invalid(
            field,
            "must not contain control characters",
        ));
    }
    Ok(name.to_string())
}

/// The validity window of a new client secret: from now to the requested end, 180 days when
/// none is asked for, never more than two years, never already over.
pub fn secret_validity(
    now: OffsetDateTime,
    requested_start: Option<OffsetDateTime>,
    requested_end: Option<OffsetDateTime>,
) -> Result<(OffsetDateTime, OffsetDateTime), DirectoryError> {
    let start = requested_start.unwrap_or(now);
    let end = requested_end.unwrap_or(start + DEFAULT_SECRET_LIFETIME);
    if end <= start || end <= now {
        return Err(DirectoryError::invalid(
            "endDateTime",
            "must be later than startDateTime and than now",
        ));
    }
    if end - start > MAX_SECRET_LIFETIME {
        return Err(DirectoryError::invalid(
            "endDateTime",
            "a client secret may live at most 2 years (24 months)",
        ));
    }
    Ok((start, end))
}

/// A tenant domain name: lower case DNS labels, at least two of them.
pub fn validate_domain(domain: &str) -> Result<String, DirectoryError> {
    let d = domain.trim().to_ascii_lowercase();
    let labels: Vec<&str> = d.split('.').collect();
    let label_ok = |l: &&str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    if labels.len() < 2 || d.len() > 253 || !labels.iter().all(label_ok) {
        return Err(DirectoryError::invalid(
            "domains",
            format!("'{domain}' is not a domain name such as contoso.example"),
        ));
    }
    Ok(d)
}

/// A user principal name `alias@domain` whose domain belongs to the tenant.
pub fn validate_user_principal_name(upn: &str, tenant: &Tenant) -> Result<String, DirectoryError> {
    let upn = upn.trim().to_ascii_lowercase();
    let Some((alias, domain)) = upn.split_once('@') else {
        return Err(DirectoryError::invalid(
            "userPrincipalName",
            "must look like alias@domain",
        ));
    };
    let alias_ok = !alias.is_empty()
        && alias.len() <= 64
        && alias
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-+'".contains(c));
    if !alias_ok {
        return Err(DirectoryError::invalid(
            "userPrincipalName",
            "the part before @ may hold letters, digits and . _ - + ' only",
        ));
    }
    if !tenant.domains.iter().any(|d| d == domain) {
        return Err(DirectoryError::invalid(
            "userPrincipalName",
            format!(
                "the domain '{domain}' is not a domain of this tenant (its domains: {})",
                tenant.domains.join(", ")
            ),
        ));
    }
    Ok(upn)
}

/// People's passwords: long enough to matter, short enough to hash.
pub fn validate_password(password: &str) -> Result<(), DirectoryError> {
    let n = password.chars().count();
    if !(8..=256).contains(&n) {
        return Err(DirectoryError::invalid(
            "passwordProfile.password",
            "must be between 8 and 256 characters",
        ));
    }
    Ok(())
}

/// Is a credential usable at `now`?
/// Microsoft's first-party public clients, which every Entra tenant accepts for people's sign-ins
/// without an app registration of its own: (app id, display name). Dynamics' client is the one the
/// Flow Service signs Dynamics users in through.
pub const FIRST_PARTY_PUBLIC_CLIENTS: [(Uuid, &str); 3] = [
    (
        uuid::uuid!("51f81489-12ee-4a9e-aaae-a2591f45987d"),
        "Microsoft Dynamics CRM",
    ),
    (
        uuid::uuid!("04b07795-8ddb-461a-bbee-02f9e1bf7b46"),
        "Microsoft Azure CLI",
    ),
    (
        uuid::uuid!("1950a258-227b-4e31-a9cf-717495945fc2"),
        "Microsoft Azure PowerShell",
    ),
];

/// A first-party public client as tenant `tenant_id` sees it: an application that is a public
/// client, and its service principal there (ids derived from both, so every node agrees).
pub fn first_party_client(
    tenant_id: Uuid,
    app_id: Uuid,
    created_at: OffsetDateTime,
) -> Option<(Application, ServicePrincipal)> {
    let (_, name) = FIRST_PARTY_PUBLIC_CLIENTS
        .iter()
        .find(|(id, _)| *id == app_id)?;
    let derive = |what: &str| Uuid::new_v5(&app_id, format!("{what}:{tenant_id}").as_bytes());
    Some((
        Application {
            id: derive("application"),
            tenant_id,
            app_id,
            display_name: (*name).to_string(),
            sign_in_audience: "AzureADMultipleOrgs".into(),
            identifier_uris: vec![],
            is_fallback_public_client: true,
            created_at,
        },
        ServicePrincipal {
            id: derive("servicePrincipal"),
            tenant_id,
            app_id,
            display_name: (*name).to_string(),
            account_enabled: true,
            app_owner_organization_id: None,
            created_at,
        },
    ))
}

pub fn is_current(start: OffsetDateTime, end: OffsetDateTime, now: OffsetDateTime) -> bool {
    start <= now && now < end
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn tenant() -> Tenant {
        Tenant {
            id: Uuid::nil(),
            display_name: "t".into(),
            domains: vec!["contoso.example".into()],
            is_system: false,
            created_at: datetime!(2026-01-01 00:00 UTC),
        }
    }

    #[test]
    fn first_party_public_clients_exist_in_every_tenant_with_stable_ids() {
        let now = datetime!(2026-01-01 00:00 UTC);
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let dynamics = FIRST_PARTY_PUBLIC_CLIENTS[0].0;
        let (app_a, sp_a) = first_party_client(a, dynamics, now).unwrap();
        let (app_b, sp_b) = first_party_client(b, dynamics, now).unwrap();
        assert!(app_a.is_fallback_public_client && sp_a.account_enabled);
        assert_eq!((app_a.tenant_id, sp_a.tenant_id), (a, a));
        assert_ne!(
            sp_a.id, sp_b.id,
            "each tenant has its own service principal"
        );
        assert_ne!(app_a.id, app_b.id);
        assert_eq!(first_party_client(a, dynamics, now).unwrap().1.id, sp_a.id);
        assert!(first_party_client(a, Uuid::new_v4(), now).is_none());
    }

    #[test]
    fn secret_defaults_to_180_days_and_caps_at_two_years() {
        let now = datetime!(2026-01-01 00:00 UTC);
        let (s, e) = secret_validity(now, None, None).unwrap();
        assert_eq!((s, e - s), (now, Duration::days(180)));
        assert!(secret_validity(now, None, Some(now + Duration::days(731))).is_ok());
        assert!(secret_validity(now, None, Some(now + Duration::days(732))).is_err());
        assert!(secret_validity(now, None, Some(now - Duration::days(1))).is_err());
    }

    #[test]
    fn upn_domain_must_belong_to_tenant() {
        let t = tenant();
        assert_eq!(
            validate_user_principal_name("Alice@Contoso.example", &t).unwrap(),
            "alice@contoso.example"
        );
        assert!(validate_user_principal_name("alice@other.example", &t).is_err());
        assert!(validate_user_principal_name("alice", &t).is_err());
        assert!(validate_user_principal_name("a b@contoso.example", &t).is_err());
    }

    #[test]
    fn guests_are_named_as_entra_names_them() {
        assert_eq!(
            guest_user_principal_name("Alice@Contoso.example", "fabrikam.example"),
            "alice_contoso.example#EXT#@fabrikam.example"
        );
        assert_eq!(
            normalize_upn(" Alice_Contoso.example#ext#@Fabrikam.example"),
            "alice_contoso.example#EXT#@fabrikam.example"
        );
        assert_eq!(normalize_upn("Bob@Contoso.example"), "bob@contoso.example");
        assert_eq!(UserType::parse("Guest"), Some(UserType::Guest));
        assert_eq!(UserType::Member.as_str(), "Member");
        assert_eq!(UserType::parse("guest"), None);
    }

    #[test]
    fn names_and_domains_are_checked() {
        assert!(validate_display_name("displayName", "  ").is_err());
        assert_eq!(validate_display_name("displayName", " x ").unwrap(), "x");
        assert!(validate_domain("contoso").is_err());
        assert!(validate_domain("-a.example").is_err());
        assert_eq!(
            validate_domain("Fabrikam.Example").unwrap(),
            "fabrikam.example"
        );
    }
}
