//! JWT signing keys (RFC 7515 JWS compact serialisation, RFC 7518 algorithms).
//!
//! A `SigningKey` is parsed once, when it is loaded, and keeps the parsed
//! aws-lc-rs key pair and the already-encoded JOSE header: signing a token is
//! then one JSON serialisation, one base64 pass and one signature. (The
//! `jsonwebtoken` crate's `encode` re-parses the PKCS#8 document on every
//! call, which costs more than the signature itself; we use that crate for
//! verification only.)

use std::fmt;
use std::str::FromStr;

use aws_lc_rs::digest;
use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize};
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, RSA_PKCS1_SHA256,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use serde_json::{Value, json};

use super::CryptoError;

/// The signature algorithms tokenmint signs with (RFC 7518 / RFC 8037 names).
/// RS256 is here because RFC 9068 §2.1 requires it to be available.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    ES256,
    EdDSA,
    RS256,
}

impl Algorithm {
    pub const ALL: [Algorithm; 3] = [Algorithm::ES256, Algorithm::EdDSA, Algorithm::RS256];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ES256 => "ES256",
            Self::EdDSA => "EdDSA",
            Self::RS256 => "RS256",
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Algorithm {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| format!("expected one of ES256, EdDSA, RS256, got '{s}'"))
    }
}

enum KeyPair {
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
    Rsa(RsaKeyPair),
}

/// A private signing key, ready to sign.
pub struct SigningKey {
    kid: String,
    alg: Algorithm,
    pair: KeyPair,
    /// `base64url(header) + "."`, computed once per key.
    header_prefix: String,
    public_jwk: Value,
    rng: SystemRandom,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

/// A private key document in PKCS#8; cleared from memory when dropped is not
/// something aws-lc-rs documents, so we keep these short-lived.
pub struct Pkcs8(pub Vec<u8>);

impl SigningKey {
    /// Generates a fresh key; returns it with its PKCS#8 encoding for storage.
    pub fn generate(alg: Algorithm) -> Result<(Self, Pkcs8), CryptoError> {
        let failed = || CryptoError("key generation failed");
        let der = match alg {
            Algorithm::ES256 => EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
                .and_then(|k| k.to_pkcs8v1())
                .map_err(|_| failed())?
                .as_ref()
                .to_vec(),
            Algorithm::EdDSA => Ed25519KeyPair::generate()
                .and_then(|k| k.to_pkcs8())
                .map_err(|_| failed())?
                .as_ref()
                .to_vec(),
            Algorithm::RS256 => {
                let pair = RsaKeyPair::generate(KeySize::Rsa2048).map_err(|_| failed())?;
                let der: Pkcs8V1Der<'static> = pair.as_der().map_err(|_| failed())?;
                der.as_ref().to_vec()
            }
        };
        let key = Self::from_pkcs8(alg, &der)?;
        Ok((key, Pkcs8(der)))
    }

    /// Loads a key from its PKCS#8 document. The `kid` is the RFC 7638 JWK
    /// thumbprint, so it is derived from the key itself and stable everywhere.
    pub fn from_pkcs8(alg: Algorithm, der: &[u8]) -> Result<Self, CryptoError> {
        let rejected = |_| CryptoError("a stored signing key does not parse");
        let (pair, members) = match alg {
            Algorithm::ES256 => {
                let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der)
                    .map_err(rejected)?;
                // Uncompressed SEC1 point: 0x04 || x (32 bytes) || y (32 bytes).
                let point = pair.public_key().as_ref();
                if point.len() != 65 {
                    return Err(CryptoError("unexpected P-256 public key encoding"));
                }
                let members = json!({
                    "crv": "P-256", "kty": "EC",
                    "x": b64(&point[1..33]), "y": b64(&point[33..65]),
                });
                (KeyPair::Ec(pair), members)
            }
            Algorithm::EdDSA => {
                let pair = Ed25519KeyPair::from_pkcs8(der).map_err(rejected)?;
                let members =
                    json!({ "crv": "Ed25519", "kty": "OKP", "x": b64(pair.public_key().as_ref()) });
                (KeyPair::Ed(pair), members)
            }
            Algorithm::RS256 => {
                let pair = RsaKeyPair::from_pkcs8(der).map_err(rejected)?;
                let public = pair.public_key();
                let members = json!({
                    "e": b64(public.exponent().big_endian_without_leading_zero()),
                    "kty": "RSA",
                    "n": b64(public.modulus().big_endian_without_leading_zero()),
                });
                (KeyPair::Rsa(pair), members)
            }
        };
        // RFC 7638 §3: the thumbprint hashes the required members in
        // lexicographic order with no whitespace — which is exactly how
        // serde_json writes a `json!` object (its map is sorted by key).
        let canonical = serde_json::to_vec(&members).map_err(|_| CryptoError("jwk encoding"))?;
        let kid = b64(digest::digest(&digest::SHA256, &canonical).as_ref());

        let mut public_jwk = members;
        public_jwk["kid"] = Value::String(kid.clone());
        public_jwk["alg"] = Value::String(alg.as_str().to_owned());
        public_jwk["use"] = Value::String("sig".to_owned());

        // RFC 9068 §2.1: "typ" MUST be "at+jwt".
        let header = json!({ "alg": alg.as_str(), "kid": kid, "typ": "at+jwt" });
        let mut header_prefix =
            b64(&serde_json::to_vec(&header).map_err(|_| CryptoError("header encoding"))?);
        header_prefix.push('.');

        Ok(Self {
            kid,
            alg,
            pair,
            header_prefix,
            public_jwk,
            rng: SystemRandom::new(),
        })
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key as a JWK (RFC 7517), with `kid`, `alg` and `use`.
    pub fn public_jwk(&self) -> &Value {
        &self.public_jwk
    }

    /// Signs `claims` as a compact JWS with this key's header.
    pub fn sign_jwt(&self, claims: &impl Serialize) -> Result<String, CryptoError> {
        let payload = serde_json::to_vec(claims).map_err(|_| CryptoError("claims encoding"))?;
        let mut jwt = String::with_capacity(self.header_prefix.len() + payload.len() * 4 / 3 + 400);
        jwt.push_str(&self.header_prefix);
        URL_SAFE_NO_PAD.encode_string(&payload, &mut jwt);
        let failed = |_| CryptoError("signing failed");
        let signing_input = jwt.as_bytes();
        let signature: Vec<u8> = match &self.pair {
            KeyPair::Ec(pair) => {
                let mut sig = pair
                    .sign(&self.rng, signing_input)
                    .map_err(failed)?
                    .as_ref()
                    .to_vec();
                to_low_s_p256(&mut sig);
                sig
            }
            KeyPair::Ed(pair) => pair.sign(signing_input).as_ref().to_vec(),
            KeyPair::Rsa(pair) => {
                let mut sig = vec![0u8; pair.public_modulus_len()];
                pair.sign(&RSA_PKCS1_SHA256, &self.rng, signing_input, &mut sig)
                    .map_err(failed)?;
                sig
            }
        };
        jwt.push('.');
        URL_SAFE_NO_PAD.encode_string(&signature, &mut jwt);
        Ok(jwt)
    }
}

/// The order n of the P-256 group, big-endian.
const P256_N: [u8; 32] = [
    0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    0xBC, 0xE6, 0xFA, 0xAD, 0xA7, 0x17, 0x9E, 0x84, 0xF3, 0xB9, 0xCA, 0xC2, 0xFC, 0x63, 0x25, 0x51,
];

/// ⌊n / 2⌋ for P-256, big-endian: the largest "low" s.
const P256_HALF_N: [u8; 32] = [
    0x7F, 0xFF, 0xFF, 0xFF, 0x80, 0x00, 0x00, 0x00, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    0xDE, 0x73, 0x7D, 0x56, 0xD3, 0x8B, 0xCF, 0x42, 0x79, 0xDC, 0xE5, 0x61, 0x7E, 0x31, 0x92, 0xA8,
];

/// Whether a JWS ES256 signature (`r || s`, 64 bytes) has s ≤ n/2. Both s
/// and n − s verify, so accepting only one makes the signature unique.
pub fn is_low_s_p256(signature: &[u8]) -> bool {
    signature.len() == 64 && signature[32..] <= P256_HALF_N[..]
}

/// Replaces a high s with n − s, which verifies the same.
fn to_low_s_p256(signature: &mut [u8]) {
    if signature.len() == 64 && !is_low_s_p256(signature) {
        negate_s_p256(signature);
    }
}

/// s ← n − s in a 64-byte `r || s` signature: the other signature that
/// verifies for the same message (the tests forge with it).
pub fn negate_s_p256(signature: &mut [u8]) {
    let s = &mut signature[32..];
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let d = i16::from(P256_N[i]) - i16::from(s[i]) - borrow;
        borrow = i16::from(d < 0);
        s[i] = (d + (borrow << 8)) as u8;
    }
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{DecodingKey, Validation, decode, decode_header, jwk::Jwk};

    #[test]
    fn es256_signs_with_low_s_and_its_high_twin_is_told_apart() {
        let (key, _) = SigningKey::generate(Algorithm::ES256).unwrap();
        let jwk: Jwk = serde_json::from_value(key.public_jwk().clone()).unwrap();
        let decoding = DecodingKey::from_jwk(&jwk).unwrap();
        let mut validation = Validation::new(jsonwebtoken::Algorithm::ES256);
        validation.required_spec_claims.clear();
        for _ in 0..32 {
            let token = key.sign_jwt(&json!({"sub": "svc"})).unwrap();
            let (input, signature) = token.rsplit_once('.').unwrap();
            let mut sig = URL_SAFE_NO_PAD.decode(signature).unwrap();
            assert!(is_low_s_p256(&sig), "we sign with low s");
            negate_s_p256(&mut sig);
            assert!(!is_low_s_p256(&sig), "n - s is high");
            let twin = format!("{input}.{}", URL_SAFE_NO_PAD.encode(&sig));
            assert!(
                decode::<Value>(&twin, &decoding, &validation).is_ok(),
                "the high twin verifies mathematically, so it must be refused by s"
            );
        }
    }

    #[test]
    fn every_algorithm_signs_tokens_jsonwebtoken_verifies() {
        for alg in Algorithm::ALL {
            let (key, der) = SigningKey::generate(alg).unwrap();
            let reloaded = SigningKey::from_pkcs8(alg, &der.0).unwrap();
            assert_eq!(reloaded.kid(), key.kid(), "kid is stable for {alg}");

            let token = key
                .sign_jwt(&json!({"sub": "svc", "exp": 4_000_000_000u64}))
                .unwrap();
            let header = decode_header(&token).unwrap();
            assert_eq!(header.typ.as_deref(), Some("at+jwt"));
            assert_eq!(header.kid.as_deref(), Some(key.kid()));

            let jwk: Jwk = serde_json::from_value(key.public_jwk().clone()).unwrap();
            let decoding = DecodingKey::from_jwk(&jwk).unwrap();
            let mut validation = Validation::new(header.alg);
            validation.validate_aud = false;
            let data = decode::<Value>(&token, &decoding, &validation).unwrap();
            assert_eq!(data.claims["sub"], "svc");
        }
    }

    #[test]
    fn rfc7638_thumbprint_example() {
        // RFC 7638 §3.1: the thumbprint of the example RSA key.
        let members = json!({
            "e": "AQAB", "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
        });
        let canonical = serde_json::to_vec(&members).unwrap();
        assert_eq!(
            b64(digest::digest(&digest::SHA256, &canonical).as_ref()),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }
}
