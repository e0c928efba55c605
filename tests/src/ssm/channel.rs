//! The agent's end of the data channel's reliability layer (spec §5), without I/O: sequence
//! numbers, acknowledgements, the incoming reorder buffer and retransmission.
//!
//! It behaves as amazon-ssm-agent's `datachannel.go` does where a client can tell:
//! - its own `output_stream_data` are numbered from 0, the first one flagged SYN (§5.4), and
//!   kept until the client acknowledges them by the sequence number in the JSON (§5.2 3);
//! - retransmission looks only at the oldest unacknowledged message and resends it once its
//!   age passes the RTO, which follows the §5.2 4 formula (initial 200 ms, at most 1 s); unlike
//!   the plugin the agent does update the send time on a resend;
//! - client messages are classified against the next expected sequence number: in order
//!   (processed, then acknowledged — or left unacknowledged when the handler is not ready,
//!   §5.4), early (acknowledged at once and buffered), or already seen (acknowledged again,
//!   "Resending acknowledge for already processed message", §5.3).
//!
//! Sequence state is never reset: a client that reconnects continues where it was (§5.1).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::wire::{self, ACKNOWLEDGE, FLAG_FIN, FLAG_SYN, Message, OUTPUT_STREAM_DATA};

/// Early client messages kept at most (the plugin's `IncomingMessageBufferCapacity`; the
/// agent's is 100000). Beyond it an early message is dropped unacknowledged.
const EARLY_CAPACITY: usize = 10_000;

/// `DefaultTransmissionTimeout`, `DefaultRoundTripTime`, `ClockGranularity`,
/// `MaxTransmissionTimeout` (§5 table).
const INITIAL_RTO: Duration = Duration::from_millis(200);
const INITIAL_RTT: Duration = Duration::from_millis(100);
const CLOCK_GRANULARITY: Duration = Duration::from_millis(10);
const MAX_RTO: Duration = Duration::from_secs(1);

/// Where a client stream message stands relative to the next expected one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// The next one: process it, then acknowledge.
    Expected,
    /// Ahead of the next one: acknowledge and keep it.
    Early,
    /// Processed before: acknowledge it again.
    Duplicate,
    /// Ahead of the next one with the buffer full: drop it unacknowledged.
    Overflow,
}

#[derive(Debug)]
struct Unacknowledged {
    frame: Vec<u8>,
    last_sent: Instant,
}

/// The retransmission timeout estimator (§5.2 4): RFC 6298-like, in seconds.
#[derive(Debug)]
struct Rto {
    rtt: f64,
    rttvar: f64,
    rto: Duration,
}

impl Rto {
    fn new() -> Rto {
        Rto {
            rtt: INITIAL_RTT.as_secs_f64(),
            rttvar: 0.0,
            rto: INITIAL_RTO,
        }
    }

    fn sample(&mut self, sample: Duration) {
        let sample = sample.as_secs_f64();
        self.rttvar = 0.75 * self.rttvar + 0.25 * (self.rtt - sample).abs();
        self.rtt = 0.875 * self.rtt + 0.125 * sample;
        let rto = self.rtt + (4.0 * self.rttvar).max(CLOCK_GRANULARITY.as_secs_f64());
        self.rto = Duration::from_secs_f64(rto).min(MAX_RTO);
    }
}

/// The agent's sequencing state for one session, across all its WebSocket connections.
#[derive(Debug)]
pub struct AgentChannel {
    next_sequence: i64,
    unacknowledged: BTreeMap<i64, Unacknowledged>,
    rto: Rto,
    expected: i64,
    early: BTreeMap<i64, Message>,
}

impl Default for AgentChannel {
    fn default() -> AgentChannel {
        AgentChannel {
            next_sequence: 0,
            unacknowledged: BTreeMap::new(),
            rto: Rto::new(),
            expected: 0,
            early: BTreeMap::new(),
        }
    }
}

impl AgentChannel {
    /// Numbers and encodes the next `output_stream_data`, keeps it for retransmission, and
    /// returns the frame to send now.
    pub fn send(
        &mut self,
        payload_type: u32,
        payload: Vec<u8>,
        now: Instant,
        unix_ms: u64,
    ) -> Vec<u8> {
        let sequence = self.next_sequence;
        self.next_sequence += 1;
        let flags = if sequence == 0 { FLAG_SYN } else { 0 };
        let frame = Message::new(
            OUTPUT_STREAM_DATA,
            sequence,
            flags,
            payload_type,
            payload,
            unix_ms,
        )
        .encode();
        self.unacknowledged.insert(
            sequence,
            Unacknowledged {
                frame: frame.clone(),
                last_sent: now,
            },
        );
        frame
    }

    /// The client acknowledged `sequence`: forget it and learn from the round trip. Unknown
    /// numbers (already acknowledged, or never sent) are ignored.
    pub fn on_acknowledge(&mut self, sequence: i64, now: Instant) {
        if let Some(acked) = self.unacknowledged.remove(&sequence) {
            self.rto
                .sample(now.saturating_duration_since(acked.last_sent));
        }
    }

    /// Messages sent and not yet acknowledged.
    pub fn unacknowledged(&self) -> usize {
        self.unacknowledged.len()
    }

    /// The oldest unacknowledged message, when it has waited longer than the RTO; its send
    /// time becomes `now`.
    pub fn due_retransmission(&mut self, now: Instant) -> Option<Vec<u8>> {
        let rto = self.rto.rto;
        let (_, head) = self.unacknowledged.iter_mut().next()?;
        (now.saturating_duration_since(head.last_sent) > rto).then(|| {
            head.last_sent = now;
            head.frame.clone()
        })
    }

    /// Every unacknowledged message, oldest first, for a client that just reconnected.
    pub fn resend_all(&mut self, now: Instant) -> Vec<Vec<u8>> {
        self.unacknowledged
            .values_mut()
            .map(|message| {
                message.last_sent = now;
                message.frame.clone()
            })
            .collect()
    }

    /// Where a client stream message with `sequence` stands.
    pub fn classify(&self, sequence: i64) -> Arrival {
        if sequence == self.expected {
            Arrival::Expected
        } else if sequence < self.expected || self.early.contains_key(&sequence) {
            Arrival::Duplicate
        } else if self.early.len() >= EARLY_CAPACITY {
            Arrival::Overflow
        } else {
            Arrival::Early
        }
    }

    /// Keeps an early message until its turn.
    pub fn store_early(&mut self, message: Message) {
        self.early.insert(message.sequence_number, message);
    }

    /// The expected message was processed.
    pub fn advance(&mut self) {
        self.expected += 1;
    }

    /// The buffered message whose turn it is, if it arrived early.
    pub fn next_early(&self) -> Option<&Message> {
        self.early.get(&self.expected)
    }

    /// Takes the buffered message whose turn it is (after processing it) and advances.
    pub fn take_next_early(&mut self) -> Option<Message> {
        let message = self.early.remove(&self.expected)?;
        self.expected += 1;
        Some(message)
    }
}

/// The `acknowledge` for a client message (§4.3): header sequence 0, flags SYN|FIN,
/// PayloadType 0, the acknowledged sequence number in the JSON.
pub fn acknowledgement(of: &Message, unix_ms: u64) -> Vec<u8> {
    Message::new(
        ACKNOWLEDGE,
        0,
        FLAG_SYN | FLAG_FIN,
        wire::payload_type::NONE,
        wire::acknowledge_payload(of),
        unix_ms,
    )
    .encode()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ssm::wire::{INPUT_STREAM_DATA, payload_type};

    const MS: u64 = 1_700_000_000_000;

    fn decode(frame: &[u8]) -> Message {
        Message::decode(frame).expect("a valid frame")
    }

    fn client_message(sequence: i64) -> Message {
        Message::new(
            INPUT_STREAM_DATA,
            sequence,
            0,
            payload_type::OUTPUT,
            b"x".to_vec(),
            MS,
        )
    }

    #[test]
    fn output_is_numbered_from_zero_and_only_the_first_message_is_syn() {
        let mut channel = AgentChannel::default();
        let now = Instant::now();
        let first = decode(&channel.send(payload_type::HANDSHAKE_REQUEST, b"{}".to_vec(), now, MS));
        let second = decode(&channel.send(payload_type::OUTPUT, b"hi".to_vec(), now, MS));
        assert_eq!(
            (
                first.message_type.as_str(),
                first.sequence_number,
                first.flags
            ),
            (OUTPUT_STREAM_DATA, 0, FLAG_SYN)
        );
        assert_eq!((second.sequence_number, second.flags), (1, 0));
        assert_eq!(channel.unacknowledged(), 2);
        channel.on_acknowledge(1, now);
        channel.on_acknowledge(7, now);
        assert_eq!(channel.unacknowledged(), 1);
    }

    #[test]
    fn only_the_oldest_message_is_resent_once_its_rto_has_passed() {
        let mut channel = AgentChannel::default();
        let t0 = Instant::now();
        let first = channel.send(payload_type::OUTPUT, b"a".to_vec(), t0, MS);
        channel.send(payload_type::OUTPUT, b"b".to_vec(), t0, MS);
        assert_eq!(channel.due_retransmission(t0 + INITIAL_RTO), None);
        let t1 = t0 + INITIAL_RTO + Duration::from_millis(1);
        assert_eq!(channel.due_retransmission(t1), Some(first));
        assert_eq!(channel.due_retransmission(t1), None, "its send time moved");
        channel.on_acknowledge(0, t1);
        let resent = channel.due_retransmission(t1 + MAX_RTO + Duration::from_millis(1));
        assert_eq!(resent.map(|frame| decode(&frame).sequence_number), Some(1));
        assert_eq!(channel.resend_all(t1).len(), 1);
    }

    #[test]
    fn the_rto_follows_the_samples_within_its_bounds() {
        let mut rto = Rto::new();
        for _ in 0..50 {
            rto.sample(Duration::from_millis(2));
        }
        assert!(rto.rto < Duration::from_millis(20), "{:?}", rto.rto);
        assert!(rto.rto >= CLOCK_GRANULARITY);
        for _ in 0..50 {
            rto.sample(Duration::from_secs(5));
        }
        assert_eq!(rto.rto, MAX_RTO);
    }

    #[test]
    fn client_messages_are_expected_early_or_duplicates() {
        let mut channel = AgentChannel::default();
        assert_eq!(channel.classify(0), Arrival::Expected);
        assert_eq!(channel.classify(2), Arrival::Early);
        channel.store_early(client_message(2));
        assert_eq!(channel.classify(2), Arrival::Duplicate);
        assert!(channel.next_early().is_none());
        channel.advance();
        assert_eq!(channel.classify(0), Arrival::Duplicate);
        assert_eq!(channel.classify(1), Arrival::Expected);
        channel.advance();
        assert_eq!(channel.next_early().map(|m| m.sequence_number), Some(2));
        assert_eq!(
            channel.take_next_early().map(|m| m.sequence_number),
            Some(2)
        );
        assert_eq!(channel.classify(3), Arrival::Expected);
    }

    #[test]
    fn early_messages_beyond_the_buffer_are_refused() {
        let mut channel = AgentChannel::default();
        for sequence in 1..=EARLY_CAPACITY as i64 {
            channel.store_early(client_message(sequence));
        }
        assert_eq!(
            channel.classify(EARLY_CAPACITY as i64 + 1),
            Arrival::Overflow
        );
        assert_eq!(channel.classify(0), Arrival::Expected);
    }

    #[test]
    fn an_acknowledgement_names_the_message_in_its_json() {
        let message = client_message(41);
        let ack = decode(&acknowledgement(&message, MS));
        assert_eq!(
            (
                ack.message_type.as_str(),
                ack.sequence_number,
                ack.flags,
                ack.payload_type
            ),
            (ACKNOWLEDGE, 0, FLAG_SYN | FLAG_FIN, 0)
        );
        assert_eq!(wire::acknowledged_sequence_number(&ack), Some(41));
        let json: serde_json::Value = serde_json::from_slice(&ack.payload).expect("JSON");
        assert_eq!(json["AcknowledgedMessageType"], INPUT_STREAM_DATA);
        assert_eq!(
            json["AcknowledgedMessageId"],
            message.message_id.hyphenated().to_string()
        );
    }
}
