//! The `Host` model: one EC2 instance as every other part of Bastionless sees it.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One EC2 instance, with where it was found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Host {
    pub instance_id: String,
    /// The `Name` tag, when the instance has one.
    pub name: Option<String>,
    pub tags: BTreeMap<String, String>,
    pub state: InstanceState,
    pub platform: Platform,
    pub private_ip: Option<String>,
    pub public_ip: Option<String>,
    pub vpc_id: Option<String>,
    pub subnet_id: Option<String>,
    pub availability_zone: Option<String>,
    /// The EC2 key pair the instance was launched with.
    pub key_name: Option<String>,
    /// The AMI the instance runs, when EC2 reported it: the best hint for its default OS user.
    #[serde(default)]
    pub image: Option<HostImage>,
    /// The security groups of the instance's network interfaces (`sg-…`), which decide who may
    /// connect to it.
    #[serde(default)]
    pub security_group_ids: Vec<String>,
    /// The profile the instance was found through.
    pub profile: String,
    pub account_id: String,
    pub region: String,
    /// Whether this record comes from the disk cache of an earlier run and its region has not
    /// been scanned again yet (or its scan failed): the instance may have changed or gone.
    #[serde(default)]
    pub stale: bool,
}

impl Host {
    /// What a person calls this host: its Name tag, else its instance id.
    pub fn display_name(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.instance_id)
    }

    /// Which instance this is, independent of the profile it was found through.
    pub fn key(&self) -> HostKey {
        HostKey {
            account_id: self.account_id.clone(),
            region: self.region.clone(),
            instance_id: self.instance_id.clone(),
        }
    }

    /// Whether this host is the instance `key` names.
    pub fn has_key(&self, key: &HostKey) -> bool {
        self.instance_id == key.instance_id
            && self.region == key.region
            && self.account_id == key.account_id
    }
}

/// One instance, wherever it was seen: several profiles (say, a read-only and an admin role in
/// the same account) can see the same instance, and commands name the instance, not the profile.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct HostKey {
    pub account_id: String,
    pub region: String,
    pub instance_id: String,
}

/// The three names of an instance, borrowed from a [`HostKey`] or a [`Host`], so that a map
/// keyed by `HostKey` can be searched with a `&Host` (`map.get(host as &dyn KeyParts)`) without
/// building a key — three string copies — per lookup. The window looks up a route for every
/// host it lists, and 10,000 hosts made that the largest cost of a search keystroke.
pub trait KeyParts {
    /// Account id, region and instance id: `HostKey`'s fields in its sort order.
    fn parts(&self) -> (&str, &str, &str);
}

impl KeyParts for HostKey {
    fn parts(&self) -> (&str, &str, &str) {
        (&self.account_id, &self.region, &self.instance_id)
    }
}

impl KeyParts for Host {
    fn parts(&self) -> (&str, &str, &str) {
        (&self.account_id, &self.region, &self.instance_id)
    }
}

impl<'a> std::borrow::Borrow<dyn KeyParts + 'a> for HostKey {
    fn borrow(&self) -> &(dyn KeyParts + 'a) {
        self
    }
}

impl PartialEq for dyn KeyParts + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.parts() == other.parts()
    }
}

impl Eq for dyn KeyParts + '_ {}

impl PartialOrd for dyn KeyParts + '_ {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// The same order as `HostKey`'s derived one (fields in declaration order), as `Borrow` needs.
impl Ord for dyn KeyParts + '_ {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.parts().cmp(&other.parts())
    }
}

impl std::fmt::Display for HostKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} (account {}, {})",
            self.instance_id, self.account_id, self.region
        )
    }
}

/// What is known about an instance's AMI.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostImage {
    /// `ami-…`, from `DescribeInstances`.
    pub id: String,
    /// The AMI's name (`ubuntu/images/hvm-ssd-gp3/ubuntu-noble-…`), from `DescribeImages`; absent
    /// when the AMI is private to another account, deregistered, or could not be described.
    pub name: Option<String>,
    /// EC2's `PlatformDetails` (`Linux/UNIX`, `Red Hat Enterprise Linux`, `Ubuntu Pro`, `Windows`…).
    pub platform_details: Option<String>,
}

/// The instance lifecycle states EC2 reports, in its own words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum InstanceState {
    Pending,
    Running,
    ShuttingDown,
    Terminated,
    Stopping,
    Stopped,
}

impl InstanceState {
    /// EC2's name for the state (`shutting-down`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::ShuttingDown => "shutting-down",
            Self::Terminated => "terminated",
            Self::Stopping => "stopping",
            Self::Stopped => "stopped",
        }
    }

    /// Parses EC2's state name.
    pub fn from_ec2(name: &str) -> Option<Self> {
        [
            Self::Pending,
            Self::Running,
            Self::ShuttingDown,
            Self::Terminated,
            Self::Stopping,
            Self::Stopped,
        ]
        .into_iter()
        .find(|s| s.as_str() == name)
    }
}

/// The operating-system family, which decides SSH versus RDP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    Linux,
    Windows,
}

impl Platform {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Linux => "linux",
            Self::Windows => "windows",
        }
    }
}

#[cfg(test)]
impl Host {
    /// A running Linux host with nothing known but where it is listed: what core's unit tests
    /// start from, setting what they need (`Host { name: …, ..Host::bare(…) }`).
    pub(crate) fn bare(profile: &str, account: &str, region: &str, id: &str) -> Host {
        Host {
            instance_id: id.into(),
            name: None,
            tags: Default::default(),
            state: InstanceState::Running,
            platform: Platform::Linux,
            private_ip: None,
            public_ip: None,
            vpc_id: None,
            subnet_id: None,
            availability_zone: None,
            key_name: None,
            image: None,
            security_group_ids: Vec::new(),
            profile: profile.into(),
            account_id: account.into(),
            region: region.into(),
            stale: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn host(account: &str, region: &str, id: &str) -> Host {
        Host::bare("dev", account, region, id)
    }

    #[test]
    fn a_map_keyed_by_host_key_is_searched_with_the_host_itself() {
        // Keys that sort differently field by field than their concatenations would.
        let hosts = [
            host("111", "us-east-1", "i-b"),
            host("111", "us-east-1", "i-a"),
            host("111", "eu-west-1", "i-c"),
            host("1112", "af-south-1", "i-a"),
            host("222", "us-east-1", "i-a"),
        ];
        let map: BTreeMap<HostKey, usize> = hosts
            .iter()
            .enumerate()
            .map(|(i, h)| (h.key(), i))
            .collect();
        for (i, host) in hosts.iter().enumerate() {
            assert_eq!(map.get(host as &dyn KeyParts), Some(&i), "{i}");
        }
        assert_eq!(
            map.get(&host("111", "us-east-1", "i-z") as &dyn KeyParts),
            None
        );
        let mut sorted: Vec<&Host> = hosts.iter().collect();
        sorted.sort_by(|a, b| (*a as &dyn KeyParts).cmp(*b as &dyn KeyParts));
        let by_key: Vec<usize> = map.values().copied().collect();
        let by_parts: Vec<usize> = sorted
            .iter()
            .map(|h| hosts.iter().position(|x| std::ptr::eq(x, *h)).unwrap())
            .collect();
        assert_eq!(by_key, by_parts, "both orders agree, as Borrow requires");
    }
}
