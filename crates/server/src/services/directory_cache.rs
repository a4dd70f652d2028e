//! What the token endpoint reads on every request — a client with its credentials and role
//! assignments, and the principal behind a resource name — kept in memory for a short time.
//! A directory write on this node makes every entry stale at once (the store counts writes);
//! another node's write is seen here within `TTL`.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use keyway_core::directory::{AppRoleAssignment, ServicePrincipal};
use keyway_store::{ClientRecord, DirectoryStore};
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
}

#[derive(Debug)]
pub struct CachedClient {
    pub record: ClientRecord,
    pub assignments: Vec<AppRoleAssignment>,
}

/// Each entry with when it was loaded and the store's write count at that moment.
type Entries<K, V> = RwLock<HashMap<K, (V, OffsetDateTime, u64)>>;

#[derive(Default)]
pub struct DirectoryCache {
    clients: Entries<(Uuid, Uuid), Option<Arc<CachedClient>>>,
    resources: Entries<(Uuid, String), Option<Resource>>,
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
            None => None,
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
