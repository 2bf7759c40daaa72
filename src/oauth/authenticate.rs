//! Client authentication against the store (RFC 6749 §2.3.1), shared by
//! every endpoint that authenticates a client: token, introspection,
//! revocation.
//!
//! The order of checks is the policy:
//! 1. a secret verified recently against a hash the client's row still has
//!    is accepted without argon2 — and without consulting the throttle, so
//!    an attacker who knows a client id cannot lock that client out. The row
//!    may come from memory (`ClientRows::cached`: until a change to it is
//!    heard — milliseconds for changes made elsewhere, at once for this
//!    instance's own writes);
//! 2. otherwise the row is read fresh — a secret rotated a moment ago works;
//! 3. a caller over a failure limit is refused (429) before any argon2 work;
//! 4. argon2id decides; a failure is counted.
//!
//! Every refusal — unknown id, malformed id, disabled client, wrong secret —
//! costs one argon2 verification and answers the same `invalid_client`, so
//! that neither the answer nor its timing tells which ids exist.

use std::net::IpAddr;
use std::sync::Arc;

use super::OAuthError;
use super::assertion::AssertionAuthenticator;
use super::client_auth::{ClientCredentials, Credentials, PresentedCertificate};
use super::client_rows::ClientRows;
use super::throttle::Throttle;
use crate::crypto::{ClientSecret, HashCost, SecretHasher, VerifiedSecrets};
use crate::domain::client::{Client, MAX_CLIENT_ID_LEN, SecretOrigin, validate_client_id};
use crate::metrics::{AuthFailure, Metrics};
use crate::store::{StoreError, UsedAssertion};

pub struct ClientAuthenticator {
    clients: Arc<dyn ClientRows>,
    assertions: AssertionAuthenticator,
    hasher: SecretHasher,
    verified: VerifiedSecrets,
    throttle: Throttle,
    metrics: Arc<Metrics>,
}

impl ClientAuthenticator {
    pub fn new(
        clients: Arc<dyn ClientRows>,
        assertions: AssertionAuthenticator,
        hasher: SecretHasher,
        verified: VerifiedSecrets,
        throttle: Throttle,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            clients,
            assertions,
            hasher,
            verified,
            throttle,
            metrics,
        }
    }

    /// The client's row as the store holds it now.
    pub async fn fresh_client(&self, client_id: &str) -> Result<Option<Client>, StoreError> {
        self.clients.fresh(client_id).await
    }

    pub fn hasher(&self) -> &SecretHasher {
        &self.hasher
    }

    /// The client these credentials prove, or why not. `address` is the
    /// caller's IP, for the per-address failure limit of secrets.
    ///
    /// An assertion is not throttled: it costs one signature check, not
    /// argon2, and cannot be guessed, so there is nothing to slow down —
    /// and no failure count an attacker could run up against a client.
    ///
    /// A certificate is not throttled either: the TLS handshake proved the
    /// caller holds its key, so a refusal only means it is not the
    /// registered one.
    pub async fn authenticate(
        &self,
        credentials: &Credentials,
        certificate: Option<&PresentedCertificate>,
        address: Option<IpAddr>,
        now: i64,
    ) -> Result<Client, OAuthError> {
        match credentials {
            Credentials::Secret(secret) => self.authenticate_secret(secret, address, now).await,
            Credentials::Assertion(assertion) => self.assertions.authenticate(assertion, now).await,
            Credentials::Certificate { client_id } => {
                self.assertions
                    .authenticate_certificate(client_id, certificate, now)
                    .await
            }
        }
    }

    /// Spends a one-time id (a nonce-mode DPoP proof's) in the store every
    /// instance shares: `true` the first time.
    pub async fn spend_once(&self, used: UsedAssertion) -> Result<bool, StoreError> {
        self.assertions.spend_once(used).await
    }

    async fn authenticate_secret(
        &self,
        credentials: &ClientCredentials,
        address: Option<IpAddr>,
        now: i64,
    ) -> Result<Client, OAuthError> {
        // An id no client can have (over the length limit) is refused before
        // any work: it reveals nothing, and it is not worth a wait or a log
        // line of its size.
        if credentials.client_id.len() > MAX_CLIENT_ID_LEN {
            self.metrics.auth_failed(AuthFailure::UnknownClient);
            return Err(OAuthError::InvalidClient("client authentication failed"));
        }
        let well_formed = validate_client_id(&credentials.client_id).is_ok();
        // Failures are counted per id whether or not the client exists: a
        // limit that only real ids could reach would tell which ids are real.
        let counted_id = well_formed.then_some(credentials.client_id.as_str());
        if !well_formed {
            return self.refuse_unknown(credentials, counted_id, address).await;
        }

        // The warm path (ARCHITECTURE.md, "Invariants"): a secret verified recently against a hash
        // the client's row still has. The row comes from memory when it is
        // cached; then no database, no throttle, no argon2.
        let fingerprint = self
            .verified
            .fingerprint(&credentials.client_id, &credentials.secret);
        let warm = |client: &Client| {
            client.enabled
                && client.secrets.is_some()
                && self
                    .verified
                    .contains(&fingerprint, live_hashes(client, now))
        };
        if let Some(client) = self
            .clients
            .cached(&credentials.client_id)
            .filter(|c| warm(c))
        {
            self.metrics.credential_cache(true);
            return Ok(client);
        }

        // Everything else is decided on one fresh read: argon2 costs far more
        // than the read, and a secret rotated a moment ago elsewhere must
        // work. A warm client whose cached row had expired is still warm.
        let fresh = self.clients.fresh(&credentials.client_id).await?;
        // A client without a secret is refused like an unknown one, in the
        // same time: the answer does not tell how a client authenticates.
        let Some(client) = fresh.filter(|c| c.enabled && c.secrets.is_some()) else {
            return self.refuse_unknown(credentials, counted_id, address).await;
        };
        let hit = warm(&client);
        self.metrics.credential_cache(hit);
        if hit {
            return Ok(client);
        }
        self.check_throttle(counted_id, address)?;
        let hashes: Vec<String> = live_hashes(&client, now).map(str::to_owned).collect();
        let admission = self.throttle.admit(counted_id, address);
        let matched = self
            .hasher
            .verify(credentials.secret.clone(), hashes.clone(), admission.lane)
            .await;
        drop(admission);
        let matched = matched?;
        match matched {
            Some(i) => {
                self.verified.insert(fingerprint, &hashes[i]);
                if i == 0 {
                    self.remake_hash_if_due(&client, &credentials.secret);
                }
                Ok(client)
            }
            None => Err(self.refuse(AuthFailure::WrongSecret, counted_id, address, credentials)),
        }
    }

    /// After a successful verification of the current secret: when its hash
    /// is not made the way its origin calls for (a hash stored before
    /// origins were recorded, or under older parameters), make it again, in
    /// the background, and write it back over the revision it was read at.
    /// A write that lost a race is dropped: the next verification retries.
    fn remake_hash_if_due(&self, client: &Client, secret: &ClientSecret) {
        let Some(secrets) = &client.secrets else {
            return;
        };
        let origin = secrets.origin.unwrap_or(if secret.looks_generated() {
            SecretOrigin::Generated
        } else {
            SecretOrigin::Imported
        });
        let cost = HashCost::for_origin(origin);
        if secrets.origin == Some(origin) && HashCost::of(&secrets.current) == Some(cost) {
            return;
        }
        let (hasher, clients) = (self.hasher.clone(), self.clients.clone());
        let (mut client, secret) = (client.clone(), secret.clone());
        tokio::spawn(async move {
            let Ok(hash) = hasher.hash(secret, cost).await else {
                return;
            };
            if let Some(secrets) = client.secrets.as_mut() {
                secrets.current = hash;
                secrets.origin = Some(origin);
            }
            match clients.write_back(&client).await {
                Ok(true) => tracing::info!(
                    client_id = %client.client_id,
                    origin = origin.as_str(),
                    "re-made the secret's hash for its origin"
                ),
                Ok(false) => {}
                Err(e) => tracing::debug!(error = %e, "could not re-make a secret's hash"),
            }
        });
    }

    /// Unknown, malformed or disabled: refused in the time a wrong secret
    /// takes, so that timing does not tell which ids exist — but by waiting,
    /// not hashing, so that made-up ids cost no CPU and no place in the
    /// argon2 queue.
    async fn refuse_unknown(
        &self,
        credentials: &ClientCredentials,
        counted_id: Option<&str>,
        address: Option<IpAddr>,
    ) -> Result<Client, OAuthError> {
        self.check_throttle(counted_id, address)?;
        self.hasher.refuse_without_work().await;
        Err(self.refuse(AuthFailure::UnknownClient, counted_id, address, credentials))
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
    let secrets = client.secrets.as_ref();
    let previous = secrets
        .and_then(|s| s.previous.as_ref())
        .filter(|p| now < p.expires_at);
    secrets
        .map(|s| s.current.as_str())
        .into_iter()
        .chain(previous.map(|p| p.hash.as_str()))
}
