//! `DescribeInstanceInformation`: the caller's managed nodes — its instances with a registered
//! SSM Agent, except stopped and terminated ones ("This operation does not return information
//! for nodes that are either Stopped or Terminated").
//!
//! Each node reports `PingStatus` and `AgentVersion` from the scenario, `LastPingDateTime`
//! (recent when online, two hours ago when the connection is lost), `PlatformType`,
//! `PlatformName`/`PlatformVersion` (from the AMI name: Amazon Linux, Ubuntu, Windows Server),
//! `IPAddress`, `ComputerName` (EC2's private DNS name; `EC2AMAZ-…` on Windows) and the
//! `EC2Instance` resource and source type.
//!
//! Filters come as `Filters` (`Key`/`Values`: `InstanceIds`, `PingStatus`, `PlatformTypes`,
//! `AgentVersion`, `ResourceType`, `SourceIds`, `SourceTypes`, `tag-key`, `tag:<name>`,
//! `ActivationIds`, `IamRole`, `AssociationStatus`) or the legacy `InstanceInformationFilterList`
//! (`key`/`valueSet`, the enumerated keys); using both is a `ValidationException` ("leads to an
//! exception error", the model says). Instances have no activations, IAM roles (not returned
//! for EC2) or associations here, so those keys match nothing. Errors: `InvalidFilterKey`,
//! `InvalidInstanceInformationFilterValue` (an enumerated value that does not exist),
//! `InvalidInstanceId` (an id that is malformed or not one of the caller's managed nodes),
//! `InvalidNextToken`. `MaxResults` is 5–50, 10 by default.

use base64::Engine as _;
use chrono::TimeDelta;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::api::{Input, authorize, member, serialization};
use crate::auth::Caller;
use crate::error::AwsError;
use crate::scenario::{Instance, InstanceState, PingStatus, Placement, Platform, SsmAgent};
use crate::world::World;

const DEFAULT_MAX_RESULTS: i64 = 10;

/// One filter, whichever list it came from.
#[derive(Debug)]
struct Filter {
    key: String,
    values: Vec<String>,
}

pub fn describe_instance_information(
    world: &World,
    caller: Caller<'_>,
    input: &Input,
) -> Result<Value, AwsError> {
    let max_results = match input.get("MaxResults") {
        None => DEFAULT_MAX_RESULTS,
        Some(value) => value
            .as_i64()
            .ok_or_else(|| serialization("MaxResults must be an integer"))?,
    };
    if max_results < 5 {
        input.violation(format!(
            "Value '{max_results}' at 'maxResults' failed to satisfy constraint: Member must have value greater than or equal to 5"
        ));
    }
    if max_results > 50 {
        input.violation(format!(
            "Value '{max_results}' at 'maxResults' failed to satisfy constraint: Member must have value less than or equal to 50"
        ));
    }
    let next_token = input.string("NextToken", false, 0..=usize::MAX)?;
    let legacy = filters(input, "InstanceInformationFilterList", "key", "valueSet")?;
    let current = filters(input, "Filters", "Key", "Values")?;
    input.validated()?;
    authorize(
        caller,
        "ssm:DescribeInstanceInformation",
        &format!("arn:aws:ssm:{}:{}:*", caller.region, caller.account()),
    )?;
    if !legacy.is_empty() && !current.is_empty() {
        return Err(AwsError::bad_request(
            "ValidationException",
            "InstanceInformationFilterList and Filters cannot be used in the same request; use Filters.",
        ));
    }
    for filter in &legacy {
        if !LEGACY_KEYS.contains(&filter.key.as_str()) {
            return Err(invalid_filter_key(&filter.key));
        }
    }
    let filters = if legacy.is_empty() { current } else { legacy };

    let managed: Vec<(&Instance, Placement<'_>)> = world
        .scenario
        .instances_in(caller.account(), caller.region)
        .filter(|(instance, _)| {
            instance.ssm_agent.is_some()
                && !matches!(
                    instance.state,
                    InstanceState::Stopped | InstanceState::Terminated
                )
        })
        .collect();
    for filter in &filters {
        check_filter(filter, &managed, caller)?;
    }
    let matching: Vec<&(&Instance, Placement<'_>)> = managed
        .iter()
        .filter(|(instance, _)| filters.iter().all(|filter| matches(filter, instance)))
        .collect();

    let fingerprint = fingerprint(caller, &filters);
    let start = match next_token {
        None => 0,
        Some(token) => parse_token(token, &fingerprint).ok_or_else(|| {
            AwsError::bad_request("InvalidNextToken", "The specified token isn't valid.")
        })?,
    };
    let page_size = usize::try_from(max_results).unwrap_or(10);
    let page: Vec<Value> = matching
        .iter()
        .skip(start)
        .take(page_size)
        .filter_map(|(instance, placement)| {
            let agent = instance.ssm_agent.as_ref()?;
            Some(information(world, instance, agent, placement))
        })
        .collect();
    let mut response = json!({ "InstanceInformationList": page });
    if start + page_size < matching.len() {
        response["NextToken"] = Value::String(token(start + page_size, &fingerprint));
    }
    Ok(response)
}

const LEGACY_KEYS: &[&str] = &[
    "InstanceIds",
    "AgentVersion",
    "PingStatus",
    "PlatformTypes",
    "ActivationIds",
    "IamRole",
    "ResourceType",
    "AssociationStatus",
];

/// Reads one of the two filter lists; `name_key`/`values_key` differ between them.
fn filters(
    input: &Input,
    list: &str,
    name_key: &str,
    values_key: &str,
) -> Result<Vec<Filter>, AwsError> {
    let Some(value) = input.get(list) else {
        return Ok(Vec::new());
    };
    let malformed = || serialization(format!("{list} must be a list of filters"));
    let items = value.as_array().ok_or_else(malformed)?;
    let mut filters = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let position = format!("{}.{}.member", member(list), index + 1);
        let key = match item.get(name_key) {
            Some(Value::String(key)) => key.clone(),
            None | Some(Value::Null) => {
                input.violation(format!(
                    "Value null at '{position}.{}' failed to satisfy constraint: Member must not be null",
                    member(name_key)
                ));
                String::new()
            }
            Some(_) => return Err(malformed()),
        };
        let values: Vec<String> = match item.get(values_key) {
            Some(Value::Array(values)) => values
                .iter()
                .map(|value| value.as_str().map(str::to_owned).ok_or_else(malformed))
                .collect::<Result<_, _>>()?,
            None | Some(Value::Null) => {
                input.violation(format!(
                    "Value null at '{position}.{}' failed to satisfy constraint: Member must not be null",
                    member(values_key)
                ));
                Vec::new()
            }
            Some(_) => return Err(malformed()),
        };
        if item.get(values_key).is_some_and(Value::is_array) && !(1..=100).contains(&values.len()) {
            input.violation(format!(
                "Value '{values:?}' at '{position}.{}' failed to satisfy constraint: Member must have length between 1 and 100",
                member(values_key)
            ));
        }
        filters.push(Filter { key, values });
    }
    Ok(filters)
}

/// Refuses unknown keys, enumerated values that do not exist, and instance ids that are not
/// the caller's managed nodes.
fn check_filter(
    filter: &Filter,
    managed: &[(&Instance, Placement<'_>)],
    caller: Caller<'_>,
) -> Result<(), AwsError> {
    let allowed: Option<&[&str]> = match filter.key.as_str() {
        "PingStatus" => Some(&["Online", "ConnectionLost", "Inactive"]),
        "PlatformTypes" => Some(&["Windows", "Linux", "MacOS"]),
        "ResourceType" => Some(&["EC2Instance", "ManagedInstance"]),
        "AssociationStatus" => Some(&["Success", "Pending", "Failed"]),
        "SourceTypes" => Some(&[
            "AWS::EC2::Instance",
            "AWS::IoT::Thing",
            "AWS::SSM::ManagedInstance",
        ]),
        "InstanceIds" => {
            let unknown: Vec<&str> = filter
                .values
                .iter()
                .map(String::as_str)
                .filter(|id| {
                    !is_managed_id(id)
                        || !managed
                            .iter()
                            .any(|(instance, _)| instance.instance_id == *id)
                })
                .collect();
            if !unknown.is_empty() {
                return Err(AwsError::bad_request(
                    "InvalidInstanceId",
                    format!(
                        "Instances [[{}]] not in a valid state for account {}",
                        unknown.join(", "),
                        caller.account()
                    ),
                ));
            }
            None
        }
        "AgentVersion" | "SourceIds" | "ActivationIds" | "IamRole" | "tag-key" => None,
        key if key.starts_with("tag:") && key.len() > 4 => None,
        other => return Err(invalid_filter_key(other)),
    };
    if let Some(allowed) = allowed
        && let Some(bad) = filter
            .values
            .iter()
            .find(|value| !allowed.contains(&value.as_str()))
    {
        return Err(AwsError::bad_request(
            "InvalidInstanceInformationFilterValue",
            format!("{bad} is not a valid value for filter key {}.", filter.key),
        ));
    }
    Ok(())
}

fn invalid_filter_key(key: &str) -> AwsError {
    AwsError::bad_request(
        "InvalidFilterKey",
        format!("The filter key {key} isn't valid."),
    )
}

/// `(^i-(\w{8}|\w{17})$)|(^mi-\w{17}$)`
fn is_managed_id(id: &str) -> bool {
    let word = |s: &str| s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    match (id.strip_prefix("i-"), id.strip_prefix("mi-")) {
        (Some(rest), _) => matches!(rest.len(), 8 | 17) && word(rest),
        (_, Some(rest)) => rest.len() == 17 && word(rest),
        _ => false,
    }
}

fn matches(filter: &Filter, instance: &Instance) -> bool {
    let any = |value: &str| filter.values.iter().any(|v| v == value);
    let agent = instance.ssm_agent.as_ref();
    match filter.key.as_str() {
        "InstanceIds" | "SourceIds" => any(&instance.instance_id),
        "PingStatus" => agent.is_some_and(|agent| any(ping_status(agent.ping_status))),
        "PlatformTypes" => any(platform_type(instance.platform)),
        "AgentVersion" => agent.is_some_and(|agent| any(&agent.version)),
        "ResourceType" => any("EC2Instance"),
        "SourceTypes" => any("AWS::EC2::Instance"),
        "tag-key" => instance.tags.keys().any(|key| any(key)),
        key => match key.strip_prefix("tag:") {
            Some(name) => instance.tags.get(name).is_some_and(|value| any(value)),
            // ActivationIds, IamRole, AssociationStatus: nothing here has them.
            None => false,
        },
    }
}

fn ping_status(status: PingStatus) -> &'static str {
    match status {
        PingStatus::Online => "Online",
        PingStatus::ConnectionLost => "ConnectionLost",
        PingStatus::Inactive => "Inactive",
    }
}

fn platform_type(platform: Platform) -> &'static str {
    match platform {
        Platform::Linux => "Linux",
        Platform::Windows => "Windows",
    }
}

fn information(
    world: &World,
    instance: &Instance,
    agent: &SsmAgent,
    placement: &Placement<'_>,
) -> Value {
    let last_ping = match agent.ping_status {
        PingStatus::Online => world.clock.now() - TimeDelta::seconds(30),
        PingStatus::ConnectionLost | PingStatus::Inactive => {
            world.clock.now() - TimeDelta::hours(2)
        }
    };
    let (platform_name, platform_version) = platform(instance);
    let mut information = json!({
        "InstanceId": instance.instance_id,
        "PingStatus": ping_status(agent.ping_status),
        "LastPingDateTime": last_ping.timestamp_millis() as f64 / 1000.0,
        "AgentVersion": agent.version,
        "PlatformType": platform_type(instance.platform),
        "PlatformName": platform_name,
        "ResourceType": "EC2Instance",
        "IPAddress": instance.private_ip.to_string(),
        "ComputerName": computer_name(instance, placement.region),
        "SourceId": instance.instance_id,
        "SourceType": "AWS::EC2::Instance",
    });
    if let Some(version) = platform_version {
        information["PlatformVersion"] = Value::String(version);
    }
    information
}

/// The OS name and version the agent reports, read from the AMI name.
fn platform(instance: &Instance) -> (String, Option<String>) {
    let image = instance.image_name.as_deref().unwrap_or_default();
    if let Some(rest) = image.strip_prefix("Windows_Server-") {
        let year = rest.split('-').next().unwrap_or_default();
        let build = match year {
            "2016" => Some("10.0.14393"),
            "2019" => Some("10.0.17763"),
            "2022" => Some("10.0.20348"),
            "2025" => Some("10.0.26100"),
            _ => None,
        };
        return (
            format!("Microsoft Windows Server {year} Datacenter"),
            build.map(str::to_owned),
        );
    }
    if image.starts_with("al2023-") {
        return ("Amazon Linux".to_owned(), Some("2023".to_owned()));
    }
    if image.starts_with("amzn2-") {
        return ("Amazon Linux".to_owned(), Some("2".to_owned()));
    }
    if image.contains("ubuntu") {
        let version = image.split(['-', '/']).find(|part| {
            part.split_once('.')
                .is_some_and(|(a, b)| a.parse::<u32>().is_ok() && b.parse::<u32>().is_ok())
        });
        return ("Ubuntu".to_owned(), version.map(str::to_owned));
    }
    match instance.platform {
        Platform::Linux => ("Linux".to_owned(), None),
        Platform::Windows => ("Microsoft Windows Server".to_owned(), None),
    }
}

/// EC2's private DNS name on Linux; Windows names itself `EC2AMAZ-` and seven characters.
fn computer_name(instance: &Instance, region: &str) -> String {
    match instance.platform {
        Platform::Linux => {
            let host = format!("ip-{}", instance.private_ip.to_string().replace('.', "-"));
            if region == "us-east-1" {
                format!("{host}.ec2.internal")
            } else {
                format!("{host}.{region}.compute.internal")
            }
        }
        Platform::Windows => {
            const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
            let digest = Sha256::digest(instance.instance_id.as_bytes());
            let suffix: String = digest
                .iter()
                .take(7)
                .map(|byte| char::from(ALPHABET[usize::from(*byte) % ALPHABET.len()]))
                .collect();
            format!("EC2AMAZ-{suffix}")
        }
    }
}

/// Ties a NextToken to the caller and filters it was issued for.
fn fingerprint(caller: Caller<'_>, filters: &[Filter]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(caller.account());
    hasher.update(caller.region);
    for filter in filters {
        hasher.update(filter.key.as_bytes());
        for value in &filter.values {
            hasher.update([0]);
            hasher.update(value.as_bytes());
        }
        hasher.update([1]);
    }
    hex::encode(&hasher.finalize()[..8])
}

fn token(offset: usize, fingerprint: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("{offset}:{fingerprint}"))
}

fn parse_token(token: &str, fingerprint: &str) -> Option<usize> {
    let text = base64::engine::general_purpose::STANDARD
        .decode(token)
        .ok()?;
    let text = String::from_utf8(text).ok()?;
    let (offset, issued_for) = text.split_once(':')?;
    (issued_for == fingerprint).then(|| offset.parse().ok())?
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Scenario;

    #[test]
    fn platforms_are_named_from_the_ami() {
        let demo = Scenario::demo();
        let name = |host: &str| platform(demo.instance_named(host).expect("in the demo"));
        assert_eq!(
            name("app-ssm-1"),
            ("Amazon Linux".to_owned(), Some("2023".to_owned()))
        );
        assert_eq!(
            name("win-ssm-1"),
            (
                "Microsoft Windows Server 2022 Datacenter".to_owned(),
                Some("10.0.20348".to_owned())
            )
        );
        assert_eq!(
            name("grafana-1"),
            ("Ubuntu".to_owned(), Some("24.04".to_owned()))
        );
    }

    #[test]
    fn computer_names_follow_ec2() {
        let demo = Scenario::demo();
        let app = demo.instance_named("app-ssm-1").expect("in the demo");
        assert_eq!(
            computer_name(app, "us-east-1"),
            format!(
                "ip-{}.ec2.internal",
                app.private_ip.to_string().replace('.', "-")
            )
        );
        assert!(computer_name(app, "eu-west-1").ends_with(".eu-west-1.compute.internal"));
        let win = demo.instance_named("win-ssm-1").expect("in the demo");
        let windows = computer_name(win, "us-east-1");
        assert!(
            windows.starts_with("EC2AMAZ-") && windows.len() == 15,
            "{windows}"
        );
    }

    #[test]
    fn managed_ids_follow_the_model_pattern() {
        assert!(is_managed_id("i-0123456789abcdef0"));
        assert!(is_managed_id("i-01234567"));
        assert!(is_managed_id("mi-0123456789abcdef0"));
        assert!(!is_managed_id("i-0123"));
        assert!(!is_managed_id("instance"));
    }

    #[test]
    fn next_tokens_are_tied_to_their_query() {
        let issued = token(10, "abc");
        assert_eq!(parse_token(&issued, "abc"), Some(10));
        assert_eq!(parse_token(&issued, "def"), None);
        assert_eq!(parse_token("garbage!", "abc"), None);
    }
}
