//! `DescribeImages`: the AMIs the caller's instances in the signed region run, as public images.
//! The product reads their names to tell Ubuntu from Amazon Linux (both `Linux/UNIX`), which
//! decides the OS user an EC2 Instance Connect key is pushed for.
//!
//! An AMI exists here when an instance of the scenario runs it in the signed region (AMIs are
//! regional); any account may describe it, as with public images. One that no instance runs is
//! unknown, so `ImageId.N` naming it is `InvalidAMIID.NotFound` while an `image-id` filter just
//! leaves it out — the difference the product relies on. Element names as aws-sdk-ec2 parses
//! them: `imagesSet/item/{imageId, imageLocation, imageState, imageOwnerId, isPublic,
//! architecture, imageType, platform, platformDetails, name, imageOwnerAlias, …}`.
//!
//! **Choices where AWS documents nothing:** owner ids are Canonical's for `ubuntu/` names, the
//! Windows owner for Windows, else Amazon's; no block device mappings or creation dates.

use std::collections::BTreeMap;

use super::XMLNS;
use super::describe::{Describe, Spec, ids_do_not_exist};
use super::filter::Filterable;
use crate::error::AwsError;
use crate::scenario::{Architecture, Instance, Platform};
use crate::service::QueryCall;
use crate::xml::XmlWriter;

const SPEC: Spec = Spec {
    parameters: &[
        "Action",
        "Version",
        "DryRun",
        "ImageId.#",
        "Owner.#",
        "ExecutableBy.#",
        "IncludeDeprecated",
        "IncludeDisabled",
        "Filter.#.Name",
        "Filter.#.Value.#",
        "MaxResults",
        "NextToken",
    ],
    id_parameter: "ImageId",
    id_prefix: "ami",
    malformed_code: "InvalidAMIID.Malformed",
    not_found_code: "InvalidAMIID.NotFound",
    not_found: |ids| ids_do_not_exist("image", ids),
    filters: &[
        "image-id",
        "name",
        "architecture",
        "platform",
        "platform-details",
        "owner-id",
        "owner-alias",
        "state",
        "is-public",
    ],
    max_results: 5..=1000,
    max_results_with_ids: false,
};

/// What the simulator knows of one AMI: what its instances say about it.
#[derive(Clone, Copy)]
struct Image<'a> {
    id: &'a str,
    name: Option<&'a str>,
    platform: Platform,
    architecture: Architecture,
}

impl<'a> Image<'a> {
    fn of(instance: &'a Instance) -> Self {
        Image {
            id: &instance.image_id,
            name: instance.image_name.as_deref(),
            platform: instance.platform,
            architecture: instance.architecture,
        }
    }

    fn platform_details(&self) -> &'static str {
        match self.platform {
            Platform::Windows => "Windows",
            Platform::Linux => "Linux/UNIX",
        }
    }

    fn owner(&self) -> (&'static str, &'static str) {
        match (self.platform, self.name) {
            (Platform::Windows, _) => ("801119661308", "amazon"),
            (Platform::Linux, Some(name)) if name.starts_with("ubuntu/") => {
                ("099720109477", "aws-marketplace")
            }
            (Platform::Linux, _) => ("137112412989", "amazon"),
        }
    }
}

impl Filterable for Image<'_> {
    fn filter_values(&self, name: &str) -> Vec<String> {
        match name {
            "image-id" => vec![self.id.to_owned()],
            "name" => self.name.map(str::to_owned).into_iter().collect(),
            "architecture" => vec![self.architecture.as_str().to_owned()],
            "platform" => match self.platform {
                Platform::Windows => vec!["windows".to_owned()],
                Platform::Linux => vec![],
            },
            "platform-details" => vec![self.platform_details().to_owned()],
            "owner-id" => vec![self.owner().0.to_owned()],
            "owner-alias" => vec![self.owner().1.to_owned()],
            "state" => vec!["available".to_owned()],
            "is-public" => vec!["true".to_owned()],
            _ => vec![],
        }
    }
}

pub fn respond(call: &QueryCall<'_>) -> Result<String, AwsError> {
    let request = Describe::parse(call, &SPEC)?;
    // Every account's instances in the region: public AMIs are visible to all.
    let images: BTreeMap<&str, Image<'_>> = call
        .scenario
        .instances_in_region(call.caller.region)
        .map(|instance| (instance.image_id.as_str(), Image::of(instance)))
        .collect();
    let selected = request.select(images.into_iter().collect(), &SPEC)?;
    let (page, next_token) = request.page(&selected)?;
    Ok(XmlWriter::document("DescribeImagesResponse", XMLNS, |w| {
        w.text("requestId", call.request_id);
        w.element("imagesSet", |w| {
            for image in page {
                let (owner_id, owner_alias) = image.owner();
                w.element("item", |w| {
                    w.text("imageId", image.id)
                        .text(
                            "imageLocation",
                            format!("{owner_alias}/{}", image.name.unwrap_or(image.id)),
                        )
                        .text("imageState", "available")
                        .text("imageOwnerId", owner_id)
                        .text("isPublic", true)
                        .text("architecture", image.architecture.as_str())
                        .text("imageType", "machine");
                    if image.platform == Platform::Windows {
                        w.text("platform", "windows");
                    }
                    w.text("platformDetails", image.platform_details())
                        .optional_text("name", image.name)
                        .text("imageOwnerAlias", owner_alias)
                        .text("rootDeviceType", "ebs")
                        .text("virtualizationType", "hvm")
                        .text("hypervisor", "xen");
                });
            }
        });
        w.optional_text("nextToken", next_token.as_deref());
    }))
}
