//! Secrets at rest: AES-256-GCM under an id-tagged master key, with the owning record bound as
//! associated data so a sealed value cannot be moved to another row. A key ring holds the
//! current key and older ones, so rotation re-seals without losing anything.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use zeroize::Zeroizing;

use crate::CryptoError;

const MAGIC: &[u8; 3] = b"KW1";

pub struct MasterKey {
    pub id: String,
    key: LessSafeKey,
}

impl MasterKey {
    pub fn new(id: impl Into<String>, bytes: &[u8]) -> Result<Self, CryptoError> {
        let id = id.into();
        if id.is_empty() || id.len() > 64 {
            return Err(CryptoError::InvalidKey("key id must be 1-64 bytes".into()));
        }
        let unbound = UnboundKey::new(&AES_256_GCM, bytes)
            .map_err(|_| CryptoError::InvalidKey("a master key is 32 bytes".into()))?;
        Ok(Self {
            id,
            key: LessSafeKey::new(unbound),
        })
    }
}

/// The master keys: the first seals, all of them open.
pub struct KeyRing {
    keys: Vec<MasterKey>,
}

impl KeyRing {
    pub fn new(current: MasterKey, older: Vec<MasterKey>) -> Self {
        let mut keys = vec![current];
        keys.extend(older);
        Self { keys }
    }

    pub fn current_id(&self) -> &str {
        &self.keys[0].id
    }

    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let key = &self.keys[0];
        let nonce_bytes = crate::random::bytes::<NONCE_LEN>();
        let mut buf = plaintext.to_vec();
        key.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce_bytes),
                Aad::from(aad),
                &mut buf,
            )
            .map_err(|_| CryptoError::Sign("AES-GCM seal failed".into()))?;
        let mut out = Vec::with_capacity(4 + key.id.len() + NONCE_LEN + buf.len());
        out.extend_from_slice(MAGIC);
        out.push(key.id.len() as u8);
        out.extend_from_slice(key.id.as_bytes());
        out.extend_from_slice(&nonce_bytes);
        out.extend_from_slice(&buf);
        Ok(out)
    }

    pub fn open(&self, sealed: &[u8], aad: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let (kid, rest) = split_header(sealed)?;
        let key = self
            .keys
            .iter()
            .find(|k| k.id == kid)
            .ok_or_else(|| CryptoError::UnknownKey(kid.to_string()))?;
        if rest.len() < NONCE_LEN {
            return Err(CryptoError::Unseal);
        }
        let (nonce, ct) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| CryptoError::Unseal)?;
        let mut buf = Zeroizing::new(ct.to_vec());
        let len = key
            .key
            .open_in_place(nonce, Aad::from(aad), buf.as_mut_slice())
            .map_err(|_| CryptoError::Unseal)?
            .len();
        buf.truncate(len);
        Ok(buf)
    }

    /// The id of the key that sealed `sealed`.
    pub fn key_id_of(sealed: &[u8]) -> Result<&str, CryptoError> {
        split_header(sealed).map(|(kid, _)| kid)
    }
}

fn split_header(sealed: &[u8]) -> Result<(&str, &[u8]), CryptoError> {
    if sealed.len() < 4 || &sealed[..3] != MAGIC {
        return Err(CryptoError::Unseal);
    }
    let n = sealed[3] as usize;
    let kid = sealed.get(4..4 + n).ok_or(CryptoError::Unseal)?;
    let kid = std::str::from_utf8(kid).map_err(|_| CryptoError::Unseal)?;
    Ok((kid, &sealed[4 + n..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(id: &str, b: u8) -> KeyRing {
        KeyRing::new(MasterKey::new(id, &[b; 32]).unwrap(), vec![])
    }

    #[test]
    fn seal_open_round_trip_with_aad() {
        let r = ring("k1", 1);
        let s = r.seal(b"secret", b"row-1").unwrap();
        assert_eq!(KeyRing::key_id_of(&s).unwrap(), "k1");
        assert_eq!(r.open(&s, b"row-1").unwrap().as_slice(), b"secret");
        assert_eq!(r.open(&s, b"row-2"), Err(CryptoError::Unseal));
    }

    #[test]
    fn older_keys_still_open_after_rotation() {
        let old = ring("k1", 1);
        let s = old.seal(b"x", b"").unwrap();
        let rotated = KeyRing::new(
            MasterKey::new("k2", &[2; 32]).unwrap(),
            vec![MasterKey::new("k1", &[1; 32]).unwrap()],
        );
        assert_eq!(rotated.open(&s, b"").unwrap().as_slice(), b"x");
        assert_eq!(
            KeyRing::key_id_of(&rotated.seal(b"x", b"").unwrap()).unwrap(),
            "k2"
        );
        assert!(matches!(
            ring("k3", 3).open(&s, b""),
            Err(CryptoError::UnknownKey(_))
        ));
    }

    #[test]
    fn tampering_is_detected() {
        let r = ring("k1", 1);
        let mut s = r.seal(b"secret", b"").unwrap();
        let last = s.len() - 1;
        s[last] ^= 1;
        assert_eq!(r.open(&s, b""), Err(CryptoError::Unseal));
        assert_eq!(r.open(b"junk", b""), Err(CryptoError::Unseal));
    }
}
