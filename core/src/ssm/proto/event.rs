//! What the application learns from a [`DataChannel`](super::channel::DataChannel): its events,
//! the handshake outcome, and why it closed.

use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;

use super::encryption::KmsEncryptionRequest;
use super::handshake::SessionType;
use super::mode::PortForwarding;

/// What the application learns from the channel.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The agent finished the handshake; data now flows.
    HandshakeComplete(Handshake),
    /// We refused something the agent asked for (e.g. KMS encryption); the agent will cancel
    /// the session. The reasons are meant for the user.
    HandshakeRefused { reasons: Vec<String> },
    /// The agent asked for KMS encryption: the handshake waits for
    /// [`DataChannel::provide_data_key`](super::DataChannel::provide_data_key) with a data key
    /// from `kms:GenerateDataKey` for this request (or the reason there is none).
    DataKeyNeeded(KmsEncryptionRequest),
    /// Output arrived without any handshake: a plain shell session (spec §7.0). Data flows.
    NoHandshake,
    /// Bytes from the agent (PayloadType Output): terminal output or forwarded bytes.
    Output(Bytes),
    /// Standard error of a non-interactive command (PayloadType StdErr).
    StdErr(Bytes),
    /// The exit code text of a non-interactive command (PayloadType ExitCode).
    ExitCode(Bytes),
    /// Mux port forwarding: the agent could not reach the destination for a new stream.
    ConnectToPortError,
    /// The channel is finished; nothing more will be sent or delivered.
    Closed(CloseReason),
}

/// What the agent said during the handshake.
#[derive(Debug, Clone, PartialEq)]
pub struct Handshake {
    pub agent_version: String,
    pub session_type: SessionType,
    /// The session document's properties (`null` for shells).
    pub properties: Value,
    /// A message for the user; empty when there is none.
    pub customer_message: String,
    pub time_to_complete: Duration,
}

impl Handshake {
    /// The port-forwarding data plane both sides will use, for `Port` sessions.
    pub fn port_forwarding(&self) -> Option<PortForwarding> {
        (self.session_type == SessionType::Port)
            .then(|| PortForwarding::choose(&self.agent_version, &self.properties))
    }
}

/// Why the channel closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseReason {
    /// The service ended the session (`channel_closed`); `output` may explain why.
    ChannelClosed { session_id: String, output: String },
    /// A message was never acknowledged within [`ChannelConfig::ack_timeout`](super::channel::ChannelConfig::ack_timeout).
    Unacknowledged { sequence_number: i64 },
    /// The agent broke the protocol in a way the session cannot survive.
    ProtocolViolation(String),
}
