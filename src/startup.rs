//! Building and running the server: `Application::build` opens the store,
//! applies migrations, opens the signing keys and binds the listener;
//! `run_until_stopped` serves until the shutdown future completes. Tests use
//! the same two calls with a listener on port 0.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::http::HeaderName;
use tokio::net::TcpListener;

use crate::clock::unix_now;
use crate::config::{Config, ConfigError, Database};
use crate::crypto::{KeyEncryptionKey, SecretHasher, VerifiedSecrets};
use crate::fault::{Cause, chain};
use crate::http::{AppState, MtlsSettings, Surface, router, serve};
use crate::key_fetch::{FetchSettings, KeyFetcher};
use crate::keys::{KeyError, KeyRing, KeySettings, REFRESH_INTERVAL};
use crate::metrics::Metrics;
use crate::net::{ConnectionLimit, TcpAccept};
use crate::oauth::dpop::DpopVerifier;
use crate::oauth::metadata::TOKEN_PATH;
use crate::oauth::throttle::Throttle;
use crate::oauth::{AssertionAuthenticator, AssertionSettings, ClientAuthenticator, TokenService};
use crate::store::{self, CLIENT_CACHE_TTL, CachedClients, SharedCounts, Store, StoreError};
use crate::tls::TlsListener;

/// Verifications that may wait for an argon2 slot. Callers with failures on
/// record hold at most a few of these places, and every address at most one
/// clean place, so this is about how many distinct addresses may ask at
/// once before any is told 503 (`crypto::Lane`).
const ARGON2_QUEUE: usize = 256;

/// Remembered (client, secret) pairs; only successful verifications are
/// inserted, so this is about the number of live clients.
const VERIFIED_CACHE_ENTRIES: usize = 10_000;

/// Name of the generated key-encryption key in the data folder.
const KEK_FILE: &str = "key-encryption-key";

/// Why the server (or a CLI command) could not start. Each variant keeps its
/// cause as `source`; `main` prints the whole chain.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot open the store")]
    Store(#[from] StoreError),
    #[error("cannot open the signing keys")]
    Keys(#[from] KeyError),
    #[error("{what}")]
    Io {
        what: String,
        #[source]
        cause: Cause,
    },
}

impl StartupError {
    fn io(what: impl Into<String>, cause: impl Into<Cause>) -> Self {
        Self::Io {
            what: what.into(),
            cause: cause.into(),
        }
    }
}

pub struct Application {
    listener: TcpListener,
    /// Set when serving HTTPS.
    tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
    /// The admin API's own listener, when `admin_listen` is set.
    admin_listener: Option<TcpListener>,
    /// `/metrics` on a listener of its own, when `metrics_listen` is set
    /// (and differs from `admin_listen`).
    metrics_listener: Option<TcpListener>,
    address: SocketAddr,
    issuer: String,
    state: AppState,
    /// The client-row cache, which `follow_changes` keeps in step.
    clients: Arc<CachedClients>,
    /// Quota and throttle counts, added to the store in batches.
    counts: Arc<SharedCounts>,
    /// Seconds audit entries are kept.
    audit_retention: u64,
    connections: ConnectionLimit,
    header_read_timeout: Duration,
    drain_delay: Duration,
}

impl Application {
    /// Opens everything the server needs and binds `config.listen`.
    pub async fn build(config: &Config, migrate: bool) -> Result<Self, StartupError> {
        let store = open_store(config, migrate).await?;
        if let Some(file) = &config.apply_file {
            apply_at_start(store.as_ref(), file).await?;
        }
        let keys = Arc::new(open_key_ring(config, store.clone()).await?);
        // Every reader and writer of clients in the server goes through the
        // cache, so this instance's own changes are seen at once.
        let clients = Arc::new(CachedClients::new(store, CLIENT_CACHE_TTL));
        let store: Arc<dyn Store> = clients.clone();
        let tls = match &config.tls {
            Some(files) => Some(crate::tls::server_config(&files.cert, &files.key).map_err(|e| {
                StartupError::Config(ConfigError(format!("invalid setting tls_cert/tls_key (TOKENMINT_TLS_CERT/TOKENMINT_TLS_KEY): {e}")))
            })?),
            None => None,
        };
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|e| StartupError::io(format!("cannot listen on {}", config.listen), e))?;
        let address = listener
            .local_addr()
            .map_err(|e| StartupError::io("cannot read the bound address", e))?;
        let issuer = config.issuer.clone().unwrap_or_else(|| {
            format!(
                "{}://{address}",
                if tls.is_some() { "https" } else { "http" }
            )
        });
        if config.trusted_proxies.trusts_everyone() {
            tracing::warn!(
                "TOKENMINT_TRUSTED_PROXIES trusts every address: any caller can name any other, and lock it out of the per-address limits"
            );
        }
        let hasher = argon2_hasher()?;
        let verified = VerifiedSecrets::new(
            Duration::from_secs(config.credential_cache_ttl),
            VERIFIED_CACHE_ENTRIES,
        )
        .map_err(|e| StartupError::io("cannot create the credential cache", e))?;
        let metrics = Arc::new(Metrics::default());
        let counts = SharedCounts::new(store.clone());
        let fetcher = KeyFetcher::new(FetchSettings {
            allow_http: config.allow_http_fetch,
            timeout: Duration::from_secs(config.fetch_timeout),
        })
        .map_err(|e| StartupError::io("cannot create the key-set fetcher", e))?;
        let assertions = AssertionAuthenticator::new(
            clients.clone(),
            store.clone(),
            Arc::new(fetcher),
            AssertionSettings {
                token_endpoint: format!("{issuer}{TOKEN_PATH}"),
                issuer: issuer.clone(),
                max_age: i64::from(config.assertion_max_age),
                client_ca: config.sender_constraints.client_ca.clone(),
            },
            metrics.clone(),
        );
        let auth = ClientAuthenticator::new(
            clients.clone(),
            assertions,
            hasher,
            verified,
            Throttle::new(&config.throttle, counts.clone()),
            metrics.clone(),
        );
        let constraints = &config.sender_constraints;
        let token_endpoints: Vec<String> = std::iter::once(&issuer)
            .chain(&constraints.mtls_base_url)
            .map(|base| format!("{base}{TOKEN_PATH}"))
            .collect();
        let dpop = DpopVerifier::new(
            &token_endpoints,
            constraints
                .dpop_nonce
                .then(|| keys.derived_key("tokenmint dpop nonce v1")),
        );
        let tokens = TokenService::new(
            store.clone(),
            auth,
            dpop,
            keys.clone(),
            issuer.clone(),
            config.token_ttl,
            counts.clone(),
        );
        let state = AppState {
            tokens: Arc::new(tokens),
            store,
            keys,
            metrics,
            admin_scope: config.admin_scope.as_str().into(),
            draining: Arc::default(),
            trusted_proxies: Arc::new(config.trusted_proxies.clone()),
            mtls: Arc::new(MtlsSettings {
                tls_listener: tls.is_some(),
                client_ca: constraints.client_ca.is_some(),
                base_url: constraints.mtls_base_url.clone(),
                cert_header: constraints
                    .client_cert_header
                    .as_deref()
                    .and_then(|h| HeaderName::from_bytes(h.as_bytes()).ok()),
            }),
        };
        let admin_listener = bind_private(config.admin_listen, "admin_listen").await?;
        // The same address as the admin API means "on the admin listener"
        // (port 0 asks for a fresh port each time, so it never means that).
        let metrics_listen = config
            .metrics_listen
            .filter(|m| m.port() == 0 || Some(*m) != config.admin_listen);
        let metrics_listener = bind_private(metrics_listen, "metrics_listen").await?;
        let open_files = crate::net::raise_open_file_limit();
        // Leave descriptors for the database pool, files and the CLI's work.
        let max_connections = open_files.map_or(config.max_connections, |n| {
            config
                .max_connections
                .min(usize::try_from(n.saturating_sub(128)).unwrap_or(usize::MAX))
        });
        if max_connections < config.max_connections {
            tracing::warn!(
                max_connections,
                open_files,
                "the open-file limit caps the connections below max_connections"
            );
        }
        Ok(Self {
            listener,
            admin_listener,
            metrics_listener,
            tls,
            address,
            issuer,
            state,
            clients,
            counts,
            audit_retention: config.audit_retention,
            connections: ConnectionLimit::new(max_connections),
            header_read_timeout: Duration::from_secs(config.header_read_timeout),
            drain_delay: Duration::from_secs(config.drain_delay),
        })
    }

    pub fn port(&self) -> u16 {
        self.address.port()
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The store the server uses, for tools and tests that manage clients.
    pub fn store(&self) -> Arc<dyn Store> {
        self.state.store.clone()
    }

    /// Serves until `shutdown` completes, then stops accepting connections
    /// and lets in-flight requests finish.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        tracing::info!(address = %self.address, issuer = %self.issuer, store = self.state.store.backend(), "tokenmint listening");
        let maintenance = tokio::spawn(maintain(
            self.state.keys.clone(),
            self.state.store.clone(),
            self.audit_retention,
        ));
        let counting = tokio::spawn(self.counts.clone().run());
        let following = tokio::spawn(follow_changes(
            self.clients.clone(),
            self.state.keys.clone(),
        ));
        // One shutdown signal, fanned out to every listener.
        // First /readyz turns 503, so that load balancers stop sending;
        // the listeners keep serving for the drain delay, then stop.
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let (draining, delay) = (self.state.draining.clone(), self.drain_delay);
        tokio::spawn(async move {
            shutdown.await;
            draining.store(true, std::sync::atomic::Ordering::Relaxed);
            if !delay.is_zero() {
                tracing::info!(
                    ?delay,
                    "draining: /readyz answers 503; still serving for the drain delay"
                );
                tokio::time::sleep(delay).await;
            }
            let _ = stop.send(true);
        });
        let until_stopped = || {
            let mut stopped = stopped.clone();
            async move {
                let _ = stopped.wait_for(|s| *s).await;
            }
        };
        // Once a private listener exists, the public one serves neither the
        // admin API nor the metrics.
        let has_admin = self.admin_listener.is_some();
        let has_metrics = self.metrics_listener.is_some();
        let public_surface = Surface {
            public: true,
            admin: !has_admin,
            metrics: !has_admin && !has_metrics,
        };
        let admin_surface = Surface {
            public: false,
            admin: true,
            metrics: !has_metrics,
        };
        let metrics_surface = Surface {
            public: false,
            admin: false,
            metrics: true,
        };
        let timeout = self.header_read_timeout;
        let limit = self.connections.clone();
        let public = {
            let app = router(self.state.clone(), public_surface);
            let stopped = until_stopped();
            let (listener, tls, limit) = (self.listener, self.tls, limit.clone());
            async move {
                match tls {
                    Some(config) => {
                        let tls = TlsListener::new(listener, config, limit);
                        serve(tls, app, timeout, stopped).await;
                    }
                    None => serve(TcpAccept { listener, limit }, app, timeout, stopped).await,
                }
            }
        };
        let private = |listener: Option<TcpListener>, surface: Surface, name: &'static str| {
            let app = router(self.state.clone(), surface);
            let stopped = until_stopped();
            let limit = limit.clone();
            async move {
                let Some(listener) = listener else {
                    return;
                };
                if let Ok(address) = listener.local_addr() {
                    tracing::info!(%address, "{name} listening");
                }
                serve(TcpAccept { listener, limit }, app, timeout, stopped).await;
            }
        };
        let admin = private(self.admin_listener, admin_surface, "admin API");
        let metrics = private(self.metrics_listener, metrics_surface, "metrics");
        tokio::join!(public, admin, metrics);
        maintenance.abort();
        following.abort();
        counting.abort();
        // What was counted since the last flush is not lost with the process.
        self.counts.flush().await;
        Ok(())
    }

    /// The admin listener's address, when the admin API has its own.
    pub fn admin_address(&self) -> Option<SocketAddr> {
        self.admin_listener
            .as_ref()
            .and_then(|l| l.local_addr().ok())
    }

    /// The metrics listener's address, when `/metrics` has its own.
    pub fn metrics_address(&self) -> Option<SocketAddr> {
        self.metrics_listener
            .as_ref()
            .and_then(|l| l.local_addr().ok())
    }
}

/// `TOKENMINT_APPLY_FILE`: the file is applied before the server listens;
/// one that does not apply stops the start, naming the entry.
async fn apply_at_start(store: &dyn Store, file: &std::path::Path) -> Result<(), StartupError> {
    let hasher = argon2_hasher()?;
    let outcome = crate::admin::apply_file(store, &hasher, file, false, false, unix_now())
        .await
        .map_err(|e| {
            StartupError::Config(ConfigError(format!(
                "invalid setting apply_file (TOKENMINT_APPLY_FILE): {}",
                chain(&e)
            )))
        })?;
    for client_id in outcome.secrets.keys() {
        // A server's standard error is its log, which is shipped and kept:
        // a secret generated here is never shown. Rotating issues one.
        tracing::warn!(
            client_id = %client_id,
            "created with a generated secret that is not shown at start; `tokenmint client rotate-secret` issues one"
        );
    }
    tracing::info!(
        file = %file.display(),
        created = outcome.created.len(),
        changed = outcome.changed.len(),
        unchanged = outcome.unchanged.len(),
        "applied the clients file"
    );
    Ok(())
}

/// Binds a private listener (admin API, metrics) when its setting is set.
async fn bind_private(
    address: Option<SocketAddr>,
    setting: &str,
) -> Result<Option<TcpListener>, StartupError> {
    let Some(address) = address else {
        return Ok(None);
    };
    let listener = TcpListener::bind(address)
        .await
        .map_err(|e| StartupError::io(format!("cannot listen on {address} ({setting})"), e))?;
    Ok(Some(listener))
}

/// Background upkeep while serving: re-read the signing keys when time
/// alone changes them (checked every `REFRESH_INTERVAL`: a pending key
/// activates, a retired one expires, automatic rotation falls due; changes
/// made anywhere are heard by `follow_changes`), and prune expired
/// revocations, assertion ids, counters and audit entries once a minute.
async fn maintain(keys: Arc<KeyRing>, store: Arc<dyn Store>, audit_retention: u64) {
    const PRUNE_EVERY: u32 = 60;
    let mut ticker = tokio::time::interval(REFRESH_INTERVAL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for tick in 0u32.. {
        ticker.tick().await;
        // Changes are heard (`follow_changes`); this is for what time
        // alone changes: an activation, an expiry, a rotation falling due.
        if keys.is_due(unix_now())
            && let Err(e) = keys.refresh(unix_now()).await
        {
            tracing::warn!(error = %e, "could not refresh the signing keys");
        }
        if tick % PRUNE_EVERY == 0 {
            match store.prune_expired(unix_now()).await {
                Ok(0) => {}
                Ok(n) => {
                    tracing::debug!(pruned = n, "pruned expired revocations and assertion ids")
                }
                Err(e) => {
                    tracing::warn!(error = %e, "could not prune expired revocations and assertion ids")
                }
            }
            let kept_from = unix_now().saturating_sub(i64::try_from(audit_retention).unwrap_or(0));
            if let Err(e) = store.prune_audit(kept_from).await {
                tracing::warn!(error = %e, "could not prune the audit trail");
            }
        }
    }
}

/// Keeps this instance's memory in step with what other instances and
/// processes write: woken by the store's notifications (Postgres LISTEN),
/// or polling every 50 ms while there are none (SQLite, or a dropped
/// notification connection), it reads the changes recorded since the last
/// one it saw and drops the rows they made stale; a change of keys re-reads
/// the key ring at once.
async fn follow_changes(clients: Arc<CachedClients>, keys: Arc<KeyRing>) {
    let wake = Arc::new(tokio::sync::Notify::new());
    let listening = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Stopped with this task: dropping the guard aborts it.
    struct AbortOnDrop(tokio::task::JoinHandle<()>);
    impl Drop for AbortOnDrop {
        fn drop(&mut self) {
            self.0.abort();
        }
    }
    let listener = AbortOnDrop({
        let (store, wake, listening) = (clients.clone(), wake.clone(), listening.clone());
        tokio::spawn(async move {
            let _ = store.listen(wake, listening).await;
        })
    });
    let mut last = loop {
        match clients.last_change().await {
            Ok(id) => break id,
            Err(_) => tokio::time::sleep(Duration::from_secs(1)).await,
        }
    };
    let mut full = false;
    let mut applied = std::collections::BTreeSet::new();
    loop {
        if !full {
            let poll = if listening.load(std::sync::atomic::Ordering::Acquire) {
                CHANGES_FALLBACK_POLL
            } else {
                CHANGES_POLL
            };
            tokio::select! {
                () = wake.notified() => {}
                () = tokio::time::sleep(poll) => {}
            }
        }
        // A little behind the last id seen: on Postgres ids are taken in
        // one order and committed in another, so a change with a lower id
        // can become visible after a higher one. Ids already applied are
        // skipped (`applied`).
        let changes = match clients
            .changes_since(last.saturating_sub(CHANGES_REREAD))
            .await
        {
            Ok(changes) => changes,
            Err(e) => {
                tracing::debug!(error = %e, "could not read the recorded changes");
                full = false;
                continue;
            }
        };
        full = changes.len() >= 1000 && changes.last().is_some_and(|c| c.id > last);
        let mut keys_changed = false;
        for change in &changes {
            // `insert` is false for an id already applied.
            if !applied.insert(change.id) {
                continue;
            }
            clients.apply(change);
            keys_changed |= change.kind == "keys";
            last = last.max(change.id);
        }
        applied = applied.split_off(&last.saturating_sub(CHANGES_REREAD));
        // Once every change read is applied (and none is left unread), what
        // memory holds is as current as this read: the cached rows count.
        if !full {
            clients.heard();
        }
        if keys_changed && let Err(e) = keys.refresh(unix_now()).await {
            tracing::warn!(error = %e, "could not refresh the signing keys");
        }
        if listener.0.is_finished() && listening.load(std::sync::atomic::Ordering::Acquire) {
            listening.store(false, std::sync::atomic::Ordering::Release);
        }
    }
}

/// How often changes are read when no notification says there are any:
/// often while notifications are not heard, rarely (a safety net) while
/// they are.
const CHANGES_POLL: Duration = Duration::from_millis(50);
const CHANGES_FALLBACK_POLL: Duration = Duration::from_secs(1);
/// How many ids before the last one seen are read again each time.
const CHANGES_REREAD: i64 = 200;

/// The key ring over `store`, with this configuration's key settings.
pub async fn open_key_ring(
    config: &Config,
    store: Arc<dyn Store>,
) -> Result<KeyRing, StartupError> {
    let settings = KeySettings {
        alg: config.signing_alg,
        jwks_max_age: config.jwks_max_age,
        rotate_after: config.key_rotation_interval,
    };
    // A missing generated KEK beside a database that holds keys is a lost
    // file, not a first start: making a new one would orphan every key.
    let generated = config.data_dir.join(KEK_FILE);
    if config.key_encryption_key.is_none()
        && !generated.exists()
        && !store.list_signing_keys().await?.is_empty()
    {
        return Err(StartupError::Config(ConfigError(format!(
            "invalid setting key_encryption_key (TOKENMINT_KEY_ENCRYPTION_KEY): the database holds signing keys, but the key-encryption key file {} is missing; restore it, or set TOKENMINT_KEY_ENCRYPTION_KEY",
            generated.display()
        ))));
    }
    let kek = key_encryption_key(config)?;
    match KeyRing::open(store, kek, settings, unix_now()).await {
        Err(KeyError::WrongKek) => Err(StartupError::Config(ConfigError(
            "invalid setting key_encryption_key (TOKENMINT_KEY_ENCRYPTION_KEY): it does not open the signing keys in the database; every instance sharing a database needs the same key".to_owned(),
        ))),
        other => Ok(other?),
    }
}

/// Opens the configured store, applying migrations first when `migrate`.
pub async fn open_store(config: &Config, migrate: bool) -> Result<Arc<dyn Store>, StartupError> {
    if let Database::Sqlite { .. } = config.database {
        create_data_dir(config)?;
    }
    let store: Arc<dyn Store> = store::connect(&config.database, &config.pool).await?.into();
    if migrate {
        store.migrate().await?;
    }
    Ok(store)
}

/// The hasher every face uses: one argon2 computation per core at a time.
///
/// Half the cores (at least one) may hash at once, so that a flood of wrong
/// secrets can never take every core from clients on the warm path; up to
/// `ARGON2_QUEUE` more wait, and beyond that requests get 503 at once.
pub fn argon2_hasher() -> Result<SecretHasher, StartupError> {
    let cores = std::thread::available_parallelism().map_or(2, usize::from);
    SecretHasher::new((cores / 2).max(1), ARGON2_QUEUE)
        .map_err(|e| StartupError::io("cannot create the argon2 hasher", e))
}

/// The configured KEK, or for the embedded store one generated into (and
/// afterwards read from) the data folder.
fn key_encryption_key(config: &Config) -> Result<KeyEncryptionKey, StartupError> {
    match &config.key_encryption_key {
        Some(encoded) => KeyEncryptionKey::from_base64(encoded.expose()).map_err(|e| {
            StartupError::Config(ConfigError(format!(
                "invalid setting key_encryption_key (TOKENMINT_KEY_ENCRYPTION_KEY): {e}"
            )))
        }),
        None => {
            create_data_dir(config)?;
            let path = config.data_dir.join(KEK_FILE);
            KeyEncryptionKey::load_or_create(&path)
                .map_err(|e| StartupError::io(format!("key-encryption key {}", path.display()), e))
        }
    }
}

/// The data folder, made readable by its owner only when we create it (it
/// holds the database and the key-encryption key).
fn create_data_dir(config: &Config) -> Result<(), StartupError> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(&config.data_dir).map_err(|e| {
        StartupError::io(
            format!("cannot create data folder {}", config.data_dir.display()),
            e,
        )
    })
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM (what `docker stop` sends).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown signal received; draining in-flight requests");
}
