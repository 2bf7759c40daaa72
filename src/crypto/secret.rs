//! Client secrets: generated with 256 bits of randomness, stored only as
//! argon2id PHC strings, verified on the blocking pool.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use argon2::password_hash::{Output, PasswordHash, PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use tokio::sync::Semaphore;

use super::{CryptoError, random_bytes, random_token};
use crate::fault::Fault;

/// A client secret in clear. Its `Debug` is redacted so that it cannot reach a
/// log line by accident; `expose` is the one way to read it.
#[derive(Clone)]
pub struct ClientSecret(String);

impl ClientSecret {
    pub fn new(secret: String) -> Self {
        Self(secret)
    }

    /// A new secret: 32 bytes (256 bits) from the CSPRNG, base64url (43 chars).
    pub fn generate() -> Result<Self, CryptoError> {
        random_token::<32>().map(Self)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientSecret(<redacted>)")
    }
}

/// Hashes and verifies secrets with argon2id.
///
/// Argon2 is deliberately slow (tens of milliseconds of CPU): it runs on
/// tokio's blocking pool so the async workers keep serving, a semaphore
/// bounds how many run at once, and at most `max_waiting` more may queue —
/// beyond that the caller is told `Busy` at once instead of holding memory
/// and a connection while a flood drains.
#[derive(Clone)]
pub struct SecretHasher {
    inner: Arc<Inner>,
}

struct Inner {
    argon2: Argon2<'static>,
    /// A hash of a random secret nobody knows, verified when the client is
    /// unknown so that "no such client" costs exactly what "wrong secret"
    /// costs and timing does not reveal which ids exist.
    dummy_hash: String,
    permits: Semaphore,
    /// One argon2 working memory per permit, reused (see `verify_with`).
    memory: Mutex<Vec<Vec<Block>>>,
    waiting: AtomicUsize,
    max_waiting: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum HasherError {
    /// Too many verifications are already queued.
    #[error("too many argon2 verifications queued")]
    Busy,
    #[error(transparent)]
    Failed(#[from] CryptoError),
}

/// A full queue is worth a retry (503); a failed computation is not.
impl From<HasherError> for Fault {
    fn from(e: HasherError) -> Self {
        match e {
            HasherError::Busy => Fault::unavailable(e),
            HasherError::Failed(e) => e.into(),
        }
    }
}

impl Inner {
    fn lock_memory(&self) -> std::sync::MutexGuard<'_, Vec<Vec<Block>>> {
        self.memory.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl SecretHasher {
    /// `concurrency` argon2 computations may run at once, and `max_waiting`
    /// more may wait for their turn.
    pub fn new(concurrency: usize, max_waiting: usize) -> Result<Self, CryptoError> {
        // OWASP's argon2id recommendation (19 MiB, 2 passes, 1 lane) — the
        // argon2 crate's defaults, pinned here so an upgrade cannot move them.
        let params = Params::new(19 * 1024, 2, 1, None)
            .map_err(|_| CryptoError("invalid argon2 parameters"))?;
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let dummy_hash = hash_with(&argon2, &ClientSecret::generate()?)?;
        Ok(Self {
            inner: Arc::new(Inner {
                argon2,
                dummy_hash,
                permits: Semaphore::new(concurrency.max(1)),
                memory: Mutex::new(Vec::new()),
                waiting: AtomicUsize::new(0),
                max_waiting,
            }),
        })
    }

    /// Verifications queued or running now.
    pub fn queue_depth(&self) -> usize {
        self.inner.waiting.load(Ordering::Relaxed)
    }

    /// The argon2id PHC string of `secret`.
    pub async fn hash(&self, secret: ClientSecret) -> Result<String, HasherError> {
        let inner = self.inner.clone();
        Ok(self
            .run(move || hash_with(&inner.argon2, &secret))
            .await??)
    }

    /// Which of `hashes` `secret` matches, if any. With no hashes (unknown
    /// client), the dummy hash is verified instead and the answer is `None`.
    /// Every hash is tried even after a match, so the cost does not depend on
    /// which one matched.
    pub async fn verify(
        &self,
        secret: ClientSecret,
        hashes: Vec<String>,
    ) -> Result<Option<usize>, HasherError> {
        let inner = self.inner.clone();
        self.run(move || {
            // At most one buffer per permit exists: the pool is only drawn
            // from while a permit is held.
            let mut memory = inner.lock_memory().pop().unwrap_or_default();
            let found = if hashes.is_empty() {
                let _ = verify_with(&secret, &inner.dummy_hash, &mut memory);
                None
            } else {
                hashes.iter().enumerate().fold(None, |found, (i, hash)| {
                    let matched = verify_with(&secret, hash, &mut memory);
                    found.or(matched.then_some(i))
                })
            };
            inner.lock_memory().push(memory);
            found
        })
        .await
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, HasherError> {
        let inner = &self.inner;
        if inner.waiting.fetch_add(1, Ordering::AcqRel)
            >= inner.max_waiting + inner.permits.available_permits().max(1)
        {
            inner.waiting.fetch_sub(1, Ordering::AcqRel);
            return Err(HasherError::Busy);
        }
        // Decrements however this future ends, even when the request is dropped.
        struct Leave<'a>(&'a AtomicUsize);
        impl Drop for Leave<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::AcqRel);
            }
        }
        let _leave = Leave(&inner.waiting);
        let _permit = inner
            .permits
            .acquire()
            .await
            .map_err(|_| CryptoError("the secret hasher is shut down"))?;
        Ok(tokio::task::spawn_blocking(work)
            .await
            .map_err(|_| CryptoError("argon2 task failed"))?)
    }
}

fn hash_with(argon2: &Argon2<'_>, secret: &ClientSecret) -> Result<String, CryptoError> {
    let salt = SaltString::encode_b64(&random_bytes::<16>()?)
        .map_err(|_| CryptoError("salt encoding failed"))?;
    argon2
        .hash_password(secret.expose().as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|_| CryptoError("argon2 hashing failed"))
}

/// Verifies `secret` against a PHC string, computing into `memory` when it
/// is large enough for the hash's parameters. The argon2 crate's own
/// `verify_password` allocates 19 MiB per call; freed on whichever blocking
/// thread ran it, glibc keeps such blocks per thread arena, and a burst of
/// verifications grew the process by hundreds of MiB. Reusing one buffer per
/// permit bounds that memory by the concurrency instead.
fn verify_with(secret: &ClientSecret, phc: &str, memory: &mut Vec<Block>) -> bool {
    // A stored hash that does not parse is "no match": it was written by us,
    // so it is never accepted.
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return false;
    };
    let (Ok(algorithm), Ok(params)) = (
        Algorithm::try_from(parsed.algorithm),
        Params::try_from(&parsed),
    ) else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from).transpose() {
        Ok(v) => v.unwrap_or_default(),
        Err(_) => return false,
    };
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    let blocks = params.block_count();
    if memory.len() < blocks {
        memory.resize(blocks, Block::default());
    }
    let mut computed = [0u8; 64];
    let Some(computed) = computed.get_mut(..expected.len()) else {
        return false;
    };
    Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(secret.expose().as_bytes(), salt, computed, &mut memory[..blocks])
        .is_ok()
        // `Output`'s equality is constant-time.
        && Output::new(computed).is_ok_and(|computed| computed == expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hash_then_verify() {
        let hasher = SecretHasher::new(2, 8).unwrap();
        let secret = ClientSecret::generate().unwrap();
        assert_eq!(secret.expose().len(), 43);
        let hash = hasher.hash(secret.clone()).await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        let other = hasher
            .hash(ClientSecret::generate().unwrap())
            .await
            .unwrap();
        let both = vec![other, hash.clone()];
        assert_eq!(hasher.verify(secret.clone(), both).await.unwrap(), Some(1));
        let wrong = ClientSecret::new("wrong".into());
        assert_eq!(hasher.verify(wrong, vec![hash]).await.unwrap(), None);
        assert_eq!(hasher.verify(secret, vec![]).await.unwrap(), None);
        assert_eq!(hasher.queue_depth(), 0);
    }

    #[test]
    fn debug_is_redacted() {
        let s = ClientSecret::new("hunter2".into());
        assert!(!format!("{s:?}").contains("hunter2"));
    }
}
