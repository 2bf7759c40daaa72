//! Client authentication against the store (RFC 6749 §2.3.1), shared by
//! every endpoint that authenticates a client: token, introspection,
//! revocation.
//!
//! The order of checks is the policy:
//! 1. read the client (every request, so disabling or deleting a client, or
//!    replacing its secret, takes effect at once on every instance);
//! 2. a secret verified recently against a hash the client still has is
//!    accepted without argon2 — and without consulting the throttle, so an
//!    attacker who knows a client id cannot lock that client out;
//! 3. a caller over a failure limit is refused (429) before any argon2 work;
//! 4. otherwise argon2id decides; a failure is counted.
//!
//! Every refusal — unknown id, malformed id, disabled client, wrong secret —
//! costs one argon2 verification and answers the same `invalid_client`, so
//! that neither the answer nor its timing tells which ids exist.

use std::net::IpAddr;
use std::sync::Arc;

use super::OAuthError;
use super::client_auth::ClientCredentials;
use super::service::{internal, store_error};
use super::throttle::Throttle;
use crate::clients::{Client, validate_client_id};
use crate::crypto::{HasherError, SecretHasher, VerifiedSecrets};
use crate::metrics::{AuthFailure, Metrics};
use crate::store::Store;

pub struct ClientAuthenticator {
    store: Arc<dyn Store>,
    hasher: SecretHasher,
    verified: VerifiedSecrets,
    throttle: Throttle,
    metrics: Arc<Metrics>,
}

impl ClientAuthenticator {
    pub fn new(
        store: Arc<dyn Store>,
        hasher: SecretHasher,
        verified: VerifiedSecrets,
        throttle: Throttle,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            store,
            hasher,
            verified,
            throttle,
            metrics,
        }
    }

    pub fn hasher(&self) -> &SecretHasher {
        &self.hasher
    }

    /// The client these credentials prove, or why not. `address` is the
    /// caller's IP, for the per-address failure limit.
    pub async fn authenticate(
        &self,
        credentials: &ClientCredentials,
        address: Option<IpAddr>,
        now: i64,
    ) -> Result<Client, OAuthError> {
        let well_formed = validate_client_id(&credentials.client_id).is_ok();
        let client = if well_formed {
            self.store
                .get_client(&credentials.client_id)
                .await
                .map_err(store_error)?
        } else {
            None
        };
        // Failures are counted per id whether or not the client exists: a
        // limit that only real ids could reach would tell which ids are real.
        let counted_id = well_formed.then_some(credentials.client_id.as_str());

        let Some(client) = client.filter(|c| c.enabled) else {
            self.check_throttle(counted_id, address)?;
            // Unknown, malformed or disabled: verify the dummy hash all the
            // same, so the refusal takes as long as a wrong secret's.
            self.hasher
                .verify(credentials.secret.clone(), Vec::new())
                .await
                .map_err(hasher_error)?;
            return Err(self.refuse(AuthFailure::UnknownClient, counted_id, address, credentials));
        };

        // The warm path (SPEC §8): no throttle, no argon2.
        let fingerprint = self
            .verified
            .fingerprint(&client.client_id, &credentials.secret);
        let cached = self
            .verified
            .contains(&fingerprint, live_hashes(&client, now));
        self.metrics.credential_cache(cached);
        if cached {
            return Ok(client);
        }

        self.check_throttle(counted_id, address)?;
        let hashes: Vec<String> = live_hashes(&client, now).map(str::to_owned).collect();
        let matched = self
            .hasher
            .verify(credentials.secret.clone(), hashes.clone())
            .await
            .map_err(hasher_error)?;
        match matched {
            Some(i) => {
                self.verified.insert(fingerprint, &hashes[i]);
                Ok(client)
            }
            None => Err(self.refuse(AuthFailure::WrongSecret, counted_id, address, credentials)),
        }
    }

    fn check_throttle(
        &self,
        client_id: Option<&str>,
        address: Option<IpAddr>,
    ) -> Result<(), OAuthError> {
        self.throttle
            .check(client_id, address)
            .map_err(|retry_after| {
                self.metrics.auth_failed(AuthFailure::Throttled);
                tracing::info!(retry_after, "client authentication throttled");
                OAuthError::Throttled { retry_after }
            })
    }

    fn refuse(
        &self,
        reason: AuthFailure,
        client_id: Option<&str>,
        address: Option<IpAddr>,
        credentials: &ClientCredentials,
    ) -> OAuthError {
        self.throttle.record_failure(client_id, address);
        self.metrics.auth_failed(reason);
        tracing::info!(method = ?credentials.method, "client authentication failed");
        OAuthError::InvalidClient("client authentication failed")
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }
}

/// The hashes a presented secret may match now: the current one, and the
/// previous one while its overlap lasts.
fn live_hashes(client: &Client, now: i64) -> impl Iterator<Item = &str> {
    let previous = client
        .secrets
        .previous
        .as_ref()
        .filter(|p| now < p.expires_at);
    std::iter::once(client.secrets.current.as_str()).chain(previous.map(|p| p.hash.as_str()))
}

fn hasher_error(e: HasherError) -> OAuthError {
    match e {
        HasherError::Busy => {
            tracing::warn!("argon2 queue full; answering 503");
            OAuthError::TemporarilyUnavailable
        }
        HasherError::Failed(e) => internal(e),
    }
}
