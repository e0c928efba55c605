//! The client data channel fed what an agent (or a broken service) could send: raw frames,
//! and well-formed frames (correct digest, so they get past the codec) whose sequence
//! numbers, flags and payloads are arbitrary — including handshake requests and completes
//! built from arbitrary action types, session types and properties, so the handshake JSON
//! parsing and answering run on hostile input too.
//!
//! Properties: nothing panics; the channel never hands out more than it was asked for
//! (`send_data` takes at most what it was given); once closed it stays closed.

#![no_main]

use std::time::{Duration, Instant};

use arbitrary::Arbitrary;
use bastionless_core::ssm::proto::message::{AgentMessage, MessageType, PayloadType};
use bastionless_core::ssm::proto::{ChannelConfig, DataChannel};
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use serde_json::json;
use uuid::Uuid;

#[derive(Debug, Arbitrary)]
enum Payload {
    Raw(Vec<u8>),
    Handshake {
        agent_version: String,
        actions: Vec<(String, String, Option<String>)>,
    },
    Complete {
        nanos: i64,
        message: String,
    },
    Ack {
        sequence: i64,
    },
}

#[derive(Debug, Arbitrary)]
enum Step {
    RawFrame(Vec<u8>),
    Message {
        kind: u8,
        payload_type: u8,
        sequence: i64,
        small_sequence: bool,
        flags: u64,
        payload: Payload,
    },
    Send(Vec<u8>),
    Transmit,
    Events(u8),
    Advance(u16),
    Reconnected,
}

const KINDS: [MessageType; 6] = [
    MessageType::OutputStreamData,
    MessageType::Acknowledge,
    MessageType::ChannelClosed,
    MessageType::StartPublication,
    MessageType::PausePublication,
    MessageType::InputStreamData,
];

fn payload_bytes(payload: Payload) -> Vec<u8> {
    match payload {
        Payload::Raw(bytes) => bytes,
        Payload::Handshake {
            agent_version,
            actions,
        } => {
            let actions: Vec<_> = actions
                .into_iter()
                .map(|(action, session_type, properties)| {
                    let action = match action.as_str() {
                        "" => "SessionType".to_owned(),
                        "k" => "KMSEncryption".to_owned(),
                        _ => action,
                    };
                    let properties = properties
                        .map(|p| serde_json::from_str(&p).unwrap_or(json!({"type": p})))
                        .unwrap_or_default();
                    json!({"ActionType": action, "ActionParameters": {
                        "SessionType": session_type, "Properties": properties}})
                })
                .collect();
            serde_json::to_vec(&json!({
                "AgentVersion": agent_version,
                "RequestedClientActions": actions,
            }))
            .expect("json values serialize")
        }
        Payload::Complete { nanos, message } => serde_json::to_vec(&json!({
            "HandshakeTimeToComplete": nanos, "CustomerMessage": message}))
        .expect("json values serialize"),
        Payload::Ack { sequence } => serde_json::to_vec(&json!({
            "AcknowledgedMessageType": "input_stream_data",
            "AcknowledgedMessageId": Uuid::nil().to_string(),
            "AcknowledgedMessageSequenceNumber": sequence,
            "IsSequentialMessage": true}))
        .expect("json values serialize"),
    }
}

fuzz_target!(|steps: Vec<Step>| {
    let mut now = Instant::now();
    let config = ChannelConfig {
        rng_seed: 7,
        ..ChannelConfig::default()
    };
    let mut channel = DataChannel::new(config, now, 1_700_000_000_000);
    for step in steps {
        let was_closed = channel.is_closed();
        match step {
            Step::RawFrame(frame) => {
                let _ = channel.handle_incoming(&frame, now);
            }
            Step::Message {
                kind,
                payload_type,
                sequence,
                small_sequence,
                flags,
                payload,
            } => {
                let message = AgentMessage {
                    message_type: KINDS[usize::from(kind) % KINDS.len()],
                    schema_version: 1,
                    created_date: 1_700_000_000_000,
                    sequence_number: if small_sequence {
                        sequence % 8
                    } else {
                        sequence
                    },
                    flags,
                    message_id: Uuid::from_u128(u128::from(kind)),
                    payload_type: PayloadType::from(u32::from(payload_type % 14)),
                    payload: Bytes::from(payload_bytes(payload)),
                };
                let _ = channel.handle_incoming(&message.encode(), now);
            }
            Step::Send(data) => {
                if let Ok(taken) = channel.send_data(&data) {
                    assert!(taken <= data.len());
                }
            }
            Step::Transmit => while channel.poll_transmit(now).is_some() {},
            Step::Events(count) => {
                for _ in 0..count {
                    if channel.poll_event().is_none() {
                        break;
                    }
                }
            }
            Step::Advance(millis) => {
                now += Duration::from_millis(u64::from(millis) * 10);
                if channel
                    .poll_timeout()
                    .is_some_and(|deadline| deadline <= now)
                {
                    channel.handle_timeout(now);
                }
            }
            Step::Reconnected => channel.reconnected(now),
        }
        assert!(
            !was_closed || channel.is_closed(),
            "a closed channel reopened"
        );
    }
});
