//! Environments (DEV, TEST, PROD…): each a Dataverse-style record store with its own URL,
//! owned by a tenant. Their names are part of URLs, so they are checked here.

use time::OffsetDateTime;
use uuid::Uuid;

use crate::directory::DirectoryError;

/// Dataverse's own application id: the resource an environment's tokens are for.
pub const DATAVERSE_APP_ID: Uuid = uuid::uuid!("00000007-0000-0000-c000-000000000000");

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Environment {
    pub id: Uuid,
    pub tenant_id: Uuid,
    /// Lower-case, URL-safe: `https://<server>/env/<name>` or `https://<name>.<domain>`.
    pub name: String,
    /// A small number unique on the server; names the environment's SQL tables.
    pub number: i64,
    /// The object id (service principal or user) that created it: its first System Administrator.
    pub created_by: Uuid,
    pub created_at: OffsetDateTime,
}

/// `dev`, `test`, `prod-eu`: 1–32 characters, a lower-case letter first, then letters, digits
/// and single hyphens; case is folded.
pub fn validate_name(name: &str) -> Result<String, DirectoryError> {
    let n = name.trim().to_ascii_lowercase();
    let ok = (1..=32).contains(&n.len())
        && n.starts_with(|c: char| c.is_ascii_lowercase())
        && !n.ends_with('-')
        && !n.contains("--")
        && n.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !ok {
        return Err(DirectoryError::invalid(
            "name",
            format!(
                "'{name}' is not an environment name: use 1-32 lower-case letters, digits and hyphens, starting with a letter (e.g. dev, test, prod-eu)"
            ),
        ));
    }
    Ok(n)
}

/// Where an environment is reached, relative to the server's URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvironmentAddress {
    /// `{origin}/env/{name}`
    Path(String),
    /// `https://{name}.{domain}`
    Host(String),
}

/// Which environment a resource URL names, given the hosts this server answers to and an
/// optional environment domain. `None` when the URL is not one of ours.
pub fn environment_in_url(
    url: &str,
    is_our_host: impl Fn(&str) -> bool,
    domain: Option<&str>,
) -> Option<String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let host = host_of(authority);
    let path = path.trim_end_matches('/');
    if let Some(name) = path.strip_prefix("/env/")
        && is_our_host(&host)
        && !name.contains('/')
    {
        return validate_name(name).ok();
    }
    if path.is_empty()
        && let Some(domain) = domain
        && let Some(name) = host.strip_suffix(&format!(".{}", domain.to_ascii_lowercase()))
    {
        return validate_name(name).ok();
    }
    None
}

fn host_of(authority: &str) -> String {
    if let Some(rest) = authority.strip_prefix('[') {
        return rest
            .split(']')
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
    }
    authority
        .rsplit_once(':')
        .map(|(h, _)| h)
        .unwrap_or(authority)
        .to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(validate_name("DEV").unwrap(), "dev");
        assert_eq!(validate_name("prod-eu2").unwrap(), "prod-eu2");
        for bad in ["", "1dev", "dev-", "de--v", "dev_1", "a/b", &"x".repeat(33)] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn urls_name_environments_only_on_our_hosts() {
        let ours = |h: &str| h == "127.0.0.1" || h == "localhost";
        assert_eq!(
            environment_in_url("https://127.0.0.1:8443/env/dev", ours, None).as_deref(),
            Some("dev")
        );
        assert_eq!(
            environment_in_url("https://localhost:8443/env/dev/", ours, None).as_deref(),
            Some("dev")
        );
        assert_eq!(
            environment_in_url("https://evil.example/env/dev", ours, None),
            None
        );
        assert_eq!(
            environment_in_url("https://127.0.0.1/env/dev/x", ours, None),
            None
        );
        assert_eq!(
            environment_in_url("https://dev.crm.example.com", ours, Some("crm.example.com"))
                .as_deref(),
            Some("dev")
        );
        assert_eq!(
            environment_in_url(
                "https://dev.crm.example.com/",
                ours,
                Some("crm.example.com")
            )
            .as_deref(),
            Some("dev")
        );
        assert_eq!(
            environment_in_url("https://dev.other.com", ours, Some("crm.example.com")),
            None
        );
        assert_eq!(environment_in_url("api://orders", ours, None), None);
    }
}
