//! The data plane of an open session (spec §7): how the channel's Output byte stream maps onto
//! local streams, decided by the handshake ([`PortForwarding`]).
//!
//! - **Mux**: an [`MuxClient`] over the byte stream, one smux stream per local stream, any
//!   number at once. Local data goes through the mux in turns (a fixed quantum per stream, so
//!   one busy connection cannot starve the others); agent data waits in the channel while any
//!   local stream's buffer is full (smux v1 has no per-stream windows).
//! - **Basic**: one local stream at a time, raw bytes both ways; its close is signalled with
//!   the DisconnectToPort flag. After that, agent output that arrives before the next local
//!   stream sends anything came from the old destination connection (the agent re-dials only
//!   on our next data) and is dropped, rather than handed to the next connection as the
//!   plugin does.
//! - **Stream** (`AWS-StartSSHSession`): one local stream, raw bytes; when its local side
//!   ends, the whole session ends (the driver flushes and terminates it).
//!
//! Until a local stream is attached, agent output is held back (and so left unacknowledged),
//! as the plugin does for "not ready" handlers: a server that speaks first (sshd's banner)
//! loses nothing.
//!
//! Everything here is synchronous: the driver calls it between socket reads and writes.

use std::collections::BTreeMap;
use std::io;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use bytes::{Buf, Bytes};
use futures_util::task::AtomicWaker;

use super::state::Counters;
use super::stream::{SessionStream, StreamEnd, StreamShared};
use crate::ssm::mux::{MuxClient, MuxConfig, MuxEvent, OpenError, StreamId, WriteError};
use crate::ssm::proto::{ClientFlag, DataChannel, PortForwarding};

/// Local bytes moved into the mux per stream per turn.
const QUANTUM: usize = 16 * 1024;

/// Why a local stream could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StreamError {
    /// Basic and stream-mode sessions carry one connection at a time (spec §7.2); the agent
    /// is older than 3.0.196.0 or the document has no `LocalPortForwarding` type.
    #[error(
        "this session carries one connection at a time (the SSM agent does not support \
         multiplexing) and one is open; close it first or start another session"
    )]
    Busy,
    /// The smux stream ids of this session are used up.
    #[error("this session cannot open more connections; start a new session")]
    Exhausted,
    /// The session is over.
    #[error("the session is closed: {0}")]
    Closed(String),
}

/// What the plane needs from the session around it.
#[derive(Debug, Clone)]
pub(crate) struct PlaneContext {
    pub(crate) stream_buffer: usize,
    pub(crate) driver: Arc<AtomicWaker>,
    pub(crate) counters: Arc<Counters>,
}

impl PlaneContext {
    fn new_stream(&self) -> Arc<StreamShared> {
        self.counters.open_streams.fetch_add(1, Ordering::Relaxed);
        StreamShared::new(self.stream_buffer, self.driver.clone())
    }

    fn finish_stream(&self, stream: &StreamShared, end: StreamEnd) {
        self.counters.open_streams.fetch_sub(1, Ordering::Relaxed);
        stream.finish(end);
    }
}

pub(crate) struct DataPlane {
    context: PlaneContext,
    mode: Mode,
}

enum Mode {
    Mux(Box<MuxPlane>),
    Single(SinglePlane),
}

struct MuxPlane {
    mux: MuxClient,
    streams: BTreeMap<StreamId, Arc<StreamShared>>,
    /// Channel output the mux has not taken yet.
    input: Bytes,
    /// The stream whose turn comes first next time.
    next_turn: Option<StreamId>,
    /// The agent reported ConnectToPortError; the FIN that follows is that failure.
    connect_failed: bool,
    failure: Option<String>,
}

struct SinglePlane {
    /// Basic mode: whether the agent understands the TerminateSession flag. `None` in stream
    /// mode.
    basic: Option<bool>,
    current: Option<Arc<StreamShared>>,
    /// Stream mode carries exactly one stream in its life.
    used: bool,
    /// Basic mode, after DisconnectToPort: output belongs to the old connection.
    discard_output: bool,
    /// Stream mode: the local side ended, so the session should.
    local_finished: bool,
}

impl DataPlane {
    pub(crate) fn new(mode: PortForwarding, context: PlaneContext, now: Instant) -> Self {
        let mode = match mode {
            PortForwarding::Mux { smux_keepalive } => Mode::Mux(Box::new(MuxPlane {
                mux: MuxClient::new(MuxConfig::for_agent(smux_keepalive), now),
                streams: BTreeMap::new(),
                input: Bytes::new(),
                next_turn: None,
                connect_failed: false,
                failure: None,
            })),
            PortForwarding::Basic {
                terminate_flag_supported,
            } => Mode::Single(SinglePlane::new(Some(terminate_flag_supported))),
            PortForwarding::Stream => Mode::Single(SinglePlane::new(None)),
        };
        DataPlane { context, mode }
    }

    /// Whether the agent understands the in-band TerminateSession flag (spec §7.1).
    pub(crate) fn terminate_flag_supported(&self) -> bool {
        match &self.mode {
            Mode::Single(single) => single.basic.unwrap_or(true),
            Mode::Mux(_) => true,
        }
    }

    pub(crate) fn open_stream(&mut self) -> Result<SessionStream, StreamError> {
        let shared = match &mut self.mode {
            Mode::Mux(plane) => {
                let id = plane.mux.open_stream().map_err(|error| match error {
                    OpenError::StreamIdsExhausted => StreamError::Exhausted,
                    OpenError::Closed => StreamError::Closed(error.to_string()),
                })?;
                let shared = self.context.new_stream();
                plane.streams.insert(id, shared.clone());
                shared
            }
            Mode::Single(single) => {
                if single.current.is_some() || (single.basic.is_none() && single.used) {
                    return Err(StreamError::Busy);
                }
                let shared = self.context.new_stream();
                single.current = Some(shared.clone());
                single.used = true;
                shared
            }
        };
        Ok(SessionStream::new(shared))
    }

    /// Moves local data into the channel (through the mux in mux mode) and handles local
    /// closes. Returns whether anything moved.
    pub(crate) fn move_local(&mut self, channel: &mut DataChannel) -> bool {
        match &mut self.mode {
            Mode::Mux(plane) => plane.move_local(channel, &self.context),
            Mode::Single(single) => single.move_local(channel, &self.context),
        }
    }

    /// Delivers events the mux has ready (mux mode). Returns whether anything happened.
    pub(crate) fn deliver_pending(&mut self) -> bool {
        match &mut self.mode {
            Mode::Mux(plane) => plane.deliver(&self.context),
            Mode::Single(_) => false,
        }
    }

    /// Whether channel output can be taken now (backpressure towards the agent).
    pub(crate) fn can_accept_output(&self) -> bool {
        match &self.mode {
            Mode::Mux(plane) => plane.input.is_empty() && plane.failure.is_none(),
            Mode::Single(single) => {
                single.discard_output
                    || single
                        .current
                        .as_ref()
                        .is_some_and(|stream| !stream.is_incoming_full())
            }
        }
    }

    /// Takes one Output payload from the channel.
    pub(crate) fn deliver_output(&mut self, data: Bytes) {
        match &mut self.mode {
            Mode::Mux(plane) => {
                plane.input = data;
                plane.deliver(&self.context);
            }
            Mode::Single(single) => match &single.current {
                Some(stream) if !single.discard_output => {
                    let delivered = stream.push_incoming(data);
                    self.context.counters.add_received(delivered);
                }
                _ => tracing::debug!(
                    bytes = data.len(),
                    "dropping output of a closed basic-mode connection"
                ),
            },
        }
    }

    /// The agent could not reach the destination for a new smux stream.
    pub(crate) fn connect_to_port_failed(&mut self) {
        tracing::warn!("the SSM agent could not connect to the destination port");
        if let Mode::Mux(plane) = &mut self.mode {
            plane.connect_failed = true;
        }
    }

    /// A reason the session cannot go on (the agent broke smux), once.
    pub(crate) fn take_failure(&mut self) -> Option<String> {
        match &mut self.mode {
            Mode::Mux(plane) => plane.failure.take(),
            Mode::Single(_) => None,
        }
    }

    /// Stream mode: the local side ended, so the session should end once its data is sent.
    pub(crate) fn local_finished(&self) -> bool {
        matches!(&self.mode, Mode::Single(single) if single.local_finished)
    }

    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        match &self.mode {
            Mode::Mux(plane) => plane.mux.poll_timeout(),
            Mode::Single(_) => None,
        }
    }

    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        if let Mode::Mux(plane) = &mut self.mode {
            plane.mux.handle_timeout(now);
            plane.deliver(&self.context);
        }
    }

    /// Ends every local stream (the session is over).
    pub(crate) fn finish_all(&mut self, end: &StreamEnd) {
        match &mut self.mode {
            Mode::Mux(plane) => {
                for stream in std::mem::take(&mut plane.streams).into_values() {
                    self.context.finish_stream(&stream, end.clone());
                }
            }
            Mode::Single(single) => {
                if let Some(stream) = single.current.take() {
                    self.context.finish_stream(&stream, end.clone());
                }
            }
        }
    }
}

impl MuxPlane {
    fn move_local(&mut self, channel: &mut DataChannel, context: &PlaneContext) -> bool {
        let mut progress = false;
        // Local streams into the mux, a quantum per stream per round.
        loop {
            let mut moved = false;
            let order: Vec<StreamId> = match self.next_turn {
                Some(first) => self
                    .streams
                    .range(first..)
                    .chain(self.streams.range(..first))
                    .map(|(id, _)| *id)
                    .collect(),
                None => self.streams.keys().copied().collect(),
            };
            for id in order {
                if self.mux.send_capacity() == 0 {
                    self.next_turn = Some(id);
                    break;
                }
                let Some(stream) = self.streams.get(&id) else {
                    continue;
                };
                let mut refused = None;
                let taken = stream.drain_outgoing(|data| {
                    let chunk = &data[..data.len().min(QUANTUM)];
                    self.mux.write(id, chunk).unwrap_or_else(|error| {
                        refused = Some(error);
                        0
                    })
                });
                context.counters.add_sent(taken);
                moved |= taken > 0;
                match refused {
                    Some(WriteError::UnknownStream | WriteError::Closed) => {
                        // The agent closed it (its FIN is being delivered) or the mux died.
                        if let Some(stream) = self.streams.remove(&id) {
                            context.finish_stream(&stream, StreamEnd::Eof);
                        }
                    }
                    Some(WriteError::Full) | None => {}
                }
                if stream_finished(&self.streams, id) {
                    self.mux.close(id);
                    if let Some(stream) = self.streams.remove(&id) {
                        context.finish_stream(&stream, StreamEnd::Eof);
                    }
                    moved = true;
                }
            }
            progress |= moved;
            if !moved || self.mux.send_capacity() == 0 {
                break;
            }
        }
        // The mux's frames into the channel, as far as the channel takes them.
        loop {
            let capacity = channel.send_capacity();
            let Some(chunk) = self.mux.poll_output(capacity) else {
                break;
            };
            let taken = channel.send_data(&chunk).unwrap_or(0);
            debug_assert_eq!(taken, chunk.len(), "send_capacity promised room");
            progress = true;
        }
        progress
    }

    /// Feeds held channel output to the mux and hands its events to the streams, while no
    /// stream's buffer is full. Returns whether anything happened.
    fn deliver(&mut self, context: &PlaneContext) -> bool {
        let mut progress = false;
        loop {
            if !self.input.is_empty() {
                let taken = self.mux.handle_input(&self.input);
                self.input.advance(taken);
                progress |= taken > 0;
            }
            if self.streams.values().any(|s| s.is_incoming_full()) {
                return progress;
            }
            let Some(event) = self.mux.poll_event() else {
                return progress;
            };
            progress = true;
            match event {
                MuxEvent::StreamData { id, data } => {
                    if let Some(stream) = self.streams.get(&id) {
                        context.counters.add_received(stream.push_incoming(data));
                    }
                }
                MuxEvent::StreamClosed { id } => {
                    let end = if std::mem::take(&mut self.connect_failed) {
                        StreamEnd::Failed {
                            kind: io::ErrorKind::ConnectionRefused,
                            message: "the SSM agent could not connect to the destination \
                                      port; check that the service is listening and the SSM \
                                      agent's logs"
                                .into(),
                        }
                    } else {
                        StreamEnd::Eof
                    };
                    if let Some(stream) = self.streams.remove(&id) {
                        context.finish_stream(&stream, end);
                    }
                }
                MuxEvent::Closed(reason) => {
                    self.input = Bytes::new();
                    self.failure = Some(reason.to_string());
                    return true;
                }
            }
        }
    }
}

fn stream_finished(streams: &BTreeMap<StreamId, Arc<StreamShared>>, id: StreamId) -> bool {
    streams.get(&id).is_some_and(|s| s.is_local_finished())
}

impl SinglePlane {
    fn new(basic: Option<bool>) -> Self {
        SinglePlane {
            basic,
            current: None,
            used: false,
            discard_output: false,
            local_finished: false,
        }
    }

    fn move_local(&mut self, channel: &mut DataChannel, context: &PlaneContext) -> bool {
        let Some(stream) = &self.current else {
            return false;
        };
        let capacity = channel.send_capacity();
        let taken = if capacity > 0 {
            stream.drain_outgoing(|data| {
                channel
                    .send_data(&data[..data.len().min(capacity)])
                    .unwrap_or(0)
            })
        } else {
            0
        };
        if taken > 0 {
            self.discard_output = false;
            context.counters.add_sent(taken);
        }
        if self.local_finished || !stream.is_local_finished() {
            return taken > 0;
        }
        if self.basic.is_some() {
            if let Err(error) = channel.send_flag(ClientFlag::DisconnectToPort) {
                tracing::debug!(%error, "could not send DisconnectToPort");
            }
            if let Some(stream) = self.current.take() {
                context.finish_stream(&stream, StreamEnd::Eof);
            }
            self.discard_output = true;
        } else {
            self.local_finished = true;
        }
        true
    }
}
