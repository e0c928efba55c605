//! Security groups and `DescribeSecurityGroups`, for the groups routes depend on: the
//! instances' (who may come in) and the EC2 Instance Connect Endpoints' (where the endpoint may
//! go). They are what most often makes a tunnel close with "Unable to connect to target", so
//! [`crate::route`] reads them to say which rule is missing before anyone tries.
//!
//! The groups are named by a `group-id` filter rather than `GroupIds`, so a group deleted
//! since `DescribeInstances` answered does not fail the whole call.

use std::collections::BTreeSet;

use aws_sdk_ec2::types::{Filter, IpPermission};
use serde::{Deserialize, Serialize};

use super::calls::{CallBudget, CallFailure};
use super::cidr::Ipv4Cidr;

/// EC2 accepts at most 200 values in one filter.
const IDS_PER_CALL: usize = 200;

/// One VPC security group (`sg-…`) and its rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityGroup {
    pub id: String,
    /// The group name (`groupName`), which people recognise more readily than the id.
    pub name: String,
    pub ingress: Vec<SecurityGroupRule>,
    pub egress: Vec<SecurityGroupRule>,
}

impl SecurityGroup {
    /// `sg-… (name)`.
    pub fn label(&self) -> String {
        format!("{} ({})", self.id, self.name)
    }
}

/// One permission: a protocol and port range, and the peers it applies to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityGroupRule {
    pub protocol: RuleProtocol,
    /// The first and last port, inclusive; `None` for every port.
    pub ports: Option<(u16, u16)>,
    pub peers: Vec<RulePeer>,
}

impl SecurityGroupRule {
    /// Whether the rule covers TCP to `port` (from or to its peers).
    pub fn covers_tcp(&self, port: u16) -> bool {
        match self.protocol {
            RuleProtocol::All => true,
            RuleProtocol::Tcp => self
                .ports
                .is_none_or(|(from, to)| (from..=to).contains(&port)),
            RuleProtocol::Other => false,
        }
    }
}

/// A rule's `ipProtocol`, as far as TCP connections are concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleProtocol {
    /// `-1`: all traffic.
    All,
    /// `tcp` or `6`.
    Tcp,
    /// UDP, ICMP or another protocol: never a TCP connection.
    Other,
}

/// Whom a rule applies to, with the rule's description for that peer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RulePeer {
    pub peer: Peer,
    pub description: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Peer {
    /// An IPv4 range.
    Cidr(Ipv4Cidr),
    /// Network interfaces in this security group.
    Group(String),
    /// A managed prefix list (`pl-…`), whose ranges are not read.
    PrefixList(String),
}

impl std::fmt::Display for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Peer::Cidr(block) => write!(f, "{block}"),
            Peer::Group(id) | Peer::PrefixList(id) => f.write_str(id),
        }
    }
}

/// The groups named by `ids` that exist, in any order.
pub(super) async fn describe_security_groups(
    ec2: &aws_sdk_ec2::Client,
    calls: &CallBudget,
    ids: &BTreeSet<String>,
) -> Result<Vec<SecurityGroup>, CallFailure> {
    let ids: Vec<String> = ids.iter().cloned().collect();
    let mut groups = Vec::new();
    for chunk in ids.chunks(IDS_PER_CALL) {
        let by_id = Filter::builder()
            .name("group-id")
            .set_values(Some(chunk.to_vec()))
            .build();
        let mut pages = ec2
            .describe_security_groups()
            .filters(by_id)
            .max_results(1000)
            .into_paginator()
            .send();
        while let Some(page) = calls.page(pages.next()).await? {
            groups.extend(page.security_groups().iter().filter_map(|group| {
                Some(SecurityGroup {
                    id: group.group_id()?.to_owned(),
                    name: group.group_name().unwrap_or_default().to_owned(),
                    ingress: group.ip_permissions().iter().map(to_rule).collect(),
                    egress: group.ip_permissions_egress().iter().map(to_rule).collect(),
                })
            }));
        }
    }
    Ok(groups)
}

fn to_rule(permission: &IpPermission) -> SecurityGroupRule {
    let protocol = match permission.ip_protocol() {
        Some("-1") => RuleProtocol::All,
        Some(p) if p.eq_ignore_ascii_case("tcp") || p == "6" => RuleProtocol::Tcp,
        _ => RuleProtocol::Other,
    };
    let port = |p: Option<i32>| p.and_then(|p| u16::try_from(p).ok());
    let ports = match (port(permission.from_port()), port(permission.to_port())) {
        (Some(from), Some(to)) if protocol == RuleProtocol::Tcp => Some((from, to)),
        _ => None,
    };
    let description = |d: Option<&str>| d.filter(|d| !d.is_empty()).map(str::to_owned);
    let ranges = permission.ip_ranges().iter().filter_map(|range| {
        Some(RulePeer {
            peer: Peer::Cidr(range.cidr_ip()?.parse().ok()?),
            description: description(range.description()),
        })
    });
    let groups = permission.user_id_group_pairs().iter().filter_map(|pair| {
        Some(RulePeer {
            peer: Peer::Group(pair.group_id()?.to_owned()),
            description: description(pair.description()),
        })
    });
    let prefix_lists = permission.prefix_list_ids().iter().filter_map(|list| {
        Some(RulePeer {
            peer: Peer::PrefixList(list.prefix_list_id()?.to_owned()),
            description: description(list.description()),
        })
    });
    SecurityGroupRule {
        protocol,
        ports,
        peers: ranges.chain(groups).chain(prefix_lists).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ec2::types::{IpRange, PrefixListId, UserIdGroupPair};

    #[test]
    fn sdk_permissions_map_to_rules_with_each_peer_described() {
        let ssh = IpPermission::builder()
            .ip_protocol("tcp")
            .from_port(22)
            .to_port(22)
            .ip_ranges(
                IpRange::builder()
                    .cidr_ip("10.10.0.0/16")
                    .description("VPC")
                    .build(),
            )
            .user_id_group_pairs(UserIdGroupPair::builder().group_id("sg-1").build())
            .prefix_list_ids(PrefixListId::builder().prefix_list_id("pl-1").build())
            .build();
        let rule = to_rule(&ssh);
        assert_eq!(rule.protocol, RuleProtocol::Tcp);
        assert_eq!(rule.ports, Some((22, 22)));
        assert_eq!(
            rule.peers,
            [
                RulePeer {
                    peer: Peer::Cidr("10.10.0.0/16".parse().unwrap()),
                    description: Some("VPC".into())
                },
                RulePeer {
                    peer: Peer::Group("sg-1".into()),
                    description: None
                },
                RulePeer {
                    peer: Peer::PrefixList("pl-1".into()),
                    description: None
                },
            ]
        );
        assert!(rule.covers_tcp(22) && !rule.covers_tcp(23));
    }

    #[test]
    fn all_traffic_covers_every_port_and_udp_covers_none() {
        let all = to_rule(&IpPermission::builder().ip_protocol("-1").build());
        assert_eq!((all.protocol, all.ports), (RuleProtocol::All, None));
        assert!(all.covers_tcp(3389));
        let udp = to_rule(
            &IpPermission::builder()
                .ip_protocol("udp")
                .from_port(0)
                .to_port(65535)
                .build(),
        );
        assert!(!udp.covers_tcp(22));
        let numbered_tcp = to_rule(
            &IpPermission::builder()
                .ip_protocol("6")
                .from_port(3000)
                .to_port(3999)
                .build(),
        );
        assert!(numbered_tcp.covers_tcp(3389) && !numbered_tcp.covers_tcp(22));
    }
}
