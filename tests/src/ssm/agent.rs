//! One session's agent, with the service relay in front of it: everything that happens on the
//! data channel after the client's OpenDataChannel frame was accepted.
//!
//! The agent is a task that lives as long as the session, not as long as a WebSocket: the
//! data channel attaches client connections to it ([`AgentHandle::attach`]) and a connection
//! that drops leaves its sequence numbers, unacknowledged messages and destination
//! connections in place, so a client that resumes (ResumeSession, a new WebSocket, a new
//! token) continues where it was, each side retransmitting what the other has not
//! acknowledged (spec §5.1, §8.3).
//!
//! What it does, by spec section:
//! - §5: [`AgentChannel`] numbers, acknowledges, reorders and retransmits (a 100 ms tick, as
//!   the agent's `ResendSleepInterval`); a reconnected client gets every unacknowledged message
//!   again at once.
//! - §6: port sessions open with a HandshakeRequest carrying the scenario's agent version and
//!   the document's properties; client stream data before the handshake is acknowledged and
//!   dropped (§5.4); no answer within 15 s, or an action not processed successfully, ends the
//!   session; otherwise HandshakeComplete follows.
//! - §7.1–§7.3: the agent picks mux or basic forwarding from the client's version and its own;
//!   mux is an smux v1 server dialling the destination per stream (Flag 3 ConnectToPortError
//!   and FIN when that fails), basic one destination connection at a time (dropped on Flag 1
//!   DisconnectToPort, redialled on the next data). `AWS-StartSSHSession` is one byte stream
//!   whose end ends the session. Shells run `/bin/sh` on a pseudo-terminal (see `shell`).
//! - §6.3: when the Session Manager preferences name a KMS key, a shell opens with a handshake
//!   that asks for KMS encryption; the agent decrypts the client's data key with the
//!   simulator's own KMS (`kms:Decrypt`, the session's encryption context), checks the
//!   encryption challenge, and from HandshakeComplete on encrypts Output (and would encrypt
//!   StdErr/ExitCode) and decrypts the client's Output. A client that does not set up
//!   encryption is refused, as is a data key KMS will not decrypt.
//! - §7.4, §8.2: Flag 2 TerminateSession, TerminateSession, the idle timeout and the maximum
//!   session duration (simulated clock) end the session with `channel_closed`.
//! - §9: output leaves in messages of at most 1024 bytes, 1 ms apart when pacing is on.
//!
//! Backpressure instead of unbounded buffers: destinations are read only while fewer than
//! [`WINDOW`] messages are unacknowledged and little output is waiting; client data is left
//! unacknowledged (the handler is "not ready", §5.4) while 4 MiB — smux's receive buffer —
//! are queued for destinations.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use chrono::{DateTime, Utc};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use super::channel::{self, AgentChannel, Arrival};
use super::documents::SessionKind;
use super::handshake::{self, PortMode, SessionCipher};
use super::link_faults::FaultyDirection;
use super::sessions::Preferences;
use super::shell::Shell;
use super::smux::{self, Command as SmuxCommand, FrameReader};
use super::target::{self, BackendEvent, ConnId, Connection, Dialed};
use super::wire::{self, ACKNOWLEDGE, INPUT_STREAM_DATA, Message, flag, payload_type};
use crate::listener::{ShutdownSignal, stopped};
use crate::world::World;

/// The agent's `ResendSleepInterval`: how often retransmission and timers are looked at.
const TICK: Duration = Duration::from_millis(100);
/// `StreamDataPayloadSize`: the largest payload the agent sends, and what it reads at a time
/// from a basic-mode destination.
const PAYLOAD_SIZE: usize = 1024;
/// The agent's sleep after every message it sends (spec §9).
const PACING_INTERVAL: Duration = Duration::from_millis(1);
/// Unacknowledged messages beyond which destinations are no longer read (the agent's own
/// limit, 100000 messages, is a memory bound rather than a window).
const WINDOW: usize = 4096;
/// Output bytes waiting to be sent beyond which destinations are no longer read.
const OUTPUT_BACKLOG: usize = 64 * 1024;
/// smux `MaxReceiveBuffer`: client bytes queued for destinations before data is refused.
const RECEIVE_BUFFER: usize = 4 * 1024 * 1024;
/// How long a session that ended on its own waits for the client to acknowledge its last
/// output before `channel_closed`.
const DRAIN_LIMIT: Duration = Duration::from_secs(10);
/// smux `DefaultConfig` keepalive.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(30);
/// Destination reads in flight to the agent.
const BACKEND_EVENTS: usize = 16;

/// The reason given when the idle session timeout ends a session.
pub const IDLE_TIMEOUT: &str = "Your session timed out due to inactivity and has been terminated.";
/// The reason given when the maximum session duration ends a session.
pub const MAX_DURATION: &str =
    "Your session has reached the maximum session duration and has been terminated.";

/// What an agent needs to know about its session.
#[derive(Debug, Clone)]
pub struct AgentSpec {
    pub session_id: String,
    pub instance_id: String,
    pub agent_version: String,
    pub kind: SessionKind,
    pub preferences: Preferences,
}

/// What the agent asks of the WebSocket a client is attached with.
#[derive(Debug)]
pub enum Outgoing {
    /// One binary message.
    Frame(Vec<u8>),
    /// A Close frame, then the end of the connection.
    Close(CloseCode, String),
    /// Drop the connection without a Close frame (fault injection).
    Cut,
}

/// A client's WebSocket, as the agent sees it: frames in, frames out.
#[derive(Debug)]
pub struct ClientLink {
    pub frames: mpsc::Receiver<Vec<u8>>,
    pub out: mpsc::UnboundedSender<Outgoing>,
}

#[derive(Debug)]
enum Command {
    Attach(ClientLink),
    Terminate,
    Cut,
}

/// How the service talks to a running agent.
#[derive(Debug, Clone)]
pub struct AgentHandle {
    commands: mpsc::UnboundedSender<Command>,
    attached: Arc<AtomicBool>,
}

impl AgentHandle {
    /// Attaches a client connection, replacing (and closing) any previous one. `false` when
    /// the agent has already ended.
    pub fn attach(&self, link: ClientLink) -> bool {
        self.commands.send(Command::Attach(link)).is_ok()
    }

    /// TerminateSession: the agent sends `channel_closed` and ends.
    pub fn terminate(&self) {
        let _ = self.commands.send(Command::Terminate);
    }

    /// Cuts the attached client connection, if any; returns whether there was one.
    pub fn cut(&self) -> bool {
        self.attached.load(Ordering::Relaxed) && self.commands.send(Command::Cut).is_ok()
    }
}

/// Starts the agent of a session whose first client connection is about to attach.
pub fn spawn(world: Arc<World>, spec: AgentSpec, shutdown: ShutdownSignal) -> AgentHandle {
    let (commands_tx, commands) = mpsc::unbounded_channel();
    let attached = Arc::new(AtomicBool::new(false));
    let (backend_tx, backend_rx) = mpsc::channel(BACKEND_EVENTS);
    let (dial_tx, dial_rx) = mpsc::unbounded_channel();
    let now = world.clock.now();
    // Faults replay per session: the seed comes from the session id.
    let seed = spec
        .session_id
        .bytes()
        .fold(0u64, |h, b| h.rotate_left(5) ^ u64::from(b));
    let agent = Agent {
        core: Core {
            world,
            spec,
            channel: AgentChannel::default(),
            link: None,
            attached: Arc::clone(&attached),
            started: false,
            out: VecDeque::new(),
            next_data_at: Instant::now(),
            ending: None,
            began: now,
            last_activity: now,
            backend_tx,
            dial_tx,
            queued: Arc::new(AtomicUsize::new(0)),
            next_conn: 0,
            faults_out: FaultyDirection::new(seed ^ 1),
            faults_in: FaultyDirection::new(seed ^ 2),
            kms: None,
            cipher: None,
        },
        plugin: Plugin::NotStarted,
    };
    tokio::spawn(agent.run(commands, backend_rx, dial_rx, shutdown));
    AgentHandle {
        commands: commands_tx,
        attached,
    }
}

/// How the session is ending.
#[derive(Debug)]
enum Ending {
    /// Send `channel_closed` now.
    Now(String),
    /// The session is complete: deliver pending output first (bounded by the deadline).
    Drain { reason: String, deadline: Instant },
}

/// Whether a client stream message was taken (and may be acknowledged).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Handled {
    Accepted,
    /// `ErrHandlerNotReady`: no acknowledgement, the client will send it again.
    NotReady,
}

/// The session's plumbing: channel, client connection, output queue, destinations.
struct Core {
    world: Arc<World>,
    spec: AgentSpec,
    channel: AgentChannel,
    link: Option<ClientLink>,
    attached: Arc<AtomicBool>,
    /// Whether the session has started (on its first client connection).
    started: bool,
    /// Output bytes for the client, sent in 1024-byte messages.
    out: VecDeque<u8>,
    next_data_at: Instant,
    ending: Option<Ending>,
    /// When the session started and last carried data, on the simulated clock.
    began: DateTime<Utc>,
    last_activity: DateTime<Utc>,
    backend_tx: mpsc::Sender<BackendEvent>,
    dial_tx: mpsc::UnboundedSender<Dialed>,
    /// Client bytes queued for destinations, not yet written.
    queued: Arc<AtomicUsize>,
    next_conn: ConnId,
    /// Message-level faults (loss, duplicates, reordering) to the client and from it.
    faults_out: FaultyDirection,
    faults_in: FaultyDirection,
    /// A KMS-encrypted shell's handshake under way.
    kms: Option<KmsHandshake>,
    /// KMS session encryption, from HandshakeComplete on.
    cipher: Option<SessionCipher>,
}

/// The KMS part of a shell's handshake (§6.3).
struct KmsHandshake {
    key_id: String,
    /// The HandshakeRequest's random challenge (16 bytes, base64), for the encryption context.
    random_challenge: String,
    /// After the client's data key was decrypted: the cipher, and the 64 bytes the client
    /// must return re-encrypted.
    challenged: Option<(SessionCipher, Vec<u8>)>,
}

impl Core {
    fn session_id(&self) -> &str {
        &self.spec.session_id
    }

    /// Sends a frame on the attached connection; without one it is lost, as on a broken
    /// WebSocket, and retransmission brings it back later.
    fn transmit(&mut self, frame: Vec<u8>) {
        let faults = self.world.faults.data_channel();
        if let Some(link) = &self.link {
            for frame in self.faults_out.pass(&faults, frame) {
                let _ = link.out.send(Outgoing::Frame(frame));
            }
        }
    }

    /// Sends the next `output_stream_data`.
    fn send_message(&mut self, payload_type: u32, payload: Vec<u8>) {
        let payload = match &self.cipher {
            Some(cipher) if handshake::ENCRYPTED_FROM_AGENT.contains(&payload_type) => {
                cipher.encrypt(&payload)
            }
            _ => payload,
        };
        let frame = self
            .channel
            .send(payload_type, payload, Instant::now(), unix_ms());
        self.transmit(frame);
    }

    fn acknowledge(&mut self, message: &Message) {
        let ack = channel::acknowledgement(message, unix_ms());
        self.transmit(ack);
    }

    fn send_flag(&mut self, value: u32) {
        self.send_message(payload_type::FLAG, value.to_be_bytes().to_vec());
    }

    /// Bytes for the client's Output stream (sent by [`Core::flush_output`]).
    fn output(&mut self, bytes: &[u8]) {
        self.out.extend(bytes);
    }

    fn output_frame(&mut self, command: SmuxCommand, stream_id: u32, data: &[u8]) {
        let mut frame = Vec::with_capacity(8 + data.len());
        smux::write_frame(&mut frame, command, stream_id, data);
        self.output(&frame);
    }

    /// Sends waiting output while the window allows; with pacing, one message per interval.
    /// Returns when to come back for the next paced message.
    fn flush_output(&mut self) -> Option<Instant> {
        self.link.as_ref()?;
        while !self.out.is_empty() && self.channel.unacknowledged() < WINDOW {
            let now = Instant::now();
            if self.spec.preferences.pacing && now < self.next_data_at {
                return Some(self.next_data_at);
            }
            let take = self.out.len().min(PAYLOAD_SIZE);
            let chunk: Vec<u8> = self.out.drain(..take).collect();
            self.send_message(payload_type::OUTPUT, chunk);
            self.last_activity = self.world.clock.now();
            // The agent sleeps 1 ms after each message, about 1000 messages a second. The
            // timer here fires on millisecond ticks, often a tick late: keep the rate on
            // average (the next message is due one interval after this one was), catching up
            // by at most one interval after a late wake-up.
            let earliest = now.checked_sub(PACING_INTERVAL).unwrap_or(now);
            self.next_data_at = (self.next_data_at + PACING_INTERVAL).max(earliest);
        }
        None
    }

    /// Whether destinations may be read now.
    fn wants_backend_data(&self) -> bool {
        self.ending.is_none()
            && self.out.len() < OUTPUT_BACKLOG
            && self.channel.unacknowledged() < WINDOW
    }

    /// Client bytes queued for destinations; at [`RECEIVE_BUFFER`] client data waits.
    fn receive_buffer_full(&self) -> bool {
        self.queued.load(Ordering::Relaxed) >= RECEIVE_BUFFER
    }

    fn count_queued(&self, bytes: usize) {
        self.queued.fetch_add(bytes, Ordering::Relaxed);
    }

    fn uncount_queued(&self, bytes: usize) {
        self.queued.fetch_sub(bytes, Ordering::Relaxed);
    }

    /// Dials `host:port` from the instance; the outcome arrives as a [`Dialed`].
    fn dial(&mut self, host: Option<String>, port: u16) -> ConnId {
        self.next_conn += 1;
        target::dial(
            Arc::clone(&self.world),
            self.next_conn,
            self.spec.instance_id.clone(),
            host,
            port,
            self.dial_tx.clone(),
        );
        self.next_conn
    }

    fn start_connection(
        &self,
        io: crate::listener::BoxedIo,
        conn: ConnId,
        read_chunk: usize,
    ) -> Connection {
        Connection::start(
            io,
            conn,
            read_chunk,
            self.backend_tx.clone(),
            Arc::clone(&self.queued),
        )
    }

    /// Ends the session; an immediate ending overrides a drain, nothing overrides an
    /// immediate one.
    fn finish(&mut self, ending: Ending) {
        match (&self.ending, &ending) {
            (Some(Ending::Now(_)), _) | (Some(Ending::Drain { .. }), Ending::Drain { .. }) => {}
            _ => self.ending = Some(ending),
        }
    }

    /// The session is complete (its destination or shell ended): drain, then close.
    fn complete(&mut self) {
        self.finish(Ending::Drain {
            reason: String::new(),
            deadline: Instant::now() + DRAIN_LIMIT,
        });
    }
}

/// What the session runs.
enum Plugin {
    /// No client has connected yet.
    NotStarted,
    /// A port session waiting for the HandshakeResponse it asked for at `since`.
    Handshaking {
        since: Instant,
    },
    Mux(Mux),
    Basic(Basic),
    Shell(Shell),
}

struct Agent {
    core: Core,
    plugin: Plugin,
}

impl Agent {
    async fn run(
        mut self,
        mut commands: mpsc::UnboundedReceiver<Command>,
        mut backend: mpsc::Receiver<BackendEvent>,
        mut dialed: mpsc::UnboundedReceiver<Dialed>,
        mut shutdown: ShutdownSignal,
    ) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            if self.try_finish() {
                break;
            }
            let pace = self.core.flush_output();
            let wants_backend = self.core.wants_backend_data();
            tokio::select! {
                command = commands.recv() => match command {
                    Some(Command::Attach(link)) => self.attach(link),
                    Some(Command::Terminate) | None => self.core.finish(Ending::Now(String::new())),
                    Some(Command::Cut) => self.cut(),
                },
                frame = next_frame(&mut self.core.link) => match frame {
                    Some(frame) => {
                        let faults = self.core.world.faults.data_channel();
                        for frame in self.core.faults_in.pass(&faults, frame) {
                            self.on_frame(&frame);
                        }
                    }
                    None => self.detach(),
                },
                Some(event) = backend.recv(), if wants_backend => self.on_backend(event),
                Some(result) = dialed.recv() => self.on_dialed(result),
                () = sleep_until(pace) => {}
                _ = tick.tick() => self.on_tick(),
                () = stopped(&mut shutdown) => {
                    if let Some(link) = self.core.link.take() {
                        let _ = link.out.send(Outgoing::Close(CloseCode::Away, String::new()));
                    }
                    self.core.world.ssm.ended(self.core.session_id(), "The simulator stopped.");
                    break;
                }
            }
        }
        tracing::debug!(session_id = %self.core.session_id(), "agent ended");
    }

    fn attach(&mut self, link: ClientLink) {
        self.core.link = Some(link);
        self.core.attached.store(true, Ordering::Relaxed);
        self.core
            .world
            .ssm
            .set_connected(&self.core.spec.session_id, true);
        if self.core.started {
            for frame in self.core.channel.resend_all(Instant::now()) {
                self.core.transmit(frame);
            }
        } else {
            self.core.started = true;
            self.start();
        }
    }

    fn detach(&mut self) {
        self.core.link = None;
        self.core.attached.store(false, Ordering::Relaxed);
        self.core
            .world
            .ssm
            .set_connected(&self.core.spec.session_id, false);
        tracing::info!(session_id = %self.core.session_id(), "the client's data channel closed");
    }

    fn cut(&mut self) {
        if let Some(link) = self.core.link.take() {
            let _ = link.out.send(Outgoing::Cut);
        }
        self.detach();
    }

    /// The first client connection starts the session: a handshake for port sessions, the
    /// shell right away for shells (§6.1).
    fn start(&mut self) {
        match &self.core.spec.kind {
            SessionKind::Port { properties, .. } => {
                let request = handshake::request(&self.core.spec.agent_version, "Port", properties);
                self.core
                    .send_message(payload_type::HANDSHAKE_REQUEST, request);
                self.plugin = Plugin::Handshaking {
                    since: Instant::now(),
                };
            }
            SessionKind::Shell => match self.core.world.scenario.session_manager.kms_key.clone() {
                Some(key_id) => {
                    let random_challenge = base64::engine::general_purpose::STANDARD
                        .encode(rand::random::<[u8; 16]>());
                    let request = handshake::kms_request(
                        &self.core.spec.agent_version,
                        &key_id,
                        &random_challenge,
                    );
                    self.core
                        .send_message(payload_type::HANDSHAKE_REQUEST, request);
                    self.core.kms = Some(KmsHandshake {
                        key_id,
                        random_challenge,
                        challenged: None,
                    });
                    self.plugin = Plugin::Handshaking {
                        since: Instant::now(),
                    };
                }
                None => self.start_shell(),
            },
        }
    }

    fn start_shell(&mut self) {
        self.core.next_conn += 1;
        match Shell::start(
            self.core.next_conn,
            self.core.backend_tx.clone(),
            Arc::clone(&self.core.queued),
        ) {
            Ok(shell) => self.plugin = Plugin::Shell(shell),
            Err(error) => self
                .core
                .finish(Ending::Now(format!("Unable to start the shell: {error}"))),
        }
    }

    /// The client's HandshakeResponse to a KMS request: decrypt its data key as the agent
    /// does (`kms:Decrypt` with the session's context), then send the encryption challenge.
    fn on_kms_response(&mut self, payload: &[u8]) {
        let Some(kms) = &self.core.kms else {
            return;
        };
        let answer = match handshake::kms_answer(payload) {
            Ok(answer) => answer,
            Err(reason) => {
                return self.core.finish(Ending::Now(format!(
                    "KMS encryption is required by the Session Manager preferences, but {reason}"
                )));
            }
        };
        let context = answer.encryption_context(
            &self.core.spec.session_id,
            &self.core.spec.instance_id,
            &kms.random_challenge,
        );
        let scenario = &self.core.world.scenario;
        let decrypted = scenario
            .instance(&self.core.spec.instance_id)
            .and_then(|instance| scenario.placement(instance))
            .ok_or_else(|| "the instance is not in the scenario".to_owned())
            .and_then(|placement| {
                crate::kms::decrypt_as_agent(
                    scenario,
                    placement.account,
                    placement.region,
                    &kms.key_id,
                    &answer.ciphertext_key,
                    &context,
                )
                .map_err(|error| format!("{}: {}", error.code, error.message))
            })
            .and_then(|data_key| SessionCipher::new(&data_key));
        let cipher = match decrypted {
            Ok(cipher) => cipher,
            Err(reason) => {
                tracing::info!(session_id = %self.core.session_id(), %reason, "KMS data key refused");
                return self.core.finish(Ending::Now(format!(
                    "Fetching data key failed: Unable to retrieve data key, {reason}"
                )));
            }
        };
        let challenge = rand::random::<[u8; 64]>().to_vec();
        let sealed = cipher.encrypt(&challenge);
        self.core.send_message(
            handshake::ENC_CHALLENGE_REQUEST,
            handshake::challenge_payload(&sealed),
        );
        if let Some(kms) = &mut self.core.kms {
            kms.challenged = Some((cipher, challenge));
        }
        // The agent waits another 15 s for the challenge's answer.
        self.plugin = Plugin::Handshaking {
            since: Instant::now(),
        };
    }

    /// The EncChallengeResponse: the challenge must come back under the client's key.
    fn on_challenge_response(&mut self, since: Instant, payload: &[u8]) {
        let Some((cipher, expected)) = self.core.kms.as_mut().and_then(|k| k.challenged.take())
        else {
            return;
        };
        let verified = handshake::parse_challenge(payload)
            .and_then(|sealed| cipher.decrypt(&sealed))
            .and_then(|returned| {
                (returned == expected)
                    .then_some(())
                    .ok_or_else(|| "Encryption challenge does not match!".to_owned())
            });
        if let Err(reason) = verified {
            tracing::info!(session_id = %self.core.session_id(), %reason, "encryption challenge failed");
            return self.core.finish(Ending::Now(reason));
        }
        self.core.kms = None;
        self.core.send_message(
            payload_type::HANDSHAKE_COMPLETE,
            handshake::complete_with_message(since.elapsed(), handshake::ENCRYPTED_NOTICE),
        );
        self.core.cipher = Some(cipher);
        tracing::info!(session_id = %self.core.session_id(), "handshake complete; the session is KMS-encrypted");
        self.start_shell();
    }

    fn on_frame(&mut self, frame: &[u8]) {
        let message = match Message::decode(frame) {
            Ok(message) => message,
            Err(error) => {
                tracing::debug!(session_id = %self.core.session_id(), %error, "dropping a frame");
                return;
            }
        };
        match message.message_type.as_str() {
            ACKNOWLEDGE => {
                if let Some(sequence) = wire::acknowledged_sequence_number(&message) {
                    self.core.channel.on_acknowledge(sequence, Instant::now());
                }
            }
            INPUT_STREAM_DATA => self.on_stream_message(message),
            other => {
                tracing::debug!(
                    session_id = %self.core.session_id(),
                    message_type = other,
                    "ignoring a message",
                );
            }
        }
    }

    fn on_stream_message(&mut self, message: Message) {
        self.core.last_activity = self.core.world.clock.now();
        match self.core.channel.classify(message.sequence_number) {
            Arrival::Duplicate => self.core.acknowledge(&message),
            Arrival::Overflow => {}
            Arrival::Early => {
                self.core.acknowledge(&message);
                self.core.channel.store_early(message);
            }
            Arrival::Expected => {
                if self.process(&message) == Handled::Accepted {
                    self.core.acknowledge(&message);
                    self.core.channel.advance();
                    self.drain_early();
                }
            }
        }
    }

    /// Processes buffered (already acknowledged) messages whose turn has come.
    fn drain_early(&mut self) {
        while let Some(next) = self.core.channel.next_early().cloned() {
            if self.process(&next) == Handled::NotReady {
                return;
            }
            self.core.channel.take_next_early();
        }
    }

    fn process(&mut self, message: &Message) -> Handled {
        if matches!(self.core.ending, Some(Ending::Now(_))) {
            return Handled::Accepted;
        }
        if let Plugin::Handshaking { since } = self.plugin {
            if message.payload_type == payload_type::HANDSHAKE_RESPONSE {
                self.on_handshake_response(since, &message.payload);
            } else if message.payload_type == handshake::ENC_CHALLENGE_RESPONSE {
                self.on_challenge_response(since, &message.payload);
            } else {
                tracing::debug!(
                    session_id = %self.core.session_id(),
                    "Handshake still in progress, ignore stream data message",
                );
            }
            return Handled::Accepted;
        }
        let decrypted;
        let message = match &self.core.cipher {
            Some(cipher) if message.payload_type == payload_type::OUTPUT => {
                match cipher.decrypt(&message.payload) {
                    Ok(payload) => {
                        decrypted = Message {
                            payload,
                            ..message.clone()
                        };
                        &decrypted
                    }
                    Err(error) => {
                        self.core.finish(Ending::Now(format!(
                            "Error decrypting stream data message sequence {}, err: {error}",
                            message.sequence_number
                        )));
                        return Handled::Accepted;
                    }
                }
            }
            _ => message,
        };
        match message.payload_type {
            payload_type::OUTPUT => match &mut self.plugin {
                Plugin::Mux(mux) => mux.input(&mut self.core, &message.payload),
                Plugin::Basic(basic) => basic.input(&mut self.core, &message.payload),
                Plugin::Shell(shell) => {
                    if self.core.receive_buffer_full() {
                        return Handled::NotReady;
                    }
                    self.core.count_queued(message.payload.len());
                    shell.write(message.payload.clone());
                    Handled::Accepted
                }
                Plugin::NotStarted | Plugin::Handshaking { .. } => Handled::Accepted,
            },
            payload_type::SIZE => {
                if let Plugin::Shell(shell) = &self.plugin {
                    shell.resize(&message.payload);
                }
                Handled::Accepted
            }
            payload_type::FLAG => {
                self.on_flag(&message.payload);
                Handled::Accepted
            }
            _ => Handled::Accepted,
        }
    }

    fn on_handshake_response(&mut self, since: Instant, payload: &[u8]) {
        let response = match handshake::parse_response(payload) {
            Ok(response) => response,
            Err(reason) => {
                tracing::info!(session_id = %self.core.session_id(), %reason, "handshake failed");
                self.core.finish(Ending::Now(reason));
                return;
            }
        };
        let SessionKind::Port {
            host,
            port,
            local_port_forwarding,
            ..
        } = self.core.spec.kind.clone()
        else {
            return self.on_kms_response(payload);
        };
        self.core.send_message(
            payload_type::HANDSHAKE_COMPLETE,
            handshake::complete(since.elapsed()),
        );
        let mode = local_port_forwarding
            .then(|| handshake::port_mode(&self.core.spec.agent_version, &response.client_version));
        tracing::info!(
            session_id = %self.core.session_id(),
            client_version = %response.client_version,
            ?mode,
            "handshake complete"
        );
        self.plugin = match mode {
            Some(PortMode::Mux { keepalive }) => Plugin::Mux(Mux::new(host, port, keepalive)),
            Some(PortMode::Basic) => Plugin::Basic(Basic::start(&mut self.core, host, port, true)),
            None => Plugin::Basic(Basic::start(&mut self.core, host, port, false)),
        };
    }

    fn on_flag(&mut self, payload: &[u8]) {
        let Ok(bytes) = <[u8; 4]>::try_from(payload) else {
            return;
        };
        match u32::from_be_bytes(bytes) {
            flag::DISCONNECT_TO_PORT => {
                if let Plugin::Basic(basic) = &mut self.plugin {
                    basic.disconnect();
                }
            }
            flag::TERMINATE_SESSION => {
                if handshake::understands_terminate_flag(&self.core.spec.agent_version) {
                    tracing::info!(
                        session_id = %self.core.session_id(),
                        "the client terminated the session",
                    );
                    self.core.finish(Ending::Now(String::new()));
                }
            }
            other => {
                tracing::debug!(
                    session_id = %self.core.session_id(),
                    flag = other,
                    "ignoring a flag",
                );
            }
        }
    }

    fn on_backend(&mut self, event: BackendEvent) {
        match &mut self.plugin {
            Plugin::Mux(mux) => mux.on_backend(&mut self.core, event),
            Plugin::Basic(basic) => basic.on_backend(&mut self.core, event),
            Plugin::Shell(shell) => match event {
                BackendEvent::Data(conn, data) if conn == shell.conn() => self.core.output(&data),
                BackendEvent::Closed(conn) if conn == shell.conn() => self.core.complete(),
                _ => {}
            },
            Plugin::NotStarted | Plugin::Handshaking { .. } => {}
        }
    }

    fn on_dialed(&mut self, dialed: Dialed) {
        match &mut self.plugin {
            Plugin::Mux(mux) => mux.on_dialed(&mut self.core, dialed),
            Plugin::Basic(basic) => basic.on_dialed(&mut self.core, dialed),
            _ => {}
        }
    }

    fn on_tick(&mut self) {
        // A frame held back for reordering goes now if nothing overtook it.
        if let Some(frame) = self.core.faults_in.release() {
            self.on_frame(&frame);
        }
        if let (Some(link), Some(frame)) = (&self.core.link, self.core.faults_out.release()) {
            let _ = link.out.send(Outgoing::Frame(frame));
        }
        let now = Instant::now();
        if self.core.link.is_some()
            && let Some(frame) = self.core.channel.due_retransmission(now)
        {
            self.core.transmit(frame);
        }
        self.drain_early();
        match &mut self.plugin {
            Plugin::Handshaking { since } if since.elapsed() >= handshake::HANDSHAKE_TIMEOUT => {
                let challenged = self
                    .core
                    .kms
                    .as_ref()
                    .is_some_and(|kms| kms.challenged.is_some());
                let reason = if challenged {
                    handshake::CHALLENGE_TIMED_OUT
                } else {
                    handshake::TIMED_OUT
                };
                self.core.finish(Ending::Now(reason.to_owned()));
            }
            Plugin::Mux(mux) => mux.tick(&mut self.core, now),
            _ => {}
        }
        let simulated = self.core.world.clock.now();
        let preferences = self.core.spec.preferences;
        if simulated - self.core.last_activity >= preferences.idle_timeout {
            self.core.finish(Ending::Now(IDLE_TIMEOUT.to_owned()));
        }
        if preferences
            .max_duration
            .is_some_and(|max| simulated - self.core.began >= max)
        {
            self.core.finish(Ending::Now(MAX_DURATION.to_owned()));
        }
    }

    /// Once the session is over (and drained, when it ended on its own): `channel_closed`,
    /// a Close frame, and the service forgets the agent. Returns whether the agent is done.
    fn try_finish(&mut self) -> bool {
        let reason = match &self.core.ending {
            None => return false,
            Some(Ending::Drain { reason, deadline }) => {
                let drained = self.core.out.is_empty() && self.core.channel.unacknowledged() == 0;
                if !drained && Instant::now() < *deadline {
                    return false;
                }
                reason.clone()
            }
            Some(Ending::Now(reason)) => reason.clone(),
        };
        // Destinations close and the shell is killed with their owners.
        self.plugin = Plugin::NotStarted;
        let session_id = self.core.spec.session_id.clone();
        if let Some(link) = self.core.link.take() {
            let closed = wire::channel_closed(&session_id, &reason, Utc::now());
            let _ = link.out.send(Outgoing::Frame(closed));
            let _ = link
                .out
                .send(Outgoing::Close(CloseCode::Normal, String::new()));
        }
        self.core.attached.store(false, Ordering::Relaxed);
        self.core.world.ssm.ended(&session_id, &reason);
        tracing::info!(%session_id, %reason, "session ended");
        true
    }
}

/// The next frame from the attached client; `None` when its connection ended. Without a
/// client this never resolves.
async fn next_frame(link: &mut Option<ClientLink>) -> Option<Vec<u8>> {
    match link {
        Some(link) => link.frames.recv().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

fn unix_ms() -> u64 {
    u64::try_from(Utc::now().timestamp_millis())
        .unwrap_or(1)
        .max(1)
}

/// Mux port forwarding: an smux v1 server over the Output byte stream (§7.3).
struct Mux {
    host: Option<String>,
    port: u16,
    frames: FrameReader,
    streams: HashMap<u32, MuxStream>,
    by_conn: HashMap<ConnId, u32>,
    keepalive: Option<Keepalive>,
}

enum MuxStream {
    /// Accepted; the destination is being dialled. Data (and a FIN) from the client wait.
    Dialing {
        conn: ConnId,
        early: Vec<Vec<u8>>,
        fin: bool,
    },
    Open {
        connection: Connection,
    },
}

/// smux keepalive: a NOP every 10 s, the session closed when no frame arrived for 30 s.
struct Keepalive {
    next_nop: Instant,
    next_check: Instant,
    frame_seen: bool,
}

impl Mux {
    fn new(host: Option<String>, port: u16, keepalive: bool) -> Mux {
        let now = Instant::now();
        Mux {
            host,
            port,
            frames: FrameReader::default(),
            streams: HashMap::new(),
            by_conn: HashMap::new(),
            keepalive: keepalive.then_some(Keepalive {
                next_nop: now + KEEPALIVE_INTERVAL,
                next_check: now + KEEPALIVE_TIMEOUT,
                frame_seen: false,
            }),
        }
    }

    fn input(&mut self, core: &mut Core, data: &[u8]) -> Handled {
        if core.receive_buffer_full() {
            return Handled::NotReady;
        }
        self.frames.push(data);
        loop {
            match self.frames.next_frame() {
                Ok(Some(frame)) => {
                    if let Some(keepalive) = &mut self.keepalive {
                        keepalive.frame_seen = true;
                    }
                    self.on_frame(core, frame);
                }
                Ok(None) => return Handled::Accepted,
                Err(error) => {
                    core.finish(Ending::Now(error.to_string()));
                    return Handled::Accepted;
                }
            }
        }
    }

    fn on_frame(&mut self, core: &mut Core, frame: smux::Frame) {
        let id = frame.stream_id;
        match frame.command {
            SmuxCommand::Syn => {
                if !self.streams.contains_key(&id) {
                    let conn = core.dial(self.host.clone(), self.port);
                    self.by_conn.insert(conn, id);
                    self.streams.insert(
                        id,
                        MuxStream::Dialing {
                            conn,
                            early: Vec::new(),
                            fin: false,
                        },
                    );
                }
            }
            SmuxCommand::Psh => match self.streams.get_mut(&id) {
                Some(MuxStream::Dialing { early, .. }) => {
                    core.count_queued(frame.data.len());
                    early.push(frame.data);
                }
                Some(MuxStream::Open { connection }) => {
                    core.count_queued(frame.data.len());
                    connection.write(frame.data);
                }
                // smux reads and discards data for streams it does not know.
                None => {}
            },
            SmuxCommand::Fin => match self.streams.get_mut(&id) {
                Some(MuxStream::Dialing { fin, .. }) => *fin = true,
                Some(MuxStream::Open { .. }) => {
                    // The destination is closed once what was written is flushed; the
                    // agent's own side of the stream closes too (smux v1 full close).
                    self.streams.remove(&id);
                    self.by_conn.retain(|_, stream| *stream != id);
                    core.output_frame(SmuxCommand::Fin, id, &[]);
                }
                None => {}
            },
            SmuxCommand::Nop => {}
        }
    }

    fn on_dialed(&mut self, core: &mut Core, dialed: Dialed) {
        let Some(&id) = self.by_conn.get(&dialed.conn) else {
            return;
        };
        let Some(MuxStream::Dialing { conn, early, fin }) = self.streams.remove(&id) else {
            return;
        };
        match dialed.result {
            Ok(io) => {
                let connection = core.start_connection(io, conn, smux::MAX_FRAME_SIZE);
                for data in early {
                    connection.write(data);
                }
                if fin {
                    self.by_conn.remove(&conn);
                    core.output_frame(SmuxCommand::Fin, id, &[]);
                } else {
                    self.streams.insert(id, MuxStream::Open { connection });
                }
            }
            Err(reason) => {
                tracing::info!(
                    session_id = %core.session_id(),
                    stream = id,
                    %reason,
                    "cannot connect to the destination",
                );
                core.uncount_queued(early.iter().map(Vec::len).sum());
                self.by_conn.remove(&conn);
                core.send_flag(flag::CONNECT_TO_PORT_ERROR);
                core.output_frame(SmuxCommand::Fin, id, &[]);
            }
        }
    }

    fn on_backend(&mut self, core: &mut Core, event: BackendEvent) {
        match event {
            BackendEvent::Data(conn, data) => {
                if let Some(&id) = self.by_conn.get(&conn) {
                    core.output_frame(SmuxCommand::Psh, id, &data);
                }
            }
            BackendEvent::Closed(conn) => {
                if let Some(id) = self.by_conn.remove(&conn) {
                    self.streams.remove(&id);
                    core.output_frame(SmuxCommand::Fin, id, &[]);
                }
            }
        }
    }

    fn tick(&mut self, core: &mut Core, now: Instant) {
        let Some(keepalive) = &mut self.keepalive else {
            return;
        };
        if now >= keepalive.next_check {
            if !keepalive.frame_seen && !core.receive_buffer_full() {
                core.finish(Ending::Now(
                    "smux: no frame from the client within the keepalive timeout".to_owned(),
                ));
                return;
            }
            keepalive.frame_seen = false;
            keepalive.next_check = now + KEEPALIVE_TIMEOUT;
        }
        if now >= keepalive.next_nop {
            keepalive.next_nop = now + KEEPALIVE_INTERVAL;
            core.output_frame(SmuxCommand::Nop, 0, &[]);
        }
    }
}

/// Basic port forwarding (§7.2), and `AWS-StartSSHSession`'s single byte stream.
struct Basic {
    host: Option<String>,
    port: u16,
    /// `type` LocalPortForwarding: the destination is redialled after it closes; otherwise
    /// its end is the session's end.
    local_port_forwarding: bool,
    state: BasicState,
    /// A failure of the first dial, at session start, fails the session.
    first_dial: bool,
}

enum BasicState {
    Idle,
    Dialing(ConnId),
    Open(ConnId, Connection),
}

impl Basic {
    /// The agent dials the destination when the session starts.
    fn start(
        core: &mut Core,
        host: Option<String>,
        port: u16,
        local_port_forwarding: bool,
    ) -> Basic {
        let conn = core.dial(host.clone(), port);
        Basic {
            host,
            port,
            local_port_forwarding,
            state: BasicState::Dialing(conn),
            first_dial: true,
        }
    }

    fn input(&mut self, core: &mut Core, data: &[u8]) -> Handled {
        match &self.state {
            BasicState::Open(_, connection) => {
                if core.receive_buffer_full() {
                    return Handled::NotReady;
                }
                core.count_queued(data.len());
                connection.write(data.to_vec());
                Handled::Accepted
            }
            BasicState::Dialing(_) => Handled::NotReady,
            BasicState::Idle => {
                self.state = BasicState::Dialing(core.dial(self.host.clone(), self.port));
                Handled::NotReady
            }
        }
    }

    /// Flag 1: the client's local connection closed; so does the destination connection.
    fn disconnect(&mut self) {
        self.state = BasicState::Idle;
    }

    fn on_dialed(&mut self, core: &mut Core, dialed: Dialed) {
        if !matches!(self.state, BasicState::Dialing(conn) if conn == dialed.conn) {
            return;
        }
        let first = std::mem::replace(&mut self.first_dial, false);
        match dialed.result {
            Ok(io) => {
                let connection = core.start_connection(io, dialed.conn, PAYLOAD_SIZE);
                self.state = BasicState::Open(dialed.conn, connection);
            }
            Err(reason) => {
                tracing::info!(
                    session_id = %core.session_id(),
                    %reason,
                    "cannot connect to the destination",
                );
                self.state = BasicState::Idle;
                if first {
                    core.finish(Ending::Now(format!(
                        "Unable to start the port session: {reason}"
                    )));
                }
            }
        }
    }

    fn on_backend(&mut self, core: &mut Core, event: BackendEvent) {
        let BasicState::Open(open, _) = self.state else {
            return;
        };
        match event {
            BackendEvent::Data(conn, data) if conn == open => core.output(&data),
            BackendEvent::Closed(conn) if conn == open => {
                self.state = BasicState::Idle;
                if !self.local_port_forwarding {
                    core.complete();
                }
            }
            _ => {}
        }
    }
}
