//! `DescribeSecurityGroups`: the caller's security groups in the signed region, with their
//! inbound (`ipPermissions`) and outbound (`ipPermissionsEgress`) rules, so the product can tell
//! whether an endpoint may reach a port before it tries.
//!
//! Element names as aws-sdk-ec2 parses them: `securityGroupInfo/item/{ownerId, groupId,
//! groupName, groupDescription, vpcId, securityGroupArn, ipPermissions, ipPermissionsEgress,
//! tagSet}`, each permission `{ipProtocol, fromPort, toPort, groups/item/{groupId, userId},
//! ipRanges/item/{cidrIp, description}}`.

use super::XMLNS;
use super::describe::{Describe, Spec};
use super::filter::{Filterable, tag_filter_values};
use crate::error::AwsError;
use crate::scenario::{IpProtocol, Scenario, SecurityGroup, SecurityGroupRule, Vpc};
use crate::service::QueryCall;
use crate::xml::XmlWriter;

const SPEC: Spec = Spec {
    parameters: &[
        "Action",
        "Version",
        "DryRun",
        "GroupId.#",
        "GroupName.#",
        "Filter.#.Name",
        "Filter.#.Value.#",
        "MaxResults",
        "NextToken",
    ],
    id_parameter: "GroupId",
    id_prefix: "sg",
    malformed_code: "InvalidGroupId.Malformed",
    not_found_code: "InvalidGroup.NotFound",
    not_found: |ids| match ids {
        [id] => format!("The security group '{id}' does not exist"),
        _ => format!("The security groups '{}' do not exist", ids.join(", ")),
    },
    filters: &[
        "group-id",
        "group-name",
        "description",
        "vpc-id",
        "owner-id",
        "ip-permission.protocol",
        "ip-permission.from-port",
        "ip-permission.to-port",
        "ip-permission.cidr",
        "ip-permission.group-id",
        "egress.ip-permission.protocol",
        "egress.ip-permission.cidr",
        "egress.ip-permission.group-id",
        "tag-key",
        "tag-value",
    ],
    max_results: 5..=1000,
    max_results_with_ids: false,
};

#[derive(Clone, Copy)]
struct OwnedGroup<'a> {
    group: &'a SecurityGroup,
    vpc: &'a Vpc,
}

impl Filterable for OwnedGroup<'_> {
    fn filter_values(&self, name: &str) -> Vec<String> {
        let group = self.group;
        if let Some(values) = tag_filter_values(name, &group.tags) {
            return values;
        }
        let rules = |egress: bool| {
            if egress {
                group.egress.iter()
            } else {
                group.ingress.iter()
            }
        };
        let (egress, field) = match name.strip_prefix("egress.") {
            Some(field) => (true, field),
            None => (false, name),
        };
        match field {
            "group-id" if !egress => vec![group.id.clone()],
            "group-name" => vec![group.name.clone()],
            "description" => vec![group.description().to_owned()],
            "vpc-id" => vec![group.vpc.clone()],
            "owner-id" => vec![self.vpc.account.clone()],
            "ip-permission.protocol" => rules(egress)
                .map(|rule| rule.protocol.as_str().to_owned())
                .collect(),
            "ip-permission.from-port" => rules(egress)
                .filter_map(|rule| rule.from_port.map(|port| port.to_string()))
                .collect(),
            "ip-permission.to-port" => rules(egress)
                .filter_map(|rule| rule.to_port.map(|port| port.to_string()))
                .collect(),
            "ip-permission.cidr" => rules(egress)
                .flat_map(|rule| rule.cidrs.iter().map(ToString::to_string))
                .collect(),
            "ip-permission.group-id" => rules(egress)
                .flat_map(|rule| rule.groups.iter().cloned())
                .collect(),
            _ => vec![],
        }
    }
}

pub fn respond(call: &QueryCall<'_>) -> Result<String, AwsError> {
    let request = Describe::parse(call, &SPEC)?;
    let scenario = call.scenario;
    let visible: Vec<(&str, OwnedGroup<'_>)> = scenario
        .security_groups
        .iter()
        .filter_map(|group| {
            let vpc = scenario.vpc_in(&group.vpc, call.caller.account(), call.caller.region)?;
            Some((group.id.as_str(), OwnedGroup { group, vpc }))
        })
        .collect();
    // `GroupName.N` names groups too (EC2 looks names up in the default VPC; the simulator's
    // VPCs are none of them default, so a name must be unique among the visible groups).
    let names = call.params.list("GroupName");
    let missing_names: Vec<&str> = names
        .iter()
        .copied()
        .filter(|name| !visible.iter().any(|(_, owned)| owned.group.name == *name))
        .collect();
    if let [name, ..] = missing_names[..] {
        return Err(AwsError::bad_request(
            "InvalidGroup.NotFound",
            format!("The security group '{name}' does not exist in default VPC"),
        ));
    }
    let by_name: Vec<(&str, OwnedGroup<'_>)> = visible
        .into_iter()
        .filter(|(_, owned)| names.is_empty() || names.contains(&owned.group.name.as_str()))
        .collect();
    let selected = request.select(by_name, &SPEC)?;
    let (page, next_token) = request.page(&selected)?;
    Ok(XmlWriter::document(
        "DescribeSecurityGroupsResponse",
        XMLNS,
        |w| {
            w.text("requestId", call.request_id);
            w.element("securityGroupInfo", |w| {
                for OwnedGroup { group, vpc } in page {
                    w.element("item", |w| {
                        w.text("ownerId", &vpc.account)
                            .text("groupId", &group.id)
                            .text("groupName", &group.name)
                            .text("groupDescription", group.description())
                            .text("vpcId", &group.vpc)
                            .text(
                                "securityGroupArn",
                                format!(
                                    "arn:aws:ec2:{}:{}:security-group/{}",
                                    vpc.region, vpc.account, group.id
                                ),
                            );
                        w.element("ipPermissions", |w| {
                            write_rules(w, scenario, &group.ingress);
                        });
                        w.element("ipPermissionsEgress", |w| {
                            write_rules(w, scenario, &group.egress);
                        });
                        if !group.tags.is_empty() {
                            w.element("tagSet", |w| {
                                for (key, value) in &group.tags {
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

fn write_rules(w: &mut XmlWriter, scenario: &Scenario, rules: &[SecurityGroupRule]) {
    for rule in rules {
        w.element("item", |w| {
            w.text("ipProtocol", rule.protocol.as_str());
            if rule.protocol != IpProtocol::All {
                w.optional_text("fromPort", rule.from_port)
                    .optional_text("toPort", rule.to_port);
            }
            w.element("groups", |w| {
                for id in &rule.groups {
                    let group = scenario.security_group(id);
                    let owner = group
                        .and_then(|group| scenario.vpc(&group.vpc))
                        .map(|vpc| vpc.account.as_str());
                    w.element("item", |w| {
                        w.optional_text("description", rule.description.as_deref())
                            .text("groupId", id)
                            .optional_text("userId", owner);
                    });
                }
            });
            w.element("ipRanges", |w| {
                for cidr in &rule.cidrs {
                    w.element("item", |w| {
                        w.text("cidrIp", cidr)
                            .optional_text("description", rule.description.as_deref());
                    });
                }
            });
            w.element("ipv6Ranges", |_| {});
            w.element("prefixListIds", |_| {});
        });
    }
}
