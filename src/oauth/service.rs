//! The token service: issues access tokens and answers introspection and
//! revocation. This is where the protocol meets the store and the keys;
//! every endpoint authenticates its caller through the one
//! `ClientAuthenticator`.

use std::net::IpAddr;
use std::sync::Arc;

use super::OAuthError;
use super::authenticate::ClientAuthenticator;
use super::dpop::{DpopProof, DpopVerifier};
use super::introspection::{IntrospectionResponse, TokenRequestByCaller, VerifiedClaims};
use super::token::{
    AccessTokenClaims, Audience, Confirmation, QuotaState, TokenRequest, TokenResponse,
    certificate_binding, decide_grant,
};
use crate::clock::wait_until;
use crate::crypto::random_token;
use crate::domain::log_excerpt;
use crate::domain::policy::{CustomClaims, TokenQuota};
use crate::keys::KeyRing;
use crate::store::{SharedCounts, Store, UsedAssertion, Window};

pub struct TokenService {
    store: Arc<dyn Store>,
    auth: ClientAuthenticator,
    dpop: DpopVerifier,
    keys: Arc<KeyRing>,
    /// The `iss` claim; also the audience of a client with no default.
    issuer: String,
    default_ttl: u32,
    /// Issued tokens per client and window, for quotas, shared with every
    /// instance on the database.
    counts: Arc<SharedCounts>,
}

impl TokenService {
    pub fn new(
        store: Arc<dyn Store>,
        auth: ClientAuthenticator,
        dpop: DpopVerifier,
        keys: Arc<KeyRing>,
        issuer: String,
        default_ttl: u32,
        counts: Arc<SharedCounts>,
    ) -> Self {
        Self {
            store,
            auth,
            dpop,
            keys,
            issuer,
            default_ttl,
            counts,
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
        // The proof is checked before the client (it needs none), and spent
        // only once the client is known (`oauth::dpop`).
        let dpop_headers: Vec<&[u8]> = request.dpop.iter().map(Vec::as_slice).collect();
        let proof = self.dpop.check(&dpop_headers, now)?;
        let client = self
            .auth
            .authenticate(
                &request.credentials,
                request.certificate.as_ref(),
                address,
                now,
            )
            .await?;
        // RFC 9449 §5.2: "the authorization server MUST reject token requests
        // from this client that do not contain the DPoP header".
        if client.dpop_bound_access_tokens && proof.is_none() {
            return Err(OAuthError::InvalidDpopProof(
                "this client's tokens are DPoP-bound: send a DPoP proof".into(),
            ));
        }
        let x5t_s256 = certificate_binding(&client, request.certificate.as_ref(), now)?;
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
        if let Some(proof) = &proof {
            self.spend_proof(proof, now).await?;
        }
        // Last, so that only a token about to be issued counts.
        let quota = match client.token_quota {
            Some(quota) => Some(self.take_quota(&client.client_id, quota, now).await?),
            None => None,
        };
        let cnf = Confirmation {
            jkt: proof.as_ref().map(|p| p.jkt.clone()),
            x5t_s256,
        };
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
            cnf: &cnf,
            extra: client.claims.as_ref().map(CustomClaims::as_map),
        };
        let access_token = tracing::debug_span!("sign", otel.name = "sign access token")
            .in_scope(|| self.keys.signer().sign_jwt(&claims))?;
        self.auth.metrics().token_issued();
        // Debug, not info: the request line already records the outcome, and
        // a second line per token costs measurable throughput (bench/).
        tracing::debug!(scope = %scope, expires_in = grant.ttl, "issued an access token");
        Ok(TokenResponse {
            access_token,
            token_type: cnf.token_type(),
            expires_in: grant.ttl,
            scope,
            dpop_nonce: proof.and_then(|_| self.dpop.current_nonce(now)),
            quota,
        })
    }

    /// Takes one token of the client's quota in the current window, or
    /// refuses with what is left (nothing) and when the window ends.
    async fn take_quota(
        &self,
        client_id: &str,
        quota: TokenQuota,
        now: i64,
    ) -> Result<QuotaState, OAuthError> {
        let window = Window::at(now, quota.period.seconds());
        let limit = i64::from(quota.tokens);
        let taken = self
            .counts
            .take(&format!("quota:{client_id}"), window, limit)
            .await;
        let state = |count: i64| QuotaState {
            quota,
            remaining: u64::try_from(limit - count).unwrap_or(0),
            reset: window.seconds_left(now),
        };
        match taken {
            Ok(count) => Ok(state(count)),
            Err(count) => {
                tracing::info!(quota = %quota, "token quota used up");
                Err(OAuthError::QuotaExceeded(state(count)))
            }
        }
    }

    /// RFC 9449 §11.1: a proof is accepted once. Always on this instance;
    /// with server nonces on, also in the store all instances share, so
    /// that a proof cannot be replayed on another one.
    async fn spend_proof(&self, proof: &DpopProof, now: i64) -> Result<(), OAuthError> {
        self.dpop.spend(proof, now)?;
        if self.dpop.requires_nonce() {
            let first = self
                .auth
                .spend_once(UsedAssertion {
                    // One ledger for every client's proofs (no client has
                    // the empty id): a proof is spent, whoever presents it.
                    client_id: String::new(),
                    jti: proof.ledger_id(),
                    expires_at: proof.remember_until(),
                })
                .await?;
            if !first {
                return Err(OAuthError::InvalidDpopProof(
                    "this proof has been used already".into(),
                ));
            }
        }
        Ok(())
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
            .authenticate(
                &request.credentials,
                request.certificate.as_ref(),
                address,
                now,
            )
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
            .authenticate(
                &request.credentials,
                request.certificate.as_ref(),
                address,
                now,
            )
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
