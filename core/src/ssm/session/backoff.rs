//! How long to wait between attempts to get a lost data channel back (spec §8.3).
//!
//! The plugin gives up after about six seconds, which is too little for the hourly
//! server-initiated close on some networks (aws/session-manager-plugin#135). We retry with a
//! capped exponential backoff, jittered so that many sessions cut at once do not retry in
//! lockstep, for as long as [`ResumePolicy::give_up_after`] allows — counted from the loss,
//! not reset by attempts that fail.

use std::time::{Duration, Instant};

/// How persistently a lost data channel is resumed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResumePolicy {
    /// The wait after the first failed attempt (the first attempt is immediate).
    pub first_delay: Duration,
    /// The longest wait between attempts.
    pub max_delay: Duration,
    /// Attempts stop once this long has passed since the connection was lost.
    pub give_up_after: Duration,
}

impl Default for ResumePolicy {
    fn default() -> Self {
        ResumePolicy {
            first_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(10),
            give_up_after: Duration::from_secs(180),
        }
    }
}

/// One episode of retrying, from a loss until success or giving up.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    policy: ResumePolicy,
    since: Instant,
    failures: u32,
}

impl Backoff {
    pub(crate) fn new(policy: ResumePolicy, now: Instant) -> Self {
        Backoff {
            policy,
            since: now,
            failures: 0,
        }
    }

    /// Attempts that failed so far.
    pub(crate) fn failures(&self) -> u32 {
        self.failures
    }

    /// Records a failed attempt and says how long to wait before the next one, or `None` when
    /// the budget is spent. The wait is jittered within its upper half and never goes past the
    /// budget.
    pub(crate) fn next_delay(&mut self, now: Instant) -> Option<Duration> {
        let deadline = self.since + self.policy.give_up_after;
        let remaining = deadline
            .checked_duration_since(now)
            .filter(|d| !d.is_zero())?;
        let doubling = 2u32.saturating_pow(self.failures.min(31));
        let ceiling = self
            .policy
            .first_delay
            .saturating_mul(doubling)
            .min(self.policy.max_delay);
        self.failures += 1;
        let jittered = ceiling.mul_f64(0.5 + rand::random::<f64>() / 2.0);
        Some(jittered.min(remaining))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> ResumePolicy {
        ResumePolicy {
            first_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(2),
            give_up_after: Duration::from_secs(10),
        }
    }

    #[test]
    fn delays_double_up_to_the_cap_within_their_upper_half() {
        let now = Instant::now();
        let mut backoff = Backoff::new(policy(), now);
        for ceiling_ms in [100, 200, 400, 800, 1600, 2000, 2000] {
            let delay = backoff.next_delay(now).unwrap();
            let ceiling = Duration::from_millis(ceiling_ms);
            assert!(
                delay <= ceiling && delay >= ceiling / 2,
                "{delay:?} vs {ceiling:?}"
            );
        }
        assert_eq!(backoff.failures(), 7);
    }

    #[test]
    fn retrying_stops_when_the_budget_is_spent_and_never_waits_past_it() {
        let start = Instant::now();
        let mut backoff = Backoff::new(policy(), start);
        let mut now = start;
        let mut attempts = 0;
        while let Some(delay) = backoff.next_delay(now) {
            now += delay;
            attempts += 1;
            assert!(now <= start + Duration::from_secs(10));
        }
        assert!(attempts >= 6, "{attempts}");
        assert_eq!(now, start + Duration::from_secs(10));
    }
}
