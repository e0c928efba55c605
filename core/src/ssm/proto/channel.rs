//! The reliable SSM data channel as a deterministic state machine (spec §5–§6, §8.3).
//!
//! [`DataChannel`] owns no socket and reads no clock: frames and instants go in
//! ([`handle_incoming`](DataChannel::handle_incoming), [`handle_timeout`](DataChannel::handle_timeout),
//! [`reconnected`](DataChannel::reconnected)), frames and events come out
//! ([`poll_transmit`](DataChannel::poll_transmit), [`poll_event`](DataChannel::poll_event)), and
//! [`poll_timeout`](DataChannel::poll_timeout) says when to call back. A driver moves binary
//! WebSocket frames; every retransmission, reorder and resume path is a plain unit test.
//!
//! What it does, and where it deliberately differs from the plugin (§10):
//! - per-direction sequence numbers from 0 that survive reconnects; every agent stream message
//!   acknowledged (handshake messages before processing, data after delivery), duplicates
//!   acknowledged again, early messages buffered and delivered in order;
//! - per-message retransmission timers with the §5 RTO, back-off, and a give-up time;
//! - bounded buffers both ways that push back instead of dropping: the send queue refuses data
//!   when full, and agent data is left unacknowledged (so the agent resends it) while the
//!   application has not taken what was already delivered;
//! - the handshake answered by itself, with data held back until it completes (or until the
//!   first output shows that the agent skipped it, as shells do); KMS encryption (§6.3) waits
//!   for a data key from the driver, then Output is encrypted out and Output/StdErr/ExitCode
//!   decrypted in, a payload that fails authentication closing the channel;
//! - `pause_publication` honoured the way the agent honours it: stream messages (new and
//!   retransmitted, not acknowledgements) wait until `start_publication`, any agent stream
//!   message or acknowledgement, or a reconnect. The plugin ignores it; the agent does this.

use std::collections::{HashSet, VecDeque};
use std::num::{NonZeroU16, NonZeroUsize};
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;
use uuid::Uuid;

use super::encryption::{DataKey, SessionCipher};
use super::event::{CloseReason, Event, Handshake};
use super::handshake::{self, HandshakeAnswer, HandshakeComplete, HandshakeRequest, SessionType};
use super::message::{AgentMessage, DecodeError, FLAG_FIN, FLAG_SYN, MessageType, PayloadType};
use super::payload::{self, Acknowledge, ChannelClosed, ClientFlag, TerminalSize};
use super::reorder::{Arrival, Reorder};
use super::send::SendQueue;

/// Tuning for one [`DataChannel`]. The defaults suit a real session.
#[derive(Debug, Clone)]
pub struct ChannelConfig {
    /// The largest payload of one outgoing message. The plugin and agent use 1024; larger
    /// values are untested against the service (spec §9).
    pub max_payload: NonZeroU16,
    /// Outgoing data bytes held (queued plus unacknowledged) before `send_data` pushes back.
    pub send_buffer: usize,
    /// Messages sent but not yet acknowledged before new ones wait.
    pub max_in_flight: NonZeroUsize,
    /// Received data bytes handed out as events but not yet taken by `poll_event`, beyond
    /// which new agent data is left unacknowledged (the agent resends it).
    pub receive_buffer: usize,
    /// How far ahead of the next expected message an early message may be and still be kept
    /// (so at most this many early messages, each up to the agent's 1024-byte payload).
    pub max_early: usize,
    /// How long a message may stay unacknowledged (counted from its first send or the last
    /// reconnect) before the channel gives up. The plugin gives up after ~5 minutes.
    pub ack_timeout: Duration,
    /// Seeds message ids. Any value works; tests fix it for reproducible frames.
    pub rng_seed: u64,
}

impl Default for ChannelConfig {
    fn default() -> Self {
        ChannelConfig {
            max_payload: NonZeroU16::new(1024).expect("non-zero"),
            send_buffer: 256 * 1024,
            max_in_flight: NonZeroUsize::new(256).expect("non-zero"),
            receive_buffer: 1024 * 1024,
            max_early: 1024,
            ack_timeout: Duration::from_secs(300),
            rng_seed: rand::random(),
        }
    }
}

/// Why outgoing data was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    #[error("the send buffer is full; wait for acknowledgements")]
    Full,
    #[error("the data channel is closed")]
    Closed,
}

#[derive(Debug)]
enum HandshakeState {
    /// No stream message processed yet: we do not know whether a handshake is coming.
    AwaitingAgent,
    /// The agent asked for KMS encryption; the answer waits for the data key.
    AwaitingDataKey {
        agent_version: String,
        answer: Box<HandshakeAnswer>,
    },
    /// Answered a handshake request; waiting for HandshakeComplete (and, with KMS, for the
    /// encryption challenge before it).
    Negotiating {
        agent_version: String,
        session: Option<(SessionType, Value)>,
        cipher: Option<Box<SessionCipher>>,
    },
    /// Data may flow.
    Established,
}

/// Maps `Instant`s to the Unix milliseconds written into `CreatedDate`, from one anchor the
/// driver supplies, so the machine never reads a clock.
#[derive(Debug, Clone, Copy)]
struct WallClock {
    anchor: Instant,
    anchor_unix_ms: u64,
}

impl WallClock {
    fn unix_ms(&self, now: Instant) -> u64 {
        let elapsed = now.saturating_duration_since(self.anchor).as_millis();
        self.anchor_unix_ms
            .saturating_add(u64::try_from(elapsed).unwrap_or(u64::MAX))
            .max(1)
    }
}

/// The client end of one SSM data channel. See the module documentation.
#[derive(Debug)]
pub struct DataChannel {
    config: ChannelConfig,
    clock: WallClock,
    rng: StdRng,
    send: SendQueue,
    reorder: Reorder,
    acks: VecDeque<Acknowledge>,
    acks_queued: HashSet<i64>,
    events: VecDeque<Event>,
    /// Data bytes in `events`.
    delivered: usize,
    handshake: HandshakeState,
    /// KMS session encryption, once the handshake that agreed on it completed.
    cipher: Option<Box<SessionCipher>>,
    paused: bool,
    closed: bool,
}

impl DataChannel {
    /// A channel for a new session. `unix_ms_at_now` is the wall-clock time at `now`, used
    /// only to fill in message creation dates.
    pub fn new(config: ChannelConfig, now: Instant, unix_ms_at_now: u64) -> Self {
        DataChannel {
            clock: WallClock {
                anchor: now,
                anchor_unix_ms: unix_ms_at_now,
            },
            rng: StdRng::seed_from_u64(config.rng_seed),
            send: SendQueue::new(
                usize::from(config.max_payload.get()),
                config.send_buffer,
                config.max_in_flight.get(),
            ),
            reorder: Reorder::new(config.max_early),
            acks: VecDeque::new(),
            acks_queued: HashSet::new(),
            events: VecDeque::new(),
            delivered: 0,
            handshake: HandshakeState::AwaitingAgent,
            cipher: None,
            paused: false,
            closed: false,
            config,
        }
    }

    /// Feeds one received WebSocket message (binary or text, treated alike). A frame that does
    /// not decode is dropped unacknowledged and reported; the channel stays usable, and
    /// [`DecodeError::UnknownMessageType`] in particular is expected and harmless.
    pub fn handle_incoming(&mut self, frame: &[u8], now: Instant) -> Result<(), DecodeError> {
        if self.closed {
            return Ok(());
        }
        let message = AgentMessage::decode(frame)?;
        match message.message_type {
            MessageType::OutputStreamData => {
                self.paused = false;
                self.on_stream_message(message);
            }
            MessageType::Acknowledge => {
                self.paused = false;
                match serde_json::from_slice::<Acknowledge>(&message.payload) {
                    Ok(ack) => self
                        .send
                        .on_ack(ack.acknowledged_message_sequence_number, now),
                    Err(error) => tracing::debug!(%error, "ignoring an unreadable acknowledge"),
                }
            }
            MessageType::ChannelClosed => {
                let closed: ChannelClosed = serde_json::from_slice(&message.payload)
                    .unwrap_or_else(|error| {
                        tracing::debug!(%error, "channel_closed payload unreadable");
                        ChannelClosed::default()
                    });
                self.close(CloseReason::ChannelClosed {
                    session_id: closed.session_id,
                    output: closed.output,
                });
            }
            MessageType::StartPublication => self.paused = false,
            MessageType::PausePublication => self.paused = true,
            MessageType::InputStreamData => {
                tracing::debug!("ignoring input_stream_data sent to the client");
            }
        }
        Ok(())
    }

    /// Queues data for the agent (PayloadType Output), taking as much as the send buffer
    /// allows. Returns how many bytes were taken; [`SendError::Full`] means none were.
    /// Data waits until the handshake has completed.
    pub fn send_data(&mut self, data: &[u8]) -> Result<usize, SendError> {
        if self.closed {
            return Err(SendError::Closed);
        }
        if data.is_empty() {
            return Ok(0);
        }
        match self.send.push_data(data) {
            0 => Err(SendError::Full),
            taken => Ok(taken),
        }
    }

    /// Queues a flag (DisconnectToPort / TerminateSession). Flags are never refused for space.
    pub fn send_flag(&mut self, flag: ClientFlag) -> Result<(), SendError> {
        self.send_control(PayloadType::Flag, flag.to_payload().to_vec())
    }

    /// Queues a terminal size change for a shell session.
    pub fn send_terminal_size(&mut self, size: TerminalSize) -> Result<(), SendError> {
        let json = serde_json::to_vec(&size).expect("two integers always serialize");
        self.send_control(PayloadType::Size, json)
    }

    fn send_control(
        &mut self,
        payload_type: PayloadType,
        payload: Vec<u8>,
    ) -> Result<(), SendError> {
        if self.closed {
            return Err(SendError::Closed);
        }
        self.send.push_control(payload_type, payload);
        Ok(())
    }

    /// Whether `send_data` would take at least one byte now.
    pub fn can_send(&self) -> bool {
        self.send_capacity() > 0
    }

    /// How many bytes `send_data` would take now.
    pub fn send_capacity(&self) -> usize {
        if self.closed { 0 } else { self.send.capacity() }
    }

    /// Outgoing messages not yet acknowledged by the agent (queued or in flight). After a
    /// TerminateSession flag, a driver can wait briefly for this to reach 0.
    pub fn unacknowledged(&self) -> usize {
        if self.closed {
            0
        } else {
            self.send.unacknowledged()
        }
    }

    /// Whether the service asked us to hold stream data (`pause_publication`).
    pub fn is_paused(&self) -> bool {
        self.paused
    }

    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// The smoothed round-trip time to the agent, from its acknowledgements; `None` until the
    /// first one.
    pub fn round_trip_time(&self) -> Option<Duration> {
        self.send.rtt()
    }

    /// The retransmission timeout currently in force.
    pub fn retransmission_timeout(&self) -> Duration {
        self.send.rto()
    }

    /// The next binary frame to send: acknowledgements first, then retransmissions, then new
    /// messages (unless paused or the in-flight window is full).
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Bytes> {
        if self.closed {
            return None;
        }
        if let Some(ack) = self.acks.pop_front() {
            self.acks_queued
                .remove(&ack.acknowledged_message_sequence_number);
            let payload = serde_json::to_vec(&ack).expect("strings and numbers always serialize");
            let message = AgentMessage {
                message_type: MessageType::Acknowledge,
                schema_version: 1,
                created_date: self.clock.unix_ms(now),
                sequence_number: 0,
                flags: FLAG_SYN | FLAG_FIN,
                message_id: random_uuid(&mut self.rng),
                payload_type: PayloadType::Unset,
                payload: Bytes::from(payload),
            };
            return Some(Bytes::from(message.encode()));
        }
        if self.paused {
            return None;
        }
        let established = matches!(self.handshake, HandshakeState::Established);
        let (clock, rng, cipher) = (self.clock, &mut self.rng, &self.cipher);
        self.send
            .poll_transmit(now, established, |sequence, payload_type, payload| {
                // Only Output is encrypted, never Size or Flag (spec §6.3); once, at first
                // send, so retransmissions repeat the same bytes.
                let payload = match cipher {
                    Some(cipher) if payload_type == PayloadType::Output => cipher.encrypt(&payload),
                    _ => payload,
                };
                let message = AgentMessage {
                    message_type: MessageType::InputStreamData,
                    schema_version: 1,
                    created_date: clock.unix_ms(now),
                    sequence_number: sequence,
                    flags: 0,
                    message_id: random_uuid(rng),
                    payload_type,
                    payload: Bytes::from(payload),
                };
                Bytes::from(message.encode())
            })
    }

    /// When [`handle_timeout`](Self::handle_timeout) should next be called, if ever.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.closed {
            return None;
        }
        let retransmit = if self.paused {
            None
        } else {
            self.send.next_retransmit()
        };
        let give_up = self
            .send
            .oldest_outstanding()
            .map(|(_, since)| since + self.config.ack_timeout);
        retransmit.into_iter().chain(give_up).min()
    }

    /// Fires due timers: retransmissions, and giving up on a message unacknowledged too long.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.closed {
            return;
        }
        if let Some((sequence_number, since)) = self.send.oldest_outstanding()
            && since + self.config.ack_timeout <= now
        {
            self.close(CloseReason::Unacknowledged { sequence_number });
            return;
        }
        if !self.paused {
            self.send.on_timeout(now);
        }
    }

    /// The driver opened a new WebSocket (after ResumeSession) and sent the OpenDataChannel
    /// frame. All sequence state is kept; everything unacknowledged is sent again.
    pub fn reconnected(&mut self, now: Instant) {
        if self.closed {
            return;
        }
        self.paused = false;
        self.send.retransmit_all(now);
    }

    /// The next event. Taking a data event frees receive-buffer room, which may release
    /// buffered agent messages into new events.
    pub fn poll_event(&mut self) -> Option<Event> {
        let event = self.events.pop_front()?;
        if let Event::Output(data) | Event::StdErr(data) | Event::ExitCode(data) = &event {
            self.delivered -= data.len();
            self.deliver_early_messages();
        }
        Some(event)
    }

    fn on_stream_message(&mut self, message: AgentMessage) {
        match self.reorder.classify(message.sequence_number) {
            Arrival::Duplicate => self.queue_ack(acknowledgement_of(&message)),
            Arrival::TooEarly => {}
            Arrival::Early => {
                self.queue_ack(acknowledgement_of(&message));
                self.reorder.store(message);
            }
            Arrival::Expected => {
                if !self.has_room_for(&message) {
                    return;
                }
                let ack = acknowledgement_of(&message);
                if is_handshake(message.payload_type) {
                    // Acknowledge first, so the answer never overtakes the acknowledgement.
                    self.queue_ack(ack);
                    self.process(message);
                } else {
                    // Acknowledge only what was delivered.
                    self.process(message);
                    self.queue_ack(ack);
                }
                self.reorder.advance();
                self.deliver_early_messages();
            }
        }
    }

    /// Processes buffered messages (already acknowledged) that are now next in order.
    fn deliver_early_messages(&mut self) {
        while !self.closed
            && self
                .reorder
                .peek_next()
                .is_some_and(|next| self.has_room_for(next))
        {
            let Some(message) = self.reorder.take_next() else {
                return;
            };
            self.process(message);
            self.reorder.advance();
        }
    }

    /// Data waits while the application has not taken enough of what was delivered; one
    /// message always fits into an empty buffer, so an oversized one cannot wedge the channel.
    fn has_room_for(&self, message: &AgentMessage) -> bool {
        !is_data(message.payload_type)
            || self.delivered == 0
            || self.delivered + message.payload.len() <= self.config.receive_buffer
    }

    fn process(&mut self, mut message: AgentMessage) {
        match message.payload_type {
            PayloadType::HandshakeRequest => self.on_handshake_request(&message.payload),
            PayloadType::HandshakeComplete => self.on_handshake_complete(&message.payload),
            PayloadType::EncChallengeRequest => self.on_encryption_challenge(&message.payload),
            PayloadType::Output | PayloadType::StdErr | PayloadType::ExitCode => {
                if matches!(self.handshake, HandshakeState::AwaitingAgent) {
                    self.handshake = HandshakeState::Established;
                    self.events.push_back(Event::NoHandshake);
                }
                if let Some(cipher) = &self.cipher {
                    match cipher.decrypt(&message.payload) {
                        Ok(plain) => message.payload = Bytes::from(plain),
                        Err(error) => {
                            return self.close(CloseReason::ProtocolViolation(format!(
                                "cannot decrypt the agent's message {}: {error}",
                                message.sequence_number
                            )));
                        }
                    }
                }
                if message.payload.is_empty() {
                    return;
                }
                self.delivered += message.payload.len();
                self.events.push_back(match message.payload_type {
                    PayloadType::Output => Event::Output(message.payload),
                    PayloadType::StdErr => Event::StdErr(message.payload),
                    _ => Event::ExitCode(message.payload),
                });
            }
            PayloadType::Flag => match payload::parse_flag(&message.payload) {
                Some(payload::CONNECT_TO_PORT_ERROR) => {
                    self.events.push_back(Event::ConnectToPortError);
                }
                flag => tracing::debug!(?flag, "ignoring an unknown agent flag"),
            },
            other => tracing::debug!(payload_type = ?other, "ignoring an agent message"),
        }
    }

    fn on_handshake_request(&mut self, payload: &[u8]) {
        if !matches!(self.handshake, HandshakeState::AwaitingAgent) {
            tracing::debug!("ignoring a second handshake request");
            return;
        }
        let request: HandshakeRequest = match serde_json::from_slice(payload) {
            Ok(request) => request,
            Err(error) => {
                return self.close(CloseReason::ProtocolViolation(format!(
                    "the agent's handshake request is not valid JSON: {error}"
                )));
            }
        };
        let answer = handshake::answer(&request);
        match answer.kms.clone() {
            Some(kms) => {
                self.events.push_back(Event::DataKeyNeeded(kms));
                self.handshake = HandshakeState::AwaitingDataKey {
                    agent_version: request.agent_version,
                    answer: Box::new(answer),
                };
            }
            None => self.send_handshake_answer(request.agent_version, answer, None),
        }
    }

    /// Settles the agent's KMS encryption request with a data key from `kms:GenerateDataKey`
    /// for [`Event::DataKeyNeeded`]'s request, or with the reason there is none (the agent
    /// then cancels the session); then answers the handshake. Ignored at any other time.
    pub fn provide_data_key(&mut self, data_key: Result<DataKey, String>) {
        if self.closed {
            return;
        }
        let HandshakeState::AwaitingDataKey { .. } = self.handshake else {
            tracing::debug!("ignoring a data key nobody asked for");
            return;
        };
        let HandshakeState::AwaitingDataKey {
            agent_version,
            mut answer,
        } = std::mem::replace(&mut self.handshake, HandshakeState::AwaitingAgent)
        else {
            unreachable!("matched above");
        };
        let cipher = match data_key.and_then(|key| {
            let cipher = SessionCipher::from_data_key(&key).map_err(|e| e.to_string())?;
            Ok((key, cipher))
        }) {
            Ok((key, cipher)) => {
                answer.kms_succeeded(&key);
                Some(Box::new(cipher))
            }
            Err(reason) => {
                answer.kms_failed(&reason);
                None
            }
        };
        self.send_handshake_answer(agent_version, *answer, cipher);
    }

    fn send_handshake_answer(
        &mut self,
        agent_version: String,
        answer: HandshakeAnswer,
        cipher: Option<Box<SessionCipher>>,
    ) {
        if !answer.refusals.is_empty() {
            self.events.push_back(Event::HandshakeRefused {
                reasons: answer.refusals,
            });
        }
        let response = serde_json::to_vec(&answer.response).expect("plain data always serializes");
        self.send
            .push_handshake(PayloadType::HandshakeResponse, response);
        self.handshake = HandshakeState::Negotiating {
            agent_version,
            session: answer.session,
            cipher,
        };
    }

    /// The agent's EncChallengeRequest: its random bytes under its key, to be returned under
    /// ours (spec §6.2 step 5), which proves both sides hold the same data key.
    fn on_encryption_challenge(&mut self, payload: &[u8]) {
        let HandshakeState::Negotiating {
            cipher: Some(cipher),
            ..
        } = &self.handshake
        else {
            return self.close(CloseReason::ProtocolViolation(
                "the agent sent an encryption challenge without agreeing on KMS encryption".into(),
            ));
        };
        let answer = serde_json::from_slice::<EncryptionChallenge>(payload)
            .map_err(|e| format!("it is not valid JSON: {e}"))
            .and_then(|request| {
                base64::engine::general_purpose::STANDARD
                    .decode(request.challenge)
                    .map_err(|e| format!("it is not base64: {e}"))
            })
            .and_then(|challenge| {
                cipher
                    .answer_challenge(&challenge)
                    .map_err(|e| e.to_string())
            });
        match answer {
            Ok(answer) => {
                let response = EncryptionChallenge {
                    challenge: base64::engine::general_purpose::STANDARD.encode(answer),
                };
                let json = serde_json::to_vec(&response).expect("a string always serializes");
                self.send
                    .push_handshake(PayloadType::EncChallengeResponse, json);
            }
            Err(reason) => self.close(CloseReason::ProtocolViolation(format!(
                "the agent's encryption challenge cannot be answered: {reason}"
            ))),
        }
    }

    fn on_handshake_complete(&mut self, payload: &[u8]) {
        match std::mem::replace(&mut self.handshake, HandshakeState::Established) {
            HandshakeState::Negotiating {
                agent_version,
                session: Some((session_type, properties)),
                cipher,
            } => {
                self.cipher = cipher;
                let complete: HandshakeComplete =
                    serde_json::from_slice(payload).unwrap_or_default();
                self.events.push_back(Event::HandshakeComplete(Handshake {
                    agent_version,
                    session_type,
                    properties,
                    customer_message: complete.customer_message,
                    time_to_complete: Duration::from_nanos(
                        u64::try_from(complete.handshake_time_to_complete).unwrap_or(0),
                    ),
                }));
            }
            HandshakeState::Negotiating { session: None, .. } => {
                self.close(CloseReason::ProtocolViolation(
                    "the agent completed a handshake whose session type we refused".into(),
                ));
            }
            HandshakeState::AwaitingAgent => {
                self.close(CloseReason::ProtocolViolation(
                    "the agent completed a handshake it never started".into(),
                ));
            }
            HandshakeState::AwaitingDataKey { .. } => {
                self.close(CloseReason::ProtocolViolation(
                    "the agent completed the handshake before we answered it".into(),
                ));
            }
            HandshakeState::Established => tracing::debug!("ignoring a second handshake complete"),
        }
    }

    /// Queues an acknowledgement unless one for the same sequence number is already waiting.
    fn queue_ack(&mut self, ack: Acknowledge) {
        if self
            .acks_queued
            .insert(ack.acknowledged_message_sequence_number)
        {
            self.acks.push_back(ack);
        }
    }

    fn close(&mut self, reason: CloseReason) {
        self.closed = true;
        self.acks.clear();
        self.events.push_back(Event::Closed(reason));
    }
}

/// EncChallengeRequest and EncChallengeResponse: `{"Challenge": base64(nonce ‖ ct ‖ tag)}`.
#[derive(serde::Serialize, serde::Deserialize)]
struct EncryptionChallenge {
    #[serde(rename = "Challenge")]
    challenge: String,
}

fn acknowledgement_of(message: &AgentMessage) -> Acknowledge {
    Acknowledge {
        acknowledged_message_type: message.message_type.as_str().to_owned(),
        acknowledged_message_id: message.message_id.hyphenated().to_string(),
        acknowledged_message_sequence_number: message.sequence_number,
        is_sequential_message: true,
    }
}

fn is_handshake(payload_type: PayloadType) -> bool {
    matches!(
        payload_type,
        PayloadType::HandshakeRequest
            | PayloadType::HandshakeComplete
            | PayloadType::EncChallengeRequest
    )
}

fn is_data(payload_type: PayloadType) -> bool {
    matches!(
        payload_type,
        PayloadType::Output | PayloadType::StdErr | PayloadType::ExitCode
    )
}

fn random_uuid(rng: &mut StdRng) -> Uuid {
    uuid::Builder::from_random_bytes(rng.random()).into_uuid()
}
