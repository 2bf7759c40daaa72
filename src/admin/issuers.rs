//! Trusted issuers for workload identity federation: add, list, show,
//! remove. Removing an issuer stops its tokens at once on this instance and
//! within a second elsewhere; the clients' identities that name it stay, and
//! work again if an issuer of that name is added back.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{AdminError, checked_jwks, modify_client};
use crate::clock::rfc3339;
use crate::crypto::random_token;
use crate::domain::client::{ClientQuery, MAX_PAGE};
use crate::domain::issuer::{DEFAULT_MAX_TOKEN_AGE, KeySource, TrustedIssuer};
use crate::store::{AuditEntry, SYSTEM_ACTOR, Store, StoreError};

/// What a new trusted issuer is made of. Keys: `jwks_uri`, `jwks`, or
/// neither (OIDC discovery at `issuer`).
#[derive(Debug, Default, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewIssuer {
    /// The name clients' identities use (`NAME=SUBJECT`).
    pub name: String,
    /// The `iss` of its tokens: an https URL, or `spiffe://TRUST_DOMAIN`.
    pub issuer: String,
    #[schema(schema_with = crate::domain::client::schema::url_or_null)]
    pub jwks_uri: Option<String>,
    /// A JWK set (RFC 7517 §5), for air-gapped clusters and SPIFFE bundles.
    #[schema(value_type = Option<Object>)]
    pub jwks: Option<Value>,
    /// The audience its tokens must carry; default: tokenmint's issuer.
    #[schema(nullable)]
    pub audience: Option<String>,
    /// Seconds; the longest lifetime and age of a token accepted (default 3600).
    #[schema(nullable, minimum = 1, maximum = 86400)]
    pub max_token_age: Option<u32>,
}

/// A trusted issuer as shown to operators.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct IssuerView {
    pub name: String,
    pub issuer: String,
    /// `discovery`, `jwks_uri` or `jwks`.
    pub key_source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub jwks: Option<Value>,
    /// `null`: tokenmint's issuer.
    pub audience: Option<String>,
    pub max_token_age: u32,
    pub created_at: String,
}

impl From<&TrustedIssuer> for IssuerView {
    fn from(i: &TrustedIssuer) -> Self {
        let (key_source, jwks_uri, jwks) = match &i.keys {
            KeySource::Discovery => ("discovery", None, None),
            KeySource::JwksUri(uri) => ("jwks_uri", Some(uri.clone()), None),
            KeySource::Jwks(jwks) => ("jwks", None, serde_json::from_str(jwks).ok()),
        };
        Self {
            name: i.name.clone(),
            issuer: i.issuer.clone(),
            key_source: key_source.to_owned(),
            jwks_uri,
            jwks,
            audience: i.audience.clone(),
            max_token_age: i.max_token_age,
            created_at: rfc3339(i.created_at),
        }
    }
}

pub struct IssuerAdmin<'a> {
    store: &'a dyn Store,
    /// Who the audit trail says made the changes.
    actor: String,
}

/// A new trusted issuer, checked; not yet stored.
pub(crate) fn build_issuer(new: NewIssuer, now: i64) -> Result<TrustedIssuer, AdminError> {
    let keys = match (new.jwks_uri, new.jwks) {
        (Some(_), Some(_)) => {
            return Err(crate::domain::client::FieldError::new(
                "jwks_uri",
                "give jwks_uri or jwks, not both",
            )
            .into());
        }
        (Some(uri), None) => KeySource::JwksUri(uri),
        (None, Some(jwks)) => KeySource::Jwks(checked_jwks(&jwks)?),
        (None, None) => KeySource::Discovery,
    };
    let issuer = TrustedIssuer {
        id: random_token::<16>()?,
        name: new.name,
        // Kept exactly: tokens' `iss` is compared exactly.
        issuer: new.issuer,
        keys,
        audience: new.audience,
        max_token_age: new.max_token_age.unwrap_or(DEFAULT_MAX_TOKEN_AGE),
        created_at: now,
    };
    issuer.validate()?;
    Ok(issuer)
}

impl<'a> IssuerAdmin<'a> {
    pub fn new(store: &'a dyn Store) -> Self {
        Self {
            store,
            actor: SYSTEM_ACTOR.to_owned(),
        }
    }

    /// The same operations, recorded in the audit trail as `actor`'s.
    pub fn by(self, actor: impl Into<String>) -> Self {
        Self {
            actor: actor.into(),
            ..self
        }
    }

    pub async fn add(&self, new: NewIssuer, now: i64) -> Result<TrustedIssuer, AdminError> {
        let issuer = build_issuer(new, now)?;
        let audit = AuditEntry::new(
            &self.actor,
            "issuer.add",
            &format!("issuer:{}", issuer.name),
            &[],
        );
        match self.store.insert_issuer(&issuer, Some(&audit)).await {
            Ok(()) => {}
            Err(StoreError::Conflict) => return Err(AdminError::IssuerExists),
            Err(e) => return Err(e.into()),
        }
        tracing::info!(name = %issuer.name, issuer = %issuer.issuer, "added trusted issuer");
        Ok(issuer)
    }
    pub async fn list(&self) -> Result<Vec<TrustedIssuer>, AdminError> {
        Ok(self.store.list_issuers().await?)
    }

    pub async fn get(&self, name: &str) -> Result<TrustedIssuer, AdminError> {
        self.list()
            .await?
            .into_iter()
            .find(|i| i.name == name)
            .ok_or(AdminError::NoSuchIssuer)
    }

    /// Stops trusting the issuer, then takes its identities off every
    /// client that lists them: a later issuer of the same name (another
    /// platform, another key) must not inherit them. A client left with no
    /// key and no identity cannot authenticate until it is given one.
    pub async fn remove(&self, name: &str) -> Result<(), AdminError> {
        let audit = AuditEntry::new(&self.actor, "issuer.remove", &format!("issuer:{name}"), &[]);
        if !self.store.delete_issuer(name, Some(&audit)).await? {
            return Err(AdminError::NoSuchIssuer);
        }
        let mut query = ClientQuery {
            limit: MAX_PAGE,
            ..ClientQuery::default()
        };
        loop {
            let page = self.store.list_clients(&query).await?;
            for client in &page {
                if client.federated.iter().any(|f| f.issuer == name) {
                    let audit = AuditEntry::new(
                        &self.actor,
                        "client.update",
                        &client.client_id,
                        &["federated_identities"],
                    );
                    modify_client(self.store, &client.client_id, &audit, |client| {
                        client.federated.retain(|f| f.issuer != name);
                        Ok(())
                    })
                    .await?;
                    tracing::info!(client_id = %client.client_id, issuer = name, "removed the issuer's identities from a client");
                }
            }
            match page.last() {
                Some(last) if page.len() == MAX_PAGE as usize => {
                    query.after = Some(last.client_id.clone());
                }
                _ => break,
            }
        }
        tracing::info!(name, "removed trusted issuer");
        Ok(())
    }
}
