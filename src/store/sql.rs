//! The SQL both backends run, and the row types it reads into.

use sqlx::FromRow;

use super::{StoreError, StoredKey};
use crate::domain::client::{
    AuthMethod, Client, ClientQuery, PreviousSecret, SecretHashes, SecretOrigin,
    parse_federated_identity,
};
use crate::domain::issuer::{KeySource, TrustedIssuer};
use crate::domain::policy::{CustomClaims, TokenQuota};
use crate::domain::scope::Scope;
use crate::domain::tls_subject::TlsSubject;

pub const INSERT_CLIENT: &str = "INSERT INTO clients (client_id, secret_hash, previous_secret_hash, \
     previous_secret_expires_at, scopes, default_scopes, audiences, default_audience, grant_types, \
     token_ttl, enabled, created_at, updated_at, tokens_valid_after, auth_method, jwks, jwks_uri, \
     federated_identities, revision, dpop_bound_access_tokens, \
     tls_client_certificate_bound_access_tokens, tls_subject, secret_origin, claims, token_quota) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, \
     $20, $21, $22, $23, $24, $25)";
pub const UPDATE_CLIENT: &str = "UPDATE clients SET secret_hash = $2, previous_secret_hash = $3, \
     previous_secret_expires_at = $4, scopes = $5, default_scopes = $6, audiences = $7, \
     default_audience = $8, grant_types = $9, token_ttl = $10, enabled = $11, updated_at = $13, \
     tokens_valid_after = $14, auth_method = $15, jwks = $16, jwks_uri = $17, \
     federated_identities = $18, dpop_bound_access_tokens = $20, \
     tls_client_certificate_bound_access_tokens = $21, tls_subject = $22, secret_origin = $23, \
     claims = $24, token_quota = $25, revision = revision + 1 \
     WHERE client_id = $1 AND created_at = $12 AND revision = $19";
pub const SELECT_CLIENT: &str = "SELECT * FROM clients WHERE client_id = $1";
/// A page of clients after a cursor, narrowed by id prefix, enabled state
/// and one scope. The cursor and the prefix are a range of the primary key
/// (`id_range`), so that a page is an index seek, not a scan of every id
/// before it, on both databases (ids compare bytewise: SQLite's BINARY,
/// Postgres's "C" collation, migration 0009). `substr` then checks the
/// prefix exactly. The scope's LIKE only narrows (the caller checks
/// exactly, `ClientQuery::admits`); its `%` and `_` are escaped.
pub const LIST_CLIENTS: &str = "SELECT * FROM clients \
     WHERE client_id > $1 AND client_id >= $2 AND client_id < $6 \
     AND substr(client_id, 1, length($2)) = $2 \
     AND ($3 IS NULL OR enabled = $3) \
     AND ($4 IS NULL OR (' ' || scopes || ' ') LIKE $4 ESCAPE '\\') \
     ORDER BY client_id LIMIT $5";

/// The key range a page reads: above the cursor and within the prefix.
/// Ids are printable ASCII, so `\x7f` is above every id, and the prefix's
/// last byte plus one is above every id that starts with it.
pub fn id_range(query: &ClientQuery) -> (&str, &str, String) {
    let after = query.after.as_deref().unwrap_or("");
    let prefix = query.prefix.as_deref().unwrap_or("");
    let upper = match prefix.as_bytes().split_last() {
        Some((last, head)) if last.is_ascii() && *last < 0x7f => {
            let mut upper = head.to_vec();
            upper.push(last + 1);
            String::from_utf8(upper).unwrap_or_else(|_| "\x7f".to_owned())
        }
        _ => "\x7f".to_owned(),
    };
    (after, prefix, upper)
}

/// The LIKE pattern of one scope token among space-delimited ones.
pub fn scope_pattern(scope: &str) -> String {
    let escaped: String = scope
        .chars()
        .flat_map(|c| match c {
            '%' | '_' | '\\' => vec!['\\', c],
            c => vec![c],
        })
        .collect();
    format!("% {escaped} %")
}
pub const DELETE_CLIENT: &str = "DELETE FROM clients WHERE client_id = $1";
pub const INSERT_KEY: &str = "INSERT INTO signing_keys (kid, alg, private_key, public_jwk, created_at, \
     activates_at) VALUES ($1, $2, $3, $4, $5, $6)";
pub const LIST_KEYS: &str = "SELECT k.kid, k.alg, k.private_key, k.public_jwk, k.created_at, \
     k.activates_at, r.revoked_at FROM signing_keys k LEFT JOIN revoked_keys r ON r.kid = k.kid \
     ORDER BY k.activates_at, k.kid";
pub const REVOKE_KEY: &str =
    "INSERT INTO revoked_keys (kid, revoked_at) VALUES ($1, $2) ON CONFLICT (kid) DO NOTHING";
pub const REVOKE_TOKEN: &str = "INSERT INTO revoked_tokens (jti, client_id, expires_at) VALUES ($1, $2, $3) ON CONFLICT (jti) DO NOTHING";
pub const IS_REVOKED: &str = "SELECT COUNT(*) FROM revoked_tokens WHERE jti = $1";
pub const PRUNE_REVOKED: &str = "DELETE FROM revoked_tokens WHERE expires_at <= $1";
pub const PRUNE_ASSERTIONS: &str = "DELETE FROM used_assertions WHERE expires_at <= $1";
pub const RECORD_CHANGE: &str = "INSERT INTO changes (kind, subject, at) VALUES ($1, $2, $3)";
pub const CHANGES_SINCE: &str =
    "SELECT id, kind, subject FROM changes WHERE id > $1 ORDER BY id LIMIT 1000";
pub const LAST_CHANGE: &str = "SELECT COALESCE(MAX(id), 0) FROM changes";
/// Changes are kept an hour: far longer than any instance takes to read them.
pub const PRUNE_CHANGES: &str = "DELETE FROM changes WHERE at <= $1 - 3600";
/// One multi-row insert for `n` assertion ids; `RETURNING` names the rows
/// actually inserted (first uses), on both databases.
pub fn use_assertions_sql(n: usize) -> String {
    let rows: Vec<String> = (0..n)
        .map(|i| format!("(${}, ${}, ${})", 3 * i + 1, 3 * i + 2, 3 * i + 3))
        .collect();
    format!(
        "INSERT INTO used_assertions (client_id, jti, expires_at) VALUES {} \
         ON CONFLICT (client_id, jti) DO NOTHING RETURNING client_id, jti",
        rows.join(", ")
    )
}
pub const INSERT_AUDIT: &str =
    "INSERT INTO audit (at, actor, action, target, fields) VALUES ($1, $2, $3, $4, $5)";
/// Newest first, before the cursor id; a target's entries through its index.
pub const LIST_AUDIT: &str = "SELECT id, at, actor, action, target, fields FROM audit \
     WHERE ($1 IS NULL OR target = $1) AND ($2 IS NULL OR at >= $2) AND ($3 IS NULL OR id < $3) \
     ORDER BY id DESC LIMIT $4";
pub const PRUNE_AUDIT: &str = "DELETE FROM audit WHERE at < $1";
pub const PRUNE_COUNTERS: &str = "DELETE FROM counters WHERE expires_at <= $1";
/// One past the count, unless that passes the limit: then no row comes back.
pub const TAKE_COUNT: &str = "INSERT INTO counters (name, window_start, count, expires_at) \
     VALUES ($1, $2, 1, $3) ON CONFLICT (name, window_start) \
     DO UPDATE SET count = counters.count + 1 WHERE counters.count < $4 RETURNING count";
/// One multi-row upsert adding `n` counts; `RETURNING` gives each total.
pub fn add_counts_sql(n: usize) -> String {
    let rows: Vec<String> = (0..n)
        .map(|i| {
            format!(
                "(${}, ${}, ${}, ${})",
                4 * i + 1,
                4 * i + 2,
                4 * i + 3,
                4 * i + 4
            )
        })
        .collect();
    format!(
        "INSERT INTO counters (name, window_start, count, expires_at) VALUES {} \
         ON CONFLICT (name, window_start) DO UPDATE SET count = counters.count + excluded.count \
         RETURNING name, window_start, count",
        rows.join(", ")
    )
}
/// Bound under the issuer's current id; an identity naming no trusted
/// issuer (one removed meanwhile) inserts nothing, and so authenticates no one.
pub const INSERT_IDENTITY: &str = "INSERT INTO client_identities (issuer, issuer_id, subject, \
     client_id) SELECT name, id, $2, $3 FROM trusted_issuers WHERE name = $1";
pub const DELETE_IDENTITIES: &str = "DELETE FROM client_identities WHERE client_id = $1";
pub const FIND_IDENTITY: &str =
    "SELECT client_id FROM client_identities WHERE issuer_id = $1 AND subject = $2";
pub const INSERT_ISSUER: &str = "INSERT INTO trusted_issuers (name, issuer, jwks_uri, jwks, \
     audience, max_token_age, created_at, id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
pub const LIST_ISSUERS: &str = "SELECT * FROM trusted_issuers ORDER BY name";
pub const DELETE_ISSUER: &str = "DELETE FROM trusted_issuers WHERE name = $1";

#[derive(FromRow)]
pub struct ClientRow {
    pub client_id: String,
    pub secret_hash: String,
    pub previous_secret_hash: Option<String>,
    pub previous_secret_expires_at: Option<i64>,
    pub scopes: String,
    pub default_scopes: String,
    pub audiences: String,
    pub default_audience: Option<String>,
    pub grant_types: String,
    pub token_ttl: Option<i64>,
    pub enabled: bool,
    pub created_at: i64,
    pub updated_at: i64,
    pub tokens_valid_after: i64,
    pub auth_method: String,
    pub jwks: Option<String>,
    pub jwks_uri: Option<String>,
    pub federated_identities: String,
    pub revision: i64,
    pub dpop_bound_access_tokens: bool,
    pub tls_client_certificate_bound_access_tokens: bool,
    pub tls_subject: Option<String>,
    pub secret_origin: Option<String>,
    pub claims: Option<String>,
    pub token_quota: Option<String>,
}

/// What `secret_hash` holds for a client without a secret (see migration 0005).
const NO_SECRET: &str = "";

impl ClientRow {
    pub fn from_client(c: &Client) -> Self {
        Self {
            client_id: c.client_id.clone(),
            secret_hash: c
                .secrets
                .as_ref()
                .map_or_else(|| NO_SECRET.to_owned(), |s| s.current.clone()),
            previous_secret_hash: c
                .secrets
                .as_ref()
                .and_then(|s| s.previous.as_ref())
                .map(|p| p.hash.clone()),
            previous_secret_expires_at: c
                .secrets
                .as_ref()
                .and_then(|s| s.previous.as_ref())
                .map(|p| p.expires_at),
            scopes: c.scopes.to_string(),
            default_scopes: c.default_scopes.to_string(),
            audiences: c.audiences.join(" "),
            default_audience: c.default_audience.clone(),
            grant_types: c.grant_types.join(" "),
            token_ttl: c.token_ttl.map(i64::from),
            enabled: c.enabled,
            created_at: c.created_at,
            updated_at: c.updated_at,
            tokens_valid_after: c.tokens_valid_after,
            auth_method: c.auth_method.as_str().to_owned(),
            jwks: c.jwks.clone(),
            jwks_uri: c.jwks_uri.clone(),
            federated_identities: c
                .federated
                .iter()
                .map(|f| format!("{}={}", f.issuer, f.subject))
                .collect::<Vec<_>>()
                .join(" "),
            revision: c.revision,
            dpop_bound_access_tokens: c.dpop_bound_access_tokens,
            tls_client_certificate_bound_access_tokens: c
                .tls_client_certificate_bound_access_tokens,
            tls_subject: c.tls_subject.as_ref().map(TlsSubject::to_column),
            secret_origin: c
                .secrets
                .as_ref()
                .and_then(|s| s.origin)
                .map(|o| o.as_str().to_owned()),
            claims: c.claims.as_ref().map(CustomClaims::to_json),
            token_quota: c.token_quota.map(|q| q.to_string()),
        }
    }

    pub fn into_client(self) -> Result<Client, StoreError> {
        let corrupt =
            |what: &str| StoreError::Corrupt(format!("client {:?}: {what}", self.client_id));
        let scopes = Scope::parse(&self.scopes).map_err(|_| corrupt("scopes"))?;
        let default_scopes =
            Scope::parse(&self.default_scopes).map_err(|_| corrupt("default_scopes"))?;
        let token_ttl = self
            .token_ttl
            .map(u32::try_from)
            .transpose()
            .map_err(|_| corrupt("token_ttl"))?;
        let previous = match (self.previous_secret_hash, self.previous_secret_expires_at) {
            (Some(hash), Some(expires_at)) => Some(PreviousSecret { hash, expires_at }),
            _ => None,
        };
        let auth_method =
            AuthMethod::parse(&self.auth_method).map_err(|_| corrupt("auth_method"))?;
        let federated = split_list(&self.federated_identities)
            .iter()
            .map(|pair| parse_federated_identity(pair).map_err(|_| corrupt("federated_identities")))
            .collect::<Result<Vec<_>, _>>()?;
        let origin = match self.secret_origin.as_deref() {
            None => None,
            Some(text) => Some(SecretOrigin::parse(text).ok_or_else(|| corrupt("secret_origin"))?),
        };
        let secrets = (self.secret_hash != NO_SECRET).then_some(SecretHashes {
            current: self.secret_hash,
            previous,
            origin,
        });
        let tls_subject = self
            .tls_subject
            .as_deref()
            .map(|column| TlsSubject::from_column(column).ok_or_else(|| corrupt("tls_subject")))
            .transpose()?;
        let claims = self
            .claims
            .as_deref()
            .map(|text| CustomClaims::from_json(text).ok_or_else(|| corrupt("claims")))
            .transpose()?;
        let token_quota = self
            .token_quota
            .as_deref()
            .map(|text| TokenQuota::parse(text).map_err(|_| corrupt("token_quota")))
            .transpose()?;
        Ok(Client {
            claims,
            token_quota,
            auth_method,
            tls_subject,
            dpop_bound_access_tokens: self.dpop_bound_access_tokens,
            tls_client_certificate_bound_access_tokens: self
                .tls_client_certificate_bound_access_tokens,
            secrets,
            jwks: self.jwks,
            jwks_uri: self.jwks_uri,
            federated,
            revision: self.revision,
            scopes,
            default_scopes,
            audiences: split_list(&self.audiences),
            default_audience: self.default_audience,
            grant_types: split_list(&self.grant_types),
            token_ttl,
            enabled: self.enabled,
            created_at: self.created_at,
            updated_at: self.updated_at,
            tokens_valid_after: self.tokens_valid_after,
            client_id: self.client_id,
        })
    }
}

pub fn split_list(s: &str) -> Vec<String> {
    s.split(' ')
        .filter(|x| !x.is_empty())
        .map(str::to_owned)
        .collect()
}

#[derive(FromRow)]
pub struct KeyRow {
    pub kid: String,
    pub alg: String,
    pub private_key: Vec<u8>,
    pub public_jwk: String,
    pub created_at: i64,
    pub activates_at: i64,
    pub revoked_at: Option<i64>,
}

#[derive(FromRow)]
pub struct IssuerRow {
    pub name: String,
    pub id: String,
    pub issuer: String,
    pub jwks_uri: Option<String>,
    pub jwks: Option<String>,
    pub audience: Option<String>,
    pub max_token_age: i64,
    pub created_at: i64,
}

impl IssuerRow {
    pub fn into_issuer(self) -> Result<TrustedIssuer, StoreError> {
        let keys = match (self.jwks_uri, self.jwks) {
            (Some(uri), None) => KeySource::JwksUri(uri),
            (None, Some(jwks)) => KeySource::Jwks(jwks),
            (None, None) => KeySource::Discovery,
            (Some(_), Some(_)) => {
                return Err(StoreError::Corrupt(format!(
                    "issuer {:?}: both jwks_uri and jwks",
                    self.name
                )));
            }
        };
        Ok(TrustedIssuer {
            max_token_age: u32::try_from(self.max_token_age).map_err(|_| {
                StoreError::Corrupt(format!("issuer {:?}: max_token_age", self.name))
            })?,
            name: self.name,
            id: self.id,
            issuer: self.issuer,
            keys,
            audience: self.audience,
            created_at: self.created_at,
        })
    }
}

/// The key source as the `jwks_uri` and `jwks` columns.
pub fn issuer_key_columns(keys: &KeySource) -> (Option<&str>, Option<&str>) {
    match keys {
        KeySource::Discovery => (None, None),
        KeySource::JwksUri(uri) => (Some(uri), None),
        KeySource::Jwks(jwks) => (None, Some(jwks)),
    }
}

impl From<KeyRow> for StoredKey {
    fn from(r: KeyRow) -> Self {
        Self {
            kid: r.kid,
            alg: r.alg,
            sealed_private_key: r.private_key,
            public_jwk: r.public_jwk,
            created_at: r.created_at,
            activates_at: r.activates_at,
            revoked_at: r.revoked_at,
        }
    }
}

/// `sql` with a client's columns bound as `$1`…`$25`, in `ClientRow` order
/// (the order of `INSERT_CLIENT` and `UPDATE_CLIENT`).
macro_rules! client_query {
    ($sql:expr, $client:expr) => {{
        let r = $crate::store::sql::ClientRow::from_client($client);
        sqlx::query($sql)
            .bind(r.client_id)
            .bind(r.secret_hash)
            .bind(r.previous_secret_hash)
            .bind(r.previous_secret_expires_at)
            .bind(r.scopes)
            .bind(r.default_scopes)
            .bind(r.audiences)
            .bind(r.default_audience)
            .bind(r.grant_types)
            .bind(r.token_ttl)
            .bind(r.enabled)
            .bind(r.created_at)
            .bind(r.updated_at)
            .bind(r.tokens_valid_after)
            .bind(r.auth_method)
            .bind(r.jwks)
            .bind(r.jwks_uri)
            .bind(r.federated_identities)
            .bind(r.revision)
            .bind(r.dpop_bound_access_tokens)
            .bind(r.tls_client_certificate_bound_access_tokens)
            .bind(r.tls_subject)
            .bind(r.secret_origin)
            .bind(r.claims)
            .bind(r.token_quota)
    }};
}
pub(crate) use client_query;

/// Inserts a client's federated identities inside the transaction `$tx`.
macro_rules! write_identities {
    ($tx:ident, $client:expr) => {
        for identity in &$client.federated {
            sqlx::query($crate::store::sql::INSERT_IDENTITY)
                .bind(&identity.issuer)
                .bind(&identity.subject)
                .bind(&$client.client_id)
                .execute(&mut *$tx)
                .await?;
        }
    };
}
pub(crate) use write_identities;

/// Records a change (`changes`) inside the transaction `$tx`.
macro_rules! record_change {
    ($tx:ident, $kind:expr, $subject:expr) => {
        sqlx::query($crate::store::sql::RECORD_CHANGE)
            .bind($kind)
            .bind($subject)
            .bind($crate::store::unix_seconds())
            .execute(&mut *$tx)
            .await?;
    };
}
pub(crate) use record_change;

/// Applies one `Write` inside the transaction `$tx`, recording the change
/// for the other instances; `NotApplied` when it found nothing to change.
macro_rules! apply_write {
    ($tx:ident, $write:expr) => {
        match *$write {
            $crate::store::Write::InsertClient(client) => {
                $crate::store::sql::client_query!($crate::store::sql::INSERT_CLIENT, client)
                    .execute(&mut *$tx)
                    .await?;
                $crate::store::sql::write_identities!($tx, client);
                $crate::store::sql::record_change!($tx, "client", &client.client_id);
            }
            $crate::store::Write::UpdateClient(client) => {
                let done =
                    $crate::store::sql::client_query!($crate::store::sql::UPDATE_CLIENT, client)
                        .execute(&mut *$tx)
                        .await?;
                if done.rows_affected() != 1 {
                    return Err($crate::store::StoreError::NotApplied);
                }
                sqlx::query($crate::store::sql::DELETE_IDENTITIES)
                    .bind(&client.client_id)
                    .execute(&mut *$tx)
                    .await?;
                $crate::store::sql::write_identities!($tx, client);
                $crate::store::sql::record_change!($tx, "client", &client.client_id);
            }
            $crate::store::Write::DeleteClient(client_id) => {
                let done = sqlx::query($crate::store::sql::DELETE_CLIENT)
                    .bind(client_id)
                    .execute(&mut *$tx)
                    .await?;
                if done.rows_affected() != 1 {
                    return Err($crate::store::StoreError::NotApplied);
                }
                sqlx::query($crate::store::sql::DELETE_IDENTITIES)
                    .bind(client_id)
                    .execute(&mut *$tx)
                    .await?;
                $crate::store::sql::record_change!($tx, "client", client_id);
            }
            $crate::store::Write::InsertIssuer(issuer) => {
                let (jwks_uri, jwks) = $crate::store::sql::issuer_key_columns(&issuer.keys);
                sqlx::query($crate::store::sql::INSERT_ISSUER)
                    .bind(&issuer.name)
                    .bind(&issuer.issuer)
                    .bind(jwks_uri)
                    .bind(jwks)
                    .bind(&issuer.audience)
                    .bind(i64::from(issuer.max_token_age))
                    .bind(issuer.created_at)
                    .bind(&issuer.id)
                    .execute(&mut *$tx)
                    .await?;
                $crate::store::sql::record_change!($tx, "issuer", &issuer.name);
            }
            $crate::store::Write::DeleteIssuer(name) => {
                let done = sqlx::query($crate::store::sql::DELETE_ISSUER)
                    .bind(name)
                    .execute(&mut *$tx)
                    .await?;
                if done.rows_affected() != 1 {
                    return Err($crate::store::StoreError::NotApplied);
                }
                $crate::store::sql::record_change!($tx, "issuer", name);
            }
            $crate::store::Write::InsertKey(key) => {
                sqlx::query($crate::store::sql::INSERT_KEY)
                    .bind(&key.kid)
                    .bind(&key.alg)
                    .bind(&key.sealed_private_key)
                    .bind(&key.public_jwk)
                    .bind(key.created_at)
                    .bind(key.activates_at)
                    .execute(&mut *$tx)
                    .await?;
                $crate::store::sql::record_change!($tx, "keys", &key.kid);
            }
            $crate::store::Write::RevokeKey { kid, at } => {
                sqlx::query($crate::store::sql::REVOKE_KEY)
                    .bind(kid)
                    .bind(at)
                    .execute(&mut *$tx)
                    .await?;
                $crate::store::sql::record_change!($tx, "keys", kid);
            }
        }
    };
}
pub(crate) use apply_write;

/// Implements `Store` for a backend struct with a `pool` field, running the
/// shared SQL above. Written as a macro because sqlx's generic-executor bounds
/// would cost more lines, and be harder to read, than the body itself.
macro_rules! impl_sql_store {
    ($store:ty, $backend:literal, $migrator:expr $(, { $($extra:tt)* })?) => {
        impl $crate::store::Store for $store {
            $($($extra)*)?

            fn backend(&self) -> &'static str {
                $backend
            }

            fn migrate(&self) -> $crate::store::StoreFuture<'_, ()> {
                Box::pin(async move { Ok($migrator.run(&self.pool).await?) })
            }

            fn ping(&self) -> $crate::store::StoreFuture<'_, ()> {
                Box::pin($crate::store::bounded(
                    $backend,
                    "ping",
                    self.timeout,
                    async move {
                        sqlx::query("SELECT 1").execute(&self.pool).await?;
                        Ok(())
                    },
                ))
            }

            fn write<'a>(
                &'a self,
                writes: &'a [$crate::store::Write<'a>],
                audit: &'a [$crate::store::AuditEntry],
            ) -> $crate::store::StoreFuture<'a, ()> {
                Box::pin($crate::store::bounded(
                    $backend,
                    "write",
                    self.timeout,
                    async move {
                        let mut tx = self.pool.begin().await?;
                        for write in writes {
                            $crate::store::sql::apply_write!(tx, write);
                        }
                        let now = $crate::store::unix_seconds();
                        for entry in audit {
                            sqlx::query($crate::store::sql::INSERT_AUDIT)
                                .bind(now)
                                .bind(&entry.actor)
                                .bind(entry.action)
                                .bind(&entry.target)
                                .bind(entry.fields.join(" "))
                                .execute(&mut *tx)
                                .await?;
                        }
                        tx.commit().await?;
                        Ok(())
                    },
                ))
            }

            fn list_audit<'a>(
                &'a self,
                query: &'a $crate::store::AuditQuery,
            ) -> $crate::store::StoreFuture<'a, Vec<$crate::store::AuditRecord>> {
                Box::pin($crate::store::bounded(
                    $backend,
                    "list_audit",
                    self.timeout,
                    async move {
                        let rows: Vec<(i64, i64, String, String, String, String)> =
                            sqlx::query_as($crate::store::sql::LIST_AUDIT)
                                .bind(query.target.as_deref())
                                .bind(query.since)
                                .bind(query.before)
                                .bind(i64::from(query.limit))
                                .fetch_all(&self.pool)
                                .await?;
                        Ok(rows
                            .into_iter()
                            .map(|(id, at, actor, action, target, fields)| {
                                $crate::store::AuditRecord {
                                    id,
                                    at,
                                    actor,
                                    action,
                                    target,
                                    fields: $crate::store::sql::split_list(&fields),
                                }
                            })
                            .collect())
                    },
                ))
            }

            fn prune_audit(&self, before: i64) -> $crate::store::StoreFuture<'_, u64> {
                Box::pin($crate::store::bounded(
                    $backend,
                    "prune_audit",
                    self.timeout,
                    async move {
                        let done = sqlx::query($crate::store::sql::PRUNE_AUDIT)
                            .bind(before)
                            .execute(&self.pool)
                            .await?;
                        Ok(done.rows_affected())
                    },
                ))
            }

            fn add_counts<'a>(
                &'a self,
                batch: &'a [$crate::store::CountDelta],
            ) -> $crate::store::StoreFuture<'a, Vec<i64>> {
                Box::pin($crate::store::bounded(
                    $backend,
                    "add_counts",
                    self.timeout,
                    async move {
                        if batch.is_empty() {
                            return Ok(Vec::new());
                        }
                        let sql = $crate::store::sql::add_counts_sql(batch.len());
                        let mut query = sqlx::query_as::<_, (String, i64, i64)>(&sql);
                        for delta in batch {
                            query = query
                                .bind(&delta.name)
                                .bind(delta.window_start)
                                .bind(delta.count)
                                .bind(delta.expires_at);
                        }
                        let totals = query.fetch_all(&self.pool).await?;
                        let totals: std::collections::HashMap<(&str, i64), i64> = totals
                            .iter()
                            .map(|(name, window, count)| ((name.as_str(), *window), *count))
                            .collect();
                        Ok(batch
                            .iter()
                            .map(|d| {
                                totals
                                    .get(&(d.name.as_str(), d.window_start))
                                    .copied()
                                    .unwrap_or(d.count)
                            })
                            .collect())
                    },
                ))
            }

            fn take_count<'a>(
                &'a self,
                counter: &'a $crate::store::CountDelta,
                limit: i64,
            ) -> $crate::store::StoreFuture<'a, Option<i64>> {
                Box::pin($crate::store::bounded(
                    $backend,
                    "take_count",
                    self.timeout,
                    async move {
                        Ok(sqlx::query_scalar($crate::store::sql::TAKE_COUNT)
                            .bind(&counter.name)
                            .bind(counter.window_start)
                            .bind(counter.expires_at)
                            .bind(limit)
                            .fetch_optional(&self.pool)
                            .await?)
                    },
                ))
            }

            fn get_client<'a>(
                &'a self,
                client_id: &'a str,
            ) -> $crate::store::StoreFuture<'a, Option<$crate::domain::client::Client>> {
                Box::pin($crate::store::bounded(
                    $backend,
                    "get_client",
                    self.timeout,
                    async move {
                        sqlx::query_as::<_, $crate::store::sql::ClientRow>(
                            $crate::store::sql::SELECT_CLIENT,
                        )
                        .bind(client_id)
                        .fetch_optional(&self.pool)
                        .await?
                        .map($crate::store::sql::ClientRow::into_client)
                        .transpose()
                    },
                ))
            }

            fn list_clients<'a>(
                &'a self,
                query: &'a $crate::domain::client::ClientQuery,
            ) -> $crate::store::StoreFuture<'a, Vec<$crate::domain::client::Client>> {
                Box::pin($crate::store::bounded(
                    $backend,
                    "list_clients",
                    self.timeout,
                    async move {
                        let (after, prefix, upper) = $crate::store::sql::id_range(query);
                        let rows = sqlx::query_as::<_, $crate::store::sql::ClientRow>(
                            $crate::store::sql::LIST_CLIENTS,
                        )
                        .bind(after)
                        .bind(prefix)
                        .bind(query.enabled)
                        .bind(
                            query
                                .scope
                                .as_deref()
                                .map($crate::store::sql::scope_pattern),
                        )
                        .bind(i64::from(query.limit))
                        .bind(upper)
                        .fetch_all(&self.pool)
                        .await?;
                        rows.into_iter()
                            .map($crate::store::sql::ClientRow::into_client)
                            .collect()
                    },
                ))
            }

            fn list_signing_keys(
                &self,
            ) -> $crate::store::StoreFuture<'_, Vec<$crate::store::StoredKey>> {
                Box::pin($crate::store::bounded(
                    $backend,
                    "list_signing_keys",
                    self.timeout,
                    async move {
                        let rows = sqlx::query_as::<_, $crate::store::sql::KeyRow>(
                            $crate::store::sql::LIST_KEYS,
                        )
                        .fetch_all(&self.pool)
                        .await?;
                        Ok(rows.into_iter().map(Into::into).collect())
                    },
                ))
            }

            fn revoke_token<'a>(
                &'a self,
                jti: &'a str,
                client_id: &'a str,
                expires_at: i64,
            ) -> $crate::store::StoreFuture<'a, ()> {
                Box::pin($crate::store::bounded(
                    $backend,
                    "revoke_token",
                    self.timeout,
                    async move {
                        sqlx::query($crate::store::sql::REVOKE_TOKEN)
                            .bind(jti)
                            .bind(client_id)
                            .bind(expires_at)
                            .execute(&self.pool)
                            .await?;
                        Ok(())
                    },
                ))
            }

            fn is_token_revoked<'a>(
                &'a self,
                jti: &'a str,
            ) -> $crate::store::StoreFuture<'a, bool> {
                Box::pin($crate::store::bounded(
                    $backend,
                    "is_token_revoked",
                    self.timeout,
                    async move {
                        let count: i64 = sqlx::query_scalar($crate::store::sql::IS_REVOKED)
                            .bind(jti)
                            .fetch_one(&self.pool)
                            .await?;
                        Ok(count > 0)
                    },
                ))
            }

            fn prune_expired(&self, now: i64) -> $crate::store::StoreFuture<'_, u64> {
                Box::pin($crate::store::bounded(
                    $backend,
                    "prune_expired",
                    self.timeout,
                    async move {
                        let mut pruned = 0;
                        for sql in [
                            $crate::store::sql::PRUNE_REVOKED,
                            $crate::store::sql::PRUNE_ASSERTIONS,
                        ] {
                            let done = sqlx::query(sql).bind(now).execute(&self.pool).await?;
                            pruned += done.rows_affected();
                        }
                        // Old change records and ended counter windows go
                        // too; they are not counted.
                        for sql in [
                            $crate::store::sql::PRUNE_CHANGES,
                            $crate::store::sql::PRUNE_COUNTERS,
                        ] {
                            sqlx::query(sql).bind(now).execute(&self.pool).await?;
                        }
                        Ok(pruned)
                    },
                ))
            }

            fn use_assertions<'a>(
                &'a self,
                batch: &'a [$crate::store::UsedAssertion],
            ) -> $crate::store::StoreFuture<'a, Vec<bool>> {
                Box::pin($crate::store::bounded(
                    $backend,
                    "use_assertions",
                    self.timeout,
                    async move {
                        if batch.is_empty() {
                            return Ok(Vec::new());
                        }
                        let sql = $crate::store::sql::use_assertions_sql(batch.len());
                        let mut query = sqlx::query_as::<_, (String, String)>(&sql);
                        for used in batch {
                            query = query
                                .bind(&used.client_id)
                                .bind(&used.jti)
                                .bind(used.expires_at);
                        }
                        let inserted = query.fetch_all(&self.pool).await?;
                        let inserted: std::collections::HashSet<(&str, &str)> = inserted
                            .iter()
                            .map(|(c, j)| (c.as_str(), j.as_str()))
                            .collect();
                        Ok(batch
                            .iter()
                            .map(|u| inserted.contains(&(u.client_id.as_str(), u.jti.as_str())))
                            .collect())
                    },
                ))
            }

            fn find_federated_client<'a>(
                &'a self,
                issuer_id: &'a str,
                subject: &'a str,
            ) -> $crate::store::StoreFuture<'a, Option<String>> {
                Box::pin($crate::store::bounded(
                    $backend,
                    "find_federated_client",
                    self.timeout,
                    async move {
                        Ok(sqlx::query_scalar($crate::store::sql::FIND_IDENTITY)
                            .bind(issuer_id)
                            .bind(subject)
                            .fetch_optional(&self.pool)
                            .await?)
                    },
                ))
            }

            fn list_issuers(
                &self,
            ) -> $crate::store::StoreFuture<'_, Vec<$crate::domain::issuer::TrustedIssuer>> {
                Box::pin($crate::store::bounded(
                    $backend,
                    "list_issuers",
                    self.timeout,
                    async move {
                        sqlx::query_as::<_, $crate::store::sql::IssuerRow>(
                            $crate::store::sql::LIST_ISSUERS,
                        )
                        .fetch_all(&self.pool)
                        .await?
                        .into_iter()
                        .map($crate::store::sql::IssuerRow::into_issuer)
                        .collect()
                    },
                ))
            }

            fn changes_since(
                &self,
                after: i64,
            ) -> $crate::store::StoreFuture<'_, Vec<$crate::store::Change>> {
                Box::pin($crate::store::bounded(
                    $backend,
                    "changes_since",
                    self.timeout,
                    async move {
                        let rows: Vec<(i64, String, String)> =
                            sqlx::query_as($crate::store::sql::CHANGES_SINCE)
                                .bind(after)
                                .fetch_all(&self.pool)
                                .await?;
                        Ok(rows
                            .into_iter()
                            .map(|(id, kind, subject)| $crate::store::Change { id, kind, subject })
                            .collect())
                    },
                ))
            }

            fn last_change(&self) -> $crate::store::StoreFuture<'_, i64> {
                Box::pin($crate::store::bounded(
                    $backend,
                    "last_change",
                    self.timeout,
                    async move {
                        let (id,): (i64,) = sqlx::query_as($crate::store::sql::LAST_CHANGE)
                            .fetch_one(&self.pool)
                            .await?;
                        Ok(id)
                    },
                ))
            }

        }
    };
}

pub(crate) use impl_sql_store;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_is_a_key_range() {
        let query = |after: Option<&str>, prefix: Option<&str>| ClientQuery {
            after: after.map(str::to_owned),
            prefix: prefix.map(str::to_owned),
            limit: 10,
            ..ClientQuery::default()
        };
        let all = query(None, None);
        let (after, prefix, upper) = id_range(&all);
        assert_eq!((after, prefix, upper.as_str()), ("", "", "\x7f"));
        let page = query(Some("svc-3"), Some("svc-"));
        let (after, prefix, upper) = id_range(&page);
        assert_eq!((after, prefix, upper.as_str()), ("svc-3", "svc-", "svc."));
        let (_, _, upper) = id_range(&query(None, Some("a~")));
        assert_eq!(upper, "a\x7f", "the highest printable character");
    }
}
