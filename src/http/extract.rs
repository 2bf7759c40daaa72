//! Extractors with OAuth rejections: a malformed request becomes an
//! `invalid_request` JSON error, never axum's plain-text 4xx.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::request::Parts;

use super::MAX_BODY_BYTES;
use crate::oauth::OAuthError;
use crate::oauth::client_auth::{ClientCredentials, parse_basic};
use crate::oauth::params::FormParams;

/// Credentials from an `Authorization: Basic` header, if any.
pub struct BasicAuth(pub Option<ClientCredentials>);

impl<S: Send + Sync> FromRequestParts<S> for BasicAuth {
    type Rejection = OAuthError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let mut values = parts.headers.get_all(AUTHORIZATION).iter();
        match (values.next(), values.next()) {
            (None, _) => Ok(Self(None)),
            (Some(value), None) => parse_basic(value.as_bytes()).map(Self),
            (Some(_), Some(_)) => Err(OAuthError::invalid_request(
                "more than one Authorization header",
            )),
        }
    }
}

/// The parameters of a form-encoded POST body (RFC 6749 §3.2: the token
/// endpoint takes `application/x-www-form-urlencoded`, in the body).
pub struct OAuthForm(pub FormParams);

impl<S: Send + Sync> FromRequest<S> for OAuthForm {
    type Rejection = OAuthError;

    async fn from_request(request: Request, _: &S) -> Result<Self, Self::Rejection> {
        if !is_form_content_type(request.headers().get(CONTENT_TYPE).map(|v| v.as_bytes())) {
            return Err(OAuthError::invalid_request(
                "the request body must be application/x-www-form-urlencoded",
            ));
        }
        // Parameters in the URL would put credentials into access logs and
        // browser histories; RFC 6749 §3.2 sends them in the body.
        if request.uri().query().is_some_and(|q| !q.is_empty()) {
            return Err(OAuthError::invalid_request(
                "send parameters in the request body, not in the URL",
            ));
        }
        let declared = request
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|len| len > MAX_BODY_BYTES as u64) {
            return Err(OAuthError::BodyTooLarge);
        }
        let body = axum::body::to_bytes(request.into_body(), MAX_BODY_BYTES)
            .await
            .map_err(|_| OAuthError::BodyTooLarge)?;
        FormParams::parse(&body).map(Self)
    }
}

/// `application/x-www-form-urlencoded`, with an optional UTF-8 charset.
fn is_form_content_type(value: Option<&[u8]>) -> bool {
    let Some(value) = value.and_then(|v| std::str::from_utf8(v).ok()) else {
        return false;
    };
    let mut parts = value.split(';').map(str::trim);
    let essence_ok = parts
        .next()
        .is_some_and(|m| m.eq_ignore_ascii_case("application/x-www-form-urlencoded"));
    essence_ok
        && parts.all(|param| match param.split_once('=') {
            Some((name, v)) if name.trim().eq_ignore_ascii_case("charset") => {
                v.trim().trim_matches('"').eq_ignore_ascii_case("utf-8")
            }
            _ => true,
        })
}

#[cfg(test)]
mod tests {
    use super::is_form_content_type;

    #[test]
    fn content_types() {
        assert!(is_form_content_type(Some(
            b"application/x-www-form-urlencoded"
        )));
        assert!(is_form_content_type(Some(
            b"Application/X-WWW-Form-Urlencoded; charset=UTF-8"
        )));
        assert!(!is_form_content_type(Some(
            b"application/x-www-form-urlencoded; charset=latin1"
        )));
        assert!(!is_form_content_type(Some(b"application/json")));
        assert!(!is_form_content_type(None));
    }
}
