//! Message-level faults on the data channel: frames lost, duplicated or swapped with the next
//! one, in each direction, as a lossy path between the client and the agent would do them.
//!
//! The real service sits on TCP, so it does not lose or reorder by itself; but the protocol's
//! acknowledgements, retransmission and reorder buffer exist because messages do go missing
//! around reconnects and relays (spec §5), and a client is only proven correct when it gets
//! every byte through while they do. The faults apply to the sequenced traffic
//! (`input_stream_data`, `output_stream_data` and `acknowledge`), which the protocol recovers;
//! a lost `channel_closed` would only test the client's patience.
//!
//! Sans-IO: frames in, frames to deliver now out, so the rules are unit-tested without
//! sockets. Draws come from a seeded generator per session, so a seed replays a run.

use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use serde::Deserialize;

/// How often each fault strikes, per frame and direction, as probabilities between 0 and 1.
#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataChannelFaults {
    #[serde(default)]
    pub loss_rate: f64,
    #[serde(default)]
    pub duplicate_rate: f64,
    /// The share of frames held back and delivered after the next one.
    #[serde(default)]
    pub reorder_rate: f64,
}

impl DataChannelFaults {
    /// No faults at all.
    pub fn is_none(&self) -> bool {
        self.loss_rate == 0.0 && self.duplicate_rate == 0.0 && self.reorder_rate == 0.0
    }

    /// What is wrong with the rates, if anything.
    pub fn problem(&self) -> Option<String> {
        [
            ("loss_rate", self.loss_rate),
            ("duplicate_rate", self.duplicate_rate),
            ("reorder_rate", self.reorder_rate),
        ]
        .into_iter()
        .find(|(_, rate)| !(0.0..=1.0).contains(rate))
        .map(|(name, rate)| format!("{name} = {rate} is not a probability between 0 and 1"))
    }
}

/// One direction of one session's link.
#[derive(Debug)]
pub struct FaultyDirection {
    rng: StdRng,
    /// A frame held back to be delivered after the next one.
    held: Option<Vec<u8>>,
}

impl FaultyDirection {
    pub fn new(seed: u64) -> FaultyDirection {
        FaultyDirection {
            rng: StdRng::seed_from_u64(seed),
            held: None,
        }
    }

    /// The frames to deliver now, in order, for `frame` passing under `faults`.
    pub fn pass(&mut self, faults: &DataChannelFaults, frame: Vec<u8>) -> Vec<Vec<u8>> {
        if faults.is_none() {
            // Faults switched off mid-session: let a held frame go with this one.
            return self.held.take().into_iter().chain([frame]).collect();
        }
        if self.rng.random_bool(faults.loss_rate) {
            return Vec::new();
        }
        let copies = if self.rng.random_bool(faults.duplicate_rate) {
            2
        } else {
            1
        };
        let mut now = Vec::with_capacity(3);
        match self.held.take() {
            // This frame overtakes the held one.
            Some(held) => {
                now.extend(std::iter::repeat_n(frame, copies));
                now.push(held);
            }
            None if self.rng.random_bool(faults.reorder_rate) => {
                self.held = Some(frame);
            }
            None => now.extend(std::iter::repeat_n(frame, copies)),
        }
        now
    }

    /// A frame still held back (to send before the link goes quiet, e.g. on a tick).
    pub fn release(&mut self) -> Option<Vec<u8>> {
        self.held.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(n: u8) -> impl Iterator<Item = Vec<u8>> {
        (0..n).map(|i| vec![i])
    }

    #[test]
    fn without_faults_frames_pass_unchanged() {
        let mut direction = FaultyDirection::new(1);
        let out: Vec<_> = frames(50)
            .flat_map(|f| direction.pass(&DataChannelFaults::default(), f))
            .collect();
        assert_eq!(out, frames(50).collect::<Vec<_>>());
    }

    #[test]
    fn loss_drops_about_that_share() {
        let faults = DataChannelFaults {
            loss_rate: 0.1,
            ..Default::default()
        };
        let mut direction = FaultyDirection::new(2);
        let delivered: usize = (0..10_000)
            .map(|_| direction.pass(&faults, vec![0]).len())
            .sum();
        assert!((8_700..9_300).contains(&delivered), "{delivered}");
    }

    #[test]
    fn duplicates_arrive_twice_in_a_row() {
        let faults = DataChannelFaults {
            duplicate_rate: 1.0,
            ..Default::default()
        };
        let mut direction = FaultyDirection::new(3);
        assert_eq!(direction.pass(&faults, vec![7]), vec![vec![7], vec![7]]);
    }

    #[test]
    fn reordering_swaps_a_frame_with_the_next_and_loses_nothing() {
        let faults = DataChannelFaults {
            reorder_rate: 0.3,
            ..Default::default()
        };
        let mut direction = FaultyDirection::new(4);
        let mut out: Vec<Vec<u8>> = frames(200)
            .flat_map(|f| direction.pass(&faults, f))
            .collect();
        out.extend(direction.release());
        assert_ne!(out, frames(200).collect::<Vec<_>>(), "some were swapped");
        out.sort();
        assert_eq!(out, frames(200).collect::<Vec<_>>(), "none lost or added");
    }

    #[test]
    fn the_same_seed_replays_the_same_faults() {
        let faults = DataChannelFaults {
            loss_rate: 0.2,
            duplicate_rate: 0.2,
            reorder_rate: 0.2,
        };
        let run = || {
            let mut direction = FaultyDirection::new(5);
            frames(100)
                .flat_map(|f| direction.pass(&faults, f))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(), run());
    }

    #[test]
    fn rates_outside_zero_to_one_are_reported() {
        let faults = DataChannelFaults {
            loss_rate: 1.2,
            ..Default::default()
        };
        assert!(faults.problem().expect("a problem").contains("loss_rate"));
    }
}
