//! The one error type of the OAuth protocol layer.
//!
//! Each variant is an error code of RFC 6749 §5.2 (or of the RFC that adds it)
//! and carries only a description that is safe to show to the caller: never a
//! secret, never a token, never an internal error message. `http::response`
//! maps a variant to its status and headers in one place.

use std::borrow::Cow;

use crate::crypto::{CryptoError, HasherError};
use crate::fault::Fault;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
#[error("{}: {}", self.code(), self.description())]
pub enum OAuthError {
    /// `invalid_request` — RFC 6749 §5.2: "The request is missing a required
    /// parameter, includes an unsupported parameter value (other than grant
    /// type), repeats a parameter, includes multiple credentials, utilizes more
    /// than one mechanism for authenticating the client, or is otherwise
    /// malformed."
    InvalidRequest(Cow<'static, str>),
    /// `invalid_request` answered with 413: the body is larger than we read.
    BodyTooLarge,
    /// `invalid_request` answered with 408: the body did not arrive in time.
    BodyTimedOut,
    /// `invalid_client` — RFC 6749 §5.2: "Client authentication failed (e.g.,
    /// unknown client, no client authentication included, or unsupported
    /// authentication method)." The description never says which of those it
    /// was, so that the answer does not reveal whether a client exists.
    InvalidClient(&'static str),
    /// `unauthorized_client` — RFC 6749 §5.2: "The authenticated client is not
    /// authorized to use this authorization grant type."
    UnauthorizedClient,
    /// `unauthorized_client` for RFC 7009 §2.1: a client asked to revoke a
    /// token that was issued to another client.
    RevokeForeignToken,
    /// `unsupported_grant_type` — RFC 6749 §5.2: "The authorization grant type
    /// is not supported by the authorization server."
    UnsupportedGrantType,
    /// `invalid_scope` — RFC 6749 §5.2: "The requested scope is invalid,
    /// unknown, malformed, or exceeds the scope granted by the resource owner."
    InvalidScope(Cow<'static, str>),
    /// `invalid_target` — RFC 8707 §2: "The requested resource is invalid,
    /// missing, unknown, or malformed."
    InvalidTarget(Cow<'static, str>),
    /// `invalid_dpop_proof` — RFC 9449 §5: "the DPoP proof is invalid" (or
    /// missing, for a client that must send one).
    InvalidDpopProof(Cow<'static, str>),
    /// `use_dpop_nonce` — RFC 9449 §8: the proof must carry this server
    /// nonce, sent in the `DPoP-Nonce` header.
    UseDpopNonce { nonce: String },
    /// `temporarily_unavailable` answered with 429 and `Retry-After`: too many
    /// failed authentications from this client id or address (RFC 6749
    /// §2.3.1 requires protection against brute force).
    Throttled { retry_after: u64 },
    /// `temporarily_unavailable` answered with 429, `Retry-After` and the
    /// `RateLimit` headers: the client has had every token its quota allows
    /// in this window.
    QuotaExceeded(super::token::QuotaState),
    /// `temporarily_unavailable` (503 with `Retry-After`) or `server_error`
    /// (500): a fault on our side. The cause travels with it to the HTTP
    /// edge, which logs it; it is never sent.
    Fault(#[source] Fault),
}

impl From<Fault> for OAuthError {
    fn from(e: Fault) -> Self {
        Self::Fault(e)
    }
}

impl From<StoreError> for OAuthError {
    fn from(e: StoreError) -> Self {
        Self::Fault(e.into())
    }
}

impl From<HasherError> for OAuthError {
    fn from(e: HasherError) -> Self {
        Self::Fault(e.into())
    }
}

impl From<CryptoError> for OAuthError {
    fn from(e: CryptoError) -> Self {
        Self::Fault(e.into())
    }
}

impl OAuthError {
    pub fn invalid_request(description: impl Into<Cow<'static, str>>) -> Self {
        Self::InvalidRequest(description.into())
    }

    /// The `error` code of the JSON body.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidRequest(_) | Self::BodyTooLarge | Self::BodyTimedOut => "invalid_request",
            Self::InvalidClient(_) => "invalid_client",
            Self::UnauthorizedClient | Self::RevokeForeignToken => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::InvalidScope(_) => "invalid_scope",
            Self::InvalidTarget(_) => "invalid_target",
            Self::InvalidDpopProof(_) => "invalid_dpop_proof",
            Self::UseDpopNonce { .. } => "use_dpop_nonce",
            Self::Throttled { .. } | Self::QuotaExceeded(_) => "temporarily_unavailable",
            Self::Fault(fault) => fault.code(),
        }
    }

    /// The human-readable `error_description`.
    pub fn description(&self) -> &str {
        match self {
            Self::InvalidRequest(d)
            | Self::InvalidScope(d)
            | Self::InvalidTarget(d)
            | Self::InvalidDpopProof(d) => d,
            Self::UseDpopNonce { .. } => "the DPoP proof must carry the nonce in DPoP-Nonce",
            Self::BodyTooLarge => "the request body is too large",
            Self::BodyTimedOut => "the request body did not arrive in time",
            Self::InvalidClient(d) => d,
            Self::UnauthorizedClient => "this client may not use the client_credentials grant",
            Self::RevokeForeignToken => "the token was not issued to this client",
            Self::UnsupportedGrantType => "only the client_credentials grant is supported",
            Self::Throttled { .. } => {
                "too many failed authentication attempts; retry after the time in Retry-After"
            }
            Self::QuotaExceeded(_) => {
                "this client has had every token its quota allows in this window; retry after the time in Retry-After"
            }
            Self::Fault(fault) => fault.description(),
        }
    }
}
