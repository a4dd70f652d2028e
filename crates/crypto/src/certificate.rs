//! X.509 certificates registered as application credentials: parsed once with x509-parser,
//! identified by their SHA-1 and SHA-256 thumbprints, their validity taken from the certificate.

use aws_lc_rs::digest;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use time::OffsetDateTime;
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::public_key::PublicKey as X509PublicKey;

use crate::CryptoError;

/// The public key of a certificate, in the forms an assertion check needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertificateKey {
    Rsa { n: Vec<u8>, e: Vec<u8> },
    EcP256 { x: Vec<u8>, y: Vec<u8> },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Certificate {
    pub der: Vec<u8>,
    pub subject: String,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    pub key: CertificateKey,
    sha1: Vec<u8>,
    sha256: Vec<u8>,
}

impl Certificate {
    pub fn from_der(der: &[u8]) -> Result<Self, CryptoError> {
        let (rest, cert) = X509Certificate::from_der(der)
            .map_err(|e| CryptoError::Certificate(format!("not a DER X.509 certificate: {e}")))?;
        if !rest.is_empty() {
            return Err(CryptoError::Certificate(
                "trailing bytes after the certificate".into(),
            ));
        }
        let key = match cert.public_key().parsed() {
            Ok(X509PublicKey::RSA(rsa)) => CertificateKey::Rsa {
                n: strip_zeros(rsa.modulus).to_vec(),
                e: strip_zeros(rsa.exponent).to_vec(),
            },
            Ok(X509PublicKey::EC(point)) => {
                let p = point.data();
                if p.len() != 65 || p[0] != 4 {
                    return Err(CryptoError::Certificate(
                        "only RSA and P-256 certificates are supported".into(),
                    ));
                }
                CertificateKey::EcP256 {
                    x: p[1..33].to_vec(),
                    y: p[33..65].to_vec(),
                }
            }
            _ => {
                return Err(CryptoError::Certificate(
                    "only RSA and P-256 certificates are supported".into(),
                ));
            }
        };
        if let CertificateKey::Rsa { n, .. } = &key
            && n.len() < 256
        {
            return Err(CryptoError::Certificate(
                "RSA keys shorter than 2048 bits are refused".into(),
            ));
        }
        let validity = cert.validity();
        Ok(Self {
            der: der.to_vec(),
            subject: cert.subject().to_string(),
            not_before: validity.not_before.to_datetime(),
            not_after: validity.not_after.to_datetime(),
            key,
            sha1: digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, der)
                .as_ref()
                .to_vec(),
            sha256: digest::digest(&digest::SHA256, der).as_ref().to_vec(),
        })
    }

    /// A certificate as Graph's `key` carries it (base64 DER), or as PEM.
    pub fn from_text(text: &str) -> Result<Self, CryptoError> {
        let trimmed = text.trim();
        if trimmed.starts_with("-----BEGIN") {
            let (_, pem) = x509_parser::pem::parse_x509_pem(trimmed.as_bytes())
                .map_err(|e| CryptoError::Certificate(format!("PEM: {e}")))?;
            if pem.label != "CERTIFICATE" {
                return Err(CryptoError::Certificate(format!(
                    "expected a CERTIFICATE, found a {} (never send a private key)",
                    pem.label
                )));
            }
            return Self::from_der(&pem.contents);
        }
        let compact: String = trimmed.chars().filter(|c| !c.is_whitespace()).collect();
        let der = STANDARD
            .decode(compact)
            .map_err(|_| CryptoError::Certificate("key is neither base64 DER nor PEM".into()))?;
        Self::from_der(&der)
    }

    /// `x5t`: base64url SHA-1 thumbprint, unpadded.
    pub fn x5t(&self) -> String {
        URL_SAFE_NO_PAD.encode(&self.sha1)
    }

    /// `x5t#S256`: base64url SHA-256 thumbprint, unpadded.
    pub fn x5t_s256(&self) -> String {
        URL_SAFE_NO_PAD.encode(&self.sha256)
    }

    /// Graph's customKeyIdentifier: the SHA-1 thumbprint in upper-case hex.
    pub fn thumbprint_hex(&self) -> String {
        hex::encode_upper(&self.sha1)
    }

    pub fn der_base64(&self) -> String {
        STANDARD.encode(&self.der)
    }
}

/// Thumbprints arrive padded or not, base64url or plain base64, or as hex: make them comparable
/// with `Certificate::x5t`/`x5t_s256`.
pub fn normalize_thumbprint(t: &str) -> String {
    let t = t.trim();
    let is_hex = (t.len() == 40 || t.len() == 64) && t.chars().all(|c| c.is_ascii_hexdigit());
    if is_hex && let Ok(bytes) = hex::decode(t) {
        return URL_SAFE_NO_PAD.encode(bytes);
    }
    t.trim_end_matches('=').replace('+', "-").replace('/', "_")
}

fn strip_zeros(b: &[u8]) -> &[u8] {
    let i = b.iter().position(|&x| x != 0).unwrap_or(b.len());
    &b[i..]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn make_cert() -> (rcgen::CertifiedKey<rcgen::KeyPair>, Vec<u8>) {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
        let params = rcgen::CertificateParams::new(vec!["client.example".into()]).unwrap();
        let cert = params.self_signed(&key).unwrap();
        let der = cert.der().to_vec();
        (
            rcgen::CertifiedKey {
                cert,
                signing_key: key,
            },
            der,
        )
    }

    #[test]
    fn parses_der_and_pem_alike() {
        let (ck, der) = make_cert();
        let a = Certificate::from_der(&der).unwrap();
        let b = Certificate::from_text(&ck.cert.pem()).unwrap();
        let c = Certificate::from_text(&a.der_base64()).unwrap();
        assert_eq!(a, b);
        assert_eq!(a, c);
        assert!(matches!(a.key, CertificateKey::Rsa { .. }));
        assert_eq!(a.thumbprint_hex().len(), 40);
        assert!(a.not_after > a.not_before);
    }

    #[test]
    fn thumbprints_normalize() {
        let (_, der) = make_cert();
        let c = Certificate::from_der(&der).unwrap();
        let padded = format!("{}=", c.x5t());
        assert_eq!(normalize_thumbprint(&padded), c.x5t());
        assert_eq!(normalize_thumbprint(&c.thumbprint_hex()), c.x5t());
    }

    #[test]
    fn private_keys_and_junk_are_refused() {
        let key = rcgen::KeyPair::generate().unwrap();
        assert!(Certificate::from_text(&key.serialize_pem()).is_err());
        assert!(Certificate::from_text("not base64 !!").is_err());
        assert!(Certificate::from_der(b"\x30\x03\x02\x01\x01").is_err());
    }
}
