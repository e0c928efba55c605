//! The world the simulator pretends AWS is: accounts, the profiles that sign in to them, VPCs,
//! subnets, security groups, EC2 Instance Connect Endpoints and instances, and what answers on
//! each instance's ports.
//!
//! A scenario is plain data read from TOML (`tests/scenarios/*.toml`); every service reads it and
//! none changes it. Loading validates every cross-reference, so a typo in a scenario file is
//! reported where it was made, not as a puzzling test failure three layers later.

mod backend;
mod generate;
mod identity;
mod security_group;
mod validate;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer};

pub use crate::faults::FaultRule;
pub use crate::ssm::link_faults::DataChannelFaults;
pub use backend::{Backend, Backends};
pub use generate::{GenerateSpec, generate_toml};
pub use identity::{MfaDevice, Role, SsoAssignment, SsoInstance};
pub use security_group::{IpProtocol, Peer, SecurityGroup, SecurityGroupRule};
pub use validate::ScenarioError;

/// The built-in demo scenario, also what most tests run against.
pub const DEMO_TOML: &str = include_str!("../scenarios/demo.toml");

/// Everything the simulated AWS knows about.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// The regions that exist; requests signed for any other region are rejected.
    pub regions: Vec<String>,
    pub accounts: Vec<Account>,
    pub profiles: Vec<Profile>,
    #[serde(default)]
    pub vpcs: Vec<Vpc>,
    #[serde(default)]
    pub subnets: Vec<Subnet>,
    #[serde(default)]
    pub security_groups: Vec<SecurityGroup>,
    #[serde(default)]
    pub eic_endpoints: Vec<InstanceConnectEndpoint>,
    #[serde(default)]
    pub instances: Vec<Instance>,
    /// Session Manager preferences, the same in every account and region.
    #[serde(default)]
    pub session_manager: SessionManagerPreferences,
    /// Faults the control plane injects from the start (`[[faults]]`); tests add more at run
    /// time.
    #[serde(default)]
    pub faults: Vec<FaultRule>,
    /// Message-level faults on every Session Manager data channel (`[data_channel_faults]`).
    #[serde(default)]
    pub data_channel_faults: DataChannelFaults,
    /// IAM roles profiles may assume (`AssumeRole`) or SSO users may sign in to.
    #[serde(default)]
    pub roles: Vec<Role>,
    /// IAM Identity Center instances (`[sso-session]` in the generated config).
    #[serde(default)]
    pub sso: Vec<SsoInstance>,
    /// KMS keys (`[[kms_keys]]`), e.g. the one `session_manager.kms_key` names.
    #[serde(default)]
    pub kms_keys: Vec<KmsKey>,
    /// Lookups by id, built on first use: a generated organisation has thousands of instances,
    /// subnets and VPCs, and every call would otherwise scan them all.
    #[serde(skip)]
    index: std::sync::OnceLock<Index>,
}

/// Positions in the scenario's lists by id, and the instances of each account and region.
#[derive(Debug, Clone, Default)]
struct Index {
    vpcs: std::collections::HashMap<String, usize>,
    subnets: std::collections::HashMap<String, usize>,
    instances: std::collections::HashMap<String, usize>,
    by_region: std::collections::HashMap<(String, String), Vec<usize>>,
}

/// Session Manager preferences (an account's `SSM-SessionManagerRunShell` settings) that the
/// service enforces on every session, on the simulated clock.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionManagerPreferences {
    /// Minutes without data either way before a session is terminated: 1–60, AWS's default 20.
    #[serde(default = "default_idle_session_timeout")]
    pub idle_session_timeout_minutes: u32,
    /// The longest a session may last, 1–1440 minutes; unlimited when unset, as by default.
    #[serde(default)]
    pub max_session_duration_minutes: Option<u32>,
    /// The KMS key shell sessions must be encrypted with (`kmsKeyId`): a key id, key ARN or
    /// alias of `[[kms_keys]]`, resolved in each session's account and region. Port sessions
    /// are never encrypted (spec §6.1).
    #[serde(default)]
    pub kms_key: Option<String>,
}

impl Default for SessionManagerPreferences {
    fn default() -> Self {
        SessionManagerPreferences {
            idle_session_timeout_minutes: default_idle_session_timeout(),
            max_session_duration_minutes: None,
            kms_key: None,
        }
    }
}

/// A symmetric KMS key in one account and region.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KmsKey {
    /// The key id, a UUID as KMS makes them (`1234abcd-12ab-34cd-56ef-1234567890ab`).
    pub id: String,
    pub account: String,
    pub region: String,
    /// `alias/NAME`s that name it in its account and region.
    #[serde(default)]
    pub aliases: Vec<String>,
    /// A disabled key refuses GenerateDataKey and Decrypt (`DisabledException`).
    #[serde(default = "key_enabled")]
    pub enabled: bool,
    #[serde(default)]
    pub description: String,
}

impl KmsKey {
    pub fn arn(&self) -> String {
        format!(
            "arn:aws:kms:{}:{}:key/{}",
            self.region, self.account, self.id
        )
    }
}

fn key_enabled() -> bool {
    true
}

fn default_idle_session_timeout() -> u32 {
    20
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Account {
    /// The 12-digit account id.
    pub id: String,
    pub alias: String,
    /// The opt-in regions (see [`OPT_IN_REGIONS`]) this account has enabled. Every other
    /// region of the scenario is enabled in every account, as AWS enables the regions launched
    /// before March 2019 everywhere; an opt-in region an account has not enabled refuses its
    /// EC2 calls and is `not-opted-in` in `DescribeRegions`.
    #[serde(default)]
    pub opted_in_regions: Vec<String>,
}

/// The AWS regions an account must enable before using them (launched since March 2019).
pub const OPT_IN_REGIONS: &[&str] = &[
    "af-south-1",
    "ap-east-1",
    "ap-east-2",
    "ap-south-2",
    "ap-southeast-3",
    "ap-southeast-4",
    "ap-southeast-5",
    "ap-southeast-6",
    "ap-southeast-7",
    "ca-west-1",
    "eu-central-2",
    "eu-south-1",
    "eu-south-2",
    "il-central-1",
    "me-central-1",
    "me-south-1",
    "mx-central-1",
];

/// Whether an account may use a region, in `DescribeRegions`' words (`optInStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptInStatus {
    /// Enabled in every account.
    NotRequired,
    /// An opt-in region the account has enabled.
    OptedIn,
    /// An opt-in region the account has not enabled.
    NotOptedIn,
}

impl OptInStatus {
    pub fn name(self) -> &'static str {
        match self {
            Self::NotRequired => "opt-in-not-required",
            Self::OptedIn => "opted-in",
            Self::NotOptedIn => "not-opted-in",
        }
    }

    pub fn enabled(self) -> bool {
        self != Self::NotOptedIn
    }
}

/// A named profile in the generated AWS config: an IAM user's access key and a default region.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub name: String,
    pub account: String,
    pub region: String,
    /// The IAM user the access key belongs to; defaults to the profile name.
    #[serde(default)]
    pub user_name: Option<String>,
    pub access_key_id: String,
    pub secret_access_key: String,
    /// IAM actions this profile's user may not call, as `service:Action` with `*` wildcards
    /// (`"ec2-instance-connect:*"`). Everything else is allowed.
    #[serde(default)]
    pub denied_actions: Vec<String>,
    /// The resources its policy allows actions on, as ARN patterns with `*`
    /// (`"arn:aws:ec2:*:*:instance/i-0abc*"`); every resource when empty. Checked by the actions
    /// that name a resource: OpenTunnel (the endpoint), SendSSHPublicKey and GetPasswordData
    /// (the instance), StartSession (the instance and the document).
    #[serde(default)]
    pub allowed_resources: Vec<String>,
    /// The ports OpenTunnel may reach (the `ec2-instance-connect:remotePort` condition); every
    /// port when empty.
    #[serde(default)]
    pub allowed_tunnel_ports: Vec<u16>,
    /// The user's virtual MFA device, if it has one.
    #[serde(default)]
    pub mfa: Option<MfaDevice>,
}

impl Profile {
    pub fn user_name(&self) -> &str {
        self.user_name.as_deref().unwrap_or(&self.name)
    }

    /// Whether an identity policy allows `action` (`ec2-instance-connect:OpenTunnel`).
    pub fn may(&self, action: &str) -> bool {
        !self
            .denied_actions
            .iter()
            .any(|pattern| glob_match(pattern, action))
    }

    /// Whether an identity policy allows `action` on the resource `arn`.
    pub fn may_on(&self, action: &str, arn: &str) -> bool {
        self.may(action)
            && (self.allowed_resources.is_empty()
                || self
                    .allowed_resources
                    .iter()
                    .any(|pattern| glob_match(pattern, arn)))
    }

    /// Whether OpenTunnel may reach `port` (the `ec2-instance-connect:remotePort` condition).
    pub fn may_tunnel_to(&self, port: u16) -> bool {
        self.allowed_tunnel_ports.is_empty() || self.allowed_tunnel_ports.contains(&port)
    }
}

/// `*` matches any run of characters; everything else matches itself (IAM action patterns).
fn glob_match(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((head, rest)) => {
            let Some(tail) = text.strip_prefix(head) else {
                return false;
            };
            (0..=tail.len())
                .filter(|&at| tail.is_char_boundary(at))
                .any(|at| glob_match(rest, &tail[at..]))
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Vpc {
    pub id: String,
    /// The `Name` tag.
    #[serde(default)]
    pub name: Option<String>,
    pub account: String,
    pub region: String,
    pub cidr: Ipv4Cidr,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Subnet {
    pub id: String,
    /// The `Name` tag.
    #[serde(default)]
    pub name: Option<String>,
    pub vpc: String,
    pub cidr: Ipv4Cidr,
    pub availability_zone: String,
}

/// An EC2 Instance Connect Endpoint (`eice-…`), placed in one subnet of its VPC.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstanceConnectEndpoint {
    pub id: String,
    pub subnet: String,
    #[serde(default)]
    pub state: EndpointState,
    /// The endpoint's security groups; their outbound rules decide which instance ports it can
    /// reach.
    #[serde(default)]
    pub security_groups: Vec<String>,
    /// With client IP preservation the instance sees the client's address as the source;
    /// without it, the endpoint's network interface address (`private_ip`).
    #[serde(default)]
    pub preserve_client_ip: bool,
    /// Whether the endpoint has a FIPS DNS name (AWS gives one in the US regions).
    #[serde(default)]
    pub fips: bool,
    /// The address of the endpoint's network interface; the subnet's first usable address
    /// (network + 4) when omitted.
    #[serde(default)]
    pub private_ip: Option<Ipv4Addr>,
    #[serde(default = "default_created_at", deserialize_with = "toml_datetime")]
    pub created_at: DateTime<Utc>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

impl InstanceConnectEndpoint {
    /// The source address of the endpoint's connections when it does not preserve client IPs.
    pub fn interface_ip(&self, subnet: &Subnet) -> Ipv4Addr {
        self.private_ip
            .unwrap_or_else(|| Ipv4Addr::from(u32::from(subnet.cidr.network).saturating_add(4)))
    }
}

fn default_created_at() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2024-01-15T09:00:00Z")
        .map(|datetime| datetime.with_timezone(&Utc))
        .unwrap_or_default()
}

/// An EC2 Instance Connect Endpoint's lifecycle state, as `DescribeInstanceConnectEndpoints`
/// reports it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EndpointState {
    CreateInProgress,
    #[default]
    CreateComplete,
    CreateFailed,
    DeleteInProgress,
    DeleteComplete,
    DeleteFailed,
    UpdateInProgress,
    UpdateComplete,
    UpdateFailed,
}

impl EndpointState {
    pub fn name(self) -> &'static str {
        match self {
            Self::CreateInProgress => "create-in-progress",
            Self::CreateComplete => "create-complete",
            Self::CreateFailed => "create-failed",
            Self::DeleteInProgress => "delete-in-progress",
            Self::DeleteComplete => "delete-complete",
            Self::DeleteFailed => "delete-failed",
            Self::UpdateInProgress => "update-in-progress",
            Self::UpdateComplete => "update-complete",
            Self::UpdateFailed => "update-failed",
        }
    }

    /// Whether the endpoint carries tunnels: once created, and while or after it is updated
    /// (the AWS CLI accepts the `update-*` states since 2.30.6 for this reason).
    pub fn serves_tunnels(self) -> bool {
        matches!(
            self,
            Self::CreateComplete
                | Self::UpdateInProgress
                | Self::UpdateComplete
                | Self::UpdateFailed
        )
    }
}

/// An EC2 instance. Its account, region and VPC follow from its subnet.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Instance {
    pub instance_id: String,
    pub subnet: String,
    pub state: InstanceState,
    #[serde(default)]
    pub platform: Platform,
    pub instance_type: String,
    #[serde(default)]
    pub architecture: Architecture,
    pub image_id: String,
    /// The AMI's name, as DescribeImages reports it.
    #[serde(default)]
    pub image_name: Option<String>,
    pub private_ip: Ipv4Addr,
    #[serde(default)]
    pub public_ip: Option<Ipv4Addr>,
    #[serde(default)]
    pub key_name: Option<String>,
    #[serde(deserialize_with = "toml_datetime")]
    pub launch_time: DateTime<Utc>,
    /// The SSM Agent, if one is installed and registered with Systems Manager.
    #[serde(default)]
    pub ssm_agent: Option<SsmAgent>,
    /// All tags, `Name` included.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// The security groups of the instance's primary network interface.
    #[serde(default)]
    pub security_groups: Vec<String>,
    /// What answers on each port a tunnel can reach.
    #[serde(default)]
    pub backends: Backends,
}

impl Instance {
    /// The `Name` tag, which is how people know their instances.
    pub fn name(&self) -> Option<&str> {
        self.tags.get("Name").map(String::as_str)
    }
}

/// EC2's instance lifecycle states, with their API codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum InstanceState {
    Pending,
    Running,
    ShuttingDown,
    Terminated,
    Stopping,
    Stopped,
}

impl InstanceState {
    /// The `instanceState/code` EC2 reports.
    pub fn code(self) -> u16 {
        match self {
            Self::Pending => 0,
            Self::Running => 16,
            Self::ShuttingDown => 32,
            Self::Terminated => 48,
            Self::Stopping => 64,
            Self::Stopped => 80,
        }
    }

    /// The `instanceState/name` EC2 reports (and the `instance-state-name` filter matches).
    pub fn name(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::ShuttingDown => "shutting-down",
            Self::Terminated => "terminated",
            Self::Stopping => "stopping",
            Self::Stopped => "stopped",
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    #[default]
    Linux,
    Windows,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum Architecture {
    #[default]
    #[serde(rename = "x86_64")]
    X86_64,
    #[serde(rename = "arm64")]
    Arm64,
}

impl Architecture {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::X86_64 => "x86_64",
            Self::Arm64 => "arm64",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SsmAgent {
    pub version: String,
    #[serde(default)]
    pub ping_status: PingStatus,
}

/// Systems Manager's view of an agent, as `DescribeInstanceInformation` reports it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum PingStatus {
    #[default]
    Online,
    ConnectionLost,
    Inactive,
}

/// An IPv4 CIDR block such as `10.0.0.0/16`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Cidr {
    pub network: Ipv4Addr,
    pub prefix_len: u8,
}

impl Ipv4Cidr {
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        self.contains_block(&Ipv4Cidr {
            network: ip,
            prefix_len: 32,
        })
    }

    pub fn contains_block(&self, other: &Ipv4Cidr) -> bool {
        other.prefix_len >= self.prefix_len
            && u32::from(other.network) & self.mask() == u32::from(self.network)
    }

    fn mask(&self) -> u32 {
        u32::MAX
            .checked_shl(32 - u32::from(self.prefix_len))
            .unwrap_or(0)
    }
}

impl std::str::FromStr for Ipv4Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || format!("`{s}` is not an IPv4 CIDR block such as 10.0.0.0/16");
        let (network, prefix_len) = s.split_once('/').ok_or_else(invalid)?;
        let network: Ipv4Addr = network.parse().map_err(|_| invalid())?;
        let prefix_len: u8 = prefix_len.parse().map_err(|_| invalid())?;
        if prefix_len > 32 {
            return Err(invalid());
        }
        let cidr = Ipv4Cidr {
            network,
            prefix_len,
        };
        if u32::from(network) & !cidr.mask() != 0 {
            return Err(format!("`{s}` has host bits set"));
        }
        Ok(cidr)
    }
}

impl std::fmt::Display for Ipv4Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix_len)
    }
}

impl<'de> Deserialize<'de> for Ipv4Cidr {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Accepts a TOML offset date-time (`2024-09-12T08:15:00Z`) or the same as a string.
fn toml_datetime<'de, D: Deserializer<'de>>(deserializer: D) -> Result<DateTime<Utc>, D::Error> {
    let text = match toml::Value::deserialize(deserializer)? {
        toml::Value::Datetime(datetime) => datetime.to_string(),
        toml::Value::String(text) => text,
        other => {
            return Err(serde::de::Error::custom(format!(
                "expected a date-time such as 2024-09-12T08:15:00Z, found {}",
                other.type_str()
            )));
        }
    };
    DateTime::parse_from_rfc3339(&text)
        .map(|datetime| datetime.with_timezone(&Utc))
        .map_err(|e| {
            serde::de::Error::custom(format!(
                "`{text}` is not an RFC 3339 date-time with an offset ({e})"
            ))
        })
}

/// Where an instance lives, resolved through its subnet.
#[derive(Debug, Clone, Copy)]
pub struct Placement<'a> {
    pub account: &'a str,
    pub region: &'a str,
    pub vpc: &'a Vpc,
    pub subnet: &'a Subnet,
}

impl Scenario {
    /// Parses and validates a scenario.
    pub fn from_toml_str(text: &str) -> Result<Scenario, ScenarioError> {
        let scenario: Scenario = toml::from_str(text).map_err(ScenarioError::Parse)?;
        scenario.validate()?;
        Ok(scenario)
    }

    /// Reads, parses and validates a scenario file.
    pub fn load(path: impl AsRef<Path>) -> Result<Scenario, ScenarioError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
            path: PathBuf::from(path),
            source,
        })?;
        Scenario::from_toml_str(&text).map_err(|error| ScenarioError::InFile {
            path: PathBuf::from(path),
            error: Box::new(error),
        })
    }

    /// The built-in demo scenario (`tests/scenarios/demo.toml`).
    pub fn demo() -> Scenario {
        // The file is checked in and covered by tests, so failing here is a build defect.
        Scenario::from_toml_str(DEMO_TOML).expect("the built-in demo scenario is valid")
    }

    /// Checks every reference and identifier; run by the loaders and by `Simulator::start`.
    pub fn validate(&self) -> Result<(), ScenarioError> {
        validate::validate(self)?;
        identity::validate(self)
    }

    pub fn profile(&self, name: &str) -> Option<&Profile> {
        self.profiles.iter().find(|p| p.name == name)
    }

    pub fn profile_by_access_key(&self, access_key_id: &str) -> Option<&Profile> {
        self.profiles
            .iter()
            .find(|p| p.access_key_id == access_key_id)
    }

    pub fn vpc(&self, id: &str) -> Option<&Vpc> {
        self.index().vpcs.get(id).map(|&at| &self.vpcs[at])
    }

    pub fn subnet(&self, id: &str) -> Option<&Subnet> {
        self.index().subnets.get(id).map(|&at| &self.subnets[at])
    }

    /// Forgets the lookups, after the lists were changed in place.
    pub fn reindex(&mut self) {
        self.index = std::sync::OnceLock::new();
    }

    fn index(&self) -> &Index {
        self.index.get_or_init(|| {
            let positions = |ids: &mut dyn Iterator<Item = &String>| {
                ids.enumerate()
                    .map(|(at, id)| (id.clone(), at))
                    .collect::<std::collections::HashMap<_, _>>()
            };
            let mut index = Index {
                vpcs: positions(&mut self.vpcs.iter().map(|v| &v.id)),
                subnets: positions(&mut self.subnets.iter().map(|s| &s.id)),
                instances: positions(&mut self.instances.iter().map(|i| &i.instance_id)),
                by_region: Default::default(),
            };
            for (at, instance) in self.instances.iter().enumerate() {
                let vpc = index
                    .subnets
                    .get(&instance.subnet)
                    .and_then(|&s| index.vpcs.get(&self.subnets[s].vpc))
                    .map(|&v| &self.vpcs[v]);
                if let Some(vpc) = vpc {
                    index
                        .by_region
                        .entry((vpc.account.clone(), vpc.region.clone()))
                        .or_default()
                        .push(at);
                }
            }
            index
        })
    }

    pub fn security_group(&self, id: &str) -> Option<&SecurityGroup> {
        self.security_groups.iter().find(|g| g.id == id)
    }

    pub fn eic_endpoint(&self, id: &str) -> Option<&InstanceConnectEndpoint> {
        self.eic_endpoints.iter().find(|e| e.id == id)
    }

    pub fn instance(&self, id: &str) -> Option<&Instance> {
        self.index()
            .instances
            .get(id)
            .map(|&at| &self.instances[at])
    }

    /// The instance whose `Name` tag is `name`, in any account (names are unique only by habit).
    pub fn instance_named(&self, name: &str) -> Option<&Instance> {
        self.instances.iter().find(|i| i.name() == Some(name))
    }

    /// Resolves an instance's subnet, VPC, account and region. `None` only for an instance
    /// that `validate` would reject.
    pub fn placement<'a>(&'a self, instance: &Instance) -> Option<Placement<'a>> {
        let subnet = self.subnet(&instance.subnet)?;
        let vpc = self.vpc(&subnet.vpc)?;
        Some(Placement {
            account: &vpc.account,
            region: &vpc.region,
            vpc,
            subnet,
        })
    }

    /// Whether `account` may use `region`; `None` when either is not in the scenario.
    pub fn opt_in_status(&self, account: &str, region: &str) -> Option<OptInStatus> {
        let account = self.accounts.iter().find(|a| a.id == account)?;
        if !self.regions.iter().any(|r| r == region) {
            return None;
        }
        Some(if !OPT_IN_REGIONS.contains(&region) {
            OptInStatus::NotRequired
        } else if account.opted_in_regions.iter().any(|r| r == region) {
            OptInStatus::OptedIn
        } else {
            OptInStatus::NotOptedIn
        })
    }

    /// The VPCs of one account and region, in scenario order.
    pub fn vpcs_in<'a>(
        &'a self,
        account: &'a str,
        region: &'a str,
    ) -> impl Iterator<Item = &'a Vpc> + 'a {
        self.vpcs
            .iter()
            .filter(move |vpc| vpc.account == account && vpc.region == region)
    }

    /// The VPC a subnet, security group or endpoint belongs to, given its VPC id.
    pub fn vpc_in<'a>(&'a self, vpc_id: &str, account: &str, region: &str) -> Option<&'a Vpc> {
        self.vpc(vpc_id)
            .filter(|vpc| vpc.account == account && vpc.region == region)
    }

    /// The instances in one region, every account's, in scenario order (from the index, not
    /// a scan of every instance: `DescribeImages` asks this on every call).
    pub fn instances_in_region<'a>(&'a self, region: &str) -> impl Iterator<Item = &'a Instance> {
        let mut positions: Vec<usize> = self
            .index()
            .by_region
            .iter()
            .filter(|((_, r), _)| r == region)
            .flat_map(|(_, at)| at.iter().copied())
            .collect();
        positions.sort_unstable();
        positions.into_iter().map(|at| &self.instances[at])
    }

    /// The instances in one account and region, in scenario order: what that caller can see.
    pub fn instances_in<'a>(
        &'a self,
        account: &'a str,
        region: &'a str,
    ) -> impl Iterator<Item = (&'a Instance, Placement<'a>)> + 'a {
        self.index()
            .by_region
            .get(&(account.to_owned(), region.to_owned()))
            .into_iter()
            .flatten()
            .filter_map(move |&at| {
                let instance = &self.instances[at];
                Some((instance, self.placement(instance)?))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether `vpc` has an EC2 Instance Connect Endpoint.
    fn has_endpoint(scenario: &Scenario, vpc: &str) -> bool {
        scenario
            .eic_endpoints
            .iter()
            .filter_map(|endpoint| scenario.subnet(&endpoint.subnet))
            .any(|subnet| subnet.vpc == vpc)
    }

    struct Host<'a> {
        instance: &'a Instance,
        behind_endpoint: bool,
        ssm_online: bool,
    }

    fn host<'a>(scenario: &'a Scenario, name: &str) -> Host<'a> {
        let instance = scenario
            .instance_named(name)
            .unwrap_or_else(|| panic!("the demo has no `{name}`"));
        let placement = scenario.placement(instance).expect("placed");
        Host {
            instance,
            behind_endpoint: has_endpoint(scenario, &placement.vpc.id),
            ssm_online: instance
                .ssm_agent
                .as_ref()
                .is_some_and(|agent| agent.ping_status == PingStatus::Online),
        }
    }

    #[test]
    fn the_demo_file_loads_from_disk_like_the_built_in_copy() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/demo.toml");
        let loaded = Scenario::load(&path).expect("loads");
        assert_eq!(loaded.instances.len(), Scenario::demo().instances.len());
    }

    #[test]
    fn a_scenario_file_with_a_mistake_is_named_in_the_error() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = dir.path().join("broken.toml");
        std::fs::write(&path, "regions = []\naccounts = []\nprofiles = []\n").expect("written");
        let error = Scenario::load(&path).expect_err("no regions").to_string();
        assert!(error.contains("broken.toml"), "{error}");
        assert!(error.contains("`regions` is empty"), "{error}");
        let missing = Scenario::load(dir.path().join("absent.toml"))
            .expect_err("no such file")
            .to_string();
        assert!(missing.starts_with("cannot read scenario"), "{missing}");
    }

    #[test]
    fn the_demo_has_the_named_hosts_every_route_needs() {
        let demo = Scenario::demo();
        let web = host(&demo, "web-eic-1");
        assert!(web.behind_endpoint && web.instance.ssm_agent.is_none());
        assert_eq!(web.instance.platform, Platform::Linux);
        let app = host(&demo, "app-ssm-1");
        assert!(app.ssm_online && !app.behind_endpoint);
        assert_eq!(app.instance.platform, Platform::Linux);
        let both = host(&demo, "db-both-1");
        assert!(both.ssm_online && both.behind_endpoint);
        assert_eq!(both.instance.platform, Platform::Linux);
        let win_ssm = host(&demo, "win-ssm-1");
        assert!(win_ssm.ssm_online && win_ssm.instance.platform == Platform::Windows);
        let win_eic = host(&demo, "win-eic-1");
        assert!(win_eic.behind_endpoint && win_eic.instance.platform == Platform::Windows);
        let none = host(&demo, "legacy-none-1");
        assert!(!none.behind_endpoint && none.instance.ssm_agent.is_none());
        assert_eq!(none.instance.public_ip, None);
        assert_eq!(
            host(&demo, "stopped-1").instance.state,
            InstanceState::Stopped
        );
        for named in [&web, &app, &both, &win_ssm, &win_eic, &none] {
            assert_eq!(named.instance.state, InstanceState::Running);
        }
    }

    #[test]
    fn the_demo_serves_ssh_on_linux_and_rdp_on_windows_and_closes_two_hosts_to_their_endpoint() {
        let demo = Scenario::demo();
        for instance in &demo.instances {
            let expected = match instance.platform {
                Platform::Linux => (22, Backend::Sshd),
                Platform::Windows => (3389, Backend::Echo),
            };
            assert_eq!(
                instance.backends.iter().collect::<Vec<_>>(),
                [expected],
                "{}",
                instance.instance_id
            );
            assert!(
                !instance.security_groups.is_empty(),
                "{}",
                instance.instance_id
            );
        }
        // grafana-1 and cache-eu-1 sit behind endpoints whose groups they do not admit.
        for name in ["grafana-1", "cache-eu-1", "web-eic-1"] {
            let instance = demo.instance_named(name).expect("in the demo");
            let placement = demo.placement(instance).expect("placed");
            let endpoint = demo
                .eic_endpoints
                .iter()
                .find(|e| {
                    demo.subnet(&e.subnet)
                        .is_some_and(|s| s.vpc == placement.vpc.id)
                })
                .expect("behind an endpoint");
            let admits_ssh = instance
                .security_groups
                .iter()
                .filter_map(|id| demo.security_group(id))
                .flat_map(|group| &group.ingress)
                .any(|rule| {
                    rule.admits_tcp(
                        22,
                        Peer {
                            ip: endpoint
                                .interface_ip(demo.subnet(&endpoint.subnet).expect("a subnet")),
                            groups: &endpoint.security_groups,
                        },
                    )
                });
            assert_eq!(admits_ssh, name == "web-eic-1", "{name}");
        }
    }

    #[test]
    fn iam_action_patterns_match_with_wildcards() {
        assert!(glob_match(
            "ec2-instance-connect:*",
            "ec2-instance-connect:OpenTunnel"
        ));
        assert!(glob_match(
            "*:Send*Key",
            "ec2-instance-connect:SendSSHPublicKey"
        ));
        assert!(!glob_match("ec2:*", "ec2-instance-connect:OpenTunnel"));
        assert!(glob_match("ec2:DescribeVpcs", "ec2:DescribeVpcs"));
        let demo = Scenario::demo();
        let readonly = demo.profile("prod-readonly").expect("in the demo");
        assert!(!readonly.may("ec2-instance-connect:OpenTunnel"));
        assert!(readonly.may("ec2:DescribeInstances"));
    }

    #[test]
    fn the_demo_spreads_a_mix_of_hosts_over_accounts_profiles_and_regions() {
        let demo = Scenario::demo();
        assert!(demo.instances.len() >= 40, "{}", demo.instances.len());
        assert_eq!(demo.regions.len(), 4);
        assert_eq!(demo.accounts.len(), 2);
        assert!(demo.profiles.len() >= 3);
        for account in &demo.accounts {
            assert!(demo.profiles.iter().any(|p| p.account == account.id));
        }
        for profile in &demo.profiles {
            let visible: Vec<&Instance> = demo
                .instances_in(&profile.account, &profile.region)
                .map(|(instance, _)| instance)
                .collect();
            let any = |test: &dyn Fn(&Instance) -> bool| visible.iter().any(|i| test(i));
            assert!(
                visible.len() >= 6,
                "profile {} sees {}",
                profile.name,
                visible.len()
            );
            assert!(
                any(&|i| i.platform == Platform::Windows),
                "{}",
                profile.name
            );
            assert!(any(&|i| i.platform == Platform::Linux), "{}", profile.name);
            assert!(
                any(&|i| i.state == InstanceState::Running),
                "{}",
                profile.name
            );
            assert!(
                any(&|i| i.state == InstanceState::Stopped),
                "{}",
                profile.name
            );
            assert!(any(&|i| i.ssm_agent.is_some()), "{}", profile.name);
            assert!(any(&|i| i.ssm_agent.is_none()), "{}", profile.name);
        }
    }
}
