//! The accept loop both of the simulator's ports share: TCP on 127.0.0.1, TLS with the run's
//! certificate (or plain text, when asked for), then one task per connection.
//!
//! Each connection's TLS handshake runs in that connection's task, so a client that connects
//! and says nothing holds up no one else. Shutdown is graceful: a signal stops the accept loop,
//! every connection task sees it and winds down in its own protocol's way (HTTP finishes the
//! request in flight, a tunnel sends a Close frame), and `stop` waits a few seconds for them.

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;

/// How long a client may take to finish the TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long `stop` waits for connections to wind down before cutting them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// A connection's byte stream, TLS or plain.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}
pub type BoxedIo = Box<dyn Io>;

/// Fires once when the simulator stops.
pub type ShutdownSignal = watch::Receiver<bool>;

/// Resolves when `signal` fires (or its sender is gone).
pub async fn stopped(signal: &mut ShutdownSignal) {
    let _ = signal.wait_for(|stopped| *stopped).await;
}

/// A bound port that is not serving yet: binding first lets the simulator know its addresses
/// before it builds what the connection handlers share.
pub async fn bind() -> std::io::Result<TcpListener> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await
}

/// A port being served; dropping it signals shutdown without waiting.
#[derive(Debug)]
pub struct Listener {
    local_addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl Listener {
    /// Serves `listener`: every accepted connection goes through TLS (when `tls` is given) and
    /// then to `handle` in a task of its own.
    pub fn serve<H, F>(
        name: &'static str,
        listener: TcpListener,
        tls: Option<TlsAcceptor>,
        handle: H,
    ) -> std::io::Result<Listener>
    where
        H: Fn(BoxedIo, SocketAddr, ShutdownSignal) -> F + Send + Sync + 'static,
        F: Future<Output = ()> + Send + 'static,
    {
        let local_addr = listener.local_addr()?;
        let (shutdown, signal) = watch::channel(false);
        let task = tokio::spawn(accept_loop(name, listener, tls, handle, signal));
        tracing::info!(%local_addr, "{name} listening");
        Ok(Listener {
            local_addr,
            shutdown,
            task: Some(task),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting, lets connections wind down (for a few seconds at most) and waits.
    pub async fn stop(mut self) {
        let _ = self.shutdown.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}

async fn accept_loop<H, F>(
    name: &'static str,
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    handle: H,
    mut signal: ShutdownSignal,
) where
    H: Fn(BoxedIo, SocketAddr, ShutdownSignal) -> F + Send + Sync + 'static,
    F: Future<Output = ()> + Send + 'static,
{
    let handle = Arc::new(handle);
    let mut connections = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            () = stopped(&mut signal) => break,
            accepted = listener.accept() => accepted,
            // Reap finished connections as they go, so the set stays small.
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
        };
        let (tcp, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors and the like: back off rather than spin.
                tracing::warn!(%error, "{name} cannot accept a connection");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let tls = tls.clone();
        let handle = Arc::clone(&handle);
        let connection_signal = signal.clone();
        connections.spawn(async move {
            let io: BoxedIo = match tls {
                None => Box::new(tcp),
                Some(acceptor) => {
                    match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(tls)) => Box::new(tls),
                        Ok(Err(error)) => {
                            tracing::debug!(%peer, %error, "{name}: TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!(%peer, "{name}: TLS handshake timed out");
                            return;
                        }
                    }
                }
            };
            handle(io, peer, connection_signal).await;
        });
    }
    drop(listener);
    let wound_down = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if wound_down.is_err() {
        tracing::warn!("{name}: connections still open after {SHUTDOWN_GRACE:?}; cutting them");
        connections.shutdown().await;
    }
    tracing::info!("{name} stopped");
}
