//! Cryptography, all on aws-lc-rs except argon2: client secrets (generation,
//! argon2id hashing), JWT signing keys, and the key-encryption key that seals
//! private keys at rest. Nothing here knows about HTTP or SQL.

pub mod certificate;
mod jwk_set;
mod kek;
mod permits;
mod random;
mod secret;
pub mod signing;
mod verified_cache;

pub use jwk_set::{
    AssertionAlg, CompactJws, JwksError, KeySet, MAX_JWKS_BYTES, MAX_JWT_BYTES, MalformedJws,
    RawPublicKey,
};
pub use kek::KeyEncryptionKey;
pub use permits::Lane;
pub use random::{random_bytes, random_token};
pub use secret::{ClientSecret, HashCost, HasherError, REFUSAL_HASHES, SecretHasher};
pub use signing::{Algorithm, SigningKey, is_low_s_p256};
pub use verified_cache::{Fingerprint, VerifiedSecrets};

/// A cryptographic operation failed in a way that is not the caller's fault
/// (bad key material in the store, the RNG failing). aws-lc-rs's own errors
/// say nothing more (`Unspecified`), so the message is the whole cause.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CryptoError(pub &'static str);

impl From<CryptoError> for crate::fault::Fault {
    fn from(e: CryptoError) -> Self {
        Self::internal(e)
    }
}
