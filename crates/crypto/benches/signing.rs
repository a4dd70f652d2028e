//! Why access tokens are ES256: the cost of one signature with each algorithm Keyway could
//! use, on this machine. Run: `cargo bench -p keyway-crypto --bench signing`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::Instant;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use keyway_crypto::signing::SigningKey;

fn claims() -> serde_json::Value {
    serde_json::json!({
        "aud": "https://graph.microsoft.com", "iss": "https://127.0.0.1:8443/0f7a/v2.0",
        "iat": 1_800_000_000, "nbf": 1_800_000_000, "exp": 1_800_003_600,
        "tid": "0f7a3c1e-0000-0000-0000-000000000000", "oid": "5b1c0000-0000-0000-0000-000000000000",
        "appid": "9f56daf4-eb56-4673-bc1e-f3f58e33ebf1", "roles": ["Application.ReadWrite.All"],
        "idtyp": "app", "ver": "2.0",
    })
}

fn time(name: &str, n: u32, mut f: impl FnMut()) -> f64 {
    for _ in 0..n / 10 {
        f();
    }
    let start = Instant::now();
    for _ in 0..n {
        f();
    }
    let us = start.elapsed().as_secs_f64() * 1e6 / f64::from(n);
    println!(
        "{name:<44} {us:>9.1} µs/token  {:>9.0} tokens/s/core",
        1e6 / us
    );
    us
}

fn main() {
    let c = claims();
    let (es, _) = SigningKey::generate().unwrap();
    let es256 = time("ES256 (P-256, Keyway's signer)", 20_000, || {
        black_box(es.sign(&c).unwrap());
    });
    let pair = aws_lc_rs::signature::EcdsaKeyPair::generate(
        &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
    )
    .unwrap();
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let msg = [7u8; 600];
    time("  of which the P-256 signature alone", 20_000, || {
        black_box(pair.sign(&rng, &msg).unwrap());
    });
    let rsa = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
    let key = EncodingKey::from_rsa_pem(rsa.serialize_pem().as_bytes()).unwrap();
    let header = Header::new(Algorithm::RS256);
    let rs256 = time("RS256 (RSA-2048, as Entra signs)", 1_000, || {
        black_box(jsonwebtoken::encode(&header, &c, &key).unwrap());
    });
    println!("RS256 / ES256 cost: {:.1}x", rs256 / es256);
}
