//! Every response the HTTP layer builds itself: OAuth errors (RFC 6749 §5.2)
//! and token responses (§5.1) with their cache headers, and the generic 404,
//! 405 and 500 answers.

use std::any::Any;

use axum::Json;
use axum::http::header::{ALLOW, CACHE_CONTROL, PRAGMA, RETRY_AFTER, WWW_AUTHENTICATE};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::oauth::OAuthError;
use crate::oauth::token::TokenResponse;

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

impl IntoResponse for TokenResponse {
    fn into_response(self) -> Response {
        (NO_STORE, Json(self)).into_response()
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

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let status = match &self {
            Self::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::InvalidClient(_) => StatusCode::UNAUTHORIZED,
            Self::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::Throttled { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
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
            Self::TemporarilyUnavailable => {
                headers.insert(RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_SECS));
            }
            Self::Throttled { retry_after } => {
                headers.insert(RETRY_AFTER, HeaderValue::from(retry_after));
            }
            _ => {}
        }
        response
    }
}

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
    (StatusCode::NOT_FOUND, body).into_response()
}

/// A panic is a bug: answer a generic 500 and log it once, without its
/// payload (which could hold request data).
pub fn panic_response(_payload: Box<dyn Any + Send + 'static>) -> Response {
    tracing::error!("a request handler panicked");
    OAuthError::ServerError.into_response()
}
