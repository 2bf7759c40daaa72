//! Trusted issuers for workload identity federation: platforms whose signed
//! identity tokens (a Kubernetes service-account token, a SPIFFE JWT-SVID, a
//! CI system's OIDC token) authenticate the clients that list one of their
//! subjects.

pub use super::client::validate_issuer_name;
use super::client::{FieldError, validate_url};

/// The longest token lifetime an issuer may be configured to accept: a
/// platform token is replayable until it expires, so a day is the ceiling.
pub const MAX_TOKEN_AGE_CEILING: u32 = 86_400;
/// One hour: Kubernetes projects tokens of an hour by default, and GitHub's
/// OIDC tokens live for less.
pub const DEFAULT_MAX_TOKEN_AGE: u32 = 3600;

/// Where an issuer's signing keys come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// OIDC discovery: `{issuer}/.well-known/openid-configuration` names the
    /// `jwks_uri` (Kubernetes with a public issuer, GitHub Actions).
    Discovery,
    /// A JWK set at this URL.
    JwksUri(String),
    /// A JWK set document kept in the store (air-gapped clusters, a SPIFFE
    /// bundle's JWT authorities).
    Jwks(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedIssuer {
    /// The operator's name for it, used in clients' federated identities.
    pub name: String,
    /// A random id given when it is added: bindings of clients' subjects
    /// are made under it, so an issuer removed and added again under the
    /// same name starts with none.
    pub id: String,
    /// The `iss` its tokens carry; for a SPIFFE trust domain whose JWT-SVIDs
    /// carry no `iss`, `spiffe://TRUST_DOMAIN`.
    pub issuer: String,
    pub keys: KeySource,
    /// The audience its tokens must carry; `None` means tokenmint's issuer.
    pub audience: Option<String>,
    /// The longest lifetime (and age) of a token accepted, in seconds.
    pub max_token_age: u32,
    pub created_at: i64,
}

/// An `iss` is an https URL (RFC 8414 §2, OIDC Discovery §2) or a SPIFFE
/// trust domain (`spiffe://example.org`).
pub fn validate_issuer_url(url: &str) -> Result<(), FieldError> {
    if let Some(domain) = url.strip_prefix("spiffe://") {
        let ok = !domain.is_empty()
            && domain.len() <= 255
            && domain
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-._".contains(&b));
        return if ok {
            Ok(())
        } else {
            Err(FieldError::new(
                "issuer",
                "a SPIFFE trust domain is spiffe:// followed by lowercase letters, digits, '-', '.' or '_'",
            ))
        };
    }
    validate_url("issuer", url)
}

pub fn validate_max_token_age(secs: u32) -> Result<(), FieldError> {
    if (1..=MAX_TOKEN_AGE_CEILING).contains(&secs) {
        Ok(())
    } else {
        Err(FieldError::new(
            "max_token_age",
            format!("must be between 1 and {MAX_TOKEN_AGE_CEILING} seconds"),
        ))
    }
}

impl TrustedIssuer {
    /// Discovery needs an https issuer; a SPIFFE trust domain has no
    /// discovery document and needs its keys named.
    pub fn validate(&self) -> Result<(), FieldError> {
        validate_issuer_name(&self.name)?;
        validate_issuer_url(&self.issuer)?;
        if let KeySource::JwksUri(uri) = &self.keys {
            validate_url("jwks_uri", uri)?;
        }
        if self.keys == KeySource::Discovery && self.issuer.starts_with("spiffe://") {
            return Err(FieldError::new(
                "jwks_uri",
                "a SPIFFE trust domain has no discovery document: give jwks_uri or jwks",
            ));
        }
        if let Some(aud) = &self.audience {
            super::client::validate_audience("audience", aud)?;
        }
        validate_max_token_age(self.max_token_age)
    }
}
