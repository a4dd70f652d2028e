//! Keyway's cryptography, free of I/O: client-secret keyed hashes, people's password hashes,
//! sealing secrets at rest, token signing and JWKS, certificates and client assertions.

pub mod assertion;
pub mod audit;
pub mod certificate;
pub mod client_certificate;
pub mod envelope;
pub mod password;
pub mod random;
pub mod seal;
pub mod secret;
pub mod signing;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CryptoError {
    #[error("key material is invalid: {0}")]
    InvalidKey(String),
    #[error("sealed data could not be opened (wrong key or tampered)")]
    Unseal,
    #[error("sealed data names key '{0}', which this key ring does not hold")]
    UnknownKey(String),
    #[error("signing failed: {0}")]
    Sign(String),
    #[error("certificate is invalid: {0}")]
    Certificate(String),
    #[error("password hashing failed: {0}")]
    PasswordHash(String),
}
