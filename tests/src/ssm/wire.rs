//! The data channel's binary message (spec §3, "ClientMessage"/"AgentMessage"), as the
//! service and the agent write and read it.
//!
//! Written from the spec for the simulator, independently of the product's codec, and pinned
//! by the spec's test vectors (§3.1). All integers are big-endian; the message type is
//! space-padded to 32 bytes; the message id's two 8-byte halves are swapped; the payload
//! digest is SHA-256.
//!
//! Reading follows the agent (§3 point 3: HeaderLength, MessageType and CreatedDate must be
//! set) and is stricter in one way: the digest of stream data and acknowledgements is checked
//! too, so a client that writes a wrong digest is caught here rather than silently accepted.
//! Writing `channel_closed` follows the *service*, whose message deviates from the layout: a
//! 112-byte header with no PayloadType field and a NUL-padded type (§3), exactly what a client
//! must parse defensively.

use sha2::{Digest, Sha256};
use uuid::Uuid;

/// The header length written on every message but `channel_closed`.
const HEADER_LENGTH: u32 = 116;
/// The header length of the service's `channel_closed` (no PayloadType field).
const CHANNEL_CLOSED_HEADER_LENGTH: u32 = 112;
/// Where the payload starts in a normal message.
const PAYLOAD_OFFSET: usize = 120;

/// `input_stream_data`: client → agent stream data (§4.1).
pub const INPUT_STREAM_DATA: &str = "input_stream_data";
/// `output_stream_data`: agent → client stream data.
pub const OUTPUT_STREAM_DATA: &str = "output_stream_data";
/// `acknowledge`: either direction, never itself acknowledged.
pub const ACKNOWLEDGE: &str = "acknowledge";
/// `channel_closed`: the service ends the session.
pub const CHANNEL_CLOSED: &str = "channel_closed";

/// Header flags (§3 field 6): the agent's first stream message carries SYN, acknowledgements
/// SYN|FIN.
pub const FLAG_SYN: u64 = 1;
pub const FLAG_FIN: u64 = 2;

/// PayloadType values the agent sends or acts on (§4.2).
pub mod payload_type {
    pub const NONE: u32 = 0;
    pub const OUTPUT: u32 = 1;
    pub const SIZE: u32 = 3;
    pub const HANDSHAKE_REQUEST: u32 = 5;
    pub const HANDSHAKE_RESPONSE: u32 = 6;
    pub const HANDSHAKE_COMPLETE: u32 = 7;
    pub const FLAG: u32 = 10;
}

/// Flag values (PayloadType 10, 4 bytes big-endian, §4.2).
pub mod flag {
    /// Client, basic port forwarding: the local connection closed.
    pub const DISCONNECT_TO_PORT: u32 = 1;
    /// Client, port sessions: end the session.
    pub const TERMINATE_SESSION: u32 = 2;
    /// Agent, mux port forwarding: the destination of a new stream could not be dialled.
    pub const CONNECT_TO_PORT_ERROR: u32 = 3;
}

/// One decoded (or to-be-encoded) message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub message_type: String,
    pub schema_version: u32,
    /// Unix epoch milliseconds.
    pub created_date: u64,
    pub sequence_number: i64,
    pub flags: u64,
    pub message_id: Uuid,
    pub payload_type: u32,
    pub payload: Vec<u8>,
}

/// Why a received frame was not accepted. The agent drops such frames unacknowledged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("a frame of {0} bytes is shorter than its header")]
    Truncated(usize),
    #[error("the header length is {0}; a message header is 116 bytes")]
    BadHeaderLength(u32),
    #[error("the message type is empty")]
    NoMessageType,
    #[error("the creation date is zero")]
    NoCreatedDate,
    #[error("the payload does not match its SHA-256 digest")]
    DigestMismatch,
}

impl Message {
    /// A message of `message_type` with a fresh random id, created at `created_date`.
    pub fn new(
        message_type: &str,
        sequence_number: i64,
        flags: u64,
        payload_type: u32,
        payload: Vec<u8>,
        created_date: u64,
    ) -> Message {
        Message {
            message_type: message_type.to_owned(),
            schema_version: 1,
            created_date,
            sequence_number,
            flags,
            message_id: Uuid::new_v4(),
            payload_type,
            payload,
        }
    }

    /// The message exactly as the agent serializes it: header length 116.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(PAYLOAD_OFFSET + self.payload.len());
        out.extend_from_slice(&HEADER_LENGTH.to_be_bytes());
        self.encode_common(&mut out, b' ');
        out.extend_from_slice(&self.payload_type.to_be_bytes());
        out.extend_from_slice(&payload_length(&self.payload).to_be_bytes());
        out.extend_from_slice(&self.payload);
        out
    }

    /// Type, schema version, date, sequence number, flags, id and digest: bytes 4..112.
    fn encode_common(&self, out: &mut Vec<u8>, padding: u8) {
        let mut message_type = [padding; 32];
        let name = self.message_type.as_bytes();
        let len = name.len().min(32);
        message_type[..len].copy_from_slice(&name[..len]);
        out.extend_from_slice(&message_type);
        out.extend_from_slice(&self.schema_version.to_be_bytes());
        out.extend_from_slice(&self.created_date.to_be_bytes());
        out.extend_from_slice(&self.sequence_number.to_be_bytes());
        out.extend_from_slice(&self.flags.to_be_bytes());
        let id = self.message_id.as_bytes();
        out.extend_from_slice(&id[8..16]);
        out.extend_from_slice(&id[0..8]);
        out.extend_from_slice(&Sha256::digest(&self.payload));
    }

    /// Parses a frame from the client: the payload starts after the PayloadLength field at
    /// `HeaderLength`, whatever PayloadLength says (§3, as both peers read it).
    pub fn decode(frame: &[u8]) -> Result<Message, WireError> {
        let header_length = read_u32(frame, 0).ok_or(WireError::Truncated(frame.len()))?;
        if header_length < HEADER_LENGTH {
            return Err(WireError::BadHeaderLength(header_length));
        }
        let payload_start = usize::try_from(header_length)
            .map_err(|_| WireError::BadHeaderLength(header_length))?
            .saturating_add(4);
        if frame.len() < payload_start {
            return Err(WireError::Truncated(frame.len()));
        }
        let message_type = trim_type(&frame[4..36]);
        if message_type.is_empty() {
            return Err(WireError::NoMessageType);
        }
        let created_date = read_u64(frame, 40).unwrap_or(0);
        if created_date == 0 {
            return Err(WireError::NoCreatedDate);
        }
        let payload = frame[payload_start..].to_vec();
        let verified = matches!(
            message_type.as_str(),
            INPUT_STREAM_DATA | OUTPUT_STREAM_DATA | ACKNOWLEDGE
        );
        if verified && Sha256::digest(&payload)[..] != frame[80..112] {
            return Err(WireError::DigestMismatch);
        }
        let mut id = [0u8; 16];
        id[0..8].copy_from_slice(&frame[72..80]);
        id[8..16].copy_from_slice(&frame[64..72]);
        Ok(Message {
            message_type,
            schema_version: read_u32(frame, 36).unwrap_or(0),
            created_date,
            sequence_number: i64::from_be_bytes(frame[48..56].try_into().unwrap_or([0; 8])),
            flags: read_u64(frame, 56).unwrap_or(0),
            message_id: Uuid::from_bytes(id),
            payload_type: read_u32(frame, 112).unwrap_or(0),
            payload,
        })
    }
}

/// The service's `channel_closed` (§3, §4.3): a 112-byte header without PayloadType, the type
/// padded with NULs, flags SYN|FIN, and the JSON reason as payload.
pub fn channel_closed(
    session_id: &str,
    output: &str,
    created: chrono::DateTime<chrono::Utc>,
) -> Vec<u8> {
    let message_id = Uuid::new_v4();
    let payload = serde_json::json!({
        "MessageId": message_id.hyphenated().to_string(),
        "CreatedDate": created.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        "DestinationId": session_id,
        "SessionId": session_id,
        "MessageType": CHANNEL_CLOSED,
        "SchemaVersion": 1,
        "Output": output,
    })
    .to_string()
    .into_bytes();
    let message = Message {
        message_type: CHANNEL_CLOSED.to_owned(),
        schema_version: 1,
        created_date: u64::try_from(created.timestamp_millis())
            .unwrap_or(1)
            .max(1),
        sequence_number: 0,
        flags: FLAG_SYN | FLAG_FIN,
        message_id,
        payload_type: payload_type::NONE,
        payload,
    };
    let mut out = Vec::with_capacity(116 + message.payload.len());
    out.extend_from_slice(&CHANNEL_CLOSED_HEADER_LENGTH.to_be_bytes());
    message.encode_common(&mut out, 0);
    out.extend_from_slice(&payload_length(&message.payload).to_be_bytes());
    out.extend_from_slice(&message.payload);
    out
}

/// The JSON body of an `acknowledge` (§4.3), in Go field order.
pub fn acknowledge_payload(acknowledged: &Message) -> Vec<u8> {
    format!(
        r#"{{"AcknowledgedMessageType":"{}","AcknowledgedMessageId":"{}","AcknowledgedMessageSequenceNumber":{},"IsSequentialMessage":true}}"#,
        acknowledged.message_type,
        acknowledged.message_id.hyphenated(),
        acknowledged.sequence_number
    )
    .into_bytes()
}

/// The sequence number an `acknowledge` names: in its JSON, never its header (§4.3).
pub fn acknowledged_sequence_number(ack: &Message) -> Option<i64> {
    serde_json::from_slice::<serde_json::Value>(&ack.payload)
        .ok()?
        .get("AcknowledgedMessageSequenceNumber")?
        .as_i64()
}

/// Trims NULs on both ends, then whitespace, as the plugin and the agent do.
fn trim_type(field: &[u8]) -> String {
    let text = String::from_utf8_lossy(field);
    text.trim_matches('\0').trim().to_owned()
}

/// Payloads are at most a few KiB (1024-byte chunks, JSON control messages).
fn payload_length(payload: &[u8]) -> u32 {
    u32::try_from(payload.len()).unwrap_or(u32::MAX)
}

fn read_u32(frame: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(frame.get(at..at + 4)?.try_into().ok()?))
}

fn read_u64(frame: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(frame.get(at..at + 8)?.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CREATED: u64 = 1_503_434_274_948;

    fn hex(text: &str) -> Vec<u8> {
        let digits: String = text.split_whitespace().collect();
        ::hex::decode(digits).expect("hex")
    }

    /// Spec §3.1: `input_stream_data`, seq 2, PayloadType 1, payload "payload".
    const INPUT_STREAM_DATA_VECTOR: &str = "
        00 00 00 74 69 6e 70 75 74 5f 73 74 72 65 61 6d
        5f 64 61 74 61 20 20 20 20 20 20 20 20 20 20 20
        20 20 20 20 00 00 00 01 00 00 01 5e 0b aa 78 84
        00 00 00 00 00 00 00 02 00 00 00 00 00 00 00 00
        a5 08 b5 f0 73 f3 1b 16 dd 01 e5 6b ff 48 48 3e
        23 9f 59 ed 55 e7 37 c7 71 47 cf 55 ad 0c 1b 03
        0b 6d 7e e7 48 a7 42 69 52 f9 b8 52 d5 a9 35 e5
        00 00 00 01 00 00 00 07 70 61 79 6c 6f 61 64";

    /// Spec §3.1: the acknowledgement's header (payload follows).
    const ACK_HEADER_VECTOR: &str = "
        00 00 00 74 61 63 6b 6e 6f 77 6c 65 64 67 65 20
        20 20 20 20 20 20 20 20 20 20 20 20 20 20 20 20
        20 20 20 20 00 00 00 01 00 00 01 5e 0b aa 78 84
        00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 03
        44 44 55 55 55 55 55 55 11 11 11 11 22 22 33 33
        82 61 49 d3 5e 09 fb 65 5b 0d e7 14 8d ac 39 3b
        94 0c 08 94 4a ec cb ef ab 44 cb d8 6c 9b e0 50
        00 00 00 00 00 00 00 b0";

    fn input_vector() -> Message {
        Message {
            message_type: INPUT_STREAM_DATA.to_owned(),
            schema_version: 1,
            created_date: CREATED,
            sequence_number: 2,
            flags: 0,
            message_id: "dd01e56b-ff48-483e-a508-b5f073f31b16"
                .parse()
                .expect("uuid"),
            payload_type: payload_type::OUTPUT,
            payload: b"payload".to_vec(),
        }
    }

    #[test]
    fn the_spec_input_stream_data_vector_round_trips_byte_for_byte() {
        assert_eq!(input_vector().encode(), hex(INPUT_STREAM_DATA_VECTOR));
        assert_eq!(
            Message::decode(&hex(INPUT_STREAM_DATA_VECTOR)),
            Ok(input_vector())
        );
    }

    #[test]
    fn the_acknowledgement_of_the_vector_matches_the_spec_vector() {
        let mut acked = input_vector();
        acked.message_type = OUTPUT_STREAM_DATA.to_owned();
        let ack = Message {
            message_type: ACKNOWLEDGE.to_owned(),
            schema_version: 1,
            created_date: CREATED,
            sequence_number: 0,
            flags: FLAG_SYN | FLAG_FIN,
            message_id: "11111111-2222-3333-4444-555555555555"
                .parse()
                .expect("uuid"),
            payload_type: payload_type::NONE,
            payload: acknowledge_payload(&acked),
        };
        let encoded = ack.encode();
        assert_eq!(encoded.len(), 296);
        assert_eq!(&encoded[..120], &hex(ACK_HEADER_VECTOR)[..]);
        assert_eq!(
            &encoded[120..],
            br#"{"AcknowledgedMessageType":"output_stream_data","AcknowledgedMessageId":"dd01e56b-ff48-483e-a508-b5f073f31b16","AcknowledgedMessageSequenceNumber":2,"IsSequentialMessage":true}"#
        );
        let decoded = Message::decode(&encoded).expect("decodes");
        assert_eq!(acknowledged_sequence_number(&decoded), Some(2));
    }

    #[test]
    fn the_terminate_flag_vector_decodes_with_its_digest() {
        let mut frame = Message {
            message_type: INPUT_STREAM_DATA.to_owned(),
            schema_version: 1,
            created_date: CREATED,
            sequence_number: 5,
            flags: 0,
            message_id: Uuid::nil(),
            payload_type: payload_type::FLAG,
            payload: vec![0, 0, 0, 2],
        }
        .encode();
        assert_eq!(frame.len(), 124);
        assert_eq!(
            &frame[112..],
            &hex("00 00 00 0a 00 00 00 04 00 00 00 02")[..]
        );
        assert_eq!(
            &frame[80..112],
            &hex("433ebf5bc03dffa38536673207a21281612cef5faa9bc7a4d5b9be2fdb12cf1a")[..]
        );
        frame[123] = 1;
        assert_eq!(Message::decode(&frame), Err(WireError::DigestMismatch));
    }

    #[test]
    fn channel_closed_has_the_services_short_header() {
        let created = chrono::DateTime::from_timestamp_millis(CREATED as i64).expect("a date");
        let frame = channel_closed("alice-0123", "Session terminated", created);
        assert_eq!(&frame[0..4], &112u32.to_be_bytes());
        assert_eq!(&frame[4..18], b"channel_closed");
        assert!(frame[18..36].iter().all(|b| *b == 0), "NUL padding");
        let payload_length = u32::from_be_bytes(frame[112..116].try_into().expect("4 bytes"));
        let payload = &frame[116..];
        assert_eq!(payload_length as usize, payload.len());
        assert_eq!(&Sha256::digest(payload)[..], &frame[80..112]);
        let json: serde_json::Value = serde_json::from_slice(payload).expect("JSON");
        assert_eq!(json["SessionId"], "alice-0123");
        assert_eq!(json["Output"], "Session terminated");
        assert_eq!(json["CreatedDate"], "2017-08-22T20:37:54.948Z");
    }

    #[test]
    fn frames_the_agent_would_refuse_are_refused() {
        let good = input_vector().encode();
        assert_eq!(
            Message::decode(&good[..100]),
            Err(WireError::Truncated(100))
        );
        let mut zero_date = good.clone();
        zero_date[40..48].fill(0);
        assert_eq!(Message::decode(&zero_date), Err(WireError::NoCreatedDate));
        let mut no_type = good.clone();
        no_type[4..36].fill(b' ');
        assert_eq!(Message::decode(&no_type), Err(WireError::NoMessageType));
        let mut short = good;
        short[0..4].copy_from_slice(&20u32.to_be_bytes());
        assert_eq!(Message::decode(&short), Err(WireError::BadHeaderLength(20)));
    }
}
