//! `DescribeRegions`: the regions the caller's account may use, which is how a client learns
//! where to look for instances without a list of its own.
//!
//! Without `AllRegions=true` only enabled regions are listed (those that need no opt-in, and the
//! opt-in regions the account enabled); with it, disabled ones too, as `not-opted-in`.
//! `RegionName.N` names regions whatever their status. Element names as aws-sdk-ec2 parses
//! them: `regionInfo/item/{regionName, regionEndpoint, optInStatus}`.
//!
//! **A choice where AWS documents nothing:** an unknown `RegionName` is `InvalidParameterValue`.

use super::XMLNS;
use super::filter::{Filter, Filterable, all_match};
use crate::error::AwsError;
use crate::scenario::OptInStatus;
use crate::service::QueryCall;
use crate::xml::XmlWriter;

const PARAMETERS: &[&str] = &[
    "Action",
    "Version",
    "DryRun",
    "AllRegions",
    "RegionName.#",
    "Filter.#.Name",
    "Filter.#.Value.#",
];

const FILTERS: &[&str] = &["endpoint", "opt-in-status", "region-name"];

struct RegionInfo<'a> {
    name: &'a str,
    status: OptInStatus,
}

impl RegionInfo<'_> {
    fn endpoint(&self) -> String {
        format!("ec2.{}.amazonaws.com", self.name)
    }
}

impl Filterable for RegionInfo<'_> {
    fn filter_values(&self, name: &str) -> Vec<String> {
        match name {
            "endpoint" => vec![self.endpoint()],
            "opt-in-status" => vec![self.status.name().to_owned()],
            "region-name" => vec![self.name.to_owned()],
            _ => vec![],
        }
    }
}

pub fn respond(call: &QueryCall<'_>) -> Result<String, AwsError> {
    let params = call.params;
    if let Some(unknown) = params.unknown_parameter(PARAMETERS) {
        return Err(AwsError::bad_request(
            "UnknownParameter",
            format!("The parameter {unknown} is not recognized"),
        ));
    }
    let filters = Filter::from_params(params, FILTERS)?;
    let all_regions = match params.get("AllRegions") {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(AwsError::bad_request(
                "InvalidParameterValue",
                format!("Invalid value '{other}' for allRegions"),
            ));
        }
    };
    let names = params.list("RegionName");
    if let Some(unknown) = names
        .iter()
        .find(|name| !call.scenario.regions.iter().any(|r| r == *name))
    {
        return Err(AwsError::bad_request(
            "InvalidParameterValue",
            format!("Invalid region name: {unknown}"),
        ));
    }
    if params.get("DryRun") == Some("true") {
        return Err(AwsError::new(
            axum::http::StatusCode::PRECONDITION_FAILED,
            "DryRunOperation",
            "Request would have succeeded, but DryRun flag is set.",
        ));
    }
    let account = call.caller.account();
    let listed: Vec<RegionInfo<'_>> = call
        .scenario
        .regions
        .iter()
        .filter_map(|name| {
            let status = call.scenario.opt_in_status(account, name)?;
            Some(RegionInfo { name, status })
        })
        .filter(|region| {
            if names.is_empty() {
                all_regions || region.status.enabled()
            } else {
                names.contains(&region.name)
            }
        })
        .filter(|region| all_match(&filters, region))
        .collect();
    Ok(XmlWriter::document("DescribeRegionsResponse", XMLNS, |w| {
        w.text("requestId", call.request_id);
        w.element("regionInfo", |w| {
            for region in &listed {
                w.element("item", |w| {
                    w.text("regionName", region.name)
                        .text("regionEndpoint", region.endpoint())
                        .text("optInStatus", region.status.name());
                });
            }
        });
    }))
}
