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
mod shared_counts;
mod sql;
mod sqlite;

pub use assertion_ledger::{AssertionLedger, UsedAssertion};
pub use cached::{CLIENT_CACHE_TTL, CachedClients};
pub use postgres::PostgresStore;
pub use shared_counts::{SharedCounts, Window};
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

    /// Applies administrative writes and their audit records as one
    /// transaction: all of them, or — when one fails — none. A write that
    /// finds nothing to change (an update over a stale revision, a delete of
    /// a missing row) fails with `StoreError::NotApplied`; a duplicate key
    /// with `StoreError::Conflict`. Each write also records a change for
    /// the other instances (`changes_since`).
    fn write<'a>(&'a self, writes: &'a [Write<'a>], audit: &'a [AuditEntry])
    -> StoreFuture<'a, ()>;

    /// Fails with `StoreError::Conflict` when the id exists.
    fn insert_client<'a>(
        &'a self,
        client: &'a Client,
        audit: Option<&'a AuditEntry>,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            self.write(&[Write::InsertClient(client)], slice(audit))
                .await
        })
    }
    fn get_client<'a>(&'a self, client_id: &'a str) -> StoreFuture<'a, Option<Client>>;
    /// A page of clients in id order (see `ClientQuery`); the last one's id
    /// is the cursor of the next page.
    fn list_clients<'a>(&'a self, query: &'a ClientQuery) -> StoreFuture<'a, Vec<Client>>;
    /// Replaces every mutable field if the stored row is still at
    /// `client.revision` (and bumps it); `false` when the client does not
    /// exist or was written since it was read.
    fn update_client<'a>(
        &'a self,
        client: &'a Client,
        audit: Option<&'a AuditEntry>,
    ) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            applied(
                self.write(&[Write::UpdateClient(client)], slice(audit))
                    .await,
            )
        })
    }
    /// `false` when the client does not exist.
    fn delete_client<'a>(
        &'a self,
        client_id: &'a str,
        audit: Option<&'a AuditEntry>,
    ) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            applied(
                self.write(&[Write::DeleteClient(client_id)], slice(audit))
                    .await,
            )
        })
    }

    fn insert_signing_key<'a>(
        &'a self,
        key: &'a StoredKey,
        audit: Option<&'a AuditEntry>,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move { self.write(&[Write::InsertKey(key)], slice(audit)).await })
    }
    /// Every key, oldest activation first, with its revocation if any.
    fn list_signing_keys(&self) -> StoreFuture<'_, Vec<StoredKey>>;
    /// Withdraws a key (compromise); revoking twice keeps the first time.
    fn revoke_signing_key<'a>(
        &'a self,
        kid: &'a str,
        at: i64,
        audit: Option<&'a AuditEntry>,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            self.write(&[Write::RevokeKey { kid, at }], slice(audit))
                .await
        })
    }

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
    fn insert_issuer<'a>(
        &'a self,
        issuer: &'a TrustedIssuer,
        audit: Option<&'a AuditEntry>,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            self.write(&[Write::InsertIssuer(issuer)], slice(audit))
                .await
        })
    }
    fn list_issuers(&self) -> StoreFuture<'_, Vec<TrustedIssuer>>;
    /// `false` when there is no such issuer.
    fn delete_issuer<'a>(
        &'a self,
        name: &'a str,
        audit: Option<&'a AuditEntry>,
    ) -> StoreFuture<'a, bool> {
        Box::pin(
            async move { applied(self.write(&[Write::DeleteIssuer(name)], slice(audit)).await) },
        )
    }

    /// A page of the audit trail, newest first.
    fn list_audit<'a>(&'a self, query: &'a AuditQuery) -> StoreFuture<'a, Vec<AuditRecord>>;
    /// Forgets audit records made before `before`; returns how many.
    fn prune_audit(&self, before: i64) -> StoreFuture<'_, u64>;

    /// Adds each count to its shared counter (created at zero) and returns
    /// the totals, in the order given. The names in one call are distinct.
    fn add_counts<'a>(&'a self, batch: &'a [CountDelta]) -> StoreFuture<'a, Vec<i64>>;
    /// Adds one to a shared counter if it is below `limit`: the new total,
    /// or `None` when it is at the limit already.
    fn take_count<'a>(
        &'a self,
        counter: &'a CountDelta,
        limit: i64,
    ) -> StoreFuture<'a, Option<i64>>;
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

/// One administrative write (see `Store::write`).
#[derive(Debug, Clone, Copy)]
pub enum Write<'a> {
    InsertClient(&'a Client),
    /// Applies only over the stored `revision` (see `update_client`).
    UpdateClient(&'a Client),
    DeleteClient(&'a str),
    InsertIssuer(&'a TrustedIssuer),
    DeleteIssuer(&'a str),
    InsertKey(&'a StoredKey),
    RevokeKey {
        kid: &'a str,
        at: i64,
    },
}

/// One entry of the audit trail, as written: who did what to which client,
/// issuer or key, and the names of the fields it changed — never a value,
/// so never a secret or a hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// The admin client's id, `cli:` and the OS user, or `apply:` and the file.
    pub actor: String,
    /// `client.create`, `key.revoke`, …
    pub action: &'static str,
    /// The client id, `issuer:` + name, or `key:` + kid.
    pub target: String,
    pub fields: Vec<String>,
}

impl AuditEntry {
    pub fn new(actor: &str, action: &'static str, target: &str, fields: &[&str]) -> Self {
        Self {
            actor: actor.to_owned(),
            action,
            target: target.to_owned(),
            fields: fields.iter().map(|f| (*f).to_owned()).collect(),
        }
    }
}

/// Who changes made by tokenmint itself are recorded as (the first signing
/// key, automatic rotation).
pub const SYSTEM_ACTOR: &str = "tokenmint";

/// An audit entry as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    pub id: i64,
    /// Unix seconds.
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub fields: Vec<String>,
}

/// A page of the audit trail: entries older than the `before` id (the
/// cursor), for one target, since a time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    pub target: Option<String>,
    pub since: Option<i64>,
    pub before: Option<i64>,
    pub limit: u32,
}

/// A count to add to a shared counter: `name` in the window starting at
/// `window_start`, forgotten after `expires_at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CountDelta {
    pub name: String,
    pub window_start: i64,
    pub expires_at: i64,
    pub count: i64,
}

fn slice<T>(one: Option<&T>) -> &[T] {
    one.map(std::slice::from_ref).unwrap_or_default()
}

/// A single write's outcome as the boolean its method promises.
fn applied(result: Result<(), StoreError>) -> Result<bool, StoreError> {
    match result {
        Ok(()) => Ok(true),
        Err(StoreError::NotApplied) => Ok(false),
        Err(e) => Err(e),
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
    /// A write found nothing to change: no such row, or one written since
    /// it was read.
    #[error("nothing to change: the row is gone or was changed meanwhile")]
    NotApplied,
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
            Self::NotApplied => Self::NotApplied,
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
