//! Per-tenant signing keys in memory: the active key to sign with and the published keys to
//! verify with, loaded from the store (unsealed with the key ring) and refreshed every minute so
//! a rotation on another node is picked up. Retired keys stay published until no token they
//! signed can still be valid.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use keyway_crypto::signing::{PublicKey, SigningKey};
use keyway_store::{DirectoryStore, StoredSigningKey};
use serde::de::DeserializeOwned;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use super::{Result, ServiceError};
use crate::state::AppState;

const REFRESH: Duration = Duration::seconds(60);

/// A cached value and when it was loaded.
type Cached<T> = RwLock<HashMap<Uuid, (T, OffsetDateTime)>>;

#[derive(Default)]
pub struct SigningKeys {
    active: Cached<Arc<SigningKey>>,
    published: Cached<Arc<Vec<PublicKey>>>,
}

pub fn seal_aad(kid: &str) -> Vec<u8> {
    format!("signing-key:{kid}").into_bytes()
}

impl SigningKeys {
    /// The key new tokens of `tenant_id` are signed with.
    pub async fn signer(&self, state: &AppState, tenant_id: Uuid) -> Result<Arc<SigningKey>> {
        let now = state.clock.now();
        if let Ok(map) = self.active.read()
            && let Some((key, at)) = map.get(&tenant_id)
            && now - *at < REFRESH
        {
            return Ok(key.clone());
        }
        let rows = state.store.signing_keys(tenant_id).await?;
        let row = rows
            .iter()
            .find(|k| k.retired_at.is_none())
            .ok_or_else(|| {
                ServiceError::Internal(format!("tenant {tenant_id} has no active signing key"))
            })?;
        let pkcs8 = state
            .key_ring
            .open(&row.sealed_private_key, &seal_aad(&row.kid))?;
        let key = Arc::new(SigningKey::from_pkcs8(&row.kid, &pkcs8)?);
        if let Ok(mut map) = self.active.write() {
            map.insert(tenant_id, (key.clone(), now));
        }
        Ok(key)
    }

    /// The keys published in the tenant's JWKS.
    pub async fn published(
        &self,
        state: &AppState,
        tenant_id: Uuid,
        force: bool,
    ) -> Result<Arc<Vec<PublicKey>>> {
        let now = state.clock.now();
        if !force
            && let Ok(map) = self.published.read()
            && let Some((keys, at)) = map.get(&tenant_id)
            && now - *at < REFRESH
        {
            return Ok(keys.clone());
        }
        let rows = state.store.signing_keys(tenant_id).await?;
        let keys = Arc::new(
            rows.iter()
                .map(|k| PublicKey::from_xy(&k.kid, &k.public_x, &k.public_y))
                .collect::<std::result::Result<Vec<_>, _>>()?,
        );
        if let Ok(mut map) = self.published.write() {
            map.insert(tenant_id, (keys.clone(), now));
        }
        Ok(keys)
    }

    /// Forget what is cached for a tenant (after a rotation on this node).
    pub fn invalidate(&self, tenant_id: Uuid) {
        if let Ok(mut m) = self.active.write() {
            m.remove(&tenant_id);
        }
        if let Ok(mut m) = self.published.write() {
            m.remove(&tenant_id);
        }
    }

    /// Verify a token signed by one of a tenant's keys; the tenant is read from the token
    /// first only to choose the keys, and the signature then proves it.
    pub async fn verify<T: DeserializeOwned>(&self, state: &AppState, token: &str) -> Result<T> {
        let bad = |why: &str| {
            ServiceError::Unauthenticated(format!("The access token is invalid: {why}."))
        };
        let kid = keyway_crypto::signing::token_kid(token).ok_or_else(|| bad("no key id"))?;
        let payload = token.split('.').nth(1).ok_or_else(|| bad("not a JWT"))?;
        let bytes = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| bad("not a JWT"))?;
        let unverified: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|_| bad("not a JWT"))?;
        let tid = unverified
            .get("tid")
            .and_then(|t| t.as_str())
            .and_then(|t| Uuid::parse_str(t).ok())
            .ok_or_else(|| bad("no tenant"))?;
        let mut keys = self.published(state, tid, false).await?;
        if !keys.iter().any(|k| k.kid == kid) {
            keys = self.published(state, tid, true).await?;
        }
        let key = keys
            .iter()
            .find(|k| k.kid == kid)
            .ok_or_else(|| bad("signed by an unknown key"))?;
        key.verify(token)
            .map_err(|_| bad("signature validation failed"))
    }
}

/// A new P-256 key for a tenant, sealed for storage.
pub fn new_key(state: &AppState, tenant_id: Uuid, now: OffsetDateTime) -> Result<StoredSigningKey> {
    new_key_with(&state.key_ring.ring(), tenant_id, now)
}

pub fn new_key_with(
    ring: &keyway_crypto::seal::KeyRing,
    tenant_id: Uuid,
    now: OffsetDateTime,
) -> Result<StoredSigningKey> {
    let (key, pkcs8) = SigningKey::generate()?;
    let sealed = ring.seal(&pkcs8, &seal_aad(&key.kid))?;
    Ok(StoredSigningKey {
        kid: key.kid.clone(),
        tenant_id,
        alg: keyway_crypto::signing::ALG_ES256.into(),
        sealed_private_key: sealed,
        public_x: key.public.x.clone(),
        public_y: key.public.y.clone(),
        created_at: now,
        retired_at: None,
    })
}
