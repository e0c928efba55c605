//! One tunnel connection's life: dial the route, carry bytes, warn before the endpoint's time
//! limit ends it, and record how it went.
//!
//! The local stream is wrapped in [`Watched`], which tells the registry that bytes moved. That
//! is what starts the publisher's ticking again after an idle spell without any timer running
//! while nothing happens.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::registry::{Registry, Slot};
use super::route::Route;
use super::{TunnelError, TunnelEventKind, TunnelId};
use crate::eic::CloseInfo;

/// How long before the endpoint's time limit the user is warned (at most half the limit).
pub(super) const ENDING_SOON: Duration = Duration::from_secs(60);

/// Runs one connection of tunnel `id` over `route` (its stdio connection when `stdio`),
/// holding `slot` (if the route takes one) until it ends.
pub(super) async fn run<L>(
    registry: Arc<Registry>,
    id: TunnelId,
    route: &Route,
    local: L,
    slot: Option<Slot>,
    stdio: bool,
) -> Result<CloseInfo, TunnelError>
where
    L: AsyncRead + AsyncWrite + Unpin,
{
    let Some((number, counters)) = registry.connection_started(id) else {
        return Err(TunnelError::Closed);
    };
    let result = async {
        let dialed = route.dial(stdio).await?;
        registry.connection_opened(id, number);
        let local = Watched {
            inner: local,
            registry: registry.clone(),
        };
        let carrying = dialed.carry(local, &counters);
        tokio::pin!(carrying);
        let Some(limit) = route.max_duration() else {
            return carrying.await;
        };
        let warning = ENDING_SOON.min(limit / 2);
        tokio::select! {
            ended = &mut carrying => return ended,
            () = tokio::time::sleep(limit - warning) => registry.event(
                id,
                TunnelEventKind::EndingSoon { connection: number, remaining: warning },
            ),
        }
        carrying.await
    }
    .await;
    match &result {
        Ok(info) => {
            tracing::debug!(%id, connection = number, ended_by = ?info.ended_by, "tunnel connection ended")
        }
        Err(error) => tracing::debug!(%id, connection = number, %error, "tunnel connection failed"),
    }
    // The slot is free before the end is reported, so whoever sees the report can reconnect.
    drop(slot);
    registry.connection_ended(id, number, result.as_ref().err().map(ToString::to_string));
    result
}

/// A local stream that reports each successful read or write to the registry.
struct Watched<S> {
    inner: S,
    registry: Arc<Registry>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.registry.mark_activity();
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.registry.mark_activity();
        }
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
