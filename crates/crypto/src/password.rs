//! People's passwords: argon2id with the crate's recommended parameters (about 20 ms a verify
//! here, so callers run it off the async threads).

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

use crate::CryptoError;

pub fn hash(password: &str) -> Result<String, CryptoError> {
    let salt_bytes = crate::random::bytes::<16>();
    let salt = SaltString::encode_b64(&salt_bytes)
        .map_err(|e| CryptoError::PasswordHash(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| CryptoError::PasswordHash(e.to_string()))
}

/// True only when `password` matches the stored PHC string.
pub fn verify(password: &str, stored: &str) -> bool {
    match PasswordHash::new(stored) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// A hash to verify against when the user does not exist, so that timing tells nothing.
pub fn dummy_hash() -> &'static str {
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$x5ALJWXrQ5bpfqBFYIvRyr2nmVjAmoGcmo6G5rP7fEI"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argon2id_round_trip() {
        let h = hash("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify("correct horse battery", &h));
        assert!(!verify("wrong", &h));
        assert!(!verify("x", "not a hash"));
        assert!(!verify("x", dummy_hash()));
    }
}
