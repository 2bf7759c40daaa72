//! The token service: issues access tokens and answers introspection and
//! revocation. This is where the protocol meets the store and the keys;
//! every endpoint authenticates its caller through the one
//! `ClientAuthenticator`.

use std::net::IpAddr;
use std::sync::Arc;

use super::OAuthError;
use super::authenticate::ClientAuthenticator;
use super::introspection::{IntrospectionResponse, TokenRequestByCaller, VerifiedClaims};
use super::token::{AccessTokenClaims, Audience, TokenRequest, TokenResponse, decide_grant};
use crate::clock::wait_until;
use crate::crypto::random_token;
use crate::domain::log_excerpt;
use crate::keys::KeyRing;
use crate::store::Store;

pub struct TokenService {
    store: Arc<dyn Store>,
    auth: ClientAuthenticator,
    keys: Arc<KeyRing>,
    /// The `iss` claim; also the audience of a client with no default.
    issuer: String,
    default_ttl: u32,
}

impl TokenService {
    pub fn new(
        store: Arc<dyn Store>,
        auth: ClientAuthenticator,
        keys: Arc<KeyRing>,
        issuer: String,
        default_ttl: u32,
    ) -> Self {
        Self {
            store,
            auth,
            keys,
            issuer,
            default_ttl,
        }
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn authenticator(&self) -> &ClientAuthenticator {
        &self.auth
    }

    /// `POST /token` for the client credentials grant (RFC 6749 §4.4.2-3).
    // The client id is caller input: `?` escapes it, so it cannot forge log lines.
    // An assertion's client is known only once it is read: the field is
    // then filled in by the assertion check (`oauth::assertion`).
    #[tracing::instrument(skip_all, fields(client_id = tracing::field::Empty))]
    pub async fn issue(
        &self,
        request: TokenRequest,
        address: Option<IpAddr>,
        now: i64,
    ) -> Result<TokenResponse, OAuthError> {
        let claimed = request.credentials.claimed_id();
        if !claimed.is_empty() {
            tracing::Span::current()
                .record("client_id", tracing::field::debug(log_excerpt(claimed)));
        }
        let client = self
            .auth
            .authenticate(&request.credentials, address, now)
            .await?;
        // Within the second its tokens were revoked (or it was made), a
        // client's new token waits for the next second: `iat` is whole
        // seconds, and a token stamped with that second would be inactive.
        let now = if client.tokens_valid_after > now {
            wait_until(client.tokens_valid_after).await;
            client.tokens_valid_after
        } else {
            now
        };
        let grant = decide_grant(
            &client,
            request.scope.as_ref(),
            &request.audiences,
            self.default_ttl,
            &self.issuer,
        )?;
        let jti = random_token::<16>()?;
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
        let access_token = tracing::debug_span!("sign", otel.name = "sign access token")
            .in_scope(|| self.keys.signer().sign_jwt(&claims))?;
        self.auth.metrics().token_issued();
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
        address: Option<IpAddr>,
        now: i64,
    ) -> Result<IntrospectionResponse, OAuthError> {
        self.auth
            .authenticate(&request.credentials, address, now)
            .await?;
        Ok(match self.active_claims(&request.token, now).await? {
            Some(claims) => IntrospectionResponse::active(claims),
            None => IntrospectionResponse::inactive(),
        })
    }

    /// The claims of `token` if it is active: one of ours, signed by a
    /// published key, within its lifetime, not revoked, and its client still
    /// exists and is enabled. What introspection answers and what the admin
    /// API accepts.
    pub async fn active_claims(
        &self,
        token: &str,
        now: i64,
    ) -> Result<Option<VerifiedClaims>, OAuthError> {
        let Some(claims) = self.live_claims(token, now) else {
            return Ok(None);
        };
        if self.store.is_token_revoked(&claims.jti).await? {
            return Ok(None);
        }
        // Fresh, not from the warm path's row cache: a revocation, a
        // disabling or a narrowed scope made a moment ago elsewhere counts.
        let client = self.auth.fresh_client(&claims.client_id).await?;
        Ok(client
            .is_some_and(|c| claims.is_granted_by(&c))
            .then_some(claims))
    }

    /// `POST /revoke` (RFC 7009). The caller may revoke only its own tokens;
    /// a token that is invalid, foreign to this server or already expired is
    /// answered with success, as §2.2 asks ("invalid tokens do not cause an
    /// error response").
    pub async fn revoke(
        &self,
        request: TokenRequestByCaller,
        address: Option<IpAddr>,
        now: i64,
    ) -> Result<(), OAuthError> {
        let caller = self
            .auth
            .authenticate(&request.credentials, address, now)
            .await?;
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
            .await?;
        tracing::info!(jti = %claims.jti, "revoked an access token");
        Ok(())
    }

    fn live_claims(&self, token: &str, now: i64) -> Option<VerifiedClaims> {
        self.keys
            .verify::<VerifiedClaims>(token, &self.issuer)
            .filter(|claims| claims.is_current(now))
    }
}
