//! SQLite: the embedded default, one file in the data folder, so that a new
//! user needs no database server.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use super::PoolSettings;
use super::StoreError;
use super::sql::impl_sql_store;

#[derive(Debug, thiserror::Error)]
#[error("cannot create the folder {}", .0.display())]
struct CreateDir(PathBuf, #[source] std::io::Error);

#[derive(Debug, thiserror::Error)]
#[error("cannot create the database file {}", .0.display())]
struct CreateFile(PathBuf, #[source] std::io::Error);

/// Creates the database file readable by its owner only, when it does not
/// exist yet: it holds secret hashes and sealed keys. SQLite gives its WAL
/// and shared-memory files the database file's permissions.
#[cfg(unix)]
fn create_private(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        // An existing file others may read (copied in, made by an older
        // version) is made the owner's alone.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(path)?.permissions().mode();
            if mode & 0o077 != 0 {
                tracing::warn!(path = %path.display(), "the database file was readable by others; made it the owner's only");
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o700))?;
            }
            Ok(())
        }
        Err(e) => Err(e),
    }
}

#[cfg(not(unix))]
fn create_private(_path: &Path) -> std::io::Result<()> {
    Ok(())
}

static MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");

pub struct SqliteStore {
    pool: SqlitePool,
    /// Deadline of each operation (see `store::bounded`).
    timeout: Duration,
}

impl SqliteStore {
    pub async fn open(path: &Path, settings: &PoolSettings) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError::Unavailable(CreateDir(dir.to_owned(), e).into()))?;
        }
        create_private(path)
            .map_err(|e| StoreError::Unavailable(CreateFile(path.to_owned(), e).into()))?;
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            // WAL lets readers (every token request) proceed while a CLI
            // command writes; the busy timeout makes writers wait, not fail.
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5))
            // 8 MiB of pages per connection (SQLite's default is 2 MiB): a
            // cold client's row is then read from memory, not the OS, in a
            // store of a million clients. Filled only as pages are read.
            .pragma("cache_size", "-8192");
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(settings.acquire_timeout_secs))
            .connect_with(options)
            .await?;
        Ok(Self {
            pool,
            timeout: Duration::from_secs(settings.query_timeout_secs),
        })
    }
}

impl_sql_store!(SqliteStore, "sqlite", MIGRATOR);
