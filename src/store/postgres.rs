//! PostgreSQL: the production store, shared by every instance.

use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgListener, PgPool, PgPoolOptions};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::Notify;

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

/// The channel the `changes` trigger notifies (migration 0008).
const CHANNEL: &str = "tokenmint_changes";

impl_sql_store!(PostgresStore, "postgres", MIGRATOR, {
    /// LISTENs on its own connection, reconnecting after a second when it
    /// drops; `listening` is false meanwhile (the follower then polls).
    fn listen(&self, wake: Arc<Notify>, listening: Arc<AtomicBool>) -> super::StoreFuture<'_, ()> {
        Box::pin(async move {
            loop {
                match PgListener::connect_with(&self.pool).await {
                    Ok(mut listener) => {
                        if listener.listen(CHANNEL).await.is_ok() {
                            listening.store(true, Ordering::Release);
                            tracing::info!("listening for changes made by other instances");
                            // Anything written while we were not listening.
                            wake.notify_one();
                            // `try_recv` says when the connection dropped
                            // (`recv` would reconnect silently, and what was
                            // notified meanwhile would be lost unnoticed).
                            while let Ok(Some(_)) = listener.try_recv().await {
                                wake.notify_one();
                            }
                        }
                        listening.store(false, Ordering::Release);
                        // The follower may be in its long wait: it must
                        // start polling now, not after it.
                        wake.notify_one();
                        tracing::warn!(
                            "the change notifications stopped; polling until they are back"
                        );
                    }
                    Err(e) => {
                        listening.store(false, Ordering::Release);
                        tracing::debug!(error = %e, "cannot listen for changes yet");
                    }
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        })
    }
});
