//! The simulator's clock for AWS-side lifetimes: how long a pushed SSH key stays valid (60 s),
//! how long a tunnel may stay open (`maxTunnelDuration`, up to an hour), Session Manager's
//! timeouts and hourly data-channel rotation, and how long temporary credentials last.
//!
//! Tests cannot wait a real minute for a key to expire, so the clock can run faster than real
//! time: `Clock::accelerated(20)` makes a simulated minute last three real seconds. Only these
//! lifetimes run on it. Request signatures are always checked against the real wall clock,
//! because that is the clock clients sign with; a fast clock there would only make every
//! request look stale. For the same reason a lifetime a client sees as a timestamp (a
//! credential's `Expiration`) is stated in wall-clock time — `real_delta` of the lifetime from
//! now — since clients compare it with their own clock, as they do with AWS's.

use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};

/// Simulated time: real time, or real time sped up by a whole factor.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    factor: u32,
    origin: Instant,
    origin_utc: DateTime<Utc>,
}

impl Clock {
    /// Simulated time is real time.
    pub fn real() -> Clock {
        Clock::accelerated(1)
    }

    /// Simulated time passes `factor` times faster than real time, starting now.
    ///
    /// # Panics
    /// If `factor` is zero: time would stand still and nothing would ever expire.
    pub fn accelerated(factor: u32) -> Clock {
        assert!(factor > 0, "a clock factor of 0 would stop time");
        Clock {
            factor,
            origin: Instant::now(),
            origin_utc: Utc::now(),
        }
    }

    /// How many times faster than real time this clock runs.
    pub fn factor(&self) -> u32 {
        self.factor
    }

    /// The simulated current time.
    pub fn now(&self) -> DateTime<Utc> {
        let elapsed = self.origin.elapsed() * self.factor;
        self.origin_utc + TimeDelta::from_std(elapsed).unwrap_or(TimeDelta::MAX)
    }

    /// How long `simulated` lasts in real time.
    pub fn real_duration(&self, simulated: Duration) -> Duration {
        simulated / self.factor
    }

    /// How long `simulated` lasts in real time, for wall-clock arithmetic.
    pub fn real_delta(&self, simulated: TimeDelta) -> TimeDelta {
        simulated / i32::try_from(self.factor).unwrap_or(i32::MAX)
    }

    /// The real wall-clock time at which this clock reads `simulated`: what a process outside
    /// the simulator (sshd's key command, which asks `date`) must compare against.
    pub fn wall_time_at(&self, simulated: DateTime<Utc>) -> DateTime<Utc> {
        let since_origin = simulated - self.origin_utc;
        self.origin_utc + since_origin / i32::try_from(self.factor).unwrap_or(i32::MAX)
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::real()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_accelerated_clock_runs_faster_and_maps_back_to_wall_time() {
        let clock = Clock::accelerated(60);
        assert_eq!(
            clock.real_duration(Duration::from_secs(60)),
            Duration::from_secs(1)
        );
        assert_eq!(
            clock.real_delta(TimeDelta::minutes(15)),
            TimeDelta::seconds(15)
        );
        let start = clock.now();
        std::thread::sleep(Duration::from_millis(50));
        let advanced = clock.now() - start;
        assert!(advanced >= TimeDelta::seconds(3), "{advanced}");
        let in_a_minute = clock.now() + TimeDelta::seconds(60);
        let wall = clock.wall_time_at(in_a_minute);
        let real_wait = wall - Utc::now();
        assert!(
            real_wait < TimeDelta::milliseconds(1050) && real_wait > TimeDelta::milliseconds(900),
            "{real_wait}"
        );
    }

    #[test]
    fn the_real_clock_is_wall_time() {
        let clock = Clock::real();
        assert!((clock.now() - Utc::now()).abs() < TimeDelta::milliseconds(100));
        let later = Utc::now() + TimeDelta::seconds(60);
        assert!((clock.wall_time_at(later) - later).abs() < TimeDelta::milliseconds(100));
    }
}
