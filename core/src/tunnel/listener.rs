//! Listener mode: a loopback port where every accepted TCP connection gets its own tunnel
//! connection (spec `eic.md` §3.5).
//!
//! The listener binds 127.0.0.1 and nothing else: callers choose only the port, so a tunnel can
//! never be offered to the network. Unlike the AWS CLI, one connection's failure (a refused
//! upgrade, an expired credential) ends that connection only; the listener keeps serving. When
//! the per-endpoint cap is reached the new connection is refused at once rather than left
//! waiting: a waiting `ssh` looks hung, a refused one fails with the reason in the app.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use super::registry::Registry;
use super::route::Route;
use super::{TunnelError, TunnelId, connection};

/// After a failed `accept` (say, out of file descriptors), wait this long before the next.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(250);

/// Binds 127.0.0.1:`port` (0 for any free port).
pub(super) async fn bind(port: u16) -> Result<(TcpListener, SocketAddr), TunnelError> {
    let bind_error = |source| TunnelError::Bind { port, source };
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port))
        .await
        .map_err(bind_error)?;
    let addr = listener.local_addr().map_err(bind_error)?;
    Ok((listener, addr))
}

/// Accepts connections until the task is aborted (the tunnel closed), which also drops every
/// connection it started.
pub(super) async fn serve(
    registry: Arc<Registry>,
    id: TunnelId,
    listener: TcpListener,
    route: Arc<Route>,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, _peer)) => {
                    if let Some(task) = admit(&registry, id, tcp, &route) {
                        connections.spawn(task);
                    }
                }
                Err(error) => {
                    registry.connection_refused(
                        id,
                        format!("accepting a local connection failed: {error}"),
                    );
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// The connection's task, or `None` when it was refused (the socket is closed on return).
fn admit(
    registry: &Arc<Registry>,
    id: TunnelId,
    tcp: TcpStream,
    route: &Arc<Route>,
) -> Option<impl std::future::Future<Output = ()> + Send + 'static> {
    let slot = route.slot_key().map(|key| registry.try_slot(key));
    match slot.transpose() {
        Ok(slot) => {
            // Interactive SSH/RDP: keystrokes must not wait for Nagle.
            let _ = tcp.set_nodelay(true);
            let (registry, route) = (registry.clone(), route.clone());
            Some(async move {
                // The outcome is recorded by `connection::run`; nothing more to do here.
                let _ = connection::run(registry, id, &route, tcp, slot, false).await;
            })
        }
        Err(open) => {
            let refusal = TunnelError::EndpointBusy {
                endpoint_id: route.slot_key().unwrap_or_default().to_owned(),
                open,
            };
            registry.connection_refused(id, refusal.to_string());
            None
        }
    }
}
