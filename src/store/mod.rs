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
use std::path::PathBuf;
use std::pin::Pin;
use std::time::Duration;

use crate::domain::Secret;
use crate::domain::client::{Client, ClientQuery};
use crate::domain::issuer::TrustedIssuer;
use crate::fault::{Cause, Fault};

mod assertion_ledger;
mod cached;
mod postgres;
mod sql;
mod sqlite;

pub use assertion_ledger::{AssertionLedger, UsedAssertion};
pub use cached::{CLIENT_CACHE_TTL, CachedClients};
pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

/// Which database, from `DATABASE_URL`.
#[derive(Debug)]
pub enum Database {
    Postgres { url: Secret },
    Sqlite { path: PathBuf },
}

#[derive(Debug, Clone)]
pub struct PoolSettings {
    /// PostgreSQL connections per instance.
    pub max_connections: u32,
    /// Seconds a request waits for a connection.
    pub acquire_timeout_secs: u64,
    /// Seconds one database operation may take.
    pub query_timeout_secs: u64,
}

pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// What tokenmint keeps: clients, trusted issuers and signing keys; per
/// token, only revocations and used assertion ids, each until it expires.
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
    /// A page of clients in id order (see `ClientQuery`); the last one's id
    /// is the cursor of the next page.
    fn list_clients<'a>(&'a self, query: &'a ClientQuery) -> StoreFuture<'a, Vec<Client>>;
    /// Replaces every mutable field if the stored row is still at
    /// `client.revision` (and bumps it); `false` when the client does not
    /// exist or was written since it was read.
    fn update_client<'a>(&'a self, client: &'a Client) -> StoreFuture<'a, bool>;
    /// `false` when the client does not exist.
    fn delete_client<'a>(&'a self, client_id: &'a str) -> StoreFuture<'a, bool>;

    fn insert_signing_key<'a>(&'a self, key: &'a StoredKey) -> StoreFuture<'a, ()>;
    /// Every key, oldest activation first, with its revocation if any.
    fn list_signing_keys(&self) -> StoreFuture<'_, Vec<StoredKey>>;
    /// Withdraws a key (compromise); revoking twice keeps the first time.
    fn revoke_signing_key<'a>(&'a self, kid: &'a str, at: i64) -> StoreFuture<'a, ()>;

    /// Records a revoked token until `expires_at`; revoking twice is fine.
    fn revoke_token<'a>(
        &'a self,
        jti: &'a str,
        client_id: &'a str,
        expires_at: i64,
    ) -> StoreFuture<'a, ()>;
    fn is_token_revoked<'a>(&'a self, jti: &'a str) -> StoreFuture<'a, bool>;
    /// Forgets revocations and used assertion ids whose tokens have
    /// expired; returns how many. Change records older than an hour go too,
    /// uncounted.
    fn prune_expired(&self, now: i64) -> StoreFuture<'_, u64>;

    /// Records `private_key_jwt` assertion ids, each until its
    /// `expires_at`; for each, `false` when its client had used it before
    /// (a replay). The ids in one call are distinct. Callers go through
    /// `AssertionLedger`, which batches them.
    fn use_assertions<'a>(&'a self, batch: &'a [UsedAssertion]) -> StoreFuture<'a, Vec<bool>>;
    /// The client bound to this subject of the trusted issuer with this id
    /// (`TrustedIssuer::id`), if any.
    fn find_federated_client<'a>(
        &'a self,
        issuer_id: &'a str,
        subject: &'a str,
    ) -> StoreFuture<'a, Option<String>>;

    /// Fails with `StoreError::Conflict` when the name or the `iss` exists.
    fn insert_issuer<'a>(&'a self, issuer: &'a TrustedIssuer) -> StoreFuture<'a, ()>;
    fn list_issuers(&self) -> StoreFuture<'_, Vec<TrustedIssuer>>;
    /// `false` when there is no such issuer.
    fn delete_issuer<'a>(&'a self, name: &'a str) -> StoreFuture<'a, bool>;
    /// The changes recorded after `after` (at most 1,000, oldest first):
    /// how instances learn what other instances and processes wrote.
    fn changes_since(&self, after: i64) -> StoreFuture<'_, Vec<Change>>;
    /// The id of the newest change (0 if none).
    fn last_change(&self) -> StoreFuture<'_, i64>;
    /// Wakes `wake` whenever a change is recorded, for as long as it runs
    /// (Postgres: LISTEN), and keeps `listening` true while it can; returns
    /// at once where the store cannot (SQLite: changes are polled).
    fn listen(
        &self,
        _wake: std::sync::Arc<tokio::sync::Notify>,
        _listening: std::sync::Arc<std::sync::atomic::AtomicBool>,
    ) -> StoreFuture<'_, ()> {
        Box::pin(async { Ok(()) })
    }
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
    /// When the key was withdrawn, if it was: it then neither signs, nor is
    /// published, nor verifies anything.
    pub revoked_at: Option<i64>,
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

/// A change recorded in the store (`changes`): `kind` is `client` (the
/// subject is its id), `issuer` or `keys`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub id: i64,
    pub kind: String,
    pub subject: String,
}

/// Unix seconds, for the rows the store stamps itself.
pub(crate) fn unix_seconds() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached (refused, pool exhausted, I/O): the
    /// request may succeed if retried.
    #[error("the database is unavailable")]
    Unavailable(#[source] Cause),
    /// The database did not answer within the operation's deadline.
    #[error("the database did not answer within {0:?}")]
    TimedOut(Duration),
    /// A unique key already exists.
    #[error("already exists")]
    Conflict,
    /// A stored value does not parse: a bug or tampering, never user input.
    #[error("corrupt stored value: {0}")]
    Corrupt(String),
    /// Anything else from the driver.
    #[error("database error")]
    Database(#[source] Cause),
}

impl StoreError {
    /// The same failure again, for each of several callers it failed (the
    /// causes are not `Clone`; their text is kept).
    pub fn duplicate(&self) -> Self {
        match self {
            Self::Unavailable(cause) => Self::Unavailable(cause.to_string().into()),
            Self::TimedOut(limit) => Self::TimedOut(*limit),
            Self::Conflict => Self::Conflict,
            Self::Corrupt(what) => Self::Corrupt(what.clone()),
            Self::Database(cause) => Self::Database(cause.to_string().into()),
        }
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => Self::Unavailable(e.into()),
            sqlx::Error::Database(ref db) if db.is_unique_violation() => Self::Conflict,
            other => Self::Database(other.into()),
        }
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        match e {
            sqlx::migrate::MigrateError::Execute(inner) => inner.into(),
            other => Self::Database(other.into()),
        }
    }
}

/// Unreachable or slow is worth a retry (503); anything else is our fault (500).
impl From<StoreError> for Fault {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(_) | StoreError::TimedOut(_) => Fault::unavailable(e),
            other => Fault::internal(other),
        }
    }
}

/// Runs one store operation with a deadline: a database that stops
/// answering (a dropped network, a hung server) becomes `Unavailable` — a
/// 503 for the caller — instead of a request that hangs. Each operation is
/// a debug-level span (a database client span when traces are exported).
pub(crate) async fn bounded<T>(
    backend: &'static str,
    name: &'static str,
    limit: std::time::Duration,
    operation: impl Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    use tracing::Instrument as _;
    let system = if backend == "postgres" {
        "postgresql"
    } else {
        backend
    };
    // Only inside a request (or another span): the key refresh every
    // second would otherwise export a root span of its own each time.
    let span = if tracing::Span::current().is_none() {
        tracing::Span::none()
    } else {
        tracing::debug_span!(
            "db",
            otel.name = name,
            otel.kind = "client",
            db.system.name = system,
            db.operation.name = name
        )
    };
    tokio::time::timeout(limit, operation)
        .instrument(span)
        .await
        .unwrap_or(Err(StoreError::TimedOut(limit)))
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
