//! The token service: authenticates a client against the store and issues
//! its access token. This is where the protocol meets the store and the keys.

use std::sync::Arc;

use super::OAuthError;
use super::client_auth::ClientCredentials;
use super::token::{AccessTokenClaims, Audience, TokenRequest, TokenResponse, decide_grant};
use crate::clients::{Client, validate_client_id};
use crate::crypto::{SecretHasher, random_token};
use crate::keys::KeyRing;
use crate::store::{Store, StoreError};

pub struct TokenService {
    store: Arc<dyn Store>,
    hasher: SecretHasher,
    keys: Arc<KeyRing>,
    /// The `iss` claim; also the audience of a client with no default.
    issuer: String,
    default_ttl: u32,
}

impl TokenService {
    pub fn new(
        store: Arc<dyn Store>,
        hasher: SecretHasher,
        keys: Arc<KeyRing>,
        issuer: String,
        default_ttl: u32,
    ) -> Self {
        Self {
            store,
            hasher,
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
        let access_token = self.keys.current().sign_jwt(&claims).map_err(internal)?;
        tracing::info!(scope = %scope, expires_in = grant.ttl, "issued an access token");
        Ok(TokenResponse {
            access_token,
            token_type: "Bearer",
            expires_in: grant.ttl,
            scope,
        })
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
        let client = client.filter(|c| c.enabled);
        let hashes = client
            .as_ref()
            .map(|c| live_hashes(c, now))
            .unwrap_or_default();
        let matched = self
            .hasher
            .verify(credentials.secret.clone(), hashes)
            .await
            .map_err(internal)?;
        match client {
            Some(client) if matched => Ok(client),
            _ => {
                tracing::info!(method = ?credentials.method, "client authentication failed");
                Err(OAuthError::InvalidClient("client authentication failed"))
            }
        }
    }
}

/// The hashes a presented secret may match now: the current one, and the
/// previous one while its overlap lasts.
fn live_hashes(client: &Client, now: i64) -> Vec<String> {
    let mut hashes = vec![client.secrets.current.clone()];
    if let Some(previous) = client
        .secrets
        .previous
        .as_ref()
        .filter(|p| now < p.expires_at)
    {
        hashes.push(previous.hash.clone());
    }
    hashes
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
