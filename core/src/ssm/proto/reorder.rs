//! The agent → client half of the reliable channel (spec §5.3): which sequence number comes
//! next, and a bounded buffer for messages that arrived early.
//!
//! The buffer only takes messages at most `max_early` numbers ahead of the expected one, which
//! bounds it to `max_early` entries and keeps far-future numbers from occupying it. A message
//! that does not fit is simply not acknowledged; the agent retransmits it later, which is
//! backpressure, not loss.

use std::collections::BTreeMap;

use super::message::AgentMessage;

/// What to do with an arriving stream message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Arrival {
    /// The next message in order: process it (if there is room) and acknowledge it.
    Expected,
    /// Seen before (processed or buffered): acknowledge it again, since the agent resends
    /// until an acknowledgement arrives.
    Duplicate,
    /// Early but within bounds: buffer and acknowledge.
    Early,
    /// Early beyond the bounds: neither buffer nor acknowledge.
    TooEarly,
}

#[derive(Debug)]
pub(crate) struct Reorder {
    expected: i64,
    early: BTreeMap<i64, AgentMessage>,
    max_early: usize,
}

impl Reorder {
    pub(crate) fn new(max_early: usize) -> Self {
        Reorder {
            expected: 0,
            early: BTreeMap::new(),
            max_early,
        }
    }

    pub(crate) fn classify(&self, sequence: i64) -> Arrival {
        if sequence < self.expected || self.early.contains_key(&sequence) {
            Arrival::Duplicate
        } else if sequence == self.expected {
            Arrival::Expected
        } else if sequence - self.expected <= i64::try_from(self.max_early).unwrap_or(i64::MAX) {
            Arrival::Early
        } else {
            Arrival::TooEarly
        }
    }

    /// Stores a message classified [`Arrival::Early`].
    pub(crate) fn store(&mut self, message: AgentMessage) {
        self.early.insert(message.sequence_number, message);
    }

    /// The expected message was processed.
    pub(crate) fn advance(&mut self) {
        self.expected += 1;
    }

    /// The buffered message that is now next in order, if any.
    pub(crate) fn peek_next(&self) -> Option<&AgentMessage> {
        self.early.get(&self.expected)
    }

    pub(crate) fn take_next(&mut self) -> Option<AgentMessage> {
        self.early.remove(&self.expected)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ssm::proto::message::{MessageType, PayloadType};
    use bytes::Bytes;
    use uuid::Uuid;

    fn message(sequence: i64) -> AgentMessage {
        AgentMessage {
            message_type: MessageType::OutputStreamData,
            schema_version: 1,
            created_date: 1,
            sequence_number: sequence,
            flags: 0,
            message_id: Uuid::nil(),
            payload_type: PayloadType::Output,
            payload: Bytes::new(),
        }
    }

    #[test]
    fn arrivals_are_classified_relative_to_the_expected_sequence_number() {
        let mut reorder = Reorder::new(2);
        assert_eq!(reorder.classify(0), Arrival::Expected);
        assert_eq!(reorder.classify(2), Arrival::Early);
        assert_eq!(reorder.classify(3), Arrival::TooEarly);
        reorder.advance();
        assert_eq!(reorder.classify(0), Arrival::Duplicate);
        assert_eq!(reorder.classify(-5), Arrival::Duplicate);
        reorder.store(message(2));
        assert_eq!(reorder.classify(2), Arrival::Duplicate);
    }

    #[test]
    fn the_early_window_moves_with_the_expected_sequence_number() {
        let mut reorder = Reorder::new(2);
        assert_eq!(reorder.classify(3), Arrival::TooEarly);
        reorder.advance();
        assert_eq!(reorder.classify(3), Arrival::Early);
        assert_eq!(reorder.classify(i64::MAX), Arrival::TooEarly);
    }

    #[test]
    fn buffered_messages_come_out_once_they_are_next() {
        let mut reorder = Reorder::new(4);
        reorder.store(message(1));
        assert!(reorder.peek_next().is_none());
        reorder.advance();
        assert_eq!(reorder.take_next().map(|m| m.sequence_number), Some(1));
        assert!(reorder.take_next().is_none());
    }
}
