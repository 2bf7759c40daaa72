//! Remembered secret verifications, so that a client presenting the same
//! correct secret again does not pay for argon2 again.
//!
//! An entry is keyed by HMAC-SHA256(per-process random key, client id and
//! secret) — the secret itself is never kept — and holds the stored hash the
//! secret matched. A hit counts only while that hash is still one of the
//! client's live hashes, which the caller reads from the store on every
//! request: a rotated secret, an expired overlap, a deleted or disabled client
//! stop working at once, on every instance, with nothing to invalidate.
//!
//! Only successful verifications are inserted, so the size is bounded by the
//! number of real (client, secret) pairs, not by what attackers send; it is
//! capped all the same, and entries expire.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use aws_lc_rs::hmac;

use super::{ClientSecret, CryptoError, random_bytes};

pub struct VerifiedSecrets {
    key: hmac::Key,
    ttl: Duration,
    max_entries: usize,
    entries: Mutex<HashMap<[u8; 32], Entry>>,
}

struct Entry {
    matched_hash: String,
    inserted: Instant,
}

/// The cache key of one (client id, secret) pair.
pub struct Fingerprint([u8; 32]);

impl VerifiedSecrets {
    /// `ttl` zero disables the cache.
    pub fn new(ttl: Duration, max_entries: usize) -> Result<Self, CryptoError> {
        Ok(Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, &random_bytes::<32>()?),
            ttl,
            max_entries,
            entries: Mutex::new(HashMap::new()),
        })
    }

    pub fn is_enabled(&self) -> bool {
        !self.ttl.is_zero()
    }

    pub fn fingerprint(&self, client_id: &str, secret: &ClientSecret) -> Fingerprint {
        let mut ctx = hmac::Context::with_key(&self.key);
        // Length-prefixed so that ("ab", "c") and ("a", "bc") differ.
        ctx.update(&(client_id.len() as u64).to_be_bytes());
        ctx.update(client_id.as_bytes());
        ctx.update(secret.expose().as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(ctx.sign().as_ref());
        Fingerprint(out)
    }

    /// Whether this pair was verified recently against a hash that is still live.
    pub fn contains<'a>(
        &self,
        fingerprint: &Fingerprint,
        mut live_hashes: impl Iterator<Item = &'a str>,
    ) -> bool {
        if !self.is_enabled() {
            return false;
        }
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        match entries.get(&fingerprint.0) {
            Some(entry) if entry.inserted.elapsed() < self.ttl => {
                live_hashes.any(|h| h == entry.matched_hash)
            }
            _ => false,
        }
    }

    pub fn insert(&self, fingerprint: Fingerprint, matched_hash: &str) {
        if !self.is_enabled() {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= self.max_entries {
            let ttl = self.ttl;
            entries.retain(|_, e| e.inserted.elapsed() < ttl);
            if entries.len() >= self.max_entries {
                // Full of live entries: the newcomer pays argon2 next time too.
                return;
            }
        }
        entries.insert(
            fingerprint.0,
            Entry {
                matched_hash: matched_hash.to_owned(),
                inserted: Instant::now(),
            },
        );
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(s: &str) -> ClientSecret {
        ClientSecret::new(s.to_owned())
    }

    #[test]
    fn a_hit_needs_the_same_pair_and_a_live_hash() {
        let cache = VerifiedSecrets::new(Duration::from_secs(60), 10).unwrap();
        cache.insert(cache.fingerprint("svc", &secret("s1")), "$hash-1");
        let fp = cache.fingerprint("svc", &secret("s1"));
        assert!(cache.contains(&fp, ["$hash-1"].into_iter()));
        assert!(
            !cache.contains(&fp, ["$hash-2"].into_iter()),
            "rotated: the matched hash is gone"
        );
        assert!(
            !cache.contains(&fp, std::iter::empty()),
            "deleted or disabled"
        );
        assert!(!cache.contains(
            &cache.fingerprint("svc", &secret("s2")),
            ["$hash-1"].into_iter()
        ));
        assert!(!cache.contains(
            &cache.fingerprint("sv", &secret("cs1")),
            ["$hash-1"].into_iter()
        ));
    }

    #[test]
    fn bounded_and_disableable() {
        let cache = VerifiedSecrets::new(Duration::from_secs(60), 2).unwrap();
        for i in 0..5 {
            cache.insert(cache.fingerprint(&format!("c{i}"), &secret("s")), "$h");
        }
        assert_eq!(cache.len(), 2);
        let off = VerifiedSecrets::new(Duration::ZERO, 2).unwrap();
        off.insert(off.fingerprint("c", &secret("s")), "$h");
        assert!(off.is_empty());
    }
}
