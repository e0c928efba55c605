//! The binary envelope every data-channel message travels in (spec §3, "AgentMessage").
//!
//! One WebSocket binary frame carries exactly one message: a fixed big-endian header, a SHA-256
//! digest of the payload, then the payload. Sending is strict (the layout the agent and the
//! official plugin produce, byte for byte); receiving is defensive, because the service itself
//! deviates from the layout:
//!
//! - the payload starts at `HeaderLength + 4`, never at a fixed offset, so the service's
//!   `channel_closed` with its 112-byte header (no PayloadType field) parses correctly;
//! - `PayloadLength` is only a hint and is never trusted;
//! - the digest and creation date are checked only where the spec says peers fill them in
//!   honestly (stream data and acknowledgements): `start_publication`/`pause_publication` carry
//!   garbage there and `channel_closed` is terminal anyway.
//!
//! Decoding never panics: every offset is checked against the frame length first.

use bytes::Bytes;
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// The header length written on send: the offset of the PayloadLength field.
pub const HEADER_LENGTH: u32 = 116;
/// The header length of the service's `channel_closed`, which has no PayloadType field.
const SHORT_HEADER_LENGTH: u32 = 112;

const MESSAGE_TYPE: std::ops::Range<usize> = 4..36;
const SCHEMA_VERSION: usize = 36;
const CREATED_DATE: usize = 40;
const SEQUENCE_NUMBER: usize = 48;
const FLAGS: usize = 56;
const MESSAGE_ID: usize = 64;
const PAYLOAD_DIGEST: std::ops::Range<usize> = 80..112;
const PAYLOAD_TYPE: usize = 112;
const PAYLOAD_LENGTH: usize = 116;
const PAYLOAD: usize = 120;

/// Header flag bit 0: the first message of a stream (the agent sets it on its sequence 0).
pub const FLAG_SYN: u64 = 1;
/// Header flag bit 1. Acknowledgements and control messages carry `FLAG_SYN | FLAG_FIN`.
pub const FLAG_FIN: u64 = 2;

/// The `MessageType` strings that may appear on a client's data channel (spec §4.1).
///
/// Anything else (control-channel types, or `agent_session_state`) is reported by
/// [`AgentMessage::decode`] as [`DecodeError::UnknownMessageType`] so the caller can ignore it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageType {
    /// Client → agent stream data; sequenced and acknowledged.
    InputStreamData,
    /// Agent → client stream data; sequenced and acknowledged.
    OutputStreamData,
    /// Acknowledgement of one stream message, either direction; never itself acknowledged.
    Acknowledge,
    /// The service ends the session.
    ChannelClosed,
    /// The service asks the sender to resume sending.
    StartPublication,
    /// The service asks the sender to hold its stream data: the other side is inactive.
    PausePublication,
}

impl MessageType {
    /// The wire spelling, without padding.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageType::InputStreamData => "input_stream_data",
            MessageType::OutputStreamData => "output_stream_data",
            MessageType::Acknowledge => "acknowledge",
            MessageType::ChannelClosed => "channel_closed",
            MessageType::StartPublication => "start_publication",
            MessageType::PausePublication => "pause_publication",
        }
    }

    fn parse(name: &str) -> Option<Self> {
        [
            MessageType::InputStreamData,
            MessageType::OutputStreamData,
            MessageType::Acknowledge,
            MessageType::ChannelClosed,
            MessageType::StartPublication,
            MessageType::PausePublication,
        ]
        .into_iter()
        .find(|known| known.as_str() == name)
    }

    /// Whether peers fill in the digest and creation date honestly, so they can be checked.
    fn is_verifiable(self) -> bool {
        matches!(
            self,
            MessageType::InputStreamData | MessageType::OutputStreamData | MessageType::Acknowledge
        )
    }
}

/// What the payload of a stream message is (spec §4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PayloadType {
    /// 0: acknowledgements and messages without a PayloadType field.
    Unset,
    /// 1: the data bytes, both directions.
    Output,
    /// 2: defined by the protocol, never used.
    Error,
    /// 3: a terminal size (`{"cols":..,"rows":..}`), client → agent.
    Size,
    /// 4: defined by the protocol, never used.
    Parameter,
    /// 5: the agent opens the handshake.
    HandshakeRequest,
    /// 6: the client's answer to the handshake.
    HandshakeResponse,
    /// 7: the agent ends the handshake.
    HandshakeComplete,
    /// 8: KMS challenge, agent → client.
    EncChallengeRequest,
    /// 9: KMS challenge answer, client → agent.
    EncChallengeResponse,
    /// 10: a 4-byte big-endian flag (disconnect, terminate, connect error).
    Flag,
    /// 11: standard error of non-interactive commands.
    StdErr,
    /// 12: the exit code of non-interactive commands.
    ExitCode,
    /// Any other value, kept so that it can be logged and ignored.
    Unknown(u32),
}

impl PayloadType {
    /// The numeric wire value.
    pub fn code(self) -> u32 {
        match self {
            PayloadType::Unset => 0,
            PayloadType::Output => 1,
            PayloadType::Error => 2,
            PayloadType::Size => 3,
            PayloadType::Parameter => 4,
            PayloadType::HandshakeRequest => 5,
            PayloadType::HandshakeResponse => 6,
            PayloadType::HandshakeComplete => 7,
            PayloadType::EncChallengeRequest => 8,
            PayloadType::EncChallengeResponse => 9,
            PayloadType::Flag => 10,
            PayloadType::StdErr => 11,
            PayloadType::ExitCode => 12,
            PayloadType::Unknown(code) => code,
        }
    }
}

impl From<u32> for PayloadType {
    fn from(code: u32) -> Self {
        match code {
            0 => PayloadType::Unset,
            1 => PayloadType::Output,
            2 => PayloadType::Error,
            3 => PayloadType::Size,
            4 => PayloadType::Parameter,
            5 => PayloadType::HandshakeRequest,
            6 => PayloadType::HandshakeResponse,
            7 => PayloadType::HandshakeComplete,
            8 => PayloadType::EncChallengeRequest,
            9 => PayloadType::EncChallengeResponse,
            10 => PayloadType::Flag,
            11 => PayloadType::StdErr,
            12 => PayloadType::ExitCode,
            other => PayloadType::Unknown(other),
        }
    }
}

/// One data-channel message, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentMessage {
    pub message_type: MessageType,
    /// Always 1 on send; not checked on receive.
    pub schema_version: u32,
    /// Unix epoch milliseconds; must be non-zero.
    pub created_date: u64,
    /// The per-direction stream counter; 0 for acknowledgements and control messages.
    pub sequence_number: i64,
    /// [`FLAG_SYN`] / [`FLAG_FIN`] bits.
    pub flags: u64,
    pub message_id: Uuid,
    pub payload_type: PayloadType,
    pub payload: Bytes,
}

/// Why a received frame was rejected. The channel stays usable: a rejected frame is dropped
/// unacknowledged, and the peer retransmits it if it mattered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("frame of {len} bytes is too short for its header")]
    Truncated { len: usize },
    #[error("header length {0} is shorter than the fixed header fields")]
    HeaderTooShort(u32),
    #[error("message type {0:?} is not used on a client data channel; ignored")]
    UnknownMessageType(String),
    #[error("{0} message has a zero creation date")]
    ZeroCreatedDate(&'static str),
    #[error("{0} message payload does not match its SHA-256 digest")]
    DigestMismatch(&'static str),
}

impl AgentMessage {
    /// Serializes the message exactly as the official plugin does: header length 116,
    /// space-padded type, swapped UUID halves, SHA-256 digest, payload length.
    ///
    /// Payloads are bounded by the callers (the channel cuts them at a `u16` size), so the
    /// 32-bit length field always holds the true length.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(PAYLOAD + self.payload.len());
        out.extend_from_slice(&HEADER_LENGTH.to_be_bytes());
        let mut message_type = [b' '; 32];
        let name = self.message_type.as_str().as_bytes();
        message_type[..name.len()].copy_from_slice(name);
        out.extend_from_slice(&message_type);
        out.extend_from_slice(&self.schema_version.to_be_bytes());
        out.extend_from_slice(&self.created_date.to_be_bytes());
        out.extend_from_slice(&self.sequence_number.to_be_bytes());
        out.extend_from_slice(&self.flags.to_be_bytes());
        let id = self.message_id.as_bytes();
        out.extend_from_slice(&id[8..16]);
        out.extend_from_slice(&id[0..8]);
        out.extend_from_slice(&Sha256::digest(&self.payload));
        out.extend_from_slice(&self.payload_type.code().to_be_bytes());
        debug_assert!(u32::try_from(self.payload.len()).is_ok());
        out.extend_from_slice(&(self.payload.len() as u32).to_be_bytes());
        out.extend_from_slice(&self.payload);
        out
    }

    /// Parses one received frame; see the module docs for what is tolerated.
    pub fn decode(frame: &[u8]) -> Result<Self, DecodeError> {
        let truncated = DecodeError::Truncated { len: frame.len() };
        let header_length = read_u32(frame, 0).ok_or(truncated.clone())?;
        if header_length < SHORT_HEADER_LENGTH {
            return Err(DecodeError::HeaderTooShort(header_length));
        }
        // The payload starts after the PayloadLength field, which sits at `header_length`.
        let payload_start = (header_length as usize).saturating_add(4);
        if frame.len() < payload_start {
            return Err(truncated);
        }
        // From here on every fixed field below offset `payload_start` (>= 116) is in bounds.
        let message_type = parse_message_type(&frame[MESSAGE_TYPE])?;
        let payload_type = if header_length >= PAYLOAD_LENGTH as u32 {
            PayloadType::from(read_u32(frame, PAYLOAD_TYPE).unwrap_or(0))
        } else {
            PayloadType::Unset
        };
        let mut id = [0u8; 16];
        id[0..8].copy_from_slice(&frame[MESSAGE_ID + 8..MESSAGE_ID + 16]);
        id[8..16].copy_from_slice(&frame[MESSAGE_ID..MESSAGE_ID + 8]);
        let message = AgentMessage {
            message_type,
            schema_version: read_u32(frame, SCHEMA_VERSION).unwrap_or(0),
            created_date: read_u64(frame, CREATED_DATE).unwrap_or(0),
            sequence_number: read_u64(frame, SEQUENCE_NUMBER).unwrap_or(0) as i64,
            flags: read_u64(frame, FLAGS).unwrap_or(0),
            message_id: Uuid::from_bytes(id),
            payload_type,
            payload: Bytes::copy_from_slice(&frame[payload_start..]),
        };
        if message_type.is_verifiable() {
            if message.created_date == 0 {
                return Err(DecodeError::ZeroCreatedDate(message_type.as_str()));
            }
            if Sha256::digest(&message.payload)[..] != frame[PAYLOAD_DIGEST] {
                return Err(DecodeError::DigestMismatch(message_type.as_str()));
            }
        }
        Ok(message)
    }
}

/// Trims NULs on both ends, then whitespace, as both the plugin and the agent do.
fn parse_message_type(field: &[u8]) -> Result<MessageType, DecodeError> {
    let start = field.iter().position(|&b| b != 0).unwrap_or(field.len());
    let end = field.iter().rposition(|&b| b != 0).map_or(start, |i| i + 1);
    let name = String::from_utf8_lossy(&field[start..end]);
    let name = name.trim();
    MessageType::parse(name).ok_or_else(|| DecodeError::UnknownMessageType(name.to_owned()))
}

fn read_u32(frame: &[u8], at: usize) -> Option<u32> {
    let bytes = frame.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes(bytes.try_into().ok()?))
}

fn read_u64(frame: &[u8], at: usize) -> Option<u64> {
    let bytes = frame.get(at..at.checked_add(8)?)?;
    Some(u64::from_be_bytes(bytes.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const CREATED: u64 = 1_503_434_274_948;

    fn hex(s: &str) -> Vec<u8> {
        let digits: String = s.split_whitespace().collect();
        (0..digits.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&digits[i..i + 2], 16).unwrap())
            .collect()
    }

    fn input_stream_data_vector() -> AgentMessage {
        AgentMessage {
            message_type: MessageType::InputStreamData,
            schema_version: 1,
            created_date: CREATED,
            sequence_number: 2,
            flags: 0,
            message_id: "dd01e56b-ff48-483e-a508-b5f073f31b16".parse().unwrap(),
            payload_type: PayloadType::Output,
            payload: Bytes::from_static(b"payload"),
        }
    }

    const INPUT_STREAM_DATA_BYTES: &str = "
        00 00 00 74 69 6e 70 75 74 5f 73 74 72 65 61 6d
        5f 64 61 74 61 20 20 20 20 20 20 20 20 20 20 20
        20 20 20 20 00 00 00 01 00 00 01 5e 0b aa 78 84
        00 00 00 00 00 00 00 02 00 00 00 00 00 00 00 00
        a5 08 b5 f0 73 f3 1b 16 dd 01 e5 6b ff 48 48 3e
        23 9f 59 ed 55 e7 37 c7 71 47 cf 55 ad 0c 1b 03
        0b 6d 7e e7 48 a7 42 69 52 f9 b8 52 d5 a9 35 e5
        00 00 00 01 00 00 00 07 70 61 79 6c 6f 61 64";

    const ACK_PAYLOAD: &str = r#"{"AcknowledgedMessageType":"output_stream_data","AcknowledgedMessageId":"dd01e56b-ff48-483e-a508-b5f073f31b16","AcknowledgedMessageSequenceNumber":2,"IsSequentialMessage":true}"#;

    const ACK_HEADER_BYTES: &str = "
        00 00 00 74 61 63 6b 6e 6f 77 6c 65 64 67 65 20
        20 20 20 20 20 20 20 20 20 20 20 20 20 20 20 20
        20 20 20 20 00 00 00 01 00 00 01 5e 0b aa 78 84
        00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 03
        44 44 55 55 55 55 55 55 11 11 11 11 22 22 33 33
        82 61 49 d3 5e 09 fb 65 5b 0d e7 14 8d ac 39 3b
        94 0c 08 94 4a ec cb ef ab 44 cb d8 6c 9b e0 50
        00 00 00 00 00 00 00 b0";

    fn acknowledge_vector() -> AgentMessage {
        AgentMessage {
            message_type: MessageType::Acknowledge,
            schema_version: 1,
            created_date: CREATED,
            sequence_number: 0,
            flags: FLAG_SYN | FLAG_FIN,
            message_id: "11111111-2222-3333-4444-555555555555".parse().unwrap(),
            payload_type: PayloadType::Unset,
            payload: Bytes::from_static(ACK_PAYLOAD.as_bytes()),
        }
    }

    fn terminate_flag_vector() -> AgentMessage {
        AgentMessage {
            message_type: MessageType::InputStreamData,
            schema_version: 1,
            created_date: CREATED,
            sequence_number: 5,
            flags: 0,
            message_id: Uuid::nil(),
            payload_type: PayloadType::Flag,
            payload: Bytes::from_static(&[0, 0, 0, 2]),
        }
    }

    #[test]
    fn input_stream_data_encodes_to_the_spec_vector_byte_for_byte() {
        assert_eq!(
            input_stream_data_vector().encode(),
            hex(INPUT_STREAM_DATA_BYTES)
        );
    }

    #[test]
    fn input_stream_data_spec_vector_decodes_to_its_fields() {
        let decoded = AgentMessage::decode(&hex(INPUT_STREAM_DATA_BYTES)).unwrap();
        assert_eq!(decoded, input_stream_data_vector());
    }

    #[test]
    fn acknowledge_encodes_to_the_spec_vector_byte_for_byte() {
        let encoded = acknowledge_vector().encode();
        assert_eq!(encoded.len(), 296);
        assert_eq!(&encoded[..120], &hex(ACK_HEADER_BYTES)[..]);
        assert_eq!(&encoded[120..], ACK_PAYLOAD.as_bytes());
    }

    #[test]
    fn acknowledge_spec_vector_decodes_to_its_fields() {
        let mut frame = hex(ACK_HEADER_BYTES);
        frame.extend_from_slice(ACK_PAYLOAD.as_bytes());
        assert_eq!(AgentMessage::decode(&frame).unwrap(), acknowledge_vector());
    }

    #[test]
    fn terminate_flag_encodes_to_the_spec_vector_tail_and_digest() {
        let encoded = terminate_flag_vector().encode();
        assert_eq!(encoded.len(), 124);
        assert_eq!(
            &encoded[112..],
            &hex("00 00 00 0a 00 00 00 04 00 00 00 02")[..]
        );
        assert_eq!(
            &encoded[80..112],
            &hex("433ebf5bc03dffa38536673207a21281612cef5faa9bc7a4d5b9be2fdb12cf1a")[..]
        );
        assert_eq!(
            AgentMessage::decode(&encoded).unwrap(),
            terminate_flag_vector()
        );
    }

    /// Builds the service's `channel_closed`: 112-byte header, no PayloadType, NUL padding.
    fn short_header_channel_closed(payload: &[u8]) -> Vec<u8> {
        let mut frame = Vec::new();
        frame.extend_from_slice(&112u32.to_be_bytes());
        let mut name = [0u8; 32];
        name[..14].copy_from_slice(b"channel_closed");
        frame.extend_from_slice(&name);
        frame.extend_from_slice(&1u32.to_be_bytes());
        frame.extend_from_slice(&CREATED.to_be_bytes());
        frame.extend_from_slice(&0i64.to_be_bytes());
        frame.extend_from_slice(&3u64.to_be_bytes());
        frame.extend_from_slice(&[7u8; 16]);
        frame.extend_from_slice(&Sha256::digest(payload));
        frame.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        frame.extend_from_slice(payload);
        frame
    }

    #[test]
    fn channel_closed_with_a_112_byte_header_yields_its_whole_json_payload() {
        let payload = br#"{"SessionId":"s-1","Output":"bye"}"#;
        let decoded = AgentMessage::decode(&short_header_channel_closed(payload)).unwrap();
        assert_eq!(decoded.message_type, MessageType::ChannelClosed);
        assert_eq!(decoded.payload_type, PayloadType::Unset);
        assert_eq!(&decoded.payload[..], payload);
    }

    #[test]
    fn a_corrupted_stream_payload_is_rejected_as_a_digest_mismatch() {
        let mut frame = input_stream_data_vector().encode();
        *frame.last_mut().unwrap() ^= 1;
        assert_eq!(
            AgentMessage::decode(&frame),
            Err(DecodeError::DigestMismatch("input_stream_data"))
        );
    }

    #[test]
    fn a_stream_message_with_a_zero_creation_date_is_rejected() {
        let mut message = input_stream_data_vector();
        message.created_date = 0;
        assert_eq!(
            AgentMessage::decode(&message.encode()),
            Err(DecodeError::ZeroCreatedDate("input_stream_data"))
        );
    }

    #[test]
    fn publication_messages_with_garbage_length_and_digest_are_accepted() {
        let mut message = input_stream_data_vector();
        message.message_type = MessageType::PausePublication;
        let mut frame = message.encode();
        frame[80..112].fill(0xee);
        frame[116..120].copy_from_slice(&7u32.to_le_bytes());
        frame.push(b'!');
        let decoded = AgentMessage::decode(&frame).unwrap();
        assert_eq!(decoded.message_type, MessageType::PausePublication);
        assert_eq!(&decoded.payload[..], b"payload!");
    }

    #[test]
    fn unknown_message_types_are_reported_by_name() {
        let mut frame = input_stream_data_vector().encode();
        frame[4..36].copy_from_slice(&[b' '; 32]);
        frame[4..23].copy_from_slice(b"agent_session_state");
        assert_eq!(
            AgentMessage::decode(&frame),
            Err(DecodeError::UnknownMessageType(
                "agent_session_state".into()
            ))
        );
    }

    #[test]
    fn frames_shorter_than_their_header_length_are_truncated() {
        let frame = input_stream_data_vector().encode();
        assert_eq!(
            AgentMessage::decode(&frame[..119]),
            Err(DecodeError::Truncated { len: 119 })
        );
        assert_eq!(
            AgentMessage::decode(&[0, 0]),
            Err(DecodeError::Truncated { len: 2 })
        );
        let mut huge = frame.clone();
        huge[0..4].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(
            AgentMessage::decode(&huge),
            Err(DecodeError::Truncated { .. })
        ));
    }

    #[test]
    fn a_header_length_below_the_fixed_fields_is_rejected() {
        let mut frame = input_stream_data_vector().encode();
        frame[0..4].copy_from_slice(&20u32.to_be_bytes());
        assert_eq!(
            AgentMessage::decode(&frame),
            Err(DecodeError::HeaderTooShort(20))
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = AgentMessage::decode(&bytes);
        }

        #[test]
        fn decoding_a_mutated_valid_frame_never_panics(
            index in 0usize..140,
            value in any::<u8>(),
        ) {
            let mut frame = input_stream_data_vector().encode();
            frame.resize(140, 0);
            frame[index] = value;
            let _ = AgentMessage::decode(&frame);
        }

        #[test]
        fn every_encoded_message_decodes_to_itself(
            sequence_number in any::<i64>(),
            created_date in 1u64..,
            flags in any::<u64>(),
            id in any::<[u8; 16]>(),
            payload_type in any::<u32>(),
            payload in proptest::collection::vec(any::<u8>(), 0..300),
            output in any::<bool>(),
        ) {
            let message = AgentMessage {
                message_type: if output { MessageType::OutputStreamData } else { MessageType::Acknowledge },
                schema_version: 1,
                created_date,
                sequence_number,
                flags,
                message_id: Uuid::from_bytes(id),
                payload_type: PayloadType::from(payload_type),
                payload: Bytes::from(payload),
            };
            prop_assert_eq!(AgentMessage::decode(&message.encode()), Ok(message));
        }
    }
}
