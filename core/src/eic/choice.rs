//! Which EC2 Instance Connect Endpoint carries a tunnel to an instance (spec `eic.md` §3.3).
//!
//! Pure functions over the inventory, so every rule is a table test:
//! - an endpoint id the user named wins, whatever its VPC (as in the AWS CLI), if it is usable;
//! - otherwise only endpoints in the instance's VPC count, and only in a state that accepts
//!   tunnels (`create-complete` and the `update-*` states, aws-cli #9715);
//! - among those, the one in the instance's own subnet wins (no cross-AZ data charges), else the
//!   first one EC2 listed;
//! - with FIPS asked for, the host name is the endpoint's `FipsDnsName`, and an endpoint without
//!   one is an error rather than a silent fall back to the non-FIPS name.
//!
//! When nothing fits, [`NoEndpoint`] says why in words a user can act on.

use std::fmt;

use crate::inventory::EicEndpoint;

/// What the choice needs to know about the target instance and the user's wishes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EndpointQuery<'a> {
    pub vpc_id: Option<&'a str>,
    pub subnet_id: Option<&'a str>,
    /// An endpoint the user named (`eice-…`); it wins over the VPC rules.
    pub endpoint_id: Option<&'a str>,
    /// Use `FipsDnsName` (`use_fips_endpoint` / `AWS_USE_FIPS_ENDPOINT`).
    pub fips: bool,
}

/// The chosen endpoint and the host name to connect to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChosenEndpoint<'a> {
    pub endpoint: &'a EicEndpoint,
    /// `DnsName`, or `FipsDnsName` when FIPS was asked for.
    pub dns_name: &'a str,
}

/// Why no endpoint can carry the tunnel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoEndpoint {
    /// The named endpoint is not among those listed.
    NamedNotFound { endpoint_id: String },
    /// The instance reports no VPC, so no endpoint can reach it.
    NoVpc,
    /// No endpoint in the VPC accepts tunnels; `unusable` lists those that exist, with state.
    NoneInVpc {
        vpc_id: String,
        unusable: Vec<(String, String)>,
    },
    /// The endpoint exists but is not in a state that accepts tunnels.
    NotAccepting { endpoint_id: String, state: String },
    /// FIPS was asked for and the endpoint has no `FipsDnsName`.
    NoFipsName { endpoint_id: String },
    /// The endpoint has no `DnsName` (EC2 always reports one for a working endpoint).
    NoDnsName { endpoint_id: String },
}

impl fmt::Display for NoEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NamedNotFound { endpoint_id } => write!(
                f,
                "there is no EC2 Instance Connect Endpoint {endpoint_id} in this profile's \
                 region; check the endpoint id, or refresh if it was created just now"
            ),
            Self::NoVpc => f.write_str(
                "the instance reports no VPC, so no EC2 Instance Connect Endpoint can reach it",
            ),
            Self::NoneInVpc { vpc_id, unusable } if unusable.is_empty() => write!(
                f,
                "no EC2 Instance Connect Endpoint in {vpc_id} (create one in that VPC, or \
                 connect another way)"
            ),
            Self::NoneInVpc { vpc_id, unusable } => {
                let states: Vec<String> = unusable
                    .iter()
                    .map(|(id, state)| format!("{id} is {state}"))
                    .collect();
                write!(
                    f,
                    "no usable EC2 Instance Connect Endpoint in {vpc_id} ({}; tunnels need \
                     create-complete or an update state)",
                    states.join(", ")
                )
            }
            Self::NotAccepting { endpoint_id, state } => write!(
                f,
                "the EC2 Instance Connect Endpoint {endpoint_id} is {state}; it accepts tunnels \
                 only when create-complete or in an update state"
            ),
            Self::NoFipsName { endpoint_id } => write!(
                f,
                "Unable to find FIPS Endpoint: {endpoint_id} has no FIPS DNS name; turn off \
                 use_fips_endpoint (or AWS_USE_FIPS_ENDPOINT) or use a region with FIPS endpoints"
            ),
            Self::NoDnsName { endpoint_id } => write!(
                f,
                "the EC2 Instance Connect Endpoint {endpoint_id} reports no DNS name; refresh, \
                 and check the endpoint in the EC2 console"
            ),
        }
    }
}

impl std::error::Error for NoEndpoint {}

/// Chooses the endpoint for `query` among `endpoints` (one profile's listing, in EC2's order).
pub fn choose_endpoint<'a>(
    endpoints: &'a [EicEndpoint],
    query: &EndpointQuery<'_>,
) -> Result<ChosenEndpoint<'a>, NoEndpoint> {
    let endpoint =
        match query.endpoint_id {
            Some(id) => {
                let named = endpoints.iter().find(|e| e.id == id).ok_or_else(|| {
                    NoEndpoint::NamedNotFound {
                        endpoint_id: id.to_owned(),
                    }
                })?;
                if !named.state.accepts_tunnels() {
                    return Err(NoEndpoint::NotAccepting {
                        endpoint_id: named.id.clone(),
                        state: named.state.to_string(),
                    });
                }
                named
            }
            None => {
                let vpc_id = query.vpc_id.ok_or(NoEndpoint::NoVpc)?;
                let in_vpc = || {
                    endpoints
                        .iter()
                        .filter(move |e| e.vpc_id.as_deref() == Some(vpc_id))
                };
                let usable: Vec<&EicEndpoint> =
                    in_vpc().filter(|e| e.state.accepts_tunnels()).collect();
                let same_subnet = query.subnet_id.and_then(|subnet| {
                    usable
                        .iter()
                        .find(|e| e.subnet_id.as_deref() == Some(subnet))
                });
                match same_subnet.or(usable.first()) {
                    Some(endpoint) => *endpoint,
                    None => {
                        return Err(NoEndpoint::NoneInVpc {
                            vpc_id: vpc_id.to_owned(),
                            unusable: in_vpc()
                                .map(|e| (e.id.clone(), e.state.to_string()))
                                .collect(),
                        });
                    }
                }
            }
        };
    let dns_name = if query.fips {
        endpoint
            .fips_dns_name
            .as_deref()
            .ok_or_else(|| NoEndpoint::NoFipsName {
                endpoint_id: endpoint.id.clone(),
            })?
    } else {
        endpoint
            .dns_name
            .as_deref()
            .ok_or_else(|| NoEndpoint::NoDnsName {
                endpoint_id: endpoint.id.clone(),
            })?
    };
    Ok(ChosenEndpoint { endpoint, dns_name })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::EicEndpointState;

    fn endpoint(id: &str, vpc: &str, subnet: &str, state: &str) -> EicEndpoint {
        EicEndpoint {
            id: id.into(),
            state: EicEndpointState::from_ec2(state),
            vpc_id: Some(vpc.into()),
            subnet_id: Some(subnet.into()),
            subnet_cidr: None,
            dns_name: Some(format!(
                "{id}.abc.ec2-instance-connect-endpoint.us-east-1.amazonaws.com"
            )),
            fips_dns_name: Some(format!(
                "{id}.abc.fips.ec2-instance-connect-endpoint.us-east-1.amazonaws.com"
            )),
            security_group_ids: vec![],
            preserve_client_ip: false,
            profile: "prod".into(),
            account_id: "111122223333".into(),
            region: "us-east-1".into(),
        }
    }

    fn inventory() -> Vec<EicEndpoint> {
        vec![
            endpoint("eice-other-vpc", "vpc-b", "subnet-b1", "create-complete"),
            endpoint("eice-a2", "vpc-a", "subnet-a2", "create-complete"),
            endpoint(
                "eice-a1-deleting",
                "vpc-a",
                "subnet-a1",
                "delete-in-progress",
            ),
            endpoint("eice-a1", "vpc-a", "subnet-a1", "update-in-progress"),
            endpoint("eice-a3", "vpc-a", "subnet-a3", "update-failed"),
            endpoint("eice-c-new", "vpc-c", "subnet-c1", "create-in-progress"),
            endpoint("eice-c-dead", "vpc-c", "subnet-c1", "create-failed"),
        ]
    }

    fn query<'a>(vpc: Option<&'a str>, subnet: Option<&'a str>) -> EndpointQuery<'a> {
        EndpointQuery {
            vpc_id: vpc,
            subnet_id: subnet,
            ..EndpointQuery::default()
        }
    }

    #[test]
    fn the_vpc_rules_pick_the_expected_endpoint() {
        let endpoints = inventory();
        // (vpc, subnet, expected id)
        let table: &[(Option<&str>, Option<&str>, &str)] = &[
            // Same subnet wins over an earlier endpoint elsewhere in the VPC, even mid-update.
            (Some("vpc-a"), Some("subnet-a1"), "eice-a1"),
            (Some("vpc-a"), Some("subnet-a3"), "eice-a3"),
            // No endpoint in the subnet: the first usable one in the VPC.
            (Some("vpc-a"), Some("subnet-a9"), "eice-a2"),
            (Some("vpc-a"), None, "eice-a2"),
            // Another VPC's endpoint is never used by the VPC rules.
            (Some("vpc-b"), Some("subnet-b7"), "eice-other-vpc"),
        ];
        for (vpc, subnet, expected) in table {
            let chosen = choose_endpoint(&endpoints, &query(*vpc, *subnet))
                .unwrap_or_else(|e| panic!("{vpc:?}/{subnet:?}: {e}"));
            assert_eq!(chosen.endpoint.id, *expected, "{vpc:?}/{subnet:?}");
            assert!(chosen.dns_name.starts_with(expected), "{}", chosen.dns_name);
            assert!(!chosen.dns_name.contains(".fips."));
        }
    }

    #[test]
    fn failures_say_why_in_words_a_user_can_act_on() {
        let endpoints = inventory();
        let table: &[(EndpointQuery<'_>, &str)] = &[
            (
                query(Some("vpc-z"), Some("subnet-z1")),
                "no EC2 Instance Connect Endpoint in vpc-z (create one in that VPC",
            ),
            (
                query(Some("vpc-c"), Some("subnet-c1")),
                "no usable EC2 Instance Connect Endpoint in vpc-c (eice-c-new is \
                 create-in-progress, eice-c-dead is create-failed;",
            ),
            (query(None, Some("subnet-a1")), "reports no VPC"),
            (
                EndpointQuery {
                    endpoint_id: Some("eice-nope"),
                    ..query(Some("vpc-a"), None)
                },
                "no EC2 Instance Connect Endpoint eice-nope in this profile's region",
            ),
            (
                EndpointQuery {
                    endpoint_id: Some("eice-a1-deleting"),
                    ..query(Some("vpc-a"), None)
                },
                "eice-a1-deleting is delete-in-progress",
            ),
        ];
        for (q, expected) in table {
            let error = choose_endpoint(&endpoints, q).unwrap_err().to_string();
            assert!(error.contains(expected), "{q:?}: {error}");
        }
    }

    #[test]
    fn a_named_endpoint_wins_even_outside_the_instance_vpc() {
        let endpoints = inventory();
        let chosen = choose_endpoint(
            &endpoints,
            &EndpointQuery {
                endpoint_id: Some("eice-other-vpc"),
                ..query(Some("vpc-a"), Some("subnet-a1"))
            },
        )
        .unwrap();
        assert_eq!(chosen.endpoint.id, "eice-other-vpc");
    }

    #[test]
    fn fips_uses_the_fips_dns_name_and_fails_clearly_without_one() {
        let mut endpoints = inventory();
        let fips = EndpointQuery {
            fips: true,
            ..query(Some("vpc-a"), Some("subnet-a1"))
        };
        let chosen = choose_endpoint(&endpoints, &fips).unwrap();
        assert_eq!(
            chosen.dns_name,
            "eice-a1.abc.fips.ec2-instance-connect-endpoint.us-east-1.amazonaws.com"
        );

        endpoints[3].fips_dns_name = None;
        let error = choose_endpoint(&endpoints, &fips).unwrap_err();
        assert_eq!(
            error,
            NoEndpoint::NoFipsName {
                endpoint_id: "eice-a1".into()
            }
        );
        assert!(
            error
                .to_string()
                .starts_with("Unable to find FIPS Endpoint")
        );
        // Without FIPS the same endpoint is fine.
        assert!(
            choose_endpoint(
                &endpoints,
                &EndpointQuery {
                    fips: false,
                    ..fips
                }
            )
            .is_ok()
        );
    }

    #[test]
    fn an_endpoint_without_a_dns_name_is_reported_not_skipped() {
        let mut endpoints = inventory();
        endpoints[3].dns_name = None;
        assert_eq!(
            choose_endpoint(&endpoints, &query(Some("vpc-a"), Some("subnet-a1"))),
            Err(NoEndpoint::NoDnsName {
                endpoint_id: "eice-a1".into()
            })
        );
    }
}
