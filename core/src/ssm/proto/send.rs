//! The client → agent half of the reliable channel (spec §5.1–§5.2): a bounded queue of
//! messages, each sent, timed and retransmitted until the agent acknowledges it.
//!
//! Messages wait in `pending` without a sequence number and get one only when first sent. That
//! is what lets the handshake response be sequence 0 even when the user typed before the
//! handshake finished, and it lets small writes coalesce into full messages.
//!
//! Nothing is ever dropped to make room: [`SendQueue::capacity`] shrinks as data waits, and
//! producers are refused (backpressure) instead — unlike the plugin, which discards the oldest
//! unacknowledged message when its 10 000-entry buffer is full (§10.3).

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::message::PayloadType;
use super::rto::RttEstimator;

/// A message that has no sequence number yet.
#[derive(Debug)]
struct Pending {
    payload_type: PayloadType,
    payload: Vec<u8>,
    /// Handshake answers go out before the session is established; everything else waits.
    before_established: bool,
}

/// A sent, unacknowledged message.
#[derive(Debug)]
struct InFlight {
    frame: Bytes,
    payload_len: usize,
    last_sent: Instant,
    transmissions: u32,
    /// Already in the retransmission queue, so its timer is not running.
    awaiting_retransmit: bool,
    /// When the wait for its acknowledgement started (first send, or the last reconnect).
    outstanding_since: Instant,
}

#[derive(Debug)]
pub(crate) struct SendQueue {
    max_payload: usize,
    capacity: usize,
    max_in_flight: usize,
    pending: VecDeque<Pending>,
    /// Payload bytes pending or in flight.
    buffered: usize,
    in_flight: BTreeMap<i64, InFlight>,
    retransmit: VecDeque<i64>,
    next_sequence: i64,
    rtt: RttEstimator,
}

impl SendQueue {
    pub(crate) fn new(max_payload: usize, capacity: usize, max_in_flight: usize) -> Self {
        SendQueue {
            max_payload,
            capacity,
            max_in_flight,
            pending: VecDeque::new(),
            buffered: 0,
            in_flight: BTreeMap::new(),
            retransmit: VecDeque::new(),
            next_sequence: 0,
            rtt: RttEstimator::new(),
        }
    }

    /// How many more data bytes [`push_data`](Self::push_data) would accept now.
    pub(crate) fn capacity(&self) -> usize {
        self.capacity.saturating_sub(self.buffered)
    }

    /// Messages not yet acknowledged, sent or not.
    pub(crate) fn unacknowledged(&self) -> usize {
        self.pending.len() + self.in_flight.len()
    }

    /// Queues as much of `data` as fits as Output messages; returns how much was taken.
    pub(crate) fn push_data(&mut self, data: &[u8]) -> usize {
        let accepted = data.len().min(self.capacity());
        let mut rest = &data[..accepted];
        if let Some(last) = self.pending.back_mut()
            && last.payload_type == PayloadType::Output
            && !last.before_established
        {
            let room = self
                .max_payload
                .saturating_sub(last.payload.len())
                .min(rest.len());
            last.payload.extend_from_slice(&rest[..room]);
            rest = &rest[room..];
        }
        for chunk in rest.chunks(self.max_payload) {
            self.pending.push_back(Pending {
                payload_type: PayloadType::Output,
                payload: chunk.to_vec(),
                before_established: false,
            });
        }
        self.buffered += accepted;
        accepted
    }

    /// Queues a small control message (flag, terminal size). Never refused: these are a few
    /// bytes and must not be starved by data.
    pub(crate) fn push_control(&mut self, payload_type: PayloadType, payload: Vec<u8>) {
        self.buffered += payload.len();
        self.pending.push_back(Pending {
            payload_type,
            payload,
            before_established: false,
        });
    }

    /// Queues a handshake answer ahead of everything waiting for the session to be established.
    pub(crate) fn push_handshake(&mut self, payload_type: PayloadType, payload: Vec<u8>) {
        self.buffered += payload.len();
        let position = self
            .pending
            .iter()
            .take_while(|p| p.before_established)
            .count();
        self.pending.insert(
            position,
            Pending {
                payload_type,
                payload,
                before_established: true,
            },
        );
    }

    /// The next stream frame to put on the wire: a due retransmission first, then the next
    /// pending message if the in-flight window allows. `encode` turns a newly sequenced message
    /// into its frame (the frame is then reused verbatim for retransmissions).
    pub(crate) fn poll_transmit(
        &mut self,
        now: Instant,
        established: bool,
        encode: impl FnOnce(i64, PayloadType, Vec<u8>) -> Bytes,
    ) -> Option<Bytes> {
        while let Some(sequence) = self.retransmit.pop_front() {
            if let Some(message) = self.in_flight.get_mut(&sequence) {
                message.last_sent = now;
                message.transmissions += 1;
                message.awaiting_retransmit = false;
                return Some(message.frame.clone());
            }
        }
        if self.in_flight.len() >= self.max_in_flight {
            return None;
        }
        let next = self.pending.front()?;
        if !(established || next.before_established) {
            return None;
        }
        let next = self.pending.pop_front()?;
        let sequence = self.next_sequence;
        self.next_sequence += 1;
        let payload_len = next.payload.len();
        let frame = encode(sequence, next.payload_type, next.payload);
        self.in_flight.insert(
            sequence,
            InFlight {
                frame: frame.clone(),
                payload_len,
                last_sent: now,
                transmissions: 1,
                awaiting_retransmit: false,
                outstanding_since: now,
            },
        );
        Some(frame)
    }

    /// Removes the acknowledged message; unknown or repeated acknowledgements are ignored.
    pub(crate) fn on_ack(&mut self, sequence: i64, now: Instant) {
        if let Some(message) = self.in_flight.remove(&sequence) {
            self.buffered -= message.payload_len;
            if message.transmissions == 1 {
                self.rtt
                    .on_sample(now.saturating_duration_since(message.last_sent));
            }
        }
    }

    /// When the earliest running retransmission timer expires.
    pub(crate) fn next_retransmit(&self) -> Option<Instant> {
        let rto = self.rtt.rto();
        self.in_flight
            .values()
            .filter(|m| !m.awaiting_retransmit)
            .map(|m| m.last_sent + rto)
            .min()
    }

    /// The oldest unacknowledged message: its sequence number and since when it has waited.
    pub(crate) fn oldest_outstanding(&self) -> Option<(i64, Instant)> {
        self.in_flight
            .iter()
            .map(|(&sequence, m)| (sequence, m.outstanding_since))
            .min_by_key(|&(_, since)| since)
    }

    /// Queues every message whose timer expired for retransmission, in sequence order. Backs
    /// the timeout off when the oldest message is among them, as RFC 6298's single timer would.
    pub(crate) fn on_timeout(&mut self, now: Instant) {
        let rto = self.rtt.rto();
        let oldest = self.in_flight.keys().next().copied();
        let mut back_off = false;
        for (&sequence, message) in &mut self.in_flight {
            if !message.awaiting_retransmit && message.last_sent + rto <= now {
                message.awaiting_retransmit = true;
                self.retransmit.push_back(sequence);
                back_off |= Some(sequence) == oldest;
            }
        }
        if back_off {
            self.rtt.on_timeout();
        }
    }

    /// After a new connection: everything unacknowledged goes out again, in order, and the
    /// acknowledgement clock restarts.
    pub(crate) fn retransmit_all(&mut self, now: Instant) {
        self.retransmit.clear();
        for (&sequence, message) in &mut self.in_flight {
            message.awaiting_retransmit = true;
            message.outstanding_since = now;
            self.retransmit.push_back(sequence);
        }
        self.rtt.reset_backoff();
    }

    /// The smoothed round-trip time, once an acknowledgement gave a sample.
    pub(crate) fn rtt(&self) -> Option<Duration> {
        self.rtt.smoothed()
    }

    /// The retransmission timeout in force (exposed for tests and diagnostics).
    pub(crate) fn rto(&self) -> Duration {
        self.rtt.rto()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode_as_text(sequence: i64, _: PayloadType, payload: Vec<u8>) -> Bytes {
        let mut frame = format!("{sequence}:").into_bytes();
        frame.extend_from_slice(&payload);
        Bytes::from(frame)
    }

    fn drain(queue: &mut SendQueue, now: Instant, established: bool) -> Vec<Bytes> {
        std::iter::from_fn(|| queue.poll_transmit(now, established, encode_as_text)).collect()
    }

    #[test]
    fn small_writes_coalesce_into_messages_of_at_most_max_payload() {
        let mut queue = SendQueue::new(4, 100, 10);
        assert_eq!(queue.push_data(b"ab"), 2);
        assert_eq!(queue.push_data(b"cdefghij"), 8);
        let now = Instant::now();
        assert_eq!(drain(&mut queue, now, true), ["0:abcd", "1:efgh", "2:ij"]);
    }

    #[test]
    fn data_beyond_capacity_is_refused_not_dropped() {
        let mut queue = SendQueue::new(4, 6, 10);
        assert_eq!(queue.push_data(b"abcdefgh"), 6);
        assert_eq!(queue.capacity(), 0);
        assert_eq!(queue.push_data(b"x"), 0);
        let now = Instant::now();
        drain(&mut queue, now, true);
        queue.on_ack(0, now);
        assert_eq!(queue.capacity(), 4);
    }

    #[test]
    fn nothing_but_the_handshake_answer_is_sent_before_the_session_is_established() {
        let mut queue = SendQueue::new(8, 100, 10);
        queue.push_data(b"typed");
        queue.push_handshake(PayloadType::HandshakeResponse, b"hello".to_vec());
        let now = Instant::now();
        assert_eq!(drain(&mut queue, now, false), ["0:hello"]);
        assert_eq!(drain(&mut queue, now, true), ["1:typed"]);
    }

    #[test]
    fn the_in_flight_window_holds_back_new_messages_until_acknowledged() {
        let mut queue = SendQueue::new(1, 100, 2);
        queue.push_data(b"abc");
        let now = Instant::now();
        assert_eq!(drain(&mut queue, now, true), ["0:a", "1:b"]);
        queue.on_ack(1, now);
        assert_eq!(drain(&mut queue, now, true), ["2:c"]);
    }

    #[test]
    fn an_expired_message_is_retransmitted_with_the_same_frame() {
        let mut queue = SendQueue::new(8, 100, 10);
        queue.push_data(b"abc");
        let start = Instant::now();
        drain(&mut queue, start, true);
        assert_eq!(
            queue.next_retransmit(),
            Some(start + Duration::from_millis(200))
        );
        queue.on_timeout(start + Duration::from_millis(199));
        assert!(drain(&mut queue, start, true).is_empty());
        let expiry = start + Duration::from_millis(200);
        queue.on_timeout(expiry);
        assert_eq!(queue.next_retransmit(), None);
        assert_eq!(drain(&mut queue, expiry, true), ["0:abc"]);
        assert_eq!(queue.rto(), Duration::from_millis(400));
        assert_eq!(
            queue.next_retransmit(),
            Some(expiry + Duration::from_millis(400))
        );
    }

    #[test]
    fn acknowledging_a_retransmitted_message_takes_no_rtt_sample() {
        let mut queue = SendQueue::new(8, 100, 10);
        queue.push_data(b"abc");
        let start = Instant::now();
        drain(&mut queue, start, true);
        let expiry = start + Duration::from_millis(200);
        queue.on_timeout(expiry);
        drain(&mut queue, expiry, true);
        queue.on_ack(0, expiry + Duration::from_millis(1));
        assert_eq!(queue.rto(), Duration::from_millis(400));
    }

    #[test]
    fn reconnecting_queues_every_unacknowledged_message_in_order() {
        let mut queue = SendQueue::new(1, 100, 10);
        queue.push_data(b"abc");
        let start = Instant::now();
        drain(&mut queue, start, true);
        queue.on_ack(1, start);
        let later = start + Duration::from_millis(50);
        queue.retransmit_all(later);
        assert_eq!(queue.oldest_outstanding(), Some((0, later)));
        assert_eq!(drain(&mut queue, later, true), ["0:a", "2:c"]);
    }
}
