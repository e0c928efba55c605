//! The EC2 Instance Connect Endpoint route (spec `eic.md` §3.3, §5): a usable endpoint in the
//! host's VPC, a private IPv4 to tunnel to, the endpoint's security groups letting the port out
//! to the host, and the host's letting it in — from the endpoint's groups, or from its address
//! (somewhere in its subnet), or, when the endpoint preserves client IPs, from the user's own.

use std::net::Ipv4Addr;

use super::rules::{Address, Admission, Party, admission, group_labels, groups_phrase, peer_text};
use super::{Findings, Method, RouteVerdict, Verdict};
use crate::eic::{EndpointQuery, choose_endpoint};
use crate::inventory::{Host, Listing, Peer, RegionFacts};

pub(super) fn assess(host: &Host, port: u16, facts: Option<&RegionFacts>) -> RouteVerdict {
    let mut found = Findings::new(Method::Eic);
    let Some(facts) = facts else {
        found.note(
            Verdict::Unsure,
            format!(
                "{} has not been scanned yet, so its EC2 Instance Connect Endpoints are not known",
                host.region
            ),
        );
        return found.done();
    };
    let endpoints = match &facts.eic_endpoints {
        Listing::Listed(endpoints) => endpoints,
        Listing::Failed(why) => {
            found.note(Verdict::Unsure, why.clone());
            return found.done();
        }
    };
    let query = EndpointQuery {
        vpc_id: host.vpc_id.as_deref(),
        subnet_id: host.subnet_id.as_deref(),
        ..EndpointQuery::default()
    };
    let endpoint = match choose_endpoint(endpoints, &query) {
        Ok(chosen) => chosen.endpoint,
        Err(no_endpoint) => {
            found.note(Verdict::Blocked, no_endpoint.to_string());
            return found.done();
        }
    };
    let id = &endpoint.id;
    found.note(
        Verdict::Ready,
        format!(
            "the endpoint for {} is {id} in {} ({})",
            host.vpc_id.as_deref().unwrap_or("the host's VPC"),
            endpoint.subnet_id.as_deref().unwrap_or("an unknown subnet"),
            endpoint.state
        ),
    );
    let Some(private_ip) = host
        .private_ip
        .as_deref()
        .and_then(|ip| ip.parse::<Ipv4Addr>().ok())
    else {
        found.note(
            Verdict::Blocked,
            format!(
                "{} has no private IPv4 address, and EC2 Instance Connect Endpoints reach \
                 instances only by private IPv4",
                host.display_name()
            ),
        );
        return found.done();
    };
    let endpoint_groups = groups_phrase(facts, &endpoint.security_group_ids);
    let instance_groups = groups_phrase(facts, &host.security_group_ids);

    // Out of the endpoint, to the instance.
    let to_instance = Party {
        address: Address::Exact(private_ip),
        groups: &host.security_group_ids,
    };
    match admission(facts, &endpoint.security_group_ids, true, port, to_instance) {
        Admission::Admitted { group, peer } => found.note(
            Verdict::Ready,
            format!("{} lets {port} out to {}", group.label(), peer_text(peer)),
        ),
        Admission::Possibly(rules) => found.note(
            Verdict::Unsure,
            format!("{id} may not reach {private_ip}: only {}", rules.join("; ")),
        ),
        Admission::Refused => found.note(
            Verdict::Blocked,
            format!(
                "{id}'s {endpoint_groups} {} no outbound {port} to {private_ip} or to the \
                 instance's {instance_groups}; add an outbound rule for TCP {port}",
                has(&endpoint.security_group_ids)
            ),
        ),
        Admission::Unknown(why) => found.note(
            Verdict::Unsure,
            format!("cannot tell whether {id} lets {port} out: {why}"),
        ),
    }

    // Into the instance, from the endpoint.
    let from_endpoint = Party {
        address: if endpoint.preserve_client_ip {
            Address::Client
        } else {
            Address::InSubnet(endpoint.subnet_cidr)
        },
        groups: &endpoint.security_group_ids,
    };
    let the_instance_groups = group_labels(facts, &host.security_group_ids);
    match admission(facts, &host.security_group_ids, false, port, from_endpoint) {
        Admission::Admitted { group, peer } => {
            let which = match (&peer.peer, endpoint.preserve_client_ip) {
                (Peer::Group(_), _) => format!(", {id}'s group"),
                (_, true) => ", any address".to_owned(),
                (_, false) => match endpoint.subnet_cidr {
                    Some(subnet) => format!(", which holds {id}'s subnet {subnet}"),
                    None => format!(", which holds every address of {id}"),
                },
            };
            found.note(
                Verdict::Ready,
                format!(
                    "{} admits {port} from {}{which}",
                    group.label(),
                    peer_text(peer)
                ),
            );
        }
        Admission::Possibly(rules) if endpoint.preserve_client_ip => found.note(
            Verdict::Unsure,
            format!(
                "{id} preserves client IPs, so the instance sees your own address, and only {}; \
                 that works if your address is in it (or admit {port} from {id}'s group)",
                rules.join("; ")
            ),
        ),
        Admission::Possibly(rules) => found.note(
            Verdict::Unsure,
            format!(
                "{id}'s address ({}) may not be admitted: only {}; admit {port} from {id}'s \
                 group to be sure",
                endpoint
                    .subnet_cidr
                    .map_or_else(|| "subnet not read".to_owned(), |c| format!("in {c}")),
                rules.join("; ")
            ),
        ),
        Admission::Refused => found.note(
            Verdict::Blocked,
            format!(
                "{the_instance_groups} {} no inbound {port} from {id}'s {endpoint_groups}{}; \
                 add an inbound rule for TCP {port} from that group",
                has(&host.security_group_ids),
                if endpoint.preserve_client_ip {
                    " or from your address (it preserves client IPs)"
                } else {
                    ""
                }
            ),
        ),
        Admission::Unknown(why) => found.note(
            Verdict::Unsure,
            format!(
                "cannot tell whether {} admits {port}: {why}",
                host.display_name()
            ),
        ),
    }
    found.done()
}

fn has(groups: &[String]) -> &'static str {
    if groups.len() == 1 { "has" } else { "have" }
}
