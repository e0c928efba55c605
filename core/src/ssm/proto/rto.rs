//! The retransmission timeout (spec §5.2), RFC 6298 style with the plugin's constants.
//!
//! Two deliberate differences from the plugin, both safe on the wire: samples are taken only
//! from messages sent once (Karn's rule — an ack of a retransmitted message cannot say which copy
//! it answers), and each expiry doubles the timeout up to the 1 s ceiling, so a lossy or stalled
//! link is not hammered every 200 ms.

use std::time::Duration;

const INITIAL_RTO: Duration = Duration::from_millis(200);
const INITIAL_RTT: Duration = Duration::from_millis(100);
const CLOCK_GRANULARITY: Duration = Duration::from_millis(10);
const MAX_RTO: Duration = Duration::from_secs(1);

#[derive(Debug, Clone)]
pub(crate) struct RttEstimator {
    smoothed: Duration,
    variation: Duration,
    /// The timeout currently in force, including back-off.
    rto: Duration,
    /// Whether `smoothed` has been fed a real sample (it starts at a guess).
    sampled: bool,
}

impl RttEstimator {
    pub(crate) fn new() -> Self {
        RttEstimator {
            smoothed: INITIAL_RTT,
            variation: Duration::ZERO,
            rto: INITIAL_RTO,
            sampled: false,
        }
    }

    pub(crate) fn rto(&self) -> Duration {
        self.rto
    }

    /// Folds in one round-trip sample (α = 1/8, β = 1/4) and clears any back-off.
    pub(crate) fn on_sample(&mut self, sample: Duration) {
        self.variation = self.variation * 3 / 4 + self.smoothed.abs_diff(sample) / 4;
        self.smoothed = self.smoothed * 7 / 8 + sample / 8;
        self.sampled = true;
        self.reset_backoff();
    }

    /// The smoothed round-trip time once a sample has been taken (for display; the first few
    /// samples still lean on the initial guess, as the timeout does).
    pub(crate) fn smoothed(&self) -> Option<Duration> {
        self.sampled.then_some(self.smoothed)
    }

    /// A retransmission timer expired: back off.
    pub(crate) fn on_timeout(&mut self) {
        self.rto = (self.rto * 2).min(MAX_RTO);
    }

    /// Recomputes the timeout from the estimates alone (after a sample or a reconnect).
    pub(crate) fn reset_backoff(&mut self) {
        self.rto = (self.smoothed + (self.variation * 4).max(CLOCK_GRANULARITY)).min(MAX_RTO);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_smoothed_time_is_shown_only_after_a_sample() {
        let mut rtt = RttEstimator::new();
        assert_eq!(rtt.smoothed(), None);
        rtt.on_sample(Duration::from_millis(20));
        assert_eq!(rtt.smoothed(), Some(Duration::from_millis(90)));
    }

    #[test]
    fn the_first_timeout_is_200_ms() {
        assert_eq!(RttEstimator::new().rto(), Duration::from_millis(200));
    }

    #[test]
    fn a_sample_moves_the_timeout_by_the_rfc_6298_formula() {
        let mut rtt = RttEstimator::new();
        rtt.on_sample(Duration::from_millis(20));
        // variation = 0*3/4 + |100-20|/4 = 20 ms; smoothed = 100*7/8 + 20/8 = 90 ms.
        assert_eq!(rtt.rto(), Duration::from_millis(90 + 80));
    }

    #[test]
    fn the_timeout_never_drops_below_smoothed_rtt_plus_clock_granularity() {
        let mut rtt = RttEstimator::new();
        for _ in 0..200 {
            rtt.on_sample(Duration::from_millis(1));
        }
        assert!(rtt.rto() >= Duration::from_millis(11), "{:?}", rtt.rto());
        assert!(rtt.rto() <= Duration::from_millis(12), "{:?}", rtt.rto());
    }

    #[test]
    fn expiries_double_the_timeout_up_to_one_second() {
        let mut rtt = RttEstimator::new();
        rtt.on_timeout();
        assert_eq!(rtt.rto(), Duration::from_millis(400));
        for _ in 0..10 {
            rtt.on_timeout();
        }
        assert_eq!(rtt.rto(), Duration::from_secs(1));
        rtt.reset_backoff();
        assert_eq!(rtt.rto(), Duration::from_millis(110));
    }

    #[test]
    fn huge_samples_are_capped_at_one_second() {
        let mut rtt = RttEstimator::new();
        rtt.on_sample(Duration::from_secs(30));
        assert_eq!(rtt.rto(), Duration::from_secs(1));
    }
}
