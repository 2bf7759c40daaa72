//! The signing-key ring: which key signs now, which keys the JWKS publishes,
//! and verification of our own tokens (for introspection and revocation).
//!
//! Keys live in the store, so every instance shares them, private parts
//! sealed under the key-encryption key. A key's status is derived from the
//! activation times alone — nothing about a key is ever updated, so
//! instances cannot race on it:
//!
//! - *pending*: `activates_at` is in the future. Published in the JWKS at once,
//!   so resource servers learn its `kid` before any token carries it.
//! - *active*: the newest key whose `activates_at` has passed. It signs.
//! - *retired*: a newer key has activated. Still published until every token
//!   it can have signed has expired (`MAX_TOKEN_TTL` after its successor
//!   activated).
//! - *expired*: no longer published; kept for the record.
//! - *revoked*: withdrawn after a compromise (`key revoke`): never signs,
//!   never published, verifies nothing. A revocation is a row of its own;
//!   statuses are computed over the keys that are not revoked.
//!
//! Rotation creates a pending key that activates after the JWKS cache
//! lifetime (or at once with `--now`). A rotation made anywhere reaches
//! every instance as a recorded change (`startup::follow_changes`); each
//! also re-reads the keys when time alone changes a status (`is_due`), and
//! at least every `RING_BACKSTOP` seconds.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::crypto::{Algorithm, CryptoError, KeyEncryptionKey, SigningKey, is_low_s_p256};
use crate::domain::client::MAX_TOKEN_TTL;
use crate::fault::Fault;
use crate::store::{AuditEntry, SYSTEM_ACTOR, Store, StoreError, StoredKey, Write};

/// How often each instance re-reads the keys from the store.
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(1);

/// How long past `MAX_TOKEN_TTL` a retired key stays published: an instance
/// may sign with the old key for up to one refresh interval after its
/// successor activates, and clocks drift.
const PUBLISH_MARGIN: i64 = 60;

/// The longest token we verify, as a bound on work per request.
const MAX_TOKEN_LEN: usize = 8 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyStatus {
    Pending,
    Active,
    Retired,
    Expired,
    Revoked,
}

impl KeyStatus {
    pub fn is_published(self) -> bool {
        !matches!(self, Self::Expired | Self::Revoked)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Active => "active",
            Self::Retired => "retired",
            Self::Expired => "expired",
            Self::Revoked => "revoked",
        }
    }
}

/// The status of each key at `now`; `keys` must be ordered by
/// `(activates_at, kid)`, as the store returns them.
pub fn key_statuses(keys: &[StoredKey], now: i64) -> Vec<KeyStatus> {
    let live: Vec<&StoredKey> = keys.iter().filter(|k| k.revoked_at.is_none()).collect();
    let active = live.iter().rposition(|k| k.activates_at <= now);
    let mut live_statuses = live.iter().enumerate().map(|(i, key)| match active {
        _ if key.activates_at > now => KeyStatus::Pending,
        Some(a) if a == i => KeyStatus::Active,
        // Retired since its successor activated (the successor exists and
        // has activated, since `a` is after `i`).
        _ if live[i + 1].activates_at + i64::from(MAX_TOKEN_TTL) + PUBLISH_MARGIN > now => {
            KeyStatus::Retired
        }
        _ => KeyStatus::Expired,
    });
    keys.iter()
        .map(|k| match k.revoked_at {
            Some(_) => KeyStatus::Revoked,
            None => live_statuses.next().unwrap_or(KeyStatus::Expired),
        })
        .collect()
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("signing keys")]
    Store(#[from] StoreError),
    #[error("signing keys")]
    Crypto(#[from] CryptoError),
    /// A stored key that cannot be used as it is: a bug or tampering.
    #[error("signing key {kid}: {reason}")]
    Unusable { kid: String, reason: String },
    #[error("no active signing key")]
    NoActiveKey,
    #[error("the key-encryption key does not open the signing keys in the database")]
    WrongKek,
}

impl From<KeyError> for Fault {
    fn from(e: KeyError) -> Self {
        match e {
            KeyError::Store(e) => e.into(),
            other => Fault::internal(other),
        }
    }
}

impl KeyError {
    fn unusable(key: &StoredKey, reason: impl Into<String>) -> Self {
        Self::Unusable {
            kid: key.kid.clone(),
            reason: reason.into(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct KeySettings {
    /// Algorithm of keys this instance creates.
    pub alg: Algorithm,
    /// `Cache-Control: max-age` of the JWKS, and so the delay before a
    /// rotated key starts signing.
    pub jwks_max_age: u32,
    /// Rotate automatically when the newest key is this old (seconds).
    pub rotate_after: Option<u64>,
}

/// A public key able to verify our tokens.
struct Verifier {
    alg: jsonwebtoken::Algorithm,
    key: jsonwebtoken::DecodingKey,
}

/// One consistent view of the keys, swapped whole on change.
struct KeySet {
    /// `(kid, status)` of every key: when it changes, the set is rebuilt.
    fingerprint: Vec<(String, KeyStatus)>,
    signer: Arc<SigningKey>,
    verifiers: HashMap<String, Verifier>,
    /// `{"keys": [...]}`, serialised once per change.
    jwks: Arc<str>,
}

pub struct KeyRing {
    store: Arc<dyn Store>,
    kek: KeyEncryptionKey,
    settings: KeySettings,
    current: RwLock<Arc<KeySet>>,
    /// The Unix second at which the ring must be read again though nothing
    /// was heard to change: the next activation, expiry or automatic
    /// rotation, or the backstop (`startup::maintain`).
    due: std::sync::atomic::AtomicI64,
}

impl KeyRing {
    /// A key for one purpose derived from the key-encryption key: the same
    /// on every instance of a deployment (DPoP nonces are made with one).
    pub fn derived_key(&self, label: &str) -> aws_lc_rs::hmac::Key {
        self.kek.derive_hmac_key(label)
    }

    /// Loads the keys, creating one that activates now when there is no
    /// active key of the configured algorithm.
    pub async fn open(
        store: Arc<dyn Store>,
        kek: KeyEncryptionKey,
        settings: KeySettings,
        now: i64,
    ) -> Result<Self, KeyError> {
        let mut stored = store.list_signing_keys().await?;
        // Before anything is written: a key-encryption key that opens none
        // of the stored keys is the wrong one, and a key sealed with it
        // would be unreadable by every other instance.
        if let Some(newest) = stored.iter().rev().find(|k| k.revoked_at.is_none())
            && open_stored(&kek, newest).is_err()
        {
            return Err(KeyError::WrongKek);
        }
        let statuses = key_statuses(&stored, now);
        let active = stored
            .iter()
            .zip(&statuses)
            .find(|(_, s)| **s == KeyStatus::Active);
        if active.is_none_or(|(k, _)| k.alg != settings.alg.as_str()) {
            let key = create(store.as_ref(), &kek, settings.alg, now, now, SYSTEM_ACTOR).await?;
            tracing::info!(kid = key.kid, alg = %settings.alg, "created a signing key");
            stored = store.list_signing_keys().await?;
        }
        let set = build(&kek, &stored, now, None)?;
        let due = next_due(&stored, now, settings.rotate_after);
        Ok(Self {
            store,
            kek,
            settings,
            current: RwLock::new(Arc::new(set)),
            due: std::sync::atomic::AtomicI64::new(due),
        })
    }

    fn snapshot(&self) -> Arc<KeySet> {
        // A poisoned lock only means a writer panicked mid-swap of an Arc,
        // which cannot leave it half-written: keep serving.
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The key that signs new tokens.
    pub fn signer(&self) -> Arc<SigningKey> {
        self.snapshot().signer.clone()
    }

    /// The JWKS document (RFC 7517 §5): every published public key.
    pub fn jwks(&self) -> Arc<str> {
        self.snapshot().jwks.clone()
    }

    pub fn jwks_max_age(&self) -> u32 {
        self.settings.jwks_max_age
    }

    /// Whether the ring must be read again at `now` for a change of time
    /// (changes made by anyone are heard, and refresh it at once).
    pub fn is_due(&self, now: i64) -> bool {
        now >= self.due.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Re-reads the keys; rotates first when automatic rotation is due.
    pub async fn refresh(&self, now: i64) -> Result<(), KeyError> {
        let mut stored = self.store.list_signing_keys().await?;
        if let Some(max_age) = self.settings.rotate_after {
            let newest = stored
                .iter()
                .map(|k| k.created_at)
                .max()
                .unwrap_or(i64::MIN);
            if now.saturating_sub(newest) >= i64::try_from(max_age).unwrap_or(i64::MAX) {
                let (key, _) = self.rotate(now, false, SYSTEM_ACTOR).await?;
                tracing::info!(
                    kid = key.kid,
                    "rotated the signing key automatically (key age)"
                );
                stored = self.store.list_signing_keys().await?;
            }
        }
        self.due.store(
            next_due(&stored, now, self.settings.rotate_after),
            std::sync::atomic::Ordering::Release,
        );
        let fingerprint = fingerprint(&stored, now);
        let current = self.snapshot();
        if fingerprint != current.fingerprint {
            let set = build(&self.kek, &stored, now, Some(&current.signer))?;
            if set.signer.kid() != current.signer.kid() {
                tracing::info!(kid = set.signer.kid(), "now signing with a new key");
            }
            *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(set);
        }
        Ok(())
    }

    /// Creates the next key: published at once, signing after the JWKS cache
    /// lifetime so that no resource server meets an unknown `kid` — or at
    /// once with `immediately` (a compromised key). Returns the key with its
    /// status at `now`, by the same rule `list` applies: a key pushed to the
    /// next free second is still pending for that second.
    pub async fn rotate(
        &self,
        now: i64,
        immediately: bool,
        actor: &str,
    ) -> Result<(StoredKey, KeyStatus), KeyError> {
        let activates_at = if immediately {
            now
        } else {
            now + i64::from(self.settings.jwks_max_age)
        };
        let key = create(
            self.store.as_ref(),
            &self.kek,
            self.settings.alg,
            now,
            activates_at,
            actor,
        )
        .await?;
        let status = self
            .list(now)
            .await?
            .into_iter()
            .find(|(k, _)| k.kid == key.kid)
            .map_or(KeyStatus::Pending, |(_, status)| status);
        Ok((key, status))
    }

    /// Withdraws `kid` at once: out of the JWKS, never signing again, and
    /// every token it signed inactive. When it was the active key, a new key
    /// starts signing now. `None` when no such key exists.
    pub async fn revoke(
        &self,
        kid: &str,
        now: i64,
        actor: &str,
    ) -> Result<Option<(StoredKey, KeyStatus)>, KeyError> {
        let stored = self.store.list_signing_keys().await?;
        if !stored.iter().any(|k| k.kid == kid) {
            return Ok(None);
        }
        // The ring as it will be: when no key would be left signing, the
        // replacement goes in the same transaction as the revocation, so
        // that no instance ever reads a ring without an active key.
        let mut after: Vec<StoredKey> = stored.clone();
        for key in after.iter_mut().filter(|k| k.kid == kid) {
            key.revoked_at.get_or_insert(now);
        }
        let replacement = if key_statuses(&after, now).contains(&KeyStatus::Active) {
            None
        } else {
            let live: Vec<StoredKey> = after
                .iter()
                .filter(|k| k.revoked_at.is_none())
                .cloned()
                .collect();
            Some(seal_new_key(
                &self.kek,
                self.settings.alg,
                now,
                free_activation_second(&live, now),
            )?)
        };
        let mut writes = Vec::new();
        let mut audit = Vec::new();
        if let Some(key) = &replacement {
            writes.push(Write::InsertKey(key));
            audit.push(AuditEntry::new(
                actor,
                "key.rotate",
                &format!("key:{}", key.kid),
                &[],
            ));
        }
        writes.push(Write::RevokeKey { kid, at: now });
        audit.push(AuditEntry::new(
            actor,
            "key.revoke",
            &format!("key:{kid}"),
            &[],
        ));
        self.store.write(&writes, &audit).await?;
        if let Some(key) = &replacement {
            tracing::warn!(
                kid = key.kid,
                "the active key was revoked; signing with a new key"
            );
        }
        self.refresh(now).await?;
        tracing::warn!(kid, "revoked a signing key");
        let revoked = self
            .list(now)
            .await?
            .into_iter()
            .find(|(k, _)| k.kid == kid);
        Ok(revoked)
    }

    /// Every stored key with its status, oldest first.
    pub async fn list(&self, now: i64) -> Result<Vec<(StoredKey, KeyStatus)>, KeyError> {
        let stored = self.store.list_signing_keys().await?;
        let statuses = key_statuses(&stored, now);
        Ok(stored.into_iter().zip(statuses).collect())
    }

    /// Verifies one of our access tokens: a published `kid`, the algorithm of
    /// that key (never the one the header claims), the signature, the `typ`
    /// (RFC 9068 §4) and the issuer. Expiry is the caller's check, against
    /// its own `now`. `None` for anything else.
    pub fn verify<T: DeserializeOwned>(&self, token: &str, issuer: &str) -> Option<T> {
        if token.len() > MAX_TOKEN_LEN {
            return None;
        }
        let header = jsonwebtoken::decode_header(token).ok()?;
        // RFC 9068 §4: "Resource servers MUST verify that the typ header
        // value is at+jwt or application/at+jwt and reject tokens carrying
        // any other type value."
        let typ = header.typ.as_deref()?;
        if !typ.eq_ignore_ascii_case("at+jwt") && !typ.eq_ignore_ascii_case("application/at+jwt") {
            return None;
        }
        let set = self.snapshot();
        let verifier = set.verifiers.get(header.kid.as_deref()?)?;
        if header.alg != verifier.alg {
            return None;
        }
        // ECDSA signatures are malleable: (r, n − s) verifies like (r, s).
        // We sign with low s only, so a high s is someone else's token.
        if verifier.alg == jsonwebtoken::Algorithm::ES256 {
            let signature = token.rsplit('.').next()?;
            let raw = URL_SAFE_NO_PAD.decode(signature).ok()?;
            if !is_low_s_p256(&raw) {
                return None;
            }
        }
        let mut validation = jsonwebtoken::Validation::new(verifier.alg);
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        validation.set_issuer(&[issuer]);
        jsonwebtoken::decode::<T>(token, &verifier.key, &validation)
            .ok()
            .map(|data| data.claims)
    }
}

fn fingerprint(stored: &[StoredKey], now: i64) -> Vec<(String, KeyStatus)> {
    stored
        .iter()
        .map(|k| k.kid.clone())
        .zip(key_statuses(stored, now))
        .collect()
}

/// Builds the view for `now`, reusing `previous` as the signer when it is
/// still the active key (so a refresh does not decrypt and parse it again).
fn build(
    kek: &KeyEncryptionKey,
    stored: &[StoredKey],
    now: i64,
    previous: Option<&Arc<SigningKey>>,
) -> Result<KeySet, KeyError> {
    let statuses = key_statuses(stored, now);
    let active = stored
        .iter()
        .zip(&statuses)
        .find(|(_, s)| **s == KeyStatus::Active)
        .map(|(k, _)| k)
        .ok_or(KeyError::NoActiveKey)?;
    let signer = match previous {
        Some(key) if key.kid() == active.kid => key.clone(),
        _ => Arc::new(open_stored(kek, active)?),
    };
    let mut verifiers = HashMap::new();
    let mut published: Vec<(KeyStatus, Value)> = Vec::new();
    for (key, status) in stored
        .iter()
        .zip(&statuses)
        .filter(|(_, s)| s.is_published())
    {
        let jwk: Value = serde_json::from_str(&key.public_jwk)
            .map_err(|_| KeyError::unusable(key, "public JWK does not parse"))?;
        let parsed: jsonwebtoken::jwk::Jwk = serde_json::from_value(jwk.clone())
            .map_err(|_| KeyError::unusable(key, "unsupported JWK"))?;
        let decoding = jsonwebtoken::DecodingKey::from_jwk(&parsed)
            .map_err(|_| KeyError::unusable(key, "unusable public key"))?;
        let alg: Algorithm = key.alg.parse().map_err(|e| KeyError::unusable(key, e))?;
        verifiers.insert(
            key.kid.clone(),
            Verifier {
                alg: jose_alg(alg),
                key: decoding,
            },
        );
        published.push((*status, jwk));
    }
    // The active key first: some clients try keys in order.
    published.sort_by_key(|(status, _)| *status != KeyStatus::Active);
    let keys: Vec<Value> = published.into_iter().map(|(_, jwk)| jwk).collect();
    let jwks = serde_json::json!({ "keys": keys }).to_string();
    Ok(KeySet {
        fingerprint: fingerprint(stored, now),
        signer,
        verifiers,
        jwks: jwks.into(),
    })
}

fn jose_alg(alg: Algorithm) -> jsonwebtoken::Algorithm {
    match alg {
        Algorithm::ES256 => jsonwebtoken::Algorithm::ES256,
        Algorithm::EdDSA => jsonwebtoken::Algorithm::EdDSA,
        Algorithm::RS256 => jsonwebtoken::Algorithm::RS256,
    }
}

/// Decrypts and parses a stored key, checking that it is the key its row
/// claims (the kid is the key's own thumbprint).
fn open_stored(kek: &KeyEncryptionKey, stored: &StoredKey) -> Result<SigningKey, KeyError> {
    let alg: Algorithm = stored
        .alg
        .parse()
        .map_err(|e| KeyError::unusable(stored, e))?;
    let der = kek.open(&stored.kid, &stored.sealed_private_key)?;
    let key = SigningKey::from_pkcs8(alg, &der)?;
    if key.kid() != stored.kid {
        return Err(KeyError::unusable(stored, "does not match its kid"));
    }
    Ok(key)
}

/// The first second at or after `wanted` at which no stored key activates.
///
/// Keys are ordered by activation time, and times are whole seconds: a key
/// made in the same second as the active one would otherwise tie with it and
/// be ordered by its (random) kid — half the time *before* the key it was
/// meant to replace, so that it never signed. Moving it to the next free
/// second keeps the order strictly by time; "at once" becomes "within a
/// second". Two instances creating a key in the same instant can still tie;
/// they are then ordered by kid alike on every instance.
fn free_activation_second(stored: &[StoredKey], wanted: i64) -> i64 {
    let mut at = wanted;
    let live = || stored.iter().filter(|k| k.revoked_at.is_none());
    while live().any(|k| k.activates_at == at) {
        at += 1;
    }
    at
}

/// The longest the ring goes unread when nothing is heard to change: a
/// backstop against a change that was missed.
const RING_BACKSTOP: i64 = 60;

/// When the statuses of `stored` next change by time alone — a pending key
/// activates, a retired key expires — or automatic rotation falls due;
/// at most `RING_BACKSTOP` away.
fn next_due(stored: &[StoredKey], now: i64, rotate_after: Option<u64>) -> i64 {
    let live: Vec<&StoredKey> = stored.iter().filter(|k| k.revoked_at.is_none()).collect();
    let activations = live.iter().map(|k| k.activates_at);
    let expiries = live
        .iter()
        .map(|k| k.activates_at + i64::from(MAX_TOKEN_TTL) + PUBLISH_MARGIN);
    let rotation = rotate_after.and_then(|after| {
        let newest = stored.iter().map(|k| k.created_at).max()?;
        Some(newest.saturating_add(i64::try_from(after).unwrap_or(i64::MAX)))
    });
    activations
        .chain(expiries)
        .chain(rotation)
        .filter(|at| *at > now)
        .fold(now + RING_BACKSTOP, i64::min)
}

/// A new key, sealed under the KEK, not yet stored.
fn seal_new_key(
    kek: &KeyEncryptionKey,
    alg: Algorithm,
    now: i64,
    activates_at: i64,
) -> Result<StoredKey, KeyError> {
    let (key, der) = SigningKey::generate(alg)?;
    Ok(StoredKey {
        kid: key.kid().to_owned(),
        alg: alg.as_str().to_owned(),
        sealed_private_key: kek.seal(key.kid(), &der.0)?,
        public_jwk: key.public_jwk().to_string(),
        created_at: now,
        activates_at,
        revoked_at: None,
    })
}

/// Generates a key and stores it, sealed, activating at `activates_at` or
/// the first free second after it.
async fn create(
    store: &dyn Store,
    kek: &KeyEncryptionKey,
    alg: Algorithm,
    now: i64,
    activates_at: i64,
    actor: &str,
) -> Result<StoredKey, KeyError> {
    let activates_at = free_activation_second(&store.list_signing_keys().await?, activates_at);
    let stored = seal_new_key(kek, alg, now, activates_at)?;
    let audit = AuditEntry::new(actor, "key.rotate", &format!("key:{}", stored.kid), &[]);
    store.insert_signing_key(&stored, Some(&audit)).await?;
    Ok(stored)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(kid: &str, activates_at: i64) -> StoredKey {
        StoredKey {
            kid: kid.into(),
            alg: "ES256".into(),
            sealed_private_key: vec![],
            public_jwk: String::new(),
            created_at: 0,
            activates_at,
            revoked_at: None,
        }
    }

    #[test]
    fn the_ring_is_due_when_time_alone_changes_it() {
        let day = i64::from(MAX_TOKEN_TTL) + PUBLISH_MARGIN;
        // One active key since 0: nothing changes but its expiry far ahead.
        assert_eq!(next_due(&[key("a", 0)], 100, None), 100 + RING_BACKSTOP);
        // A pending key activates at 130, before the backstop.
        assert_eq!(next_due(&[key("a", 0), key("b", 130)], 100, None), 130);
        // The retired key expires a day after its successor activated.
        assert_eq!(
            next_due(&[key("a", 0), key("b", 10)], 10 + day - 5, None),
            10 + day
        );
        // Automatic rotation falls due an hour after the newest key.
        assert_eq!(next_due(&[key("a", 0)], 3590, Some(3600)), 3600);
    }

    #[test]
    fn a_new_key_never_ties_with_an_existing_activation() {
        let keys = [key("a", 100), key("b", 101), key("c", 400)];
        assert_eq!(free_activation_second(&keys, 100), 102);
        assert_eq!(free_activation_second(&keys, 150), 150);
        assert_eq!(free_activation_second(&[], 100), 100);
    }

    #[test]
    fn statuses_follow_activation_times() {
        let day = i64::from(MAX_TOKEN_TTL) + PUBLISH_MARGIN;
        let keys = [key("a", 0), key("b", 100), key("c", 200)];
        use KeyStatus::*;
        assert_eq!(key_statuses(&keys, 50), [Active, Pending, Pending]);
        assert_eq!(key_statuses(&keys, 150), [Retired, Active, Pending]);
        assert_eq!(key_statuses(&keys, 250), [Retired, Retired, Active]);
        assert_eq!(key_statuses(&keys, 100 + day), [Expired, Retired, Active]);
        assert_eq!(key_statuses(&keys, 200 + day), [Expired, Expired, Active]);
    }

    #[test]
    fn a_revoked_key_has_no_part_in_the_others_statuses() {
        let mut keys = [key("a", 0), key("b", 100), key("c", 200)];
        keys[2].revoked_at = Some(250);
        use KeyStatus::*;
        assert_eq!(key_statuses(&keys, 250), [Retired, Active, Revoked]);
        keys[1].revoked_at = Some(260);
        assert_eq!(
            key_statuses(&keys, 260),
            [Active, Revoked, Revoked],
            "with its successors revoked, the oldest key is active again"
        );
        assert_eq!(
            free_activation_second(&keys, 100),
            100,
            "revoked keys free their second"
        );
    }
}
