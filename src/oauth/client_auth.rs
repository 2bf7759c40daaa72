//! Client authentication at the token endpoint (RFC 6749 §2.3).
//!
//! Three methods are supported: `client_secret_basic` (the Authorization
//! header), `client_secret_post` (the body) and `private_key_jwt` (a signed
//! assertion in the body, RFC 7523 §2.2). This module only works out
//! *which* credentials were presented and refuses ambiguous requests;
//! checking them is `oauth::authenticate`'s job.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::OAuthError;
use super::params::{FormParams, form_decode};
use crate::crypto::ClientSecret;

/// How the client presented its credentials (the names of RFC 8414's
/// `token_endpoint_auth_methods_supported`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    ClientSecretBasic,
    ClientSecretPost,
}

/// RFC 7523 §2.2: the `client_assertion_type` of a JWT client assertion.
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Credentials as presented; nothing about them is verified yet.
#[derive(Debug, Clone)]
pub enum Credentials {
    Secret(ClientCredentials),
    Assertion(ClientAssertion),
    /// Only a `client_id`: the client means to authenticate with its TLS
    /// certificate (RFC 8705 §2), which the request must then carry.
    Certificate {
        client_id: String,
    },
}

impl Credentials {
    /// The client id the request names before anything is verified, for
    /// logs: an assertion's client is known only once it is checked.
    pub fn claimed_id(&self) -> &str {
        match self {
            Self::Secret(c) => &c.client_id,
            Self::Assertion(a) => a.client_id.as_deref().unwrap_or(""),
            Self::Certificate { client_id } => client_id,
        }
    }
}

/// A JWT presented as `client_assertion`; the JWT itself stays out of
/// `Debug` (it is a credential until it expires).
#[derive(Clone)]
pub struct ClientAssertion {
    /// The `client_id` parameter, if sent; it must then name the client the
    /// assertion authenticates.
    pub client_id: Option<String>,
    pub jwt: String,
}

impl std::fmt::Debug for ClientAssertion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientAssertion")
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// A client certificate chain, leaf first, in DER: from the TLS handshake
/// (whose signature proved the key), or from a trusted TLS-terminating proxy.
#[derive(Clone)]
pub struct PresentedCertificate {
    pub chain: std::sync::Arc<[Vec<u8>]>,
}

impl std::fmt::Debug for PresentedCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PresentedCertificate({} certificates)", self.chain.len())
    }
}

/// A client id and secret as presented; nothing about them is verified yet.
#[derive(Debug, Clone)]
pub struct ClientCredentials {
    pub client_id: String,
    pub secret: ClientSecret,
    pub method: AuthMethod,
}

/// Parses the value of an `Authorization` header.
///
/// Returns `Ok(None)` for a scheme other than Basic (the client then has not
/// authenticated by this method), and `invalid_request` for a Basic header
/// that is malformed. RFC 6749 §2.3.1: the client id and secret are
/// form-urlencoded *before* base64, so both are decoded again after the split
/// on the first `:` — which is why ids and secrets containing `:` work.
pub fn parse_basic(header: &[u8]) -> Result<Option<ClientCredentials>, OAuthError> {
    let header = std::str::from_utf8(header)
        .map_err(|_| OAuthError::invalid_request("malformed Authorization header"))?;
    let (scheme, rest) = header.trim().split_once(' ').unwrap_or((header.trim(), ""));
    // RFC 9110 §11.1: the auth-scheme is case-insensitive.
    if !scheme.eq_ignore_ascii_case("Basic") {
        return Ok(None);
    }
    let malformed = || OAuthError::invalid_request("malformed Basic authorization header");
    let decoded = STANDARD.decode(rest.trim()).map_err(|_| malformed())?;
    let colon = decoded
        .iter()
        .position(|&b| b == b':')
        .ok_or_else(malformed)?;
    let client_id = form_decode(&decoded[..colon]).ok_or_else(malformed)?;
    let secret = form_decode(&decoded[colon + 1..]).ok_or_else(malformed)?;
    Ok(Some(ClientCredentials {
        client_id,
        secret: ClientSecret::new(secret),
        method: AuthMethod::ClientSecretBasic,
    }))
}

/// The answer to a request that authenticates by none of the methods.
pub const NO_CREDENTIALS: &str = "client authentication is required: use HTTP Basic (client_secret_basic), client_id and client_secret in the body (client_secret_post), a client_assertion (private_key_jwt), or client_id with a TLS client certificate";

/// Decides which credentials authenticate this request.
///
/// RFC 6749 §2.3: "The client MUST NOT use more than one authentication method
/// in each request." A `client_id` in the body beside a Basic header is
/// tolerated when it names the same client (some libraries always send it),
/// but a `client_secret` in the body beside one is two methods.
pub fn resolve_credentials(
    basic: Option<ClientCredentials>,
    params: &FormParams,
) -> Result<Credentials, OAuthError> {
    let body_id = params.single("client_id")?;
    let body_secret = params.single("client_secret")?;
    let assertion_type = params.single("client_assertion_type")?;
    let assertion = params.single("client_assertion")?;
    if assertion_type.is_some() || assertion.is_some() {
        if basic.is_some() || body_secret.is_some() {
            return Err(OAuthError::invalid_request(
                "the client sent a client_assertion and a secret; use one method",
            ));
        }
        let (Some(assertion_type), Some(jwt)) = (assertion_type, assertion) else {
            return Err(OAuthError::invalid_request(
                "client_assertion and client_assertion_type are sent together (RFC 7521 §4.2)",
            ));
        };
        if assertion_type != JWT_BEARER {
            return Err(OAuthError::InvalidClient(
                "unsupported client_assertion_type; use urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ));
        }
        return Ok(Credentials::Assertion(ClientAssertion {
            client_id: body_id.map(str::to_owned),
            jwt: jwt.to_owned(),
        }));
    }
    if let (None, Some(client_id), None) = (&basic, body_id, body_secret) {
        return Ok(Credentials::Certificate {
            client_id: client_id.to_owned(),
        });
    }
    resolve_secret(basic, body_id, body_secret).map(Credentials::Secret)
}

fn resolve_secret(
    basic: Option<ClientCredentials>,
    body_id: Option<&str>,
    body_secret: Option<&str>,
) -> Result<ClientCredentials, OAuthError> {
    match (basic, body_id, body_secret) {
        (Some(_), _, Some(_)) => Err(OAuthError::invalid_request(
            "the client authenticated with both the Authorization header and client_secret in the body; use one method",
        )),
        (Some(basic), Some(id), None) if id != basic.client_id => Err(OAuthError::invalid_request(
            "client_id in the body does not match the Authorization header",
        )),
        (Some(basic), _, None) => Ok(basic),
        (None, Some(id), Some(secret)) => Ok(ClientCredentials {
            client_id: id.to_owned(),
            secret: ClientSecret::new(secret.to_owned()),
            method: AuthMethod::ClientSecretPost,
        }),
        (None, None, Some(_)) => Err(OAuthError::invalid_request(
            "client_secret was sent without client_id",
        )),
        (None, _, None) => Err(OAuthError::InvalidClient(NO_CREDENTIALS)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(id_secret: &str) -> Vec<u8> {
        format!("Basic {}", STANDARD.encode(id_secret)).into_bytes()
    }

    #[test]
    fn basic_decodes_form_encoding_after_base64() {
        let creds = parse_basic(&basic("svc%3Aorders%2Bv1:s%3Ae%25c+r%2Bet%C3%A9"))
            .unwrap()
            .unwrap();
        assert_eq!(creds.client_id, "svc:orders+v1");
        assert_eq!(creds.secret.expose(), "s:e%c r+eté");
    }

    #[test]
    fn basic_scheme_is_case_insensitive_and_other_schemes_are_not_basic() {
        assert!(parse_basic(b"bAsIc YTpi").unwrap().is_some());
        assert!(parse_basic(b"Bearer abc").unwrap().is_none());
    }

    #[test]
    fn malformed_basic_is_invalid_request() {
        for header in [
            &b"Basic !!!"[..],
            b"Basic YWJj",
            b"Basic",
            b"Basic JXp6OmI=",
        ] {
            let err = parse_basic(header).unwrap_err();
            assert_eq!(err.code(), "invalid_request", "{header:?}");
        }
    }

    #[test]
    fn two_methods_are_refused() {
        let params = FormParams::parse(b"client_id=a&client_secret=b").unwrap();
        let creds = parse_basic(&basic("a:b")).unwrap();
        let err = resolve_credentials(creds, &params).unwrap_err();
        assert_eq!(err.code(), "invalid_request");
    }

    #[test]
    fn an_assertion_is_one_method() {
        let ok = format!("client_assertion_type={JWT_BEARER}&client_assertion=a.b.c&client_id=x");
        let params = FormParams::parse(ok.as_bytes()).unwrap();
        let Credentials::Assertion(a) = resolve_credentials(None, &params).unwrap() else {
            panic!("an assertion")
        };
        assert_eq!(
            (a.client_id.as_deref(), a.jwt.as_str()),
            (Some("x"), "a.b.c")
        );
        let with_basic = resolve_credentials(parse_basic(&basic("a:b")).unwrap(), &params);
        assert_eq!(with_basic.unwrap_err().code(), "invalid_request");
        let half = FormParams::parse(b"client_assertion=a.b.c").unwrap();
        assert_eq!(
            resolve_credentials(None, &half).unwrap_err().code(),
            "invalid_request"
        );
        let saml = FormParams::parse(b"client_assertion_type=saml&client_assertion=x").unwrap();
        assert_eq!(
            resolve_credentials(None, &saml).unwrap_err().code(),
            "invalid_client"
        );
    }

    #[test]
    fn no_credentials_is_invalid_client() {
        let params = FormParams::parse(b"grant_type=client_credentials").unwrap();
        assert_eq!(
            resolve_credentials(None, &params).unwrap_err().code(),
            "invalid_client"
        );
    }

    #[test]
    fn a_bare_client_id_is_a_certificate_claim() {
        let params = FormParams::parse(b"client_id=a").unwrap();
        assert!(matches!(
            resolve_credentials(None, &params).unwrap(),
            Credentials::Certificate { client_id } if client_id == "a"
        ));
    }
}
