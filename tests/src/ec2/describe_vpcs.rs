//! `DescribeVpcs` and `DescribeSubnets`: the caller's networks in the signed region. The
//! product reads them to explain routes ("EIC endpoint eice-… in vpc-… (prod-core)").
//!
//! Element names as aws-sdk-ec2 parses them: `vpcSet/item/{vpcId, cidrBlock, state, ownerId,
//! isDefault, instanceTenancy, dhcpOptionsId, cidrBlockAssociationSet, tagSet}` and
//! `subnetSet/item/{subnetId, vpcId, cidrBlock, availabilityZone, availabilityZoneId,
//! availableIpAddressCount, defaultForAz, mapPublicIpOnLaunch, state, ownerId, subnetArn, tagSet}`.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use super::XMLNS;
use super::describe::{Describe, Spec, ids_do_not_exist};
use super::filter::{Filterable, tag_filter_values};
use crate::error::AwsError;
use crate::scenario::{Subnet, Vpc};
use crate::service::QueryCall;
use crate::xml::XmlWriter;

const VPC_SPEC: Spec = Spec {
    parameters: &[
        "Action",
        "Version",
        "DryRun",
        "VpcId.#",
        "Filter.#.Name",
        "Filter.#.Value.#",
        "MaxResults",
        "NextToken",
    ],
    id_parameter: "VpcId",
    id_prefix: "vpc",
    malformed_code: "InvalidVpcID.Malformed",
    not_found_code: "InvalidVpcID.NotFound",
    not_found: |ids| ids_do_not_exist("vpc", ids),
    filters: &[
        "vpc-id",
        "cidr",
        "cidr-block-association.cidr-block",
        "is-default",
        "owner-id",
        "state",
        "tag-key",
        "tag-value",
    ],
    max_results: 5..=1000,
    max_results_with_ids: false,
};

const SUBNET_SPEC: Spec = Spec {
    parameters: &[
        "Action",
        "Version",
        "DryRun",
        "SubnetId.#",
        "Filter.#.Name",
        "Filter.#.Value.#",
        "MaxResults",
        "NextToken",
    ],
    id_parameter: "SubnetId",
    id_prefix: "subnet",
    malformed_code: "InvalidSubnetID.Malformed",
    not_found_code: "InvalidSubnetID.NotFound",
    not_found: |ids| ids_do_not_exist("subnet", ids),
    filters: &[
        "subnet-id",
        "vpc-id",
        "cidr-block",
        "availability-zone",
        "owner-id",
        "state",
        "tag-key",
        "tag-value",
    ],
    max_results: 5..=1000,
    max_results_with_ids: false,
};

impl Filterable for &Vpc {
    fn filter_values(&self, name: &str) -> Vec<String> {
        if let Some(values) = tag_filter_values(name, &name_tags(self.name.as_deref())) {
            return values;
        }
        match name {
            "vpc-id" => vec![self.id.clone()],
            "cidr" | "cidr-block-association.cidr-block" => vec![self.cidr.to_string()],
            "is-default" => vec!["false".to_owned()],
            "owner-id" => vec![self.account.clone()],
            "state" => vec!["available".to_owned()],
            _ => vec![],
        }
    }
}

/// A subnet with the account that owns it (through its VPC).
#[derive(Clone, Copy)]
struct OwnedSubnet<'a> {
    subnet: &'a Subnet,
    vpc: &'a Vpc,
}

impl Filterable for OwnedSubnet<'_> {
    fn filter_values(&self, name: &str) -> Vec<String> {
        let subnet = self.subnet;
        if let Some(values) = tag_filter_values(name, &name_tags(subnet.name.as_deref())) {
            return values;
        }
        match name {
            "subnet-id" => vec![subnet.id.clone()],
            "vpc-id" => vec![subnet.vpc.clone()],
            "cidr-block" => vec![subnet.cidr.to_string()],
            "availability-zone" => vec![subnet.availability_zone.clone()],
            "owner-id" => vec![self.vpc.account.clone()],
            "state" => vec!["available".to_owned()],
            _ => vec![],
        }
    }
}

pub fn describe_vpcs(call: &QueryCall<'_>) -> Result<String, AwsError> {
    let request = Describe::parse(call, &VPC_SPEC)?;
    let visible = call
        .scenario
        .vpcs_in(call.caller.account(), call.caller.region)
        .map(|vpc| (vpc.id.as_str(), vpc))
        .collect();
    let selected = request.select(visible, &VPC_SPEC)?;
    let (page, next_token) = request.page(&selected)?;
    Ok(XmlWriter::document("DescribeVpcsResponse", XMLNS, |w| {
        w.text("requestId", call.request_id);
        w.element("vpcSet", |w| {
            for vpc in page {
                w.element("item", |w| {
                    w.text("vpcId", &vpc.id)
                        .text("ownerId", &vpc.account)
                        .text("state", "available")
                        .text("cidrBlock", vpc.cidr)
                        .text("dhcpOptionsId", dhcp_options_id(&vpc.account, &vpc.region))
                        .text("instanceTenancy", "default")
                        .text("isDefault", false);
                    w.element("cidrBlockAssociationSet", |w| {
                        w.element("item", |w| {
                            w.text("cidrBlock", vpc.cidr)
                                .text("associationId", derived_id("vpc-cidr-assoc", &vpc.id));
                            w.element("cidrBlockState", |w| {
                                w.text("state", "associated");
                            });
                        });
                    });
                    write_name_tag(w, vpc.name.as_deref());
                });
            }
        });
        w.optional_text("nextToken", next_token.as_deref());
    }))
}

pub fn describe_subnets(call: &QueryCall<'_>) -> Result<String, AwsError> {
    let request = Describe::parse(call, &SUBNET_SPEC)?;
    let scenario = call.scenario;
    let visible = scenario
        .subnets
        .iter()
        .filter_map(|subnet| {
            let vpc = scenario.vpc_in(&subnet.vpc, call.caller.account(), call.caller.region)?;
            Some((subnet.id.as_str(), OwnedSubnet { subnet, vpc }))
        })
        .collect();
    let selected = request.select(visible, &SUBNET_SPEC)?;
    let (page, next_token) = request.page(&selected)?;
    Ok(XmlWriter::document("DescribeSubnetsResponse", XMLNS, |w| {
        w.text("requestId", call.request_id);
        w.element("subnetSet", |w| {
            for OwnedSubnet { subnet, vpc } in page {
                let instances = scenario
                    .instances
                    .iter()
                    .filter(|instance| instance.subnet == subnet.id)
                    .count();
                // AWS reserves five addresses of every subnet.
                let size = 1u64 << (32 - u32::from(subnet.cidr.prefix_len));
                let available = size.saturating_sub(5 + instances as u64);
                w.element("item", |w| {
                    w.text("subnetId", &subnet.id)
                        .text(
                            "subnetArn",
                            format!(
                                "arn:aws:ec2:{}:{}:subnet/{}",
                                vpc.region, vpc.account, subnet.id
                            ),
                        )
                        .text("state", "available")
                        .text("ownerId", &vpc.account)
                        .text("vpcId", &subnet.vpc)
                        .text("cidrBlock", subnet.cidr)
                        .text("availableIpAddressCount", available)
                        .text("availabilityZone", &subnet.availability_zone)
                        .text("availabilityZoneId", zone_id(&subnet.availability_zone))
                        .text("defaultForAz", false)
                        .text("mapPublicIpOnLaunch", false)
                        .text("assignIpv6AddressOnCreation", false);
                    write_name_tag(w, subnet.name.as_deref());
                });
            }
        });
        w.optional_text("nextToken", next_token.as_deref());
    }))
}

fn name_tags(name: Option<&str>) -> BTreeMap<String, String> {
    name.map(|name| ("Name".to_owned(), name.to_owned()))
        .into_iter()
        .collect()
}

fn write_name_tag(w: &mut XmlWriter, name: Option<&str>) {
    if let Some(name) = name {
        w.element("tagSet", |w| {
            w.element("item", |w| {
                w.text("key", "Name").text("value", name);
            });
        });
    }
}

/// `PREFIX-` and 17 hex digits, stable for `seed`.
pub fn derived_id(prefix: &str, seed: &str) -> String {
    let digest = Sha256::digest(format!("{prefix}/{seed}"));
    format!("{prefix}-0{}", &hex::encode(digest)[..16])
}

fn dhcp_options_id(account: &str, region: &str) -> String {
    derived_id("dopt", &format!("{account}/{region}"))
}

/// `use1-az1` style zone ids: the region's first part, its middle parts' initials, its number
/// and the zone letter's position (AWS maps letters to zone ids per account; this is one map).
fn zone_id(zone: &str) -> String {
    let (region, letter) = zone.split_at(zone.len().saturating_sub(1));
    let parts: Vec<&str> = region.split('-').collect();
    let mut id = String::new();
    if let [first, middle @ .., number] = parts.as_slice() {
        id += first;
        id.extend(middle.iter().filter_map(|part| part.chars().next()));
        id += number;
    }
    let position = letter
        .bytes()
        .next()
        .map_or(1, |b| u32::from(b.saturating_sub(b'a')) + 1);
    format!("{id}-az{position}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zone_ids_look_like_aws_ones() {
        assert_eq!(zone_id("us-east-1a"), "use1-az1");
        assert_eq!(zone_id("eu-west-1b"), "euw1-az2");
    }
}
