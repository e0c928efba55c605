//! The smux v1 client session as a deterministic state machine.
//!
//! Bytes from the data channel go in through [`MuxClient::handle_input`], bytes for the data
//! channel come out of [`MuxClient::poll_output`], stream data and closes come out of
//! [`MuxClient::poll_event`], and keepalive runs on [`MuxClient::poll_timeout`] /
//! [`MuxClient::handle_timeout`]. See the module documentation of [`super`] for the
//! backpressure design.

use std::collections::{BTreeSet, VecDeque};
use std::fmt;
use std::num::NonZeroU16;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use super::frame::{self, Command, Frame, FrameError, HEADER_LEN};

/// Unparsed input is held only up to one maximal frame, so a complete frame always fits.
const INBOUND_LIMIT: usize = HEADER_LEN + u16::MAX as usize;

/// smux keepalive: a NOP every `interval`, and the session ends if nothing at all arrived
/// during a `timeout` period (unless our own receive buffer is what stopped us reading).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keepalive {
    pub interval: Duration,
    pub timeout: Duration,
}

impl Default for Keepalive {
    /// smux `DefaultConfig`: 10 s interval, 30 s timeout.
    fn default() -> Self {
        Keepalive {
            interval: Duration::from_secs(10),
            timeout: Duration::from_secs(30),
        }
    }
}

/// Tuning for one [`MuxClient`].
#[derive(Debug, Clone)]
pub struct MuxConfig {
    /// `None` disables keepalive, as agents newer than 3.1.1511.0 expect (spec §7.1).
    pub keepalive: Option<Keepalive>,
    /// The largest PSH payload sent (smux default 32768).
    pub max_frame_size: NonZeroU16,
    /// Received stream bytes handed out as events but not yet taken, beyond which input is
    /// no longer parsed (smux `MaxReceiveBuffer`, 4 MiB).
    pub max_receive_buffer: usize,
    /// Output bytes queued for the data channel, beyond which `write` pushes back.
    pub max_send_buffer: usize,
}

impl MuxConfig {
    /// The configuration for an agent, given whether its smux server runs keepalive
    /// ([`PortForwarding::Mux`](crate::ssm::proto::mode::PortForwarding::Mux)).
    pub fn for_agent(smux_keepalive: bool) -> Self {
        MuxConfig {
            keepalive: smux_keepalive.then(Keepalive::default),
            max_frame_size: NonZeroU16::new(32768).expect("non-zero"),
            max_receive_buffer: 4 * 1024 * 1024,
            max_send_buffer: 256 * 1024,
        }
    }
}

/// A stream's id: odd, from 3, as smux clients number them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamId(u32);

impl StreamId {
    pub fn get(self) -> u32 {
        self.0
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "stream {}", self.0)
    }
}

/// What the application learns from the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MuxEvent {
    /// Bytes for one stream, in order.
    StreamData { id: StreamId, data: Bytes },
    /// The agent closed the stream (its destination connection ended or failed). The stream
    /// is gone; we already answered with our own FIN, as the plugin does.
    StreamClosed { id: StreamId },
    /// The session is over; every stream with it.
    Closed(MuxCloseReason),
}

/// Why the session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MuxCloseReason {
    #[error("the agent sent an invalid smux frame: {0}")]
    Protocol(FrameError),
    #[error("no smux frame arrived within the keepalive timeout")]
    KeepaliveTimeout,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    #[error("all smux stream ids are used; start a new session")]
    StreamIdsExhausted,
    #[error("the smux session is closed")]
    Closed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    #[error("the stream is not open (closed by either side, or never opened)")]
    UnknownStream,
    #[error("the smux send buffer is full; drain poll_output first")]
    Full,
    #[error("the smux session is closed")]
    Closed,
}

#[derive(Debug)]
struct KeepaliveTimers {
    config: Keepalive,
    next_ping: Instant,
    next_check: Instant,
    frame_seen: bool,
}

/// The client end of an smux v1 session. See the module documentation.
#[derive(Debug)]
pub struct MuxClient {
    config: MuxConfig,
    /// The last id handed out; smux clients start at 1 and add 2 before use.
    last_id: u32,
    open: BTreeSet<u32>,
    inbound: BytesMut,
    events: VecDeque<MuxEvent>,
    /// Stream bytes in `events`.
    buffered: usize,
    output: VecDeque<Bytes>,
    output_len: usize,
    keepalive: Option<KeepaliveTimers>,
    closed: bool,
}

impl MuxClient {
    pub fn new(config: MuxConfig, now: Instant) -> Self {
        MuxClient {
            keepalive: config.keepalive.map(|keepalive| KeepaliveTimers {
                config: keepalive,
                next_ping: now + keepalive.interval,
                next_check: now + keepalive.timeout,
                frame_seen: false,
            }),
            config,
            last_id: 1,
            open: BTreeSet::new(),
            inbound: BytesMut::new(),
            events: VecDeque::new(),
            buffered: 0,
            output: VecDeque::new(),
            output_len: 0,
            closed: false,
        }
    }

    /// Opens a stream (one per local TCP connection); the agent dials the destination for it.
    pub fn open_stream(&mut self) -> Result<StreamId, OpenError> {
        if self.closed {
            return Err(OpenError::Closed);
        }
        let id = self
            .last_id
            .checked_add(2)
            .ok_or(OpenError::StreamIdsExhausted)?;
        self.last_id = id;
        self.open.insert(id);
        self.queue(Command::Syn, id, &[]);
        Ok(StreamId(id))
    }

    /// Queues as much of `data` as the send buffer allows as PSH frames; returns how much was
    /// taken. [`WriteError::Full`] means none was.
    pub fn write(&mut self, id: StreamId, data: &[u8]) -> Result<usize, WriteError> {
        if self.closed {
            return Err(WriteError::Closed);
        }
        if !self.open.contains(&id.0) {
            return Err(WriteError::UnknownStream);
        }
        if data.is_empty() {
            return Ok(0);
        }
        let room = self.config.max_send_buffer.saturating_sub(self.output_len);
        if room == 0 {
            return Err(WriteError::Full);
        }
        let taken = room.min(data.len());
        for chunk in data[..taken].chunks(usize::from(self.config.max_frame_size.get())) {
            self.queue(Command::Psh, id.0, chunk);
        }
        Ok(taken)
    }

    /// Closes a stream entirely (FIN; v1 has no half-close). Data already written is sent
    /// first. Closing a stream that is already gone does nothing.
    pub fn close(&mut self, id: StreamId) {
        if !self.closed && self.open.remove(&id.0) {
            self.queue(Command::Fin, id.0, &[]);
        }
    }

    /// How many more bytes [`write`](Self::write) would take now, across all streams.
    pub fn send_capacity(&self) -> usize {
        if self.closed {
            0
        } else {
            self.config.max_send_buffer.saturating_sub(self.output_len)
        }
    }

    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Feeds bytes received on the data channel, split anywhere. Returns how many were taken;
    /// the caller keeps the rest and offers it again after taking events (backpressure). Once
    /// the session is closed everything is taken and discarded.
    pub fn handle_input(&mut self, data: &[u8]) -> usize {
        if self.closed {
            return data.len();
        }
        let taken = INBOUND_LIMIT
            .saturating_sub(self.inbound.len())
            .min(data.len());
        self.inbound.extend_from_slice(&data[..taken]);
        self.parse_input();
        taken
    }

    /// Up to `max_len` bytes to send on the data channel (pass the channel's free capacity).
    pub fn poll_output(&mut self, max_len: usize) -> Option<Bytes> {
        if self.closed || max_len == 0 {
            return None;
        }
        let front = self.output.front_mut()?;
        let chunk = if front.len() <= max_len {
            self.output.pop_front()?
        } else {
            front.split_to(max_len)
        };
        self.output_len -= chunk.len();
        Some(chunk)
    }

    /// The next event. Taking stream data frees receive-buffer room, which resumes parsing.
    pub fn poll_event(&mut self) -> Option<MuxEvent> {
        let event = self.events.pop_front()?;
        if let MuxEvent::StreamData { data, .. } = &event {
            self.buffered -= data.len();
            self.parse_input();
        }
        Some(event)
    }

    /// When keepalive next needs [`handle_timeout`](Self::handle_timeout); `None` without it.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let timers = self.keepalive.as_ref().filter(|_| !self.closed)?;
        Some(timers.next_ping.min(timers.next_check))
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if self.closed {
            return;
        }
        let receive_buffer_full = self.buffered >= self.config.max_receive_buffer;
        let Some(timers) = self.keepalive.as_mut() else {
            return;
        };
        let ping = now >= timers.next_ping;
        if ping {
            timers.next_ping = now + timers.config.interval;
        }
        let mut timed_out = false;
        if now >= timers.next_check {
            timed_out = !timers.frame_seen && !receive_buffer_full;
            timers.frame_seen = false;
            timers.next_check = now + timers.config.timeout;
        }
        if timed_out {
            self.close_session(MuxCloseReason::KeepaliveTimeout);
        } else if ping {
            self.queue(Command::Nop, 0, &[]);
        }
    }

    /// Pretends `last_id` stream ids were already used, to test id exhaustion.
    #[cfg(test)]
    pub(crate) fn skip_stream_ids_for_test(&mut self, last_id: u32) {
        self.last_id = last_id;
    }

    fn parse_input(&mut self) {
        while !self.closed && self.buffered < self.config.max_receive_buffer {
            match frame::decode(&mut self.inbound) {
                Ok(Some(frame)) => self.on_frame(frame),
                Ok(None) => return,
                Err(error) => self.close_session(MuxCloseReason::Protocol(error)),
            }
        }
    }

    fn on_frame(&mut self, frame: Frame) {
        if let Some(timers) = &mut self.keepalive {
            timers.frame_seen = true;
        }
        let id = frame.stream_id;
        match frame.command {
            Command::Nop => {}
            Command::Syn if !self.open.contains(&id) => {
                // Agents never open streams; refuse rather than leave one dangling.
                tracing::debug!(id, "refusing an smux stream opened by the agent");
                self.queue(Command::Fin, id, &[]);
            }
            Command::Syn => {}
            Command::Fin => {
                if self.open.remove(&id) {
                    self.queue(Command::Fin, id, &[]);
                    self.events
                        .push_back(MuxEvent::StreamClosed { id: StreamId(id) });
                }
            }
            Command::Psh => {
                if self.open.contains(&id) && !frame.data.is_empty() {
                    self.buffered += frame.data.len();
                    self.events.push_back(MuxEvent::StreamData {
                        id: StreamId(id),
                        data: frame.data,
                    });
                }
            }
        }
    }

    fn queue(&mut self, command: Command, id: u32, data: &[u8]) {
        let mut out = BytesMut::new();
        frame::encode(&mut out, command, id, data);
        self.output_len += out.len();
        self.output.push_back(out.freeze());
    }

    fn close_session(&mut self, reason: MuxCloseReason) {
        self.closed = true;
        self.open.clear();
        self.output.clear();
        self.output_len = 0;
        self.events.push_back(MuxEvent::Closed(reason));
    }
}
