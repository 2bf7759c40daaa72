//! PostgreSQL: the production store, shared by every instance.

use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgPool, PgPoolOptions};

use super::PoolSettings;
use super::StoreError;
use super::sql::impl_sql_store;

static MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

pub struct PostgresStore {
    pool: PgPool,
    /// Deadline of each operation (see `store::bounded`).
    timeout: Duration,
}

impl PostgresStore {
    pub async fn connect(url: &str, settings: &PoolSettings) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(settings.max_connections)
            // A request must fail fast (503) rather than queue forever when
            // the database is gone.
            .acquire_timeout(Duration::from_secs(settings.acquire_timeout_secs))
            .connect(url)
            .await?;
        Ok(Self {
            pool,
            timeout: Duration::from_secs(settings.query_timeout_secs),
        })
    }
}

impl_sql_store!(PostgresStore, "postgres", MIGRATOR);
