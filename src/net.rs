//! Connections below HTTP: a cap on how many are open at once, the permit
//! each one holds until it closes, the accept loop for plain TCP, and the
//! open-file limit. Leaf module: plain tokio, nothing from the crate.

use std::future::Future as _;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How many connections may be open at once, shared by every listener.
#[derive(Clone)]
pub struct ConnectionLimit(Arc<Semaphore>);

impl ConnectionLimit {
    pub fn new(max: usize) -> Self {
        Self(Arc::new(Semaphore::new(max.max(1))))
    }

    /// Waits for a free place; the permit is the place.
    pub async fn acquire(&self) -> OwnedSemaphorePermit {
        match self.0.clone().acquire_owned().await {
            Ok(permit) => permit,
            // The semaphore is never closed.
            Err(_) => std::future::pending().await,
        }
    }
}

/// A connection that gives its place back when it closes, and that fails
/// a write the peer has not let through for `WRITE_STALL_TIMEOUT`: a client
/// that never reads its responses must not hold a connection (and a place,
/// and the shutdown) forever.
pub struct Limited<IO> {
    io: IO,
    place: OwnedSemaphorePermit,
    stalled: Option<Pin<Box<tokio::time::Sleep>>>,
}

/// How long a write may wait for the peer to read.
pub const WRITE_STALL_TIMEOUT: Duration = Duration::from_secs(10);

impl<IO> Limited<IO> {
    pub fn new(io: IO, place: OwnedSemaphorePermit) -> Self {
        Self {
            io,
            place,
            stalled: None,
        }
    }

    pub fn get_ref(&self) -> &IO {
        &self.io
    }

    /// The connection and its place, apart (to wrap the connection in TLS).
    pub fn into_parts(self) -> (IO, OwnedSemaphorePermit) {
        (self.io, self.place)
    }

    /// Maps a write's outcome: ready clears the stall timer; pending starts
    /// it, and an expired one turns the wait into an error.
    fn watch<T>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        if polled.is_ready() {
            self.stalled = None;
            return polled;
        }
        let timer = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(WRITE_STALL_TIMEOUT)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the peer has not read for the write-stall timeout",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Limited<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Limited<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.io).poll_write(cx, buf);
        self.watch(cx, polled)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.io).poll_flush(cx);
        self.watch(cx, polled)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.watch(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

/// A source of connections for the server: plain TCP or TLS.
pub trait Accept: Send {
    type Io: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    /// The next connection, with the peer's address.
    fn accept(&mut self) -> impl std::future::Future<Output = (Self::Io, SocketAddr)> + Send;

    /// The certificate chain the peer presented in its TLS handshake.
    fn client_chain(_io: &Self::Io) -> Option<ClientCertChain> {
        None
    }
}

/// A TLS client's certificate chain, leaf first, in DER; set on every
/// request of the connection. The handshake proved the peer holds the
/// leaf's private key.
#[derive(Debug, Clone)]
pub struct ClientCertChain(pub std::sync::Arc<[Vec<u8>]>);

/// Plain TCP under the connection cap.
pub struct TcpAccept {
    pub listener: TcpListener,
    pub limit: ConnectionLimit,
}

impl Accept for TcpAccept {
    type Io = Limited<TcpStream>;

    async fn accept(&mut self) -> (Self::Io, SocketAddr) {
        accept_tcp(&self.listener, &self.limit).await
    }
}

/// Accepts TCP connections, each once a place is free.
pub async fn accept_tcp(
    listener: &TcpListener,
    limit: &ConnectionLimit,
) -> (Limited<TcpStream>, SocketAddr) {
    let place = limit.acquire().await;
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                return (Limited::new(stream, place), peer);
            }
            Err(e) => {
                // Out of file descriptors and the like: back off, go on.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Raises the soft limit on open files to the hard limit, so that the
/// connection cap, not the default of 1024 descriptors, decides how many
/// connections are served. Returns the soft limit now in force.
#[cfg(unix)]
pub fn raise_open_file_limit() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed
    // by pointer, which lives for both calls.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return None;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit = raised;
            }
        }
    }
    Some(limit.rlim_cur)
}

#[cfg(not(unix))]
pub fn raise_open_file_limit() -> Option<u64> {
    None
}
