//! How client authentication reads clients: from memory when a row is fresh
//! enough for the warm path, and from the database before any real work.

use crate::domain::client::Client;
use crate::store::{CachedClients, Store, StoreFuture};

/// The two ways the authenticator reads a client: from memory when a row is
/// fresh enough for the warm path, and from the database before any argon2
/// work.
pub trait ClientRows: Send + Sync {
    /// The row if it is in memory and fresh enough; never reads the store.
    fn cached(&self, client_id: &str) -> Option<Client>;
    /// The row as the store holds it now.
    fn fresh<'a>(&'a self, client_id: &'a str) -> StoreFuture<'a, Option<Client>>;
    /// Writes `client` back over the revision it was read at (`false` if
    /// it changed meanwhile): for re-made secret hashes.
    fn write_back<'a>(&'a self, client: &'a Client) -> StoreFuture<'a, bool>;
}

impl ClientRows for CachedClients {
    fn cached(&self, client_id: &str) -> Option<Client> {
        self.get_cached(client_id)
    }

    fn fresh<'a>(&'a self, client_id: &'a str) -> StoreFuture<'a, Option<Client>> {
        Box::pin(self.get_client_fresh(client_id))
    }

    fn write_back<'a>(&'a self, client: &'a Client) -> StoreFuture<'a, bool> {
        // A re-made hash is upkeep, not an administrative change: no audit.
        Store::update_client(self, client, None)
    }
}
