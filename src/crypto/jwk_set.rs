//! Client and issuer public keys (RFC 7517 JWK sets) and the verification of
//! signed JWTs against them (RFC 7515 compact serialisation): the crypto of
//! `private_key_jwt` (RFC 7523 §2.2) and of federated identity tokens.
//!
//! Asymmetric algorithms only (RS256, PS256, ES256, EdDSA — also named
//! Ed25519, RFC 9864): a client's keys are public, so an `HS*` assertion
//! "keyed" with one of them would be forgeable by anyone, and `none` is no
//! signature at all. Keys are parsed once into aws-lc-rs public keys; a key
//! set that holds a private member, a symmetric key or a weak RSA modulus is
//! refused at registration, not at first use.

use aws_lc_rs::signature::{
    self, ECDSA_P256_SHA256_FIXED, ED25519, ParsedPublicKey, RSA_PKCS1_2048_8192_SHA256,
    RSA_PSS_2048_8192_SHA256, RsaPublicKeyComponents,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;

/// The largest JWK set accepted, inline or fetched.
pub const MAX_JWKS_BYTES: usize = 64 * 1024;
/// The most keys one set may hold: enough for a rotation overlap of several
/// algorithms, and a bound on the signatures one assertion without `kid`
/// can cost.
pub const MAX_KEYS: usize = 16;
/// The longest compact JWS accepted as an assertion. Platform tokens (with
/// nested Kubernetes claims) are about 1 KiB; RS256 with a 4096-bit key adds
/// under 700 bytes.
pub const MAX_JWT_BYTES: usize = 8 * 1024;

/// A JWS algorithm accepted for client authentication.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssertionAlg {
    RS256,
    PS256,
    ES256,
    EdDSA,
}

impl AssertionAlg {
    /// The `alg` values accepted, as metadata lists them
    /// (`token_endpoint_auth_signing_alg_values_supported`).
    pub const NAMES: [&'static str; 5] = ["RS256", "PS256", "ES256", "EdDSA", "Ed25519"];

    /// `Ed25519` is RFC 9864's fully-specified name for EdDSA over Ed25519,
    /// which current clients (openid-client, among others) send.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "RS256" => Self::RS256,
            "PS256" => Self::PS256,
            "ES256" => Self::ES256,
            "EdDSA" | "Ed25519" => Self::EdDSA,
            _ => return None,
        })
    }

    fn family(self) -> Family {
        match self {
            Self::RS256 | Self::PS256 => Family::Rsa,
            Self::ES256 => Family::P256,
            Self::EdDSA => Family::Ed25519,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    Rsa,
    P256,
    Ed25519,
}

#[derive(Clone)]
enum Verifier {
    Rsa(RsaPublicKeyComponents<Vec<u8>>),
    /// A P-256 or Ed25519 key, parsed (and its point validated) once.
    Parsed(ParsedPublicKey),
}

/// A public key as an X.509 certificate carries it (the bytes of its
/// SubjectPublicKeyInfo bit string), for comparing a certificate with a
/// registered JWK (RFC 8705 §2.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawPublicKey {
    /// The DER `RSAPublicKey` (RFC 8017 §A.1.1); DER is canonical, so equal
    /// keys have equal bytes.
    Rsa(Vec<u8>),
    /// The uncompressed point, `04 || x || y`.
    P256(Vec<u8>),
    /// The 32-byte encoded point.
    Ed25519(Vec<u8>),
}

/// One public key of a set.
#[derive(Clone)]
struct PublicKey {
    kid: Option<String>,
    raw: RawPublicKey,
    /// The JWK's `alg`, when it names one: the key then verifies that
    /// algorithm only (RFC 7517 §4.4).
    alg: Option<AssertionAlg>,
    family: Family,
    verifier: Verifier,
}

impl PublicKey {
    fn verifies(&self, alg: AssertionAlg, message: &[u8], signature: &[u8]) -> bool {
        if self.family != alg.family() || self.alg.is_some_and(|a| a != alg) {
            return false;
        }
        let outcome = match (&self.verifier, alg) {
            (Verifier::Rsa(key), AssertionAlg::RS256) => {
                key.verify(&RSA_PKCS1_2048_8192_SHA256, message, signature)
            }
            (Verifier::Rsa(key), AssertionAlg::PS256) => {
                key.verify(&RSA_PSS_2048_8192_SHA256, message, signature)
            }
            (Verifier::Parsed(key), AssertionAlg::ES256 | AssertionAlg::EdDSA) => {
                key.verify_sig(message, signature)
            }
            _ => return false,
        };
        outcome.is_ok()
    }
}

/// A parsed JWK set: the keys that may sign a client's assertions.
#[derive(Clone, Default)]
pub struct KeySet {
    keys: Vec<PublicKey>,
}

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kids: Vec<Option<&str>> = self.keys.iter().map(|k| k.kid.as_deref()).collect();
        f.debug_struct("KeySet").field("kids", &kids).finish()
    }
}

/// Why a JWK set was refused; the message names the key by position.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct JwksError(pub String);

#[derive(Deserialize)]
struct RawSet {
    keys: Vec<serde_json::Map<String, serde_json::Value>>,
}

/// Members that only a private or symmetric key has (RFC 7518 §6.2.2, §6.3.2,
/// §6.4.1, RFC 8037 §2): a set holding one leaks a secret and is refused.
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

impl KeySet {
    /// Parses and checks a JWK set document.
    pub fn parse(document: &[u8]) -> Result<Self, JwksError> {
        if document.len() > MAX_JWKS_BYTES {
            return Err(JwksError(format!(
                "a JWK set is at most {MAX_JWKS_BYTES} bytes"
            )));
        }
        let raw: RawSet = serde_json::from_slice(document).map_err(|e| {
            JwksError(format!(
                "not a JWK set (a JSON object with a \"keys\" array): {e}"
            ))
        })?;
        if raw.keys.len() > MAX_KEYS {
            return Err(JwksError(format!(
                "a JWK set holds at most {MAX_KEYS} keys"
            )));
        }
        let keys = raw
            .keys
            .iter()
            .enumerate()
            .map(|(i, jwk)| parse_key(jwk).map_err(|e| JwksError(format!("key {i}: {e}"))))
            .collect::<Result<Vec<_>, _>>()?;
        // A kid names one key (RFC 7517 §4.5): with two, which one an
        // assertion meant would depend on the order.
        for (i, key) in keys.iter().enumerate() {
            if let Some(kid) = &key.kid
                && keys[..i].iter().any(|k| k.kid.as_ref() == Some(kid))
            {
                return Err(JwksError(format!("key {i}: the kid {kid:?} is used twice")));
            }
        }
        Ok(Self { keys })
    }

    /// Freshly generated public keys (P-256 and Ed25519) whose private
    /// halves are thrown away: verifying against them costs what a real
    /// check costs and never succeeds. For refusals that must take as long
    /// as a real check.
    pub fn decoy() -> Self {
        use aws_lc_rs::signature::{
            ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _,
        };
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let p256 = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
            .ok()
            .and_then(|pair| {
                ParsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, pair.public_key().as_ref()).ok()
            })
            .map(|key| (Family::P256, key));
        let ed25519 = Ed25519KeyPair::generate_pkcs8(&rng)
            .ok()
            .and_then(|doc| Ed25519KeyPair::from_pkcs8(doc.as_ref()).ok())
            .and_then(|pair| ParsedPublicKey::new(&ED25519, pair.public_key().as_ref()).ok())
            .map(|key| (Family::Ed25519, key));
        let keys = [p256, ed25519]
            .into_iter()
            .flatten()
            .map(|(family, key)| PublicKey {
                kid: None,
                // Matches no certificate: the decoy is never a registered key.
                raw: RawPublicKey::Ed25519(Vec::new()),
                alg: None,
                family,
                verifier: Verifier::Parsed(key),
            })
            .collect();
        Self { keys }
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// One JWK (a DPoP proof's header `jwk`), checked like a registered
    /// key, and its RFC 7638 thumbprint.
    pub fn from_jwk(
        jwk: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<(Self, String), JwksError> {
        let key = parse_key(jwk).map_err(JwksError)?;
        let thumbprint = thumbprint(jwk).ok_or_else(|| JwksError("incomplete key".to_owned()))?;
        Ok((Self { keys: vec![key] }, thumbprint))
    }

    /// Verifies `signature` over `signing_input` with any key of the set
    /// that fits `alg`: for a key given with the message (a DPoP proof's
    /// `jwk`), where no `kid` is involved.
    pub fn verify_signature(
        &self,
        alg: AssertionAlg,
        signing_input: &[u8],
        signature: &[u8],
    ) -> bool {
        self.keys
            .iter()
            .any(|k| k.verifies(alg, signing_input, signature))
    }

    /// Whether `key` is one of the set's keys.
    pub fn holds(&self, key: &RawPublicKey) -> bool {
        self.keys.iter().any(|k| k.raw == *key)
    }

    /// Whether a key with this `kid` is in the set (an unknown one may mean
    /// the set has rotated, and is worth one refetch).
    pub fn has_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|k| k.kid.as_deref() == Some(kid))
    }

    /// Verifies `jwt`'s signature with the key its `kid` names or, without a
    /// `kid`, with each key of the matching type (at most `MAX_KEYS`).
    pub fn verify(&self, jwt: &CompactJws<'_>) -> bool {
        self.keys
            .iter()
            .filter(|k| match &jwt.kid {
                Some(kid) => k.kid.as_deref() == Some(kid.as_str()),
                None => true,
            })
            .any(|k| k.verifies(jwt.alg, jwt.signing_input.as_bytes(), &jwt.signature))
    }
}

fn parse_key(jwk: &serde_json::Map<String, serde_json::Value>) -> Result<PublicKey, String> {
    let text = |name: &str| -> Result<Option<&str>, String> {
        match jwk.get(name) {
            None => Ok(None),
            Some(serde_json::Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(format!("\"{name}\" must be a string")),
        }
    };
    let bytes = |name: &str| -> Result<Vec<u8>, String> {
        let value = text(name)?.ok_or_else(|| format!("\"{name}\" is missing"))?;
        URL_SAFE_NO_PAD
            .decode(value)
            .map_err(|_| format!("\"{name}\" is not base64url without padding"))
    };
    if let Some(member) = PRIVATE_MEMBERS.iter().find(|m| jwk.contains_key(**m)) {
        return Err(format!(
            "holds the private member \"{member}\": register public keys only"
        ));
    }
    if text("use")?.is_some_and(|u| u != "sig") {
        return Err("\"use\" must be \"sig\"".to_owned());
    }
    let alg = match text("alg")? {
        None => None,
        Some(name) => Some(AssertionAlg::from_name(name).ok_or_else(|| {
            format!(
                "alg \"{name}\" is not accepted; use one of {}",
                AssertionAlg::NAMES.join(", ")
            )
        })?),
    };
    let kty = text("kty")?.ok_or("\"kty\" is missing")?;
    let (family, verifier, raw) = match kty {
        "RSA" => {
            let n = bytes("n")?;
            let e = bytes("e")?;
            // Leading zero octets do not count towards the modulus size.
            let significant: Vec<u8> = n.iter().copied().skip_while(|b| *b == 0).collect();
            let bits = significant.first().map_or(0, |top| {
                significant.len() * 8 - top.leading_zeros() as usize
            });
            if !(2048..=8192).contains(&bits) {
                return Err("an RSA modulus must be 2048 to 8192 bits".to_owned());
            }
            // e = 1 or 3 invites forgeries and broken padding checks; every
            // real key uses 65537 (RFC 8017 allows more, nobody does).
            let e_value = e.iter().skip_while(|b| **b == 0).try_fold(0u64, |acc, b| {
                acc.checked_mul(256).map(|a| a + u64::from(*b))
            });
            if !e_value.is_some_and(|e| e >= 65_537 && e % 2 == 1 && e < 1 << 32) {
                return Err("an RSA public exponent must be odd, at least 65537".to_owned());
            }
            let raw = RawPublicKey::Rsa(der_sequence(&[der_integer(&n), der_integer(&e)]));
            (
                Family::Rsa,
                Verifier::Rsa(RsaPublicKeyComponents { n, e }),
                raw,
            )
        }
        "EC" => {
            if text("crv")? != Some("P-256") {
                return Err("an EC key must be on curve P-256 (ES256)".to_owned());
            }
            let (x, y) = (bytes("x")?, bytes("y")?);
            if x.len() != 32 || y.len() != 32 {
                return Err("a P-256 key's x and y are 32 bytes each".to_owned());
            }
            let point: Vec<u8> = [&[4u8][..], &x, &y].concat();
            // Parsing validates the point: one off the curve is refused now
            // rather than failing every request.
            let key = ParsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &point)
                .map_err(|_| "the EC point is not on P-256".to_owned())?;
            (
                Family::P256,
                Verifier::Parsed(key),
                RawPublicKey::P256(point),
            )
        }
        "OKP" => {
            if text("crv")? != Some("Ed25519") {
                return Err("an OKP key must be on curve Ed25519".to_owned());
            }
            let x = bytes("x")?;
            if x.len() != signature::ED25519_PUBLIC_KEY_LEN {
                return Err("an Ed25519 key's x is 32 bytes".to_owned());
            }
            if has_small_order_or_is_noncanonical(&x) {
                return Err("the Ed25519 key is a small-order or non-canonical point".to_owned());
            }
            let key = ParsedPublicKey::new(&ED25519, &x)
                .map_err(|_| "the Ed25519 key does not parse".to_owned())?;
            (
                Family::Ed25519,
                Verifier::Parsed(key),
                RawPublicKey::Ed25519(x),
            )
        }
        "oct" => return Err("symmetric keys are not accepted".to_owned()),
        other => {
            return Err(format!(
                "kty \"{}\" is not supported (RSA, EC, OKP)",
                other.escape_debug()
            ));
        }
    };
    if let Some(alg) = alg
        && alg.family() != family
    {
        return Err(format!("alg {alg:?} does not fit a {kty} key"));
    }
    Ok(PublicKey {
        kid: text("kid")?.map(str::to_owned),
        raw,
        alg,
        family,
        verifier,
    })
}

/// A DER INTEGER of an unsigned big-endian value (X.690 §8.3: minimal, with
/// a leading zero when the top bit is set).
fn der_integer(unsigned: &[u8]) -> Vec<u8> {
    let trimmed: &[u8] = match unsigned.iter().position(|b| *b != 0) {
        Some(i) => &unsigned[i..],
        None => &[0],
    };
    let mut content = Vec::with_capacity(trimmed.len() + 1);
    if trimmed[0] & 0x80 != 0 {
        content.push(0);
    }
    content.extend_from_slice(trimmed);
    der_tlv(0x02, &content)
}

fn der_sequence(items: &[Vec<u8>]) -> Vec<u8> {
    der_tlv(0x30, &items.concat())
}

fn der_tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes
            .iter()
            .position(|b| *b != 0)
            .unwrap_or(bytes.len() - 1);
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

/// RFC 7638 §3: SHA-256 over the key's required members, in lexicographic
/// order, without white space, base64url-encoded.
fn thumbprint(jwk: &serde_json::Map<String, serde_json::Value>) -> Option<String> {
    let member = |name: &str| jwk.get(name).and_then(|v| v.as_str());
    // The values are base64url or curve names: JSON strings without escapes.
    let canonical = match member("kty")? {
        "RSA" => format!(
            r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
            member("e")?,
            member("n")?
        ),
        "EC" => format!(
            r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#,
            member("crv")?,
            member("x")?,
            member("y")?
        ),
        "OKP" => format!(
            r#"{{"crv":"{}","kty":"OKP","x":"{}"}}"#,
            member("crv")?,
            member("x")?
        ),
        _ => return None,
    };
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, canonical.as_bytes());
    Some(URL_SAFE_NO_PAD.encode(digest.as_ref()))
}

/// The `y` coordinates (little-endian, the sign bit of `x` cleared) of the
/// Ed25519 points whose order divides 8: 0 (order 4), 1 (the identity),
/// the two `y`s of the four points of order 8, and p − 1 (order 2) — the
/// blocklist libsodium checks. Against such a key, a "signature" with
/// `R` = identity and `s` = 0 verifies for any message (RFC 8032 §5.1.7
/// verification is cofactorless and does not exclude them).
const ED25519_SMALL_ORDER_Y: [[u8; 32]; 5] = [
    [0; 32],
    [
        1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0,
    ],
    [
        0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef, 0x98,
        0xf0, 0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6, 0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53,
        0xfc, 0x05,
    ],
    [
        0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b, 0x76, 0x0d, 0x10, 0x67,
        0x0f, 0x2a, 0x20, 0x53, 0xfa, 0x2c, 0x39, 0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77, 0x92, 0xac,
        0x03, 0x7a,
    ],
    [
        0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0x7f,
    ],
];

/// A small-order point, or a `y` of p or more (a second spelling of a
/// smaller `y`: p and p + 1 are small-order points again).
fn has_small_order_or_is_noncanonical(encoded: &[u8]) -> bool {
    let mut y = [0u8; 32];
    y.copy_from_slice(encoded);
    y[31] &= 0x7f;
    // p = 2^255 - 19, little-endian: ed ff … ff 7f.
    let at_least_p = y[0] >= 0xed && y[1..31].iter().all(|b| *b == 0xff) && y[31] == 0x7f;
    at_least_p || ED25519_SMALL_ORDER_Y.contains(&y)
}

/// A JWS in compact serialisation, split and its header read; nothing is
/// verified yet.
#[derive(Debug)]
pub struct CompactJws<'a> {
    pub alg: AssertionAlg,
    pub kid: Option<String>,
    pub typ: Option<String>,
    /// The header's `jwk`, unchecked.
    pub jwk: Option<serde_json::Map<String, serde_json::Value>>,
    /// `BASE64URL(header) || '.' || BASE64URL(payload)`, what was signed.
    signing_input: &'a str,
    signature: Vec<u8>,
    /// The decoded payload (JSON text, unverified until `KeySet::verify`).
    pub payload: Vec<u8>,
}

/// Why a JWT was not even worth verifying. The message is for the log;
/// callers answer `invalid_client` whatever it says.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct MalformedJws(pub &'static str);

#[derive(Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    typ: Option<String>,
    /// An embedded public key (RFC 7515 §4.1.3): trusted only where a
    /// protocol says so (a DPoP proof, RFC 9449 §4.2), never for assertions.
    #[serde(default)]
    jwk: Option<serde_json::Map<String, serde_json::Value>>,
    /// RFC 7515 §4.1.11: an extension we do not understand must not be
    /// ignored, and we understand none.
    #[serde(default)]
    crit: Option<serde_json::Value>,
}

impl<'a> CompactJws<'a> {
    pub fn parse(jwt: &'a str) -> Result<Self, MalformedJws> {
        if jwt.len() > MAX_JWT_BYTES {
            return Err(MalformedJws("the JWT is too long"));
        }
        let mut parts = jwt.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(MalformedJws(
                "not a compact JWS (three dot-separated parts)",
            ));
        };
        let decode = |part: &str| URL_SAFE_NO_PAD.decode(part).ok();
        let signed_len = header.len() + 1 + payload.len();
        let header: Header = decode(header)
            .and_then(|h| serde_json::from_slice(&h).ok())
            .ok_or(MalformedJws("the JOSE header is not base64url JSON"))?;
        if header.crit.is_some() {
            return Err(MalformedJws("the JOSE header has critical extensions"));
        }
        let alg = AssertionAlg::from_name(&header.alg).ok_or(MalformedJws(
            "the algorithm is not an accepted asymmetric one",
        ))?;
        let signature = decode(signature).ok_or(MalformedJws("the signature is not base64url"))?;
        let payload = decode(payload).ok_or(MalformedJws("the payload is not base64url"))?;
        Ok(Self {
            alg,
            kid: header.kid,
            typ: header.typ,
            jwk: header.jwk,
            signing_input: &jwt[..signed_len],
            signature,
            payload,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{EcdsaKeyPair, Ed25519KeyPair, KeyPair as _};

    fn b64(bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    fn sign_es256(key: &EcdsaKeyPair, header: &str, payload: &str) -> String {
        let input = format!("{}.{}", b64(header.as_bytes()), b64(payload.as_bytes()));
        let sig = key.sign(&SystemRandom::new(), input.as_bytes()).unwrap();
        format!("{input}.{}", b64(sig.as_ref()))
    }

    fn p256() -> (EcdsaKeyPair, String) {
        let rng = SystemRandom::new();
        let doc = EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .unwrap();
        let key =
            EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, doc.as_ref())
                .unwrap();
        let point = key.public_key().as_ref().to_vec();
        let jwk = format!(
            r#"{{"kty":"EC","crv":"P-256","kid":"k1","x":"{}","y":"{}"}}"#,
            b64(&point[1..33]),
            b64(&point[33..])
        );
        (key, jwk)
    }

    #[test]
    fn es256_verifies_with_its_key_and_not_after_tampering() {
        let (key, jwk) = p256();
        let set = KeySet::parse(format!(r#"{{"keys":[{jwk}]}}"#).as_bytes()).unwrap();
        let jwt = sign_es256(&key, r#"{"alg":"ES256","kid":"k1"}"#, r#"{"a":1}"#);
        assert!(set.verify(&CompactJws::parse(&jwt).unwrap()));
        let tampered = jwt.replacen(&b64(br#"{"a":1}"#), &b64(br#"{"a":2}"#), 1);
        assert!(!set.verify(&CompactJws::parse(&tampered).unwrap()));
        let other_kid = sign_es256(&key, r#"{"alg":"ES256","kid":"k2"}"#, r#"{"a":1}"#);
        assert!(!set.verify(&CompactJws::parse(&other_kid).unwrap()));
        let no_kid = sign_es256(&key, r#"{"alg":"ES256"}"#, r#"{"a":1}"#);
        assert!(set.verify(&CompactJws::parse(&no_kid).unwrap()));
    }

    #[test]
    fn symmetric_and_none_are_refused_before_any_key() {
        for alg in ["none", "HS256", "ES384", "RS512"] {
            let header = b64(format!(r#"{{"alg":"{alg}"}}"#).as_bytes());
            let jwt = format!("{header}.{}.", b64(b"{}"));
            assert!(CompactJws::parse(&jwt).is_err(), "{alg}");
        }
        let crit = format!(
            "{}.{}.AA",
            b64(br#"{"alg":"ES256","crit":["x"]}"#),
            b64(b"{}")
        );
        assert!(CompactJws::parse(&crit).is_err());
    }

    #[test]
    fn private_symmetric_and_weak_keys_are_refused() {
        let (_, jwk) = p256();
        let with_d = jwk.replace("\"kty\"", "\"d\":\"AA\",\"kty\"");
        assert!(KeySet::parse(format!(r#"{{"keys":[{with_d}]}}"#).as_bytes()).is_err());
        let oct = r#"{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}"#;
        assert!(KeySet::parse(oct.as_bytes()).is_err());
        let small_rsa = format!(
            r#"{{"keys":[{{"kty":"RSA","n":"{}","e":"AQAB"}}]}}"#,
            b64(&[0xc1; 128])
        );
        assert!(KeySet::parse(small_rsa.as_bytes()).is_err());
        let off_curve = format!(
            r#"{{"keys":[{{"kty":"EC","crv":"P-256","x":"{}","y":"{}"}}]}}"#,
            b64(&[1; 32]),
            b64(&[2; 32])
        );
        assert!(KeySet::parse(off_curve.as_bytes()).is_err());
        let mismatched = jwk.replace("\"kty\"", "\"alg\":\"RS256\",\"kty\"");
        assert!(KeySet::parse(format!(r#"{{"keys":[{mismatched}]}}"#).as_bytes()).is_err());
    }

    #[test]
    fn small_order_ed25519_keys_are_refused_and_cannot_be_forged_against() {
        let identity = b64(&{
            let mut y = [0u8; 32];
            y[0] = 1;
            y
        });
        let jwks = format!(r#"{{"keys":[{{"kty":"OKP","crv":"Ed25519","x":"{identity}"}}]}}"#);
        assert!(KeySet::parse(jwks.as_bytes()).is_err());
        for y in ED25519_SMALL_ORDER_Y {
            let mut negated = y;
            negated[31] |= 0x80;
            assert!(has_small_order_or_is_noncanonical(&y));
            assert!(has_small_order_or_is_noncanonical(&negated));
        }
        let mut p_plus_1 = [0xffu8; 32];
        p_plus_1[0] = 0xee;
        p_plus_1[31] = 0x7f;
        assert!(has_small_order_or_is_noncanonical(&p_plus_1));
    }

    #[test]
    fn rsa_exponents_and_sizes_are_bounded() {
        let n = b64(&[0xc1; 256]);
        let rsa = |n: &str, e: &str| {
            KeySet::parse(format!(r#"{{"keys":[{{"kty":"RSA","n":"{n}","e":"{e}"}}]}}"#).as_bytes())
        };
        assert!(rsa(&n, "AQAB").is_ok(), "65537");
        assert!(rsa(&n, "AQ").is_err(), "e = 1");
        assert!(rsa(&n, "Aw").is_err(), "e = 3");
        assert!(rsa(&b64(&[0xc1; 1100]), "AQAB").is_err(), "over 8192 bits");
        let mut short = vec![0xc1; 256];
        short[0] = 0x7f;
        assert!(rsa(&b64(&short), "AQAB").is_err(), "2047 bits");
    }

    #[test]
    fn thumbprints_follow_rfc7638() {
        // RFC 7638 §3.1's example key and thumbprint.
        let jwk = serde_json::json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB",
            "alg": "RS256",
            "kid": "2011-04-29"
        });
        let (_, thumbprint) = KeySet::from_jwk(jwk.as_object().unwrap()).unwrap();
        assert_eq!(thumbprint, "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
        let (_, jwk) = p256();
        let mut private: serde_json::Value = serde_json::from_str(&jwk).unwrap();
        private["d"] = serde_json::json!("AAAA");
        assert!(
            KeySet::from_jwk(private.as_object().unwrap()).is_err(),
            "a private key"
        );
    }

    #[test]
    fn a_kid_names_one_key() {
        let (_, jwk) = p256();
        let twice = format!(r#"{{"keys":[{jwk},{jwk}]}}"#);
        assert!(KeySet::parse(twice.as_bytes()).is_err());
    }

    #[test]
    fn ed25519_under_both_names() {
        let rng = SystemRandom::new();
        let doc = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        let key = Ed25519KeyPair::from_pkcs8(doc.as_ref()).unwrap();
        let jwk = format!(
            r#"{{"keys":[{{"kty":"OKP","crv":"Ed25519","x":"{}"}}]}}"#,
            b64(key.public_key().as_ref())
        );
        let set = KeySet::parse(jwk.as_bytes()).unwrap();
        for alg in ["EdDSA", "Ed25519"] {
            let input = format!(
                "{}.{}",
                b64(format!(r#"{{"alg":"{alg}"}}"#).as_bytes()),
                b64(b"{}")
            );
            let jwt = format!("{input}.{}", b64(key.sign(input.as_bytes()).as_ref()));
            assert!(set.verify(&CompactJws::parse(&jwt).unwrap()), "{alg}");
        }
    }
}
