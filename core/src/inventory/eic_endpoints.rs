//! EC2 Instance Connect Endpoints (`eice-…`): the model, `DescribeInstanceConnectEndpoints`,
//! and `DescribeSubnets` for the endpoints' subnets.
//!
//! Every endpoint is listed, whatever its state, so that a user can be told why a VPC has no
//! usable one ("eice-… is create-in-progress"); which endpoint carries a tunnel is decided by
//! [`crate::eic::choose_endpoint`]. Without client IP preservation an instance sees the
//! endpoint's own address, somewhere in the endpoint's subnet, so the subnet's range is what a
//! security group rule by CIDR must admit.

use std::collections::{BTreeSet, HashMap};

use aws_sdk_ec2::types::{Ec2InstanceConnectEndpoint, Filter};
use serde::{Deserialize, Serialize};

use super::calls::{CallBudget, CallFailure};
use super::cidr::Ipv4Cidr;

/// One EC2 Instance Connect Endpoint, with where it was found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EicEndpoint {
    /// `eice-…`.
    pub id: String,
    pub state: EicEndpointState,
    pub vpc_id: Option<String>,
    pub subnet_id: Option<String>,
    /// The range of the endpoint's subnet, where its network interface's address is; `None`
    /// until `DescribeSubnets` has answered.
    #[serde(default)]
    pub subnet_cidr: Option<Ipv4Cidr>,
    /// What tunnels connect to (`eice-….ec2-instance-connect-endpoint.<region>.amazonaws.com`).
    pub dns_name: Option<String>,
    /// The FIPS host name, used instead of `dns_name` when FIPS endpoints are asked for.
    pub fips_dns_name: Option<String>,
    pub security_group_ids: Vec<String>,
    /// Whether the instance sees the client's IP rather than the endpoint's.
    pub preserve_client_ip: bool,
    /// The profile the endpoint was listed through.
    pub profile: String,
    pub account_id: String,
    pub region: String,
}

/// An endpoint's lifecycle state, in EC2's words.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EicEndpointState {
    CreateInProgress,
    CreateComplete,
    CreateFailed,
    DeleteInProgress,
    DeleteComplete,
    DeleteFailed,
    UpdateInProgress,
    UpdateComplete,
    UpdateFailed,
    /// A state this version does not know, kept verbatim.
    Other(String),
}

impl EicEndpointState {
    const KNOWN: [(&'static str, EicEndpointState); 9] = [
        ("create-in-progress", Self::CreateInProgress),
        ("create-complete", Self::CreateComplete),
        ("create-failed", Self::CreateFailed),
        ("delete-in-progress", Self::DeleteInProgress),
        ("delete-complete", Self::DeleteComplete),
        ("delete-failed", Self::DeleteFailed),
        ("update-in-progress", Self::UpdateInProgress),
        ("update-complete", Self::UpdateComplete),
        ("update-failed", Self::UpdateFailed),
    ];

    /// Parses EC2's state name; unknown names are kept as [`EicEndpointState::Other`].
    pub fn from_ec2(name: &str) -> Self {
        Self::KNOWN
            .iter()
            .find(|(known, _)| *known == name)
            .map_or_else(|| Self::Other(name.to_owned()), |(_, state)| state.clone())
    }

    /// EC2's name for the state.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Other(name) => name,
            known => Self::KNOWN
                .iter()
                .find(|(_, state)| state == known)
                .map_or("unknown", |(name, _)| name),
        }
    }

    /// Whether the endpoint accepts tunnels: the states the AWS CLI filters on. An update
    /// (finished, failed or under way) leaves a created endpoint working (aws-cli #9715).
    pub fn accepts_tunnels(&self) -> bool {
        matches!(
            self,
            Self::CreateComplete
                | Self::UpdateInProgress
                | Self::UpdateComplete
                | Self::UpdateFailed
        )
    }
}

impl std::fmt::Display for EicEndpointState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Every endpoint in the client's region, all pages, in the order EC2 returns them.
pub(super) async fn describe_endpoints(
    ec2: &aws_sdk_ec2::Client,
    calls: &CallBudget,
    profile: &str,
    account_id: &str,
    region: &str,
) -> Result<Vec<EicEndpoint>, CallFailure> {
    let mut pages = ec2
        .describe_instance_connect_endpoints()
        .max_results(50)
        .into_paginator()
        .send();
    let mut endpoints = Vec::new();
    while let Some(page) = calls.page(pages.next()).await? {
        endpoints.extend(
            page.instance_connect_endpoints()
                .iter()
                .filter_map(|e| to_endpoint(e, profile, account_id, region)),
        );
    }
    Ok(endpoints)
}

/// The ranges of the subnets among `ids` that exist, by subnet id.
pub(super) async fn subnet_cidrs(
    ec2: &aws_sdk_ec2::Client,
    calls: &CallBudget,
    ids: &BTreeSet<String>,
) -> Result<HashMap<String, Ipv4Cidr>, CallFailure> {
    let ids: Vec<String> = ids.iter().cloned().collect();
    let mut cidrs = HashMap::new();
    // EC2 accepts at most 200 values in one filter.
    for chunk in ids.chunks(200) {
        let by_id = Filter::builder()
            .name("subnet-id")
            .set_values(Some(chunk.to_vec()))
            .build();
        let mut pages = ec2
            .describe_subnets()
            .filters(by_id)
            .max_results(1000)
            .into_paginator()
            .send();
        while let Some(page) = calls.page(pages.next()).await? {
            for subnet in page.subnets() {
                if let (Some(id), Some(Ok(cidr))) = (
                    subnet.subnet_id(),
                    subnet.cidr_block().map(str::parse::<Ipv4Cidr>),
                ) {
                    cidrs.insert(id.to_owned(), cidr);
                }
            }
        }
    }
    Ok(cidrs)
}

fn to_endpoint(
    endpoint: &Ec2InstanceConnectEndpoint,
    profile: &str,
    account_id: &str,
    region: &str,
) -> Option<EicEndpoint> {
    let non_empty = |s: Option<&str>| s.filter(|s| !s.is_empty()).map(str::to_owned);
    Some(EicEndpoint {
        id: endpoint.instance_connect_endpoint_id()?.to_owned(),
        state: EicEndpointState::from_ec2(endpoint.state()?.as_str()),
        vpc_id: non_empty(endpoint.vpc_id()),
        subnet_id: non_empty(endpoint.subnet_id()),
        subnet_cidr: None,
        dns_name: non_empty(endpoint.dns_name()),
        fips_dns_name: non_empty(endpoint.fips_dns_name()),
        security_group_ids: endpoint.security_group_ids().to_vec(),
        preserve_client_ip: endpoint.preserve_client_ip().unwrap_or(false),
        profile: profile.to_owned(),
        account_id: endpoint.owner_id().unwrap_or(account_id).to_owned(),
        region: region.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ec2::types::Ec2InstanceConnectEndpointState as SdkState;

    #[test]
    fn every_known_state_round_trips_and_unknown_ones_are_kept() {
        for (name, state) in EicEndpointState::KNOWN {
            assert_eq!(EicEndpointState::from_ec2(name), state);
            assert_eq!(state.as_str(), name);
        }
        let odd = EicEndpointState::from_ec2("paused");
        assert_eq!(odd, EicEndpointState::Other("paused".into()));
        assert_eq!(odd.to_string(), "paused");
        assert!(!odd.accepts_tunnels());
    }

    #[test]
    fn only_created_or_updating_endpoints_accept_tunnels() {
        let accepting: Vec<_> = EicEndpointState::KNOWN
            .iter()
            .filter(|(_, s)| s.accepts_tunnels())
            .map(|(name, _)| *name)
            .collect();
        assert_eq!(
            accepting,
            [
                "create-complete",
                "update-in-progress",
                "update-complete",
                "update-failed"
            ]
        );
    }

    #[test]
    fn sdk_endpoints_map_with_empty_strings_as_absent() {
        let sdk = Ec2InstanceConnectEndpoint::builder()
            .instance_connect_endpoint_id("eice-1")
            .state(SdkState::UpdateComplete)
            .vpc_id("vpc-1")
            .subnet_id("subnet-1")
            .dns_name("eice-1.x.ec2-instance-connect-endpoint.us-east-1.amazonaws.com")
            .fips_dns_name("")
            .security_group_ids("sg-1")
            .preserve_client_ip(true)
            .build();
        let mapped = to_endpoint(&sdk, "prod", "111122223333", "us-east-1").unwrap();
        assert_eq!(mapped.state, EicEndpointState::UpdateComplete);
        assert_eq!(mapped.fips_dns_name, None);
        assert_eq!(mapped.security_group_ids, ["sg-1"]);
        assert!(mapped.preserve_client_ip);
        assert_eq!(
            (mapped.profile.as_str(), mapped.account_id.as_str()),
            ("prod", "111122223333")
        );
    }
}
