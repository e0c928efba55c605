//! When the inventory refreshes by itself: `refresh_interval_minutes` (app settings) after the
//! last refresh ended, 0 meaning only when asked.
//!
//! The interval is read from the store every time the schedule is consulted, never kept, so a
//! change saved by the Settings window or the CLI applies without a restart: the engine wakes
//! at the next due time, or after one minute at most, whichever comes first, and asks again. A
//! minute-long wake-up costs nothing visible (the engine publishes nothing unless a refresh
//! starts), and it bounds how late a shortened interval takes effect.

use std::time::Duration;

use tokio::time::Instant;

/// The last refresh's end and the length of a minute.
#[derive(Debug, Clone)]
pub(super) struct RefreshSchedule {
    /// How long one minute of the setting lasts: 60 s, shorter in tests
    /// ([`super::EngineConfig::minute`]).
    minute: Duration,
    last_ended: Instant,
}

impl RefreshSchedule {
    pub(super) fn new(minute: Duration, now: Instant) -> Self {
        Self {
            minute: minute.max(Duration::from_millis(1)),
            last_ended: now,
        }
    }

    /// A refresh ended at `now`: the next one is counted from here.
    pub(super) fn ended(&mut self, now: Instant) {
        self.last_ended = now;
    }

    /// When a refresh every `interval_minutes` (0: never) is due.
    fn due(&self, interval_minutes: u32) -> Option<Instant> {
        (interval_minutes > 0).then(|| self.last_ended + self.minute * interval_minutes)
    }

    /// Whether a refresh is due at `now` with the interval set to `interval_minutes`.
    pub(super) fn is_due(&self, interval_minutes: u32, now: Instant) -> bool {
        self.due(interval_minutes).is_some_and(|due| due <= now)
    }

    /// When to look again: the due time, but never more than a minute away, so that a new
    /// interval is noticed within a minute.
    pub(super) fn next_check(&self, interval_minutes: u32, now: Instant) -> Instant {
        let recheck = now + self.minute;
        self.due(interval_minutes)
            .map_or(recheck, |due| due.clamp(now, recheck))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    #[test]
    fn a_refresh_is_due_the_interval_after_the_last_one_ended() {
        let start = Instant::now();
        let mut schedule = RefreshSchedule::new(MINUTE, start);
        assert!(!schedule.is_due(15, start + MINUTE * 14));
        assert!(schedule.is_due(15, start + MINUTE * 15));
        schedule.ended(start + MINUTE * 16);
        assert!(!schedule.is_due(15, start + MINUTE * 30));
        assert!(schedule.is_due(15, start + MINUTE * 31));
    }

    #[test]
    fn zero_means_only_when_asked() {
        let start = Instant::now();
        let schedule = RefreshSchedule::new(MINUTE, start);
        assert!(!schedule.is_due(0, start + MINUTE * 10_000));
        assert_eq!(schedule.next_check(0, start), start + MINUTE);
    }

    #[test]
    fn the_schedule_looks_again_within_a_minute_so_a_shorter_interval_applies_soon() {
        let start = Instant::now();
        let schedule = RefreshSchedule::new(MINUTE, start);
        // 15 minutes: look again after one, then the setting may have changed.
        assert_eq!(schedule.next_check(15, start), start + MINUTE);
        // Changed to 2 minutes one minute in: due at 2, looked at then.
        assert_eq!(schedule.next_check(2, start + MINUTE), start + MINUTE * 2);
        // Overdue (the interval was shortened below the time already passed): at once.
        let late = start + MINUTE * 5;
        assert_eq!(schedule.next_check(2, late), late);
        assert!(schedule.is_due(2, late));
    }
}
