//! Client assertions (RFC 7523 `private_key_jwt`) as Microsoft's libraries send them: RS256 or
//! PS256 (ES256 for P-256 certificates), the certificate named by `x5t` or `x5t#S256` (padded or
//! not, never trusted from `x5c`), times as integers or floats, `nbf` optional. Replay of a `jti`
//! is the caller's to track, with the claims hash returned here.

use aws_lc_rs::digest;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use keyway_core::token::{CLOCK_SKEW, MAX_ASSERTION_LIFETIME, TokenError};
use time::{Duration, OffsetDateTime};

use crate::certificate::{Certificate, CertificateKey, normalize_thumbprint};

const MAX_ASSERTION_BYTES: usize = 16 * 1024;
/// Float times (msal Python) make `exp - iat` land a hair off 600 s.
const ROUNDING: Duration = Duration::seconds(1);

/// Which certificate an assertion says signed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Thumbprint {
    Sha1(String),
    Sha256(String),
}

impl Thumbprint {
    pub fn matches(&self, cert_x5t: &str, cert_x5t_s256: &str) -> bool {
        match self {
            Self::Sha1(t) => t == cert_x5t,
            Self::Sha256(t) => t == cert_x5t_s256,
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Self::Sha1(t) | Self::Sha256(t) => t,
        }
    }
}

/// What the caller needs to look the certificate up before verifying.
#[derive(Debug, Clone)]
pub struct AssertionHeader {
    pub alg: Algorithm,
    pub thumbprint: Thumbprint,
}

/// A verified assertion, for the caller's replay check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedAssertion {
    pub jti: String,
    pub expires_at: OffsetDateTime,
    /// SHA-256 of the claims segment: the same assertion reused gives the same hash.
    pub claims_hash: Vec<u8>,
}

pub fn read_header(assertion: &str) -> Result<AssertionHeader, TokenError> {
    if assertion.len() > MAX_ASSERTION_BYTES {
        return Err(TokenError::BadAssertion(
            "the assertion is too large".into(),
        ));
    }
    let header = jsonwebtoken::decode_header(assertion)
        .map_err(|e| TokenError::BadAssertion(format!("not a signed JWT: {e}")))?;
    let thumbprint = if let Some(t) = header.x5t_s256.as_deref() {
        Thumbprint::Sha256(normalize_thumbprint(t))
    } else if let Some(t) = header.x5t.as_deref() {
        Thumbprint::Sha1(normalize_thumbprint(t))
    } else {
        return Err(TokenError::BadAssertion(
            "the header names no certificate: send x5t or x5t#S256".into(),
        ));
    };
    Ok(AssertionHeader {
        alg: header.alg,
        thumbprint,
    })
}

/// Verify the signature with `cert` and every claim rule. `audiences` are the token endpoint
/// URLs this request may name.
pub fn verify(
    assertion: &str,
    cert: &Certificate,
    client_id: &str,
    audiences: &[String],
    now: OffsetDateTime,
) -> Result<VerifiedAssertion, TokenError> {
    let (key, algorithms) = match &cert.key {
        CertificateKey::Rsa { n, e } => (
            DecodingKey::from_rsa_raw_components(n, e),
            vec![Algorithm::RS256, Algorithm::PS256],
        ),
        CertificateKey::EcP256 { x, y } => (
            DecodingKey::from_ec_components(&URL_SAFE_NO_PAD.encode(x), &URL_SAFE_NO_PAD.encode(y))
                .map_err(|_| TokenError::BadAssertionSignature)?,
            vec![Algorithm::ES256],
        ),
    };
    let mut v = Validation::new(algorithms[0]);
    v.algorithms = algorithms;
    v.required_spec_claims.clear();
    v.validate_exp = false;
    v.validate_nbf = false;
    v.validate_aud = false;
    let claims = jsonwebtoken::decode::<serde_json::Value>(assertion, &key, &v)
        .map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::InvalidAlgorithm => TokenError::BadAssertion(
                "the algorithm does not fit the certificate's key (RS256/PS256 for RSA, ES256 for P-256)".into(),
            ),
            jsonwebtoken::errors::ErrorKind::InvalidSignature => TokenError::BadAssertionSignature,
            other => TokenError::BadAssertion(format!("{other:?}")),
        })?
        .claims;

    let text = |name: &str| claims.get(name).and_then(|v| v.as_str());
    let time = |name: &'static str| -> Result<Option<OffsetDateTime>, TokenError> {
        match claims.get(name) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(v) => {
                let secs = v.as_f64().ok_or_else(|| {
                    TokenError::BadAssertion(format!("'{name}' must be a number of seconds"))
                })?;
                if !secs.is_finite() || secs.abs() > 1e11 {
                    return Err(TokenError::BadAssertion(format!(
                        "'{name}' is out of range"
                    )));
                }
                Ok(OffsetDateTime::from_unix_timestamp_nanos((secs * 1e9) as i128).ok())
            }
        }
    };

    let iss = text("iss").unwrap_or_default();
    let sub = text("sub").unwrap_or_default();
    if iss != client_id || sub != client_id {
        return Err(TokenError::AssertionClientMismatch(
            if iss != client_id { iss } else { sub }.to_string(),
        ));
    }
    let aud_ok = match claims.get("aud") {
        Some(serde_json::Value::String(a)) => audience_matches(a, audiences),
        Some(serde_json::Value::Array(list)) => list
            .iter()
            .filter_map(|a| a.as_str())
            .any(|a| audience_matches(a, audiences)),
        _ => false,
    };
    if !aud_ok {
        return Err(TokenError::BadAssertion(format!(
            "the audience must be the token endpoint {}",
            audiences.first().map(String::as_str).unwrap_or_default()
        )));
    }
    let jti = text("jti")
        .filter(|j| !j.is_empty() && j.len() <= 256)
        .ok_or_else(|| TokenError::BadAssertion("'jti' is required".into()))?
        .to_string();

    let exp = time("exp")?.ok_or_else(|| TokenError::BadAssertion("'exp' is required".into()))?;
    let nbf = time("nbf")?;
    let iat = time("iat")?;
    if exp + CLOCK_SKEW <= now {
        return Err(TokenError::AssertionTime(format!("it expired at {exp}")));
    }
    if let Some(nbf) = nbf
        && nbf - CLOCK_SKEW > now
    {
        return Err(TokenError::AssertionTime(format!(
            "it is not valid before {nbf}"
        )));
    }
    if let Some(iat) = iat
        && iat - CLOCK_SKEW > now
    {
        return Err(TokenError::AssertionTime(
            "it was issued in the future".into(),
        ));
    }
    let start = match (iat, nbf) {
        (Some(a), Some(b)) => a.min(b),
        (Some(a), None) | (None, Some(a)) => a,
        (None, None) => {
            return Err(TokenError::BadAssertion(
                "'iat' or 'nbf' is required to bound its lifetime".into(),
            ));
        }
    };
    if exp - start > MAX_ASSERTION_LIFETIME + ROUNDING {
        return Err(TokenError::AssertionTime(
            "its lifetime (exp - iat) is longer than 10 minutes".into(),
        ));
    }
    // A long-lived assertion could be replayed for long: cap its use at its own short lifetime.
    let payload = assertion.split('.').nth(1).unwrap_or_default();
    Ok(VerifiedAssertion {
        jti,
        expires_at: exp,
        claims_hash: digest::digest(&digest::SHA256, payload.as_bytes())
            .as_ref()
            .to_vec(),
    })
}

fn audience_matches(aud: &str, audiences: &[String]) -> bool {
    let aud = aud.trim_end_matches('/');
    audiences
        .iter()
        .any(|a| a.trim_end_matches('/').eq_ignore_ascii_case(aud))
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header};
    use time::macros::datetime;

    const ENDPOINT: &str = "https://127.0.0.1:8443/tid/oauth2/v2.0/token";
    const NOW: OffsetDateTime = datetime!(2026-11-23 12:00 UTC);

    fn client() -> (Certificate, EncodingKey) {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
        let cert = rcgen::CertificateParams::new(vec!["c".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let c = Certificate::from_der(cert.der()).unwrap();
        (
            c,
            EncodingKey::from_rsa_pem(key.serialize_pem().as_bytes()).unwrap(),
        )
    }

    fn assertion(
        cert: &Certificate,
        key: &EncodingKey,
        alg: Algorithm,
        claims: serde_json::Value,
        padded: bool,
    ) -> String {
        let mut h = Header::new(alg);
        if alg == Algorithm::PS256 {
            let t = cert.x5t_s256();
            h.x5t_s256 = Some(if padded { format!("{t}=") } else { t });
        } else {
            let t = cert.x5t();
            h.x5t = Some(if padded { format!("{t}=") } else { t });
        }
        jsonwebtoken::encode(&h, &claims, key).unwrap()
    }

    fn claims(iat: f64, exp: f64) -> serde_json::Value {
        serde_json::json!({"aud": ENDPOINT, "iss": "app", "sub": "app", "jti": "j1", "iat": iat, "exp": exp})
    }

    fn check(a: &str, c: &Certificate) -> Result<VerifiedAssertion, TokenError> {
        verify(a, c, "app", &[ENDPOINT.to_string()], NOW)
    }

    #[test]
    fn msal_python_and_azure_identity_shapes_verify() {
        let (c, k) = client();
        let now = NOW.unix_timestamp() as f64 + 0.25;
        // msal Python: PS256, x5t#S256 padded, float times, no nbf.
        let a = assertion(&c, &k, Algorithm::PS256, claims(now, now + 600.0), true);
        let h = read_header(&a).unwrap();
        assert!(h.thumbprint.matches(&c.x5t(), &c.x5t_s256()));
        let v = check(&a, &c).unwrap();
        assert_eq!(v.jti, "j1");
        // azure-identity: RS256, x5t padded.
        let b = assertion(&c, &k, Algorithm::RS256, claims(now, now + 600.0), true);
        assert!(
            read_header(&b)
                .unwrap()
                .thumbprint
                .matches(&c.x5t(), &c.x5t_s256())
        );
        assert!(check(&b, &c).is_ok());
        // Integer times with nbf, unpadded (msal-node).
        let n = NOW.unix_timestamp();
        let mut cl = claims(0.0, 0.0);
        cl["iat"] = n.into();
        cl["nbf"] = n.into();
        cl["exp"] = (n + 600).into();
        assert!(check(&assertion(&c, &k, Algorithm::PS256, cl, false), &c).is_ok());
    }

    #[test]
    fn same_assertion_same_hash_different_claims_different_hash() {
        let (c, k) = client();
        let now = NOW.unix_timestamp() as f64;
        let a = assertion(&c, &k, Algorithm::RS256, claims(now, now + 300.0), false);
        let b = assertion(&c, &k, Algorithm::RS256, claims(now, now + 301.0), false);
        assert_eq!(check(&a, &c).unwrap(), check(&a, &c).unwrap());
        assert_ne!(
            check(&a, &c).unwrap().claims_hash,
            check(&b, &c).unwrap().claims_hash
        );
    }

    #[test]
    fn expired_long_lived_and_misaddressed_assertions_are_refused() {
        let (c, k) = client();
        let now = NOW.unix_timestamp() as f64;
        let expired = assertion(
            &c,
            &k,
            Algorithm::RS256,
            claims(now - 1200.0, now - 600.0),
            false,
        );
        assert!(matches!(
            check(&expired, &c),
            Err(TokenError::AssertionTime(_))
        ));
        let long = assertion(&c, &k, Algorithm::RS256, claims(now, now + 3600.0), false);
        assert!(matches!(
            check(&long, &c),
            Err(TokenError::AssertionTime(_))
        ));
        let mut wrong_aud = claims(now, now + 60.0);
        wrong_aud["aud"] = "https://elsewhere/token".into();
        let a = assertion(&c, &k, Algorithm::RS256, wrong_aud, false);
        assert!(matches!(check(&a, &c), Err(TokenError::BadAssertion(_))));
        let mut wrong_iss = claims(now, now + 60.0);
        wrong_iss["iss"] = "other".into();
        let a = assertion(&c, &k, Algorithm::RS256, wrong_iss, false);
        assert!(matches!(
            check(&a, &c),
            Err(TokenError::AssertionClientMismatch(_))
        ));
    }

    #[test]
    fn another_key_or_hmac_is_refused() {
        let (c, k) = client();
        let (other, _) = client();
        let now = NOW.unix_timestamp() as f64;
        let a = assertion(&c, &k, Algorithm::RS256, claims(now, now + 60.0), false);
        assert_eq!(check(&a, &other), Err(TokenError::BadAssertionSignature));
        let mut h = Header::new(Algorithm::HS256);
        h.x5t = Some(c.x5t());
        let hs = jsonwebtoken::encode(
            &h,
            &claims(now, now + 60.0),
            &EncodingKey::from_secret(&c.der),
        )
        .unwrap();
        assert!(check(&hs, &c).is_err());
        assert!(read_header("a.b.c").is_err());
    }
}
