//! `DescribeInstances`, paged, mapped into [`Host`]s.

use super::calls::{CallBudget, CallFailure};
use super::{Host, HostImage, InstanceState, Platform};
use aws_sdk_ec2::types::{Filter, Instance};

/// Every instance that is not terminated, in the client's region.
pub(super) async fn describe_instances(
    ec2: &aws_sdk_ec2::Client,
    calls: &CallBudget,
    profile: &str,
    account_id: &str,
    region: &str,
) -> Result<Vec<Host>, CallFailure> {
    let not_terminated = Filter::builder()
        .name("instance-state-name")
        .set_values(Some(
            ["pending", "running", "shutting-down", "stopping", "stopped"]
                .map(String::from)
                .to_vec(),
        ))
        .build();
    let mut pages = ec2
        .describe_instances()
        .filters(not_terminated)
        .max_results(1000)
        .into_paginator()
        .send();
    let mut hosts = Vec::new();
    while let Some(page) = calls.page(pages.next()).await? {
        for reservation in page.reservations() {
            let owner = reservation.owner_id().unwrap_or(account_id);
            hosts.extend(
                reservation
                    .instances()
                    .iter()
                    .filter_map(|i| to_host(i, profile, owner, region)),
            );
        }
    }
    Ok(hosts)
}

fn to_host(instance: &Instance, profile: &str, account_id: &str, region: &str) -> Option<Host> {
    let instance_id = instance.instance_id()?.to_owned();
    let tags: std::collections::BTreeMap<String, String> = instance
        .tags()
        .iter()
        .filter_map(|t| {
            Some((
                t.key()?.to_owned(),
                t.value().unwrap_or_default().to_owned(),
            ))
        })
        .collect();
    let state = instance
        .state()
        .and_then(|s| s.name())
        .and_then(|n| InstanceState::from_ec2(n.as_str()))?;
    let platform = match instance.platform() {
        Some(p) if p.as_str().eq_ignore_ascii_case("windows") => Platform::Windows,
        _ => Platform::Linux,
    };
    Some(Host {
        instance_id,
        name: tags.get("Name").cloned(),
        tags,
        state,
        platform,
        private_ip: instance.private_ip_address().map(str::to_owned),
        public_ip: instance.public_ip_address().map(str::to_owned),
        vpc_id: instance.vpc_id().map(str::to_owned),
        subnet_id: instance.subnet_id().map(str::to_owned),
        availability_zone: instance
            .placement()
            .and_then(|p| p.availability_zone())
            .map(str::to_owned),
        key_name: instance.key_name().map(str::to_owned),
        image: instance.image_id().map(|id| HostImage {
            id: id.to_owned(),
            name: None,
            platform_details: instance.platform_details().map(str::to_owned),
        }),
        security_group_ids: instance
            .security_groups()
            .iter()
            .filter_map(|group| group.group_id())
            .map(str::to_owned)
            .collect(),
        profile: profile.to_owned(),
        account_id: account_id.to_owned(),
        region: region.to_owned(),
        stale: false,
    })
}
