//! Inventory: what each profile can see, as [`Host`]s and [`EicEndpoint`]s.
//!
//! One scan asks STS who the profile is (its account), then pages through `DescribeInstances`
//! and `DescribeInstanceConnectEndpoints` in the profile's region at the same time, and names the
//! instances' AMIs with `DescribeImages`. Only the first two calls decide whether the scan works:
//! a profile that may list instances but not endpoints or images still shows its hosts, with a
//! warning saying what is missing. The engine runs one scan per profile concurrently and shows
//! each profile's result, or its error, as soon as it arrives.

mod ec2;
mod eic_endpoints;
mod host;
mod images;

pub use eic_endpoints::{EicEndpoint, EicEndpointState};
pub use host::{Host, HostImage, HostKey, InstanceState, Platform};

use crate::profiles::Profile;
use crate::sdk_error::describe;
use aws_config::SdkConfig;
use aws_sdk_ec2::error::ProvideErrorMetadata;

/// What one profile's scan found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileInventory {
    pub account_id: String,
    pub hosts: Vec<Host>,
    pub eic_endpoints: EicEndpointListing,
    /// Parts of the scan that failed without failing it, each saying what is missing and why.
    pub warnings: Vec<String>,
}

/// What a profile's scan learned about the EC2 Instance Connect Endpoints in its region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EicEndpointListing {
    /// Every endpoint, in any state, in the order EC2 listed them.
    Listed(Vec<EicEndpoint>),
    /// The listing failed; the text says why and what to do.
    Failed(String),
}

/// Scans one profile in its home region.
pub async fn scan_profile(sdk: &SdkConfig, profile: &Profile) -> Result<ProfileInventory, String> {
    let sts = aws_sdk_sts::Client::new(sdk);
    let identity = sts
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| format!("Could not identify the account: {}", describe(&e)))?;
    let account_id = identity.account().unwrap_or_default().to_owned();
    let region = &profile.region;
    let ec2 = aws_sdk_ec2::Client::new(sdk);
    let (hosts, endpoints) = tokio::join!(
        ec2::describe_instances(&ec2, &profile.name, &account_id, region),
        eic_endpoints::describe_endpoints(&ec2, &profile.name, &account_id, region),
    );
    let mut hosts =
        hosts.map_err(|e| format!("Could not list instances in {region}: {}", describe(&e)))?;

    let mut warnings = Vec::new();
    let eic_endpoints = match endpoints {
        Ok(endpoints) => EicEndpointListing::Listed(endpoints),
        Err(e) => {
            let hint = if is_access_denied(e.code()) {
                " Tunnels through EC2 Instance Connect need the IAM permission \
                 ec2:DescribeInstanceConnectEndpoints."
            } else {
                ""
            };
            let warning = format!(
                "Could not list EC2 Instance Connect Endpoints in {region}: {}.{hint}",
                describe(&e)
            );
            warnings.push(warning.clone());
            EicEndpointListing::Failed(warning)
        }
    };
    if let Err(e) = images::name_images(&ec2, &mut hosts).await {
        warnings.push(format!(
            "Could not read AMI names in {region}: {}. OS user names for EC2 Instance Connect \
             fall back to ec2-user unless set per host.",
            describe(&e)
        ));
    }
    Ok(ProfileInventory {
        account_id,
        hosts,
        eic_endpoints,
        warnings,
    })
}

/// The codes EC2 answers a missing IAM permission with.
fn is_access_denied(code: Option<&str>) -> bool {
    matches!(
        code,
        Some("UnauthorizedOperation" | "AccessDenied" | "AccessDeniedException")
    )
}
