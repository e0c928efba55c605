//! The data pump: bytes between a local stream (an accepted TCP connection, or stdin/stdout)
//! and an open tunnel WebSocket, until one side ends (spec §2.3–2.4, §7.4–7.5).
//!
//! Both directions run concurrently in one task, because a sequential loop deadlocks as soon as
//! both sides are blocked writing to each other (an echo through a full TCP window does it).
//! Each direction holds at most one frame: local → remote reads at most 65 000 bytes, then waits
//! until that frame is flushed to the socket before reading more; remote → local writes a whole
//! message to the local side before reading the next one. So a slow side slows the other down
//! instead of filling memory.
//!
//! Keeping the WebSocket's read half polled is also what answers the server's pings: tungstenite
//! queues the pong when it reads a ping and flushes it on the next read (or send), which the
//! download loop does at once.
//!
//! Endings:
//! - local EOF: send Close(1000), keep delivering what the server still sends until its Close
//!   (or [`CLOSE_WAIT`] passes), then finish; never spin on a closed input (CLI issue #9344);
//! - server Close: shut down the local write side and finish; a code other than 1000 is an
//!   error carrying the server's reason (usually "Unable to connect to target");
//! - the connection ends without a Close frame: a normal end, as in the CLI;
//! - a text frame: an error (the CLI's "Received invalid data"); we send Close(1003) first.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::{BufMut as _, BytesMut};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message};

use super::EicError;

/// Largest binary frame we send: the CLI reads the local side in 65 000-byte chunks.
pub const MAX_FRAME_PAYLOAD: usize = 65_000;

/// How long we wait for the server's Close reply after our own Close, and for a final flush.
pub const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// Bytes carried by one tunnel, readable at any time from another task (for stats).
#[derive(Debug, Default)]
pub struct TunnelCounters {
    to_remote: AtomicU64,
    from_remote: AtomicU64,
}

impl TunnelCounters {
    /// Zeroed counters.
    pub fn new() -> Self {
        Self::default()
    }

    /// Payload bytes read from the local side and sent to the endpoint so far.
    pub fn bytes_to_remote(&self) -> u64 {
        self.to_remote.load(Ordering::Relaxed)
    }

    /// Payload bytes received from the endpoint so far (counted as they arrive, before they are
    /// written to the local side).
    pub fn bytes_from_remote(&self) -> u64 {
        self.from_remote.load(Ordering::Relaxed)
    }

    /// Counts bytes sent to the instance by another route (Session Manager).
    pub(crate) fn add_to_remote(&self, bytes: usize) {
        self.to_remote.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// Counts bytes received from the instance by another route (Session Manager).
    pub(crate) fn add_from_remote(&self, bytes: usize) {
        self.from_remote.fetch_add(bytes as u64, Ordering::Relaxed);
    }
}

/// Who ended a tunnel that ended normally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TunnelEnd {
    /// The local side reached EOF; we sent Close(1000).
    LocalEof,
    /// The server sent a Close frame (code 1000 or none).
    ServerClose,
    /// The connection ended without a Close frame (the CLI treats this as a normal end too).
    ConnectionEnded,
}

/// How a tunnel ended. `code`/`reason` are the server's Close frame, when one arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseInfo {
    /// Who ended it.
    pub ended_by: TunnelEnd,
    /// The server's close code, if it sent one.
    pub code: Option<u16>,
    /// The server's close reason (empty if none).
    pub reason: String,
}

/// Carries bytes both ways between `local` and `ws` until the tunnel ends; see the module
/// documentation for the endings. `counters` is updated as bytes move.
///
/// For stdio use `tokio::io::join(tokio::io::stdin(), tokio::io::stdout())` as `local`.
pub async fn pump<L, S>(
    local: L,
    ws: WebSocketStream<S>,
    counters: &TunnelCounters,
) -> Result<CloseInfo, EicError>
where
    L: AsyncRead + AsyncWrite,
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (mut local_r, mut local_w) = tokio::io::split(local);
    let (mut sink, mut stream) = ws.split();
    let mut close_sent_at: Option<Instant> = None;

    let outcome = {
        let upload = async {
            upload(&mut local_r, &mut sink, counters).await?;
            send_close(&mut sink, CloseCode::Normal).await
        };
        let download = download(&mut stream, &mut local_w, counters);
        tokio::pin!(upload, download);
        loop {
            let deadline = close_sent_at.map_or_else(Instant::now, |at| at + CLOSE_WAIT);
            tokio::select! {
                // Download first: when both are ready, the server's word (its Close reason)
                // is the more useful outcome.
                biased;
                result = &mut download => break result.map_or_else(Outcome::Failed, Outcome::Remote),
                result = &mut upload, if close_sent_at.is_none() => match result {
                    Ok(()) => {
                        tracing::debug!("local side reached EOF; sent Close(1000)");
                        close_sent_at = Some(Instant::now());
                    }
                    Err(e) => break Outcome::Failed(e),
                },
                () = tokio::time::sleep_until(deadline), if close_sent_at.is_some() => {
                    tracing::debug!("no Close reply from the endpoint in time; ending the tunnel");
                    break Outcome::Remote(RemoteEnd::Dropped);
                }
            }
        }
    };

    let we_closed = close_sent_at.is_some();
    match outcome {
        Outcome::Remote(end) => {
            if matches!(end, RemoteEnd::Closed(_)) {
                // tungstenite queued the reply to the server's Close; get it onto the wire.
                let _ = tokio::time::timeout(CLOSE_WAIT, sink.flush()).await;
            }
            let _ = local_w.shutdown().await;
            let info = match end {
                RemoteEnd::Closed(frame) => CloseInfo {
                    ended_by: if we_closed {
                        TunnelEnd::LocalEof
                    } else {
                        TunnelEnd::ServerClose
                    },
                    code: frame.as_ref().map(|f| u16::from(f.code)),
                    reason: frame.map(|f| f.reason.to_string()).unwrap_or_default(),
                },
                RemoteEnd::Dropped => CloseInfo {
                    ended_by: if we_closed {
                        TunnelEnd::LocalEof
                    } else {
                        TunnelEnd::ConnectionEnded
                    },
                    code: None,
                    reason: String::new(),
                },
            };
            match info.code {
                Some(code) if code != 1000 => Err(EicError::ClosedByServer {
                    code,
                    reason: info.reason,
                }),
                _ => Ok(info),
            }
        }
        Outcome::Failed(error) => {
            let code = match &error {
                EicError::UnexpectedTextFrame => Some(CloseCode::Unsupported),
                EicError::Local { .. } => Some(CloseCode::Away),
                _ => None,
            };
            if let Some(code) = code.filter(|_| !we_closed) {
                let _ = tokio::time::timeout(CLOSE_WAIT, send_close(&mut sink, code)).await;
            }
            let _ = local_w.shutdown().await;
            Err(error)
        }
    }
}

enum Outcome {
    Remote(RemoteEnd),
    Failed(EicError),
}

enum RemoteEnd {
    Closed(Option<CloseFrame>),
    Dropped,
}

/// Local → remote until local EOF. One frame in flight: `send` returns once the frame is
/// flushed to the socket, and only then is the local side read again.
async fn upload<R, S>(
    local: &mut R,
    sink: &mut SplitSink<WebSocketStream<S>, Message>,
    counters: &TunnelCounters,
) -> Result<(), EicError>
where
    R: AsyncRead + Unpin,
    S: AsyncRead + AsyncWrite + Unpin,
{
    // Read straight into the frame's buffer rather than copying each chunk into a new one.
    // tungstenite copies the payload into its own output buffer (masking it) and drops it
    // before `send` returns, so `reserve` takes the same allocation back for the next read.
    let mut buf = BytesMut::with_capacity(MAX_FRAME_PAYLOAD);
    loop {
        buf.reserve(MAX_FRAME_PAYLOAD);
        let n = local
            .read_buf(&mut (&mut buf).limit(MAX_FRAME_PAYLOAD))
            .await
            .map_err(|source| EicError::Local { source })?;
        if n == 0 {
            return Ok(());
        }
        sink.send(Message::Binary(buf.split().freeze()))
            .await
            .map_err(|source| EicError::TunnelLost { source })?;
        counters.to_remote.fetch_add(n as u64, Ordering::Relaxed);
    }
}

/// Remote → local until the server's Close, the end of the connection, or an error.
async fn download<W, S>(
    stream: &mut SplitStream<WebSocketStream<S>>,
    local: &mut W,
    counters: &TunnelCounters,
) -> Result<RemoteEnd, EicError>
where
    W: AsyncWrite + Unpin,
    S: AsyncRead + AsyncWrite + Unpin,
{
    while let Some(message) = stream.next().await {
        match message {
            Ok(Message::Binary(data)) => {
                // Counted on arrival: once written, the bytes may be read (and the process
                // asked to exit) before this task runs again.
                counters
                    .from_remote
                    .fetch_add(data.len() as u64, Ordering::Relaxed);
                local
                    .write_all(&data)
                    .await
                    .map_err(|source| EicError::Local { source })?;
                local
                    .flush()
                    .await
                    .map_err(|source| EicError::Local { source })?;
            }
            Ok(Message::Text(_)) => return Err(EicError::UnexpectedTextFrame),
            Ok(Message::Close(frame)) => return Ok(RemoteEnd::Closed(frame)),
            // Pongs to pings are queued by tungstenite and flushed by the next `next()`.
            Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) => {}
            Err(e) if ended_without_close(&e) => return Ok(RemoteEnd::Dropped),
            Err(source) => return Err(EicError::TunnelLost { source }),
        }
    }
    Ok(RemoteEnd::Dropped)
}

/// Sends a Close frame. "Already closed" means the close handshake is under way or done, which
/// is what we wanted.
async fn send_close<S>(
    sink: &mut SplitSink<WebSocketStream<S>, Message>,
    code: CloseCode,
) -> Result<(), EicError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let frame = CloseFrame {
        code,
        reason: "".into(),
    };
    match sink.send(Message::Close(Some(frame))).await {
        Ok(())
        | Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed)
        | Err(tungstenite::Error::Protocol(tungstenite::error::ProtocolError::SendAfterClosing)) => {
            Ok(())
        }
        Err(source) => Err(EicError::TunnelLost { source }),
    }
}

/// TCP FIN (or TLS EOF) without a Close frame.
fn ended_without_close(error: &tungstenite::Error) -> bool {
    match error {
        tungstenite::Error::Protocol(
            tungstenite::error::ProtocolError::ResetWithoutClosingHandshake,
        ) => true,
        tungstenite::Error::Io(e) => e.kind() == std::io::ErrorKind::UnexpectedEof,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    //! Pump behaviour over in-memory pipes (no TLS, no sockets); the socket-level paths are in
    //! `core/tests/eic_client.rs`.
    use super::*;
    use tokio::io::duplex;
    use tokio_tungstenite::tungstenite::protocol::Role;

    async fn pair() -> (
        WebSocketStream<tokio::io::DuplexStream>,
        WebSocketStream<tokio::io::DuplexStream>,
    ) {
        let (client_io, server_io) = duplex(256 * 1024);
        let client = WebSocketStream::from_raw_socket(client_io, Role::Client, None).await;
        let server = WebSocketStream::from_raw_socket(server_io, Role::Server, None).await;
        (client, server)
    }

    #[tokio::test]
    async fn local_bytes_become_binary_frames_of_at_most_65000_bytes() {
        let (client, mut server) = pair().await;
        let (mut app, local) = duplex(1024 * 1024);
        let counters = TunnelCounters::new();
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let expected = data.clone();
        let server_side = async move {
            let mut got = Vec::new();
            let mut largest = 0;
            while let Some(msg) = server.next().await {
                match msg.unwrap() {
                    Message::Binary(b) => {
                        largest = largest.max(b.len());
                        got.extend_from_slice(&b);
                    }
                    Message::Close(frame) => {
                        assert_eq!(frame.map(|f| u16::from(f.code)), Some(1000));
                    }
                    other => panic!("unexpected {other:?}"),
                }
            }
            (got, largest)
        };
        let app_side = async move {
            app.write_all(&data).await.unwrap();
            app.shutdown().await.unwrap();
            // Keep the read half open until the pump shuts it.
            let mut rest = Vec::new();
            app.read_to_end(&mut rest).await.unwrap();
            rest
        };
        let (info, (got, largest), rest) =
            tokio::join!(pump(local, client, &counters), server_side, app_side);
        let info = info.unwrap();
        assert_eq!(info.ended_by, TunnelEnd::LocalEof);
        assert_eq!(info.code, Some(1000));
        assert_eq!(got, expected);
        assert!(largest <= MAX_FRAME_PAYLOAD, "largest frame {largest}");
        assert!(rest.is_empty());
        assert_eq!(counters.bytes_to_remote(), 200_000);
        assert_eq!(counters.bytes_from_remote(), 0);
    }

    #[tokio::test]
    async fn server_frames_reach_the_local_side_unchanged_and_a_normal_close_is_ok() {
        let (client, mut server) = pair().await;
        let (mut app, local) = duplex(64 * 1024);
        let counters = TunnelCounters::new();
        let server_side = async move {
            server
                .send(Message::Binary(vec![1u8; 100_000].into()))
                .await
                .unwrap();
            server
                .send(Message::Binary(b"tail".to_vec().into()))
                .await
                .unwrap();
            server
                .send(Message::Close(Some(CloseFrame {
                    code: CloseCode::Normal,
                    reason: "bye".into(),
                })))
                .await
                .unwrap();
            while server.next().await.is_some() {}
        };
        let app_side = async move {
            let mut got = Vec::new();
            app.read_to_end(&mut got).await.unwrap();
            got
        };
        let (info, (), got) = tokio::join!(pump(local, client, &counters), server_side, app_side);
        let info = info.unwrap();
        assert_eq!(
            info,
            CloseInfo {
                ended_by: TunnelEnd::ServerClose,
                code: Some(1000),
                reason: "bye".into()
            }
        );
        assert_eq!(got.len(), 100_004);
        assert!(got.ends_with(b"tail"));
        assert_eq!(counters.bytes_from_remote(), 100_004);
    }

    #[tokio::test]
    async fn an_empty_close_payload_is_a_clean_end() {
        let (client, mut server) = pair().await;
        let (_app, local) = duplex(1024);
        let server_side = async move {
            server.send(Message::Close(None)).await.unwrap();
            while server.next().await.is_some() {}
        };
        let counters = TunnelCounters::new();
        let (info, ()) = tokio::join!(pump(local, client, &counters), server_side);
        assert_eq!(
            info.unwrap(),
            CloseInfo {
                ended_by: TunnelEnd::ServerClose,
                code: None,
                reason: String::new()
            }
        );
    }

    #[tokio::test]
    async fn the_connection_ending_without_close_is_a_normal_end() {
        let (client, server) = pair().await;
        let (_app, local) = duplex(1024);
        drop(server);
        let info = pump(local, client, &TunnelCounters::new()).await.unwrap();
        assert_eq!(info.ended_by, TunnelEnd::ConnectionEnded);
        assert_eq!(info.code, None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_server_that_never_answers_our_close_does_not_hold_the_pump() {
        let (client, server) = pair().await;
        let (mut app, local) = duplex(1024);
        app.shutdown().await.unwrap();
        let started = Instant::now();
        let info = pump(local, client, &TunnelCounters::new()).await.unwrap();
        assert_eq!(info.ended_by, TunnelEnd::LocalEof);
        assert_eq!(info.code, None);
        assert!(started.elapsed() >= CLOSE_WAIT && started.elapsed() < CLOSE_WAIT * 2);
        drop(server);
    }

    #[tokio::test]
    async fn pings_are_answered_while_the_tunnel_is_idle() {
        let (client, mut server) = pair().await;
        let (_app, local) = duplex(1024);
        let server_side = async move {
            server
                .send(Message::Ping(b"are you there".to_vec().into()))
                .await
                .unwrap();
            let reply = tokio::time::timeout(Duration::from_secs(5), server.next())
                .await
                .expect("no pong in time");
            assert_eq!(
                reply.unwrap().unwrap(),
                Message::Pong(b"are you there".to_vec().into())
            );
            server.send(Message::Close(None)).await.unwrap();
            while server.next().await.is_some() {}
        };
        let counters = TunnelCounters::new();
        let (info, ()) = tokio::join!(pump(local, client, &counters), server_side);
        assert_eq!(info.unwrap().ended_by, TunnelEnd::ServerClose);
    }
}
