//! Sealing connection secrets: AES-256-GCM with the owning record and field bound as associated
//! data, so a sealed value cannot be moved to another connection or field. Every ciphertext
//! names the key that sealed it.

use keyway_crypto::CryptoError;
use zeroize::Zeroizing;

use super::{Result, ServiceError};
use crate::state::AppState;

/// The associated data for one secret field of one record.
pub fn aad(kind: &str, id: &uuid::Uuid, field: &str) -> Vec<u8> {
    format!("keyway:{kind}:{id}:{field}").into_bytes()
}

pub fn seal(state: &AppState, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
    state
        .key_ring
        .seal(plaintext, aad)
        .map_err(|e| ServiceError::Internal(format!("sealing a secret: {e}")))
}

pub fn open(state: &AppState, aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    state.key_ring.open(sealed, aad).map_err(|e| match e {
        CryptoError::UnknownKey(k) => ServiceError::Internal(format!(
            "a secret is sealed under key '{k}', which this server does not hold"
        )),
        other => ServiceError::Internal(format!("opening a secret: {other}")),
    })
}
