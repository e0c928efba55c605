//! A small agent-side peer for tests, built from the same codec as the client.
//!
//! It behaves like the SSM agent where the client depends on it (spec §5.3–§5.4, §6): it opens
//! port sessions with a handshake request (shells with nothing), acknowledges every client
//! stream message including duplicates, buffers early ones, retransmits its own messages on a
//! fixed timer, and keeps all sequence state across reconnects. Unlike the real agent, it
//! records protocol mistakes (e.g. client data before the handshake completed, which the real
//! agent silently discards) so that tests can fail on them.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::{Value, json};
use uuid::Uuid;

use super::handshake::{
    ActionStatus, HandshakeComplete, HandshakeRequest, HandshakeResponse, RequestedClientAction,
};
use super::message::{AgentMessage, FLAG_FIN, FLAG_SYN, MessageType, PayloadType};
use super::payload::{Acknowledge, TerminalSize, parse_flag};

const CHUNK: usize = 1024;

pub(crate) struct TestAgent {
    resend_after: Duration,
    ids: u128,
    next_sequence: i64,
    unacked: BTreeMap<i64, (Bytes, Instant)>,
    expected: i64,
    early: BTreeMap<i64, AgentMessage>,
    outbox: VecDeque<Bytes>,
    to_send: VecDeque<u8>,
    established: bool,
    /// Client Output bytes, in delivery order.
    pub(crate) received: Vec<u8>,
    pub(crate) flags: Vec<u32>,
    pub(crate) sizes: Vec<TerminalSize>,
    pub(crate) response: Option<HandshakeResponse>,
    pub(crate) violations: Vec<String>,
}

impl TestAgent {
    fn new(established: bool, resend_after: Duration) -> Self {
        TestAgent {
            resend_after,
            ids: 0,
            next_sequence: 0,
            unacked: BTreeMap::new(),
            expected: 0,
            early: BTreeMap::new(),
            outbox: VecDeque::new(),
            to_send: VecDeque::new(),
            established,
            received: Vec::new(),
            flags: Vec::new(),
            sizes: Vec::new(),
            response: None,
            violations: Vec::new(),
        }
    }

    /// A port session: the agent starts with a handshake request.
    pub(crate) fn port(
        agent_version: &str,
        properties: Value,
        now: Instant,
        resend_after: Duration,
    ) -> Self {
        let mut agent = TestAgent::new(false, resend_after);
        let request = HandshakeRequest {
            agent_version: agent_version.to_owned(),
            requested_client_actions: vec![RequestedClientAction {
                action_type: "SessionType".into(),
                action_parameters: json!({"SessionType": "Port", "Properties": properties}),
            }],
        };
        let payload = serde_json::to_vec(&request).unwrap();
        agent.send_sequenced(PayloadType::HandshakeRequest, payload, now);
        agent
    }

    /// A shell session without KMS: no handshake at all.
    pub(crate) fn shell(resend_after: Duration) -> Self {
        TestAgent::new(true, resend_after)
    }

    /// Queues bytes for the client; they go out once the handshake is complete.
    pub(crate) fn send_output(&mut self, data: &[u8]) {
        self.to_send.extend(data);
    }

    /// Whether everything the agent was asked to send has been acknowledged.
    pub(crate) fn all_acknowledged(&self) -> bool {
        self.to_send.is_empty() && self.unacked.is_empty()
    }

    pub(crate) fn poll_transmit(&mut self, now: Instant) -> Option<Bytes> {
        if self.outbox.is_empty() && self.established && !self.to_send.is_empty() {
            let take = self.to_send.len().min(CHUNK);
            let chunk: Vec<u8> = self.to_send.drain(..take).collect();
            self.send_sequenced(PayloadType::Output, chunk, now);
        }
        self.outbox.pop_front()
    }

    pub(crate) fn next_timeout(&self) -> Option<Instant> {
        self.unacked
            .values()
            .map(|(_, sent)| *sent + self.resend_after)
            .min()
    }

    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        for (frame, sent) in self.unacked.values_mut() {
            if *sent + self.resend_after <= now {
                *sent = now;
                self.outbox.push_back(frame.clone());
            }
        }
    }

    /// A new connection: whatever was queued on the old one is gone; resend everything.
    pub(crate) fn reconnected(&mut self, now: Instant) {
        self.outbox.clear();
        for (frame, sent) in self.unacked.values_mut() {
            *sent = now;
            self.outbox.push_back(frame.clone());
        }
    }

    pub(crate) fn handle(&mut self, frame: &[u8], now: Instant) {
        let message = match AgentMessage::decode(frame) {
            Ok(message) => message,
            Err(error) => return self.violations.push(format!("undecodable frame: {error}")),
        };
        match message.message_type {
            MessageType::Acknowledge => {
                if message.sequence_number != 0 || message.flags != FLAG_SYN | FLAG_FIN {
                    self.violations
                        .push("acknowledge header must have sequence 0, flags 3".into());
                }
                let ack: Acknowledge = serde_json::from_slice(&message.payload).unwrap();
                if ack.acknowledged_message_type != "output_stream_data"
                    || !ack.is_sequential_message
                {
                    self.violations.push(format!("odd acknowledge {ack:?}"));
                }
                self.unacked
                    .remove(&ack.acknowledged_message_sequence_number);
            }
            MessageType::InputStreamData => self.on_stream_message(message, now),
            other => self.violations.push(format!("client sent {other:?}")),
        }
    }

    fn on_stream_message(&mut self, message: AgentMessage, now: Instant) {
        if message.flags != 0 {
            self.violations.push(format!(
                "client stream message with flags {}",
                message.flags
            ));
        }
        let sequence = message.sequence_number;
        self.acknowledge(&message);
        if sequence < self.expected || self.early.contains_key(&sequence) {
            return;
        }
        self.early.insert(sequence, message);
        while let Some(next) = self.early.remove(&self.expected) {
            self.expected += 1;
            self.process(next, now);
        }
    }

    fn process(&mut self, message: AgentMessage, now: Instant) {
        match message.payload_type {
            PayloadType::HandshakeResponse => {
                let response: HandshakeResponse = serde_json::from_slice(&message.payload).unwrap();
                if message.sequence_number != 0 {
                    self.violations
                        .push("handshake response is not the first client message".into());
                }
                let accepted = response
                    .processed_client_actions
                    .iter()
                    .all(|action| action.action_status == ActionStatus::Success);
                self.response = Some(response);
                if accepted {
                    let complete = HandshakeComplete {
                        handshake_time_to_complete: 1_500_000,
                        customer_message: String::new(),
                    };
                    self.send_sequenced(
                        PayloadType::HandshakeComplete,
                        serde_json::to_vec(&complete).unwrap(),
                        now,
                    );
                    self.established = true;
                }
            }
            PayloadType::Output if !self.established => {
                self.violations
                    .push("client data before the handshake completed".into());
            }
            PayloadType::Output => self.received.extend_from_slice(&message.payload),
            PayloadType::Flag => self.flags.extend(parse_flag(&message.payload)),
            PayloadType::Size => self
                .sizes
                .push(serde_json::from_slice(&message.payload).unwrap()),
            other => self
                .violations
                .push(format!("unexpected client payload type {other:?}")),
        }
    }

    fn acknowledge(&mut self, message: &AgentMessage) {
        let ack = Acknowledge {
            acknowledged_message_type: "input_stream_data".into(),
            acknowledged_message_id: message.message_id.hyphenated().to_string(),
            acknowledged_message_sequence_number: message.sequence_number,
            is_sequential_message: true,
        };
        let frame = self.frame(
            MessageType::Acknowledge,
            0,
            PayloadType::Unset,
            serde_json::to_vec(&ack).unwrap(),
        );
        self.outbox.push_back(frame);
    }

    fn send_sequenced(&mut self, payload_type: PayloadType, payload: Vec<u8>, now: Instant) {
        let sequence = self.next_sequence;
        self.next_sequence += 1;
        let frame = self.frame(
            MessageType::OutputStreamData,
            sequence,
            payload_type,
            payload,
        );
        self.unacked.insert(sequence, (frame.clone(), now));
        self.outbox.push_back(frame);
    }

    fn frame(
        &mut self,
        message_type: MessageType,
        sequence: i64,
        payload_type: PayloadType,
        payload: Vec<u8>,
    ) -> Bytes {
        self.ids += 1;
        let flags = match message_type {
            MessageType::OutputStreamData if sequence == 0 => FLAG_SYN,
            MessageType::OutputStreamData => 0,
            _ => FLAG_SYN | FLAG_FIN,
        };
        let message = AgentMessage {
            message_type,
            schema_version: 1,
            created_date: 1_700_000_000_000,
            sequence_number: sequence,
            flags,
            message_id: Uuid::from_u128(self.ids),
            payload_type,
            payload: Bytes::from(payload),
        };
        Bytes::from(message.encode())
    }
}
