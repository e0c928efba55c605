//! The ssmmessages binary envelope and the JSON payloads read out of it.
//!
//! Property: decoding any bytes never panics, and whatever decodes re-encodes to a frame that
//! decodes to the same message (the strict encoder and the lenient decoder agree).

#![no_main]

use bastionless_core::ssm::proto::message::{AgentMessage, MessageType, PayloadType};
use bastionless_core::ssm::proto::payload::{self, Acknowledge};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|frame: &[u8]| {
    let Ok(message) = AgentMessage::decode(frame) else {
        return;
    };
    let reencoded = AgentMessage::decode(&message.encode())
        .expect("a decoded message must re-encode to a decodable frame");
    assert_eq!(reencoded, message);
    match (message.message_type, message.payload_type) {
        (MessageType::Acknowledge, _) => {
            let _ = serde_json::from_slice::<Acknowledge>(&message.payload);
        }
        (MessageType::ChannelClosed, _) => {
            let _ = serde_json::from_slice::<payload::ChannelClosed>(&message.payload);
        }
        (_, PayloadType::Flag) => {
            let _ = payload::parse_flag(&message.payload);
        }
        _ => {}
    }
});
