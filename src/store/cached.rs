//! A cache of client rows (and of the trusted-issuer list, and of which
//! client a federated subject is) in front of the store, for the warm token
//! path: a client repeating a verified secret costs no database round trip.
//!
//! Entries live until a change invalidates them, not for a fixed time:
//! - writes made through this decorator (this instance's admin API) remove
//!   the entry at once;
//! - writes made elsewhere (another instance, the CLI, `apply`) remove it
//!   when their `changes` row is heard of (`startup::follow_changes`:
//!   Postgres NOTIFY, or a 50 ms poll), within milliseconds;
//! - entries count only while that feed of changes is heard
//!   (`FEED_SILENCE`): when the store cannot be read, nothing is served from
//!   memory that a missed change could have made stale;
//! - a read that a change overtook is not kept (`epoch`), so a row read
//!   before a change cannot be remembered after it;
//! - `BACKSTOP` bounds an entry's life all the same, against a change that
//!   was never heard (a bug, a row edited by hand);
//! - `get_client_fresh` bypasses the cache: the authenticator reads fresh
//!   before any argon2 work, so only a *cached success* can lag, never a
//!   new secret or a refusal.
//!
//! Unknown ids are not cached (an attacker's made-up ids cannot fill it), and
//! the number of entries is capped.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{
    AuditEntry, AuditQuery, AuditRecord, Change, CountDelta, Store, StoreError, StoreFuture,
    StoredKey, UsedAssertion, Write,
};
use crate::domain::client::{Client, ClientQuery};
use crate::domain::issuer::TrustedIssuer;

/// The longest an entry is served without being read again, whatever was
/// heard: a backstop, not how changes arrive.
pub const CLIENT_CACHE_TTL: Duration = Duration::from_secs(60);
/// Entries count only if the feed of changes was heard this recently (it
/// is read at least every second while notifications arrive, every 50 ms
/// otherwise).
pub const FEED_SILENCE: Duration = Duration::from_millis(2500);

/// The most rows kept: about the number of live clients.
const MAX_ENTRIES: usize = 10_000;

pub struct CachedClients {
    inner: Arc<dyn Store>,
    ttl: Duration,
    rows: Mutex<HashMap<String, (Instant, Client)>>,
    /// The trusted issuers, read on every federated authentication; kept
    /// under the same rules as the rows.
    issuers: Mutex<Option<(Instant, Vec<TrustedIssuer>)>>,
    /// Which client a federated identity authenticates, for the identities
    /// that do authenticate one (unknown subjects are not remembered).
    identities: Mutex<HashMap<(String, String), (Instant, String)>>,
    /// When the feed of changes was last read, in milliseconds since
    /// `started` (0: never).
    heard: AtomicU64,
    started: Instant,
    /// Bumped by every invalidation: a read that saw it move is not kept.
    epoch: AtomicU64,
}

impl CachedClients {
    pub fn new(inner: Arc<dyn Store>, ttl: Duration) -> Self {
        Self {
            inner,
            ttl,
            rows: Mutex::new(HashMap::new()),
            issuers: Mutex::new(None),
            identities: Mutex::new(HashMap::new()),
            heard: AtomicU64::new(0),
            started: Instant::now(),
            epoch: AtomicU64::new(0),
        }
    }

    /// The feed of changes was read just now: what is in memory is current.
    pub fn heard(&self) {
        let now = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.heard.store(now.max(1), Ordering::Release);
    }

    /// Whether an entry made at `at` may be served.
    fn current(&self, at: Instant) -> bool {
        let heard = self.heard.load(Ordering::Acquire);
        let silence = self
            .started
            .elapsed()
            .as_millis()
            .saturating_sub(u128::from(heard));
        heard > 0 && silence < FEED_SILENCE.as_millis() && at.elapsed() < self.ttl
    }

    fn invalidated(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
    }

    fn rows(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Instant, Client)>> {
        self.rows.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The row if it is in memory and fresh enough; never reads the store.
    pub fn get_cached(&self, client_id: &str) -> Option<Client> {
        match self.rows().get(client_id) {
            Some((at, client)) if self.current(*at) => Some(client.clone()),
            _ => None,
        }
    }

    fn remember(&self, client: &Client) {
        let mut rows = self.rows();
        if rows.len() >= MAX_ENTRIES && !rows.contains_key(&client.client_id) {
            let ttl = self.ttl;
            rows.retain(|_, (at, _)| at.elapsed() < ttl);
            if rows.len() >= MAX_ENTRIES {
                // More live clients than entries: a tenth makes room, so
                // that the newest clients are served from memory too.
                let drop: Vec<String> = rows.keys().take(MAX_ENTRIES / 10).cloned().collect();
                for id in drop {
                    rows.remove(&id);
                }
            }
        }
        rows.insert(client.client_id.clone(), (Instant::now(), client.clone()));
    }

    fn issuers(&self) -> std::sync::MutexGuard<'_, Option<(Instant, Vec<TrustedIssuer>)>> {
        self.issuers.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn forget_issuers(&self) {
        self.invalidated();
        *self.issuers() = None;
    }

    fn identities(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<(String, String), (Instant, String)>> {
        self.identities.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn forget(&self, client_id: &str) {
        self.invalidated();
        // A client's identities may have changed with it.
        self.identities().retain(|_, (_, owner)| owner != client_id);
        self.rows().remove(client_id);
    }

    /// Reads the row from the store, bypassing (and refreshing) the cache.
    pub async fn get_client_fresh(&self, client_id: &str) -> Result<Option<Client>, StoreError> {
        let epoch = self.epoch.load(Ordering::Acquire);
        let client = self.inner.get_client(client_id).await?;
        match &client {
            // A change heard while the row was read may be newer than it.
            Some(client) if self.epoch.load(Ordering::Acquire) == epoch => self.remember(client),
            Some(_) => {}
            None => self.forget(client_id),
        }
        Ok(client)
    }
}

impl CachedClients {
    /// Drops what a change made elsewhere (another instance, the CLI) may
    /// have made stale.
    pub fn apply(&self, change: &Change) {
        match change.kind.as_str() {
            "client" => self.forget(&change.subject),
            "issuer" => {
                self.forget_issuers();
                self.identities().clear();
            }
            _ => {}
        }
    }

    /// Drops everything: after a gap in what was heard.
    pub fn forget_all(&self) {
        self.rows().clear();
        self.forget_issuers();
        self.identities().clear();
    }
}

impl Store for CachedClients {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }

    fn changes_since(&self, after: i64) -> StoreFuture<'_, Vec<Change>> {
        self.inner.changes_since(after)
    }

    fn last_change(&self) -> StoreFuture<'_, i64> {
        self.inner.last_change()
    }

    fn listen(
        &self,
        wake: Arc<tokio::sync::Notify>,
        listening: Arc<std::sync::atomic::AtomicBool>,
    ) -> StoreFuture<'_, ()> {
        self.inner.listen(wake, listening)
    }

    fn write<'a>(
        &'a self,
        writes: &'a [Write<'a>],
        audit: &'a [AuditEntry],
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let done = self.inner.write(writes, audit).await;
            // Whatever the outcome: a failed write may have failed after
            // the commit (a lost connection), so the rows are read again.
            for write in writes {
                match write {
                    Write::InsertClient(client) | Write::UpdateClient(client) => {
                        self.forget(&client.client_id);
                    }
                    Write::DeleteClient(client_id) => self.forget(client_id),
                    Write::InsertIssuer(_) | Write::DeleteIssuer(_) => {
                        self.forget_issuers();
                        self.identities().clear();
                    }
                    Write::InsertKey(_) | Write::RevokeKey { .. } => {}
                }
            }
            done
        })
    }

    fn list_audit<'a>(&'a self, query: &'a AuditQuery) -> StoreFuture<'a, Vec<AuditRecord>> {
        self.inner.list_audit(query)
    }

    fn prune_audit(&self, before: i64) -> StoreFuture<'_, u64> {
        self.inner.prune_audit(before)
    }

    fn add_counts<'a>(&'a self, batch: &'a [CountDelta]) -> StoreFuture<'a, Vec<i64>> {
        self.inner.add_counts(batch)
    }

    fn take_count<'a>(
        &'a self,
        counter: &'a CountDelta,
        limit: i64,
    ) -> StoreFuture<'a, Option<i64>> {
        self.inner.take_count(counter, limit)
    }

    fn migrate(&self) -> StoreFuture<'_, ()> {
        self.inner.migrate()
    }

    fn ping(&self) -> StoreFuture<'_, ()> {
        self.inner.ping()
    }

    /// Always the store's row: whoever reads through the `Store` trait (the
    /// admin operations, which read, change and write back a row) must not
    /// act on a stale copy. Only the authenticator's warm path reads from
    /// memory, through `get_cached`.
    fn get_client<'a>(&'a self, client_id: &'a str) -> StoreFuture<'a, Option<Client>> {
        Box::pin(self.get_client_fresh(client_id))
    }

    fn list_clients<'a>(&'a self, query: &'a ClientQuery) -> StoreFuture<'a, Vec<Client>> {
        self.inner.list_clients(query)
    }

    fn list_signing_keys(&self) -> StoreFuture<'_, Vec<StoredKey>> {
        self.inner.list_signing_keys()
    }

    fn revoke_token<'a>(
        &'a self,
        jti: &'a str,
        client_id: &'a str,
        expires_at: i64,
    ) -> StoreFuture<'a, ()> {
        self.inner.revoke_token(jti, client_id, expires_at)
    }

    fn is_token_revoked<'a>(&'a self, jti: &'a str) -> StoreFuture<'a, bool> {
        self.inner.is_token_revoked(jti)
    }

    fn prune_expired(&self, now: i64) -> StoreFuture<'_, u64> {
        self.inner.prune_expired(now)
    }

    fn use_assertions<'a>(&'a self, batch: &'a [UsedAssertion]) -> StoreFuture<'a, Vec<bool>> {
        self.inner.use_assertions(batch)
    }

    fn find_federated_client<'a>(
        &'a self,
        issuer_id: &'a str,
        subject: &'a str,
    ) -> StoreFuture<'a, Option<String>> {
        Box::pin(async move {
            let key = (issuer_id.to_owned(), subject.to_owned());
            if let Some((at, owner)) = self.identities().get(&key)
                && self.current(*at)
            {
                return Ok(Some(owner.clone()));
            }
            let epoch = self.epoch.load(Ordering::Acquire);
            let owner = self.inner.find_federated_client(issuer_id, subject).await?;
            if self.epoch.load(Ordering::Acquire) != epoch {
                return Ok(owner);
            }
            let mut identities = self.identities();
            match &owner {
                Some(owner) => {
                    if identities.len() >= MAX_ENTRIES {
                        let ttl = self.ttl;
                        identities.retain(|_, (at, _)| at.elapsed() < ttl);
                    }
                    if identities.len() < MAX_ENTRIES {
                        identities.insert(key, (Instant::now(), owner.clone()));
                    }
                }
                None => {
                    identities.remove(&key);
                }
            }
            Ok(owner)
        })
    }

    fn list_issuers(&self) -> StoreFuture<'_, Vec<TrustedIssuer>> {
        Box::pin(async move {
            if let Some((at, issuers)) = self.issuers().as_ref()
                && self.current(*at)
            {
                return Ok(issuers.clone());
            }
            let epoch = self.epoch.load(Ordering::Acquire);
            let issuers = self.inner.list_issuers().await?;
            if self.epoch.load(Ordering::Acquire) == epoch {
                *self.issuers() = Some((Instant::now(), issuers.clone()));
            }
            Ok(issuers)
        })
    }
}
