//! Client secrets: generated with 256 bits of randomness, stored only as
//! argon2id PHC strings, verified on the blocking pool.

use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use argon2::password_hash::{Output, PasswordHash, PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};

use super::permits::{Lane, Permits};
use super::{CryptoError, random_bytes, random_token};
use crate::domain::client::SecretOrigin;
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

    /// Whether the secret has the shape of one `generate` makes (43
    /// base64url characters): how a secret stored before origins were
    /// recorded is judged. An imported secret of that shape is 256 bits of
    /// encoding from another server's generator, as unguessable as ours.
    pub fn looks_generated(&self) -> bool {
        self.0.len() == 43
            && self
                .0
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
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
///
/// Three lanes share the queue (`permits::Lane`): a freed permit goes to a
/// `Clean` waiter first, then `Crowd`, then `Suspect`; when the queue is
/// full, a caller of a better lane takes the place of the newest `Suspect`
/// waiter. However many addresses flood wrong secrets, a real client waits
/// behind at most one clean request per address, never behind the whole
/// flood.
///
/// Every refusal takes the time of `REFUSAL_HASHES` verifications and the
/// usual queue wait, whatever the client: unknown ids are refused by
/// sleeping that long (no CPU, no place in the queue), and a client with one
/// live hash sleeps for the second. The durations are running averages of
/// real verifications, so they follow the machine and its load.
#[derive(Clone)]
pub struct SecretHasher {
    inner: Arc<Inner>,
}

struct Inner {
    /// For secrets a person or another system chose (`HashCost::Strong`).
    argon2: Argon2<'static>,
    /// For secrets we generated (`HashCost::Light`).
    light: Argon2<'static>,
    permits: Permits,
    concurrency: usize,
    /// One argon2 working memory per permit, reused (see `verify_with`).
    memory: Mutex<Vec<Vec<Block>>>,
    waiting: AtomicUsize,
    max_waiting: usize,
    /// Running averages, in nanoseconds: one verification's compute time,
    /// and the wait for a permit.
    hash_nanos: AtomicU64,
    wait_nanos: AtomicU64,
    /// Verifications refused because the queue was full.
    busy: AtomicU64,
}

/// Every refusal costs as long as this many verifications: the most live
/// hashes a client has (current and, during an overlap, previous).
pub const REFUSAL_HASHES: u32 = 2;

/// How expensive a secret's hash is. The cost of argon2 protects only
/// secrets that can be guessed: a secret we generated holds 256 random bits,
/// and no number of guesses at any cost per guess finds it, so its hash
/// costs the minimum (and a cold client is served at nearly the speed of a
/// warm one). A secret someone chose keeps the strong parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashCost {
    /// argon2id at its minimum: 8 KiB, 1 pass, 1 lane.
    Light,
    /// OWASP's argon2id recommendation: 19 MiB, 2 passes, 1 lane.
    Strong,
}

impl HashCost {
    /// What a secret's hash costs, by where the secret came from.
    pub fn for_origin(origin: SecretOrigin) -> Self {
        match origin {
            SecretOrigin::Generated => Self::Light,
            SecretOrigin::Imported => Self::Strong,
        }
    }

    fn params(self) -> Result<Params, CryptoError> {
        let (m, t) = match self {
            Self::Light => (Params::MIN_M_COST, Params::MIN_T_COST),
            Self::Strong => (19 * 1024, 2),
        };
        Params::new(m, t, 1, None).map_err(|_| CryptoError("invalid argon2 parameters"))
    }

    /// The cost a stored PHC string was made with, if it is one of ours.
    pub fn of(phc: &str) -> Option<Self> {
        let parsed = PasswordHash::new(phc).ok()?;
        let params = Params::try_from(&parsed).ok()?;
        [Self::Light, Self::Strong].into_iter().find(|cost| {
            cost.params()
                .is_ok_and(|p| p.m_cost() == params.m_cost() && p.t_cost() == params.t_cost())
        })
    }
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
        // Pinned here, not the argon2 crate's defaults, so that an upgrade
        // cannot move them.
        let argon2 = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            HashCost::Strong.params()?,
        );
        let light = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            HashCost::Light.params()?,
        );
        // One hash now seeds the running average that refusals sleep by.
        let started = Instant::now();
        hash_with(&argon2, &ClientSecret::generate()?)?;
        let seed = nanos(started.elapsed());
        Ok(Self {
            inner: Arc::new(Inner {
                argon2,
                light,
                permits: Permits::new(concurrency.max(1)),
                concurrency: concurrency.max(1),
                memory: Mutex::new(Vec::new()),
                waiting: AtomicUsize::new(0),
                max_waiting,
                hash_nanos: AtomicU64::new(seed),
                wait_nanos: AtomicU64::new(0),
                busy: AtomicU64::new(0),
            }),
        })
    }

    /// Verifications refused so far because the queue was full (each a 503).
    pub fn busy_total(&self) -> u64 {
        self.inner.busy.load(Ordering::Relaxed)
    }

    /// Refuses without any argon2 work, in the time a real refusal takes:
    /// for an unknown, malformed or disabled client id.
    pub async fn refuse_without_work(&self) {
        let inner = &self.inner;
        let hash = inner.hash_nanos.load(Ordering::Relaxed);
        let wait = inner.wait_nanos.load(Ordering::Relaxed);
        let total = wait + hash * u64::from(REFUSAL_HASHES);
        tokio::time::sleep(jitter(total)).await;
    }

    /// Verifications queued or running now.
    pub fn queue_depth(&self) -> usize {
        self.inner.waiting.load(Ordering::Relaxed)
    }

    /// The argon2id PHC string of `secret`, at `cost`.
    pub async fn hash(&self, secret: ClientSecret, cost: HashCost) -> Result<String, HasherError> {
        let inner = self.inner.clone();
        Ok(self
            .run(Lane::Clean, move || {
                let argon2 = match cost {
                    HashCost::Light => &inner.light,
                    HashCost::Strong => &inner.argon2,
                };
                hash_with(argon2, &secret)
            })
            .await??)
    }

    /// Which of `hashes` (at most `REFUSAL_HASHES`) `secret` matches, if
    /// any. Every hash is tried even after a match, so the cost does not
    /// depend on which one matched; a refusal is padded, by sleeping, to
    /// `REFUSAL_HASHES` strong verifications — whatever the hashes cost, so
    /// that a refusal does not tell a generated secret's client from an
    /// imported one's, or from an unknown id.
    pub async fn verify(
        &self,
        secret: ClientSecret,
        hashes: Vec<String>,
        lane: Lane,
    ) -> Result<Option<usize>, HasherError> {
        let light = !hashes.is_empty()
            && hashes
                .iter()
                .all(|h| HashCost::of(h) == Some(HashCost::Light));
        let (found, computing) = if light {
            // Microseconds of work: done here, without a permit, a queue or a
            // blocking thread (whose hand-over would cost more than the hash).
            let started = Instant::now();
            let mut memory = Vec::new();
            let span = tracing::debug_span!("argon2", otel.name = "argon2id");
            let found = span.in_scope(|| {
                hashes.iter().enumerate().fold(None, |found, (i, hash)| {
                    let matched = verify_with(&secret, hash, &mut memory);
                    found.or(matched.then_some(i))
                })
            });
            (found, started.elapsed())
        } else {
            self.verify_on_pool(secret, hashes, lane).await?
        };
        if found.is_none() {
            let hash = self.inner.hash_nanos.load(Ordering::Relaxed);
            // A light check waited in no queue: it also sleeps the usual wait.
            let queue = if light {
                self.inner.wait_nanos.load(Ordering::Relaxed)
            } else {
                0
            };
            let target = queue + hash * u64::from(REFUSAL_HASHES);
            let missing = target.saturating_sub(nanos(computing));
            if missing > 0 {
                tokio::time::sleep(jitter(missing)).await;
            }
        }
        Ok(found)
    }

    /// Verifies on the blocking pool, under a permit: which hash matched,
    /// and how long the computing took.
    async fn verify_on_pool(
        &self,
        secret: ClientSecret,
        hashes: Vec<String>,
        lane: Lane,
    ) -> Result<(Option<usize>, Duration), HasherError> {
        let inner = self.inner.clone();
        self.run(lane, move || {
            // At most one buffer per permit exists: the pool is only drawn
            // from while a permit is held.
            let mut memory = inner.lock_memory().pop().unwrap_or_default();
            let started = Instant::now();
            let mut found = None;
            for (i, hash) in hashes.iter().enumerate() {
                let one = Instant::now();
                if verify_with(&secret, hash, &mut memory) {
                    found = found.or(Some(i));
                }
                // Only strong verifications teach the refusal time.
                if HashCost::of(hash) == Some(HashCost::Strong) {
                    average(&inner.hash_nanos, nanos(one.elapsed()));
                }
            }
            inner.lock_memory().push(memory);
            (found, started.elapsed())
        })
        .await
    }

    async fn run<T: Send + 'static>(
        &self,
        lane: Lane,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, HasherError> {
        let inner = &self.inner;
        // A full queue still takes a caller without failures on record: the
        // newest waiter with failures gives up its place (and gets 503).
        let limit = inner.max_waiting + inner.concurrency;
        let _place = match Place::take(&inner.waiting, limit) {
            Some(place) => place,
            None if lane != Lane::Suspect && inner.permits.evict_suspect() => {
                Place::take(&inner.waiting, usize::MAX).ok_or_else(|| self.busy())?
            }
            None => return Err(self.busy()),
        };
        let queued = Instant::now();
        let _permit = inner.permits.acquire(lane).await.map_err(|_| self.busy())?;
        average(&inner.wait_nanos, nanos(queued.elapsed()));
        let span = tracing::debug_span!("argon2", otel.name = "argon2id");
        let work = move || span.in_scope(work);
        Ok(tokio::task::spawn_blocking(work)
            .await
            .map_err(|_| CryptoError("argon2 task failed"))?)
    }
}

impl SecretHasher {
    fn busy(&self) -> HasherError {
        self.inner.busy.fetch_add(1, Ordering::Relaxed);
        HasherError::Busy
    }
}

/// A place in a bounded queue, given back however the holder's future ends
/// (even when the request is dropped).
struct Place<'a>(&'a AtomicUsize);

impl<'a> Place<'a> {
    fn take(count: &'a AtomicUsize, limit: usize) -> Option<Self> {
        if count.fetch_add(1, Ordering::AcqRel) >= limit {
            count.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(Self(count))
    }
}

impl Drop for Place<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Moves a running average an eighth of the way towards `sample`. Updates
/// may race; an average that misses a sample is still an average.
fn average(value: &AtomicU64, sample: u64) {
    let old = value.load(Ordering::Relaxed);
    let new = if old == 0 {
        sample
    } else {
        old - old / 8 + sample / 8
    };
    value.store(new, Ordering::Relaxed);
}

/// `nanos` ± 10 %, so that the sleeps are not smoother than real work.
fn jitter(nanos: u64) -> Duration {
    let spread = nanos / 5;
    let offset = random_bytes::<8>()
        .map(|b| u64::from_le_bytes(b) % spread.max(1))
        .unwrap_or(spread / 2);
    Duration::from_nanos(nanos - nanos / 10 + offset)
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
        let hash = hasher.hash(secret.clone(), HashCost::Strong).await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert_eq!(HashCost::of(&hash), Some(HashCost::Strong));
        let other = hasher
            .hash(ClientSecret::generate().unwrap(), HashCost::Light)
            .await
            .unwrap();
        assert!(other.starts_with("$argon2id$v=19$m=8,t=1,p=1$"));
        assert_eq!(HashCost::of(&other), Some(HashCost::Light));
        let both = vec![other, hash.clone()];
        let clean = Lane::Clean;
        assert_eq!(
            hasher.verify(secret.clone(), both, clean).await.unwrap(),
            Some(1)
        );
        let wrong = ClientSecret::new("wrong".into());
        assert_eq!(
            hasher
                .verify(wrong, vec![hash], Lane::Suspect)
                .await
                .unwrap(),
            None
        );
        assert_eq!(hasher.verify(secret, vec![], clean).await.unwrap(), None);
        assert_eq!(hasher.queue_depth(), 0);
    }

    #[tokio::test]
    async fn refusals_take_as_long_without_work_and_clean_callers_displace_suspects() {
        let hasher = SecretHasher::new(1, 64).unwrap();
        let hash = hasher
            .hash(ClientSecret::generate().unwrap(), HashCost::Strong)
            .await
            .unwrap();
        let wrong = || ClientSecret::new("wrong".into());
        // Warm the averages with real refusals.
        for _ in 0..3 {
            hasher
                .verify(wrong(), vec![hash.clone()], Lane::Clean)
                .await
                .unwrap();
        }
        let per_hash = Duration::from_nanos(hasher.inner.hash_nanos.load(Ordering::Relaxed));
        let started = Instant::now();
        hasher.refuse_without_work().await;
        let slept = started.elapsed();
        assert!(
            slept >= per_hash * REFUSAL_HASHES * 8 / 10,
            "an unknown id is refused in the time of {REFUSAL_HASHES} hashes: {slept:?} vs {per_hash:?} each"
        );
        // A wrong secret for a light hash is refused in the strong time too:
        // the answer does not tell how a client's secret was made.
        let light = hasher
            .hash(ClientSecret::generate().unwrap(), HashCost::Light)
            .await
            .unwrap();
        let started = Instant::now();
        let refused = hasher
            .verify(wrong(), vec![light], Lane::Clean)
            .await
            .unwrap();
        assert_eq!(refused, None);
        assert!(
            started.elapsed() >= per_hash * REFUSAL_HASHES * 8 / 10,
            "a light hash's refusal takes {:?}, a strong one's {:?}",
            started.elapsed(),
            per_hash * REFUSAL_HASHES
        );

        // A queue full of suspects (failures on record): the next suspects
        // are refused, a clean caller takes the place of the newest one.
        let mut flood = Vec::new();
        for _ in 0..64 + 1 + 4 {
            let (h, s) = (hasher.clone(), hash.clone());
            flood.push(tokio::spawn(async move {
                h.verify(wrong(), vec![s], Lane::Suspect).await
            }));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        let clean = hasher
            .verify(wrong(), vec![hash.clone()], Lane::Clean)
            .await;
        assert!(clean.is_ok(), "a clean caller gets a place in a full queue");
        let mut busy = 0;
        for task in flood {
            busy += u32::from(matches!(task.await.unwrap(), Err(HasherError::Busy)));
        }
        assert!(busy >= 4, "the surplus suspects are refused: {busy}");
        assert_eq!(hasher.busy_total(), u64::from(busy), "and counted");
    }

    #[test]
    fn debug_is_redacted() {
        let s = ClientSecret::new("hunter2".into());
        assert!(!format!("{s:?}").contains("hunter2"));
    }
}
