//! The data channel endpoint (`ssmmessages`, spec §2): the WebSocket a StreamUrl points to.
//!
//! A connection is admitted in two steps, as with AWS:
//! 1. the upgrade: `GET /v1/data-channel/<session-id>` (any query), no credentials — anything
//!    else is refused with 404 before the upgrade;
//! 2. the first message: a text frame with the OpenDataChannel JSON, whose `TokenValue` must be
//!    a live token of that session. A missing, malformed or late first frame is closed with
//!    1002 (protocol error); a wrong or expired token, an unknown or terminated session with
//!    1008 (policy violation). AWS documents neither; the codes are the simulator's choice.
//!
//! Then the connection is attached to the session's agent (`agent`), which it serves until
//! either side ends it: binary frames (and, like the plugin's reader, text frames) go to the
//! agent; what the agent sends goes out as binary frames. The token is never logged.
//!
//! Like the service, a connection does not live forever: an hour after it opened (simulated
//! clock) it is closed with 1000 "Bye" (the hourly rotation, spec §8.3 and
//! aws/session-manager-plugin#135). The session and its agent live on; the client resumes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use serde::Deserialize;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use super::agent::{ClientLink, Outgoing};
use crate::listener::{BoxedIo, Listener, ShutdownSignal, stopped};
use crate::world::World;

/// The data channel's path, before the session id.
const PATH_PREFIX: &str = "/v1/data-channel/";

/// How long a client may take to send its upgrade request, and then its OpenDataChannel.
const UPGRADE_TIMEOUT: Duration = Duration::from_secs(10);
const OPEN_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the service keeps one data-channel WebSocket open before rotating it.
pub const ROTATION_PERIOD: Duration = Duration::from_secs(3600);
/// The Close frame of a rotation, as the service sends it.
const ROTATION_REASON: &str = "Bye";

/// Client frames waiting for the agent; beyond this the connection stops reading.
const INBOUND_FRAMES: usize = 64;

/// Serves the data channel on `listener` until the returned [`Listener`] is stopped.
pub fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    world: Arc<World>,
) -> std::io::Result<Listener> {
    Listener::serve(
        "Session Manager data channel",
        listener,
        tls,
        move |io, peer, shutdown| connection(Arc::clone(&world), io, peer, shutdown),
    )
}

/// The first text frame (§2). Only the token matters here; the other fields are read for the
/// log.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct OpenDataChannel {
    token_value: String,
    #[serde(default)]
    client_version: Option<String>,
}

type WebSocket = WebSocketStream<BoxedIo>;

#[expect(
    clippy::result_large_err,
    reason = "tungstenite's handshake callback returns its ErrorResponse by value"
)]
async fn connection(world: Arc<World>, io: BoxedIo, peer: SocketAddr, shutdown: ShutdownSignal) {
    let mut session_id = None;
    let check = |request: &Request, response: Response| -> Result<Response, ErrorResponse> {
        match request
            .uri()
            .path()
            .strip_prefix(PATH_PREFIX)
            .filter(|id| !id.is_empty() && !id.contains('/'))
        {
            Some(id) => {
                session_id = Some(id.to_owned());
                Ok(response)
            }
            None => {
                let mut refusal = ErrorResponse::new(Some("Not Found".to_owned()));
                *refusal.status_mut() = StatusCode::NOT_FOUND;
                Err(refusal)
            }
        }
    };
    let upgrade = tokio_tungstenite::accept_hdr_async_with_config(io, check, None);
    let mut websocket = match tokio::time::timeout(UPGRADE_TIMEOUT, upgrade).await {
        Ok(Ok(websocket)) => websocket,
        Ok(Err(error)) => {
            tracing::debug!(%peer, %error, "data channel upgrade did not complete");
            return;
        }
        Err(_) => {
            tracing::debug!(%peer, "data channel upgrade timed out");
            return;
        }
    };
    let Some(session_id) = session_id else {
        return;
    };
    let mut stopping = shutdown.clone();
    let first = tokio::select! {
        first = tokio::time::timeout(OPEN_TIMEOUT, websocket.next()) => first,
        () = stopped(&mut stopping) => {
            close(&mut websocket, CloseCode::Away, "").await;
            return;
        }
    };
    let open = match first {
        Ok(Some(Ok(WsMessage::Text(text)))) => serde_json::from_str::<OpenDataChannel>(&text)
            .map_err(|_| "The first message is not an OpenDataChannel request"),
        Ok(Some(Ok(_))) => Err("The first message must be the OpenDataChannel text frame"),
        Ok(Some(Err(_)) | None) => return,
        Err(_) => Err("No OpenDataChannel request arrived in time"),
    };
    let open = match open {
        Ok(open) => open,
        Err(reason) => {
            tracing::info!(%session_id, reason, "data channel refused");
            close(&mut websocket, CloseCode::Protocol, reason).await;
            return;
        }
    };
    let agent = match world.ssm.open(
        &world,
        &session_id,
        &open.token_value,
        world.clock.now(),
        shutdown,
    ) {
        Ok(agent) => agent,
        Err(refusal) => {
            tracing::info!(%session_id, reason = refusal.0, "data channel refused");
            close(&mut websocket, CloseCode::Policy, refusal.0).await;
            return;
        }
    };
    tracing::info!(
        %session_id,
        client_version = open.client_version.as_deref().unwrap_or("(none)"),
        "data channel open"
    );
    let (frames_tx, frames) = mpsc::channel(INBOUND_FRAMES);
    let (out, outgoing) = mpsc::unbounded_channel();
    if !agent.attach(ClientLink { frames, out }) {
        close(
            &mut websocket,
            CloseCode::Policy,
            "The session is terminated",
        )
        .await;
        return;
    }
    let rotation = world.clock.real_duration(ROTATION_PERIOD);
    if serve_client(websocket, frames_tx, outgoing, rotation).await {
        tracing::info!(%session_id, "data channel rotated");
    }
    tracing::debug!(%session_id, "data channel connection ended");
}

/// Carries frames between the WebSocket and the agent until either ends, or until `rotation`
/// has passed: then the connection is closed with 1000 "Bye" and `true` is returned.
async fn serve_client(
    websocket: WebSocket,
    frames: mpsc::Sender<Vec<u8>>,
    mut outgoing: mpsc::UnboundedReceiver<Outgoing>,
    rotation: Duration,
) -> bool {
    let (mut sink, mut stream) = websocket.split();
    let reading = async {
        while let Some(Ok(message)) = stream.next().await {
            let frame = match message {
                WsMessage::Binary(data) => data.to_vec(),
                WsMessage::Text(text) => text.as_bytes().to_vec(),
                WsMessage::Close(_) => break,
                WsMessage::Ping(_) | WsMessage::Pong(_) | WsMessage::Frame(_) => continue,
            };
            if frames.send(frame).await.is_err() {
                break;
            }
        }
    };
    let rotating = tokio::time::sleep(rotation);
    let writing = async {
        let mut rotating = std::pin::pin!(rotating);
        loop {
            let outgoing = tokio::select! {
                outgoing = outgoing.recv() => outgoing,
                () = &mut rotating => {
                    let frame = CloseFrame {
                        code: CloseCode::Normal,
                        reason: ROTATION_REASON.into(),
                    };
                    let _ = sink.send(WsMessage::Close(Some(frame))).await;
                    let _ = sink.close().await;
                    return true;
                }
            };
            let Some(outgoing) = outgoing else { break };
            match outgoing {
                Outgoing::Frame(frame) => {
                    if sink.send(WsMessage::binary(frame)).await.is_err() {
                        return false;
                    }
                }
                Outgoing::Close(code, reason) => {
                    let frame = CloseFrame {
                        code,
                        reason: reason.into(),
                    };
                    let _ = sink.send(WsMessage::Close(Some(frame))).await;
                    let _ = sink.close().await;
                    return false;
                }
                // Dropping the connection without a Close frame is the point.
                Outgoing::Cut => return false,
            }
        }
        // The agent has let this connection go (another replaced it).
        let _ = sink.close().await;
        false
    };
    tokio::select! {
        () = reading => false,
        rotated = writing => rotated,
    }
}

/// Refuses a connection with a Close frame.
async fn close(websocket: &mut WebSocket, code: CloseCode, reason: &str) {
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    let _ = websocket.send(WsMessage::Close(Some(frame))).await;
    let _ = tokio::time::timeout(Duration::from_secs(2), websocket.close(None)).await;
}
