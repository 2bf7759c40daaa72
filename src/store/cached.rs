//! A short-lived cache of client rows (and of the trusted-issuer list) in
//! front of the store, for the warm token path: a client repeating a
//! verified secret costs no database round trip.
//!
//! What may be stale, and for how long:
//! - writes made through this decorator (this instance's admin API) remove
//!   the entry at once: "at once on this instance";
//! - writes made elsewhere (another instance, the CLI) are seen within
//!   `CLIENT_CACHE_TTL`, inside the "within a second on every instance" that
//!   the README promises for changes made elsewhere;
//! - `get_client_fresh` bypasses the cache: the authenticator reads fresh
//!   before any argon2 work, so only a *cached success* can lag, never a
//!   new secret or a refusal.
//!
//! Unknown ids are not cached (an attacker's made-up ids cannot fill it), and
//! the number of entries is capped.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{
    AuditEntry, AuditQuery, AuditRecord, Change, CountDelta, Store, StoreError, StoreFuture,
    StoredKey, UsedAssertion, Write,
};
use crate::domain::client::{Client, ClientQuery};
use crate::domain::issuer::TrustedIssuer;

/// How long a client row may be served from memory.
pub const CLIENT_CACHE_TTL: Duration = Duration::from_millis(500);

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
}

impl CachedClients {
    pub fn new(inner: Arc<dyn Store>, ttl: Duration) -> Self {
        Self {
            inner,
            ttl,
            rows: Mutex::new(HashMap::new()),
            issuers: Mutex::new(None),
            identities: Mutex::new(HashMap::new()),
        }
    }

    fn rows(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Instant, Client)>> {
        self.rows.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The row if it is in memory and fresh enough; never reads the store.
    pub fn get_cached(&self, client_id: &str) -> Option<Client> {
        match self.rows().get(client_id) {
            Some((at, client)) if at.elapsed() < self.ttl => Some(client.clone()),
            _ => None,
        }
    }

    fn remember(&self, client: &Client) {
        let mut rows = self.rows();
        if rows.len() >= MAX_ENTRIES && !rows.contains_key(&client.client_id) {
            let ttl = self.ttl;
            rows.retain(|_, (at, _)| at.elapsed() < ttl);
            if rows.len() >= MAX_ENTRIES {
                return;
            }
        }
        rows.insert(client.client_id.clone(), (Instant::now(), client.clone()));
    }

    fn issuers(&self) -> std::sync::MutexGuard<'_, Option<(Instant, Vec<TrustedIssuer>)>> {
        self.issuers.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn forget_issuers(&self) {
        *self.issuers() = None;
    }

    fn identities(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<(String, String), (Instant, String)>> {
        self.identities.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn forget(&self, client_id: &str) {
        // A client's identities may have changed with it.
        self.identities().retain(|_, (_, owner)| owner != client_id);
        self.rows().remove(client_id);
    }

    /// Reads the row from the store, bypassing (and refreshing) the cache.
    pub async fn get_client_fresh(&self, client_id: &str) -> Result<Option<Client>, StoreError> {
        let client = self.inner.get_client(client_id).await?;
        match &client {
            Some(client) => self.remember(client),
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
                && at.elapsed() < self.ttl
            {
                return Ok(Some(owner.clone()));
            }
            let owner = self.inner.find_federated_client(issuer_id, subject).await?;
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
                && at.elapsed() < self.ttl
            {
                return Ok(issuers.clone());
            }
            let issuers = self.inner.list_issuers().await?;
            *self.issuers() = Some((Instant::now(), issuers.clone()));
            Ok(issuers)
        })
    }
}
