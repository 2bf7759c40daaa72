//! The token service: authenticates clients against the store, issues access
//! tokens, and answers introspection and revocation. This is where the
//! protocol meets the store and the keys; every endpoint authenticates its
//! caller through the one `authenticate`.

use std::sync::Arc;

use super::OAuthError;
use super::client_auth::ClientCredentials;
use super::introspection::{IntrospectionResponse, TokenRequestByCaller, VerifiedClaims};
use super::token::{AccessTokenClaims, Audience, TokenRequest, TokenResponse, decide_grant};
use crate::clients::{Client, validate_client_id};
use crate::crypto::{HasherError, SecretHasher, VerifiedSecrets, random_token};
use crate::keys::KeyRing;
use crate::store::{Store, StoreError};

pub struct TokenService {
    store: Arc<dyn Store>,
    hasher: SecretHasher,
    verified: VerifiedSecrets,
    keys: Arc<KeyRing>,
    /// The `iss` claim; also the audience of a client with no default.
    issuer: String,
    default_ttl: u32,
}

impl TokenService {
    pub fn new(
        store: Arc<dyn Store>,
        hasher: SecretHasher,
        verified: VerifiedSecrets,
        keys: Arc<KeyRing>,
        issuer: String,
        default_ttl: u32,
    ) -> Self {
        Self {
            store,
            hasher,
            verified,
            keys,
            issuer,
            default_ttl,
        }
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// `POST /token` for the client credentials grant (RFC 6749 §4.4.2-3).
    // The client id is caller input: `?` escapes it, so it cannot forge log lines.
    #[tracing::instrument(skip_all, fields(client_id = ?request.credentials.client_id))]
    pub async fn issue(
        &self,
        request: TokenRequest,
        now: i64,
    ) -> Result<TokenResponse, OAuthError> {
        let client = self.authenticate(&request.credentials, now).await?;
        let grant = decide_grant(
            &client,
            request.scope.as_ref(),
            &request.audiences,
            self.default_ttl,
            &self.issuer,
        )?;
        let jti = random_token::<16>().map_err(internal)?;
        let scope = grant.scope.to_string();
        let claims = AccessTokenClaims {
            iss: &self.issuer,
            sub: &client.client_id,
            client_id: &client.client_id,
            aud: Audience::of(&grant.audiences),
            iat: now,
            nbf: now,
            exp: now + i64::from(grant.ttl),
            jti: &jti,
            scope: &scope,
        };
        let access_token = self.keys.signer().sign_jwt(&claims).map_err(internal)?;
        // Debug, not info: the request line already records the outcome, and
        // a second line per token costs measurable throughput (bench/).
        tracing::debug!(scope = %scope, expires_in = grant.ttl, "issued an access token");
        Ok(TokenResponse {
            access_token,
            token_type: "Bearer",
            expires_in: grant.ttl,
            scope,
        })
    }

    /// `POST /introspect` (RFC 7662). Any authenticated client may ask
    /// (resource servers introspect tokens issued to others); the answer is
    /// `active: false` for anything that is not a live token of ours whose
    /// client still exists and is enabled.
    pub async fn introspect(
        &self,
        request: TokenRequestByCaller,
        now: i64,
    ) -> Result<IntrospectionResponse, OAuthError> {
        self.authenticate(&request.credentials, now).await?;
        let Some(claims) = self.live_claims(&request.token, now) else {
            return Ok(IntrospectionResponse::inactive());
        };
        if self
            .store
            .is_token_revoked(&claims.jti)
            .await
            .map_err(store_error)?
        {
            return Ok(IntrospectionResponse::inactive());
        }
        let client = self
            .store
            .get_client(&claims.client_id)
            .await
            .map_err(store_error)?;
        if !client.is_some_and(|c| c.enabled) {
            return Ok(IntrospectionResponse::inactive());
        }
        Ok(IntrospectionResponse::active(claims))
    }

    /// `POST /revoke` (RFC 7009). The caller may revoke only its own tokens;
    /// a token that is invalid, foreign to this server or already expired is
    /// answered with success, as §2.2 asks ("invalid tokens do not cause an
    /// error response").
    pub async fn revoke(&self, request: TokenRequestByCaller, now: i64) -> Result<(), OAuthError> {
        let caller = self.authenticate(&request.credentials, now).await?;
        let Some(claims) = self.live_claims(&request.token, now) else {
            return Ok(());
        };
        // §2.1: the server "verifies whether the token was issued to the
        // client making the revocation request. If this validation fails, the
        // request is refused".
        if claims.client_id != caller.client_id {
            return Err(OAuthError::RevokeForeignToken);
        }
        self.store
            .revoke_token(&claims.jti, &claims.client_id, claims.exp)
            .await
            .map_err(store_error)?;
        tracing::info!(jti = %claims.jti, "revoked an access token");
        Ok(())
    }

    fn live_claims(&self, token: &str, now: i64) -> Option<VerifiedClaims> {
        self.keys
            .verify::<VerifiedClaims>(token, &self.issuer)
            .filter(|claims| claims.is_current(now))
    }

    /// Authenticates a client by id and secret (RFC 6749 §2.3.1).
    ///
    /// Every refusal — unknown id, malformed id, disabled client, wrong secret
    /// — costs one argon2 verification and answers the same `invalid_client`,
    /// so that neither the answer nor its timing tells which ids exist.
    pub async fn authenticate(
        &self,
        credentials: &ClientCredentials,
        now: i64,
    ) -> Result<Client, OAuthError> {
        let client = if validate_client_id(&credentials.client_id).is_ok() {
            self.store
                .get_client(&credentials.client_id)
                .await
                .map_err(store_error)?
        } else {
            None
        };
        let Some(client) = client.filter(|c| c.enabled) else {
            // Unknown, malformed or disabled: verify the dummy hash all the
            // same, so the refusal takes as long as a wrong secret's.
            self.hasher
                .verify(credentials.secret.clone(), Vec::new())
                .await
                .map_err(hasher_error)?;
            return Err(authentication_failed(credentials));
        };
        // The warm path: this exact secret was verified recently against a
        // hash the client still has (SPEC §8). No argon2.
        let fingerprint = self
            .verified
            .fingerprint(&client.client_id, &credentials.secret);
        if self
            .verified
            .contains(&fingerprint, live_hashes(&client, now))
        {
            return Ok(client);
        }
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
            None => Err(authentication_failed(credentials)),
        }
    }
}

fn authentication_failed(credentials: &ClientCredentials) -> OAuthError {
    tracing::info!(method = ?credentials.method, "client authentication failed");
    OAuthError::InvalidClient("client authentication failed")
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

pub(crate) fn store_error(e: StoreError) -> OAuthError {
    match e {
        StoreError::Unavailable(cause) => {
            tracing::warn!(%cause, "database unavailable");
            OAuthError::TemporarilyUnavailable
        }
        other => internal(other),
    }
}

pub(crate) fn internal(e: impl std::fmt::Display) -> OAuthError {
    tracing::error!(error = %e, "internal error");
    OAuthError::ServerError
}
