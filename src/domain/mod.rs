//! The vocabulary every layer shares: the client and its fields, scopes, and
//! the limits an operator sets. Plain data and the grammar of each field —
//! no I/O, and nothing from the rest of the crate, so that any layer may
//! import it without reaching upward.

pub mod client;
pub mod issuer;
pub mod network;
pub mod policy;
pub mod scope;
pub mod tls_subject;

use std::fmt;
use std::time::Duration;

/// The most bytes of one caller-supplied string (a client id, a path) that a
/// log line carries: enough to recognise any real value, and a bound on how
/// much log one request can write.
pub const LOG_EXCERPT_BYTES: usize = 128;

/// `s` cut to `LOG_EXCERPT_BYTES` at a character boundary, for logs. Log it
/// with `?` so that it is escaped as well as bounded.
pub fn log_excerpt(s: &str) -> &str {
    if s.len() <= LOG_EXCERPT_BYTES {
        return s;
    }
    let mut end = LOG_EXCERPT_BYTES;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Failure limits for client authentication; `None` turns a counter off.
#[derive(Debug, Clone)]
pub struct ThrottleSettings {
    pub client_failures: Option<u32>,
    pub address_failures: Option<u32>,
    pub window: Duration,
}

/// A setting whose value must not be printed (database URLs carry
/// passwords, the key-encryption key is a key).
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}
