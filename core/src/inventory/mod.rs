//! Inventory: what each account holds in each region, as [`Host`]s and the facts routes are
//! decided from ([`RegionFacts`]: EC2 Instance Connect Endpoints, security groups, Systems
//! Manager registrations).
//!
//! The engine asks STS who each profile is ([`identify`]) and EC2 which regions the account has
//! enabled ([`enabled_regions`]), both in the profile's home region, then scans every region of
//! every account once ([`scan_region`]), whichever of its profiles it uses. A region scan pages
//! through `DescribeInstances` and `DescribeInstanceConnectEndpoints` at the same time, then
//! reads what those name: the AMIs (`DescribeImages`), the instances' and endpoints' security
//! groups (`DescribeSecurityGroups`), the endpoints' subnets (`DescribeSubnets`) and the
//! region's SSM managed instances (`DescribeInstanceInformation`). Only
//! `DescribeInstances` decides whether the scan works: a role that may list instances but not
//! the rest still shows its hosts, with a warning saying what is missing. Every call runs under
//! one [`CallBudget`] (calls in flight, time per call). AMI names and subnet ranges never change
//! once made, so what an earlier scan learned of them ([`KnownIds`]) is not asked again.
//!
//! The last inventory is kept on disk ([`InventoryCache`]) so the next start shows it at once.

mod account;
mod cache;
mod calls;
mod cidr;
mod ec2;
mod eic_endpoints;
mod host;
mod images;
mod search;
mod security_groups;
mod ssm;

pub use account::{account_alias, enabled_regions, identify};
pub use cache::{CachedRegion, InventoryCache, listing_order};
pub use calls::{CallBudget, CallFailure};
pub use cidr::{Ipv4Cidr, NotACidr};
pub use eic_endpoints::{EicEndpoint, EicEndpointState};
pub use host::{Host, HostImage, HostKey, InstanceState, KeyParts, Platform};
pub use search::HostQuery;
pub use security_groups::{Peer, RulePeer, RuleProtocol, SecurityGroup, SecurityGroupRule};
pub use ssm::{PingStatus, SsmInfo};

use std::collections::{BTreeSet, HashMap};

use aws_config::{Region, SdkConfig};
use serde::{Deserialize, Serialize};

/// The result of one listing call that may fail without failing the scan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Listing<T> {
    /// Everything listed, in the order AWS listed it.
    Listed(Vec<T>),
    /// The listing failed; the text says why and what to do.
    Failed(String),
}

/// One profile's view of the EC2 Instance Connect Endpoints of a region.
pub type EicEndpointListing = Listing<EicEndpoint>;

/// One account in one region: where instances live, and the unit a scan covers.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AccountRegion {
    pub account_id: String,
    pub region: String,
}

impl std::fmt::Display for AccountRegion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} in account {}", self.region, self.account_id)
    }
}

/// What a region scan learned besides the hosts: what routes to them are decided from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegionFacts {
    /// The profile whose credentials scanned the region.
    pub profile: String,
    /// Every endpoint in the region, in any state.
    pub eic_endpoints: Listing<EicEndpoint>,
    /// The security groups of the region's instances and endpoints.
    pub security_groups: Listing<SecurityGroup>,
    /// The region's instances with a registered SSM Agent.
    pub ssm: Listing<SsmInfo>,
}

impl RegionFacts {
    /// The security group `id`, when it was listed.
    pub fn security_group(&self, id: &str) -> Option<&SecurityGroup> {
        match &self.security_groups {
            Listing::Listed(groups) => groups.iter().find(|g| g.id == id),
            Listing::Failed(_) => None,
        }
    }
}

/// What one scan of an account and region found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegionScan {
    pub hosts: Vec<Host>,
    pub facts: RegionFacts,
    /// Parts of the scan that failed without failing it, each saying what is missing and why.
    pub warnings: Vec<String>,
    /// How many of those parts were refused for lack of an IAM permission: what another
    /// profile of the account may be allowed to read.
    pub denied: usize,
}

/// What earlier scans of a region learned that can never change for a given id: an AMI's name
/// is fixed when the AMI is registered, a subnet's IPv4 range when the subnet is created. A
/// scan asks EC2 only about ids it does not know yet, so a refresh repeats `DescribeImages`
/// and `DescribeSubnets` only when a new AMI or endpoint subnet has appeared.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KnownIds {
    pub image_names: HashMap<String, String>,
    pub subnet_cidrs: HashMap<String, Ipv4Cidr>,
}

impl KnownIds {
    /// What the last scan of a region (or the disk cache) holds.
    pub fn of_region(hosts: &[Host], facts: &RegionFacts) -> Self {
        let image_names = hosts
            .iter()
            .filter_map(|h| h.image.as_ref())
            .filter_map(|i| Some((i.id.clone(), i.name.clone()?)))
            .collect();
        let subnet_cidrs = match &facts.eic_endpoints {
            Listing::Listed(endpoints) => endpoints
                .iter()
                .filter_map(|e| Some((e.subnet_id.clone()?, e.subnet_cidr?)))
                .collect(),
            Listing::Failed(_) => HashMap::new(),
        };
        Self {
            image_names,
            subnet_cidrs,
        }
    }
}

/// Scans `region` of `account_id` with `profile`'s configuration (`sdk`, any region: the scan
/// sets its own), asking only about the AMIs and subnets `known` does not name. Fails only
/// when the instances cannot be listed.
pub async fn scan_region(
    sdk: &SdkConfig,
    calls: &CallBudget,
    profile: &str,
    account_id: &str,
    region: &str,
    known: &KnownIds,
) -> Result<RegionScan, CallFailure> {
    let sdk = sdk
        .to_builder()
        .region(Region::new(region.to_owned()))
        .build();
    let ec2 = aws_sdk_ec2::Client::new(&sdk);
    let (hosts, endpoints) = tokio::join!(
        ec2::describe_instances(&ec2, calls, profile, account_id, region),
        eic_endpoints::describe_endpoints(&ec2, calls, profile, account_id, region),
    );
    let mut hosts = hosts.map_err(|failure| CallFailure {
        message: format!("Could not list instances in {region}: {failure}"),
        ..failure
    })?;
    let mut warnings = Vec::new();
    let mut denied = 0;
    let mut count_denied = |failure: &CallFailure| denied += usize::from(failure.access_denied);
    if let Err(failure) = &endpoints {
        count_denied(failure);
    }
    let mut endpoints = endpoints.map_err(|failure| {
        let hint = if failure.access_denied {
            " Tunnels through EC2 Instance Connect need the IAM permission \
             ec2:DescribeInstanceConnectEndpoints."
        } else {
            ""
        };
        let warning =
            format!("Could not list EC2 Instance Connect Endpoints in {region}: {failure}.{hint}");
        warnings.push(warning.clone());
        warning
    });

    // What the instances and endpoints name, read at the same time.
    let images: BTreeSet<String> = hosts
        .iter()
        .filter_map(|h| h.image.as_ref().map(|i| i.id.clone()))
        .filter(|id| !known.image_names.contains_key(id))
        .collect();
    let endpoint_list = endpoints.as_deref().unwrap_or_default();
    let groups: BTreeSet<String> = hosts
        .iter()
        .flat_map(|h| &h.security_group_ids)
        .chain(endpoint_list.iter().flat_map(|e| &e.security_group_ids))
        .cloned()
        .collect();
    let subnets: BTreeSet<String> = endpoint_list
        .iter()
        .filter_map(|e| e.subnet_id.clone())
        .filter(|id| !known.subnet_cidrs.contains_key(id))
        .collect();
    let ssm = aws_sdk_ssm::Client::new(&sdk);
    let (image_names, groups, subnet_cidrs, managed) = tokio::join!(
        async {
            if images.is_empty() {
                return Ok(Default::default());
            }
            images::image_names(&ec2, calls, &images).await
        },
        async {
            if groups.is_empty() {
                return Ok(Vec::new());
            }
            security_groups::describe_security_groups(&ec2, calls, &groups).await
        },
        async {
            if subnets.is_empty() {
                return Ok(Default::default());
            }
            eic_endpoints::subnet_cidrs(&ec2, calls, &subnets).await
        },
        async {
            if hosts.is_empty() {
                return Ok(Vec::new());
            }
            ssm::describe_instance_information(&ssm, calls).await
        },
    );
    for failure in [
        image_names.as_ref().err(),
        groups.as_ref().err(),
        subnet_cidrs.as_ref().err(),
        managed.as_ref().err(),
    ]
    .into_iter()
    .flatten()
    {
        count_denied(failure);
    }
    for image in hosts.iter_mut().filter_map(|h| h.image.as_mut()) {
        image.name = known.image_names.get(&image.id).cloned();
    }
    if let Ok(endpoints) = &mut endpoints {
        for endpoint in endpoints {
            endpoint.subnet_cidr = endpoint
                .subnet_id
                .as_ref()
                .and_then(|id| known.subnet_cidrs.get(id))
                .copied();
        }
    }
    match image_names {
        Ok(names) => {
            for image in hosts.iter_mut().filter_map(|h| h.image.as_mut()) {
                if let Some(name) = names.get(&image.id) {
                    image.name = Some(name.clone());
                }
            }
        }
        Err(failure) => warnings.push(format!(
            "Could not read AMI names in {region}: {failure}. OS user names for EC2 Instance \
             Connect fall back to ec2-user unless set per host."
        )),
    }
    let security_groups = match groups {
        Ok(groups) => Listing::Listed(groups),
        Err(failure) => {
            let warning = format!(
                "Could not read security groups in {region}: {failure}. Routes cannot be \
                 checked before connecting; grant ec2:DescribeSecurityGroups to see why one \
                 would fail."
            );
            warnings.push(warning.clone());
            Listing::Failed(warning)
        }
    };
    let ssm = match managed {
        Ok(managed) => Listing::Listed(managed),
        Err(failure) => {
            let warning = format!(
                "Could not read Session Manager registrations in {region}: {failure}. Whether \
                 Session Manager can reach a host cannot be checked; grant \
                 ssm:DescribeInstanceInformation."
            );
            warnings.push(warning.clone());
            Listing::Failed(warning)
        }
    };
    match (subnet_cidrs, &mut endpoints) {
        (Ok(cidrs), Ok(endpoints)) => {
            for endpoint in endpoints {
                if let Some(cidr) = endpoint.subnet_id.as_ref().and_then(|id| cidrs.get(id)) {
                    endpoint.subnet_cidr = Some(*cidr);
                }
            }
        }
        (Err(failure), _) => warnings.push(format!(
            "Could not read the subnets of the EC2 Instance Connect Endpoints in {region}: \
             {failure}. Security group rules by address range cannot be checked; grant \
             ec2:DescribeSubnets."
        )),
        (Ok(_), Err(_)) => {}
    }
    Ok(RegionScan {
        hosts,
        facts: RegionFacts {
            profile: profile.to_owned(),
            eic_endpoints: match endpoints {
                Ok(endpoints) => Listing::Listed(endpoints),
                Err(warning) => Listing::Failed(warning),
            },
            security_groups,
            ssm,
        },
        warnings,
        denied,
    })
}
