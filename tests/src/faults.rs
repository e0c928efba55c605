//! Faults the control plane injects, so the product's handling of a slow, throttled, failing or
//! flaky AWS can be tested: from the scenario (`[[faults]]` tables) and from tests at run time
//! ([`crate::Simulator::inject`], [`crate::Simulator::throttle`],
//! [`crate::Simulator::expire_credentials`]).
//!
//! Every call goes through [`Faults::decide`] after it is authenticated and before its action
//! runs, as at AWS, where throttling and service errors come after the signature check. Rates
//! are drawn from one seeded generator, so a run with the same calls in the same order sees
//! the same faults.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use serde::Deserialize;

use crate::ssm::link_faults::DataChannelFaults;

/// One fault rule: which calls it applies to and what happens to them. The rates are
/// probabilities per call, between 0 and 1, applied in this order: reset, throttling, 5xx.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultRule {
    /// The actions it applies to (`DescribeInstances`, `StartSession`, …); every action when
    /// empty.
    #[serde(default)]
    pub actions: Vec<String>,
    /// The regions (of the caller's signature) it applies to; every region when empty.
    #[serde(default)]
    pub regions: Vec<String>,
    /// Added before the answer, every time.
    #[serde(default)]
    pub latency_ms: u64,
    /// Up to this much more, uniformly drawn per call.
    #[serde(default)]
    pub jitter_ms: u64,
    /// The share of calls that get the service's throttling error.
    #[serde(default)]
    pub throttle_rate: f64,
    /// The share of calls that get a 500 `InternalError` (the JSON services'
    /// `InternalServerError`).
    #[serde(default)]
    pub server_error_rate: f64,
    /// The share of calls whose connection is closed before any answer.
    #[serde(default)]
    pub reset_rate: f64,
}

impl FaultRule {
    /// A rule for every action.
    pub fn all() -> FaultRule {
        FaultRule::default()
    }

    /// A rule for one action.
    pub fn action(action: &str) -> FaultRule {
        FaultRule {
            actions: vec![action.to_owned()],
            ..FaultRule::default()
        }
    }

    pub fn latency(mut self, fixed: Duration, jitter: Duration) -> FaultRule {
        self.latency_ms = millis(fixed);
        self.jitter_ms = millis(jitter);
        self
    }

    pub fn throttle_rate(mut self, rate: f64) -> FaultRule {
        self.throttle_rate = rate;
        self
    }

    pub fn server_error_rate(mut self, rate: f64) -> FaultRule {
        self.server_error_rate = rate;
        self
    }

    pub fn reset_rate(mut self, rate: f64) -> FaultRule {
        self.reset_rate = rate;
        self
    }

    /// What is wrong with the rule, if anything (a rate outside 0–1).
    pub fn problem(&self) -> Option<String> {
        [
            ("throttle_rate", self.throttle_rate),
            ("server_error_rate", self.server_error_rate),
            ("reset_rate", self.reset_rate),
        ]
        .into_iter()
        .find(|(_, rate)| !(0.0..=1.0).contains(rate))
        .map(|(name, rate)| format!("{name} = {rate} is not a probability between 0 and 1"))
    }

    fn applies_to(&self, action: &str, region: &str) -> bool {
        (self.actions.is_empty() || self.actions.iter().any(|a| a == action))
            && (self.regions.is_empty() || self.regions.iter().any(|r| r == region))
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// What happens to one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Wait this long before answering (or hanging up).
    pub delay: Duration,
    pub outcome: Outcome,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The action runs.
    Proceed,
    /// The service's throttling error.
    Throttle,
    /// A 5xx internal error.
    ServerError,
    /// The connection is closed with no answer.
    Reset,
}

/// The faults in force for one simulator.
#[derive(Debug)]
pub struct Faults {
    rules: Mutex<Vec<FaultRule>>,
    /// Throttling of the next N calls of an action, whatever the rates say.
    throttle_next: Mutex<HashMap<String, u32>>,
    /// Profiles whose credentials AWS now calls expired.
    expired: Mutex<HashSet<String>>,
    /// Message-level faults on every Session Manager data channel.
    data_channel: Mutex<DataChannelFaults>,
    /// Cuts of EIC tunnels: each message names an endpoint id.
    tunnel_cuts: tokio::sync::broadcast::Sender<String>,
    rng: Mutex<StdRng>,
}

/// The generator's seed: fixed, so fault sequences repeat from run to run.
const SEED: u64 = 0x5eed_fa17;

impl Faults {
    /// The faults a scenario declares.
    pub fn new(rules: Vec<FaultRule>, data_channel: DataChannelFaults) -> Faults {
        Faults {
            rules: Mutex::new(rules),
            data_channel: Mutex::new(data_channel),
            tunnel_cuts: tokio::sync::broadcast::channel(16).0,
            throttle_next: Mutex::default(),
            expired: Mutex::default(),
            rng: Mutex::new(StdRng::seed_from_u64(SEED)),
        }
    }

    /// Adds a rule; it applies from the next call on.
    pub fn inject(&self, rule: FaultRule) {
        lock(&self.rules).push(rule);
    }

    /// Removes every rule (scenario ones too) and pending throttling.
    pub fn clear(&self) {
        lock(&self.rules).clear();
        lock(&self.throttle_next).clear();
    }

    /// Makes the next `calls` calls of `action` fail as throttled (in addition to any already
    /// pending). The SDKs retry throttling errors, so a test that wants the caller to see one
    /// injects at least as many as the caller's retry attempts.
    pub fn throttle(&self, action: &str, calls: u32) {
        *lock(&self.throttle_next)
            .entry(action.to_owned())
            .or_default() += calls;
    }

    /// From now on, requests signed with `profile`'s credentials fail as expired, as when a
    /// session token runs out, until [`Faults::renew_credentials`].
    pub fn expire_credentials(&self, profile: &str) {
        lock(&self.expired).insert(profile.to_owned());
    }

    pub fn renew_credentials(&self, profile: &str) {
        lock(&self.expired).remove(profile);
    }

    pub fn credentials_expired(&self, profile: &str) -> bool {
        lock(&self.expired).contains(profile)
    }

    /// Cuts every tunnel open through `endpoint_id` (no Close frame: the connection just
    /// ends, as on a network failure).
    pub fn cut_tunnels(&self, endpoint_id: &str) {
        // No receiver means no tunnel is open anywhere: nothing to cut.
        let _ = self.tunnel_cuts.send(endpoint_id.to_owned());
    }

    /// Resolves when the tunnels of `endpoint_id` are cut. Subscribes at once, so a cut after
    /// this call is never missed.
    pub fn tunnel_cut(&self, endpoint_id: &str) -> impl std::future::Future<Output = ()> + use<> {
        let mut cuts = self.tunnel_cuts.subscribe();
        let endpoint_id = endpoint_id.to_owned();
        async move {
            loop {
                match cuts.recv().await {
                    Ok(cut) if cut == endpoint_id => return,
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                        std::future::pending::<()>().await;
                    }
                }
            }
        }
    }

    /// Sets the message-level faults of every data channel, from the next message on.
    pub fn set_data_channel(&self, faults: DataChannelFaults) {
        *lock(&self.data_channel) = faults;
    }

    pub fn data_channel(&self) -> DataChannelFaults {
        *lock(&self.data_channel)
    }

    /// What happens to this call of `action` signed for `region`.
    pub fn decide(&self, action: &str, region: &str) -> Decision {
        let mut delay = Duration::ZERO;
        let mut outcome = Outcome::Proceed;
        if take_one(&mut lock(&self.throttle_next), action) {
            outcome = Outcome::Throttle;
        }
        let rules = lock(&self.rules);
        let mut rng = lock(&self.rng);
        for rule in rules.iter().filter(|rule| rule.applies_to(action, region)) {
            let jitter = if rule.jitter_ms > 0 {
                rng.random_range(0..=rule.jitter_ms)
            } else {
                0
            };
            delay += Duration::from_millis(rule.latency_ms.saturating_add(jitter));
            if outcome != Outcome::Proceed {
                continue;
            }
            outcome = if rng.random_bool(rule.reset_rate) {
                Outcome::Reset
            } else if rng.random_bool(rule.throttle_rate) {
                Outcome::Throttle
            } else if rng.random_bool(rule.server_error_rate) {
                Outcome::ServerError
            } else {
                Outcome::Proceed
            };
        }
        Decision { delay, outcome }
    }
}

fn take_one(pending: &mut HashMap<String, u32>, action: &str) -> bool {
    match pending.get_mut(action) {
        Some(remaining) if *remaining > 0 => {
            *remaining -= 1;
            true
        }
        _ => false,
    }
}

/// Locks `mutex`, recovering from poisoning: every critical section here leaves the data
/// consistent.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_rules_means_every_call_proceeds_at_once() {
        let faults = Faults::new(Vec::new(), DataChannelFaults::default());
        for _ in 0..100 {
            assert_eq!(
                faults.decide("DescribeInstances", "us-east-1"),
                Decision {
                    delay: Duration::ZERO,
                    outcome: Outcome::Proceed
                }
            );
        }
    }

    #[test]
    fn latency_and_jitter_add_up_within_bounds() {
        let faults = Faults::new(
            vec![FaultRule::all().latency(Duration::from_millis(100), Duration::from_millis(20))],
            DataChannelFaults::default(),
        );
        let delays: Vec<_> = (0..200)
            .map(|_| faults.decide("DescribeRegions", "eu-west-1").delay)
            .collect();
        assert!(
            delays
                .iter()
                .all(|d| (Duration::from_millis(100)..=Duration::from_millis(120)).contains(d))
        );
        assert!(delays.iter().any(|d| *d != delays[0]), "jitter varies");
    }

    #[test]
    fn rules_apply_only_to_their_actions_and_regions() {
        let faults = Faults::new(
            vec![FaultRule {
                regions: vec!["eu-west-1".to_owned()],
                ..FaultRule::action("DescribeInstances").server_error_rate(1.0)
            }],
            DataChannelFaults::default(),
        );
        assert_eq!(
            faults.decide("DescribeInstances", "eu-west-1").outcome,
            Outcome::ServerError
        );
        assert_eq!(
            faults.decide("DescribeInstances", "us-east-1").outcome,
            Outcome::Proceed
        );
        assert_eq!(
            faults.decide("DescribeVpcs", "eu-west-1").outcome,
            Outcome::Proceed
        );
    }

    #[test]
    fn a_rate_is_roughly_that_share_of_calls_and_repeats_from_run_to_run() {
        let run = || {
            let faults = Faults::new(
                vec![FaultRule::all().throttle_rate(0.25)],
                DataChannelFaults::default(),
            );
            (0..2000)
                .map(|_| faults.decide("StartSession", "us-east-1").outcome)
                .collect::<Vec<_>>()
        };
        let first = run();
        let throttled = first.iter().filter(|o| **o == Outcome::Throttle).count();
        assert!((400..600).contains(&throttled), "{throttled} of 2000");
        assert_eq!(first, run(), "the same calls see the same faults");
    }

    #[test]
    fn injected_throttles_are_used_up_one_call_at_a_time() {
        let faults = Faults::new(Vec::new(), DataChannelFaults::default());
        faults.throttle("SendSSHPublicKey", 2);
        let outcomes: Vec<_> = (0..3)
            .map(|_| faults.decide("SendSSHPublicKey", "us-east-1").outcome)
            .collect();
        assert_eq!(
            outcomes,
            [Outcome::Throttle, Outcome::Throttle, Outcome::Proceed]
        );
    }

    #[test]
    fn expired_credentials_stay_expired_until_renewed() {
        let faults = Faults::new(Vec::new(), DataChannelFaults::default());
        faults.expire_credentials("dev");
        assert!(faults.credentials_expired("dev"));
        assert!(!faults.credentials_expired("prod"));
        faults.renew_credentials("dev");
        assert!(!faults.credentials_expired("dev"));
    }

    #[test]
    fn rates_outside_zero_to_one_are_reported() {
        assert!(FaultRule::all().reset_rate(1.5).problem().is_some());
        assert!(FaultRule::all().throttle_rate(-0.1).problem().is_some());
        assert_eq!(FaultRule::all().server_error_rate(0.5).problem(), None);
    }
}
