//! Current throughput of a tunnel: bytes per second over roughly the last second, from the
//! byte totals sampled each time the manager publishes.
//!
//! Pure (instants come in as arguments), so the window arithmetic is a plain unit test. Samples
//! arrive only while bytes move (the manager stops publishing when a tunnel is idle), so a sample
//! left over from before an idle spell is dropped rather than averaged over the whole silence.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The span rates are measured over.
pub(super) const WINDOW: Duration = Duration::from_secs(1);

/// Bytes per second, each way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Rates {
    pub to_remote: u64,
    pub from_remote: u64,
}

/// Recent `(instant, bytes to remote, bytes from remote)` samples of one tunnel.
#[derive(Debug, Default)]
pub(super) struct Throughput {
    samples: VecDeque<(Instant, u64, u64)>,
}

impl Throughput {
    /// Records the totals at `now` and returns the rates over the window ending at `now`.
    pub(super) fn record(&mut self, now: Instant, to_remote: u64, from_remote: u64) -> Rates {
        self.samples.push_back((now, to_remote, from_remote));
        // Keep the newest sample that is at least a window old as the anchor.
        while self.samples.len() > 1 && now.duration_since(self.samples[1].0) >= WINDOW {
            self.samples.pop_front();
        }
        // An anchor from before an idle spell would spread a new burst over the silence.
        if now.duration_since(self.samples[0].0) > 2 * WINDOW {
            self.samples.drain(..self.samples.len() - 1);
        }
        let (then, first_up, first_down) = self.samples[0];
        let elapsed = now.duration_since(then).as_secs_f64();
        if elapsed <= 0.0 {
            return Rates::default();
        }
        let rate = |now: u64, then: u64| (now.saturating_sub(then) as f64 / elapsed) as u64;
        Rates {
            to_remote: rate(to_remote, first_up),
            from_remote: rate(from_remote, first_down),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TICK: Duration = Duration::from_millis(250);

    #[test]
    fn a_steady_flow_reads_as_its_rate() {
        let start = Instant::now();
        let mut t = Throughput::default();
        assert_eq!(
            t.record(start, 0, 0),
            Rates::default(),
            "one sample has no rate"
        );
        let mut last = Rates::default();
        for tick in 1..=12u32 {
            // 4000 bytes/s up, 1000 bytes/s down.
            last = t.record(
                start + TICK * tick,
                1000 * u64::from(tick),
                250 * u64::from(tick),
            );
        }
        assert_eq!(
            last,
            Rates {
                to_remote: 4000,
                from_remote: 1000
            }
        );
        assert!(
            t.samples.len() <= 6,
            "old samples are dropped: {}",
            t.samples.len()
        );
    }

    #[test]
    fn the_rate_falls_to_zero_one_window_after_bytes_stop() {
        let start = Instant::now();
        let mut t = Throughput::default();
        for tick in 0..=4u32 {
            t.record(start + TICK * tick, 1000 * u64::from(tick), 0);
        }
        let stopped = start + TICK * 4;
        assert!(t.record(stopped + TICK, 4000, 0).to_remote > 0);
        assert_eq!(t.record(stopped + WINDOW, 4000, 0), Rates::default());
    }

    #[test]
    fn a_burst_after_a_long_idle_spell_is_not_averaged_over_the_silence() {
        let start = Instant::now();
        let mut t = Throughput::default();
        t.record(start, 0, 0);
        t.record(start + TICK, 1000, 0);
        let later = start + Duration::from_secs(600);
        assert_eq!(t.record(later, 5000, 0), Rates::default());
        assert_eq!(t.record(later + TICK, 6000, 0).to_remote, 4000);
    }
}
