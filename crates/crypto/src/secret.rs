//! Client secrets: 256 random bits shown once, kept only as HMAC-SHA256 under a server pepper.
//!
//! A slow password hash buys nothing for a secret with 256 bits of entropy (nobody can guess
//! it, fast or slow), while it would cost ~20 ms on every token request. The keyed hash means a
//! stolen database alone does not even allow offline checking of candidate secrets.

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// The server's secret key for client-secret hashes.
pub struct SecretHasher {
    key: hmac::Key,
}

/// A freshly generated client secret, to be shown once.
pub struct NewSecret {
    pub text: Zeroizing<String>,
    pub hint: String,
    pub hash: Vec<u8>,
}

impl SecretHasher {
    pub fn new(pepper: &[u8; 32]) -> Self {
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, pepper),
        }
    }

    pub fn hash(&self, secret: &str) -> Vec<u8> {
        hmac::sign(&self.key, secret.as_bytes()).as_ref().to_vec()
    }

    /// Constant-time comparison of a presented secret against a stored hash.
    pub fn matches(&self, presented_hash: &[u8], stored: &[u8]) -> bool {
        presented_hash.ct_eq(stored).into()
    }

    /// 32 random bytes in base64url: 43 characters, 256 bits of entropy.
    pub fn generate(&self) -> NewSecret {
        let raw = Zeroizing::new(crate::random::bytes::<32>());
        let text = Zeroizing::new(URL_SAFE_NO_PAD.encode(raw.as_slice()));
        let hint = text.chars().take(3).collect();
        let hash = self.hash(&text);
        NewSecret { text, hint, hash }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_secret_verifies_and_others_do_not() {
        let h = SecretHasher::new(&[7u8; 32]);
        let s = h.generate();
        assert_eq!(s.text.len(), 43);
        assert_eq!(&s.text[..3], s.hint);
        assert!(h.matches(&h.hash(&s.text), &s.hash));
        assert!(!h.matches(&h.hash("not it"), &s.hash));
    }

    #[test]
    fn the_pepper_matters() {
        let a = SecretHasher::new(&[1u8; 32]);
        let b = SecretHasher::new(&[2u8; 32]);
        assert_ne!(a.hash("x"), b.hash("x"));
    }

    #[test]
    fn secrets_differ() {
        let h = SecretHasher::new(&[0u8; 32]);
        assert_ne!(*h.generate().text, *h.generate().text);
    }
}
