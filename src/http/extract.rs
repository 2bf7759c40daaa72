//! Extractors with OAuth rejections: a malformed request becomes an
//! `invalid_request` JSON error, never axum's plain-text 4xx.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::request::Parts;
use http_body_util::BodyExt as _;

use super::MAX_BODY_BYTES;
use super::client_address::ClientAddress;
use crate::fault::Fault;
use crate::oauth::OAuthError;
use crate::oauth::client_auth::{ClientCredentials, PresentedCertificate, parse_basic};
use crate::oauth::params::FormParams;

/// Everything a client-authenticating endpoint reads from a request: the
/// caller's address (for the throttle; `http::client_address`), Basic credentials if any, and the
/// form parameters.
pub struct ClientRequest {
    pub address: std::net::IpAddr,
    pub basic: Option<ClientCredentials>,
    pub params: FormParams,
    /// The values of every `DPoP` header (RFC 9449 §4.1), unchecked.
    pub dpop: Vec<Vec<u8>>,
    /// The client certificate (`http::client_certificate`).
    pub certificate: Option<PresentedCertificate>,
}

impl<S: Send + Sync> FromRequest<S> for ClientRequest {
    type Rejection = OAuthError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = request.into_parts();
        let address = parts
            .extensions
            .get::<ClientAddress>()
            .map(|a| a.0)
            .ok_or_else(|| Fault::internal("the request has no caller address"))?;
        let certificate = parts.extensions.get::<PresentedCertificate>().cloned();
        let dpop = parts
            .headers
            .get_all("dpop")
            .iter()
            .map(|v| v.as_bytes().to_vec())
            .collect();
        let BasicAuth(basic) = BasicAuth::from_request_parts(&mut parts, state).await?;
        let OAuthForm(params) =
            OAuthForm::from_request(Request::from_parts(parts, body), state).await?;
        Ok(Self {
            address,
            basic,
            params,
            dpop,
            certificate,
        })
    }
}

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
        if declared.is_some_and(|len| len > DRAIN_LIMIT as u64) {
            return Err(OAuthError::BodyTooLarge);
        }
        let body = tokio::time::timeout(BODY_READ_TIMEOUT, read_body(request.into_body()))
            .await
            .map_err(|_| OAuthError::BodyTimedOut)??;
        FormParams::parse(&body).map(Self)
    }
}

/// A client that sent its request head has this long to send the body: a
/// stalled body must not hold a connection (and a place under the cap) for
/// the whole request timeout.
pub const BODY_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Past `MAX_BODY_BYTES`, the rest of a body is read and thrown away up to
/// this many bytes before the 413 is sent. Answering without reading would
/// close the connection under a client still sending, which then often sees
/// a reset instead of the answer. Nothing past `MAX_BODY_BYTES` is kept, and
/// the request timeout bounds how long this can take.
const DRAIN_LIMIT: usize = 4 * 1024 * 1024;

/// The body if it fits in `MAX_BODY_BYTES`, else `BodyTooLarge` once the
/// client has finished sending (or `DRAIN_LIMIT` is reached).
async fn read_body(mut body: axum::body::Body) -> Result<Vec<u8>, OAuthError> {
    let mut kept = Vec::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame.map(|f| f.into_data()) else {
            return Err(OAuthError::invalid_request(
                "the request body could not be read",
            ));
        };
        let Ok(data) = data else { continue };
        seen = seen.saturating_add(data.len());
        if seen <= MAX_BODY_BYTES {
            kept.extend_from_slice(&data);
        } else if seen > DRAIN_LIMIT {
            break;
        }
    }
    if seen > MAX_BODY_BYTES {
        return Err(OAuthError::BodyTooLarge);
    }
    Ok(kept)
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
