//! The agent's side of a fake session: the crate's [`TestAgent`] (reliable channel) and
//! [`TestServer`] (smux) glued to real destination connections, across WebSocket connections.
//!
//! Like the agent, it dials the destination at session start in basic and stream mode and per
//! smux stream in mux mode, honours DisconnectToPort and TerminateSession, and ends a stream
//! session (`channel_closed`) when its destination hangs up.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use uuid::Uuid;

use super::fake::{CutStyle, Destination, FakeService, Scenario};
use crate::ssm::mux::test_server::TestServer;
use crate::ssm::proto::PortForwarding;
use crate::ssm::proto::message::{AgentMessage, FLAG_FIN, FLAG_SYN, MessageType, PayloadType};
use crate::ssm::proto::test_agent::TestAgent;

/// Something from a destination connection, keyed by smux stream id (mux) or connection
/// number (basic and stream mode).
enum DestEvent {
    Data(u32, Bytes),
    Eof(u32),
}

/// The agent's side of one session; it outlives WebSocket connections.
pub(super) struct AgentSide {
    pub(super) agent: TestAgent,
    mode: PortForwarding,
    destination: Destination,
    mux: TestServer,
    /// Open destination connections by key; dropping the sender closes the connection.
    conns: BTreeMap<u32, mpsc::UnboundedSender<Bytes>>,
    /// Mux: streams that got a destination connection (each gets one, once).
    dialed: HashSet<u32>,
    /// Basic and stream mode: the key of the current connection.
    current: Option<u32>,
    next_key: u32,
    events_tx: mpsc::UnboundedSender<DestEvent>,
    events: mpsc::UnboundedReceiver<DestEvent>,
    flags_seen: usize,
    pub(super) connections: usize,
    cuts: Vec<(usize, CutStyle)>,
    deaf: bool,
    handshake_done: bool,
    /// Stream mode: the destination closed; the session ends once its output is delivered.
    hung_up: bool,
}

impl AgentSide {
    pub(super) fn new(agent: TestAgent, mode: PortForwarding, scenario: &Scenario) -> Self {
        let (events_tx, events) = mpsc::unbounded_channel();
        let mut side = AgentSide {
            agent,
            mode,
            destination: scenario.destination,
            mux: TestServer::default(),
            conns: BTreeMap::new(),
            dialed: HashSet::new(),
            current: None,
            next_key: 1,
            events_tx,
            events,
            flags_seen: 0,
            connections: 0,
            cuts: scenario.cuts.iter().rev().copied().collect(),
            deaf: scenario.deaf_agent,
            handshake_done: false,
            hung_up: false,
        };
        if !matches!(mode, PortForwarding::Mux { .. }) {
            // Like the agent, dial the destination at session start (so a server that
            // speaks first is heard before any local connection exists).
            side.current = Some(side.next_key);
            side.dial(side.next_key);
            side.next_key += 1;
        }
        side
    }

    /// Serves one connection until it ends; `true` if it is to be frozen rather than closed.
    pub(super) async fn run<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        ws: &mut WebSocketStream<S>,
        service: &FakeService,
        session_id: &str,
    ) -> bool {
        loop {
            let now = Instant::now().into_std();
            while let Some(frame) = self.agent.poll_transmit(now) {
                if ws.feed(Message::Binary(frame)).await.is_err() {
                    return false;
                }
            }
            if ws.flush().await.is_err() {
                return false;
            }
            let delivered = self.hung_up && self.agent.all_acknowledged();
            let (client_bytes, ended) = service.with_record(session_id, |record| {
                record.ended |= delivered;
                record.violations.append(&mut self.agent.violations);
                record.violations.append(&mut self.mux.violations);
                (record.client_bytes, record.ended)
            });
            if ended {
                self.close_channel(ws, session_id).await;
                return false;
            }
            if let Some(&(at, style)) = self.cuts.last()
                && client_bytes >= at
            {
                self.cuts.pop();
                if style == CutStyle::Bye {
                    let bye = CloseFrame {
                        code: CloseCode::Normal,
                        reason: "Bye".into(),
                    };
                    let _ = ws.close(Some(bye)).await;
                }
                return style == CutStyle::Freeze;
            }
            let timeout = self.agent.next_timeout().map_or_else(
                || Instant::now() + Duration::from_secs(3600),
                Instant::from_std,
            );
            tokio::select! {
                message = ws.next() => match message {
                    Some(Ok(Message::Binary(frame))) => {
                        if self.deaf && self.handshake_done {
                            continue;
                        }
                        self.on_frame(&frame, service, session_id);
                    }
                    Some(Ok(Message::Text(_))) => service.with_record(session_id, |r| {
                        r.violations.push("a text frame after OpenDataChannel".into())
                    }),
                    Some(Ok(_)) => {}
                    Some(Err(_)) | None => return false,
                },
                Some(event) = self.events.recv() => self.on_destination(event),
                () = tokio::time::sleep_until(timeout) => {
                    self.agent.handle_timeout(Instant::now().into_std());
                }
            }
        }
    }

    fn on_frame(&mut self, frame: &[u8], service: &FakeService, session_id: &str) {
        let now = Instant::now();
        if let Ok(message) = AgentMessage::decode(frame)
            && message.message_type == MessageType::InputStreamData
        {
            service.with_record(session_id, |r| {
                r.stream_frames.push((now, message.payload.len()))
            });
        }
        self.agent.handle(frame, now.into_std());
        self.handshake_done |= self.agent.response.is_some();
        let new_flags: Vec<u32> = self.agent.flags[self.flags_seen..].to_vec();
        self.flags_seen = self.agent.flags.len();
        let data = std::mem::take(&mut self.agent.received);
        service.with_record(session_id, |r| {
            r.flags.extend(&new_flags);
            r.client_bytes += data.len();
        });
        if !data.is_empty() {
            self.forward_to_destination(&data);
        }
        for flag in new_flags {
            match flag {
                // DisconnectToPort: the agent drops its destination connection.
                1 => {
                    if let Some(key) = self.current.take() {
                        self.conns.remove(&key);
                    }
                }
                // TerminateSession: the agent cancels; the service then closes the channel.
                2 => service.with_record(session_id, |r| r.ended = true),
                other => service.with_record(session_id, |r| {
                    r.violations.push(format!("unknown flag {other}"))
                }),
            }
        }
    }

    fn forward_to_destination(&mut self, data: &[u8]) {
        match self.mode {
            PortForwarding::Mux { .. } => {
                self.mux.handle_input(data);
                let ids: Vec<u32> = self.mux.streams.keys().copied().collect();
                for id in ids {
                    let stream = self.mux.streams.get_mut(&id).unwrap();
                    let received = std::mem::take(&mut stream.received);
                    let fin = stream.fin_received;
                    if self.dialed.insert(id) {
                        self.dial(id);
                    }
                    if let Some(conn) = self.conns.get(&id)
                        && !received.is_empty()
                    {
                        let _ = conn.send(Bytes::from(received));
                    }
                    if fin {
                        self.conns.remove(&id);
                    }
                }
                self.mux_output();
            }
            PortForwarding::Basic { .. } | PortForwarding::Stream => {
                let key = match self.current {
                    Some(key) => key,
                    None => {
                        let key = self.next_key;
                        self.next_key += 1;
                        self.current = Some(key);
                        self.dial(key);
                        key
                    }
                };
                if let Some(conn) = self.conns.get(&key) {
                    let _ = conn.send(Bytes::copy_from_slice(data));
                }
            }
        }
    }

    fn mux_output(&mut self) {
        if self.mux.has_output() {
            let output = self.mux.take_output(usize::MAX);
            self.agent.send_output(&output);
        }
    }

    fn on_destination(&mut self, event: DestEvent) {
        match (self.mode, event) {
            (PortForwarding::Mux { .. }, DestEvent::Data(id, data)) => {
                if self.mux.streams.get(&id).is_some_and(|s| !s.fin_received) {
                    self.mux.write(id, &data);
                }
            }
            (PortForwarding::Mux { .. }, DestEvent::Eof(id)) => {
                self.conns.remove(&id);
                self.mux.close(id);
            }
            (_, DestEvent::Data(key, data)) => {
                if self.current == Some(key) {
                    self.agent.send_output(&data);
                }
            }
            (PortForwarding::Stream, DestEvent::Eof(key)) if self.current == Some(key) => {
                // sshd closed: the session is over once what it said is delivered.
                self.hung_up = true;
            }
            (_, DestEvent::Eof(key)) => {
                self.conns.remove(&key);
                if self.current == Some(key) {
                    self.current = None;
                }
            }
        }
        self.mux_output();
    }

    /// Opens a destination connection for `key`.
    fn dial(&mut self, key: u32) {
        let (tx, mut rx) = mpsc::unbounded_channel::<Bytes>();
        self.conns.insert(key, tx);
        let events = self.events_tx.clone();
        let Destination::Tcp(addr) = self.destination else {
            // Discard: swallow everything.
            tokio::spawn(async move { while rx.recv().await.is_some() {} });
            return;
        };
        tokio::spawn(async move {
            let tcp = TcpStream::connect(addr).await.unwrap();
            let (mut read, mut write) = tcp.into_split();
            let writer = async move {
                while let Some(data) = rx.recv().await {
                    if write.write_all(&data).await.is_err() {
                        break;
                    }
                }
                let _ = write.shutdown().await;
            };
            let reader = async move {
                let mut buffer = vec![0u8; 32 * 1024];
                while let Ok(n @ 1..) = read.read(&mut buffer).await {
                    let _ = events.send(DestEvent::Data(key, Bytes::copy_from_slice(&buffer[..n])));
                }
                let _ = events.send(DestEvent::Eof(key));
            };
            tokio::join!(writer, reader);
        });
    }

    /// The service's `channel_closed`, then the end of the connection.
    async fn close_channel<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        ws: &mut WebSocketStream<S>,
        session_id: &str,
    ) {
        let payload = json!({
            "MessageType": "channel_closed",
            "SessionId": session_id,
            "Output": "",
            "SchemaVersion": 1,
        });
        let message = AgentMessage {
            message_type: MessageType::ChannelClosed,
            schema_version: 1,
            created_date: 1_700_000_000_000,
            sequence_number: 0,
            flags: FLAG_SYN | FLAG_FIN,
            message_id: Uuid::new_v4(),
            payload_type: PayloadType::Unset,
            payload: Bytes::from(payload.to_string()),
        };
        let _ = ws.send(Message::Binary(message.encode().into())).await;
        let _ = ws.close(None).await;
    }
}
