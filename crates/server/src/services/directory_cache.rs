//! What every request would otherwise read again — for the token endpoint a client with its
//! credentials and role assignments and the principal behind a resource name; for the Web API an
//! environment, its tables, its business units and the calling system user with its privileges —
//! kept in memory for a short time. A write that changes any of them on this node makes every
//! entry stale at once (the store counts such writes); another node's write is seen within `TTL`.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use keyway_core::dataverse::metadata::EntityDef;
use keyway_core::directory::{AppRoleAssignment, ServicePrincipal};
use keyway_core::environment::Environment;
use keyway_core::token::AccessTokenClaims;
use keyway_store::{
    ClientRecord, DirectoryStore, EnvironmentStore, SystemUserAccess, SystemUserKey,
};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use super::Result;
use crate::state::AppState;

/// How stale another node's change may be seen here.
pub const TTL: Duration = Duration::seconds(2);

/// What a scope's resource turned out to be.
#[derive(Debug, Clone)]
pub enum Resource {
    /// An API (Microsoft Graph or an app registration) by its service principal.
    Principal(ServicePrincipal),
    /// An environment's Web API: its tokens' `aud` is the environment URL.
    Environment(keyway_core::environment::Environment),
    /// An API Keyway itself serves under a well-known resource URI (the Power Platform API, the
    /// Flow Service): every tenant has it, as every Entra tenant has Microsoft's first-party APIs.
    BuiltIn(&'static str),
}

#[derive(Debug)]
pub struct CachedClient {
    pub record: ClientRecord,
    pub assignments: Vec<AppRoleAssignment>,
}

/// An environment's business units: (unit, parent).
type UnitTree = Vec<(Uuid, Option<Uuid>)>;

/// Each entry with when it was loaded and the store's write count at that moment.
type Entries<K, V> = RwLock<HashMap<K, (V, OffsetDateTime, u64)>>;

#[derive(Default)]
pub struct DirectoryCache {
    clients: Entries<(Uuid, Uuid), Option<Arc<CachedClient>>>,
    resources: Entries<(Uuid, String), Option<Resource>>,
    environments: Entries<String, Option<Environment>>,
    tables: Entries<Uuid, Arc<Vec<EntityDef>>>,
    units: Entries<Uuid, Arc<UnitTree>>,
    users: Entries<(Uuid, SystemUserKey), Option<SystemUserAccess>>,
    tokens: RwLock<HashMap<String, VerifiedToken>>,
}

/// A bearer token whose signature was checked once: its claims, and the tenant key that signed it
/// (still looked for among the published keys on every use, so a retired key's tokens stop).
struct VerifiedToken {
    claims: Arc<AccessTokenClaims>,
    tenant: Uuid,
    kid: Arc<str>,
}

/// Verified tokens kept at most; past it, expired ones go, then all (tokens are only ever ours).
const MAX_TOKENS: usize = 50_000;

/// Read through a cache map: a fresh entry, or `load` and remember.
async fn cached<K, V, F, Fut>(state: &AppState, map: &Entries<K, V>, key: K, load: F) -> Result<V>
where
    K: std::hash::Hash + Eq,
    V: Clone,
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<V>>,
{
    let now = state.clock.now();
    // Read the count before loading: a write racing the load leaves the entry stale.
    let generation = state.store.directory_generation();
    if let Some(v) = fresh(map, &key, now, generation) {
        return Ok(v);
    }
    let v = load().await?;
    put(map, key, v.clone(), now, generation);
    Ok(v)
}

fn fresh<K: std::hash::Hash + Eq, V: Clone>(
    map: &Entries<K, V>,
    key: &K,
    now: OffsetDateTime,
    generation: u64,
) -> Option<V> {
    let m = map.read().ok()?;
    let (v, at, g) = m.get(key)?;
    (now - *at < TTL && *g == generation).then(|| v.clone())
}

fn put<K: std::hash::Hash + Eq, V>(
    map: &Entries<K, V>,
    key: K,
    v: V,
    now: OffsetDateTime,
    generation: u64,
) {
    if let Ok(mut m) = map.write() {
        // Bounded: an attacker cycling client ids must not grow it without end.
        if m.len() > 100_000 {
            m.retain(|_, (_, at, g)| now - *at < TTL && *g == generation);
        }
        m.insert(key, (v, now, generation));
    }
}

impl DirectoryCache {
    /// The claims of a bearer token signed by one of its tenant's published keys. An ECDSA check
    /// costs more than the rest of a Web API read, so a token is verified once and then found by
    /// its whole text until it expires; expiry, audience and tenant are still checked by the caller
    /// on every request, and the signing key must still be published.
    pub async fn verified_token(
        &self,
        state: &AppState,
        token: &str,
    ) -> Result<Arc<AccessTokenClaims>> {
        let hit = self.tokens.read().ok().and_then(|m| {
            m.get(token)
                .map(|v| (v.claims.clone(), v.tenant, v.kid.clone()))
        });
        if let Some((claims, tenant, kid)) = hit {
            let keys = state.signing.published(state, tenant, false).await?;
            if keys.iter().any(|k| *k.kid == *kid) {
                return Ok(claims);
            }
        }
        let claims: Arc<AccessTokenClaims> = Arc::new(state.signing.verify(state, token).await?);
        let (Some(kid), Ok(tenant)) = (
            keyway_crypto::signing::token_kid(token),
            Uuid::parse_str(&claims.tid),
        ) else {
            return Ok(claims);
        };
        let now = state.clock.now().unix_timestamp();
        if let Ok(mut m) = self.tokens.write() {
            if m.len() >= MAX_TOKENS {
                m.retain(|_, v| v.claims.exp > now);
                if m.len() >= MAX_TOKENS {
                    m.clear();
                }
            }
            m.insert(
                token.to_string(),
                VerifiedToken {
                    claims: claims.clone(),
                    tenant,
                    kid: kid.into(),
                },
            );
        }
        Ok(claims)
    }

    pub async fn environment(&self, state: &AppState, name: &str) -> Result<Option<Environment>> {
        cached(state, &self.environments, name.to_string(), || async {
            Ok(state.store.environment_by_name(name).await?)
        })
        .await
    }

    pub async fn tables(&self, state: &AppState, env: &Environment) -> Result<Arc<Vec<EntityDef>>> {
        cached(state, &self.tables, env.id, || async {
            Ok(Arc::new(state.store.environment_tables(env.id).await?))
        })
        .await
    }

    pub async fn business_units(
        &self,
        state: &AppState,
        env: &Environment,
    ) -> Result<Arc<UnitTree>> {
        cached(state, &self.units, env.id, || async {
            Ok(Arc::new(state.store.business_units(env).await?))
        })
        .await
    }

    pub async fn system_user(
        &self,
        state: &AppState,
        env: &Environment,
        key: SystemUserKey,
    ) -> Result<Option<SystemUserAccess>> {
        cached(state, &self.users, (env.id, key), || async {
            Ok(state.store.dataverse_user(env, key).await?)
        })
        .await
    }

    pub async fn client(
        &self,
        state: &AppState,
        tenant_id: Uuid,
        app_id: Uuid,
    ) -> Result<Option<Arc<CachedClient>>> {
        let now = state.clock.now();
        // Read the count before loading: a write racing the load leaves the entry stale.
        let generation = state.store.directory_generation();
        if let Some(v) = fresh(&self.clients, &(tenant_id, app_id), now, generation) {
            return Ok(v);
        }
        let loaded = match state.store.client_record(tenant_id, app_id).await? {
            Some(record) => {
                let assignments = match &record.service_principal {
                    Some(sp) => state.store.app_role_assignments(tenant_id, sp.id).await?,
                    None => Vec::new(),
                };
                Some(Arc::new(CachedClient {
                    record,
                    assignments,
                }))
            }
            // Microsoft's first-party public clients exist in every tenant, registered or not.
            None => keyway_core::directory::first_party_client(tenant_id, app_id, now).map(
                |(application, sp)| {
                    Arc::new(CachedClient {
                        record: ClientRecord {
                            application,
                            service_principal: Some(sp),
                            passwords: Vec::new(),
                            keys: Vec::new(),
                        },
                        assignments: Vec::new(),
                    })
                },
            ),
        };
        put(
            &self.clients,
            (tenant_id, app_id),
            loaded.clone(),
            now,
            generation,
        );
        Ok(loaded)
    }

    pub async fn resource<F, Fut>(
        &self,
        state: &AppState,
        tenant_id: Uuid,
        name: &str,
        load: F,
    ) -> Result<Option<Resource>>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Option<Resource>>>,
    {
        let now = state.clock.now();
        let generation = state.store.directory_generation();
        let key = (tenant_id, name.to_ascii_lowercase());
        if let Some(v) = fresh(&self.resources, &key, now, generation) {
            return Ok(v);
        }
        let loaded = load().await?;
        put(&self.resources, key, loaded.clone(), now, generation);
        Ok(loaded)
    }
}
