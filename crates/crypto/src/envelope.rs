//! Envelope encryption: secrets are sealed under data keys, and only the data keys are sealed
//! ("wrapped") under the master key ring. Rotating the master key then re-wraps a handful of
//! data keys and never touches the secrets. Everything uses `seal`'s format, so a ciphertext
//! names the data key that sealed it and a wrapped data key names the master key that wrapped it.

use std::collections::HashMap;
use std::sync::Arc;

use zeroize::Zeroizing;

use crate::CryptoError;
use crate::seal::{KeyRing, MasterKey};

/// Data key ids start with this, so they are never mistaken for master key ids.
pub const DATA_KEY_PREFIX: &str = "dk-";

/// The associated data a data key is wrapped with: its own id, so a wrapped key cannot be
/// passed off as another.
pub fn wrap_aad(id: &str) -> Vec<u8> {
    format!("keyway:data-key:{id}").into_bytes()
}

/// One unwrapped data key. Its bytes live only inside the AES key schedule, which aws-lc
/// cleanses when the key is dropped.
pub struct DataKey {
    ring: KeyRing,
}

impl DataKey {
    /// A fresh random data key, and its bytes wrapped under the master ring's current key.
    pub fn generate(master: &KeyRing) -> Result<(Self, Vec<u8>), CryptoError> {
        let id = format!(
            "{DATA_KEY_PREFIX}{}",
            hex::encode(crate::random::bytes::<8>())
        );
        let bytes = Zeroizing::new(crate::random::bytes::<32>());
        let wrapped = master.seal(bytes.as_slice(), &wrap_aad(&id))?;
        Ok((Self::from_bytes(&id, bytes.as_slice())?, wrapped))
    }

    /// Open a wrapped data key with any key of the master ring.
    pub fn unwrap(master: &KeyRing, id: &str, wrapped: &[u8]) -> Result<Self, CryptoError> {
        let bytes = master.open(wrapped, &wrap_aad(id))?;
        Self::from_bytes(id, &bytes)
    }

    fn from_bytes(id: &str, bytes: &[u8]) -> Result<Self, CryptoError> {
        if !id.starts_with(DATA_KEY_PREFIX) {
            return Err(CryptoError::InvalidKey(format!(
                "a data key id starts with '{DATA_KEY_PREFIX}'"
            )));
        }
        Ok(Self {
            ring: KeyRing::new(MasterKey::new(id, bytes)?, vec![]),
        })
    }

    pub fn id(&self) -> &str {
        self.ring.current_id()
    }

    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.ring.seal(plaintext, aad)
    }

    pub fn open(&self, sealed: &[u8], aad: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        self.ring.open(sealed, aad)
    }
}

/// Seal `sealed` again under the ring's current key, with the same associated data; `None`
/// when the current key sealed it already (so a repeated rotation is a no-op).
pub fn reseal(master: &KeyRing, sealed: &[u8], aad: &[u8]) -> Result<Option<Vec<u8>>, CryptoError> {
    if KeyRing::key_id_of(sealed)? == master.current_id() {
        return Ok(None);
    }
    let plain = master.open(sealed, aad)?;
    master.seal(&plain, aad).map(Some)
}

/// Re-wrap a data key under the ring's current master key.
pub fn rewrap(master: &KeyRing, id: &str, wrapped: &[u8]) -> Result<Option<Vec<u8>>, CryptoError> {
    reseal(master, wrapped, &wrap_aad(id))
}

/// The unwrapped data keys a server holds: the current one seals, any of them opens.
#[derive(Default, Clone)]
pub struct DataKeySet {
    current: Option<Arc<DataKey>>,
    keys: HashMap<String, Arc<DataKey>>,
}

impl DataKeySet {
    /// Add a key; the current one is the one new secrets are sealed under.
    pub fn insert(&mut self, key: DataKey, current: bool) {
        let key = Arc::new(key);
        if current {
            self.current = Some(key.clone());
        }
        self.keys.insert(key.id().to_string(), key);
    }

    pub fn contains(&self, id: &str) -> bool {
        self.keys.contains_key(id)
    }

    pub fn current_id(&self) -> Option<&str> {
        self.current.as_deref().map(DataKey::id)
    }

    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.current
            .as_ref()
            .ok_or_else(|| CryptoError::InvalidKey("no current data key".into()))?
            .seal(plaintext, aad)
    }

    pub fn open(&self, sealed: &[u8], aad: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let id = KeyRing::key_id_of(sealed)?;
        self.keys
            .get(id)
            .ok_or_else(|| CryptoError::UnknownKey(id.to_string()))?
            .open(sealed, aad)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(current: (&str, u8), older: &[(&str, u8)]) -> KeyRing {
        KeyRing::new(
            MasterKey::new(current.0, &[current.1; 32]).unwrap(),
            older
                .iter()
                .map(|(id, b)| MasterKey::new(*id, &[*b; 32]).unwrap())
                .collect(),
        )
    }

    #[test]
    fn a_secret_sealed_under_a_data_key_names_it_and_survives_master_rotation() {
        let old = ring(("mk-1", 1), &[]);
        let (dk, wrapped) = DataKey::generate(&old).unwrap();
        assert!(dk.id().starts_with(DATA_KEY_PREFIX));
        assert_eq!(KeyRing::key_id_of(&wrapped).unwrap(), "mk-1");
        let secret = dk.seal(b"hunter2", b"conn-1:password").unwrap();
        assert_eq!(KeyRing::key_id_of(&secret).unwrap(), dk.id());

        // Rotate: a new current master key, the old one still opens; re-wrap the data key.
        let rotated = ring(("mk-2", 2), &[("mk-1", 1)]);
        let rewrapped = rewrap(&rotated, dk.id(), &wrapped).unwrap().unwrap();
        assert_eq!(KeyRing::key_id_of(&rewrapped).unwrap(), "mk-2");
        assert_eq!(rewrap(&rotated, dk.id(), &rewrapped).unwrap(), None);

        // Once the old master key is gone, only the re-wrapped data key opens, and the
        // secret itself, never re-sealed, still opens with it.
        let only_new = ring(("mk-2", 2), &[]);
        assert!(matches!(
            DataKey::unwrap(&only_new, dk.id(), &wrapped),
            Err(CryptoError::UnknownKey(_))
        ));
        let dk2 = DataKey::unwrap(&only_new, dk.id(), &rewrapped).unwrap();
        assert_eq!(
            dk2.open(&secret, b"conn-1:password").unwrap().as_slice(),
            b"hunter2"
        );
        assert_eq!(
            dk2.open(&secret, b"conn-2:password"),
            Err(CryptoError::Unseal)
        );
    }

    #[test]
    fn a_wrapped_data_key_is_bound_to_its_id() {
        let m = ring(("mk-1", 1), &[]);
        let (a, wrapped_a) = DataKey::generate(&m).unwrap();
        let (b, _) = DataKey::generate(&m).unwrap();
        assert_ne!(a.id(), b.id());
        assert!(matches!(
            DataKey::unwrap(&m, b.id(), &wrapped_a),
            Err(CryptoError::Unseal)
        ));
        assert!(DataKey::unwrap(&m, a.id(), &wrapped_a).is_ok());
        assert!(matches!(
            DataKey::unwrap(&m, "mk-1", &wrapped_a),
            Err(CryptoError::Unseal | CryptoError::InvalidKey(_))
        ));
    }

    #[test]
    fn reseal_keeps_the_associated_data() {
        let old = ring(("mk-1", 1), &[]);
        let sealed = old.seal(b"pepper", b"server-secret:x").unwrap();
        let rotated = ring(("mk-2", 2), &[("mk-1", 1)]);
        let again = reseal(&rotated, &sealed, b"server-secret:x")
            .unwrap()
            .unwrap();
        assert_eq!(
            ring(("mk-2", 2), &[])
                .open(&again, b"server-secret:x")
                .unwrap()
                .as_slice(),
            b"pepper"
        );
        assert_eq!(
            reseal(&rotated, &sealed, b"server-secret:y"),
            Err(CryptoError::Unseal)
        );
    }

    #[test]
    fn a_key_set_seals_with_the_current_key_and_opens_with_any() {
        let m = ring(("mk-1", 1), &[]);
        let mut set = DataKeySet::default();
        assert!(matches!(
            set.seal(b"x", b""),
            Err(CryptoError::InvalidKey(_))
        ));
        let (first, _) = DataKey::generate(&m).unwrap();
        let first_id = first.id().to_string();
        set.insert(first, true);
        let old = set.seal(b"old", b"a").unwrap();
        let (second, _) = DataKey::generate(&m).unwrap();
        let second_id = second.id().to_string();
        set.insert(second, true);
        assert_eq!(set.current_id(), Some(second_id.as_str()));
        let new = set.seal(b"new", b"a").unwrap();
        assert_eq!(KeyRing::key_id_of(&new).unwrap(), second_id);
        assert!(set.contains(&first_id));
        assert_eq!(set.open(&old, b"a").unwrap().as_slice(), b"old");
        assert_eq!(set.open(&new, b"a").unwrap().as_slice(), b"new");
        let stranger = {
            let (k, _) = DataKey::generate(&m).unwrap();
            k.seal(b"x", b"a").unwrap()
        };
        assert!(matches!(
            set.open(&stranger, b"a"),
            Err(CryptoError::UnknownKey(_))
        ));
    }
}
