//! Security groups: the stateful firewalls that decide whether an EC2 Instance Connect Endpoint
//! may reach an instance's port — the commonest reason a real tunnel closes with "Unable to
//! connect to target".
//!
//! A rule admits traffic by protocol and port range from (ingress) or to (egress) CIDR blocks
//! or other security groups, as in EC2's `IpPermission`. Only what the simulator needs to
//! decide reachability and to answer `DescribeSecurityGroups` is modelled: IPv4 ranges and
//! group references, no prefix lists or IPv6.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use serde::Deserialize;

use super::Ipv4Cidr;

/// A VPC security group (`sg-…`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecurityGroup {
    pub id: String,
    /// The group name (`groupName`), unique within its VPC.
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    pub vpc: String,
    #[serde(default)]
    pub ingress: Vec<SecurityGroupRule>,
    /// Outbound rules. Omitted, a group has what EC2 gives every new group: all traffic to
    /// anywhere. `egress = []` allows nothing out.
    #[serde(default = "allow_all")]
    pub egress: Vec<SecurityGroupRule>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

impl SecurityGroup {
    /// The description EC2 requires; the name when the scenario gives none.
    pub fn description(&self) -> &str {
        self.description.as_deref().unwrap_or(&self.name)
    }
}

/// One permission: a protocol and port range, and whom it applies to.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecurityGroupRule {
    pub protocol: IpProtocol,
    /// First port of the range; for `-1` (all traffic) there is none.
    #[serde(default)]
    pub from_port: Option<u16>,
    /// Last port of the range, inclusive.
    #[serde(default)]
    pub to_port: Option<u16>,
    /// IPv4 ranges the rule applies to.
    #[serde(default)]
    pub cidrs: Vec<Ipv4Cidr>,
    /// Security groups the rule applies to: traffic from (ingress) or to (egress) any network
    /// interface in one of them.
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub description: Option<String>,
}

/// The `ipProtocol` of a rule; `-1` is every protocol on every port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum IpProtocol {
    #[serde(rename = "tcp")]
    Tcp,
    #[serde(rename = "udp")]
    Udp,
    #[serde(rename = "icmp")]
    Icmp,
    #[serde(rename = "-1")]
    All,
}

impl IpProtocol {
    /// As EC2 writes it in `ipProtocol`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Udp => "udp",
            Self::Icmp => "icmp",
            Self::All => "-1",
        }
    }
}

/// The other end of a TCP connection, as a security group rule sees it.
#[derive(Debug, Clone, Copy)]
pub struct Peer<'a> {
    pub ip: Ipv4Addr,
    /// The security groups of the peer's network interface.
    pub groups: &'a [String],
}

impl SecurityGroupRule {
    /// Whether this rule admits TCP to or from `peer` on `port`.
    pub fn admits_tcp(&self, port: u16, peer: Peer<'_>) -> bool {
        let protocol_and_port = match self.protocol {
            IpProtocol::All => true,
            IpProtocol::Tcp => {
                let from = self.from_port.unwrap_or(0);
                let to = self.to_port.unwrap_or(u16::MAX);
                (from..=to).contains(&port)
            }
            IpProtocol::Udp | IpProtocol::Icmp => false,
        };
        protocol_and_port
            && (self.cidrs.iter().any(|cidr| cidr.contains(peer.ip))
                || self.groups.iter().any(|group| peer.groups.contains(group)))
    }
}

fn allow_all() -> Vec<SecurityGroupRule> {
    vec![SecurityGroupRule {
        protocol: IpProtocol::All,
        from_port: None,
        to_port: None,
        cidrs: vec![Ipv4Cidr {
            network: Ipv4Addr::UNSPECIFIED,
            prefix_len: 0,
        }],
        groups: Vec::new(),
        description: None,
    }]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(text: &str) -> SecurityGroupRule {
        toml::from_str(text).expect("a rule")
    }

    #[test]
    fn a_tcp_rule_admits_its_port_range_from_its_cidrs_and_groups() {
        let ssh = rule(
            r#"protocol = "tcp"
               from_port = 22
               to_port = 22
               cidrs = ["10.0.0.0/16"]
               groups = ["sg-0123456789abcdef0"]"#,
        );
        let endpoint_group = ["sg-0123456789abcdef0".to_owned()];
        let inside = Peer {
            ip: Ipv4Addr::new(10, 0, 3, 4),
            groups: &[],
        };
        let outside = Peer {
            ip: Ipv4Addr::new(192, 168, 0, 1),
            groups: &[],
        };
        let by_group = Peer {
            ip: Ipv4Addr::new(192, 168, 0, 1),
            groups: &endpoint_group,
        };
        assert!(ssh.admits_tcp(22, inside));
        assert!(!ssh.admits_tcp(3389, inside));
        assert!(!ssh.admits_tcp(22, outside));
        assert!(ssh.admits_tcp(22, by_group));
    }

    #[test]
    fn all_traffic_admits_every_port_and_udp_admits_no_tcp() {
        let anything = Peer {
            ip: Ipv4Addr::new(8, 8, 8, 8),
            groups: &[],
        };
        assert!(allow_all()[0].admits_tcp(3389, anything));
        let udp = rule(
            r#"protocol = "udp"
               from_port = 0
               to_port = 65535
               cidrs = ["0.0.0.0/0"]"#,
        );
        assert!(!udp.admits_tcp(22, anything));
    }
}
