//! Authorization server metadata (RFC 8414).

use serde_json::{Value, json};

use super::dpop::SIGNING_ALGS;
use crate::crypto::{Algorithm, AssertionAlg};
use crate::domain::client::AuthMethod;

pub const TOKEN_PATH: &str = "/token";
pub const JWKS_PATH: &str = "/.well-known/jwks.json";
pub const INTROSPECTION_PATH: &str = "/introspect";
pub const REVOCATION_PATH: &str = "/revoke";

/// The metadata document for `issuer`.
///
/// RFC 8414 §2 REQUIRES `issuer` and `response_types_supported`;
/// `authorization_endpoint` is required only "unless no grant types are
/// supported that use the authorization endpoint" — none are, so it is
/// absent and `response_types_supported` is empty. `grant_types_supported`
/// is given explicitly because its default, `["authorization_code",
/// "implicit"]`, would be false here.
pub fn server_metadata(issuer: &str, signing_algs: &[Algorithm], mtls: &MtlsOffer) -> Value {
    // The certificate methods are offered only where they can work: a
    // certificate reaches us (our TLS listener, or a trusted proxy's
    // header), and for tls_client_auth a CA is configured.
    let auth_methods: Vec<&str> = AuthMethod::ALL
        .into_iter()
        .filter(|m| match m {
            AuthMethod::TlsClientAuth => mtls.certificates && mtls.client_ca,
            AuthMethod::SelfSignedTlsClientAuth => mtls.certificates,
            _ => true,
        })
        .map(AuthMethod::as_str)
        .collect();
    let algs: Vec<&str> = signing_algs.iter().map(|a| a.as_str()).collect();
    let mut document = json!({
        "issuer": issuer,
        "token_endpoint": format!("{issuer}{TOKEN_PATH}"),
        "jwks_uri": format!("{issuer}{JWKS_PATH}"),
        "introspection_endpoint": format!("{issuer}{INTROSPECTION_PATH}"),
        "revocation_endpoint": format!("{issuer}{REVOCATION_PATH}"),
        "response_types_supported": [],
        "grant_types_supported": ["client_credentials"],
        "token_endpoint_auth_methods_supported": auth_methods,
        "introspection_endpoint_auth_methods_supported": auth_methods,
        "revocation_endpoint_auth_methods_supported": auth_methods,
        // RFC 8414 §2: the algorithms of private_key_jwt assertions, for
        // each endpoint that accepts them.
        "token_endpoint_auth_signing_alg_values_supported": AssertionAlg::NAMES,
        "introspection_endpoint_auth_signing_alg_values_supported": AssertionAlg::NAMES,
        "revocation_endpoint_auth_signing_alg_values_supported": AssertionAlg::NAMES,
        // Not registered by RFC 8414 (§2 allows more members): the algorithms
        // access tokens may be signed with, as the JWKS keys' `alg` also say.
        "access_token_signing_alg_values_supported": algs,
        // RFC 8705 §3.3.
        "tls_client_certificate_bound_access_tokens": mtls.certificates,
        // RFC 9449 §5.1.
        "dpop_signing_alg_values_supported": SIGNING_ALGS,
    });
    // RFC 8705 §5: where the endpoints answer with mutual TLS, when that is
    // another address than the issuer's.
    if let Some(base) = mtls.base_url {
        document["mtls_endpoint_aliases"] = json!({
            "token_endpoint": format!("{base}{TOKEN_PATH}"),
            "introspection_endpoint": format!("{base}{INTROSPECTION_PATH}"),
            "revocation_endpoint": format!("{base}{REVOCATION_PATH}"),
        });
    }
    document
}

/// What the server offers of mutual TLS (RFC 8705).
#[derive(Debug, Clone, Copy, Default)]
pub struct MtlsOffer<'a> {
    /// Client certificates can reach the server.
    pub certificates: bool,
    /// A CA for `tls_client_auth` is configured.
    pub client_ca: bool,
    pub base_url: Option<&'a str>,
}
