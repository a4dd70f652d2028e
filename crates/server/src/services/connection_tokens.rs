//! Access tokens that connections obtained, kept until shortly before they expire: a warm
//! connection costs one map lookup, and a token is replaced before it runs out — never only after
//! a call fails with 401.

use std::collections::HashMap;
use std::sync::Mutex;

use time::{Duration, OffsetDateTime};
use uuid::Uuid;
use zeroize::Zeroizing;

/// Whose token: a connection at one version (a change of its secrets is a new version) for one
/// resource.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TokenKey {
    pub connection: Uuid,
    pub version: i64,
    pub resource: String,
}

struct Cached {
    token: Zeroizing<String>,
    issued_at: OffsetDateTime,
    expires_at: OffsetDateTime,
}

impl Cached {
    /// Renew when less than a fifth of the lifetime (at most five minutes) is left.
    fn fresh(&self, now: OffsetDateTime) -> bool {
        let lifetime: Duration = self.expires_at - self.issued_at;
        let margin = std::cmp::min(lifetime / 5_i32, Duration::minutes(5));
        now < self.expires_at - margin
    }
}

#[derive(Default)]
pub struct TokenCache {
    inner: Mutex<HashMap<TokenKey, Cached>>,
}

impl TokenCache {
    /// A token that is still fresh at `now`.
    pub fn get(&self, key: &TokenKey, now: OffsetDateTime) -> Option<Zeroizing<String>> {
        let map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        map.get(key)
            .filter(|c| c.fresh(now))
            .map(|c| c.token.clone())
    }

    pub fn put(
        &self,
        key: TokenKey,
        token: Zeroizing<String>,
        issued_at: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) {
        let mut map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|k, c| {
            k.connection != key.connection || k.version >= key.version && c.fresh(issued_at)
        });
        map.insert(
            key,
            Cached {
                token,
                issued_at,
                expires_at,
            },
        );
    }

    /// Drop every token of a connection (deleted, or its secrets changed).
    pub fn forget(&self, connection: Uuid) {
        let mut map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|k, _| k.connection != connection);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_renewed_before_they_expire() {
        let cache = TokenCache::default();
        let t0 = OffsetDateTime::UNIX_EPOCH + Duration::days(20000);
        let key = TokenKey {
            connection: Uuid::new_v4(),
            version: 1,
            resource: "r".into(),
        };
        cache.put(
            key.clone(),
            Zeroizing::new("t".into()),
            t0,
            t0 + Duration::hours(1),
        );
        assert!(cache.get(&key, t0 + Duration::minutes(54)).is_some());
        assert!(
            cache.get(&key, t0 + Duration::minutes(56)).is_none(),
            "renewed 5 minutes early"
        );
        let short = TokenKey {
            version: 2,
            ..key.clone()
        };
        cache.put(
            short.clone(),
            Zeroizing::new("u".into()),
            t0,
            t0 + Duration::minutes(10),
        );
        assert!(cache.get(&short, t0 + Duration::minutes(7)).is_some());
        assert!(
            cache.get(&short, t0 + Duration::minutes(9)).is_none(),
            "a fifth of a short life"
        );
        assert!(
            cache.get(&key, t0).is_none(),
            "an older version went with the new one"
        );
        cache.forget(key.connection);
        assert!(cache.get(&short, t0).is_none());
    }
}
