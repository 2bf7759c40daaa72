//! Client administration: create, list, show, update, enable/disable and
//! delete clients, and the shapes of their results. One implementation
//! behind both faces — the CLI and the admin API — so that no rule, and no
//! result type, is written twice. Field rules live in `domain::client`; this
//! module applies them and talks to the store.

use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;

use crate::clock::rfc3339;
use crate::crypto::{ClientSecret, CryptoError, HashCost, HasherError, KeySet, SecretHasher};
use crate::domain::client::{
    self as clients, AuthMethod, CLIENT_CREDENTIALS, Client, ClientQuery, FederatedIdentity,
    FieldError, PreviousSecret, SecretHashes, SecretOrigin, validate_audience, validate_audiences,
    validate_client_id, validate_federated_identities, validate_grant_types, validate_token_ttl,
    validate_url,
};
use crate::domain::policy::{CustomClaims, TokenQuota};
use crate::domain::scope::Scope;
use crate::domain::tls_subject::{TlsSubject, TlsSubjectKind};
use crate::fault::Fault;
use crate::keys::KeyStatus;
use crate::store::{AuditEntry, SYSTEM_ACTOR, Store, StoreError, StoredKey};

/// The longest secret `--secret-stdin` accepts: argon2 hashes any length, but
/// an unbounded input is unbounded work.
pub const MAX_IMPORTED_SECRET_LEN: usize = 1024;

/// The shortest imported secret, and how many different characters it must
/// hold. A generated secret is 43 characters of 256 random bits; an imported
/// one is the holder's choice, and these bounds refuse only the plainly
/// guessable (`a`, a space, `aaaaaaaaaaaaaaaa`), as NIST SP 800-63B §5.1.1.2
/// refuses short and repetitive memorized secrets.
pub const MIN_IMPORTED_SECRET_LEN: usize = 16;
pub const MIN_IMPORTED_SECRET_DISTINCT: usize = 8;

/// The longest overlap a rotated secret may have: 30 days.
pub const MAX_SECRET_OVERLAP: u64 = 30 * 86_400;

mod apply;
mod audit;
mod issuers;
pub use apply::{ApplyError, ApplyOutcome, apply_file};
pub use audit::{AuditPage, AuditView, audit_page, audit_query, cli_actor, parse_since};
pub use issuers::{IssuerAdmin, IssuerView, NewIssuer};

/// A federated identity as the CLI and the API show and take it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IdentityView {
    /// The trusted issuer's name.
    pub issuer: String,
    /// The exact `sub` of its tokens, e.g. `system:serviceaccount:payments:api`.
    pub subject: String,
}

impl From<&FederatedIdentity> for IdentityView {
    fn from(f: &FederatedIdentity) -> Self {
        Self {
            issuer: f.issuer.clone(),
            subject: f.subject.clone(),
        }
    }
}

impl From<IdentityView> for FederatedIdentity {
    fn from(v: IdentityView) -> Self {
        Self {
            issuer: v.issuer,
            subject: v.subject,
        }
    }
}

/// What a new client is made of. Omitted defaults: `default_scopes` = all
/// `scopes`; `default_audience` = the first audience (or none, meaning the
/// issuer); `grant_types` = client_credentials; `token_ttl` = server default.
#[derive(Debug, Default, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewClient {
    #[schema(schema_with = crate::domain::client::schema::client_id)]
    pub client_id: String,
    #[serde(default)]
    #[schema(schema_with = crate::domain::client::schema::scope_tokens)]
    pub scopes: Vec<String>,
    #[schema(schema_with = crate::domain::client::schema::scope_tokens_or_null)]
    pub default_scopes: Option<Vec<String>>,
    #[serde(default)]
    #[schema(schema_with = crate::domain::client::schema::audiences)]
    pub audiences: Vec<String>,
    #[schema(schema_with = crate::domain::client::schema::audience_or_null)]
    pub default_audience: Option<String>,
    #[schema(schema_with = crate::domain::client::schema::grant_types_or_null)]
    pub grant_types: Option<Vec<String>>,
    #[schema(schema_with = crate::domain::client::schema::token_ttl_or_null)]
    pub token_ttl: Option<u32>,
    /// Default: `private_key_jwt` when keys or identities are given,
    /// otherwise `client_secret_basic` (a generated secret).
    #[schema(schema_with = crate::domain::client::schema::auth_method_or_null)]
    pub token_endpoint_auth_method: Option<String>,
    /// The client's public keys, a JWK set (RFC 7517 §5).
    #[schema(value_type = Option<Object>)]
    pub jwks: Option<Value>,
    #[schema(schema_with = crate::domain::client::schema::url_or_null)]
    pub jwks_uri: Option<String>,
    #[serde(default)]
    pub federated_identities: Vec<IdentityView>,
    /// `tls_client_auth`: the one certificate subject (RFC 8705 §2.1.2) —
    /// a distinguished name (RFC 4514) or one SAN.
    #[schema(nullable)]
    pub tls_client_auth_subject_dn: Option<String>,
    #[schema(nullable)]
    pub tls_client_auth_san_dns: Option<String>,
    #[schema(nullable)]
    pub tls_client_auth_san_uri: Option<String>,
    #[schema(nullable)]
    pub tls_client_auth_san_ip: Option<String>,
    #[schema(nullable)]
    pub tls_client_auth_san_email: Option<String>,
    /// RFC 9449 §5.2: every token request must carry a DPoP proof.
    #[serde(default)]
    pub dpop_bound_access_tokens: bool,
    /// RFC 8705 §3.4: tokens are bound to the client's TLS certificate
    /// (always so for the two certificate methods: `false` is refused there).
    #[schema(nullable)]
    pub tls_client_certificate_bound_access_tokens: Option<bool>,
    /// Claims copied into every token of the client: a JSON object of at
    /// most 4 KiB, with no registered or protocol claim name.
    #[schema(value_type = Option<Object>)]
    pub claims: Option<Value>,
    /// `N/min` or `N/h`: the most tokens the client gets per window.
    #[schema(nullable, example = "100/min")]
    pub token_quota: Option<String>,
}

/// A change to a client; `None` leaves a field as it is. For the two
/// optional fields, `Some(None)` clears them.
#[derive(Debug, Default, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientChanges {
    #[schema(schema_with = crate::domain::client::schema::scope_tokens_or_null)]
    pub scopes: Option<Vec<String>>,
    #[schema(schema_with = crate::domain::client::schema::scope_tokens_or_null)]
    pub default_scopes: Option<Vec<String>>,
    #[schema(schema_with = crate::domain::client::schema::audiences_or_null)]
    pub audiences: Option<Vec<String>>,
    #[serde(default, deserialize_with = "explicit_null")]
    #[schema(schema_with = crate::domain::client::schema::audience_or_null)]
    pub default_audience: Option<Option<String>>,
    #[schema(schema_with = crate::domain::client::schema::grant_types_or_null)]
    pub grant_types: Option<Vec<String>>,
    #[serde(default, deserialize_with = "explicit_null")]
    #[schema(schema_with = crate::domain::client::schema::token_ttl_or_null)]
    pub token_ttl: Option<Option<u32>>,
    #[schema(nullable)]
    pub enabled: Option<bool>,
    /// Moving a secret client to `private_key_jwt` drops its secret; the
    /// way back is a new client.
    #[schema(schema_with = crate::domain::client::schema::auth_method_or_null)]
    pub token_endpoint_auth_method: Option<String>,
    #[serde(default, deserialize_with = "explicit_null")]
    #[schema(value_type = Option<Object>)]
    pub jwks: Option<Option<Value>>,
    #[serde(default, deserialize_with = "explicit_null")]
    #[schema(schema_with = crate::domain::client::schema::url_or_null)]
    pub jwks_uri: Option<Option<String>>,
    #[schema(nullable)]
    pub federated_identities: Option<Vec<IdentityView>>,
    /// Setting one subject field replaces the registered subject; `null`
    /// on the registered one clears it.
    #[serde(default, deserialize_with = "explicit_null")]
    #[schema(value_type = Option<String>, nullable)]
    pub tls_client_auth_subject_dn: Option<Option<String>>,
    #[serde(default, deserialize_with = "explicit_null")]
    #[schema(value_type = Option<String>, nullable)]
    pub tls_client_auth_san_dns: Option<Option<String>>,
    #[serde(default, deserialize_with = "explicit_null")]
    #[schema(value_type = Option<String>, nullable)]
    pub tls_client_auth_san_uri: Option<Option<String>>,
    #[serde(default, deserialize_with = "explicit_null")]
    #[schema(value_type = Option<String>, nullable)]
    pub tls_client_auth_san_ip: Option<Option<String>>,
    #[serde(default, deserialize_with = "explicit_null")]
    #[schema(value_type = Option<String>, nullable)]
    pub tls_client_auth_san_email: Option<Option<String>>,
    #[schema(nullable)]
    pub dpop_bound_access_tokens: Option<bool>,
    #[schema(nullable)]
    pub tls_client_certificate_bound_access_tokens: Option<bool>,
    /// Replaces the whole set; `null` (or `{}`) clears it.
    #[serde(default, deserialize_with = "explicit_null")]
    #[schema(value_type = Option<Object>, nullable)]
    pub claims: Option<Option<Value>>,
    /// `N/min` or `N/h`; `null` lifts the quota.
    #[serde(default, deserialize_with = "explicit_null")]
    #[schema(value_type = Option<String>, nullable)]
    pub token_quota: Option<Option<String>>,
    /// Set by the CLI: `claims` edits the set (a `null` value removes that
    /// claim) instead of replacing it.
    #[serde(skip)]
    pub merge_claims: bool,
}

/// Distinguishes `"field": null` (clear) from an absent field (keep).
fn explicit_null<'de, T: Deserialize<'de>, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// A client as shown to operators: never a secret or a hash.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct ClientView {
    pub client_id: String,
    pub scopes: Vec<String>,
    pub default_scopes: Vec<String>,
    pub audiences: Vec<String>,
    pub default_audience: Option<String>,
    pub grant_types: Vec<String>,
    /// Seconds; `null` means the server default.
    pub token_ttl: Option<u32>,
    pub enabled: bool,
    pub created_at: String,
    pub updated_at: String,
    /// Tokens issued before this time are inactive (RFC 3339).
    pub tokens_valid_after: String,
    #[serde(default)]
    #[schema(schema_with = crate::domain::client::schema::auth_method)]
    pub token_endpoint_auth_method: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub jwks: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    #[serde(default)]
    pub federated_identities: Vec<IdentityView>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_client_auth_subject_dn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_client_auth_san_dns: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_client_auth_san_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_client_auth_san_ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_client_auth_san_email: Option<String>,
    #[serde(default)]
    pub dpop_bound_access_tokens: bool,
    #[serde(default)]
    pub tls_client_certificate_bound_access_tokens: bool,
    /// The claims added to every token of the client (`{}`: none).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub claims: Value,
    #[serde(default)]
    pub token_quota: Option<String>,
}

impl From<&Client> for ClientView {
    fn from(c: &Client) -> Self {
        Self {
            client_id: c.client_id.clone(),
            scopes: c.scopes.tokens().map(str::to_owned).collect(),
            default_scopes: c.default_scopes.tokens().map(str::to_owned).collect(),
            audiences: c.audiences.clone(),
            default_audience: c.default_audience.clone(),
            grant_types: c.grant_types.clone(),
            token_ttl: c.token_ttl,
            enabled: c.enabled,
            created_at: rfc3339(c.created_at),
            updated_at: rfc3339(c.updated_at),
            tokens_valid_after: rfc3339(c.tokens_valid_after),
            token_endpoint_auth_method: c.auth_method.as_str().to_owned(),
            jwks: c.jwks.as_deref().and_then(|j| serde_json::from_str(j).ok()),
            jwks_uri: c.jwks_uri.clone(),
            federated_identities: c.federated.iter().map(IdentityView::from).collect(),
            tls_client_auth_subject_dn: subject_of(c, TlsSubjectKind::Dn),
            tls_client_auth_san_dns: subject_of(c, TlsSubjectKind::SanDns),
            tls_client_auth_san_uri: subject_of(c, TlsSubjectKind::SanUri),
            tls_client_auth_san_ip: subject_of(c, TlsSubjectKind::SanIp),
            tls_client_auth_san_email: subject_of(c, TlsSubjectKind::SanEmail),
            dpop_bound_access_tokens: c.dpop_bound_access_tokens,
            tls_client_certificate_bound_access_tokens: c
                .tls_client_certificate_bound_access_tokens,
            claims: Value::Object(
                c.claims
                    .as_ref()
                    .map(|claims| claims.as_map().clone())
                    .unwrap_or_default(),
            ),
            token_quota: c.token_quota.map(|q| q.to_string()),
        }
    }
}

/// The registered subject's value, if it is of `kind`.
fn subject_of(client: &Client, kind: TlsSubjectKind) -> Option<String> {
    client
        .tls_subject
        .as_ref()
        .filter(|s| s.kind == kind)
        .map(|s| s.value.clone())
}

/// At most one subject from the five RFC 8705 §2.1.2 fields.
fn one_subject(
    fields: [(TlsSubjectKind, Option<&str>); 5],
) -> Result<Option<TlsSubject>, FieldError> {
    let mut given = fields
        .into_iter()
        .filter_map(|(kind, value)| value.map(|v| (kind, v)));
    let first = given.next();
    if let Some((kind, _)) = given.next() {
        return Err(FieldError::new(
            kind.field(),
            "register exactly one subject: tls_client_auth_subject_dn or one tls_client_auth_san_* value",
        ));
    }
    first
        .map(|(kind, value)| TlsSubject::new(kind, value).map_err(FieldError::from))
        .transpose()
}

/// A page of the client list.
#[derive(Debug, Clone, Serialize)]
pub struct ClientPage {
    pub clients: Vec<ClientView>,
    /// Where the next page starts (`after`), if there may be one.
    pub next_after: Option<String>,
}

/// A signing key as shown to operators: public facts only.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct KeyView {
    pub kid: String,
    pub alg: String,
    /// `pending`, `active`, `retired` (still published), `expired` or `revoked`.
    pub status: String,
    pub created_at: String,
    pub activates_at: String,
}

impl KeyView {
    pub fn new(key: &StoredKey, status: KeyStatus) -> Self {
        Self {
            kid: key.kid.clone(),
            alg: key.alg.clone(),
            status: status.as_str().to_owned(),
            created_at: rfc3339(key.created_at),
            activates_at: rfc3339(key.activates_at),
        }
    }
}

/// A created client and its secret, shown this once — unless it was
/// imported: the holder has it already, and echoing it would only put it in
/// one more terminal scrollback or CI log.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreatedClient {
    #[serde(flatten)]
    pub client: ClientView,
    #[serde(
        serialize_with = "expose_generated",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<String>)]
    pub client_secret: Option<ClientSecret>,
}

/// A rotated secret, shown this once.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RotatedSecret {
    pub client_id: String,
    #[serde(serialize_with = "expose")]
    #[schema(value_type = String)]
    pub client_secret: ClientSecret,
    /// When the previous secret stops working (RFC 3339); `null` if it already has.
    pub previous_secret_expires_at: Option<String>,
}

/// Secrets serialize in clear only inside these two results: their `Debug`
/// stays redacted.
fn expose<S: Serializer>(secret: &ClientSecret, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(secret.expose())
}

fn expose_generated<S: Serializer>(secret: &Option<ClientSecret>, s: S) -> Result<S::Ok, S::Error> {
    match secret {
        Some(secret) => expose(secret, s),
        None => s.serialize_none(),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error(transparent)]
    Invalid(#[from] FieldError),
    #[error("no such client")]
    NotFound,
    #[error("a client with this id already exists")]
    Conflict,
    #[error("no such issuer")]
    NoSuchIssuer,
    #[error("an issuer with this name or issuer URL already exists")]
    IssuerExists,
    /// A federated identity already authenticates another client.
    #[error("{0}")]
    IdentityTaken(String),
    #[error(transparent)]
    Fault(#[from] Fault),
}

impl From<StoreError> for AdminError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict => Self::Conflict,
            other => Self::Fault(other.into()),
        }
    }
}

impl From<HasherError> for AdminError {
    fn from(e: HasherError) -> Self {
        Self::Fault(e.into())
    }
}

impl From<CryptoError> for AdminError {
    fn from(e: CryptoError) -> Self {
        Self::Fault(e.into())
    }
}

/// Operations on clients over one store.
pub struct ClientAdmin<'a> {
    store: &'a dyn Store,
    hasher: &'a SecretHasher,
    /// Who the audit trail says made the changes.
    actor: String,
    /// Issuers about to be stored with the clients being checked (`apply`
    /// writes both in one transaction): identities may name them.
    incoming_issuers: Vec<crate::domain::issuer::TrustedIssuer>,
}

impl<'a> ClientAdmin<'a> {
    /// Changes are recorded as tokenmint's own until `by` names someone.
    pub fn new(store: &'a dyn Store, hasher: &'a SecretHasher) -> Self {
        Self {
            store,
            hasher,
            actor: SYSTEM_ACTOR.to_owned(),
            incoming_issuers: Vec::new(),
        }
    }

    /// The same operations, recorded in the audit trail as `actor`'s.
    pub fn by(self, actor: impl Into<String>) -> Self {
        Self {
            actor: actor.into(),
            ..self
        }
    }

    fn audit(&self, action: &'static str, client: &str, fields: &[&str]) -> AuditEntry {
        AuditEntry::new(&self.actor, action, client, fields)
    }

    /// Creates a client. With `imported` the client keeps that secret (moving
    /// clients from another server); otherwise a 256-bit secret is generated.
    /// The secret is returned once and stored only as its argon2id hash.
    pub async fn create(
        &self,
        new: NewClient,
        imported: Option<ClientSecret>,
        now: i64,
    ) -> Result<CreatedClient, AdminError> {
        let was_imported = imported.is_some();
        let (client, secret) = self.build(new, imported, now).await?;
        self.store
            .insert_client(
                &client,
                Some(&self.audit("client.create", &client.client_id, &[])),
            )
            .await?;
        tracing::info!(client_id = %client.client_id, "created client");
        Ok(CreatedClient {
            client: ClientView::from(&client),
            client_secret: secret.filter(|_| !was_imported),
        })
    }

    /// A new client, checked, with its secret (generated unless imported)
    /// hashed; not yet stored.
    pub(crate) async fn build(
        &self,
        new: NewClient,
        imported: Option<ClientSecret>,
        now: i64,
    ) -> Result<(Client, Option<ClientSecret>), AdminError> {
        validate_client_id(&new.client_id)?;
        let scopes = parse_scopes("scopes", &new.scopes)?;
        let default_scopes = match &new.default_scopes {
            Some(d) => parse_scopes("default_scopes", d)?,
            None => scopes.clone(),
        };
        validate_audiences(&new.audiences)?;
        let default_audience = new
            .default_audience
            .or_else(|| new.audiences.first().cloned());
        let grant_types = new
            .grant_types
            .unwrap_or_else(|| vec![CLIENT_CREDENTIALS.to_owned()]);
        validate_grant_types(&grant_types)?;
        if let Some(ttl) = new.token_ttl {
            validate_token_ttl(ttl)?;
        }
        let tls_subject = one_subject([
            (
                TlsSubjectKind::Dn,
                new.tls_client_auth_subject_dn.as_deref(),
            ),
            (
                TlsSubjectKind::SanDns,
                new.tls_client_auth_san_dns.as_deref(),
            ),
            (
                TlsSubjectKind::SanUri,
                new.tls_client_auth_san_uri.as_deref(),
            ),
            (TlsSubjectKind::SanIp, new.tls_client_auth_san_ip.as_deref()),
            (
                TlsSubjectKind::SanEmail,
                new.tls_client_auth_san_email.as_deref(),
            ),
        ])?;
        let keys = ClientKeys::new(new.jwks, new.jwks_uri, new.federated_identities)?;
        let auth_method = match &new.token_endpoint_auth_method {
            Some(name) => AuthMethod::parse(name)?,
            None if tls_subject.is_some() => AuthMethod::TlsClientAuth,
            None if keys.any() => AuthMethod::PrivateKeyJwt,
            None => AuthMethod::default(),
        };
        if !auth_method.uses_secret() && imported.is_some() {
            return Err(FieldError::new(
                "client_secret",
                format!("a {} client has no secret", auth_method.as_str()),
            )
            .into());
        }
        self.check_identities(&keys.federated, &new.client_id)
            .await?;
        let was_imported = imported.is_some();
        let secret = match (auth_method.uses_secret(), imported) {
            (false, _) => None,
            (true, Some(secret)) => {
                validate_imported_secret(&secret)?;
                Some(secret)
            }
            (true, None) => Some(ClientSecret::generate()?),
        };
        // The hash costs what the secret's origin calls for (`HashCost`).
        let origin = if was_imported {
            SecretOrigin::Imported
        } else {
            SecretOrigin::Generated
        };
        let secrets = match &secret {
            Some(secret) => Some(SecretHashes {
                current: self
                    .hasher
                    .hash(secret.clone(), HashCost::for_origin(origin))
                    .await?,
                previous: None,
                origin: Some(origin),
            }),
            None => None,
        };
        let client = Client {
            client_id: new.client_id,
            auth_method,
            secrets,
            jwks: keys.jwks,
            jwks_uri: keys.jwks_uri,
            federated: keys.federated,
            tls_subject,
            dpop_bound_access_tokens: new.dpop_bound_access_tokens,
            // RFC 8705 §3: a certificate method binds every token.
            tls_client_certificate_bound_access_tokens: new
                .tls_client_certificate_bound_access_tokens
                .unwrap_or(auth_method.uses_certificate()),
            scopes,
            default_scopes,
            audiences: new.audiences,
            default_audience,
            grant_types,
            token_ttl: new.token_ttl,
            enabled: true,
            created_at: now,
            updated_at: now,
            // An earlier client with this id may have been deleted within
            // this very second: none of its tokens may count for this one.
            tokens_valid_after: now + 1,
            revision: 0,
            claims: new.claims.map(parse_claims).transpose()?.flatten(),
            token_quota: new
                .token_quota
                .as_deref()
                .map(TokenQuota::parse)
                .transpose()
                .map_err(FieldError::from)?,
        };
        clients::validate_consistency(&client)?;
        Ok((client, secret))
    }

    pub async fn get(&self, client_id: &str) -> Result<Client, AdminError> {
        // An id no client can have (a NUL byte, a space) is not looked up:
        // some databases refuse such text with an error, not "no row".
        if validate_client_id(client_id).is_err() {
            return Err(AdminError::NotFound);
        }
        self.store
            .get_client(client_id)
            .await?
            .ok_or(AdminError::NotFound)
    }

    /// One page of clients, and the cursor of the next when there may be
    /// more.
    pub async fn list(&self, query: &ClientQuery) -> Result<ClientPage, AdminError> {
        let rows = self.store.list_clients(query).await?;
        let next_after = (rows.len() == query.limit as usize)
            .then(|| rows.last().map(|c| c.client_id.clone()))
            .flatten();
        Ok(ClientPage {
            clients: rows
                .iter()
                .filter(|c| query.admits(c))
                .map(ClientView::from)
                .collect(),
            next_after,
        })
    }

    pub async fn update(
        &self,
        client_id: &str,
        changes: ClientChanges,
        now: i64,
    ) -> Result<Client, AdminError> {
        let action = match changes.enabled {
            Some(true) => "client.enable",
            Some(false) => "client.disable",
            None => "client.update",
        };
        for _ in 0..MAX_WRITE_ATTEMPTS {
            let before = self.get(client_id).await?;
            let mut client = before.clone();
            self.apply_changes(&mut client, changes.clone(), now)
                .await?;
            let fields = before.changed_fields(&client);
            let audit = self.audit(action, client_id, &fields);
            if self.store.update_client(&client, Some(&audit)).await? {
                tracing::info!(client_id = %client.client_id, "updated client");
                return Ok(client);
            }
            back_off().await;
        }
        Err(too_contended())
    }

    /// Applies `changes` to a client just read; `update` writes it back.
    async fn apply_changes(
        &self,
        client: &mut Client,
        changes: ClientChanges,
        now: i64,
    ) -> Result<(), AdminError> {
        self.apply_key_changes(client, &changes).await?;
        if let Some(scopes) = &changes.scopes {
            let narrowed = parse_scopes("scopes", scopes)?;
            if client.scopes.tokens().any(|t| !narrowed.contains(t)) {
                // Taking a scope away ends the client's current tokens: a
                // token that carried it must not come back to life if the
                // scope is given back later.
                client.tokens_valid_after = client.tokens_valid_after.max(now + 1);
            }
            client.scopes = narrowed;
            // Narrowing the scopes narrows the defaults with them, unless the
            // same change sets the defaults explicitly.
            if changes.default_scopes.is_none() {
                let kept: Vec<&str> = client
                    .default_scopes
                    .tokens()
                    .filter(|t| client.scopes.contains(t))
                    .collect();
                client.default_scopes = Scope::from_tokens(kept)
                    .map_err(|e| FieldError::new("default_scopes", e.to_string()))?;
            }
        }
        if let Some(defaults) = &changes.default_scopes {
            client.default_scopes = parse_scopes("default_scopes", defaults)?;
        }
        if let Some(audiences) = changes.audiences {
            validate_audiences(&audiences)?;
            if changes.default_audience.is_none()
                && client
                    .default_audience
                    .as_ref()
                    .is_some_and(|d| !audiences.contains(d))
            {
                client.default_audience = audiences.first().cloned();
            }
            client.audiences = audiences;
        }
        if let Some(default_audience) = changes.default_audience {
            if let Some(aud) = &default_audience {
                validate_audience("default_audience", aud)?;
            }
            client.default_audience = default_audience;
        }
        if let Some(grant_types) = changes.grant_types {
            validate_grant_types(&grant_types)?;
            client.grant_types = grant_types;
        }
        if let Some(ttl) = changes.token_ttl {
            if let Some(ttl) = ttl {
                validate_token_ttl(ttl)?;
            }
            client.token_ttl = ttl;
        }
        if let Some(enabled) = changes.enabled {
            if client.enabled && !enabled {
                // Disabling ends the client's tokens; enabling does not
                // bring them back.
                client.tokens_valid_after = client.tokens_valid_after.max(now + 1);
            }
            client.enabled = enabled;
        }
        if let Some(dpop) = changes.dpop_bound_access_tokens {
            client.dpop_bound_access_tokens = dpop;
        }
        if let Some(bound) = changes.tls_client_certificate_bound_access_tokens {
            client.tls_client_certificate_bound_access_tokens = bound;
        }
        if let Some(claims) = changes.claims {
            let claims = match (changes.merge_claims, claims) {
                (true, Some(Value::Object(edits))) => {
                    let mut merged = client
                        .claims
                        .as_ref()
                        .map(|c| c.as_map().clone())
                        .unwrap_or_default();
                    for (name, value) in edits {
                        if value.is_null() {
                            merged.remove(&name);
                        } else {
                            merged.insert(name, value);
                        }
                    }
                    Some(Value::Object(merged))
                }
                (_, claims) => claims,
            };
            client.claims = claims.map(parse_claims).transpose()?.flatten();
        }
        if let Some(quota) = changes.token_quota {
            client.token_quota = quota
                .as_deref()
                .map(TokenQuota::parse)
                .transpose()
                .map_err(FieldError::from)?;
        }
        clients::validate_consistency(client)?;
        client.updated_at = now.max(client.updated_at);
        Ok(())
    }

    /// Issues a new secret. The previous one keeps working for `overlap`
    /// seconds (so that deployments can roll), and never after — on every
    /// instance, cached or not, since a cached success only counts while
    /// the hash it matched is live. Zero cuts the old secret at once. A
    /// rotation during an overlap ends the older overlap: only the secret
    /// being replaced is kept.
    pub async fn rotate_secret(
        &self,
        client_id: &str,
        overlap: u64,
        now: i64,
    ) -> Result<RotatedSecret, AdminError> {
        if overlap > MAX_SECRET_OVERLAP {
            return Err(FieldError::new(
                "overlap",
                format!("at most {MAX_SECRET_OVERLAP} seconds (30 days)"),
            )
            .into());
        }
        let secret = ClientSecret::generate()?;
        let hash = self
            .hasher
            .hash(
                secret.clone(),
                HashCost::for_origin(SecretOrigin::Generated),
            )
            .await?;
        let audit = self.audit("client.rotate_secret", client_id, &["secret"]);
        let client = modify_client(self.store, client_id, &audit, |client| {
            let Some(secrets) = client.secrets.as_mut() else {
                return Err(FieldError::new(
                    "token_endpoint_auth_method",
                    format!(
                        "this client authenticates with {} and has no secret to rotate",
                        client.auth_method.as_str()
                    ),
                )
                .into());
            };
            let replaced = std::mem::replace(&mut secrets.current, hash.clone());
            secrets.origin = Some(SecretOrigin::Generated);
            secrets.previous = (overlap > 0).then(|| PreviousSecret {
                hash: replaced,
                expires_at: now.saturating_add(i64::try_from(overlap).unwrap_or(i64::MAX)),
            });
            client.updated_at = now.max(client.updated_at);
            Ok(())
        })
        .await?;
        tracing::info!(client_id, overlap, "rotated client secret");
        let previous = client.secrets.and_then(|s| s.previous);
        Ok(RotatedSecret {
            client_id: client.client_id,
            client_secret: secret,
            previous_secret_expires_at: previous.map(|p| rfc3339(p.expires_at)),
        })
    }

    /// Applies the authentication fields of a change.
    async fn apply_key_changes(
        &self,
        client: &mut Client,
        changes: &ClientChanges,
    ) -> Result<(), AdminError> {
        if let Some(name) = &changes.token_endpoint_auth_method {
            let method = AuthMethod::parse(name)?;
            match (client.auth_method.uses_secret(), method.uses_secret()) {
                // From a secret to keys: the secret stops working at once.
                (true, false) => client.secrets = None,
                (false, true) => {
                    return Err(FieldError::new(
                        "token_endpoint_auth_method",
                        format!(
                            "a {} client has no secret to go back to: create a new client",
                            client.auth_method.as_str()
                        ),
                    )
                    .into());
                }
                _ => {}
            }
            if method.uses_certificate() && !client.auth_method.uses_certificate() {
                client.tls_client_certificate_bound_access_tokens = true;
            }
            client.auth_method = method;
        }
        if let Some(jwks) = &changes.jwks {
            client.jwks = jwks.as_ref().map(checked_jwks).transpose()?;
        }
        if let Some(uri) = &changes.jwks_uri {
            if let Some(uri) = uri {
                validate_url("jwks_uri", uri)?;
            }
            client.jwks_uri = uri.clone();
        }
        let subject_changes = [
            (TlsSubjectKind::Dn, &changes.tls_client_auth_subject_dn),
            (TlsSubjectKind::SanDns, &changes.tls_client_auth_san_dns),
            (TlsSubjectKind::SanUri, &changes.tls_client_auth_san_uri),
            (TlsSubjectKind::SanIp, &changes.tls_client_auth_san_ip),
            (TlsSubjectKind::SanEmail, &changes.tls_client_auth_san_email),
        ];
        let set = one_subject(
            subject_changes.map(|(kind, v)| (kind, v.as_ref().and_then(|v| v.as_deref()))),
        )?;
        if set.is_some() {
            client.tls_subject = set;
        } else if subject_changes.iter().any(|(kind, v)| {
            matches!(v, Some(None)) && client.tls_subject.as_ref().is_some_and(|s| s.kind == *kind)
        }) {
            client.tls_subject = None;
        }
        if let Some(identities) = &changes.federated_identities {
            let identities: Vec<FederatedIdentity> =
                identities.iter().cloned().map(Into::into).collect();
            validate_federated_identities(&identities)?;
            self.check_identities(&identities, &client.client_id)
                .await?;
            client.federated = identities;
        }
        Ok(())
    }

    /// Each identity names a trusted issuer and belongs to no other client.
    async fn check_identities(
        &self,
        identities: &[FederatedIdentity],
        client_id: &str,
    ) -> Result<(), AdminError> {
        if identities.is_empty() {
            return Ok(());
        }
        let mut issuers = self.store.list_issuers().await?;
        issuers.retain(|i| !self.incoming_issuers.iter().any(|n| n.name == i.name));
        issuers.extend(self.incoming_issuers.iter().cloned());
        for identity in identities {
            if !issuers.iter().any(|i| i.name == identity.issuer) {
                return Err(FieldError::new(
                    "federated_identities",
                    format!(
                        "no trusted issuer is named '{}'; add it first (tokenmint issuer add)",
                        identity.issuer
                    ),
                )
                .into());
            }
            let issuer_id = issuers
                .iter()
                .find(|i| i.name == identity.issuer)
                .map_or("", |i| i.id.as_str());
            if let Some(owner) = self
                .store
                .find_federated_client(issuer_id, &identity.subject)
                .await?
                .filter(|owner| owner != client_id)
            {
                return Err(AdminError::IdentityTaken(format!(
                    "{}={} already authenticates client '{owner}'",
                    identity.issuer, identity.subject
                )));
            }
        }
        Ok(())
    }

    pub async fn set_enabled(
        &self,
        client_id: &str,
        enabled: bool,
        now: i64,
    ) -> Result<Client, AdminError> {
        let changes = ClientChanges {
            enabled: Some(enabled),
            ..ClientChanges::default()
        };
        self.update(client_id, changes, now).await
    }

    /// Ends every token the client holds now (they become inactive at
    /// introspection and at the admin API), with one timestamp and no
    /// per-token rows. Tokens issued afterwards are unaffected.
    pub async fn revoke_tokens(&self, client_id: &str, now: i64) -> Result<Client, AdminError> {
        let audit = self.audit("client.revoke_tokens", client_id, &["tokens_valid_after"]);
        let client = modify_client(self.store, client_id, &audit, |client| {
            client.tokens_valid_after = client.tokens_valid_after.max(now + 1);
            client.updated_at = now.max(client.updated_at);
            Ok(())
        })
        .await?;
        tracing::info!(client_id, "revoked every current token of the client");
        Ok(client)
    }

    pub async fn delete(&self, client_id: &str) -> Result<(), AdminError> {
        let audit = self.audit("client.delete", client_id, &[]);
        if validate_client_id(client_id).is_err()
            || !self.store.delete_client(client_id, Some(&audit)).await?
        {
            return Err(AdminError::NotFound);
        }
        tracing::info!(client_id, "deleted client");
        Ok(())
    }
}

/// How often a change is read and applied again when another writer got
/// there first, before giving up with a 503: each lost race means another
/// change went in, so this many writers at once on one client still all
/// succeed (the request deadline bounds the whole).
const MAX_WRITE_ATTEMPTS: usize = 100;

/// A random pause of up to 10 ms after a lost race, so that writers that
/// collided do not collide again in lockstep.
async fn back_off() {
    let jitter = crate::crypto::random_bytes::<1>().map_or(5, |b| u64::from(b[0]) % 10);
    tokio::time::sleep(std::time::Duration::from_millis(1 + jitter)).await;
}

fn too_contended() -> AdminError {
    AdminError::Fault(Fault::unavailable(
        "the client kept changing under this change; try again",
    ))
}

/// Reads a client, applies `change` and writes it back only if nobody wrote
/// it in between (`Client::revision`); otherwise reads it again and applies
/// the change again. Two admins (or instances) changing one client at once
/// then both see their change kept — never one silently undone.
pub(crate) async fn modify_client(
    store: &dyn Store,
    client_id: &str,
    audit: &AuditEntry,
    mut change: impl FnMut(&mut Client) -> Result<(), AdminError>,
) -> Result<Client, AdminError> {
    if validate_client_id(client_id).is_err() {
        return Err(AdminError::NotFound);
    }
    for _ in 0..MAX_WRITE_ATTEMPTS {
        let mut client = store
            .get_client(client_id)
            .await?
            .ok_or(AdminError::NotFound)?;
        change(&mut client)?;
        if store.update_client(&client, Some(audit)).await? {
            return Ok(client);
        }
        back_off().await;
    }
    Err(too_contended())
}

/// The key fields of a new client, checked.
struct ClientKeys {
    jwks: Option<String>,
    jwks_uri: Option<String>,
    federated: Vec<FederatedIdentity>,
}

impl ClientKeys {
    fn new(
        jwks: Option<Value>,
        jwks_uri: Option<String>,
        identities: Vec<IdentityView>,
    ) -> Result<Self, FieldError> {
        let jwks = jwks.as_ref().map(checked_jwks).transpose()?;
        if let Some(uri) = &jwks_uri {
            validate_url("jwks_uri", uri)?;
        }
        let federated: Vec<FederatedIdentity> = identities.into_iter().map(Into::into).collect();
        validate_federated_identities(&federated)?;
        Ok(Self {
            jwks,
            jwks_uri,
            federated,
        })
    }

    fn any(&self) -> bool {
        self.jwks.is_some() || self.jwks_uri.is_some() || !self.federated.is_empty()
    }
}

/// A JWK set as it will be stored: parsed, checked, at least one key.
pub fn checked_jwks(jwks: &Value) -> Result<String, FieldError> {
    let text = jwks.to_string();
    let set = KeySet::parse(text.as_bytes()).map_err(|e| FieldError::new("jwks", e.0))?;
    if set.is_empty() {
        return Err(FieldError::new("jwks", "the key set holds no key"));
    }
    Ok(text)
}

/// Claims as the API and the CLI take them; an empty object is none.
pub fn parse_claims(value: Value) -> Result<Option<CustomClaims>, FieldError> {
    let claims = CustomClaims::new(value)?;
    Ok((!claims.is_empty()).then_some(claims))
}

fn parse_scopes(field: &'static str, tokens: &[String]) -> Result<Scope, FieldError> {
    // Accept "a b" inside one element too, as a CLI user types it.
    clients::parse_scope(field, &tokens.join(" "))
}

/// The rule for an imported secret; the message never quotes the secret.
pub fn validate_imported_secret(secret: &ClientSecret) -> Result<(), FieldError> {
    let s = secret.expose();
    let refuse = |why: String| Err(FieldError::new("client_secret", why));
    if s.len() > MAX_IMPORTED_SECRET_LEN {
        return refuse(format!(
            "an imported secret is at most {MAX_IMPORTED_SECRET_LEN} bytes"
        ));
    }
    if s.chars().count() < MIN_IMPORTED_SECRET_LEN {
        return refuse(format!(
            "an imported secret needs at least {MIN_IMPORTED_SECRET_LEN} characters"
        ));
    }
    let distinct: std::collections::BTreeSet<char> = s.chars().collect();
    if distinct.len() < MIN_IMPORTED_SECRET_DISTINCT {
        return refuse(format!(
            "an imported secret needs at least {MIN_IMPORTED_SECRET_DISTINCT} different characters"
        ));
    }
    if s.trim() != s {
        return refuse("an imported secret may not start or end with white space".to_owned());
    }
    if s.chars().any(char::is_control) {
        return refuse("an imported secret may not hold control characters".to_owned());
    }
    Ok(())
}
