//! The fuzz targets' "no panic on any input" property (`fuzz/`), run deterministically in
//! `cargo test`: a seeded generator makes arbitrary frames, mutated valid frames and
//! well-formed frames with hostile JSON payloads, and feeds them to the codec and to a
//! [`DataChannel`]. libFuzzer explores far more (fuzz/README.md); this keeps CI on the same
//! property, and each crash the fuzzer ever found gets a test here.

use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use uuid::Uuid;

use super::channel::{ChannelConfig, DataChannel};
use super::message::{AgentMessage, MessageType, PayloadType};

const KINDS: [MessageType; 6] = [
    MessageType::OutputStreamData,
    MessageType::Acknowledge,
    MessageType::ChannelClosed,
    MessageType::StartPublication,
    MessageType::PausePublication,
    MessageType::InputStreamData,
];

fn random_bytes(rng: &mut StdRng, max: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; rng.random_range(0..=max)];
    rng.fill(&mut bytes[..]);
    bytes
}

/// Short strings, sometimes one of the values the parsers act on.
fn random_text(rng: &mut StdRng, known: &[&str]) -> String {
    if rng.random_bool(0.5) {
        known[rng.random_range(0..known.len())].to_owned()
    } else {
        String::from_utf8_lossy(&random_bytes(rng, 12)).into_owned()
    }
}

/// A payload: random bytes, or JSON shaped like what the channel parses (handshake request
/// and complete, acknowledgement, channel_closed, flag) with arbitrary values.
fn random_payload(rng: &mut StdRng) -> Vec<u8> {
    let json = match rng.random_range(0..6) {
        0 => return random_bytes(rng, 64),
        1 => {
            let actions: Vec<_> = (0..rng.random_range(0..3))
                .map(|_| {
                    json!({
                        "ActionType": random_text(rng, &["SessionType", "KMSEncryption"]),
                        "ActionParameters": {
                            "SessionType": random_text(rng, &["Port", "Standard_Stream", "InteractiveCommands"]),
                            "Properties": {"type": random_text(rng, &["LocalPortForwarding", ""]), "portNumber": random_text(rng, &["22"])},
                            "KMSKeyId": random_text(rng, &["arn:aws:kms:us-east-1:111122223333:key/k"]),
                        }
                    })
                })
                .collect();
            json!({"AgentVersion": random_text(rng, &["3.3.40.0", "3.0.196.0", "2.3.0.0", ""]), "RequestedClientActions": actions})
        }
        2 => {
            json!({"HandshakeTimeToComplete": rng.random::<i64>(), "CustomerMessage": random_text(rng, &[""])})
        }
        3 => {
            json!({"AcknowledgedMessageSequenceNumber": rng.random_range(-3i64..40), "AcknowledgedMessageType": "input_stream_data"})
        }
        4 => json!({"SessionId": random_text(rng, &["s-1"]), "Output": random_text(rng, &[""])}),
        _ => return rng.random_range(0u32..5).to_be_bytes().to_vec(),
    };
    serde_json::to_vec(&json).expect("json values serialize")
}

/// A well-formed frame (right digest) with arbitrary fields, then perhaps damaged.
fn random_frame(rng: &mut StdRng) -> Vec<u8> {
    if rng.random_bool(0.1) {
        return random_bytes(rng, 300);
    }
    let message = AgentMessage {
        message_type: KINDS[rng.random_range(0..KINDS.len())],
        schema_version: 1,
        created_date: rng.random_range(0..3),
        sequence_number: if rng.random_bool(0.9) {
            rng.random_range(-2..12)
        } else {
            rng.random()
        },
        flags: rng.random_range(0..4),
        message_id: Uuid::from_u128(rng.random()),
        payload_type: PayloadType::from(rng.random_range(0u32..14)),
        payload: Bytes::from(random_payload(rng)),
    };
    let mut frame = message.encode();
    match rng.random_range(0..8) {
        0 => {
            for _ in 0..rng.random_range(1..4) {
                let at = rng.random_range(0..frame.len());
                frame[at] = rng.random();
            }
        }
        1 => frame.truncate(rng.random_range(0..frame.len())),
        2 => {
            let header_length = rng.random_range(100u32..140);
            frame[0..4].copy_from_slice(&header_length.to_be_bytes());
        }
        _ => {}
    }
    frame
}

#[test]
fn decoding_generated_frames_never_panics_and_whatever_decodes_reencodes_to_itself() {
    let mut rng = StdRng::seed_from_u64(0x55_4d_66_75_7a_7a);
    let mut decoded = 0;
    for _ in 0..20_000 {
        let frame = random_frame(&mut rng);
        if let Ok(message) = AgentMessage::decode(&frame) {
            decoded += 1;
            assert_eq!(AgentMessage::decode(&message.encode()), Ok(message));
        }
    }
    // The generator must reach past the codec, or the channel test below tests nothing.
    assert!(decoded > 5_000, "only {decoded} frames decoded");
}

#[test]
fn a_channel_fed_generated_frames_never_panics_and_stays_closed_once_closed() {
    for seed in 0..200u64 {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut now = Instant::now();
        let config = ChannelConfig {
            rng_seed: seed,
            ..ChannelConfig::default()
        };
        let mut channel = DataChannel::new(config, now, 1_700_000_000_000);
        for _ in 0..150 {
            let was_closed = channel.is_closed();
            match rng.random_range(0..10) {
                0 => {
                    let data = random_bytes(&mut rng, 3000);
                    if let Ok(taken) = channel.send_data(&data) {
                        assert!(taken <= data.len());
                    }
                }
                1 => while channel.poll_transmit(now).is_some() {},
                2 => while channel.poll_event().is_some() {},
                3 => {
                    now += Duration::from_millis(rng.random_range(0..5_000));
                    if channel.poll_timeout().is_some_and(|at| at <= now) {
                        channel.handle_timeout(now);
                    }
                }
                4 if rng.random_bool(0.2) => channel.reconnected(now),
                _ => {
                    let _ = channel.handle_incoming(&random_frame(&mut rng), now);
                }
            }
            assert!(!was_closed || channel.is_closed(), "seed {seed}: reopened");
        }
    }
}
