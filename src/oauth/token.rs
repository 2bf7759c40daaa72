//! The client credentials grant (RFC 6749 §4.4) as plain functions: parse the
//! request, decide what to grant, build the RFC 9068 claims. No I/O here; the
//! clock comes in as `now` (Unix seconds) so that tests fix it.

use serde::Serialize;

use super::OAuthError;
use super::client_auth::PresentedCertificate;
use super::client_auth::{ClientCredentials, Credentials, resolve_credentials};
use super::params::FormParams;
use crate::crypto::certificate::{ClientCertificate, thumbprint};
use crate::domain::client::{CLIENT_CREDENTIALS, Client};
use crate::domain::policy::TokenQuota;
use crate::domain::scope::Scope;

/// A token request that is well-formed; nothing is authorised yet.
#[derive(Debug)]
pub struct TokenRequest {
    pub credentials: Credentials,
    /// `None` when the request has no `scope` (or an empty one, §3.2).
    pub scope: Option<Scope>,
    /// Requested audiences from `resource` (RFC 8707, may repeat) or `audience`.
    pub audiences: Vec<String>,
    /// The values of the request's `DPoP` headers (RFC 9449 §4), unchecked.
    pub dpop: Vec<Vec<u8>>,
    /// The client certificate the connection (or a trusted proxy) presented.
    pub certificate: Option<PresentedCertificate>,
}

impl TokenRequest {
    /// Parses the form body and the Basic credentials of a `/token` request.
    ///
    /// The order of checks decides which error a request with several faults
    /// gets: grant type first (it is cheap and needs no client), then the
    /// credentials, then scope and target syntax.
    pub fn parse(
        basic: Option<ClientCredentials>,
        params: &FormParams,
    ) -> Result<Self, OAuthError> {
        match params.single("grant_type")? {
            None => {
                return Err(OAuthError::invalid_request(
                    "the grant_type parameter is missing",
                ));
            }
            Some(CLIENT_CREDENTIALS) => {}
            Some(_) => return Err(OAuthError::UnsupportedGrantType),
        }
        let credentials = resolve_credentials(basic, params)?;
        let scope = params
            .single("scope")?
            .map(Scope::parse)
            .transpose()
            .map_err(|e| OAuthError::InvalidScope(e.to_string().into()))?;
        // RFC 8707 §2: "the client MAY indicate multiple resources by including
        // multiple resource parameters"; `audience` (the name Auth0 and Hydra
        // use) is one value. Mixing the two is ambiguous.
        let resources = params.all("resource");
        let audience = params.single("audience")?;
        let audiences = match (resources, audience) {
            ([], None) => Vec::new(),
            ([], Some(aud)) => vec![aud.to_owned()],
            (resources, None) => {
                let mut unique: Vec<String> = Vec::with_capacity(resources.len());
                for r in resources {
                    if !unique.contains(r) {
                        unique.push(r.clone());
                    }
                }
                unique
            }
            (_, Some(_)) => {
                return Err(OAuthError::invalid_request(
                    "send either resource or audience, not both",
                ));
            }
        };
        Ok(Self {
            credentials,
            scope,
            audiences,
            dpop: Vec::new(),
            certificate: None,
        })
    }
}

/// What an authenticated client receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub scope: Scope,
    pub audiences: Vec<String>,
    pub ttl: u32,
}

/// Decides the grant for an authenticated, enabled client.
///
/// `fallback_audience` (the issuer) is the `aud` of a client with no default
/// audience: RFC 9068 §2.2 makes `aud` REQUIRED.
pub fn decide_grant(
    client: &Client,
    requested_scope: Option<&Scope>,
    requested_audiences: &[String],
    default_ttl: u32,
    fallback_audience: &str,
) -> Result<Grant, OAuthError> {
    if !client.may_use_client_credentials() {
        return Err(OAuthError::UnauthorizedClient);
    }
    let scope = match requested_scope {
        // RFC 6749 §3.3: omitted scope → the pre-defined default.
        None => client.default_scopes.clone(),
        Some(requested) => {
            if let Some(outside) = requested.first_outside(&client.scopes) {
                return Err(OAuthError::InvalidScope(
                    format!("the scope '{outside}' is not allowed for this client").into(),
                ));
            }
            requested.clone()
        }
    };
    let audiences = if requested_audiences.is_empty() {
        vec![
            client
                .default_audience
                .clone()
                .unwrap_or_else(|| fallback_audience.to_owned()),
        ]
    } else {
        if let Some(bad) = requested_audiences
            .iter()
            .find(|a| !client.audiences.contains(a))
        {
            // Echo at most a bounded prefix: it is caller input.
            let shown: String = bad.chars().take(128).collect();
            return Err(OAuthError::InvalidTarget(
                format!("the audience '{shown}' is not allowed for this client").into(),
            ));
        }
        requested_audiences.to_vec()
    };
    Ok(Grant {
        scope,
        audiences,
        ttl: client.token_ttl.unwrap_or(default_ttl),
    })
}

/// The `x5t#S256` a client's token is bound to (RFC 8705 §3.1): the
/// certificate's, when the client's tokens are certificate-bound (always so
/// for the certificate methods, §3.4 `tls_client_certificate_bound_access_tokens`
/// otherwise). Such a client gets no token without a valid certificate —
/// never an unbound one. A certificate that authenticated was checked
/// already; one that only binds must still be one a resource server would
/// accept.
pub fn certificate_binding(
    client: &Client,
    certificate: Option<&PresentedCertificate>,
    now: i64,
) -> Result<Option<String>, OAuthError> {
    let bound =
        client.auth_method.uses_certificate() || client.tls_client_certificate_bound_access_tokens;
    if !bound {
        return Ok(None);
    }
    let leaf = certificate.and_then(|c| c.chain.first());
    match leaf {
        Some(der) if ClientCertificate::parse(der).is_ok_and(|c| c.is_current(now)) => {
            Ok(Some(thumbprint(der)))
        }
        _ => Err(OAuthError::invalid_request(
            "this client's tokens are bound to its TLS client certificate: connect with a valid one",
        )),
    }
}

/// The claims of an RFC 9068 access token.
#[derive(Debug, Serialize)]
pub struct AccessTokenClaims<'a> {
    pub iss: &'a str,
    /// RFC 9068 §2.2: for a client credentials grant, `sub` is the client.
    pub sub: &'a str,
    pub client_id: &'a str,
    pub aud: Audience<'a>,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    pub jti: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    pub scope: &'a str,
    #[serde(skip_serializing_if = "Confirmation::is_empty")]
    pub cnf: &'a Confirmation,
    /// The client's own claims, none of them a name above (they are
    /// refused when set: `domain::policy`).
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub extra: Option<&'a serde_json::Map<String, serde_json::Value>>,
}

/// The `cnf` claim (RFC 7800): the key a sender-constrained token is bound
/// to. RFC 9449 §6.1 (`jkt`) and RFC 8705 §3.1 (`x5t#S256`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Confirmation {
    /// The RFC 7638 SHA-256 thumbprint of the DPoP key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jkt: Option<String>,
    /// The base64url SHA-256 of the client certificate (DER).
    #[serde(rename = "x5t#S256", default, skip_serializing_if = "Option::is_none")]
    pub x5t_s256: Option<String>,
}

impl Confirmation {
    pub fn is_empty(&self) -> bool {
        self.jkt.is_none() && self.x5t_s256.is_none()
    }

    /// `DPoP` for a DPoP-bound token (RFC 9449 §5), `Bearer` otherwise: a
    /// certificate-bound token is still presented as a bearer token
    /// (RFC 8705 §3).
    pub fn token_type(&self) -> &'static str {
        if self.jkt.is_some() { "DPoP" } else { "Bearer" }
    }
}

/// RFC 7519 §4.1.3: `aud` is a string when there is one audience, an array
/// otherwise; single strings are what most resource servers check against.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Audience<'a> {
    One(&'a str),
    Many(&'a [String]),
}

impl<'a> Audience<'a> {
    pub fn of(audiences: &'a [String]) -> Self {
        match audiences {
            [one] => Self::One(one),
            many => Self::Many(many),
        }
    }
}

/// The successful token response (RFC 6749 §5.1). No refresh token: §4.4.3
/// "A refresh token SHOULD NOT be included."
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TokenResponse {
    /// An RFC 9068 JWT.
    pub access_token: String,
    /// `Bearer`, or `DPoP` for a token bound to the request's DPoP key.
    #[schema(value_type = String, example = "Bearer")]
    pub token_type: &'static str,
    pub expires_in: u32,
    /// Always sent: RFC 6749 §5.1 requires it when it differs from the
    /// request, and a client that sent none cannot know the default.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub scope: String,
    /// A fresh server nonce for the next proof (RFC 9449 §8.2), sent as the
    /// `DPoP-Nonce` header, not in the body.
    #[serde(skip)]
    pub dpop_nonce: Option<String>,
    /// Where the client stands against its token quota, sent as the
    /// `RateLimit` headers, not in the body.
    #[serde(skip)]
    pub quota: Option<QuotaState>,
}

/// A client's token quota at one moment: the limit, what is left of it in
/// the current window, and the seconds until the window ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaState {
    pub quota: TokenQuota,
    pub remaining: u64,
    pub reset: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> Client {
        Client {
            default_scopes: Scope::parse("a").unwrap(),
            audiences: vec!["https://orders".into(), "billing".into()],
            default_audience: Some("https://orders".into()),
            ..Client::example("a b c")
        }
    }

    #[test]
    fn defaults_apply_when_nothing_is_requested() {
        let g = decide_grant(&client(), None, &[], 3600, "https://issuer").unwrap();
        assert_eq!(g.scope.to_string(), "a");
        assert_eq!(g.audiences, ["https://orders"]);
        assert_eq!(g.ttl, 3600);
    }

    #[test]
    fn scope_outside_allowed_is_invalid_scope() {
        let req = Scope::parse("a d").unwrap();
        let err = decide_grant(&client(), Some(&req), &[], 3600, "i").unwrap_err();
        assert_eq!(err.code(), "invalid_scope");
    }

    #[test]
    fn audience_outside_allowed_is_invalid_target() {
        let err = decide_grant(&client(), None, &["https://evil".into()], 3600, "i").unwrap_err();
        assert_eq!(err.code(), "invalid_target");
    }

    #[test]
    fn client_without_the_grant_is_unauthorized_client() {
        let mut c = client();
        c.grant_types.clear();
        assert_eq!(
            decide_grant(&c, None, &[], 3600, "i").unwrap_err().code(),
            "unauthorized_client"
        );
    }

    #[test]
    fn fallback_audience_is_used_without_a_default() {
        let mut c = client();
        c.default_audience = None;
        c.token_ttl = Some(60);
        let g = decide_grant(&c, None, &[], 3600, "https://issuer").unwrap();
        assert_eq!(g.audiences, ["https://issuer"]);
        assert_eq!(g.ttl, 60);
    }

    #[test]
    fn request_parse_order() {
        let p = FormParams::parse(b"grant_type=password").unwrap();
        assert_eq!(
            TokenRequest::parse(None, &p).unwrap_err().code(),
            "unsupported_grant_type"
        );
        let p = FormParams::parse(b"scope=a").unwrap();
        assert_eq!(
            TokenRequest::parse(None, &p).unwrap_err().code(),
            "invalid_request"
        );
        let p = FormParams::parse(
            b"grant_type=client_credentials&client_id=a&client_secret=b&resource=x&audience=y",
        )
        .unwrap();
        assert_eq!(
            TokenRequest::parse(None, &p).unwrap_err().code(),
            "invalid_request"
        );
    }
}
