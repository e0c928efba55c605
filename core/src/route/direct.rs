//! The direct route: the host's public IPv4, with a security group admitting the port from the
//! internet. The user's own address is not known here, so a rule for `0.0.0.0/0` makes it ready
//! and one for a narrower public range only possible; private ranges and groups never admit an
//! address on the internet.

use std::net::Ipv4Addr;

use super::rules::{Address, Admission, Party, admission, group_labels, peer_text};
use super::{Findings, Method, RouteVerdict, Verdict};
use crate::inventory::{Host, RegionFacts};

pub(super) fn assess(host: &Host, port: u16, facts: Option<&RegionFacts>) -> RouteVerdict {
    let mut found = Findings::new(Method::Direct);
    let Some(public_ip) = host
        .public_ip
        .as_deref()
        .and_then(|ip| ip.parse::<Ipv4Addr>().ok())
    else {
        found.note(
            Verdict::Blocked,
            format!("{} has no public IPv4 address", host.display_name()),
        );
        return found.done();
    };
    let Some(facts) = facts else {
        found.note(
            Verdict::Unsure,
            format!(
                "public IP {public_ip}, but {} has not been scanned yet, so its security groups \
                 are not known",
                host.region
            ),
        );
        return found.done();
    };
    let from_you = Party {
        address: Address::Client,
        groups: &[],
    };
    match admission(facts, &host.security_group_ids, false, port, from_you) {
        Admission::Admitted { group, peer } => found.note(
            Verdict::Ready,
            format!(
                "public IP {public_ip}; {} admits {port} from {}",
                group.label(),
                peer_text(peer)
            ),
        ),
        Admission::Possibly(rules) => found.note(
            Verdict::Unsure,
            format!(
                "public IP {public_ip}, but only {}; that works if your address is in it",
                rules.join("; ")
            ),
        ),
        Admission::Refused => found.note(
            Verdict::Blocked,
            format!(
                "public IP {public_ip}, but {} {} no inbound {port} from the internet",
                group_labels(facts, &host.security_group_ids),
                if host.security_group_ids.len() == 1 {
                    "has"
                } else {
                    "have"
                }
            ),
        ),
        Admission::Unknown(why) => found.note(
            Verdict::Unsure,
            format!("public IP {public_ip}, but cannot tell whether {port} is open: {why}"),
        ),
    }
    found.done()
}
