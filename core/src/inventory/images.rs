//! `DescribeImages` for the AMIs the instances run.
//!
//! The AMI name is what tells Ubuntu from Amazon Linux (both report `PlatformDetails`
//! `Linux/UNIX`), and so which OS user an EC2 Instance Connect key is pushed for. It is an
//! enrichment: when this call fails, hosts keep their AMI id and the scan still succeeds.
//!
//! The AMIs are named by an `image-id` filter rather than `ImageIds`, because a filter never
//! fails the whole call for one deregistered or foreign AMI (with `ImageIds` one such id makes
//! the call answer `InvalidAMIID.NotFound` for all of them).

use std::collections::{BTreeSet, HashMap};

use aws_sdk_ec2::types::Filter;

use super::calls::{CallBudget, CallFailure};

/// EC2 accepts at most 200 values in one filter.
const IDS_PER_CALL: usize = 200;

/// The names of the AMIs among `ids` that can be described, by AMI id.
pub(super) async fn image_names(
    ec2: &aws_sdk_ec2::Client,
    calls: &CallBudget,
    ids: &BTreeSet<String>,
) -> Result<HashMap<String, String>, CallFailure> {
    let ids: Vec<String> = ids.iter().cloned().collect();
    let mut names: HashMap<String, String> = HashMap::new();
    for chunk in ids.chunks(IDS_PER_CALL) {
        let by_id = Filter::builder()
            .name("image-id")
            .set_values(Some(chunk.to_vec()))
            .build();
        let mut pages = ec2
            .describe_images()
            .filters(by_id)
            // Instances outlive their AMI's deprecation date; their names still matter.
            .include_deprecated(true)
            .max_results(1000)
            .into_paginator()
            .send();
        while let Some(page) = calls.page(pages.next()).await? {
            for image in page.images() {
                if let (Some(id), Some(name)) = (image.image_id(), image.name()) {
                    names.insert(id.to_owned(), name.to_owned());
                }
            }
        }
    }
    Ok(names)
}
