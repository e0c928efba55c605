//! `DescribeInstances`: the caller's instances in the signed region, selected by `InstanceId.N`
//! and `Filter.N`, paginated by `MaxResults` / `NextToken`, one reservation per instance.
//!
//! Element names follow the EC2 2016-11-15 schema as aws-sdk-ec2 parses it
//! (`reservationSet/item/instancesSet/item/…`, `tagSet/item/{key,value}`).

use sha2::{Digest, Sha256};

use super::XMLNS;
use super::describe::{Describe, Spec, ids_do_not_exist};
use super::filter::{Filterable, tag_filter_values};
use crate::error::AwsError;
use crate::scenario::{Instance, InstanceState, Placement, Platform, Scenario};
use crate::service::QueryCall;
use crate::xml::XmlWriter;

const SPEC: Spec = Spec {
    parameters: &[
        "Action",
        "Version",
        "DryRun",
        "IncludeManagedResources",
        "InstanceId.#",
        "Filter.#.Name",
        "Filter.#.Value.#",
        "MaxResults",
        "NextToken",
    ],
    id_parameter: "InstanceId",
    id_prefix: "i",
    malformed_code: "InvalidInstanceID.Malformed",
    not_found_code: "InvalidInstanceID.NotFound",
    not_found: |ids| ids_do_not_exist("instance", ids),
    filters: &[
        "instance-id",
        "instance-state-name",
        "vpc-id",
        "subnet-id",
        "tag-key",
        "tag-value",
        "platform",
        "private-ip-address",
        "instance.group-id",
    ],
    max_results: 5..=1000,
    max_results_with_ids: false,
};

/// An instance where it lives, as the filters see it.
#[derive(Clone, Copy)]
struct Placed<'a> {
    instance: &'a Instance,
    placement: Placement<'a>,
}

impl Filterable for Placed<'_> {
    fn filter_values(&self, name: &str) -> Vec<String> {
        let Placed {
            instance,
            placement,
        } = self;
        if let Some(values) = tag_filter_values(name, &instance.tags) {
            return values;
        }
        match name {
            "instance-id" => vec![instance.instance_id.clone()],
            "instance-state-name" => vec![instance.state.name().to_owned()],
            "vpc-id" => vec![placement.vpc.id.clone()],
            "subnet-id" => vec![placement.subnet.id.clone()],
            "platform" => match instance.platform {
                Platform::Windows => vec!["windows".to_owned()],
                Platform::Linux => vec![],
            },
            "private-ip-address" => vec![instance.private_ip.to_string()],
            "instance.group-id" => instance.security_groups.clone(),
            _ => vec![],
        }
    }
}

pub fn respond(call: &QueryCall<'_>) -> Result<String, AwsError> {
    let request = Describe::parse(call, &SPEC)?;
    let visible = call
        .scenario
        .instances_in(call.caller.account(), call.caller.region)
        .map(|(instance, placement)| {
            (
                instance.instance_id.as_str(),
                Placed {
                    instance,
                    placement,
                },
            )
        })
        .collect();
    let selected = request.select(visible, &SPEC)?;
    let (page, next_token) = request.page(&selected)?;
    Ok(XmlWriter::document(
        "DescribeInstancesResponse",
        XMLNS,
        |w| {
            w.text("requestId", call.request_id);
            w.element("reservationSet", |w| {
                for placed in page {
                    write_reservation(w, call.scenario, placed.instance, &placed.placement);
                }
            });
            w.optional_text("nextToken", next_token.as_deref());
        },
    ))
}

fn write_reservation(
    w: &mut XmlWriter,
    scenario: &Scenario,
    instance: &Instance,
    placement: &Placement<'_>,
) {
    w.element("item", |w| {
        w.text("reservationId", reservation_id(instance))
            .text("ownerId", placement.account);
        w.element("groupSet", |_| {});
        w.element("instancesSet", |w| {
            w.element("item", |w| write_instance(w, scenario, instance, placement));
        });
    });
}

fn write_instance(
    w: &mut XmlWriter,
    scenario: &Scenario,
    instance: &Instance,
    placement: &Placement<'_>,
) {
    let windows = instance.platform == Platform::Windows;
    w.text("instanceId", &instance.instance_id)
        .text("imageId", &instance.image_id);
    w.element("instanceState", |w| {
        w.text("code", instance.state.code())
            .text("name", instance.state.name());
    });
    w.text(
        "privateDnsName",
        private_dns_name(instance, placement.region),
    )
    .text(
        "dnsName",
        public_dns_name(instance, placement.region).unwrap_or_default(),
    )
    .optional_text("keyName", instance.key_name.as_deref())
    .text("amiLaunchIndex", 0)
    .text("instanceType", &instance.instance_type)
    .text(
        "launchTime",
        instance.launch_time.format("%Y-%m-%dT%H:%M:%S%.3fZ"),
    );
    w.element("placement", |w| {
        w.text("availabilityZone", &placement.subnet.availability_zone)
            .text("groupName", "")
            .text("tenancy", "default");
    });
    if windows {
        w.text("platform", "windows");
    }
    w.element("monitoring", |w| {
        w.text("state", "disabled");
    });
    w.text("subnetId", &placement.subnet.id)
        .text("vpcId", &placement.vpc.id)
        .text("privateIpAddress", instance.private_ip)
        .optional_text("ipAddress", instance.public_ip)
        .text("sourceDestCheck", true)
        .text("architecture", instance.architecture.as_str())
        .text("rootDeviceType", "ebs")
        .text(
            "rootDeviceName",
            if windows { "/dev/sda1" } else { "/dev/xvda" },
        )
        .text("virtualizationType", "hvm");
    w.element("groupSet", |w| {
        for id in &instance.security_groups {
            w.element("item", |w| {
                w.text("groupId", id).optional_text(
                    "groupName",
                    scenario.security_group(id).map(|group| &group.name),
                );
            });
        }
    });
    if !instance.tags.is_empty() {
        w.element("tagSet", |w| {
            for (key, value) in &instance.tags {
                w.element("item", |w| {
                    w.text("key", key).text("value", value);
                });
            }
        });
    }
    w.text("hypervisor", "xen")
        .text(
            "platformDetails",
            if windows { "Windows" } else { "Linux/UNIX" },
        )
        .text(
            "usageOperation",
            if windows {
                "RunInstances:0002"
            } else {
                "RunInstances"
            },
        );
    if instance.state == InstanceState::Stopped {
        w.element("stateReason", |w| {
            w.text("code", "Client.UserInitiatedShutdown").text(
                "message",
                "Client.UserInitiatedShutdown: User initiated shutdown",
            );
        });
    }
}

/// `r-` and 17 hex digits, stable for an instance.
fn reservation_id(instance: &Instance) -> String {
    let digest = Sha256::digest(format!("reservation/{}", instance.instance_id));
    format!("r-0{}", &hex::encode(digest)[..16])
}

/// `ip-10-0-1-23.ec2.internal` in us-east-1, `ip-….REGION.compute.internal` elsewhere.
fn private_dns_name(instance: &Instance, region: &str) -> String {
    let host = format!("ip-{}", instance.private_ip.to_string().replace('.', "-"));
    if region == "us-east-1" {
        format!("{host}.ec2.internal")
    } else {
        format!("{host}.{region}.compute.internal")
    }
}

/// The public DNS name EC2 gives an instance with a public IP.
fn public_dns_name(instance: &Instance, region: &str) -> Option<String> {
    let host = format!("ec2-{}", instance.public_ip?.to_string().replace('.', "-"));
    Some(if region == "us-east-1" {
        format!("{host}.compute-1.amazonaws.com")
    } else {
        format!("{host}.{region}.compute.amazonaws.com")
    })
}
