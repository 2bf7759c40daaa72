//! The signing-key ring: which key signs tokens now.
//!
//! Keys live in the store (so every instance shares them), private parts
//! sealed under the key-encryption key. At startup the newest active key of
//! the configured algorithm is opened; if there is none, one is generated and
//! stored. Every key is parsed once and kept ready to sign.

use std::sync::{Arc, RwLock};

use crate::crypto::{Algorithm, KeyEncryptionKey, SigningKey};
use crate::store::{Store, StoreError, StoredKey};

pub struct KeyRing {
    current: RwLock<Arc<SigningKey>>,
}

#[derive(Debug)]
pub enum KeyError {
    Store(StoreError),
    Crypto(String),
}

impl std::fmt::Display for KeyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Store(e) => write!(f, "signing keys: {e}"),
            Self::Crypto(e) => write!(f, "signing keys: {e}"),
        }
    }
}

impl std::error::Error for KeyError {}

impl From<StoreError> for KeyError {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

impl From<crate::crypto::CryptoError> for KeyError {
    fn from(e: crate::crypto::CryptoError) -> Self {
        Self::Crypto(e.to_string())
    }
}

impl KeyRing {
    /// Opens the current signing key, creating the first one if needed.
    pub async fn open(
        store: &dyn Store,
        kek: &KeyEncryptionKey,
        alg: Algorithm,
        now: i64,
    ) -> Result<Self, KeyError> {
        let stored = store.list_signing_keys().await?;
        // Ties (two instances creating the first key at once) are broken by
        // kid, so that every instance picks the same key.
        let newest = stored
            .iter()
            .filter(|k| k.alg == alg.as_str() && k.activates_at <= now && k.retired_at.is_none())
            .max_by(|a, b| (a.activates_at, &a.kid).cmp(&(b.activates_at, &b.kid)));
        let key = match newest {
            Some(stored) => open_stored(kek, stored)?,
            None => {
                let key = create(store, kek, alg, now).await?;
                tracing::info!(kid = key.kid(), alg = %alg, "created a signing key");
                key
            }
        };
        Ok(Self {
            current: RwLock::new(Arc::new(key)),
        })
    }

    /// The key that signs new tokens.
    pub fn current(&self) -> Arc<SigningKey> {
        // A poisoned lock only means a writer panicked mid-swap of an Arc,
        // which cannot leave it half-written: keep serving.
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// Decrypts and parses a stored key, checking that it is the key its row
/// claims (the kid is the key's own thumbprint).
pub fn open_stored(kek: &KeyEncryptionKey, stored: &StoredKey) -> Result<SigningKey, KeyError> {
    let alg: Algorithm = stored.alg.parse().map_err(KeyError::Crypto)?;
    let der = kek.open(&stored.kid, &stored.sealed_private_key)?;
    let key = SigningKey::from_pkcs8(alg, &der)?;
    if key.kid() != stored.kid {
        return Err(KeyError::Crypto(format!(
            "stored key {} does not match its kid",
            stored.kid
        )));
    }
    Ok(key)
}

/// Generates a key and stores it, sealed.
pub async fn create(
    store: &dyn Store,
    kek: &KeyEncryptionKey,
    alg: Algorithm,
    now: i64,
) -> Result<SigningKey, KeyError> {
    let (key, der) = SigningKey::generate(alg)?;
    let stored = StoredKey {
        kid: key.kid().to_owned(),
        alg: alg.as_str().to_owned(),
        sealed_private_key: kek.seal(key.kid(), &der.0)?,
        public_jwk: key.public_jwk().to_string(),
        created_at: now,
        activates_at: now,
        retired_at: None,
    };
    store.insert_signing_key(&stored).await?;
    Ok(key)
}
