//! Pacing of outgoing stream messages (spec §9).
//!
//! The service reportedly drops a WebSocket that carries more than 1000 data messages per
//! second, and the plugin stays under it only by sleeping 1 ms after every message. We pace
//! instead: a token bucket (in its GCRA form, on instants, so it needs no clock) that lets at
//! most `limit` messages through in **any** one-second window, while allowing a small burst so
//! that a coarse timer (tokio's is 1 ms) does not cost throughput.
//!
//! With a bucket of `burst` tokens refilled at `r` per second, a one-second window holds at
//! most `burst` messages at its start plus `r − 1` more (the `r`-th refill lands exactly one
//! second later, outside a half-open window). So `r = limit − burst + 1` gives exactly `limit`.

use std::num::NonZeroU32;
use std::time::{Duration, Instant};

/// See the module documentation.
#[derive(Debug, Clone)]
pub(crate) struct Pacer {
    /// Time between refills, rounded up so that rounding never exceeds the limit.
    interval: Duration,
    /// How far ahead of the theoretical schedule a message may go: `(burst − 1) · interval`.
    tolerance: Duration,
    /// The theoretical time the next message is due (GCRA's TAT); `None` before the first.
    due: Option<Instant>,
}

impl Pacer {
    /// At most `limit` messages in any one-second window; bursts of up to 1 % of it.
    pub(crate) fn new(limit: NonZeroU32) -> Self {
        let limit = limit.get();
        let burst = (limit / 100).max(1);
        let refill_per_second = u64::from(limit - burst + 1);
        let interval = Duration::from_nanos(1_000_000_000u64.div_ceil(refill_per_second));
        Pacer {
            interval,
            tolerance: interval * (burst - 1),
            due: None,
        }
    }

    /// Takes a token if one is available at `now`.
    pub(crate) fn try_acquire(&mut self, now: Instant) -> bool {
        let due = self.due.unwrap_or(now);
        if now + self.tolerance < due {
            return false;
        }
        self.due = Some(due.max(now) + self.interval);
        true
    }

    /// The earliest instant [`try_acquire`](Self::try_acquire) can succeed.
    pub(crate) fn ready_at(&self, now: Instant) -> Instant {
        match self.due {
            Some(due) => due.checked_sub(self.tolerance).unwrap_or(now).max(now),
            None => now,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn limit(n: u32) -> NonZeroU32 {
        NonZeroU32::new(n).unwrap()
    }

    /// The most messages in any half-open one-second window.
    fn busiest_second(sent: &[Instant]) -> usize {
        let mut end = 0;
        let mut busiest = 0;
        for (start, first) in sent.iter().enumerate() {
            while end < sent.len() && sent[end] < *first + Duration::from_secs(1) {
                end += 1;
            }
            busiest = busiest.max(end - start);
        }
        busiest
    }

    /// Sends as fast as the pacer allows, waking only at `ready_at` rounded up to `tick`.
    fn send_greedily(pacer: &mut Pacer, count: usize, tick: Duration) -> Vec<Instant> {
        let start = Instant::now();
        let mut now = start;
        let mut sent = Vec::new();
        while sent.len() < count {
            if pacer.try_acquire(now) {
                sent.push(now);
            } else {
                let wait = pacer.ready_at(now) - start;
                let ticks = wait.as_nanos().div_ceil(tick.as_nanos());
                now = start + tick * u32::try_from(ticks).unwrap();
            }
        }
        sent
    }

    #[test]
    fn the_default_rate_is_reached_but_never_exceeded_with_a_millisecond_timer() {
        let mut pacer = Pacer::new(limit(900));
        let sent = send_greedily(&mut pacer, 4500, Duration::from_millis(1));
        assert_eq!(busiest_second(&sent), 900);
        // The long-run rate is `limit − burst + 1` = 892/s: 4491 messages after the burst take
        // 5.03 s. Sleeping per message on a 1 ms timer would take twice as long.
        let elapsed = *sent.last().unwrap() - sent[0];
        assert!(
            elapsed < Duration::from_millis(5050),
            "a 1 ms timer must not cost throughput: {elapsed:?}"
        );
    }

    #[test]
    fn a_limit_of_one_spaces_messages_a_second_apart() {
        let mut pacer = Pacer::new(limit(1));
        let t0 = Instant::now();
        assert!(pacer.try_acquire(t0));
        assert!(!pacer.try_acquire(t0 + Duration::from_millis(999)));
        assert_eq!(pacer.ready_at(t0), t0 + Duration::from_secs(1));
        assert!(pacer.try_acquire(t0 + Duration::from_secs(1)));
    }

    #[test]
    fn an_idle_pacer_allows_only_the_burst_at_once() {
        let mut pacer = Pacer::new(limit(900));
        let now = Instant::now() + Duration::from_secs(60);
        let burst = (0..100).take_while(|_| pacer.try_acquire(now)).count();
        assert_eq!(burst, 9);
    }

    proptest! {
        #[test]
        fn no_one_second_window_exceeds_the_limit(
            rate in 1u32..2000,
            gaps in proptest::collection::vec(0u64..5_000_000, 1..3000),
        ) {
            let mut pacer = Pacer::new(limit(rate));
            let mut now = Instant::now();
            let mut sent = Vec::new();
            for gap in gaps {
                now += Duration::from_nanos(gap);
                if pacer.try_acquire(now) {
                    sent.push(now);
                }
                prop_assert!(pacer.ready_at(now) >= now);
            }
            prop_assert!(busiest_second(&sent) <= rate as usize);
        }
    }
}
