//! `DescribeInstanceConnectEndpoints`: the caller's EC2 Instance Connect Endpoints in the
//! signed region, which the product reads to find the endpoint for an instance's VPC (the AWS
//! CLI filters by `state` and `vpc-id` and prefers the instance's subnet).
//!
//! Element names as aws-sdk-ec2 parses them: `instanceConnectEndpointSet/item/{ownerId,
//! instanceConnectEndpointId, instanceConnectEndpointArn, state, stateMessage, dnsName,
//! fipsDnsName, networkInterfaceIdSet, vpcId, availabilityZone, availabilityZoneId, createdAt,
//! subnetId, preserveClientIp, securityGroupIdSet, ipAddressType, tagSet}`.
//!
//! Real endpoints have DNS names such as
//! `eice-0123….ec2-instance-connect-endpoint.us-east-1.amazonaws.com`; every simulated endpoint
//! reports the simulator's one tunnel listener instead (`127.0.0.1:PORT`, and
//! `localhost:PORT` as its FIPS name), which the product connects to like any endpoint name.

use super::XMLNS;
use super::describe::{Describe, Spec};
use super::describe_vpcs::derived_id;
use super::filter::{Filterable, tag_filter_values};
use crate::error::AwsError;
use crate::scenario::{InstanceConnectEndpoint, Subnet, Vpc};
use crate::service::QueryCall;
use crate::xml::XmlWriter;

const SPEC: Spec = Spec {
    parameters: &[
        "Action",
        "Version",
        "DryRun",
        "InstanceConnectEndpointId.#",
        "Filter.#.Name",
        "Filter.#.Value.#",
        "MaxResults",
        "NextToken",
    ],
    id_parameter: "InstanceConnectEndpointId",
    id_prefix: "eice",
    malformed_code: "InvalidInstanceConnectEndpointId.Malformed",
    not_found_code: "InvalidInstanceConnectEndpointId.NotFound",
    not_found: |ids| match ids {
        [id] => format!("The instance connect endpoint ID '{id}' does not exist"),
        _ => format!(
            "The instance connect endpoint IDs '{}' do not exist",
            ids.join(", ")
        ),
    },
    filters: &[
        "instance-connect-endpoint-id",
        "state",
        "subnet-id",
        "vpc-id",
        "tag-key",
        "tag-value",
    ],
    max_results: 1..=50,
    max_results_with_ids: true,
};

#[derive(Clone, Copy)]
struct PlacedEndpoint<'a> {
    endpoint: &'a InstanceConnectEndpoint,
    subnet: &'a Subnet,
    vpc: &'a Vpc,
}

impl Filterable for PlacedEndpoint<'_> {
    fn filter_values(&self, name: &str) -> Vec<String> {
        if let Some(values) = tag_filter_values(name, &self.endpoint.tags) {
            return values;
        }
        match name {
            "instance-connect-endpoint-id" => vec![self.endpoint.id.clone()],
            "state" => vec![self.endpoint.state.name().to_owned()],
            "subnet-id" => vec![self.subnet.id.clone()],
            "vpc-id" => vec![self.vpc.id.clone()],
            _ => vec![],
        }
    }
}

pub fn respond(call: &QueryCall<'_>) -> Result<String, AwsError> {
    let request = Describe::parse(call, &SPEC)?;
    let scenario = call.scenario;
    let visible = scenario
        .eic_endpoints
        .iter()
        .filter_map(|endpoint| {
            let subnet = scenario.subnet(&endpoint.subnet)?;
            let vpc = scenario.vpc_in(&subnet.vpc, call.caller.account(), call.caller.region)?;
            Some((
                endpoint.id.as_str(),
                PlacedEndpoint {
                    endpoint,
                    subnet,
                    vpc,
                },
            ))
        })
        .collect();
    let selected = request.select(visible, &SPEC)?;
    let (page, next_token) = request.page(&selected)?;
    let names = &call.world.endpoint_names;
    Ok(XmlWriter::document(
        "DescribeInstanceConnectEndpointsResponse",
        XMLNS,
        |w| {
            w.text("requestId", call.request_id);
            w.element("instanceConnectEndpointSet", |w| {
                for PlacedEndpoint {
                    endpoint,
                    subnet,
                    vpc,
                } in page
                {
                    w.element("item", |w| {
                        w.text("ownerId", &vpc.account)
                            .text("instanceConnectEndpointId", &endpoint.id)
                            .text(
                                "instanceConnectEndpointArn",
                                format!(
                                    "arn:aws:ec2:{}:{}:instance-connect-endpoint/{}",
                                    vpc.region, vpc.account, endpoint.id
                                ),
                            )
                            .text("state", endpoint.state.name())
                            .text("stateMessage", "")
                            .text("dnsName", &names.dns_name)
                            .optional_text(
                                "fipsDnsName",
                                endpoint.fips.then_some(&names.fips_dns_name),
                            );
                        w.element("networkInterfaceIdSet", |w| {
                            w.text("item", derived_id("eni", &endpoint.id));
                        });
                        w.text("vpcId", &vpc.id)
                            .text("availabilityZone", &subnet.availability_zone)
                            .text(
                                "createdAt",
                                endpoint.created_at.format("%Y-%m-%dT%H:%M:%S%.3fZ"),
                            )
                            .text("subnetId", &subnet.id)
                            .text("preserveClientIp", endpoint.preserve_client_ip);
                        w.element("securityGroupIdSet", |w| {
                            for id in &endpoint.security_groups {
                                w.text("item", id);
                            }
                        });
                        w.text("ipAddressType", "ipv4");
                        if !endpoint.tags.is_empty() {
                            w.element("tagSet", |w| {
                                for (key, value) in &endpoint.tags {
                                    w.element("item", |w| {
                                        w.text("key", key).text("value", value);
                                    });
                                }
                            });
                        }
                    });
                }
            });
            w.optional_text("nextToken", next_token.as_deref());
        },
    ))
}
