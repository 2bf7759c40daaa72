//! DPoP proofs at the token endpoint (RFC 9449): checking a proof (§4.3),
//! refusing a replayed one, and the optional server nonces (§8).
//!
//! A proof is checked before the client authenticates (it needs no client),
//! but its `jti` is spent only after: an unauthenticated caller can make any
//! number of valid proofs with keys of its own, and must not fill the replay
//! window with them.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use aws_lc_rs::{digest, hmac};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;

use super::OAuthError;
use crate::crypto::{AssertionAlg, CompactJws, KeySet, MAX_JWT_BYTES};

/// RFC 9449 §4.3 point 11: "the creation time of the JWT ... is within an
/// acceptable window". A proof is made just before its request; this much
/// either side allows for clocks that disagree.
pub const PROOF_WINDOW_SECS: i64 = 60;
/// The longest `jti` accepted (RFC 9449 §4.2 asks for 96 bits of randomness;
/// a UUID is 36 characters).
const MAX_JTI_LEN: usize = 256;
/// The most proof ids remembered at once (about 20 bytes each, so at most
/// some 40 MiB): more than two minutes of DPoP requests at the token
/// endpoint's measured ceiling on one instance. Past it, new proofs are
/// answered 503 rather than remembered less.
const MAX_REMEMBERED: usize = 2_000_000;
/// Distinct proof headers whose keys are remembered; past it the cache
/// starts over (a caller inventing keys only makes its own proofs slower).
const MAX_PROOF_KEYS: usize = 4096;
/// A nonce is valid in the slot it was made in and the next one.
const NONCE_SLOT_SECS: i64 = 60;

/// `dpop_signing_alg_values_supported` (RFC 9449 §5.1).
pub const SIGNING_ALGS: [&str; 5] = AssertionAlg::NAMES;

/// A proof that passed every check of RFC 9449 §4.3 but the replay check.
#[derive(Debug)]
pub struct DpopProof {
    /// The RFC 7638 thumbprint of the proof's key: the token's `cnf.jkt`.
    pub jkt: String,
    /// The `jti`, hashed with the key, 16 bytes: what the replay window keeps.
    replay_id: [u8; 16],
    /// The proof's `iat`.
    iat: i64,
}

impl DpopProof {
    /// What the shared store keeps for a proof (`jti`s of nonce-mode proofs):
    /// printable and bounded, whatever the caller's `jti`.
    pub fn ledger_id(&self) -> String {
        format!("dpop:{}", URL_SAFE_NO_PAD.encode(self.replay_id))
    }

    /// Until when the proof could still be accepted, and so must be
    /// remembered.
    pub fn remember_until(&self) -> i64 {
        self.iat.saturating_add(PROOF_WINDOW_SECS)
    }
}

#[derive(Deserialize)]
struct ProofClaims {
    jti: String,
    htm: String,
    htu: String,
    iat: serde_json::Number,
    #[serde(default)]
    nonce: Option<String>,
}

/// Checks proofs for one token endpoint (it may be reachable at more than
/// one URL: the issuer's, and the mTLS alias).
pub struct DpopVerifier {
    token_endpoints: Vec<String>,
    nonces: Option<NonceKey>,
    seen: Mutex<ReplayWindow>,
    /// Checked proof keys by the header text that carried them.
    keys: Mutex<HashMap<String, Arc<ProofKey>>>,
}

/// A proof header's key, checked.
struct ProofKey {
    alg: AssertionAlg,
    key: KeySet,
    /// RFC 7638 thumbprint.
    jkt: String,
}

impl DpopVerifier {
    /// `nonce_key`: when given, proofs must carry a nonce made with it (every
    /// instance sharing the key-encryption key shares this key).
    pub fn new(token_endpoints: &[String], nonce_key: Option<hmac::Key>) -> Self {
        Self {
            token_endpoints: token_endpoints
                .iter()
                .filter_map(|u| normalize_htu(u))
                .collect(),
            nonces: nonce_key.map(NonceKey),
            seen: Mutex::new(ReplayWindow::default()),
            keys: Mutex::new(HashMap::new()),
        }
    }

    pub fn requires_nonce(&self) -> bool {
        self.nonces.is_some()
    }

    /// The nonce to hand out now (`DPoP-Nonce`), when nonces are on.
    pub fn current_nonce(&self, now: i64) -> Option<String> {
        self.nonces.as_ref().map(|k| k.make(now))
    }

    /// RFC 9449 §4.3, points 1–12, for a `POST` to the token endpoint.
    /// `headers` are the values of every `DPoP` header of the request.
    pub fn check(&self, headers: &[&[u8]], now: i64) -> Result<Option<DpopProof>, OAuthError> {
        let header = match headers {
            [] => return Ok(None),
            [one] => *one,
            // Point 1: "there is not more than one DPoP HTTP request header field".
            _ => return Err(refuse("send one DPoP header")),
        };
        // Point 2: "the DPoP HTTP request header field value is a single
        // well-formed JWT".
        let text = std::str::from_utf8(header).map_err(|_| refuse("not a JWT"))?;
        if text.len() > MAX_JWT_BYTES {
            return Err(refuse("the proof is too long"));
        }
        let mut parts = text.split('.');
        let (Some(header_part), Some(payload_part), Some(signature_part), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(refuse("not a compact JWS (three dot-separated parts)"));
        };
        let key = self.proof_key(header_part, text)?;
        // Point 6: the signature verifies with the header's key.
        let signing_input = &text[..header_part.len() + 1 + payload_part.len()];
        let signature = URL_SAFE_NO_PAD
            .decode(signature_part)
            .map_err(|_| refuse("the signature is not base64url"))?;
        if !key
            .key
            .verify_signature(key.alg, signing_input.as_bytes(), &signature)
        {
            return Err(refuse("the signature does not verify with the jwk"));
        }
        let payload = URL_SAFE_NO_PAD
            .decode(payload_part)
            .map_err(|_| refuse("the payload is not base64url"))?;
        // Point 3: "all required claims per Section 4.2 are contained in the JWT".
        let claims: ProofClaims = serde_json::from_slice(&payload)
            .map_err(|_| refuse("the proof needs string jti, htm, htu and a numeric iat"))?;
        if claims.jti.is_empty() || claims.jti.len() > MAX_JTI_LEN {
            return Err(refuse("the jti must be 1 to 256 characters"));
        }
        // Point 8: "the htm claim matches the HTTP method of the current request".
        if claims.htm != "POST" {
            return Err(refuse("htm must be POST"));
        }
        // Point 9: "the htu claim matches the HTTP URI value for the HTTP
        // request in which the JWT was received, ignoring any query and
        // fragment parts", after normalisation (RFC 3986 §6.2.2, §6.2.3).
        let htu_ok = self.token_endpoints.contains(&claims.htu)
            || normalize_htu(&claims.htu).is_some_and(|htu| self.token_endpoints.contains(&htu));
        if !htu_ok {
            return Err(refuse("htu must be this server's token endpoint URL"));
        }
        // Point 11: `iat` within the window. Fractions are allowed by
        // RFC 7519 §2 (NumericDate); a number past i64 is simply too far.
        let iat = claims
            .iat
            .as_i64()
            .or_else(|| claims.iat.as_f64().map(|f| f as i64))
            .ok_or_else(|| refuse("iat must be a number"))?;
        if iat.abs_diff(now) > PROOF_WINDOW_SECS.unsigned_abs() {
            return Err(refuse(
                "the proof's iat is more than 60 seconds from the server's time",
            ));
        }
        // Point 10: a server that hands out nonces checks them.
        if let Some(nonces) = &self.nonces {
            let fresh = claims
                .nonce
                .as_deref()
                .is_some_and(|n| nonces.accepts(n, now));
            if !fresh {
                return Err(OAuthError::UseDpopNonce {
                    nonce: nonces.make(now),
                });
            }
        }
        let mut hash = digest::Context::new(&digest::SHA256);
        hash.update(key.jkt.as_bytes());
        hash.update(b".");
        hash.update(claims.jti.as_bytes());
        let mut replay_id = [0u8; 16];
        replay_id.copy_from_slice(&hash.finish().as_ref()[..16]);
        Ok(Some(DpopProof {
            jkt: key.jkt.clone(),
            replay_id,
            iat,
        }))
    }

    /// The key of a proof's JOSE header, checked (points 4, 5 and 7) once
    /// per distinct header: a client signs every proof with the same key,
    /// so its header is the same text each time, and parsing the key (and
    /// validating its point) is then done once, not per request.
    fn proof_key(&self, header_part: &str, jwt: &str) -> Result<Arc<ProofKey>, OAuthError> {
        if let Some(key) = self.lock_keys().get(header_part) {
            return Ok(key.clone());
        }
        let mut jws = CompactJws::parse(jwt).map_err(|e| refuse(e.0))?;
        // Point 4: "the typ JOSE Header Parameter has the value dpop+jwt"
        // (media types compare case-insensitively; RFC 7515 §4.1.9 lets the
        // "application/" prefix be left out).
        let typ = jws.typ.as_deref().unwrap_or_default();
        let typ = typ.strip_prefix("application/").unwrap_or(typ);
        if !typ.eq_ignore_ascii_case("dpop+jwt") {
            return Err(refuse("the typ header must be dpop+jwt"));
        }
        // Points 5 and 7: the algorithm is asymmetric (`CompactJws::parse`
        // accepts no other) and the `jwk` is a public key (`from_jwk`
        // refuses private and symmetric members, weak and invalid keys).
        let jwk = jws
            .jwk
            .take()
            .ok_or_else(|| refuse("the header has no jwk"))?;
        let (key, jkt) = KeySet::from_jwk(&jwk)
            .map_err(|e| refuse_owned(format!("the jwk is not usable: {}", e.0)))?;
        let key = Arc::new(ProofKey {
            alg: jws.alg,
            key,
            jkt,
        });
        let mut keys = self.lock_keys();
        if keys.len() >= MAX_PROOF_KEYS {
            keys.clear();
        }
        keys.insert(header_part.to_owned(), key.clone());
        Ok(key)
    }

    fn lock_keys(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<ProofKey>>> {
        self.keys.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Point 12: "the jti value has not been seen before" within the window
    /// — on this instance. (With nonces on, the service also spends the
    /// proof in the store shared by every instance.)
    pub fn spend(&self, proof: &DpopProof, now: i64) -> Result<(), OAuthError> {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        match seen.insert(proof.replay_id, proof.remember_until(), now) {
            Remembered::First => Ok(()),
            Remembered::Replay => Err(refuse("this proof has been used already")),
            Remembered::Full => Err(OAuthError::Fault(crate::fault::Fault::unavailable(
                "the DPoP replay window is full",
            ))),
        }
    }
}

fn refuse(reason: &'static str) -> OAuthError {
    OAuthError::InvalidDpopProof(reason.into())
}

fn refuse_owned(reason: String) -> OAuthError {
    OAuthError::InvalidDpopProof(reason.into())
}

/// Proof ids, each kept until its proof could no longer be accepted
/// (`iat` + the window), in buckets of `BUCKET_SECS` by that time: a bucket
/// whose time has passed is dropped whole, so forgetting costs nothing per
/// id, and memory follows the proofs of the last minute or two.
#[derive(Default)]
struct ReplayWindow {
    /// Bucket end (Unix seconds) → the ids that may be forgotten then.
    buckets: BTreeMap<i64, HashSet<[u8; 16]>>,
    len: usize,
}

const BUCKET_SECS: i64 = 10;

enum Remembered {
    First,
    Replay,
    Full,
}

impl ReplayWindow {
    fn insert(&mut self, id: [u8; 16], until: i64, now: i64) -> Remembered {
        while let Some(entry) = self.buckets.first_entry() {
            if *entry.key() >= now {
                break;
            }
            self.len -= entry.remove().len();
        }
        if self.buckets.values().any(|ids| ids.contains(&id)) {
            return Remembered::Replay;
        }
        if self.len >= MAX_REMEMBERED {
            return Remembered::Full;
        }
        // Rounded up: an id is never forgotten before `until`.
        let end = until
            .saturating_add(BUCKET_SECS - 1)
            .div_euclid(BUCKET_SECS)
            * BUCKET_SECS;
        // A new bucket starts the size of the latest one: growing a set of a
        // hundred thousand ids rehashes it under the lock, a pause every
        // request would wait out.
        let expected = self
            .buckets
            .last_key_value()
            .map_or(0, |(_, ids)| ids.len());
        self.buckets
            .entry(end)
            .or_insert_with(|| HashSet::with_capacity(expected))
            .insert(id);
        self.len += 1;
        Remembered::First
    }
}

/// Server nonces (RFC 9449 §8): `slot || HMAC(slot)`, so that any instance
/// holding the key checks any instance's nonce without shared state.
struct NonceKey(hmac::Key);

impl NonceKey {
    fn make(&self, now: i64) -> String {
        self.make_for_slot(now.div_euclid(NONCE_SLOT_SECS))
    }

    fn make_for_slot(&self, slot: i64) -> String {
        let slot = slot.to_be_bytes();
        let tag = hmac::sign(&self.0, &slot);
        let mut raw = [0u8; 24];
        raw[..8].copy_from_slice(&slot);
        raw[8..].copy_from_slice(&tag.as_ref()[..16]);
        URL_SAFE_NO_PAD.encode(raw)
    }

    /// Made in this slot or the one before (a nonce handed out just before
    /// a slot ends still works for a minute).
    fn accepts(&self, nonce: &str, now: i64) -> bool {
        let slot = now.div_euclid(NONCE_SLOT_SECS);
        [slot, slot - 1].into_iter().any(|s| {
            let expected = self.make_for_slot(s);
            aws_lc_rs::constant_time::verify_slices_are_equal(expected.as_bytes(), nonce.as_bytes())
                .is_ok()
        })
    }
}

/// An `htu` reduced to the form two equal URIs share (RFC 3986 §6.2.2 and
/// §6.2.3): scheme and host lower-cased, the default port dropped, dot
/// segments removed, an empty path made `/`, percent-encodings upper-cased;
/// query and fragment left out (RFC 9449 §4.3 point 9). `None` for a value
/// that is not an absolute http(s) URL.
fn normalize_htu(raw: &str) -> Option<String> {
    let without_fragment = raw.split('#').next().unwrap_or_default();
    let without_query = without_fragment.split('?').next().unwrap_or_default();
    let (scheme, rest) = without_query.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "https" => "443",
        "http" => "80",
        _ => return None,
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    // Userinfo has no place in an endpoint URL.
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    let authority = authority.to_ascii_lowercase();
    // host, then an optional ":port" of digits; an IPv6 host in brackets.
    let (host, port) = match authority.strip_prefix('[') {
        Some(rest) => {
            let (inside, after) = rest.split_once(']')?;
            (format!("[{inside}]"), after)
        }
        None => match authority.split_once(':') {
            Some((host, _)) => (host.to_owned(), &authority[host.len()..]),
            None => (authority.clone(), ""),
        },
    };
    let port = match port.strip_prefix(':') {
        None if port.is_empty() => "",
        None => return None,
        Some(digits) if digits.bytes().all(|b| b.is_ascii_digit()) => digits,
        Some(_) => return None,
    };
    let host = if port.is_empty() || port == default_port {
        host
    } else {
        format!("{host}:{port}")
    };
    let mut segments: Vec<String> = Vec::new();
    for segment in path.split('/').skip(1) {
        match segment {
            "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(normalize_percent(s)?),
        }
    }
    let trailing_dot = path.ends_with("/.") || path.ends_with("/..");
    let mut out = format!("{scheme}://{host}/{}", segments.join("/"));
    if trailing_dot && !out.ends_with('/') {
        out.push('/');
    }
    Some(out)
}

/// Percent-encodings upper-cased, and those of unreserved characters
/// decoded (RFC 3986 §6.2.2.1, §6.2.2.2).
fn normalize_percent(segment: &str) -> Option<String> {
    let bytes = segment.as_bytes();
    let mut out = String::with_capacity(segment.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = segment.get(i + 1..i + 3)?;
            let byte = u8::from_str_radix(hex, 16).ok()?;
            if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
                out.push(char::from(byte));
            } else {
                out.push('%');
                out.push_str(&hex.to_ascii_uppercase());
            }
            i += 3;
        } else {
            out.push(char::from(bytes[i]));
            i += 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn htu_normalisation() {
        let base = normalize_htu("https://auth.example.com/token").unwrap();
        for same in [
            "HTTPS://Auth.Example.COM/token",
            "https://auth.example.com:443/token",
            "https://auth.example.com/token?x=1",
            "https://auth.example.com/token#f",
            "https://auth.example.com/a/../token",
            "https://auth.example.com/./token",
            "https://auth.example.com/%74oken",
        ] {
            assert_eq!(
                normalize_htu(same).as_deref(),
                Some(base.as_str()),
                "{same}"
            );
        }
        for different in [
            "http://auth.example.com/token",
            "https://auth.example.com:8443/token",
            "https://auth.example.com/token/",
            "https://auth.example.com/Token",
            "https://evil.example.com/token",
            "https://auth.example.com@evil.example.com/token",
            "https://auth.example.com:443:443/token",
            "https://auth.example.com:x/token",
        ] {
            assert_ne!(
                normalize_htu(different).as_deref(),
                Some(base.as_str()),
                "{different}"
            );
        }
        assert_eq!(
            normalize_htu("http://[::1]:80/token").as_deref(),
            Some("http://[::1]/token")
        );
        assert_eq!(
            normalize_htu("http://127.0.0.1:8080").as_deref(),
            Some("http://127.0.0.1:8080/")
        );
        assert_eq!(normalize_htu("ftp://x/token"), None);
        assert_eq!(normalize_htu("https://x/%zz"), None);
    }

    #[test]
    fn replay_window_remembers_each_id_while_its_proof_is_acceptable() {
        let mut w = ReplayWindow::default();
        // A proof of iat 1000 is acceptable until 1060.
        assert!(matches!(w.insert([1; 16], 1060, 1000), Remembered::First));
        assert!(matches!(w.insert([1; 16], 1060, 1001), Remembered::Replay));
        assert!(matches!(w.insert([1; 16], 1060, 1060), Remembered::Replay));
        // Once it is not, its id is forgotten with its bucket.
        assert!(matches!(w.insert([2; 16], 1130, 1071), Remembered::First));
        assert_eq!(w.len, 1);
        assert!(matches!(w.insert([1; 16], 1131, 1071), Remembered::First));
        // A future iat keeps its id longer.
        assert!(matches!(w.insert([3; 16], 1260, 1100), Remembered::First));
        assert!(matches!(w.insert([3; 16], 1260, 1255), Remembered::Replay));
    }

    #[test]
    fn nonces_last_one_to_two_slots() {
        let key = NonceKey(hmac::Key::new(hmac::HMAC_SHA256, b"k"));
        let n = key.make(6000);
        assert!(key.accepts(&n, 6000));
        assert!(key.accepts(&n, 6000 + NONCE_SLOT_SECS + 59));
        assert!(!key.accepts(&n, 6000 + 2 * NONCE_SLOT_SECS));
        assert!(!key.accepts(&n, 6000 - NONCE_SLOT_SECS));
        let other = NonceKey(hmac::Key::new(hmac::HMAC_SHA256, b"other"));
        assert!(!other.accepts(&n, 6000));
        assert!(!key.accepts("", 6000));
    }
}
