//! Persistence behind one small trait, with a PostgreSQL implementation (the
//! production store) and an embedded SQLite one (the zero-configuration
//! default). This module is the only place that contains SQL.
//!
//! Both implementations run the same SQL text (`sql.rs`): SQLite accepts
//! `$N` placeholders, `RETURNING` and `ON CONFLICT`, so one dialect serves
//! both, and each backend only says how to connect and which migrations to
//! run. Times are Unix seconds in `BIGINT`/`INTEGER` columns, and lists are
//! space-delimited text (scope tokens and audiences cannot contain spaces), so
//! that both databases hold the same values.

use std::future::Future;
use std::pin::Pin;

use crate::clients::Client;
use crate::config::{Database, PoolSettings};

mod cached;
mod postgres;
mod sql;
mod sqlite;

pub use cached::{CLIENT_CACHE_TTL, CachedClients};
pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// What tokenmint keeps: clients and signing keys. Nothing is stored per
/// issued token.
pub trait Store: Send + Sync + 'static {
    /// `"postgres"` or `"sqlite"`, for logs and readiness output.
    fn backend(&self) -> &'static str;
    /// Applies pending migrations.
    fn migrate(&self) -> StoreFuture<'_, ()>;
    /// A cheap round trip, for readiness.
    fn ping(&self) -> StoreFuture<'_, ()>;

    /// Fails with `StoreError::Conflict` when the id exists.
    fn insert_client<'a>(&'a self, client: &'a Client) -> StoreFuture<'a, ()>;
    fn get_client<'a>(&'a self, client_id: &'a str) -> StoreFuture<'a, Option<Client>>;
    fn list_clients(&self) -> StoreFuture<'_, Vec<Client>>;
    /// Replaces every mutable field; `false` when the client does not exist.
    fn update_client<'a>(&'a self, client: &'a Client) -> StoreFuture<'a, bool>;
    /// `false` when the client does not exist.
    fn delete_client<'a>(&'a self, client_id: &'a str) -> StoreFuture<'a, bool>;

    fn insert_signing_key<'a>(&'a self, key: &'a StoredKey) -> StoreFuture<'a, ()>;
    /// Every key, oldest activation first.
    fn list_signing_keys(&self) -> StoreFuture<'_, Vec<StoredKey>>;

    /// Records a revoked token until `expires_at`; revoking twice is fine.
    fn revoke_token<'a>(
        &'a self,
        jti: &'a str,
        client_id: &'a str,
        expires_at: i64,
    ) -> StoreFuture<'a, ()>;
    fn is_token_revoked<'a>(&'a self, jti: &'a str) -> StoreFuture<'a, bool>;
    /// Forgets revocations of tokens that have expired; returns how many.
    fn prune_revoked_tokens(&self, now: i64) -> StoreFuture<'_, u64>;
}

/// A signing key as stored: the private part sealed under the KEK.
#[derive(Clone)]
pub struct StoredKey {
    pub kid: String,
    pub alg: String,
    /// `nonce || AES-256-GCM(pkcs8) || tag`, associated data = kid.
    pub sealed_private_key: Vec<u8>,
    /// The public JWK, as JSON text.
    pub public_jwk: String,
    pub created_at: i64,
    /// When the key starts signing (rotation pre-publishes keys). A key stops
    /// signing when the next key activates.
    pub activates_at: i64,
}

impl std::fmt::Debug for StoredKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("activates_at", &self.activates_at)
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
pub enum StoreError {
    /// The database cannot be reached (refused, timed out, pool exhausted):
    /// the request may succeed if retried.
    Unavailable(String),
    /// A unique key already exists.
    Conflict,
    /// A stored value does not parse: a bug or tampering, never user input.
    Corrupt(String),
    /// Anything else from the driver.
    Other(String),
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unavailable(e) => write!(f, "database unavailable: {e}"),
            Self::Conflict => f.write_str("already exists"),
            Self::Corrupt(e) => write!(f, "corrupt stored value: {e}"),
            Self::Other(e) => write!(f, "database error: {e}"),
        }
    }
}

impl std::error::Error for StoreError {}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => Self::Unavailable(e.to_string()),
            sqlx::Error::Database(ref db) if db.is_unique_violation() => Self::Conflict,
            other => Self::Other(other.to_string()),
        }
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        match e {
            sqlx::migrate::MigrateError::Execute(inner) => inner.into(),
            other => Self::Other(other.to_string()),
        }
    }
}

/// Runs one store operation with a deadline: a database that stops
/// answering (a dropped network, a hung server) becomes `Unavailable` — a
/// 503 for the caller — instead of a request that hangs.
pub(crate) async fn bounded<T>(
    limit: std::time::Duration,
    operation: impl Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    tokio::time::timeout(limit, operation)
        .await
        .unwrap_or_else(|_| {
            Err(StoreError::Unavailable(
                "the database did not answer in time".to_owned(),
            ))
        })
}

/// Opens the store a `DATABASE_URL` names: `postgres://` / `postgresql://`
/// for PostgreSQL, `sqlite:` for a SQLite file.
pub async fn connect(
    database: &Database,
    pool: &PoolSettings,
) -> Result<Box<dyn Store>, StoreError> {
    Ok(match database {
        Database::Postgres { url } => Box::new(PostgresStore::connect(url.expose(), pool).await?),
        Database::Sqlite { path } => Box::new(SqliteStore::open(path, pool).await?),
    })
}
