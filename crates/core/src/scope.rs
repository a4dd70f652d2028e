//! Scopes as Entra reads them: `{resource}/.default` for app tokens, resource-qualified
//! permissions for delegated ones, and the OpenID scopes that ride along.

const OIDC_SCOPES: [&str; 4] = ["openid", "profile", "offline_access", "email"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScopeError {
    /// Not one `{resource}/.default` (AADSTS1002012).
    Invalid(String),
}

/// The resource of a client-credentials scope: exactly one `{resource}/.default`.
/// OpenID scopes that some clients add are ignored.
pub fn client_credentials_resource(scope: &str) -> Result<String, ScopeError> {
    let items: Vec<&str> = scope
        .split_whitespace()
        .filter(|s| !OIDC_SCOPES.contains(s))
        .collect();
    match items.as_slice() {
        [one] => match one.strip_suffix("/.default") {
            Some(resource) if !resource.is_empty() => Ok(resource.to_string()),
            _ => Err(ScopeError::Invalid(scope.to_string())),
        },
        _ => Err(ScopeError::Invalid(scope.to_string())),
    }
}

/// A delegated request: one resource and the permission names asked of it (`.default` included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DelegatedScope {
    pub resource: String,
    pub permissions: Vec<String>,
}

/// Parse the scopes of a user (password) grant. Every non-OpenID scope must name the same
/// resource; a bare permission name means Microsoft Graph, as in Entra.
pub fn delegated(scope: &str, default_resource: &str) -> Result<DelegatedScope, ScopeError> {
    let mut resource: Option<String> = None;
    let mut permissions = Vec::new();
    for item in scope.split_whitespace() {
        if OIDC_SCOPES.contains(&item) {
            continue;
        }
        let (res, perm) = match item.rsplit_once('/') {
            Some((r, p)) if !r.is_empty() && !p.is_empty() => (r.to_string(), p.to_string()),
            Some(_) => return Err(ScopeError::Invalid(scope.to_string())),
            None => (default_resource.to_string(), item.to_string()),
        };
        match &resource {
            Some(r) if !r.eq_ignore_ascii_case(&res) => {
                return Err(ScopeError::Invalid(scope.to_string()));
            }
            Some(_) => {}
            None => resource = Some(res),
        }
        permissions.push(perm);
    }
    match resource {
        Some(resource) => Ok(DelegatedScope {
            resource,
            permissions,
        }),
        None => Err(ScopeError::Invalid(scope.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_scope_names_its_resource() {
        assert_eq!(
            client_credentials_resource("https://graph.microsoft.com/.default").unwrap(),
            "https://graph.microsoft.com"
        );
        assert_eq!(
            client_credentials_resource("api://x/.default offline_access openid").unwrap(),
            "api://x"
        );
    }

    #[test]
    fn anything_else_is_invalid() {
        for bad in [
            "",
            "https://graph.microsoft.com/User.Read",
            "/.default",
            "a/.default b/.default",
        ] {
            assert!(client_credentials_resource(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn delegated_scopes_share_one_resource() {
        let d = delegated("User.Read openid profile", "https://graph.microsoft.com").unwrap();
        assert_eq!(d.resource, "https://graph.microsoft.com");
        assert_eq!(d.permissions, vec!["User.Read"]);
        let e = delegated("https://x.example/.default", "g").unwrap();
        assert_eq!(e.resource, "https://x.example");
        assert!(delegated("https://a.example/x https://b.example/y", "g").is_err());
        assert!(delegated("openid", "g").is_err());
    }
}
