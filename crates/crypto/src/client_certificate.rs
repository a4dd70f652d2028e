//! A client certificate with its private key, as a connection stores it (PFX with a password, or
//! PEM with the certificate and an unencrypted PKCS#8 key), and the client assertion it signs to
//! get tokens (RFC 7523, with `x5t` and `x5t#S256` as Entra reads them).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::CryptoError;
use crate::certificate::{Certificate, CertificateKey};

pub struct ClientCertificate {
    pub certificate: Certificate,
    /// PKCS#8 DER of the private key.
    key: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for ClientCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCertificate")
            .field("subject", &self.certificate.subject)
            .field("not_after", &self.certificate.not_after)
            .finish_non_exhaustive()
    }
}

fn bad(why: impl Into<String>) -> CryptoError {
    CryptoError::Certificate(why.into())
}

impl ClientCertificate {
    /// PEM text holding a CERTIFICATE and a PRIVATE KEY (PKCS#8), or base64 of a PFX (PKCS#12)
    /// opened with `password`.
    pub fn load(text: &str, password: Option<&str>) -> Result<Self, CryptoError> {
        let trimmed = text.trim();
        if trimmed.starts_with("-----BEGIN") {
            return Self::from_pem(trimmed);
        }
        let compact: String = trimmed.chars().filter(|c| !c.is_whitespace()).collect();
        let der = Zeroizing::new(
            STANDARD
                .decode(compact)
                .map_err(|_| bad("neither PEM nor base64 of a PFX"))?,
        );
        Self::from_pfx(&der, password.unwrap_or_default())
    }

    fn from_pem(text: &str) -> Result<Self, CryptoError> {
        let mut cert = None;
        let mut key = None;
        for pem in x509_parser::pem::Pem::iter_from_buffer(text.as_bytes()) {
            let pem = pem.map_err(|e| bad(format!("PEM: {e}")))?;
            match pem.label.as_str() {
                "CERTIFICATE" if cert.is_none() => {
                    cert = Some(Certificate::from_der(&pem.contents)?)
                }
                "PRIVATE KEY" => key = Some(Zeroizing::new(pem.contents)),
                "ENCRYPTED PRIVATE KEY" | "RSA PRIVATE KEY" | "EC PRIVATE KEY" => {
                    return Err(bad(format!(
                        "a {} is not supported: give an unencrypted PKCS#8 PRIVATE KEY, or a PFX with its password",
                        pem.label
                    )));
                }
                _ => {}
            }
        }
        Self::checked(
            cert.ok_or_else(|| bad("the PEM holds no CERTIFICATE"))?,
            key.ok_or_else(|| bad("the PEM holds no PRIVATE KEY"))?,
        )
    }

    fn from_pfx(der: &[u8], password: &str) -> Result<Self, CryptoError> {
        let store = p12_keystore::KeyStore::from_pkcs12(
            der,
            password,
            p12_keystore::Pkcs12ImportPolicy::Relaxed,
        )
        .map_err(|e| bad(format!("the PFX cannot be opened (wrong password?): {e}")))?;
        let (_, chain) = store
            .private_key_chain()
            .ok_or_else(|| bad("the PFX holds no private key with its certificate"))?;
        let cert = chain
            .certs()
            .first()
            .ok_or_else(|| bad("the PFX's key has no certificate"))?;
        Self::checked(
            Certificate::from_der(cert.as_der())?,
            Zeroizing::new(chain.key().as_der().to_vec()),
        )
    }

    /// The key must sign what the certificate's public key verifies.
    fn checked(certificate: Certificate, key: Zeroizing<Vec<u8>>) -> Result<Self, CryptoError> {
        let c = Self { certificate, key };
        let probe = c.sign_jwt(
            "probe",
            "https://probe.invalid/token",
            OffsetDateTime::UNIX_EPOCH,
        )?;
        let signed = probe
            .rsplit_once('.')
            .map(|(head, _)| head)
            .unwrap_or_default()
            .to_string();
        let signature = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(probe.rsplit('.').next().unwrap_or_default())
            .map_err(|_| bad("the probe signature is not base64url"))?;
        let ok = match &c.certificate.key {
            CertificateKey::Rsa { n, e } => aws_lc_rs::signature::RsaPublicKeyComponents { n, e }
                .verify(
                    &aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256,
                    signed.as_bytes(),
                    &signature,
                )
                .is_ok(),
            CertificateKey::EcP256 { x, y } => {
                let mut point = vec![4u8];
                point.extend_from_slice(x);
                point.extend_from_slice(y);
                aws_lc_rs::signature::UnparsedPublicKey::new(
                    &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED,
                    point,
                )
                .verify(signed.as_bytes(), &signature)
                .is_ok()
            }
        };
        if !ok {
            return Err(bad("the private key does not belong to the certificate"));
        }
        Ok(c)
    }

    fn sign_jwt(
        &self,
        client_id: &str,
        audience: &str,
        now: OffsetDateTime,
    ) -> Result<String, CryptoError> {
        let (alg, key) = match self.certificate.key {
            CertificateKey::Rsa { .. } => (
                Algorithm::RS256,
                EncodingKey::from_rsa_der(&pkcs1_of(&self.key)?),
            ),
            CertificateKey::EcP256 { .. } => {
                (Algorithm::ES256, EncodingKey::from_ec_der(&self.key))
            }
        };
        let mut header = Header::new(alg);
        header.x5t = Some(self.certificate.x5t());
        header.x5t_s256 = Some(self.certificate.x5t_s256());
        let t = now.unix_timestamp();
        let claims = serde_json::json!({
            "aud": audience,
            "iss": client_id,
            "sub": client_id,
            "jti": uuid::Uuid::new_v4().to_string(),
            "nbf": t,
            "iat": t,
            "exp": t + 600,
        });
        jsonwebtoken::encode(&header, &claims, &key).map_err(|e| CryptoError::Sign(e.to_string()))
    }

    /// A client assertion for `client_id` at the token endpoint `audience`, valid ten minutes.
    pub fn assertion(
        &self,
        client_id: &str,
        audience: &str,
        now: OffsetDateTime,
    ) -> Result<String, CryptoError> {
        self.sign_jwt(client_id, audience, now)
    }
}

/// jsonwebtoken wants RSA keys as PKCS#1: take the RSAPrivateKey out of the PKCS#8 wrapper.
fn pkcs1_of(pkcs8: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    use x509_parser::der_parser::der::parse_der_sequence;
    let (_, seq) = parse_der_sequence(pkcs8).map_err(|_| bad("the private key is not PKCS#8"))?;
    let items = seq
        .as_sequence()
        .map_err(|_| bad("the private key is not PKCS#8"))?;
    let inner = items
        .get(2)
        .and_then(|o| o.as_slice().ok())
        .ok_or_else(|| bad("the private key is not PKCS#8"))?;
    Ok(Zeroizing::new(inner.to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pem_pair(alg: &'static rcgen::SignatureAlgorithm) -> (String, String) {
        let key = rcgen::KeyPair::generate_for(alg).unwrap();
        let cert = rcgen::CertificateParams::new(vec!["robot".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    }

    #[test]
    fn pem_certificates_sign_assertions_their_certificate_verifies() {
        for alg in [&rcgen::PKCS_RSA_SHA256, &rcgen::PKCS_ECDSA_P256_SHA256] {
            let (cert, key) = pem_pair(alg);
            let c = ClientCertificate::load(&format!("{cert}\n{key}"), None).unwrap();
            let jwt = c
                .assertion("app", "https://login/token", OffsetDateTime::UNIX_EPOCH)
                .unwrap();
            let claims: serde_json::Value = serde_json::from_slice(
                &base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(jwt.split('.').nth(1).unwrap())
                    .unwrap(),
            )
            .unwrap();
            assert_eq!(
                (claims["iss"].as_str(), claims["aud"].as_str()),
                (Some("app"), Some("https://login/token"))
            );
        }
    }

    #[test]
    fn a_key_of_another_certificate_or_nothing_at_all_is_refused() {
        let (cert, _) = pem_pair(&rcgen::PKCS_ECDSA_P256_SHA256);
        let (_, other_key) = pem_pair(&rcgen::PKCS_ECDSA_P256_SHA256);
        let e = ClientCertificate::load(&format!("{cert}{other_key}"), None).unwrap_err();
        assert!(e.to_string().contains("does not belong"), "{e}");
        assert!(
            ClientCertificate::load(&cert, None)
                .unwrap_err()
                .to_string()
                .contains("no PRIVATE KEY")
        );
        assert!(ClientCertificate::load("not base64 !!", None).is_err());
    }

    #[test]
    fn pfx_files_open_with_their_password_only() {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
        let cert = rcgen::CertificateParams::new(vec!["robot".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let chain = p12_keystore::PrivateKeyChain::new(
            vec![1u8],
            p12_keystore::PrivateKey::from_der(&key.serialize_der()).unwrap(),
            vec![p12_keystore::Certificate::from_der(cert.der()).unwrap()],
        );
        let mut store = p12_keystore::KeyStore::new();
        store.add_entry("robot", p12_keystore::KeyStoreEntry::PrivateKeyChain(chain));
        let pfx = STANDARD.encode(store.writer("s3cret").write().unwrap());
        let c = ClientCertificate::load(&pfx, Some("s3cret")).unwrap();
        assert_eq!(c.certificate.der, cert.der().to_vec());
        assert!(
            ClientCertificate::load(&pfx, Some("wrong"))
                .unwrap_err()
                .to_string()
                .contains("wrong password")
        );
    }
}
