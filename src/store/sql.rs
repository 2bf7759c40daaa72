//! The SQL both backends run, and the row types it reads into.

use sqlx::FromRow;

use super::{StoreError, StoredKey};
use crate::domain::client::{Client, PreviousSecret, SecretHashes};
use crate::domain::scope::Scope;

pub const INSERT_CLIENT: &str = "INSERT INTO clients (client_id, secret_hash, previous_secret_hash, \
     previous_secret_expires_at, scopes, default_scopes, audiences, default_audience, grant_types, \
     token_ttl, enabled, created_at, updated_at, tokens_valid_after) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)";
pub const UPDATE_CLIENT: &str = "UPDATE clients SET secret_hash = $2, previous_secret_hash = $3, \
     previous_secret_expires_at = $4, scopes = $5, default_scopes = $6, audiences = $7, \
     default_audience = $8, grant_types = $9, token_ttl = $10, enabled = $11, updated_at = $13, \
     tokens_valid_after = $14 \
     WHERE client_id = $1 AND created_at = $12";
pub const SELECT_CLIENT: &str = "SELECT * FROM clients WHERE client_id = $1";
pub const LIST_CLIENTS: &str = "SELECT * FROM clients ORDER BY client_id";
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
}

impl ClientRow {
    pub fn from_client(c: &Client) -> Self {
        Self {
            client_id: c.client_id.clone(),
            secret_hash: c.secrets.current.clone(),
            previous_secret_hash: c.secrets.previous.as_ref().map(|p| p.hash.clone()),
            previous_secret_expires_at: c.secrets.previous.as_ref().map(|p| p.expires_at),
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
        Ok(Client {
            secrets: SecretHashes {
                current: self.secret_hash,
                previous,
            },
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

fn split_list(s: &str) -> Vec<String> {
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

/// `sql` with a client's columns bound as `$1`…`$14`, in `ClientRow` order
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
    }};
}
pub(crate) use client_query;

/// Implements `Store` for a backend struct with a `pool` field, running the
/// shared SQL above. Written as a macro because sqlx's generic-executor bounds
/// would cost more lines, and be harder to read, than the body itself.
macro_rules! impl_sql_store {
    ($store:ty, $backend:literal, $migrator:expr) => {
        impl $crate::store::Store for $store {
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

            fn insert_client<'a>(
                &'a self,
                client: &'a $crate::domain::client::Client,
            ) -> $crate::store::StoreFuture<'a, ()> {
                Box::pin($crate::store::bounded(
                    $backend,
                    "insert_client",
                    self.timeout,
                    async move {
                        $crate::store::sql::client_query!(
                            $crate::store::sql::INSERT_CLIENT,
                            client
                        )
                        .execute(&self.pool)
                        .await?;
                        Ok(())
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

            fn list_clients(
                &self,
            ) -> $crate::store::StoreFuture<'_, Vec<$crate::domain::client::Client>> {
                Box::pin($crate::store::bounded(
                    $backend,
                    "list_clients",
                    self.timeout,
                    async move {
                        sqlx::query_as::<_, $crate::store::sql::ClientRow>(
                            $crate::store::sql::LIST_CLIENTS,
                        )
                        .fetch_all(&self.pool)
                        .await?
                        .into_iter()
                        .map($crate::store::sql::ClientRow::into_client)
                        .collect()
                    },
                ))
            }

            fn update_client<'a>(
                &'a self,
                client: &'a $crate::domain::client::Client,
            ) -> $crate::store::StoreFuture<'a, bool> {
                Box::pin($crate::store::bounded(
                    $backend,
                    "update_client",
                    self.timeout,
                    async move {
                        let done = $crate::store::sql::client_query!(
                            $crate::store::sql::UPDATE_CLIENT,
                            client
                        )
                        .execute(&self.pool)
                        .await?;
                        Ok(done.rows_affected() == 1)
                    },
                ))
            }

            fn delete_client<'a>(
                &'a self,
                client_id: &'a str,
            ) -> $crate::store::StoreFuture<'a, bool> {
                Box::pin($crate::store::bounded(
                    $backend,
                    "delete_client",
                    self.timeout,
                    async move {
                        let done = sqlx::query($crate::store::sql::DELETE_CLIENT)
                            .bind(client_id)
                            .execute(&self.pool)
                            .await?;
                        Ok(done.rows_affected() == 1)
                    },
                ))
            }

            fn insert_signing_key<'a>(
                &'a self,
                key: &'a $crate::store::StoredKey,
            ) -> $crate::store::StoreFuture<'a, ()> {
                Box::pin($crate::store::bounded(
                    $backend,
                    "insert_signing_key",
                    self.timeout,
                    async move {
                        sqlx::query($crate::store::sql::INSERT_KEY)
                            .bind(&key.kid)
                            .bind(&key.alg)
                            .bind(&key.sealed_private_key)
                            .bind(&key.public_jwk)
                            .bind(key.created_at)
                            .bind(key.activates_at)
                            .execute(&self.pool)
                            .await?;
                        Ok(())
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

            fn revoke_signing_key<'a>(
                &'a self,
                kid: &'a str,
                at: i64,
            ) -> $crate::store::StoreFuture<'a, ()> {
                Box::pin($crate::store::bounded(
                    $backend,
                    "revoke_signing_key",
                    self.timeout,
                    async move {
                        sqlx::query($crate::store::sql::REVOKE_KEY)
                            .bind(kid)
                            .bind(at)
                            .execute(&self.pool)
                            .await?;
                        Ok(())
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

            fn prune_revoked_tokens(&self, now: i64) -> $crate::store::StoreFuture<'_, u64> {
                Box::pin($crate::store::bounded(
                    $backend,
                    "prune_revoked_tokens",
                    self.timeout,
                    async move {
                        let done = sqlx::query($crate::store::sql::PRUNE_REVOKED)
                            .bind(now)
                            .execute(&self.pool)
                            .await?;
                        Ok(done.rows_affected())
                    },
                ))
            }
        }
    };
}

pub(crate) use impl_sql_store;
