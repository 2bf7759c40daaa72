//! Every response the HTTP layer builds itself: OAuth errors (RFC 6749 §5.2)
//! and token responses (§5.1) with their cache headers, and the generic 404,
//! 405 and 500 answers.

use std::any::Any;

use axum::Json;
use axum::http::header::{ALLOW, CACHE_CONTROL, PRAGMA, RETRY_AFTER, WWW_AUTHENTICATE};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::fault::{Fault, chain};
use crate::oauth::OAuthError;
use crate::oauth::token::{QuotaState, TokenResponse};

/// RFC 6749 §5.1 (and §5.2 by reference): "The authorization server MUST
/// include the HTTP "Cache-Control" response header field with a value of
/// "no-store" in any response containing tokens, credentials, or other
/// sensitive information, as well as the "Pragma" response header field with
/// a value of "no-cache"."
pub const NO_STORE: [(HeaderName, HeaderValue); 2] = [
    (CACHE_CONTROL, HeaderValue::from_static("no-store")),
    (PRAGMA, HeaderValue::from_static("no-cache")),
];

/// Seconds a client should wait before retrying after a 503.
const RETRY_AFTER_SECS: &str = "5";

/// RFC 9449 §8.1: where the server hands out its DPoP nonce.
pub const DPOP_NONCE: HeaderName = HeaderName::from_static("dpop-nonce");

impl IntoResponse for TokenResponse {
    fn into_response(mut self) -> Response {
        let nonce = self.dpop_nonce.take();
        let self_quota = self.quota.take();
        let mut response = (NO_STORE, Json(self)).into_response();
        // §8.2: a fresh nonce with the success, so the next proof needs no
        // extra round trip.
        if let Some(value) = nonce.and_then(|n| HeaderValue::from_str(&n).ok()) {
            response.headers_mut().insert(DPOP_NONCE, value);
        }
        if let Some(quota) = self_quota {
            insert_rate_limit(response.headers_mut(), &quota);
        }
        response
    }
}

/// The JSON body of every OAuth error (RFC 6749 §5.2).
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody<'a> {
    /// An RFC 6749 §5.2 error code (or `invalid_target`, `temporarily_unavailable`, `server_error`, `not_found`).
    #[schema(value_type = String)]
    pub error: &'a str,
    #[schema(value_type = String)]
    pub error_description: &'a str,
}

/// The one place a fault on our side becomes an answer, for every endpoint
/// (OAuth and admin alike): 503 with `Retry-After` when a retry may work,
/// 500 otherwise. The cause chain is logged here, once, and never sent.
impl IntoResponse for Fault {
    fn into_response(self) -> Response {
        let cause = chain(&self);
        let status = if self.is_unavailable() {
            tracing::warn!(%cause, "answering 503");
            StatusCode::SERVICE_UNAVAILABLE
        } else {
            tracing::error!(%cause, "answering 500");
            StatusCode::INTERNAL_SERVER_ERROR
        };
        let body = ErrorBody {
            error: self.code(),
            error_description: self.description(),
        };
        let mut response = (status, NO_STORE, Json(body)).into_response();
        if self.is_unavailable() {
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_SECS));
        }
        response
    }
}

/// What the endpoints that authenticate a client (token, introspection,
/// revocation) may answer besides success, for their OpenAPI description
/// (never constructed: `OAuthError` builds the answers).
#[allow(dead_code)]
#[derive(utoipa::IntoResponses)]
pub enum OAuthFailures {
    #[response(status = 400, description = "Invalid request")]
    Invalid(ErrorBody<'static>),
    #[response(status = 401, description = "Authentication missing or failed")]
    Unauthorized(ErrorBody<'static>),
    #[response(status = 413, description = "The request body is too large")]
    TooLarge(ErrorBody<'static>),
    #[response(
        status = 429,
        description = "Too many failed authentications, or the client's token quota is used up; see Retry-After (and RateLimit)"
    )]
    Throttled(ErrorBody<'static>),
    #[response(status = 503, description = "Temporarily unavailable; see Retry-After")]
    Unavailable(ErrorBody<'static>),
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let status = match self {
            Self::Fault(fault) => return fault.into_response(),
            Self::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::BodyTimedOut => StatusCode::REQUEST_TIMEOUT,
            Self::InvalidClient(_) => StatusCode::UNAUTHORIZED,
            Self::Throttled { .. } | Self::QuotaExceeded(_) => StatusCode::TOO_MANY_REQUESTS,
            _ => StatusCode::BAD_REQUEST,
        };
        let body = ErrorBody {
            error: self.code(),
            error_description: self.description(),
        };
        let mut response = (status, NO_STORE, Json(body)).into_response();
        let headers = response.headers_mut();
        match self {
            // RFC 6749 §5.2 requires the challenge when the client used the
            // Authorization header; RFC 9110 §15.5.2 requires one on every
            // 401, so it is always sent.
            Self::InvalidClient(_) => {
                headers.insert(
                    WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"tokenmint\""),
                );
            }
            Self::UseDpopNonce { nonce } => {
                if let Ok(value) = HeaderValue::from_str(&nonce) {
                    headers.insert(DPOP_NONCE, value);
                }
            }
            Self::Throttled { retry_after } => {
                headers.insert(RETRY_AFTER, HeaderValue::from(retry_after));
            }
            Self::QuotaExceeded(quota) => {
                headers.insert(RETRY_AFTER, HeaderValue::from(quota.reset));
                insert_rate_limit(headers, &quota);
            }
            _ => {}
        }
        response
    }
}

/// The IETF httpapi `RateLimit-Policy` and `RateLimit` fields
/// (draft-ietf-httpapi-ratelimit-headers): the quota (`q` tokens per `w`
/// seconds) and what is left of it (`r`) until the window ends (`t`).
fn insert_rate_limit(headers: &mut axum::http::HeaderMap, state: &QuotaState) {
    let policy = format!(
        "\"tokens\";q={};w={}",
        state.quota.tokens,
        state.quota.period.seconds()
    );
    let now = format!("\"tokens\";r={};t={}", state.remaining, state.reset);
    for (name, value) in [(RATELIMIT_POLICY, policy), (RATELIMIT, now)] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
}

pub const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
pub const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");

/// 405 for the POST-only endpoints (RFC 9110 §15.5.6: with `Allow`).
pub async fn method_not_allowed_post() -> Response {
    let body = Json(ErrorBody {
        error: "invalid_request",
        error_description: "this endpoint accepts only POST",
    });
    (
        StatusCode::METHOD_NOT_ALLOWED,
        [(ALLOW, HeaderValue::from_static("POST"))],
        NO_STORE,
        body,
    )
        .into_response()
}

pub async fn not_found() -> Response {
    let body = Json(ErrorBody {
        error: "not_found",
        error_description: "no such endpoint",
    });
    (StatusCode::NOT_FOUND, NO_STORE, body).into_response()
}

/// 405 for a method a route does not serve, in the usual JSON (axum adds
/// the `Allow` header).
pub async fn method_not_allowed() -> Response {
    let body = Json(ErrorBody {
        error: "invalid_request",
        error_description: "this endpoint does not accept this method",
    });
    (StatusCode::METHOD_NOT_ALLOWED, NO_STORE, body).into_response()
}

/// A panic is a bug: answer a generic 500 and log it once, without its
/// payload (which could hold request data).
pub fn panic_response(_payload: Box<dyn Any + Send + 'static>) -> Response {
    Fault::internal("a request handler panicked").into_response()
}
