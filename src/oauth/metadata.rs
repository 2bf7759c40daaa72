//! Authorization server metadata (RFC 8414).

use serde_json::{Value, json};

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
pub fn server_metadata(issuer: &str, signing_algs: &[Algorithm]) -> Value {
    let auth_methods = AuthMethod::ALL.map(AuthMethod::as_str);
    let algs: Vec<&str> = signing_algs.iter().map(|a| a.as_str()).collect();
    json!({
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
    })
}
