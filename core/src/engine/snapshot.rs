//! The immutable picture of everything the app shows, swapped whole by the engine.

use std::collections::BTreeMap;

use crate::inventory::{EicEndpointListing, Host, HostKey};
use crate::tunnel::{TunnelEvent, TunnelStatus};

/// How many tunnel events a snapshot keeps (the newest).
pub const TUNNEL_EVENTS_KEPT: usize = 50;

/// What the UI renders. Cheap to share: the engine publishes a new `Arc<Snapshot>` per change.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Increases with every published change, so a reader can tell two snapshots apart cheaply.
    pub generation: u64,
    pub profiles: Vec<ProfileStatus>,
    /// Every host found, grouped by profile in profile order.
    pub hosts: Vec<Host>,
    /// Each scanned profile's EC2 Instance Connect Endpoints in its region, by profile name.
    pub eic_endpoints: BTreeMap<String, EicEndpointListing>,
    /// Every tunnel, in the order they were asked for.
    pub tunnels: Vec<TunnelStatus>,
    /// The newest tunnel events (at most [`TUNNEL_EVENTS_KEPT`]), oldest first; each `seq` is
    /// larger than the last, so a reader shows the ones it has not seen.
    pub tunnel_events: Vec<TunnelEvent>,
    /// Whether an inventory refresh is under way.
    pub refreshing: bool,
    /// Problems that belong to no single profile (an unreadable config file, stray lines).
    pub warnings: Vec<String>,
}

/// One profile and how its last scan went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileStatus {
    pub name: String,
    /// The profile's home region, when it names one.
    pub region: Option<String>,
    /// Known once STS has answered.
    pub account_id: Option<String>,
    pub state: ProfileState,
    /// Parts of the last scan that failed without failing it (EIC endpoints or AMI names could
    /// not be listed), each saying what is missing.
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProfileState {
    /// A scan is under way.
    Loading,
    /// The last scan succeeded.
    Ready { hosts: usize },
    /// The profile cannot be used, or its last scan failed; the text says why and what to do.
    Failed { error: String },
}

impl Snapshot {
    /// Profiles whose last scan failed, with their error.
    pub fn failed_profiles(&self) -> impl Iterator<Item = (&str, &str)> {
        self.profiles.iter().filter_map(|p| match &p.state {
            ProfileState::Failed { error } => Some((p.name.as_str(), error.as_str())),
            _ => None,
        })
    }

    /// The hosts `query` names exactly: an instance id, a Name tag (ignoring case), or a private
    /// or public IP. More than one result means the query is ambiguous (two instances share a
    /// name, or private IPs repeat across VPCs).
    pub fn find_hosts(&self, query: &str) -> Vec<&Host> {
        let query = query.trim();
        if query.is_empty() {
            return Vec::new();
        }
        self.hosts
            .iter()
            .filter(|host| {
                host.instance_id.eq_ignore_ascii_case(query)
                    || host
                        .name
                        .as_deref()
                        .is_some_and(|n| n.eq_ignore_ascii_case(query))
                    || host.private_ip.as_deref() == Some(query)
                    || host.public_ip.as_deref() == Some(query)
            })
            .collect()
    }

    /// The instance `key` names, if the inventory has it.
    pub fn host(&self, key: &HostKey) -> Option<&Host> {
        self.hosts.iter().find(|h| h.has_key(key))
    }

    /// Profiles that can act on `host`: the one it was found through first, then every other
    /// profile whose last scan reached the same account and region, in name order. A read-only
    /// role may list an instance that only an admin role in the same account may tunnel to.
    pub fn profiles_for<'a>(&'a self, host: &'a Host) -> impl Iterator<Item = &'a str> {
        let others = self.profiles.iter().filter(move |p| {
            p.name != host.profile
                && matches!(p.state, ProfileState::Ready { .. })
                && p.account_id.as_deref() == Some(host.account_id.as_str())
                && p.region.as_deref() == Some(host.region.as_str())
        });
        std::iter::once(host.profile.as_str()).chain(others.map(|p| p.name.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::{InstanceState, Platform};

    fn host(profile: &str, account: &str, id: &str, name: Option<&str>, ip: &str) -> Host {
        Host {
            instance_id: id.into(),
            name: name.map(str::to_owned),
            tags: Default::default(),
            state: InstanceState::Running,
            platform: Platform::Linux,
            private_ip: Some(ip.into()),
            public_ip: None,
            vpc_id: None,
            subnet_id: None,
            availability_zone: None,
            key_name: None,
            image: None,
            profile: profile.into(),
            account_id: account.into(),
            region: "us-east-1".into(),
        }
    }

    fn profile(name: &str, account: Option<&str>, region: &str, ready: bool) -> ProfileStatus {
        ProfileStatus {
            name: name.into(),
            region: Some(region.into()),
            account_id: account.map(str::to_owned),
            state: if ready {
                ProfileState::Ready { hosts: 1 }
            } else {
                ProfileState::Failed {
                    error: "expired".into(),
                }
            },
            warnings: Vec::new(),
        }
    }

    fn snapshot() -> Snapshot {
        Snapshot {
            profiles: vec![
                profile("admin", Some("111"), "us-east-1", true),
                profile("broken", Some("111"), "us-east-1", false),
                profile("eu", Some("111"), "eu-west-1", true),
                profile("other", Some("222"), "us-east-1", true),
                profile("readonly", Some("111"), "us-east-1", true),
            ],
            hosts: vec![
                host("readonly", "111", "i-0aaa", Some("web-1"), "10.0.0.1"),
                host("admin", "111", "i-0bbb", Some("Web-1"), "10.0.0.2"),
                host("admin", "111", "i-0ccc", None, "10.0.0.3"),
                // Another account reuses the private IP.
                host("other", "222", "i-0ddd", Some("db"), "10.0.0.3"),
            ],
            ..Snapshot::default()
        }
    }

    fn ids(found: Vec<&Host>) -> Vec<&str> {
        found.iter().map(|h| h.instance_id.as_str()).collect()
    }

    #[test]
    fn hosts_are_found_by_id_name_or_ip() {
        let s = snapshot();
        assert_eq!(ids(s.find_hosts("i-0AAA")), ["i-0aaa"]);
        assert_eq!(ids(s.find_hosts(" db ")), ["i-0ddd"]);
        assert_eq!(ids(s.find_hosts("10.0.0.2")), ["i-0bbb"]);
        assert_eq!(
            s.host(&s.hosts[3].key()).map(|h| h.profile.as_str()),
            Some("other")
        );
    }

    #[test]
    fn ambiguous_queries_return_every_match() {
        let s = snapshot();
        assert_eq!(ids(s.find_hosts("web-1")), ["i-0aaa", "i-0bbb"]);
        assert_eq!(ids(s.find_hosts("10.0.0.3")), ["i-0ccc", "i-0ddd"]);
    }

    #[test]
    fn nothing_matches_an_empty_or_partial_query() {
        let s = snapshot();
        assert!(s.find_hosts("").is_empty());
        assert!(s.find_hosts("web").is_empty());
        assert!(s.find_hosts("10.0.0").is_empty());
    }

    #[test]
    fn a_host_s_own_profile_comes_first_then_working_profiles_of_its_account_and_region() {
        let s = snapshot();
        let profiles: Vec<&str> = s.profiles_for(&s.hosts[0]).collect();
        assert_eq!(profiles, ["readonly", "admin"]);
        let profiles: Vec<&str> = s.profiles_for(&s.hosts[3]).collect();
        assert_eq!(profiles, ["other"]);
    }
}
