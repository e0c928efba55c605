//! Amazon EC2, EC2 query protocol, API version 2016-11-15.
//!
//! Every caller sees only its own account in the region it signed for, as in AWS; an opt-in
//! region the account has not enabled refuses every call, as AWS does, with `AuthFailure`.

mod describe;
mod describe_images;
mod describe_instance_connect_endpoints;
mod describe_instances;
mod describe_regions;
mod describe_security_groups;
mod describe_vpcs;
mod filter;
mod get_password_data;

use axum::http::StatusCode;

pub use get_password_data::WindowsPasswords;

use crate::auth::AuthError;
use crate::error::AwsError;
use crate::scenario::OptInStatus;
use crate::service::{QueryCall, invalid_action};
use crate::sigv4::SigV4Error;

pub const API_VERSION: &str = "2016-11-15";
pub const XMLNS: &str = "http://ec2.amazonaws.com/doc/2016-11-15/";

pub fn call(call: &QueryCall<'_>) -> Result<String, AwsError> {
    let region_enabled = call
        .scenario
        .opt_in_status(call.caller.account(), call.caller.region)
        .is_some_and(OptInStatus::enabled);
    if !region_enabled {
        return Err(auth_failure());
    }
    // An identity policy that denies the action. EC2's Describe calls have no resource-level
    // permissions, so the action alone decides; GetPasswordData checks its instance itself.
    if call.action != "GetPasswordData" && !call.caller.profile.may(&format!("ec2:{}", call.action))
    {
        return Err(AwsError::new(
            StatusCode::FORBIDDEN,
            "UnauthorizedOperation",
            "You are not authorized to perform this operation.",
        ));
    }
    match call.action {
        "DescribeImages" => describe_images::respond(call),
        "DescribeInstances" => describe_instances::respond(call),
        "DescribeInstanceConnectEndpoints" => describe_instance_connect_endpoints::respond(call),
        "DescribeRegions" => describe_regions::respond(call),
        "DescribeSecurityGroups" => describe_security_groups::respond(call),
        "DescribeSubnets" => describe_vpcs::describe_subnets(call),
        "DescribeVpcs" => describe_vpcs::describe_vpcs(call),
        "GetPasswordData" => get_password_data::respond(call),
        other => Err(invalid_action(format!(
            "The action {other} is not valid for this web service."
        ))),
    }
}

/// EC2 answers almost every authentication problem with `AuthFailure` (401), whether the key
/// is unknown or the signature wrong; a stale or future timestamp is `RequestExpired`.
pub fn auth_error(error: &AuthError) -> AwsError {
    match error {
        AuthError::Signature(SigV4Error::Missing) => AwsError::bad_request(
            "MissingParameter",
            "The request must contain the parameter AWSAccessKeyId",
        ),
        AuthError::Signature(incomplete @ SigV4Error::Incomplete(_)) => {
            AwsError::bad_request("IncompleteSignature", incomplete.to_string())
        }
        AuthError::Signature(SigV4Error::Expired { .. } | SigV4Error::NotYetCurrent { .. }) => {
            AwsError::bad_request("RequestExpired", "Request has expired.")
        }
        AuthError::Signature(
            SigV4Error::ScopeDateMismatch { .. }
            | SigV4Error::PayloadHashMismatch
            | SigV4Error::SignatureMismatch { .. },
        )
        | AuthError::UnknownAccessKey
        | AuthError::UnknownRegion(_) => auth_failure(),
        // EC2 answers expired temporary credentials as it answers an expired signature.
        AuthError::ExpiredToken => AwsError::bad_request("RequestExpired", "Request has expired."),
    }
}

fn auth_failure() -> AwsError {
    AwsError::new(
        StatusCode::UNAUTHORIZED,
        "AuthFailure",
        "AWS was not able to validate the provided access credentials",
    )
}
