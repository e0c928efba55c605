//! Unit tests of [`DataChannel`] with a fake clock: each test feeds hand-built agent frames and
//! checks the exact frames and events that come out.

use std::num::{NonZeroU16, NonZeroUsize};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::{Value, json};
use uuid::Uuid;

use base64::Engine as _;

use super::channel::{ChannelConfig, DataChannel, SendError};
use super::encryption::{DataKey, SessionCipher};
use super::event::{CloseReason, Event, Handshake};
use super::handshake::{HandshakeResponse, SessionType};
use super::message::{AgentMessage, DecodeError, MessageType, PayloadType};
use super::mode::PortForwarding;
use super::payload::{Acknowledge, ClientFlag, TerminalSize};

const UNIX_MS: u64 = 1_700_000_000_000;

struct Fixture {
    start: Instant,
    channel: DataChannel,
}

fn config() -> ChannelConfig {
    ChannelConfig {
        rng_seed: 7,
        ..ChannelConfig::default()
    }
}

impl Fixture {
    fn new(config: ChannelConfig) -> Self {
        let start = Instant::now();
        Fixture {
            start,
            channel: DataChannel::new(config, start, UNIX_MS),
        }
    }

    fn at(&self, ms: u64) -> Instant {
        self.start + Duration::from_millis(ms)
    }

    fn receive(&mut self, frame: Vec<u8>, ms: u64) {
        let now = self.at(ms);
        self.channel.handle_incoming(&frame, now).unwrap();
    }

    fn transmit(&mut self, ms: u64) -> Vec<AgentMessage> {
        let now = self.at(ms);
        std::iter::from_fn(|| self.channel.poll_transmit(now))
            .map(|frame| AgentMessage::decode(&frame).unwrap())
            .collect()
    }

    fn events(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.channel.poll_event()).collect()
    }

    /// Runs a port handshake to completion and clears the resulting frames and events.
    fn established_port_session(config: ChannelConfig) -> Self {
        let mut fixture = Fixture::new(config);
        fixture.receive(handshake_request(port_properties()), 0);
        fixture.transmit(0);
        fixture.receive(agent_ack(0), 1);
        fixture.receive(handshake_complete(1), 1);
        fixture.transmit(1);
        fixture.events();
        fixture
    }

    /// A shell whose first output (sequence 0) has arrived, so data flows and no round-trip
    /// sample has been taken yet.
    fn established_shell_session(config: ChannelConfig) -> Self {
        let mut fixture = Fixture::new(config);
        fixture.receive(output(0, b"$ "), 0);
        fixture.transmit(0);
        fixture.events();
        fixture
    }
}

fn agent_message(
    sequence: i64,
    payload_type: PayloadType,
    payload: impl Into<Bytes>,
) -> AgentMessage {
    AgentMessage {
        message_type: MessageType::OutputStreamData,
        schema_version: 1,
        created_date: UNIX_MS,
        sequence_number: sequence,
        flags: u64::from(sequence == 0),
        message_id: Uuid::from_u128(1000 + sequence as u128),
        payload_type,
        payload: payload.into(),
    }
}

fn output(sequence: i64, data: &'static [u8]) -> Vec<u8> {
    agent_message(sequence, PayloadType::Output, data).encode()
}

fn port_properties() -> Value {
    json!({"type": "LocalPortForwarding", "portNumber": "5432", "localPortNumber": "0"})
}

fn handshake_request(properties: Value) -> Vec<u8> {
    let payload = json!({
        "AgentVersion": "3.1.1732.0",
        "RequestedClientActions": [{"ActionType": "SessionType", "ActionParameters": {"SessionType": "Port", "Properties": properties}}]
    });
    agent_message(
        0,
        PayloadType::HandshakeRequest,
        serde_json::to_vec(&payload).unwrap(),
    )
    .encode()
}

fn handshake_complete(sequence: i64) -> Vec<u8> {
    let payload = br#"{"HandshakeTimeToComplete":2500000,"CustomerMessage":"hello"}"#;
    agent_message(sequence, PayloadType::HandshakeComplete, &payload[..]).encode()
}

fn control(message_type: MessageType, payload: &[u8]) -> Vec<u8> {
    AgentMessage {
        message_type,
        schema_version: 1,
        created_date: UNIX_MS,
        sequence_number: 0,
        flags: 3,
        message_id: Uuid::nil(),
        payload_type: PayloadType::Unset,
        payload: Bytes::copy_from_slice(payload),
    }
    .encode()
}

fn agent_ack(sequence: i64) -> Vec<u8> {
    let ack = format!(
        r#"{{"AcknowledgedMessageType":"input_stream_data","AcknowledgedMessageId":"x","AcknowledgedMessageSequenceNumber":{sequence},"IsSequentialMessage":true}}"#
    );
    control(MessageType::Acknowledge, ack.as_bytes())
}

fn acked_sequence(message: &AgentMessage) -> i64 {
    assert_eq!(message.message_type, MessageType::Acknowledge);
    let ack: Acknowledge = serde_json::from_slice(&message.payload).unwrap();
    ack.acknowledged_message_sequence_number
}

fn stream_sequences(messages: &[AgentMessage]) -> Vec<(i64, PayloadType)> {
    messages
        .iter()
        .filter(|m| m.message_type == MessageType::InputStreamData)
        .map(|m| (m.sequence_number, m.payload_type))
        .collect()
}

fn outputs(events: &[Event]) -> Vec<u8> {
    events
        .iter()
        .filter_map(|event| match event {
            Event::Output(data) => Some(data.to_vec()),
            _ => None,
        })
        .flatten()
        .collect()
}

// --- handshake -------------------------------------------------------------------------------

#[test]
fn a_handshake_request_is_acknowledged_first_then_answered_as_sequence_zero() {
    let mut fixture = Fixture::new(config());
    fixture.receive(handshake_request(port_properties()), 0);
    let sent = fixture.transmit(0);
    assert_eq!(sent.len(), 2);
    assert_eq!(acked_sequence(&sent[0]), 0);
    let response = &sent[1];
    assert_eq!(response.message_type, MessageType::InputStreamData);
    assert_eq!((response.sequence_number, response.flags), (0, 0));
    assert_eq!(response.payload_type, PayloadType::HandshakeResponse);
    let response: HandshakeResponse = serde_json::from_slice(&response.payload).unwrap();
    assert_eq!(response.client_version, "1.2.650.0");
}

#[test]
fn data_written_before_the_handshake_completes_waits_for_it() {
    let mut fixture = Fixture::new(config());
    assert_eq!(fixture.channel.send_data(b"early"), Ok(5));
    assert!(fixture.transmit(0).is_empty());
    fixture.receive(handshake_request(port_properties()), 0);
    assert_eq!(
        stream_sequences(&fixture.transmit(0)),
        [(0, PayloadType::HandshakeResponse)]
    );
    fixture.receive(handshake_complete(1), 5);
    let sent = fixture.transmit(5);
    assert_eq!(acked_sequence(&sent[0]), 1);
    assert_eq!(stream_sequences(&sent), [(1, PayloadType::Output)]);
    assert_eq!(&sent[1].payload[..], b"early");
}

#[test]
fn handshake_complete_reports_what_the_agent_said() {
    let mut fixture = Fixture::new(config());
    fixture.receive(handshake_request(port_properties()), 0);
    fixture.receive(handshake_complete(1), 0);
    assert_eq!(
        fixture.events(),
        [Event::HandshakeComplete(Handshake {
            agent_version: "3.1.1732.0".into(),
            session_type: SessionType::Port,
            properties: port_properties(),
            customer_message: "hello".into(),
            time_to_complete: Duration::from_micros(2500),
        })]
    );
}

#[test]
fn a_completed_port_handshake_tells_which_forwarding_mode_to_run() {
    let handshake = Handshake {
        agent_version: "3.1.1732.0".into(),
        session_type: SessionType::Port,
        properties: port_properties(),
        customer_message: String::new(),
        time_to_complete: Duration::ZERO,
    };
    assert_eq!(
        handshake.port_forwarding(),
        Some(PortForwarding::Mux {
            smux_keepalive: false
        })
    );
    let shell = Handshake {
        session_type: SessionType::Shell,
        ..handshake
    };
    assert_eq!(shell.port_forwarding(), None);
}

#[test]
fn a_shell_without_handshake_starts_with_its_first_output() {
    let mut fixture = Fixture::new(config());
    fixture
        .channel
        .send_terminal_size(TerminalSize { cols: 80, rows: 24 })
        .unwrap();
    fixture.channel.send_data(b"ls\r").unwrap();
    assert!(fixture.transmit(0).is_empty());
    fixture.receive(output(0, b"$ "), 3);
    assert_eq!(
        fixture.events(),
        [Event::NoHandshake, Event::Output(Bytes::from_static(b"$ "))]
    );
    let sent = fixture.transmit(3);
    assert_eq!(acked_sequence(&sent[0]), 0);
    assert_eq!(
        stream_sequences(&sent),
        [(0, PayloadType::Size), (1, PayloadType::Output)]
    );
    assert_eq!(&sent[1].payload[..], br#"{"cols":80,"rows":24}"#);
}

fn kms_handshake_request() -> Vec<u8> {
    let payload = json!({"AgentVersion": "3.3.0.0", "RequestedClientActions": [
        {"ActionType": "SessionType", "ActionParameters": {"SessionType": "Standard_Stream", "Properties": null}},
        {"ActionType": "KMSEncryption", "ActionParameters": {"KMSKeyId": "alias/k", "Challenge": "q83vEjRWeJA="}}
    ]});
    agent_message(
        0,
        PayloadType::HandshakeRequest,
        serde_json::to_vec(&payload).unwrap(),
    )
    .encode()
}

/// The agent's view of a data key: it encrypts with the first half, decrypts with the second.
fn agent_cipher(key: &[u8]) -> SessionCipher {
    let mut swapped = key[32..].to_vec();
    swapped.extend_from_slice(&key[..32]);
    SessionCipher::from_data_key(&DataKey::new(swapped, Vec::new())).unwrap()
}

#[test]
fn a_kms_request_waits_for_the_data_key_and_a_failure_is_reported_to_the_user() {
    let mut fixture = Fixture::new(config());
    fixture.receive(kms_handshake_request(), 0);
    let events = fixture.events();
    assert!(
        matches!(&events[..], [Event::DataKeyNeeded(request)] if request.key_id == "alias/k" && request.acknowledges_challenge())
    );
    // Only the acknowledgement goes out until the data key is settled.
    assert!(stream_sequences(&fixture.transmit(0)).is_empty());
    fixture
        .channel
        .provide_data_key(Err("access denied calling kms:GenerateDataKey".into()));
    let events = fixture.events();
    assert!(
        matches!(&events[..], [Event::HandshakeRefused { reasons }] if reasons[0].contains("kms:GenerateDataKey"))
    );
    let sent = fixture.transmit(0);
    assert_eq!(
        stream_sequences(&sent),
        [(0, PayloadType::HandshakeResponse)]
    );
    let response: Value = serde_json::from_slice(&sent[0].payload).unwrap();
    assert_eq!(response["ProcessedClientActions"][1]["ActionStatus"], 2);
}

#[test]
fn a_kms_session_answers_the_challenge_and_encrypts_both_ways() {
    let mut fixture = Fixture::new(config());
    fixture.receive(kms_handshake_request(), 0);
    fixture.events();
    let key: Vec<u8> = (0..64).collect();
    let agent = agent_cipher(&key);
    fixture
        .channel
        .provide_data_key(Ok(DataKey::new(key.clone(), b"blob".to_vec())));
    let sent = fixture.transmit(0);
    let response: Value = serde_json::from_slice(&sent[1].payload).unwrap();
    let kms = &response["ProcessedClientActions"][1];
    assert_eq!(kms["ActionStatus"], 1);
    assert_eq!(kms["ActionResult"]["KMSCipherTextKey"], "YmxvYg==");
    assert_eq!(kms["ActionResult"]["ChallengeAcknowledgement"], true);

    // Typed before the handshake completes: held back, then encrypted.
    fixture.channel.send_data(b"echo ok\r").unwrap();
    let challenge: Vec<u8> = (100..164).collect();
    let sealed = base64::engine::general_purpose::STANDARD.encode(agent.encrypt(&challenge));
    let request = json!({"Challenge": sealed}).to_string();
    fixture.receive(
        agent_message(1, PayloadType::EncChallengeRequest, request.into_bytes()).encode(),
        1,
    );
    let sent = fixture.transmit(1);
    assert_eq!(
        stream_sequences(&sent),
        [(1, PayloadType::EncChallengeResponse)]
    );
    let answer: Value = serde_json::from_slice(&sent[1].payload).unwrap();
    let answer = base64::engine::general_purpose::STANDARD
        .decode(answer["Challenge"].as_str().unwrap())
        .unwrap();
    assert_eq!(agent.decrypt(&answer).unwrap(), challenge);

    let complete = br#"{"HandshakeTimeToComplete":1,"CustomerMessage":"This session is encrypted using AWS KMS."}"#;
    fixture.receive(
        agent_message(2, PayloadType::HandshakeComplete, &complete[..]).encode(),
        2,
    );
    let sent = fixture.transmit(2);
    let data = sent
        .iter()
        .find(|m| m.payload_type == PayloadType::Output)
        .expect("the held keystrokes");
    assert_ne!(&data.payload[..], b"echo ok\r");
    assert_eq!(agent.decrypt(&data.payload).unwrap(), b"echo ok\r");

    fixture.receive(
        agent_message(3, PayloadType::Output, agent.encrypt(b"ok\r\n")).encode(),
        3,
    );
    let events = fixture.events();
    assert!(
        matches!(&events[0], Event::HandshakeComplete(h) if h.customer_message.contains("KMS"))
    );
    assert_eq!(outputs(&events), b"ok\r\n");

    let mut altered = agent.encrypt(b"rm -rf");
    altered[14] ^= 1;
    fixture.receive(agent_message(4, PayloadType::Output, altered).encode(), 4);
    let events = fixture.events();
    assert!(
        matches!(&events[..], [Event::Closed(CloseReason::ProtocolViolation(why))] if why.contains("decrypt")),
        "{events:?}"
    );
}

#[test]
fn an_encryption_challenge_without_kms_is_a_protocol_violation() {
    let mut fixture = Fixture::new(config());
    fixture.receive(handshake_request(port_properties()), 0);
    fixture.events();
    let request = json!({"Challenge": "AAAA"}).to_string();
    fixture.receive(
        agent_message(1, PayloadType::EncChallengeRequest, request.into_bytes()).encode(),
        1,
    );
    assert!(matches!(
        &fixture.events()[..],
        [Event::Closed(CloseReason::ProtocolViolation(_))]
    ));
}

#[test]
fn an_unreadable_handshake_request_closes_the_channel() {
    let mut fixture = Fixture::new(config());
    fixture.receive(
        agent_message(0, PayloadType::HandshakeRequest, &b"{not json"[..]).encode(),
        0,
    );
    let events = fixture.events();
    assert!(matches!(
        &events[..],
        [Event::Closed(CloseReason::ProtocolViolation(_))]
    ));
    assert!(fixture.channel.is_closed());
}

#[test]
fn a_handshake_complete_without_a_request_is_a_protocol_violation() {
    let mut fixture = Fixture::new(config());
    fixture.receive(handshake_complete(0), 0);
    assert!(matches!(
        &fixture.events()[..],
        [Event::Closed(CloseReason::ProtocolViolation(_))]
    ));
}

// --- receiving -------------------------------------------------------------------------------

#[test]
fn every_output_message_is_acknowledged_with_its_type_id_and_sequence_number() {
    let mut fixture = Fixture::established_port_session(config());
    fixture.receive(output(2, b"abc"), 10);
    let sent = fixture.transmit(10);
    assert_eq!(sent.len(), 1);
    let ack = &sent[0];
    assert_eq!(
        (ack.sequence_number, ack.flags, ack.payload_type),
        (0, 3, PayloadType::Unset)
    );
    assert_eq!(ack.created_date, UNIX_MS + 10);
    let content: Acknowledge = serde_json::from_slice(&ack.payload).unwrap();
    assert_eq!(
        content,
        Acknowledge {
            acknowledged_message_type: "output_stream_data".into(),
            acknowledged_message_id: Uuid::from_u128(1002).hyphenated().to_string(),
            acknowledged_message_sequence_number: 2,
            is_sequential_message: true,
        }
    );
}

#[test]
fn duplicates_are_acknowledged_again_but_delivered_once() {
    let mut fixture = Fixture::established_port_session(config());
    fixture.receive(output(2, b"abc"), 10);
    fixture.transmit(10);
    fixture.receive(output(2, b"abc"), 20);
    let sent = fixture.transmit(20);
    assert_eq!(sent.iter().map(acked_sequence).collect::<Vec<_>>(), [2]);
    assert_eq!(outputs(&fixture.events()), b"abc");
}

#[test]
fn early_messages_are_acknowledged_buffered_and_delivered_in_order() {
    let mut fixture = Fixture::established_port_session(config());
    fixture.receive(output(4, b"cd"), 10);
    fixture.receive(output(3, b"b"), 10);
    assert!(fixture.events().is_empty());
    assert_eq!(
        fixture
            .transmit(10)
            .iter()
            .map(acked_sequence)
            .collect::<Vec<_>>(),
        [4, 3]
    );
    fixture.receive(output(2, b"a"), 11);
    assert_eq!(outputs(&fixture.events()), b"abcd");
    assert_eq!(
        fixture
            .transmit(11)
            .iter()
            .map(acked_sequence)
            .collect::<Vec<_>>(),
        [2]
    );
}

#[test]
fn messages_too_far_ahead_are_neither_acknowledged_nor_kept() {
    let mut fixture = Fixture::established_port_session(ChannelConfig {
        max_early: 2,
        ..config()
    });
    fixture.receive(output(5, b"x"), 10);
    assert!(fixture.transmit(10).is_empty());
    fixture.receive(output(2, b"a"), 10);
    fixture.receive(output(3, b"b"), 10);
    assert_eq!(outputs(&fixture.events()), b"ab");
}

#[test]
fn agent_data_stays_unacknowledged_while_the_application_has_not_taken_enough() {
    let mut fixture = Fixture::established_port_session(ChannelConfig {
        receive_buffer: 4,
        ..config()
    });
    fixture.receive(output(2, b"abc"), 10);
    fixture.receive(output(3, b"de"), 10);
    assert_eq!(
        fixture
            .transmit(10)
            .iter()
            .map(acked_sequence)
            .collect::<Vec<_>>(),
        [2]
    );
    assert_eq!(
        fixture.channel.poll_event(),
        Some(Event::Output(Bytes::from_static(b"abc")))
    );
    assert_eq!(fixture.channel.poll_event(), None);
    fixture.receive(output(3, b"de"), 300);
    assert_eq!(
        fixture
            .transmit(300)
            .iter()
            .map(acked_sequence)
            .collect::<Vec<_>>(),
        [3]
    );
    assert_eq!(outputs(&fixture.events()), b"de");
}

#[test]
fn buffered_early_messages_wait_for_receive_room_and_then_flow() {
    let mut fixture = Fixture::established_port_session(ChannelConfig {
        receive_buffer: 4,
        ..config()
    });
    fixture.receive(output(3, b"de"), 10);
    fixture.receive(output(4, b"fg"), 10);
    fixture.receive(output(2, b"abc"), 10);
    assert_eq!(
        fixture
            .transmit(10)
            .iter()
            .map(acked_sequence)
            .collect::<Vec<_>>(),
        [3, 4, 2]
    );
    assert_eq!(
        fixture.channel.poll_event(),
        Some(Event::Output(Bytes::from_static(b"abc")))
    );
    assert_eq!(
        fixture.channel.poll_event(),
        Some(Event::Output(Bytes::from_static(b"de")))
    );
    assert_eq!(
        fixture.channel.poll_event(),
        Some(Event::Output(Bytes::from_static(b"fg")))
    );
    assert!(fixture.transmit(11).is_empty());
}

#[test]
fn an_oversized_message_is_accepted_into_an_empty_receive_buffer() {
    let mut fixture = Fixture::established_port_session(ChannelConfig {
        receive_buffer: 2,
        ..config()
    });
    fixture.receive(output(2, b"longer than two"), 10);
    assert_eq!(outputs(&fixture.events()), b"longer than two");
}

#[test]
fn stderr_exit_code_and_connect_errors_become_their_own_events() {
    let mut fixture = Fixture::established_port_session(config());
    fixture.receive(
        agent_message(2, PayloadType::StdErr, &b"oops"[..]).encode(),
        10,
    );
    fixture.receive(
        agent_message(3, PayloadType::ExitCode, &b"1"[..]).encode(),
        10,
    );
    fixture.receive(
        agent_message(4, PayloadType::Flag, &[0u8, 0, 0, 3][..]).encode(),
        10,
    );
    assert_eq!(
        fixture.events(),
        [
            Event::StdErr(Bytes::from_static(b"oops")),
            Event::ExitCode(Bytes::from_static(b"1")),
            Event::ConnectToPortError
        ]
    );
    assert_eq!(fixture.transmit(10).len(), 3);
}

#[test]
fn a_frame_that_fails_to_decode_is_reported_and_left_unacknowledged() {
    let mut fixture = Fixture::established_port_session(config());
    let mut frame = output(2, b"abc");
    *frame.last_mut().unwrap() = b'X';
    let now = fixture.at(10);
    assert_eq!(
        fixture.channel.handle_incoming(&frame, now),
        Err(DecodeError::DigestMismatch("output_stream_data"))
    );
    assert!(fixture.transmit(10).is_empty());
    fixture.receive(output(2, b"abc"), 20);
    assert_eq!(outputs(&fixture.events()), b"abc");
}

// --- sending ---------------------------------------------------------------------------------

#[test]
fn an_unacknowledged_message_is_retransmitted_after_200_ms_and_then_backs_off() {
    let mut fixture = Fixture::established_shell_session(config());
    fixture.channel.send_data(b"hi").unwrap();
    let first = fixture.transmit(10);
    assert_eq!(stream_sequences(&first), [(0, PayloadType::Output)]);
    assert_eq!(fixture.channel.poll_timeout(), Some(fixture.at(210)));
    fixture.channel.handle_timeout(fixture.at(209));
    assert!(fixture.transmit(209).is_empty());
    fixture.channel.handle_timeout(fixture.at(210));
    let again = fixture.transmit(210);
    assert_eq!(
        again, first,
        "a retransmission repeats the frame byte for byte"
    );
    assert_eq!(
        fixture.channel.retransmission_timeout(),
        Duration::from_millis(400)
    );
    assert_eq!(fixture.channel.poll_timeout(), Some(fixture.at(610)));
}

#[test]
fn an_acknowledgement_ends_retransmission_and_frees_send_room() {
    let mut fixture = Fixture::established_shell_session(ChannelConfig {
        send_buffer: 10,
        ..config()
    });
    assert_eq!(fixture.channel.send_data(b"0123456789abc"), Ok(10));
    assert!(!fixture.channel.can_send());
    assert_eq!(fixture.channel.send_data(b"x"), Err(SendError::Full));
    fixture.transmit(10);
    assert_eq!(fixture.channel.unacknowledged(), 1);
    fixture.receive(agent_ack(0), 30);
    assert_eq!(fixture.channel.unacknowledged(), 0);
    assert_eq!(fixture.channel.send_capacity(), 10);
    assert_eq!(fixture.channel.poll_timeout(), None);
    fixture.channel.handle_timeout(fixture.at(1000));
    assert!(fixture.transmit(1000).is_empty());
    // The 20 ms sample moved the timeout from 200 ms: 100*7/8 + 20/8 = 90, plus 4 * 20 = 80.
    assert_eq!(
        fixture.channel.retransmission_timeout(),
        Duration::from_millis(170)
    );
}

#[test]
fn acknowledgements_are_matched_by_the_sequence_number_in_their_json() {
    let mut fixture = Fixture::established_shell_session(ChannelConfig {
        max_payload: NonZeroU16::new(1).unwrap(),
        ..config()
    });
    fixture.channel.send_data(b"ab").unwrap();
    fixture.transmit(10);
    fixture.receive(agent_ack(1), 20);
    fixture.receive(agent_ack(99), 20);
    assert_eq!(fixture.channel.unacknowledged(), 1);
    fixture.channel.handle_timeout(fixture.at(210));
    let resent = fixture.transmit(210);
    assert_eq!(stream_sequences(&resent), [(0, PayloadType::Output)]);
}

#[test]
fn the_in_flight_window_holds_new_messages_until_acknowledgements_arrive() {
    let mut fixture = Fixture::established_port_session(ChannelConfig {
        max_payload: NonZeroU16::new(1).unwrap(),
        max_in_flight: NonZeroUsize::new(2).unwrap(),
        ..config()
    });
    fixture.channel.send_data(b"abc").unwrap();
    assert_eq!(
        stream_sequences(&fixture.transmit(10)),
        [(1, PayloadType::Output), (2, PayloadType::Output)]
    );
    fixture.receive(agent_ack(1), 20);
    assert_eq!(
        stream_sequences(&fixture.transmit(20)),
        [(3, PayloadType::Output)]
    );
}

#[test]
fn flags_and_terminal_sizes_are_sequenced_and_never_refused_for_space() {
    let mut fixture = Fixture::established_port_session(ChannelConfig {
        send_buffer: 1,
        ..config()
    });
    fixture.channel.send_data(b"x").unwrap();
    fixture
        .channel
        .send_terminal_size(TerminalSize { cols: 1, rows: 2 })
        .unwrap();
    fixture
        .channel
        .send_flag(ClientFlag::TerminateSession)
        .unwrap();
    let sent = fixture.transmit(10);
    assert_eq!(
        stream_sequences(&sent),
        [
            (1, PayloadType::Output),
            (2, PayloadType::Size),
            (3, PayloadType::Flag)
        ]
    );
    assert_eq!(&sent[2].payload[..], &[0, 0, 0, 2]);
}

#[test]
fn creation_dates_follow_the_wall_clock_anchor() {
    let mut fixture = Fixture::established_port_session(config());
    fixture.channel.send_data(b"x").unwrap();
    assert_eq!(fixture.transmit(1234)[0].created_date, UNIX_MS + 1234);
}

#[test]
fn the_same_seed_gives_the_same_frames() {
    let run = || {
        let mut fixture = Fixture::established_port_session(config());
        fixture.channel.send_data(b"x").unwrap();
        fixture.transmit(5)
    };
    let (a, b) = (run(), run());
    assert_eq!(a, b);
    assert_eq!(a[0].message_id.get_version_num(), 4);
}

// --- reconnect, pause, close -----------------------------------------------------------------

#[test]
fn reconnecting_keeps_sequence_numbers_and_resends_everything_unacknowledged() {
    let mut fixture = Fixture::established_port_session(ChannelConfig {
        max_payload: NonZeroU16::new(1).unwrap(),
        ..config()
    });
    fixture.channel.send_data(b"abc").unwrap();
    fixture.transmit(10);
    fixture.receive(agent_ack(2), 20);
    fixture.channel.reconnected(fixture.at(50));
    let resent = fixture.transmit(50);
    assert_eq!(
        stream_sequences(&resent),
        [(1, PayloadType::Output), (3, PayloadType::Output)]
    );
    fixture.channel.send_data(b"d").unwrap();
    assert_eq!(
        stream_sequences(&fixture.transmit(51)),
        [(4, PayloadType::Output)]
    );
    fixture.receive(output(2, b"after"), 60);
    assert_eq!(outputs(&fixture.events()), b"after");
}

#[test]
fn a_reconnect_restarts_the_give_up_clock() {
    let mut fixture = Fixture::established_port_session(ChannelConfig {
        ack_timeout: Duration::from_secs(10),
        ..config()
    });
    fixture.channel.send_data(b"x").unwrap();
    fixture.transmit(0);
    fixture.channel.reconnected(fixture.at(9_000));
    fixture.channel.handle_timeout(fixture.at(10_000));
    assert!(!fixture.channel.is_closed());
    fixture.channel.handle_timeout(fixture.at(19_000));
    assert_eq!(
        fixture.events(),
        [Event::Closed(CloseReason::Unacknowledged {
            sequence_number: 1
        })]
    );
}

#[test]
fn the_channel_gives_up_on_a_message_unacknowledged_past_the_ack_timeout() {
    let mut fixture = Fixture::established_shell_session(ChannelConfig {
        ack_timeout: Duration::from_secs(3),
        ..config()
    });
    fixture.channel.send_data(b"x").unwrap();
    fixture.transmit(5);
    let mut now = 5;
    while let Some(deadline) = fixture.channel.poll_timeout() {
        now = deadline.duration_since(fixture.start).as_millis() as u64;
        fixture.channel.handle_timeout(deadline);
        fixture.transmit(now);
    }
    assert_eq!(now, 3005);
    assert_eq!(
        fixture.events(),
        [Event::Closed(CloseReason::Unacknowledged {
            sequence_number: 0
        })]
    );
}

#[test]
fn pause_publication_holds_stream_messages_but_not_acknowledgements() {
    let mut fixture = Fixture::established_port_session(config());
    fixture.receive(control(MessageType::PausePublication, b""), 5);
    assert!(fixture.channel.is_paused());
    fixture.channel.send_data(b"held").unwrap();
    assert!(fixture.transmit(5).is_empty());
    assert_eq!(fixture.channel.poll_timeout(), None);
    fixture.receive(control(MessageType::StartPublication, b""), 6);
    assert_eq!(
        stream_sequences(&fixture.transmit(6)),
        [(1, PayloadType::Output)]
    );
}

#[test]
fn agent_output_or_an_acknowledgement_ends_a_pause() {
    let mut fixture = Fixture::established_port_session(config());
    fixture.receive(control(MessageType::PausePublication, b""), 5);
    fixture.receive(output(2, b"x"), 6);
    assert!(!fixture.channel.is_paused());
    fixture.receive(control(MessageType::PausePublication, b""), 7);
    fixture.receive(agent_ack(77), 8);
    assert!(!fixture.channel.is_paused());
}

#[test]
fn a_reconnect_ends_a_pause() {
    let mut fixture = Fixture::established_port_session(config());
    fixture.receive(control(MessageType::PausePublication, b""), 5);
    fixture.channel.reconnected(fixture.at(6));
    assert!(!fixture.channel.is_paused());
}

#[test]
fn channel_closed_ends_the_channel_with_the_services_reason() {
    let mut fixture = Fixture::established_port_session(config());
    fixture.channel.send_data(b"unsent").unwrap();
    fixture.receive(
        control(
            MessageType::ChannelClosed,
            br#"{"SessionId":"s-1","Output":"Session idle"}"#,
        ),
        5,
    );
    assert_eq!(
        fixture.events(),
        [Event::Closed(CloseReason::ChannelClosed {
            session_id: "s-1".into(),
            output: "Session idle".into()
        })]
    );
    assert!(fixture.transmit(5).is_empty());
    assert_eq!(fixture.channel.poll_timeout(), None);
    assert_eq!(fixture.channel.send_data(b"x"), Err(SendError::Closed));
    assert_eq!(
        fixture.channel.send_flag(ClientFlag::TerminateSession),
        Err(SendError::Closed)
    );
    assert!(!fixture.channel.can_send());
}

#[test]
fn a_channel_closed_with_an_unreadable_payload_still_closes() {
    let mut fixture = Fixture::new(config());
    fixture.receive(control(MessageType::ChannelClosed, b"\xff garbage"), 0);
    assert_eq!(
        fixture.events(),
        [Event::Closed(CloseReason::ChannelClosed {
            session_id: String::new(),
            output: String::new()
        })]
    );
}

#[test]
fn unknown_message_types_are_reported_and_change_nothing() {
    let mut fixture = Fixture::established_port_session(config());
    let mut frame = output(2, b"x");
    frame[4..36].fill(b' ');
    frame[4..23].copy_from_slice(b"agent_session_state");
    let now = fixture.at(1);
    assert!(matches!(
        fixture.channel.handle_incoming(&frame, now),
        Err(DecodeError::UnknownMessageType(_))
    ));
    assert!(fixture.transmit(1).is_empty());
    assert!(fixture.events().is_empty());
}

// --- robustness ------------------------------------------------------------------------------

mod robustness {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Action {
        Receive {
            message_type: usize,
            sequence: i64,
            payload_type: u32,
            payload: Vec<u8>,
        },
        Advance(u64),
        Reconnect,
        Write(usize),
        TakeEvents,
    }

    fn payload() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..48),
            Just(br#"{"AgentVersion":"3.1.1732.0","RequestedClientActions":[{"ActionType":"SessionType","ActionParameters":{"SessionType":"Port","Properties":{"type":"LocalPortForwarding"}}}]}"#.to_vec()),
            Just(br#"{"HandshakeTimeToComplete":-5,"CustomerMessage":7}"#.to_vec()),
            (0i64..6).prop_map(|s| format!(r#"{{"AcknowledgedMessageSequenceNumber":{s}}}"#).into_bytes()),
            Just(vec![0, 0, 0, 3]),
        ]
    }

    fn action() -> impl Strategy<Value = Action> {
        prop_oneof![
            4 => (0usize..6, prop_oneof![0i64..8, any::<i64>()], 0u32..14, payload()).prop_map(
                |(message_type, sequence, payload_type, payload)| Action::Receive {
                    message_type, sequence, payload_type, payload,
                },
            ),
            1 => (0u64..2000).prop_map(Action::Advance),
            1 => Just(Action::Reconnect),
            1 => (0usize..3000).prop_map(Action::Write),
            1 => Just(Action::TakeEvents),
        ]
    }

    const TYPES: [MessageType; 6] = [
        MessageType::OutputStreamData,
        MessageType::Acknowledge,
        MessageType::ChannelClosed,
        MessageType::StartPublication,
        MessageType::PausePublication,
        MessageType::InputStreamData,
    ];

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn arbitrary_agent_traffic_never_panics_and_every_output_frame_is_valid(
            actions in proptest::collection::vec(action(), 0..60),
        ) {
            let mut fixture = Fixture::new(ChannelConfig { receive_buffer: 64, max_early: 4, ..config() });
            let mut ms = 0;
            for action in actions {
                let now = fixture.at(ms);
                match action {
                    Action::Receive { message_type, sequence, payload_type, payload } => {
                        let mut message = agent_message(sequence, PayloadType::from(payload_type), payload);
                        message.message_type = TYPES[message_type];
                        let _ = fixture.channel.handle_incoming(&message.encode(), now);
                    }
                    Action::Advance(by) => {
                        ms += by;
                        let now = fixture.at(ms);
                        if fixture.channel.poll_timeout().is_some_and(|at| at <= now) {
                            fixture.channel.handle_timeout(now);
                        }
                        prop_assert!(fixture.channel.poll_timeout().is_none_or(|at| at > now));
                    }
                    Action::Reconnect => fixture.channel.reconnected(now),
                    Action::Write(len) => {
                        let _ = fixture.channel.send_data(&vec![b'x'; len]);
                    }
                    Action::TakeEvents => {
                        fixture.events();
                    }
                }
                while let Some(frame) = fixture.channel.poll_transmit(now) {
                    prop_assert!(AgentMessage::decode(&frame).is_ok());
                }
            }
        }
    }
}
