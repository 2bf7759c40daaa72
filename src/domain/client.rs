//! The client: who may ask for tokens, for which scopes and audiences.
//!
//! The validation rules for every client field live here, once; the CLI and
//! the admin API reach them only through `admin`, and the store only ever
//! holds values that passed them.

use std::fmt;

use super::policy::{CustomClaims, PolicyError, TokenQuota};
use super::scope::{Scope, ScopeError};
use super::tls_subject::{SubjectError, TlsSubject};

/// The only grant tokenmint implements (RFC 6749 §4.4).
pub const CLIENT_CREDENTIALS: &str = "client_credentials";

/// Upper bound on a client id; ids are looked up on every request and appear
/// in logs, so they stay short.
pub const MAX_CLIENT_ID_LEN: usize = 128;
/// Upper bound on one audience value.
pub const MAX_AUDIENCE_LEN: usize = 512;
/// The most audiences one client may hold.
pub const MAX_AUDIENCES: usize = 32;
/// Token lifetime bounds in seconds: short-lived tokens are the point of a
/// machine-token server (RFC 9700 §2.2 recommends restricting privileges and
/// lifetimes); one day is the ceiling.
pub const MIN_TOKEN_TTL: u32 = 1;
pub const MAX_TOKEN_TTL: u32 = 86_400;

/// How a client proves who it is: its registered
/// `token_endpoint_auth_method` (RFC 7591 §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuthMethod {
    /// A shared secret. The two secret methods are one family: a secret
    /// client may present its secret either way (RFC 6749 §2.3.1), as every
    /// tokenmint client could before methods were registered.
    #[default]
    ClientSecretBasic,
    ClientSecretPost,
    /// A JWT signed with a key of the client's (`jwks` or `jwks_uri`), or a
    /// platform token from a trusted issuer naming one of the client's
    /// federated identities (RFC 7523 §2.2). The client has no secret.
    PrivateKeyJwt,
    /// A certificate that chains to the configured client CA and carries the
    /// registered subject (RFC 8705 §2.1).
    TlsClientAuth,
    /// A certificate whose public key is one of the client's registered keys
    /// (RFC 8705 §2.2); self-signed certificates are the point.
    SelfSignedTlsClientAuth,
}

impl AuthMethod {
    pub const ALL: [AuthMethod; 5] = [
        Self::ClientSecretBasic,
        Self::ClientSecretPost,
        Self::PrivateKeyJwt,
        Self::TlsClientAuth,
        Self::SelfSignedTlsClientAuth,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretPost => "client_secret_post",
            Self::PrivateKeyJwt => "private_key_jwt",
            Self::TlsClientAuth => "tls_client_auth",
            Self::SelfSignedTlsClientAuth => "self_signed_tls_client_auth",
        }
    }

    pub fn parse(name: &str) -> Result<Self, FieldError> {
        Self::ALL
            .into_iter()
            .find(|m| m.as_str() == name)
            .ok_or_else(|| {
                FieldError::new(
                    "token_endpoint_auth_method",
                    format!(
                        "'{}' is not supported; use client_secret_basic, client_secret_post, private_key_jwt, tls_client_auth or self_signed_tls_client_auth",
                        name.escape_debug()
                    ),
                )
            })
    }

    pub fn uses_secret(self) -> bool {
        matches!(self, Self::ClientSecretBasic | Self::ClientSecretPost)
    }

    /// Whether the client's registered keys (`jwks`, `jwks_uri`) are how it
    /// authenticates.
    pub fn uses_keys(self) -> bool {
        matches!(self, Self::PrivateKeyJwt | Self::SelfSignedTlsClientAuth)
    }

    /// Whether the client authenticates with a TLS client certificate
    /// (RFC 8705 §2); its tokens are then always certificate-bound.
    pub fn uses_certificate(self) -> bool {
        matches!(self, Self::TlsClientAuth | Self::SelfSignedTlsClientAuth)
    }
}

/// A workload identity that authenticates a client: a token from the trusted
/// issuer named `issuer` whose `sub` is exactly `subject`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct FederatedIdentity {
    pub issuer: String,
    pub subject: String,
}

/// The longest subject of a federated identity (GitHub's `repo:…:ref:…`
/// subjects with long branch names are the longest seen in practice).
pub const MAX_SUBJECT_LEN: usize = 512;
/// The most federated identities one client may hold.
pub const MAX_FEDERATED_IDENTITIES: usize = 32;
/// The longest trusted-issuer name.
pub const MAX_ISSUER_NAME_LEN: usize = 64;
/// The longest `jwks_uri`.
pub const MAX_URI_LEN: usize = 2048;

/// One page of the client list: clients after `after` (by id), at most
/// `limit`, narrowed by id prefix, enabled state and one scope.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientQuery {
    pub after: Option<String>,
    pub limit: u32,
    pub prefix: Option<String>,
    pub enabled: Option<bool>,
    pub scope: Option<String>,
}

/// The page size when none is asked for, and the largest one.
pub const DEFAULT_PAGE: u32 = 100;
pub const MAX_PAGE: u32 = 1000;

impl ClientQuery {
    /// Checks a query as the API and the CLI take it.
    pub fn new(
        after: Option<String>,
        limit: Option<u32>,
        prefix: Option<String>,
        enabled: Option<bool>,
        scope: Option<String>,
    ) -> Result<Self, FieldError> {
        let limit = limit.unwrap_or(DEFAULT_PAGE);
        if !(1..=MAX_PAGE).contains(&limit) {
            return Err(FieldError::new("limit", format!("must be 1 to {MAX_PAGE}")));
        }
        for (field, value) in [("after", &after), ("prefix", &prefix)] {
            if value.as_ref().is_some_and(|v| {
                v.len() > MAX_CLIENT_ID_LEN || !v.bytes().all(|b| (0x21..=0x7E).contains(&b))
            }) {
                return Err(FieldError::new(
                    field,
                    "must be printable ASCII without spaces, like a client id",
                ));
            }
        }
        if let Some(scope) = &scope {
            parse_scope("scope", scope)?;
        }
        Ok(Self {
            after,
            limit,
            prefix,
            enabled,
            scope,
        })
    }

    /// Whether `client` belongs in the result (the store narrows with the
    /// same rules; this is the exact check).
    pub fn admits(&self, client: &Client) -> bool {
        self.prefix
            .as_deref()
            .is_none_or(|p| client.client_id.starts_with(p))
            && self.enabled.is_none_or(|e| client.enabled == e)
            && self
                .scope
                .as_deref()
                .is_none_or(|s| client.scopes.contains(s))
    }
}

/// A registered client as stored.
#[derive(Debug, Clone)]
pub struct Client {
    pub client_id: String,
    pub auth_method: AuthMethod,
    /// The argon2id hashes of a secret client; `None` for a client that
    /// authenticates without a secret.
    pub secrets: Option<SecretHashes>,
    /// The client's public keys as a JWK set document (RFC 7517 §5), checked
    /// at registration; or
    pub jwks: Option<String>,
    /// where to fetch them.
    pub jwks_uri: Option<String>,
    /// Platform identities that authenticate this client.
    pub federated: Vec<FederatedIdentity>,
    /// The certificate subject of a `tls_client_auth` client.
    pub tls_subject: Option<TlsSubject>,
    /// RFC 9449 §5.2: the client must send a DPoP proof, and all its tokens
    /// are DPoP-bound.
    pub dpop_bound_access_tokens: bool,
    /// RFC 8705 §3.4: tokens issued over a connection that presented a
    /// client certificate are bound to it (always so for the certificate
    /// methods).
    pub tls_client_certificate_bound_access_tokens: bool,
    /// Scopes the client may request.
    pub scopes: Scope,
    /// Scopes granted when the request names none (RFC 6749 §3.3 lets the
    /// server "process the request using a pre-defined default value").
    pub default_scopes: Scope,
    /// Audiences (RFC 8707 resources) the client may request.
    pub audiences: Vec<String>,
    /// Audience used when the request names none; `None` falls back to the
    /// issuer, so that every token has the `aud` RFC 9068 §2.2 requires.
    pub default_audience: Option<String>,
    /// Grants the client may use: `["client_credentials"]`, or empty for a
    /// client that only introspects or revokes.
    pub grant_types: Vec<String>,
    /// Token lifetime in seconds; `None` uses the server default.
    pub token_ttl: Option<u32>,
    pub enabled: bool,
    /// Tokens issued (`iat`) before this Unix second are inactive: a client
    /// made, disabled or told to revoke its tokens at second T moves it to
    /// T + 1, so no token from before — of this client or of an earlier
    /// client with the same id — counts again.
    pub tokens_valid_after: i64,
    /// Unix seconds.
    pub created_at: i64,
    pub updated_at: i64,
    /// How many times the row was written: a write succeeds only over the
    /// revision it read, so concurrent changes cannot undo each other.
    pub revision: i64,
    /// Claims of the operator's, copied into every token of the client.
    pub claims: Option<CustomClaims>,
    /// How many tokens the client may get per minute or hour.
    pub token_quota: Option<TokenQuota>,
}

/// The argon2id PHC strings a client's secret may match: the current one and,
/// during a rotation overlap, the previous one until it expires.
#[derive(Clone)]
pub struct SecretHashes {
    pub current: String,
    pub previous: Option<PreviousSecret>,
    /// Where the current secret came from; `None` for one stored before
    /// this was recorded.
    pub origin: Option<SecretOrigin>,
}

/// Where a secret came from, which decides what its hash costs: one we
/// generated cannot be guessed, one someone chose might be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretOrigin {
    Generated,
    Imported,
}

impl SecretOrigin {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Generated => "generated",
            Self::Imported => "imported",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Generated, Self::Imported]
            .into_iter()
            .find(|o| o.as_str() == text)
    }
}

#[derive(Clone)]
pub struct PreviousSecret {
    pub hash: String,
    /// Unix seconds after which the previous secret no longer works.
    pub expires_at: i64,
}

impl fmt::Debug for SecretHashes {
    // Hashes are not secrets, but they are offline-attackable: keep them out
    // of logs all the same.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretHashes")
            .field(
                "previous_expires_at",
                &self.previous.as_ref().map(|p| p.expires_at),
            )
            .finish_non_exhaustive()
    }
}

impl Client {
    pub fn may_use_client_credentials(&self) -> bool {
        self.grant_types.iter().any(|g| g == CLIENT_CREDENTIALS)
    }

    /// The names (as in the API) of the fields that differ in `other`: what
    /// the audit trail records and `apply` plans. A secret shows as
    /// `secret`, never as a value or a hash. `tokens_valid_after` is left
    /// out: it moves as a consequence of other changes (a narrowed scope,
    /// a disabling), and is named where it is the change itself.
    pub fn changed_fields(&self, other: &Client) -> Vec<&'static str> {
        let secret = |c: &Client| {
            c.secrets.as_ref().map(|s| {
                (
                    s.current.clone(),
                    s.previous.as_ref().map(|p| p.hash.clone()),
                )
            })
        };
        let checks: [(&'static str, bool); 17] = [
            ("scopes", self.scopes != other.scopes),
            (
                "default_scopes",
                self.default_scopes != other.default_scopes,
            ),
            ("audiences", self.audiences != other.audiences),
            (
                "default_audience",
                self.default_audience != other.default_audience,
            ),
            ("grant_types", self.grant_types != other.grant_types),
            ("token_ttl", self.token_ttl != other.token_ttl),
            ("enabled", self.enabled != other.enabled),
            (
                "token_endpoint_auth_method",
                self.auth_method != other.auth_method,
            ),
            ("secret", secret(self) != secret(other)),
            ("jwks", self.jwks != other.jwks),
            ("jwks_uri", self.jwks_uri != other.jwks_uri),
            ("federated_identities", self.federated != other.federated),
            (
                "tls_client_auth_subject",
                self.tls_subject != other.tls_subject,
            ),
            (
                "dpop_bound_access_tokens",
                self.dpop_bound_access_tokens != other.dpop_bound_access_tokens,
            ),
            (
                "tls_client_certificate_bound_access_tokens",
                self.tls_client_certificate_bound_access_tokens
                    != other.tls_client_certificate_bound_access_tokens,
            ),
            ("claims", self.claims != other.claims),
            ("token_quota", self.token_quota != other.token_quota),
        ];
        checks
            .into_iter()
            .filter(|(_, changed)| *changed)
            .map(|(name, _)| name)
            .collect()
    }
}

#[cfg(test)]
impl Client {
    /// An enabled secretless client `svc` with these scopes (all default),
    /// for unit tests to adjust with struct update syntax.
    pub(crate) fn example(scopes: &str) -> Self {
        let scopes = Scope::parse(scopes).expect("test scopes parse");
        Self {
            client_id: "svc".into(),
            auth_method: AuthMethod::PrivateKeyJwt,
            secrets: None,
            jwks: None,
            jwks_uri: None,
            federated: vec![],
            tls_subject: None,
            dpop_bound_access_tokens: false,
            tls_client_certificate_bound_access_tokens: false,
            default_scopes: scopes.clone(),
            scopes,
            audiences: vec![],
            default_audience: None,
            grant_types: vec![CLIENT_CREDENTIALS.into()],
            token_ttl: None,
            enabled: true,
            tokens_valid_after: 0,
            created_at: 0,
            updated_at: 0,
            revision: 0,
            claims: None,
            token_quota: None,
        }
    }
}

/// A field that failed validation, named as in the CLI and the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: &'static str,
    pub reason: String,
}

impl From<PolicyError> for FieldError {
    fn from(e: PolicyError) -> Self {
        Self::new(e.field, e.reason)
    }
}

impl From<SubjectError> for FieldError {
    fn from(e: SubjectError) -> Self {
        Self::new(e.field, e.reason)
    }
}

impl FieldError {
    pub fn new(field: &'static str, reason: impl Into<String>) -> Self {
        Self {
            field,
            reason: reason.into(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid {}: {}", self.field, self.reason)
    }
}

impl std::error::Error for FieldError {}

/// Client ids are printable ASCII without space (RFC 6749 Appendix A.1 allows
/// %x20-7E; a space is left out because an id with a leading or trailing
/// space is a mistake waiting to happen in every shell and config file).
/// Characters such as `:` `+` `/` `%` are fine: Basic auth form-encodes them.
pub fn validate_client_id(id: &str) -> Result<(), FieldError> {
    if id.is_empty() || id.len() > MAX_CLIENT_ID_LEN {
        return Err(FieldError::new(
            "client_id",
            format!("must be 1 to {MAX_CLIENT_ID_LEN} characters"),
        ));
    }
    if !id.bytes().all(|b| (0x21..=0x7E).contains(&b)) {
        return Err(FieldError::new(
            "client_id",
            "must be printable ASCII without spaces (RFC 6749 Appendix A.1)",
        ));
    }
    Ok(())
}

pub fn parse_scope(field: &'static str, raw: &str) -> Result<Scope, FieldError> {
    Scope::parse(raw).map_err(|e: ScopeError| FieldError::new(field, e.to_string()))
}

/// Audiences are either absolute URIs (`https://orders.example.com`, as RFC
/// 8707 requires of `resource`, without a fragment) or plain identifiers
/// (`orders-api`, as many resource servers configure their expected `aud`).
/// Either way: printable ASCII, no spaces, no `#`.
pub fn validate_audience(field: &'static str, aud: &str) -> Result<(), FieldError> {
    if aud.is_empty() || aud.len() > MAX_AUDIENCE_LEN {
        return Err(FieldError::new(
            field,
            format!("an audience must be 1 to {MAX_AUDIENCE_LEN} characters"),
        ));
    }
    if !aud.bytes().all(|b| (0x21..=0x7E).contains(&b)) || aud.contains('#') {
        return Err(FieldError::new(
            field,
            "an audience is an absolute URI without fragment or a plain identifier: printable ASCII, no spaces, no '#'",
        ));
    }
    Ok(())
}

pub fn validate_audiences(audiences: &[String]) -> Result<(), FieldError> {
    if audiences.len() > MAX_AUDIENCES {
        return Err(FieldError::new(
            "audiences",
            format!("at most {MAX_AUDIENCES} are allowed"),
        ));
    }
    audiences
        .iter()
        .try_for_each(|a| validate_audience("audiences", a))
}

pub fn validate_token_ttl(ttl: u32) -> Result<(), FieldError> {
    if !(MIN_TOKEN_TTL..=MAX_TOKEN_TTL).contains(&ttl) {
        return Err(FieldError::new(
            "token_ttl",
            format!("must be between {MIN_TOKEN_TTL} and {MAX_TOKEN_TTL} seconds"),
        ));
    }
    Ok(())
}

pub fn validate_grant_types(grant_types: &[String]) -> Result<(), FieldError> {
    match grant_types.iter().find(|g| *g != CLIENT_CREDENTIALS) {
        Some(other) => Err(FieldError::new(
            "grant_types",
            format!("'{other}' is not supported; the only grant is {CLIENT_CREDENTIALS}"),
        )),
        None => Ok(()),
    }
}

/// A `jwks_uri` or issuer URL: absolute `https` (or `http`, which the fetcher
/// refuses unless plain-HTTP fetches are allowed), printable ASCII.
pub fn validate_url(field: &'static str, url: &str) -> Result<(), FieldError> {
    let scheme_ok = url.starts_with("https://") || url.starts_with("http://");
    let host_ok = url
        .split_once("://")
        .is_some_and(|(_, rest)| !rest.is_empty() && !rest.starts_with('/'));
    if url.len() > MAX_URI_LEN
        || !scheme_ok
        || !host_ok
        || !url.bytes().all(|b| (0x21..=0x7E).contains(&b))
        || url.contains('#')
    {
        return Err(FieldError::new(
            field,
            format!(
                "must be an absolute https URL without fragment, at most {MAX_URI_LEN} characters"
            ),
        ));
    }
    Ok(())
}

/// A trusted issuer's name: a short identifier, as it appears in
/// `ISSUER=SUBJECT` pairs.
pub fn validate_issuer_name(name: &str) -> Result<(), FieldError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_ISSUER_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(FieldError::new(
            "name",
            format!(
                "an issuer name is 1 to {MAX_ISSUER_NAME_LEN} letters, digits, '-', '_' or '.'"
            ),
        ))
    }
}

/// `ISSUER=SUBJECT`, as the CLI takes it.
pub fn parse_federated_identity(raw: &str) -> Result<FederatedIdentity, FieldError> {
    let (issuer, subject) = raw.split_once('=').ok_or_else(|| {
        FieldError::new(
            "federated_identities",
            "expected ISSUER_NAME=SUBJECT, e.g. prod-cluster=system:serviceaccount:payments:api",
        )
    })?;
    let identity = FederatedIdentity {
        issuer: issuer.to_owned(),
        subject: subject.to_owned(),
    };
    validate_federated_identities(std::slice::from_ref(&identity))?;
    Ok(identity)
}

pub fn validate_federated_identities(identities: &[FederatedIdentity]) -> Result<(), FieldError> {
    let field = "federated_identities";
    if identities.len() > MAX_FEDERATED_IDENTITIES {
        return Err(FieldError::new(
            field,
            format!("at most {MAX_FEDERATED_IDENTITIES} are allowed"),
        ));
    }
    for identity in identities {
        validate_issuer_name(&identity.issuer).map_err(|e| FieldError {
            field,
            reason: e.reason,
        })?;
        // Printable ASCII without spaces: Kubernetes, SPIFFE and GitHub
        // subjects all are, and the store keeps the list space-delimited.
        if identity.subject.is_empty()
            || identity.subject.len() > MAX_SUBJECT_LEN
            || !identity.subject.bytes().all(|b| (0x21..=0x7E).contains(&b))
        {
            return Err(FieldError::new(
                field,
                format!(
                    "a subject is 1 to {MAX_SUBJECT_LEN} printable ASCII characters without spaces"
                ),
            ));
        }
    }
    Ok(())
}

/// Checks the rules that tie fields together; run after every change.
pub fn validate_consistency(client: &Client) -> Result<(), FieldError> {
    let method = "token_endpoint_auth_method";
    let name = client.auth_method.as_str();
    let has_keys = client.jwks.is_some() || client.jwks_uri.is_some();
    if client.auth_method.uses_secret() != client.secrets.is_some() {
        return Err(FieldError::new(
            method,
            if client.secrets.is_some() {
                format!("a {name} client has no secret")
            } else {
                "a secret client needs a secret".to_owned()
            },
        ));
    }
    if has_keys && !client.auth_method.uses_keys() {
        return Err(FieldError::new(
            method,
            "jwks and jwks_uri need private_key_jwt or self_signed_tls_client_auth",
        ));
    }
    if !client.federated.is_empty() && client.auth_method != AuthMethod::PrivateKeyJwt {
        return Err(FieldError::new(
            method,
            "federated_identities need private_key_jwt",
        ));
    }
    if client.jwks.is_some() && client.jwks_uri.is_some() {
        return Err(FieldError::new(
            "jwks_uri",
            "register keys inline (jwks) or by URL (jwks_uri), not both",
        ));
    }
    match client.auth_method {
        AuthMethod::PrivateKeyJwt if !has_keys && client.federated.is_empty() => {
            return Err(FieldError::new(
                method,
                "private_key_jwt needs jwks, jwks_uri or federated_identities",
            ));
        }
        AuthMethod::SelfSignedTlsClientAuth if !has_keys => {
            return Err(FieldError::new(
                method,
                "self_signed_tls_client_auth needs jwks or jwks_uri: the certificate's key must be one of them",
            ));
        }
        _ => {}
    }
    if client.auth_method.uses_certificate() && !client.tls_client_certificate_bound_access_tokens {
        return Err(FieldError::new(
            "tls_client_certificate_bound_access_tokens",
            format!("the tokens of a {name} client are always certificate-bound"),
        ));
    }
    match (client.auth_method, &client.tls_subject) {
        (AuthMethod::TlsClientAuth, None) => {
            return Err(FieldError::new(
                method,
                "tls_client_auth needs exactly one subject: tls_client_auth_subject_dn or one tls_client_auth_san_* value",
            ));
        }
        (AuthMethod::TlsClientAuth, Some(_)) | (_, None) => {}
        (_, Some(subject)) => {
            return Err(FieldError::new(
                subject.kind.field(),
                "a certificate subject needs tls_client_auth",
            ));
        }
    }
    if let Some(outside) = client.default_scopes.first_outside(&client.scopes) {
        return Err(FieldError::new(
            "default_scopes",
            format!("'{outside}' is not one of the client's scopes"),
        ));
    }
    if let Some(default) = &client.default_audience
        && !client.audiences.contains(default)
    {
        return Err(FieldError::new(
            "default_audience",
            "must be one of the client's audiences",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_ids() {
        for ok in ["svc:orders+v1", "a/b%c", "x"] {
            assert!(validate_client_id(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a b", "é", &"x".repeat(MAX_CLIENT_ID_LEN + 1)] {
            assert!(validate_client_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn audiences() {
        assert!(validate_audience("a", "https://orders.example.com/api").is_ok());
        assert!(validate_audience("a", "orders-api").is_ok());
        assert!(validate_audience("a", "https://x#frag").is_err());
        assert!(validate_audience("a", "a b").is_err());
    }
}

/// The field grammars above as OpenAPI schemas, for the API document
/// (`#[schema(schema_with = ...)]` on the request types points here).
pub mod schema {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, SchemaType, Type};
    use utoipa::openapi::{Array, Object};

    /// RFC 6749 Appendix A.1 printable ASCII without space, as validated.
    const CLIENT_ID: &str = r"^[\x21-\x7E]{1,128}$";
    /// One RFC 6749 §3.3 scope token.
    const SCOPE_TOKEN: &str = r"^[\x21\x23-\x5B\x5D-\x7E]{1,128}$";
    /// Space-delimited scope tokens.
    const SCOPE_LIST: &str =
        r"^[\x21\x23-\x5B\x5D-\x7E]{1,128}( [\x21\x23-\x5B\x5D-\x7E]{1,128}){0,63}$";
    /// An absolute URI without fragment or a plain identifier.
    const AUDIENCE: &str = r"^[\x21\x22\x24-\x7E]{1,512}$";

    fn string(pattern: &str, description: &str) -> ObjectBuilder {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(pattern))
            .description(Some(description))
    }

    pub fn client_id() -> Object {
        string(
            CLIENT_ID,
            "Printable ASCII without spaces, 1 to 128 characters (RFC 6749 Appendix A.1)",
        )
        .build()
    }

    pub fn scope_list() -> Object {
        string(SCOPE_LIST, "Space-delimited scope tokens (RFC 6749 §3.3)").build()
    }

    pub fn audience() -> Object {
        string(
            AUDIENCE,
            "An absolute URI without fragment, or a plain identifier",
        )
        .build()
    }

    pub fn scope_tokens() -> Array {
        ArrayBuilder::new()
            .items(string(SCOPE_TOKEN, "A scope token (RFC 6749 §3.3)"))
            .max_items(Some(crate::domain::scope::MAX_SCOPE_TOKENS))
            .build()
    }

    pub fn audiences() -> Array {
        ArrayBuilder::new()
            .items(audience())
            .max_items(Some(super::MAX_AUDIENCES))
            .build()
    }

    pub fn grant_types() -> Array {
        let grant = ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some([super::CLIENT_CREDENTIALS]));
        ArrayBuilder::new().items(grant).max_items(Some(1)).build()
    }

    /// `T` or `null`: the admin API's optional fields accept an explicit null
    /// (for `default_audience` and `token_ttl` in a change, it clears them).
    fn or_null(t: Type) -> SchemaType {
        SchemaType::from_iter([t, Type::Null])
    }

    pub fn audience_or_null() -> Object {
        let mut schema = audience();
        schema.schema_type = or_null(Type::String);
        schema
    }

    pub fn token_ttl_or_null() -> Object {
        let mut schema = token_ttl();
        schema.schema_type = or_null(Type::Integer);
        schema
    }

    pub fn scope_tokens_or_null() -> Array {
        let mut schema = scope_tokens();
        schema.schema_type = or_null(Type::Array);
        schema
    }

    pub fn audiences_or_null() -> Array {
        let mut schema = audiences();
        schema.schema_type = or_null(Type::Array);
        schema
    }

    pub fn auth_method() -> Object {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(super::AuthMethod::ALL.map(super::AuthMethod::as_str)))
            .description(Some(
                "How the client authenticates (RFC 7591 token_endpoint_auth_method)",
            ))
            .build()
    }

    pub fn auth_method_or_null() -> Object {
        let mut schema = auth_method();
        schema.schema_type = or_null(Type::String);
        schema
    }

    pub fn url_or_null() -> Object {
        ObjectBuilder::new()
            .schema_type(or_null(Type::String))
            .pattern(Some(r"^https?://[\x21-\x22\x24-\x7E]{1,2040}$"))
            .description(Some("An absolute https URL"))
            .build()
    }

    pub fn grant_types_or_null() -> Array {
        let mut schema = grant_types();
        schema.schema_type = or_null(Type::Array);
        schema
    }

    pub fn token_ttl() -> Object {
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .minimum(Some(super::MIN_TOKEN_TTL))
            .maximum(Some(super::MAX_TOKEN_TTL))
            .description(Some("Token lifetime in seconds"))
            .build()
    }
}
