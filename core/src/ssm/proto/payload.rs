//! The small payloads carried inside [`AgentMessage`](super::message::AgentMessage)s outside the
//! handshake: acknowledgements, the service's `channel_closed`, flags and terminal sizes
//! (spec §4.2–§4.3).
//!
//! Field names and order follow the Go `encoding/json` output of the plugin and the agent, so
//! what we send is byte-identical to what they send. What we parse is lenient: every field has a
//! default, unknown fields are ignored, and only the field we act on has to be right.

use serde::{Deserialize, Serialize};

/// The JSON body of an `acknowledge` message. The acknowledged sequence number is here, not in
/// the header (whose sequence number is always 0).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Acknowledge {
    /// The `MessageType` of the acknowledged message, e.g. `output_stream_data`.
    #[serde(default)]
    pub acknowledged_message_type: String,
    /// The acknowledged message's id as a lowercase hyphenated UUID. Nobody checks it.
    #[serde(default)]
    pub acknowledged_message_id: String,
    /// The only field a receiver acts on.
    pub acknowledged_message_sequence_number: i64,
    /// Always `true` on the wire.
    #[serde(default)]
    pub is_sequential_message: bool,
}

/// The JSON body of the service's `channel_closed`. Field order from the service varies, so it is
/// parsed by name; `Output` is the human-readable reason (often empty).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ChannelClosed {
    pub message_id: String,
    pub created_date: String,
    pub destination_id: String,
    pub session_id: String,
    pub message_type: String,
    pub schema_version: i64,
    pub output: String,
}

/// Flags a client sends as a PayloadType 10 message (spec §4.2): 4 bytes, big-endian.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientFlag {
    /// Basic port forwarding: the local TCP connection closed; the agent drops its own.
    DisconnectToPort,
    /// Port sessions: end the session (the in-band alternative to the TerminateSession API).
    TerminateSession,
}

impl ClientFlag {
    pub fn to_payload(self) -> [u8; 4] {
        let code: u32 = match self {
            ClientFlag::DisconnectToPort => 1,
            ClientFlag::TerminateSession => 2,
        };
        code.to_be_bytes()
    }
}

/// The flag value an agent sends in mux mode when it could not dial the destination of a newly
/// opened stream. It names no stream.
pub const CONNECT_TO_PORT_ERROR: u32 = 3;

/// Reads a flag payload: exactly 4 big-endian bytes, anything else is not a flag.
pub fn parse_flag(payload: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(payload.try_into().ok()?))
}

/// A shell's terminal size, sent as PayloadType 3 whenever it changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TerminalSize {
    pub cols: u32,
    pub rows: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acknowledge_serializes_with_go_field_names_in_go_order() {
        let ack = Acknowledge {
            acknowledged_message_type: "output_stream_data".into(),
            acknowledged_message_id: "dd01e56b-ff48-483e-a508-b5f073f31b16".into(),
            acknowledged_message_sequence_number: 2,
            is_sequential_message: true,
        };
        assert_eq!(
            serde_json::to_string(&ack).unwrap(),
            r#"{"AcknowledgedMessageType":"output_stream_data","AcknowledgedMessageId":"dd01e56b-ff48-483e-a508-b5f073f31b16","AcknowledgedMessageSequenceNumber":2,"IsSequentialMessage":true}"#
        );
    }

    #[test]
    fn an_acknowledge_needs_only_its_sequence_number_to_parse() {
        let ack: Acknowledge =
            serde_json::from_str(r#"{"AcknowledgedMessageSequenceNumber":41,"Extra":1}"#).unwrap();
        assert_eq!(ack.acknowledged_message_sequence_number, 41);
        assert!(serde_json::from_str::<Acknowledge>(r#"{"AcknowledgedMessageId":"x"}"#).is_err());
    }

    #[test]
    fn channel_closed_parses_by_name_in_any_order() {
        let closed: ChannelClosed = serde_json::from_str(
            r#"{"Output":"Session timed out","SchemaVersion":1,"SessionId":"s-0abc","MessageType":"channel_closed"}"#,
        )
        .unwrap();
        assert_eq!(closed.session_id, "s-0abc");
        assert_eq!(closed.output, "Session timed out");
        assert_eq!(closed.destination_id, "");
    }

    #[test]
    fn flags_are_four_big_endian_bytes() {
        assert_eq!(ClientFlag::DisconnectToPort.to_payload(), [0, 0, 0, 1]);
        assert_eq!(ClientFlag::TerminateSession.to_payload(), [0, 0, 0, 2]);
        assert_eq!(parse_flag(&[0, 0, 0, 3]), Some(CONNECT_TO_PORT_ERROR));
        assert_eq!(parse_flag(&[0, 0, 3]), None);
    }

    #[test]
    fn terminal_size_uses_lowercase_cols_and_rows() {
        let size = TerminalSize {
            cols: 120,
            rows: 40,
        };
        assert_eq!(
            serde_json::to_string(&size).unwrap(),
            r#"{"cols":120,"rows":40}"#
        );
    }
}
