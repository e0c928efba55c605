//! Scenario checks: unique, well-formed ids and references that resolve, with messages that
//! name the offending entry and say what to fix.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use super::{Architecture, IpProtocol, OPT_IN_REGIONS, OptInStatus, Platform, Scenario};

#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("cannot read scenario {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("scenario {}: {error}", path.display())]
    InFile {
        path: PathBuf,
        error: Box<ScenarioError>,
    },
    #[error("scenario is not valid TOML for a scenario: {0}")]
    Parse(toml::de::Error),
    #[error("invalid scenario: {0}")]
    Invalid(String),
}

pub(super) fn validate(scenario: &Scenario) -> Result<(), ScenarioError> {
    let regions = unique("region", scenario.regions.iter().map(String::as_str))?;
    if regions.is_empty() {
        return invalid("`regions` is empty; list at least one region, e.g. \"us-east-1\"");
    }

    if let Some(problem) = scenario.data_channel_faults.problem() {
        return invalid(format!("[data_channel_faults]: {problem}"));
    }
    for (index, rule) in scenario.faults.iter().enumerate() {
        if let Some(problem) = rule.problem() {
            return invalid(format!("[[faults]] number {}: {problem}", index + 1));
        }
        for region in &rule.regions {
            listed(
                &regions,
                region,
                || format!("[[faults]] number {}", index + 1),
                "region",
            )?;
        }
    }

    let accounts = unique(
        "account id",
        scenario.accounts.iter().map(|a| a.id.as_str()),
    )?;
    for account in &scenario.accounts {
        if account.id.len() != 12 || !account.id.bytes().all(|b| b.is_ascii_digit()) {
            return invalid(format!("account id `{}` is not 12 digits", account.id));
        }
        for region in &account.opted_in_regions {
            listed(
                &regions,
                region,
                || format!("account {}", account.id),
                "region",
            )?;
            if !OPT_IN_REGIONS.contains(&region.as_str()) {
                return invalid(format!(
                    "account {} opts in to {region}, which every account has without opting in; \
                     drop it from `opted_in_regions`",
                    account.id
                ));
            }
        }
    }

    unique(
        "profile name",
        scenario.profiles.iter().map(|p| p.name.as_str()),
    )?;
    unique(
        "access key id",
        scenario.profiles.iter().map(|p| p.access_key_id.as_str()),
    )?;
    for profile in &scenario.profiles {
        let name = &profile.name;
        let owner = || format!("profile `{name}`");
        if name.is_empty() || name.contains(|c: char| c.is_whitespace() || c == '[' || c == ']') {
            return invalid(format!(
                "profile name `{name}` cannot be written to an AWS config file; use letters, digits, `-` or `_`"
            ));
        }
        listed(&accounts, &profile.account, owner, "account")?;
        listed(&regions, &profile.region, owner, "region")?;
        enabled(scenario, &profile.account, &profile.region, owner)?;
        if profile.access_key_id.is_empty() || profile.secret_access_key.is_empty() {
            return invalid(format!(
                "profile `{name}` needs both `access_key_id` and `secret_access_key`"
            ));
        }
    }

    unique("VPC id", scenario.vpcs.iter().map(|v| v.id.as_str()))?;
    for vpc in &scenario.vpcs {
        let owner = || format!("VPC {}", vpc.id);
        resource_id("vpc", &vpc.id)?;
        listed(&accounts, &vpc.account, owner, "account")?;
        listed(&regions, &vpc.region, owner, "region")?;
        enabled(scenario, &vpc.account, &vpc.region, owner)?;
    }

    unique("subnet id", scenario.subnets.iter().map(|s| s.id.as_str()))?;
    for subnet in &scenario.subnets {
        resource_id("subnet", &subnet.id)?;
        let vpc = resolve(
            scenario.vpc(&subnet.vpc),
            || format!("subnet {}", subnet.id),
            "VPC",
            &subnet.vpc,
        )?;
        if !vpc.cidr.contains_block(&subnet.cidr) {
            return invalid(format!(
                "subnet {} has CIDR {}, which is outside its VPC {} ({})",
                subnet.id, subnet.cidr, vpc.id, vpc.cidr
            ));
        }
        let zone_letter = subnet.availability_zone.strip_prefix(vpc.region.as_str());
        if !matches!(zone_letter, Some(letter) if letter.len() == 1 && letter.bytes().all(|b| b.is_ascii_lowercase()))
        {
            return invalid(format!(
                "subnet {} is in availability zone `{}`, which is not a zone of its VPC's region {} (e.g. {}a)",
                subnet.id, subnet.availability_zone, vpc.region, vpc.region
            ));
        }
    }

    unique(
        "security group id",
        scenario.security_groups.iter().map(|g| g.id.as_str()),
    )?;
    let mut group_names = BTreeSet::new();
    for group in &scenario.security_groups {
        let owner = || format!("security group {}", group.id);
        resource_id("sg", &group.id)?;
        resolve(scenario.vpc(&group.vpc), owner, "VPC", &group.vpc)?;
        if !group_names.insert((group.vpc.as_str(), group.name.as_str())) {
            return invalid(format!(
                "VPC {} has two security groups named `{}`; EC2 requires unique names per VPC",
                group.vpc, group.name
            ));
        }
        for rule in group.ingress.iter().chain(&group.egress) {
            for referenced in &rule.groups {
                resolve(
                    scenario.security_group(referenced),
                    owner,
                    "security group",
                    referenced,
                )?;
            }
            match (rule.protocol, rule.from_port, rule.to_port) {
                (IpProtocol::All, None, None) => {}
                (IpProtocol::All, ..) => {
                    return invalid(format!(
                        "a rule of security group {} is for all traffic (`-1`) but names ports; drop `from_port`/`to_port`",
                        group.id
                    ));
                }
                (_, Some(from), Some(to)) if from <= to => {}
                _ => {
                    return invalid(format!(
                        "a {} rule of security group {} needs `from_port` <= `to_port`",
                        rule.protocol.as_str(),
                        group.id
                    ));
                }
            }
            if rule.cidrs.is_empty() && rule.groups.is_empty() {
                return invalid(format!(
                    "a rule of security group {} names neither `cidrs` nor `groups`, so it admits nothing",
                    group.id
                ));
            }
        }
    }

    unique(
        "EC2 Instance Connect Endpoint id",
        scenario.eic_endpoints.iter().map(|e| e.id.as_str()),
    )?;
    let mut endpoint_per_vpc = BTreeMap::new();
    for endpoint in &scenario.eic_endpoints {
        resource_id("eice", &endpoint.id)?;
        let subnet = resolve(
            scenario.subnet(&endpoint.subnet),
            || format!("EC2 Instance Connect Endpoint {}", endpoint.id),
            "subnet",
            &endpoint.subnet,
        )?;
        let owner = || format!("EC2 Instance Connect Endpoint {}", endpoint.id);
        in_vpc(scenario, &endpoint.security_groups, &subnet.vpc, owner)?;
        if !subnet.cidr.contains(endpoint.interface_ip(subnet)) {
            return invalid(format!(
                "EC2 Instance Connect Endpoint {} has private IP {}, which is outside its subnet {} ({})",
                endpoint.id,
                endpoint.interface_ip(subnet),
                subnet.id,
                subnet.cidr
            ));
        }
        if let Some(other) = endpoint_per_vpc.insert(subnet.vpc.as_str(), endpoint.id.as_str()) {
            return invalid(format!(
                "VPC {} has two EC2 Instance Connect Endpoints ({other} and {}); AWS allows one per VPC",
                subnet.vpc, endpoint.id
            ));
        }
    }

    unique(
        "instance id",
        scenario.instances.iter().map(|i| i.instance_id.as_str()),
    )?;
    for instance in &scenario.instances {
        let id = &instance.instance_id;
        resource_id("i", id)?;
        resource_id("ami", &instance.image_id)?;
        let subnet = resolve(
            scenario.subnet(&instance.subnet),
            || format!("instance {id}"),
            "subnet",
            &instance.subnet,
        )?;
        if !subnet.cidr.contains(instance.private_ip) {
            return invalid(format!(
                "instance {id} has private IP {}, which is outside its subnet {} ({})",
                instance.private_ip, subnet.id, subnet.cidr
            ));
        }
        in_vpc(scenario, &instance.security_groups, &subnet.vpc, || {
            format!("instance {id}")
        })?;
        if instance.platform == Platform::Windows && instance.architecture == Architecture::Arm64 {
            return invalid(format!(
                "instance {id} is Windows on arm64, which EC2 does not offer"
            ));
        }
    }

    crate::kms::validate(scenario).map_err(ScenarioError::Invalid)?;
    let preferences = &scenario.session_manager;
    if !(1..=60).contains(&preferences.idle_session_timeout_minutes) {
        return invalid(format!(
            "session_manager.idle_session_timeout_minutes is {}; Session Manager allows 1 to 60",
            preferences.idle_session_timeout_minutes
        ));
    }
    if let Some(max) = preferences.max_session_duration_minutes
        && !(1..=1440).contains(&max)
    {
        return invalid(format!(
            "session_manager.max_session_duration_minutes is {max}; Session Manager allows 1 to 1440"
        ));
    }
    Ok(())
}

/// Every group in `groups` exists and belongs to `vpc`, as EC2 requires of a network
/// interface's groups.
fn in_vpc(
    scenario: &Scenario,
    groups: &[String],
    vpc: &str,
    owner: impl Fn() -> String,
) -> Result<(), ScenarioError> {
    for id in groups {
        let group = resolve(scenario.security_group(id), &owner, "security group", id)?;
        if group.vpc != vpc {
            return invalid(format!(
                "{} is in VPC {vpc} but names security group {id} of VPC {}; a network interface can only use its own VPC's groups",
                owner(),
                group.vpc
            ));
        }
    }
    Ok(())
}

/// `account` has `region` enabled: nothing can live in, or sign in to, a region the account
/// has not opted in to.
fn enabled(
    scenario: &Scenario,
    account: &str,
    region: &str,
    owner: impl FnOnce() -> String,
) -> Result<(), ScenarioError> {
    if scenario
        .opt_in_status(account, region)
        .is_some_and(OptInStatus::enabled)
    {
        return Ok(());
    }
    invalid(format!(
        "{} is in {region}, an opt-in region account {account} has not enabled; add it to the \
         account's `opted_in_regions`",
        owner()
    ))
}

fn invalid<T>(message: impl Into<String>) -> Result<T, ScenarioError> {
    Err(ScenarioError::Invalid(message.into()))
}

/// Collects `ids`, rejecting empties and duplicates.
fn unique<'a>(
    what: &str,
    ids: impl Iterator<Item = &'a str>,
) -> Result<BTreeSet<&'a str>, ScenarioError> {
    let mut seen = BTreeSet::new();
    for id in ids {
        if id.is_empty() {
            return invalid(format!("an empty {what}"));
        }
        if !seen.insert(id) {
            return invalid(format!("{what} `{id}` appears twice"));
        }
    }
    Ok(seen)
}

/// `id` must be in `set` (of accounts or regions).
fn listed(
    set: &BTreeSet<&str>,
    id: &str,
    owner: impl FnOnce() -> String,
    what: &str,
) -> Result<(), ScenarioError> {
    resolve(set.get(id), owner, what, id).map(|_| ())
}

/// `found` is what `owner`'s reference to `what` `id` resolved to, if anything.
fn resolve<'a, T: ?Sized>(
    found: Option<&'a T>,
    owner: impl FnOnce() -> String,
    what: &str,
    id: &str,
) -> Result<&'a T, ScenarioError> {
    found.ok_or_else(|| {
        ScenarioError::Invalid(format!(
            "{} names {what} `{id}`, which is not in the scenario; add it or fix the reference",
            owner()
        ))
    })
}

/// EC2 ids are a prefix, a dash and 8 (older) or 17 lower-case hex digits.
fn resource_id(prefix: &str, id: &str) -> Result<(), ScenarioError> {
    let well_formed = id
        .strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('-'))
        .is_some_and(|hex| {
            matches!(hex.len(), 8 | 17)
                && hex
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        });
    if well_formed {
        Ok(())
    } else {
        invalid(format!(
            "`{id}` is not a well-formed id; expected `{prefix}-` and 17 lower-case hex digits"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
        regions = ["us-east-1"]
        [[accounts]]
        id = "111122223333"
        alias = "test"
        [[profiles]]
        name = "p"
        account = "111122223333"
        region = "us-east-1"
        access_key_id = "AKIATESTTESTTEST0001"
        secret_access_key = "secret"
        [[vpcs]]
        id = "vpc-0123456789abcdef0"
        account = "111122223333"
        region = "us-east-1"
        cidr = "10.0.0.0/16"
        [[subnets]]
        id = "subnet-0123456789abcdef0"
        vpc = "vpc-0123456789abcdef0"
        cidr = "10.0.1.0/24"
        availability_zone = "us-east-1a"
        [[instances]]
        instance_id = "i-0123456789abcdef0"
        subnet = "subnet-0123456789abcdef0"
        state = "running"
        instance_type = "t3.micro"
        image_id = "ami-0123456789abcdef0"
        private_ip = "10.0.1.10"
        launch_time = 2024-01-02T03:04:05Z
    "#;

    fn error_for(text: &str) -> String {
        match Scenario::from_toml_str(text) {
            Ok(_) => panic!("scenario was accepted"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn the_demo_scenario_is_valid() {
        Scenario::demo()
            .validate()
            .expect("demo scenario validates");
    }

    #[test]
    fn a_minimal_scenario_is_accepted() {
        let scenario = Scenario::from_toml_str(MINIMAL).expect("valid");
        let instance = &scenario.instances[0];
        assert_eq!(
            instance.launch_time.to_rfc3339(),
            "2024-01-02T03:04:05+00:00"
        );
        let placement = scenario.placement(instance).expect("placed");
        assert_eq!(
            (placement.account, placement.region),
            ("111122223333", "us-east-1")
        );
    }

    #[test]
    fn an_instance_in_an_unknown_subnet_is_rejected_by_name() {
        let text = MINIMAL.replace(
            "subnet = \"subnet-0123456789abcdef0\"\n        state",
            "subnet = \"subnet-0fffffffffffffff0\"\n        state",
        );
        let error = error_for(&text);
        assert!(
            error.contains("instance i-0123456789abcdef0 names subnet `subnet-0fffffffffffffff0`"),
            "{error}"
        );
    }

    #[test]
    fn a_profile_in_an_unlisted_region_is_rejected() {
        let text = MINIMAL.replacen("region = \"us-east-1\"", "region = \"ap-south-1\"", 1);
        let error = error_for(&text);
        assert!(
            error.contains("profile `p` names region `ap-south-1`"),
            "{error}"
        );
    }

    #[test]
    fn a_private_ip_outside_the_subnet_is_rejected() {
        let error = error_for(&MINIMAL.replace("10.0.1.10", "10.0.2.10"));
        assert!(error.contains("outside its subnet"), "{error}");
    }

    #[test]
    fn a_malformed_instance_id_is_rejected() {
        let error = error_for(&MINIMAL.replace("i-0123456789abcdef0", "i-xyz"));
        assert!(error.contains("`i-xyz` is not a well-formed id"), "{error}");
    }

    #[test]
    fn an_unknown_field_is_rejected_rather_than_ignored() {
        let error =
            error_for(&MINIMAL.replace("state = \"running\"", "state = \"running\"\nstatus = 1"));
        assert!(error.contains("unknown field `status`"), "{error}");
    }

    #[test]
    fn an_instance_in_a_security_group_of_another_vpc_is_rejected() {
        let text = format!(
            "{}\n[[vpcs]]\nid = \"vpc-0fedcba9876543210\"\naccount = \"111122223333\"\nregion = \"us-east-1\"\ncidr = \"10.1.0.0/16\"\n\
             [[security_groups]]\nid = \"sg-0123456789abcdef0\"\nname = \"web\"\nvpc = \"vpc-0fedcba9876543210\"\n",
            MINIMAL.replace(
                "launch_time = 2024-01-02T03:04:05Z",
                "launch_time = 2024-01-02T03:04:05Z\nsecurity_groups = [\"sg-0123456789abcdef0\"]"
            )
        );
        let error = error_for(&text);
        assert!(
            error
                .contains("names security group sg-0123456789abcdef0 of VPC vpc-0fedcba9876543210"),
            "{error}"
        );
    }

    #[test]
    fn a_rule_that_admits_nothing_is_rejected() {
        let text = format!(
            "{MINIMAL}\n[[security_groups]]\nid = \"sg-0123456789abcdef0\"\nname = \"web\"\nvpc = \"vpc-0123456789abcdef0\"\ningress = [{{ protocol = \"tcp\", from_port = 22, to_port = 22 }}]\n"
        );
        let error = error_for(&text);
        assert!(
            error.contains("names neither `cidrs` nor `groups`"),
            "{error}"
        );
    }

    #[test]
    fn an_opt_in_region_is_usable_only_by_accounts_that_opted_in() {
        let with_milan = MINIMAL.replace(
            "regions = [\"us-east-1\"]",
            "regions = [\"us-east-1\", \"eu-south-1\"]",
        );
        let in_milan = with_milan.replace(
            "region = \"us-east-1\"\n        cidr",
            "region = \"eu-south-1\"\n        cidr",
        );
        let error = error_for(&in_milan);
        assert!(
            error.contains("VPC vpc-0123456789abcdef0 is in eu-south-1, an opt-in region account 111122223333 has not enabled"),
            "{error}"
        );
        let opted_in = in_milan
            .replace(
                "alias = \"test\"",
                "alias = \"test\"\n        opted_in_regions = [\"eu-south-1\"]",
            )
            .replace("us-east-1a", "eu-south-1a");
        let scenario = Scenario::from_toml_str(&opted_in).expect("valid once opted in");
        assert_eq!(
            scenario.opt_in_status("111122223333", "eu-south-1"),
            Some(OptInStatus::OptedIn)
        );
        assert_eq!(
            scenario.opt_in_status("111122223333", "us-east-1"),
            Some(OptInStatus::NotRequired)
        );
        assert_eq!(scenario.opt_in_status("111122223333", "ap-south-1"), None);
    }

    #[test]
    fn opting_in_to_a_region_every_account_has_is_rejected() {
        let error = error_for(&MINIMAL.replace(
            "alias = \"test\"",
            "alias = \"test\"\nopted_in_regions = [\"us-east-1\"]",
        ));
        assert!(
            error.contains("account 111122223333 opts in to us-east-1, which every account has"),
            "{error}"
        );
    }

    #[test]
    fn a_duplicate_access_key_is_rejected() {
        let text = format!(
            "{MINIMAL}\n[[profiles]]\nname = \"q\"\naccount = \"111122223333\"\nregion = \"us-east-1\"\naccess_key_id = \"AKIATESTTESTTEST0001\"\nsecret_access_key = \"x\"\n"
        );
        let error = error_for(&text);
        assert!(
            error.contains("access key id `AKIATESTTESTTEST0001` appears twice"),
            "{error}"
        );
    }
}
