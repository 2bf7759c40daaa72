//! Serving connections: hyper's HTTP/1 with a header-read timeout, and a
//! graceful drain.
//!
//! `axum::serve` installs no timer, so a connection that never sends a
//! complete request head — idle, slowloris, or a keep-alive connection left
//! open — would be held forever, each with a task and a file descriptor.
//! Here hyper's `header_read_timeout` runs from the moment the connection is
//! ready for a request head (when it is accepted, and again after every
//! response), so it bounds both slow headers and idle keep-alive time. The
//! cap on open connections is `net::ConnectionLimit`, applied where
//! connections are accepted.

use std::future::Future;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tower::ServiceExt as _;

use super::Peer;
use crate::net::Accept;

/// Serves `router` on the connections `accept` yields until `shutdown`
/// completes; then stops accepting, lets requests in flight finish, and
/// closes idle connections.
pub async fn serve<A: Accept>(
    mut incoming: A,
    router: Router,
    header_read_timeout: Duration,
    shutdown: impl Future<Output = ()>,
) {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout)
        // A request head is a few hundred bytes; hyper's default buffer of
        // ~400 KiB per connection let unfinished heads take gigabytes.
        .max_buf_size(MAX_HEAD_BUFFER)
        .keep_alive(true);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (io, peer) = tokio::select! {
            accepted = incoming.accept() => accepted,
            () = &mut shutdown => break,
        };
        let router = router.clone();
        let chain = A::client_chain(&io);
        let service = tower::service_fn(move |mut request: hyper::Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(Peer(peer)));
            if let Some(chain) = &chain {
                request.extensions_mut().insert(chain.clone());
            }
            router.clone().oneshot(request)
        });
        let connection = http.serve_connection(TokioIo::new(io), TowerToHyperService::new(service));
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(%peer, error = %e, "connection closed with an error");
            }
        });
    }
    // Connections finish their requests, but a drain is not forever.
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after the drain timeout; closing them");
    }
}

/// The most bytes buffered per connection while a request head is read.
const MAX_HEAD_BUFFER: usize = 32 * 1024;

/// How long a shutdown waits for open connections to finish.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(20);
