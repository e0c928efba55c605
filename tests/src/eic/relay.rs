//! An admitted tunnel: connect to the target, then carry bytes between the WebSocket and the
//! target until one side ends, the tunnel's time is up, or the simulator stops.
//!
//! Like the product's pump, both directions run at once (a sequential loop deadlocks as soon as
//! both sides are blocked writing to each other), each holding at most one frame or one read.
//! How the tunnel ends decides its Close frame:
//!
//! | ending | Close |
//! |---|---|
//! | target unreachable | 1011 "Unable to connect to target" (reason as AWS sends it; the code is a guess) |
//! | target closed its side | 1000 |
//! | `maxTunnelDuration` reached | 1000 "Maximum tunnel duration reached" (AWS documents no code or reason) |
//! | a text frame from the client | 1003 |
//! | simulator stopping | 1001 |
//! | client closed | the client's Close, echoed |
//! | cut by a test (fault injection) | none: the connection just ends |

use std::time::Duration;

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt as _, StreamExt as _};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use super::admission::{Admitted, Target};
use crate::listener::{BoxedIo, ShutdownSignal, stopped};
use crate::world::World;

/// The reason AWS gives when the endpoint cannot reach the target.
pub const UNREACHABLE: &str = "Unable to connect to target";

/// How long the endpoint waits for the client's Close reply.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// Bytes read from the target per frame.
const READ_CHUNK: usize = 32 * 1024;

type Sink = SplitSink<WebSocketStream<BoxedIo>, Message>;
type Stream = SplitStream<WebSocketStream<BoxedIo>>;

pub async fn run(
    world: &World,
    websocket: WebSocketStream<BoxedIo>,
    admitted: Admitted,
    shutdown: ShutdownSignal,
) {
    let Admitted {
        endpoint_id,
        max_duration,
        target,
        slot,
        ..
    } = admitted;
    let (mut sink, mut stream) = websocket.split();
    let connected = match target {
        Target::Reachable {
            instance_id,
            backend,
        } => world
            .dial_backend(&instance_id, backend)
            .await
            .map_err(|error| format!("{instance_id} ({backend}) refused: {error}")),
        Target::Unreachable(reason) => Err(reason),
    };
    let target = match connected {
        Ok(target) => target,
        Err(reason) => {
            tracing::info!(%endpoint_id, %reason, "closing the tunnel: {UNREACHABLE}");
            close(&mut sink, &mut stream, CloseCode::Error, UNREACHABLE).await;
            return;
        }
    };
    let time_limit = world.clock.real_duration(max_duration);
    let cut = world.faults.tunnel_cut(&endpoint_id);
    let ending = carry(&mut sink, &mut stream, target, time_limit, cut, shutdown).await;
    tracing::debug!(%endpoint_id, ?ending, "tunnel ended");
    match ending {
        Ending::ClientClosed => {
            // tungstenite has queued the reply to the client's Close; send it.
            let _ = sink.close().await;
        }
        Ending::TargetClosed => close(&mut sink, &mut stream, CloseCode::Normal, "").await,
        Ending::TimeUp => {
            close(
                &mut sink,
                &mut stream,
                CloseCode::Normal,
                "Maximum tunnel duration reached",
            )
            .await;
        }
        Ending::TextFrame => {
            close(
                &mut sink,
                &mut stream,
                CloseCode::Unsupported,
                "Tunnels carry binary frames only",
            )
            .await;
        }
        Ending::Stopping => close(&mut sink, &mut stream, CloseCode::Away, "").await,
        // Dropping the WebSocket without a Close frame is the fault.
        Ending::Cut => tracing::info!(%endpoint_id, "tunnel cut (injected)"),
    }
    drop(slot);
}

#[derive(Debug)]
enum Ending {
    ClientClosed,
    TargetClosed,
    TimeUp,
    TextFrame,
    Stopping,
    /// A test cut the connection (fault injection).
    Cut,
}

async fn carry(
    sink: &mut Sink,
    stream: &mut Stream,
    target: BoxedIo,
    time_limit: Duration,
    cut: impl std::future::Future<Output = ()>,
    mut shutdown: ShutdownSignal,
) -> Ending {
    let (mut from_target, mut to_target) = tokio::io::split(target);
    let upstream = async {
        while let Some(message) = stream.next().await {
            match message {
                Ok(Message::Binary(data)) => {
                    if to_target.write_all(&data).await.is_err() {
                        return Ending::TargetClosed;
                    }
                }
                Ok(Message::Text(_)) => return Ending::TextFrame,
                Ok(Message::Close(_)) | Err(_) => break,
                // Pings are answered by tungstenite as the stream is read.
                Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) => {}
            }
        }
        let _ = to_target.shutdown().await;
        Ending::ClientClosed
    };
    let downstream = async {
        let mut buffer = vec![0; READ_CHUNK];
        loop {
            match from_target.read(&mut buffer).await {
                Ok(0) | Err(_) => return Ending::TargetClosed,
                Ok(n) => {
                    if sink
                        .send(Message::binary(buffer[..n].to_vec()))
                        .await
                        .is_err()
                    {
                        return Ending::ClientClosed;
                    }
                }
            }
        }
    };
    tokio::select! {
        ending = upstream => ending,
        ending = downstream => ending,
        () = tokio::time::sleep(time_limit) => Ending::TimeUp,
        () = cut => Ending::Cut,
        () = stopped(&mut shutdown) => Ending::Stopping,
    }
}

/// Sends a Close frame and waits (briefly) for the client's reply.
async fn close(sink: &mut Sink, stream: &mut Stream, code: CloseCode, reason: &str) {
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    if sink.send(Message::Close(Some(frame))).await.is_err() {
        return;
    }
    let _ = tokio::time::timeout(CLOSE_WAIT, async {
        while let Some(Ok(message)) = stream.next().await {
            if message.is_close() {
                break;
            }
        }
    })
    .await;
    let _ = sink.close().await;
}
