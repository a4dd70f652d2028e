//! Sealing connection secrets: envelope encryption, AES-256-GCM under a data key with the owning
//! record and field bound as associated data, so a sealed value cannot be moved to another
//! connection or field. Every ciphertext names its data key; data keys are stored only wrapped
//! by the master key ring, so a master key rotation re-wraps them and never touches a secret.
//! Data keys are unwrapped once at start and held in memory (their key schedules are cleansed
//! when dropped), so sealing and opening never wait on the database or on a rotation.

use std::sync::RwLock;

use keyway_crypto::CryptoError;
use keyway_crypto::envelope::{DataKey, DataKeySet};
use keyway_crypto::seal::KeyRing;
use keyway_store::{DataKeyStore, StoredDataKey};
use time::OffsetDateTime;
use zeroize::Zeroizing;

use super::{Result, ServiceError};
use crate::state::AppState;

/// The unwrapped data keys this server holds.
#[derive(Default)]
pub struct Vault {
    keys: RwLock<DataKeySet>,
}

impl Vault {
    /// Unwrap every stored data key with the master ring, making the first one if the
    /// database has none (nodes starting together agree on one).
    pub async fn load(
        store: &dyn DataKeyStore,
        master: &KeyRing,
        now: OffsetDateTime,
    ) -> anyhow::Result<Self> {
        let mut stored = store.data_keys().await?;
        if stored.is_empty() {
            let (key, wrapped) = DataKey::generate(master)?;
            stored = store
                .data_key_first(&StoredDataKey {
                    id: key.id().to_string(),
                    generation: 1,
                    wrapped,
                    created_at: now,
                })
                .await?;
        }
        let mut set = DataKeySet::default();
        for (i, k) in stored.iter().enumerate() {
            let key = DataKey::unwrap(master, &k.id, &k.wrapped).map_err(|e| {
                anyhow::anyhow!(
                    "data key '{}' cannot be unwrapped ({e}): is KEYWAY_MASTER_KEY or master.key the one it was made with?",
                    k.id
                )
            })?;
            // The newest generation (listed first) seals.
            set.insert(key, i == 0);
        }
        Ok(Self {
            keys: RwLock::new(set),
        })
    }

    /// The id of the data key new secrets are sealed under.
    pub fn current_id(&self) -> Option<String> {
        self.read(|s| s.current_id().map(str::to_string))
    }

    fn read<T>(&self, f: impl FnOnce(&DataKeySet) -> T) -> T {
        match self.keys.read() {
            Ok(s) => f(&s),
            Err(poisoned) => f(&poisoned.into_inner()),
        }
    }
}

/// The associated data for one secret field of one record.
pub fn aad(kind: &str, id: &uuid::Uuid, field: &str) -> Vec<u8> {
    format!("keyway:{kind}:{id}:{field}").into_bytes()
}

pub fn seal(state: &AppState, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
    state
        .vault
        .read(|s| s.seal(plaintext, aad))
        .map_err(|e| ServiceError::Internal(format!("sealing a secret: {e}")))
}

pub fn open(state: &AppState, aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    state
        .vault
        .read(|s| s.open(sealed, aad))
        .map_err(|e| match e {
            CryptoError::UnknownKey(k) => ServiceError::Internal(format!(
                "a secret is sealed under data key '{k}', which this server has not loaded"
            )),
            other => ServiceError::Internal(format!("opening a secret: {other}")),
        })
}
