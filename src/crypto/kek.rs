//! The key-encryption key (KEK): seals signing keys before they reach the
//! store, so that a database dump or a copied data folder holds no usable
//! private key.
//!
//! AES-256-GCM with a random 96-bit nonce per seal (NIST SP 800-38D §8.2.2
//! bounds random nonces at 2^32 messages per key; we seal a handful of keys).
//! The key id is the associated data, so a sealed key cannot be swapped onto
//! another row.

use std::fmt;
use std::path::Path;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::hmac;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::{CryptoError, random_bytes};

pub struct KeyEncryptionKey {
    aead: LessSafeKey,
    /// HMAC keyed with the KEK itself, from which per-purpose keys are
    /// derived (HKDF-Expand-like, RFC 5869 §2.3, one block): secrets every
    /// instance sharing the KEK shares, without storing any.
    derivation: hmac::Key,
}

/// Why the KEK file of the embedded store could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KekFileError {
    #[error("cannot read it")]
    Read(#[source] std::io::Error),
    #[error("cannot write it")]
    Write(#[source] std::io::Error),
    #[error("it does not hold a key: {0}")]
    Invalid(String),
    #[error(transparent)]
    Random(#[from] CryptoError),
}

impl fmt::Debug for KeyEncryptionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyEncryptionKey(<redacted>)")
    }
}

impl KeyEncryptionKey {
    /// Parses 32 bytes given as standard base64 (with or without padding).
    pub fn from_base64(encoded: &str) -> Result<Self, String> {
        let trimmed = encoded.trim().trim_end_matches('=');
        let bytes = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(trimmed)
            .map_err(|_| "not valid base64".to_owned())?;
        Self::from_bytes(&bytes)
    }

    fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
        if bytes.len() != 32 {
            return Err(format!("must be 32 bytes, got {}", bytes.len()));
        }
        let key = UnboundKey::new(&AES_256_GCM, bytes)
            .map_err(|_| "rejected by AES-256-GCM".to_owned())?;
        Ok(Self {
            aead: LessSafeKey::new(key),
            derivation: hmac::Key::new(hmac::HMAC_SHA256, bytes),
        })
    }

    /// Reads the KEK from `path`, or creates it there (mode 0600) when the
    /// file does not exist: the embedded store's zero-configuration default.
    pub fn load_or_create(path: &Path) -> Result<Self, KekFileError> {
        match std::fs::read_to_string(path) {
            Ok(contents) => {
                make_private(path).map_err(KekFileError::Write)?;
                Self::from_base64(&contents).map_err(KekFileError::Invalid)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let bytes = random_bytes::<32>()?;
                write_private(path, &STANDARD.encode(bytes)).map_err(KekFileError::Write)?;
                Self::from_bytes(&bytes).map_err(KekFileError::Invalid)
            }
            Err(e) => Err(KekFileError::Read(e)),
        }
    }

    /// An HMAC-SHA256 key for one purpose (`label`), the same on every
    /// instance holding this KEK, and unrelated to the sealing key and to
    /// other labels' keys.
    pub fn derive_hmac_key(&self, label: &str) -> hmac::Key {
        let mut input = label.as_bytes().to_vec();
        input.push(1);
        hmac::Key::new(
            hmac::HMAC_SHA256,
            hmac::sign(&self.derivation, &input).as_ref(),
        )
    }

    /// `nonce || ciphertext || tag`.
    pub fn seal(&self, associated: &str, plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let nonce_bytes = random_bytes::<NONCE_LEN>()?;
        let mut in_out = plaintext.to_vec();
        self.aead
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce_bytes),
                Aad::from(associated.as_bytes()),
                &mut in_out,
            )
            .map_err(|_| CryptoError("sealing failed"))?;
        let mut out = Vec::with_capacity(NONCE_LEN + in_out.len());
        out.extend_from_slice(&nonce_bytes);
        out.extend_from_slice(&in_out);
        Ok(out)
    }

    pub fn open(&self, associated: &str, sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let wrong = CryptoError(
            "a stored signing key cannot be decrypted: TOKENMINT_KEY_ENCRYPTION_KEY is not the key it was sealed with",
        );
        if sealed.len() < NONCE_LEN {
            return Err(wrong);
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let nonce =
            Nonce::try_assume_unique_for_key(nonce).map_err(|_| CryptoError("bad nonce"))?;
        let mut in_out = ciphertext.to_vec();
        let plain = self
            .aead
            .open_in_place(nonce, Aad::from(associated.as_bytes()), &mut in_out)
            .map_err(|_| wrong)?;
        Ok(plain.to_vec())
    }
}

#[cfg(unix)]
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(contents.as_bytes())?;
    file.sync_all()
}

/// An existing key file others may read is made the owner's alone.
#[cfg(unix)]
fn make_private(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)?.permissions().mode();
    if mode & 0o077 != 0 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o700))?;
    }
    Ok(())
}

#[cfg(not(unix))]
fn make_private(_path: &Path) -> std::io::Result<()> {
    Ok(())
}

#[cfg(not(unix))]
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    std::fs::write(path, contents)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_and_bind_to_associated_data() {
        let kek = KeyEncryptionKey::from_base64(&STANDARD.encode([7u8; 32])).unwrap();
        let sealed = kek.seal("kid-1", b"private").unwrap();
        assert!(!sealed.windows(7).any(|w| w == b"private"));
        assert_eq!(kek.open("kid-1", &sealed).unwrap(), b"private");
        assert!(kek.open("kid-2", &sealed).is_err());
        let other = KeyEncryptionKey::from_base64(&STANDARD.encode([8u8; 32])).unwrap();
        assert!(other.open("kid-1", &sealed).is_err());
    }

    #[test]
    fn rejects_wrong_lengths() {
        assert!(KeyEncryptionKey::from_base64(&STANDARD.encode([1u8; 16])).is_err());
        assert!(KeyEncryptionKey::from_base64("%%%").is_err());
    }
}
