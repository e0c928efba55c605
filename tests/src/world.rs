//! Everything a running simulator knows and remembers: the scenario (fixed), its clock, the SSH
//! keys pushed with `SendSSHPublicKey`, the tunnels open per endpoint, the Session Manager
//! sessions, the real sshd servers behind instances, and the faults a test asked for.
//!
//! The scenario is what AWS *is*; the rest is what has *happened* since the simulator started.
//! The control plane, the tunnel endpoint and the SSM data channel hold one `Arc<World>`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpStream;

use crate::clock::Clock;
use crate::ec2::WindowsPasswords;
use crate::faults::Faults;
use crate::listener::BoxedIo;
use crate::scenario::Backend;
use crate::scenario::Scenario;
use crate::sshd::SshdHarness;
use crate::ssm::SessionManager;

/// How long an instance's backend may take to accept a connection.
const BACKEND_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a key pushed with `SendSSHPublicKey` can be used ("The key remains for 60 seconds").
pub const PUSHED_KEY_LIFETIME: TimeDelta = TimeDelta::seconds(60);

/// Concurrent tunnels one EC2 Instance Connect Endpoint carries ("Maximum number of concurrent
/// connections per EC2 Instance Connect Endpoint: 20, not adjustable").
pub const TUNNELS_PER_ENDPOINT: usize = 20;

#[derive(Debug)]
pub struct World {
    pub scenario: Arc<Scenario>,
    /// What `DescribeInstanceConnectEndpoints` reports as every endpoint's `DnsName` and
    /// `FipsDnsName`: the simulator's one tunnel listener, as `host:port`.
    pub endpoint_names: EndpointNames,
    pub clock: Clock,
    pub keys: PushedKeys,
    pub tunnels: OpenTunnels,
    /// Session Manager sessions and their agents.
    pub ssm: SessionManager,
    pub sshd: SshdHarness,
    pub faults: Faults,
    pub calls: CallCounts,
    /// Which credentials signed the most recent calls.
    pub trail: CallTrail,
    pub request_ids: RequestIds,
    /// Windows instances' Administrator passwords and the key pairs that seal them.
    pub passwords: WindowsPasswords,
    /// IAM Identity Center: SSO clients, device authorizations and tokens.
    pub sso: crate::sso::IdentityCenter,
}

/// The names under which the tunnel listener is reachable.
#[derive(Debug, Clone)]
pub struct EndpointNames {
    pub dns_name: String,
    pub fips_dns_name: String,
}

impl World {
    pub fn new(
        scenario: Arc<Scenario>,
        endpoint_names: EndpointNames,
        clock: Clock,
        sshd: SshdHarness,
        ssm: SessionManager,
    ) -> World {
        let scenario_faults = scenario.faults.clone();
        let data_channel_faults = scenario.data_channel_faults;
        World {
            passwords: WindowsPasswords::for_scenario(&scenario),
            scenario,
            endpoint_names,
            clock,
            keys: PushedKeys::default(),
            tunnels: OpenTunnels::default(),
            ssm,
            sshd,
            faults: Faults::new(scenario_faults, data_channel_faults),
            calls: CallCounts::default(),
            trail: CallTrail::default(),
            request_ids: RequestIds::new(),
            sso: Default::default(),
        }
    }
}

/// A key pushed for one OS user of one instance, and when it stops working (simulated time).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushedKey {
    pub public_key: String,
    pub expires: DateTime<Utc>,
}

/// Keys pushed with `SendSSHPublicKey`, per (instance id, OS user). Expired keys are dropped
/// whenever that pair is touched.
#[derive(Debug, Default)]
pub struct PushedKeys(Mutex<HashMap<(String, String), Vec<PushedKey>>>);

impl PushedKeys {
    /// Adds `public_key` for 60 seconds from `now` and returns every key still valid for the
    /// pair, the new one included.
    pub fn push(
        &self,
        instance_id: &str,
        os_user: &str,
        public_key: &str,
        now: DateTime<Utc>,
    ) -> Vec<PushedKey> {
        let mut keys = lock(&self.0);
        let valid = keys
            .entry((instance_id.to_owned(), os_user.to_owned()))
            .or_default();
        valid.retain(|key| key.expires > now);
        valid.push(PushedKey {
            public_key: public_key.to_owned(),
            expires: now + PUSHED_KEY_LIFETIME,
        });
        valid.clone()
    }

    /// The keys that authorize `os_user` on `instance_id` at `now`.
    pub fn valid(&self, instance_id: &str, os_user: &str, now: DateTime<Utc>) -> Vec<String> {
        let keys = lock(&self.0);
        keys.get(&(instance_id.to_owned(), os_user.to_owned()))
            .map(|keys| {
                keys.iter()
                    .filter(|key| key.expires > now)
                    .map(|key| key.public_key.clone())
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Open tunnels per endpoint, so that the 21st concurrent one is refused.
#[derive(Debug, Default, Clone)]
pub struct OpenTunnels(Arc<Mutex<HashMap<String, usize>>>);

/// One open tunnel's place in its endpoint's count; given back when dropped.
#[derive(Debug)]
pub struct TunnelSlot {
    tunnels: OpenTunnels,
    endpoint_id: String,
}

impl OpenTunnels {
    /// Takes a place for a tunnel through `endpoint_id`, or `None` when all 20 are in use.
    pub fn reserve(&self, endpoint_id: &str) -> Option<TunnelSlot> {
        let mut open = lock(&self.0);
        let count = open.entry(endpoint_id.to_owned()).or_default();
        if *count >= TUNNELS_PER_ENDPOINT {
            return None;
        }
        *count += 1;
        Some(TunnelSlot {
            tunnels: self.clone(),
            endpoint_id: endpoint_id.to_owned(),
        })
    }

    /// How many tunnels `endpoint_id` carries now.
    pub fn count(&self, endpoint_id: &str) -> usize {
        lock(&self.0).get(endpoint_id).copied().unwrap_or(0)
    }
}

impl Drop for TunnelSlot {
    fn drop(&mut self) {
        let mut open = lock(&self.tunnels.0);
        if let Some(count) = open.get_mut(&self.endpoint_id) {
            *count = count.saturating_sub(1);
        }
    }
}

/// How many authenticated calls each action has had, so a test can check how many requests
/// the product made (one `DescribeInstances` per account and region, say).
#[derive(Debug, Default, Clone)]
pub struct CallCounts(Arc<Mutex<HashMap<String, u64>>>);

impl CallCounts {
    pub fn record(&self, action: &str) {
        *lock(&self.0).entry(action.to_owned()).or_default() += 1;
    }

    pub fn get(&self, action: &str) -> u64 {
        lock(&self.0).get(action).copied().unwrap_or(0)
    }
}

/// How many calls [`CallTrail`] remembers: enough for any test, bounded for a long demo run.
const TRAIL_LENGTH: usize = 4096;

/// One authenticated call, as CloudTrail records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCall {
    pub action: String,
    /// The access key that signed it.
    pub access_key_id: String,
    /// When those credentials stop working (wall-clock time), for temporary ones.
    pub credentials_expire: Option<DateTime<Utc>>,
    /// When the call arrived (wall-clock time).
    pub at: DateTime<Utc>,
}

/// The most recent authenticated calls with the credentials that signed them, so a test can
/// see that a client renewed expiring credentials (a ResumeSession signed with other keys than
/// its StartSession).
#[derive(Debug, Default)]
pub struct CallTrail(Mutex<std::collections::VecDeque<SignedCall>>);

impl CallTrail {
    pub fn record(&self, call: SignedCall) {
        let mut trail = lock(&self.0);
        if trail.len() == TRAIL_LENGTH {
            trail.pop_front();
        }
        trail.push_back(call);
    }

    /// The remembered calls of `action`, oldest first.
    pub fn of(&self, action: &str) -> Vec<SignedCall> {
        lock(&self.0)
            .iter()
            .filter(|call| call.action == action)
            .cloned()
            .collect()
    }
}

/// UUID-shaped request ids, unique per simulator, as AWS's look.
#[derive(Debug)]
pub struct RequestIds {
    seed: String,
    counter: AtomicU64,
}

impl RequestIds {
    fn new() -> Self {
        RequestIds {
            seed: format!(
                "{}/{}",
                std::process::id(),
                Utc::now().timestamp_nanos_opt().unwrap_or(0)
            ),
            counter: AtomicU64::new(0),
        }
    }

    pub fn next(&self) -> String {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let digest = hex::encode(Sha256::digest(format!("{}/{n}", self.seed)));
        format!(
            "{}-{}-4{}-a{}-{}",
            &digest[0..8],
            &digest[8..12],
            &digest[13..16],
            &digest[17..20],
            &digest[20..32]
        )
    }
}

/// Locks `mutex`, recovering from poisoning: every critical section here leaves the data
/// consistent, so a panic elsewhere must not take the simulator down with it.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl World {
    /// Opens a connection to an instance's backend for one port, as the instance's network would:
    /// TCP to a configured address, the instance's real sshd, or an in-process echo. Shared by
    /// the EIC relay and the SSM agent, which reach instances the same way.
    pub(crate) async fn dial_backend(
        &self,
        instance_id: &str,
        backend: Backend,
    ) -> std::io::Result<BoxedIo> {
        match backend {
            Backend::Echo => {
                let (ours, theirs) = tokio::io::duplex(64 * 1024);
                tokio::spawn(async move {
                    let (mut from_peer, mut to_peer) = tokio::io::split(theirs);
                    let _ = tokio::io::copy(&mut from_peer, &mut to_peer).await;
                    let _ = to_peer.shutdown().await;
                });
                Ok(Box::new(ours))
            }
            Backend::Tcp(address) => {
                let tcp =
                    tokio::time::timeout(BACKEND_CONNECT_TIMEOUT, TcpStream::connect(address))
                        .await
                        .map_err(|_| {
                            std::io::Error::new(std::io::ErrorKind::TimedOut, "no answer")
                        })??;
                let _ = tcp.set_nodelay(true);
                Ok(Box::new(tcp))
            }
            Backend::Sshd => {
                let tcp = self.sshd.connect(instance_id).await?;
                let _ = tcp.set_nodelay(true);
                Ok(Box::new(tcp))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pushed_key_is_valid_for_sixty_seconds() {
        let keys = PushedKeys::default();
        let t0 = Utc::now();
        keys.push("i-1", "ec2-user", "ssh-ed25519 AAAA first", t0);
        assert_eq!(
            keys.valid("i-1", "ec2-user", t0 + TimeDelta::seconds(59))
                .len(),
            1
        );
        assert!(keys.valid("i-1", "root", t0).is_empty());
        assert!(
            keys.valid("i-1", "ec2-user", t0 + TimeDelta::seconds(60))
                .is_empty()
        );
        let later = t0 + TimeDelta::seconds(61);
        let valid = keys.push("i-1", "ec2-user", "ssh-ed25519 AAAA second", later);
        assert_eq!(valid.len(), 1, "the expired key was dropped");
        assert_eq!(valid[0].public_key, "ssh-ed25519 AAAA second");
    }

    #[test]
    fn an_endpoint_carries_twenty_tunnels_and_a_closed_one_frees_its_place() {
        let tunnels = OpenTunnels::default();
        let mut slots: Vec<TunnelSlot> = (0..TUNNELS_PER_ENDPOINT)
            .map(|_| tunnels.reserve("eice-1").expect("a place"))
            .collect();
        assert!(tunnels.reserve("eice-1").is_none());
        assert!(tunnels.reserve("eice-2").is_some(), "counted per endpoint");
        drop(slots.pop());
        assert_eq!(tunnels.count("eice-1"), TUNNELS_PER_ENDPOINT - 1);
        assert!(tunnels.reserve("eice-1").is_some());
    }
}
