//! How client authentication reads clients: from memory when a row is fresh
//! enough for the warm path, and from the database before any real work.

use crate::domain::client::Client;
use crate::store::{CachedClients, StoreFuture};

/// The two ways the authenticator reads a client: from memory when a row is
/// fresh enough for the warm path, and from the database before any argon2
/// work.
pub trait ClientRows: Send + Sync {
    /// The row if it is in memory and fresh enough; never reads the store.
    fn cached(&self, client_id: &str) -> Option<Client>;
    /// The row as the store holds it now.
    fn fresh<'a>(&'a self, client_id: &'a str) -> StoreFuture<'a, Option<Client>>;
}

impl ClientRows for CachedClients {
    fn cached(&self, client_id: &str) -> Option<Client> {
        self.get_cached(client_id)
    }

    fn fresh<'a>(&'a self, client_id: &'a str) -> StoreFuture<'a, Option<Client>> {
        Box::pin(self.get_client_fresh(client_id))
    }
}
