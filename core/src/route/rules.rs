//! Whether security groups let a TCP connection through, judged from their rules alone.
//!
//! The other end of the connection is known more or less exactly: an instance's private IP, an
//! endpoint's address somewhere in its subnet, or the user's own address, which the inventory
//! cannot know. A rule naming one of the peer's groups, or a range holding every address the
//! peer may have, admits it; a range holding only some of them (or a prefix list, whose ranges
//! are not read) may; anything else does not.

use std::net::Ipv4Addr;

use crate::inventory::{Ipv4Cidr, Peer, RegionFacts, RulePeer, SecurityGroup};

/// Where the other end's address is.
#[derive(Debug, Clone, Copy)]
pub(super) enum Address {
    /// Exactly this address (an instance's private IP).
    Exact(Ipv4Addr),
    /// Somewhere in a subnet, or in an unknown private range when the subnet was not read (an
    /// endpoint's network interface).
    InSubnet(Option<Ipv4Cidr>),
    /// The user's own public address, which the inventory does not know.
    Client,
}

/// The other end of a connection, as rules see it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Party<'a> {
    pub address: Address,
    /// The security groups of its network interface.
    pub groups: &'a [String],
}

/// What a set of groups makes of a connection.
#[derive(Debug)]
pub(super) enum Admission<'a> {
    /// This rule of this group lets it through.
    Admitted {
        group: &'a SecurityGroup,
        peer: &'a RulePeer,
    },
    /// No rule surely does; these might, each said as "sg-… (name) … from X".
    Possibly(Vec<String>),
    /// No rule does.
    Refused,
    /// The groups' rules are not known; the text says why.
    Unknown(String),
}

/// Whether one rule's peer takes in `party`: `Some(true)` surely, `Some(false)` possibly.
fn peer_takes(peer: &Peer, party: Party<'_>) -> Option<bool> {
    match (peer, party.address) {
        (Peer::Group(id), _) => party.groups.contains(id).then_some(true),
        (Peer::PrefixList(_), _) => Some(false),
        (Peer::Cidr(range), Address::Exact(ip)) => range.contains(ip).then_some(true),
        (Peer::Cidr(range), Address::InSubnet(Some(subnet))) => {
            if range.contains_block(subnet) {
                Some(true)
            } else {
                range.overlaps(subnet).then_some(false)
            }
        }
        (Peer::Cidr(range), Address::InSubnet(None)) => {
            if *range == Ipv4Cidr::ANYWHERE {
                Some(true)
            } else {
                range.is_private().then_some(false)
            }
        }
        (Peer::Cidr(range), Address::Client) => {
            if *range == Ipv4Cidr::ANYWHERE {
                Some(true)
            } else {
                (!range.is_private()).then_some(false)
            }
        }
    }
}

/// Whether the rules of `group_ids` (inbound or outbound) let TCP to `port` through to or from
/// `party`. The first rule that surely does wins.
pub(super) fn admission<'a>(
    facts: &'a RegionFacts,
    group_ids: &[String],
    outbound: bool,
    port: u16,
    party: Party<'_>,
) -> Admission<'a> {
    if let crate::inventory::Listing::Failed(why) = &facts.security_groups {
        return Admission::Unknown(format!("the security groups were not read: {why}"));
    }
    let mut possibly = Vec::new();
    let mut missing = Vec::new();
    for id in group_ids {
        let Some(group) = facts.security_group(id) else {
            missing.push(id.as_str());
            continue;
        };
        let rules = if outbound {
            &group.egress
        } else {
            &group.ingress
        };
        for rule in rules.iter().filter(|rule| rule.covers_tcp(port)) {
            for peer in &rule.peers {
                match peer_takes(&peer.peer, party) {
                    Some(true) => return Admission::Admitted { group, peer },
                    Some(false) => possibly.push(format!(
                        "{} {} {port} {} {}",
                        group.label(),
                        if outbound { "lets" } else { "admits" },
                        if outbound { "out to" } else { "from" },
                        peer_text(peer)
                    )),
                    None => {}
                }
            }
        }
    }
    if !missing.is_empty() && possibly.is_empty() {
        return Admission::Unknown(format!(
            "security group {} was not found; refresh, or check that it still exists",
            missing.join(", ")
        ));
    }
    if possibly.is_empty() {
        Admission::Refused
    } else {
        Admission::Possibly(possibly)
    }
}

/// `sg-… ("description")`, `10.0.0.0/16`, `prefix list pl-…`.
pub(super) fn peer_text(peer: &RulePeer) -> String {
    let what = match &peer.peer {
        Peer::PrefixList(id) => format!("prefix list {id}"),
        other => other.to_string(),
    };
    match &peer.description {
        Some(description) => format!("{what} (\"{description}\")"),
        None => what,
    }
}

/// `sg-0abc (web), sg-0def (db)` for the groups of `ids`, by label when listed.
pub(super) fn group_labels(facts: &RegionFacts, ids: &[String]) -> String {
    ids.iter()
        .map(|id| {
            facts
                .security_group(id)
                .map_or_else(|| id.clone(), SecurityGroup::label)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `group sg-0abc (web)` or `groups sg-0abc (web), sg-0def (db)`.
pub(super) fn groups_phrase(facts: &RegionFacts, ids: &[String]) -> String {
    match ids.len() {
        0 => "no security groups".to_owned(),
        1 => format!("group {}", group_labels(facts, ids)),
        _ => format!("groups {}", group_labels(facts, ids)),
    }
}
