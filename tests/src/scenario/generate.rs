//! Large generated scenarios for benchmarks: `profiles=30,regions=17,instances=200`.
//!
//! The shape is what a big organisation's config looks like: every profile reaches an account
//! of its own (or `accounts=N` shares N accounts between them, as admin and read-only roles
//! do), every account uses the first `regions` of the 17 regions enabled by default, and each
//! account has `instances` instances spread evenly over its regions, each region with a VPC, an
//! EC2 Instance Connect Endpoint, and a mix of hosts reachable by EIC, by Session Manager, both,
//! and Windows hosts. Everything is derived from the numbers, so two runs generate the same ids.
//!
//! The generator writes TOML and loads it like any scenario file, so a generated scenario is
//! validated by the same rules and can be printed for inspection (`bastionless-sim --generate
//! … --print-scenario`).

use std::fmt::Write as _;

use sha2::{Digest, Sha256};

use super::{Scenario, ScenarioError};

/// The regions every account has enabled by default, in the order they are used.
pub const DEFAULT_REGIONS: [&str; 17] = [
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
    "ca-central-1",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "eu-central-1",
    "eu-north-1",
    "ap-south-1",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ap-southeast-1",
    "ap-southeast-2",
    "sa-east-1",
];

/// Hosts per subnet (a /24 holds 251 usable addresses at AWS).
const HOSTS_PER_SUBNET: usize = 200;

/// What to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GenerateSpec {
    pub profiles: usize,
    /// Distinct accounts the profiles reach; as many as profiles unless given.
    pub accounts: usize,
    pub regions: usize,
    /// Instances per account, spread over its regions.
    pub instances: usize,
}

impl std::str::FromStr for GenerateSpec {
    type Err = String;

    /// `profiles=30,regions=17,instances=200[,accounts=15]`.
    fn from_str(text: &str) -> Result<GenerateSpec, String> {
        let (mut profiles, mut accounts, mut regions, mut instances) = (None, None, None, None);
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = part
                .split_once('=')
                .ok_or_else(|| format!("`{part}`: expected KEY=NUMBER"))?;
            let number: usize = value
                .trim()
                .parse()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("`{part}`: {value} is not a count above 0"))?;
            let slot = match key.trim() {
                "profiles" => &mut profiles,
                "accounts" => &mut accounts,
                "regions" => &mut regions,
                "instances" => &mut instances,
                other => {
                    return Err(format!(
                        "unknown `{other}`; use profiles=, regions=, instances= and optionally accounts="
                    ));
                }
            };
            *slot = Some(number);
        }
        let profiles = profiles.ok_or("profiles= is required")?;
        let regions = regions.ok_or("regions= is required")?;
        if regions > DEFAULT_REGIONS.len() {
            return Err(format!(
                "regions={regions}: at most {} regions are enabled by default",
                DEFAULT_REGIONS.len()
            ));
        }
        let accounts = accounts.unwrap_or(profiles);
        if accounts > profiles {
            return Err(format!(
                "accounts={accounts} is more than profiles={profiles}: each account needs a profile"
            ));
        }
        if accounts > 999 {
            return Err("at most 999 accounts".to_owned());
        }
        Ok(GenerateSpec {
            profiles,
            accounts,
            regions,
            instances: instances.ok_or("instances= is required")?,
        })
    }
}

impl Scenario {
    /// The scenario `spec` describes.
    pub fn generate(spec: &GenerateSpec) -> Result<Scenario, ScenarioError> {
        Scenario::from_toml_str(&generate_toml(spec))
    }
}

/// The TOML text of the scenario `spec` describes.
pub fn generate_toml(spec: &GenerateSpec) -> String {
    let regions = &DEFAULT_REGIONS[..spec.regions];
    let mut toml = String::new();
    let _ = writeln!(
        toml,
        "# Generated: profiles={}, accounts={}, regions={}, instances={} per account.\n",
        spec.profiles, spec.accounts, spec.regions, spec.instances
    );
    let quoted: Vec<String> = regions.iter().map(|r| format!("\"{r}\"")).collect();
    let _ = writeln!(toml, "regions = [{}]\n", quoted.join(", "));

    for account in 0..spec.accounts {
        let _ = writeln!(
            toml,
            "[[accounts]]\nid = \"{}\"\nalias = \"org-{account:03}\"\n",
            account_id(account)
        );
    }
    for profile in 0..spec.profiles {
        let account = profile % spec.accounts;
        let _ = writeln!(
            toml,
            "[[profiles]]\nname = \"p{profile:03}\"\naccount = \"{}\"\nregion = \"{}\"\n\
             access_key_id = \"AKIA{}\"\nsecret_access_key = \"{}\"\n",
            account_id(account),
            regions[profile % regions.len()],
            upper_alnum(&format!("key/{profile}"), 16),
            base64ish(&format!("secret/{profile}"), 40),
        );
    }
    for account in 0..spec.accounts {
        let mut left = spec.instances;
        for (index, region) in regions.iter().enumerate() {
            // Even spread; the first regions take the remainder.
            let here = left.div_ceil(regions.len() - index);
            left -= here;
            region_toml(&mut toml, account, index, region, here);
        }
    }
    toml
}

/// One account's VPC, subnets, security groups, endpoint and `count` instances in one region.
fn region_toml(toml: &mut String, account: usize, region_index: usize, region: &str, count: usize) {
    let scope = format!("{account}/{region}");
    let vpc = id("vpc", &scope);
    let endpoint_sg = id("sg", &format!("{scope}/eice"));
    let hosts_sg = id("sg", &format!("{scope}/hosts"));
    let octet = region_index + 1;
    let _ = writeln!(
        toml,
        "[[vpcs]]\nid = \"{vpc}\"\nname = \"org-{account:03}-main\"\naccount = \"{}\"\n\
         region = \"{region}\"\ncidr = \"10.{octet}.0.0/16\"\n",
        account_id(account)
    );
    let subnets: Vec<String> = (0..count.div_ceil(HOSTS_PER_SUBNET).max(1))
        .map(|k| {
            let subnet = id("subnet", &format!("{scope}/{k}"));
            let _ = writeln!(
                toml,
                "[[subnets]]\nid = \"{subnet}\"\nvpc = \"{vpc}\"\ncidr = \"10.{octet}.{}.0/24\"\n\
                 availability_zone = \"{region}{}\"\n",
                k + 1,
                ['a', 'b', 'c'][k % 3],
            );
            subnet
        })
        .collect();
    let _ = writeln!(
        toml,
        "[[security_groups]]\nid = \"{endpoint_sg}\"\nname = \"eice\"\ndescription = \"EC2 Instance Connect Endpoint\"\n\
         vpc = \"{vpc}\"\negress = [\n  {{ protocol = \"tcp\", from_port = 22, to_port = 22, cidrs = [\"10.{octet}.0.0/16\"] }},\n  \
         {{ protocol = \"tcp\", from_port = 3389, to_port = 3389, cidrs = [\"10.{octet}.0.0/16\"] }},\n]\n\n\
         [[security_groups]]\nid = \"{hosts_sg}\"\nname = \"hosts\"\ndescription = \"Hosts\"\nvpc = \"{vpc}\"\n\
         ingress = [\n  {{ protocol = \"tcp\", from_port = 22, to_port = 22, groups = [\"{endpoint_sg}\"] }},\n  \
         {{ protocol = \"tcp\", from_port = 3389, to_port = 3389, groups = [\"{endpoint_sg}\"] }},\n]\n"
    );
    let _ = writeln!(
        toml,
        "[[eic_endpoints]]\nid = \"{}\"\nsubnet = \"{}\"\nstate = \"create-complete\"\n\
         security_groups = [\"{endpoint_sg}\"]\ncreated_at = 2024-01-15T09:00:00Z\n",
        id("eice", &scope),
        subnets[0]
    );
    for n in 0..count {
        let subnet = n / HOSTS_PER_SUBNET;
        // Four kinds in turn: EIC only, Session Manager only, both, Windows with both.
        let (platform, agent, name) = match n % 4 {
            0 => ("linux", false, "web"),
            1 => ("linux", true, "app"),
            2 => ("linux", true, "db"),
            _ => ("windows", true, "win"),
        };
        let _ = writeln!(
            toml,
            "[[instances]]\ninstance_id = \"{}\"\nsubnet = \"{}\"\nstate = \"{}\"\nplatform = \"{platform}\"\n\
             instance_type = \"t3.small\"\nimage_id = \"ami-02360a8ff6d9d8189\"\nprivate_ip = \"10.{octet}.{}.{}\"\n\
             launch_time = 2024-09-12T08:15:00Z\ntags = {{ Name = \"{name}-{account:03}-{region}-{n}\", Env = \"{}\" }}\n\
             security_groups = [\"{hosts_sg}\"]{}\n",
            id("i", &format!("{scope}/{n}")),
            subnets[subnet],
            if n % 25 == 24 { "stopped" } else { "running" },
            subnet + 1,
            n % HOSTS_PER_SUBNET + 10,
            ["prod", "staging", "dev"][n % 3],
            if agent {
                "\nssm_agent = { version = \"3.3.1142.0\", ping_status = \"Online\" }"
            } else {
                ""
            },
        );
    }
}

/// `NNNNNNNNNNNN`: twelve digits, distinct per account.
fn account_id(account: usize) -> String {
    format!("{:012}", 200_000_000_000u64 + account as u64 * 1_001)
}

/// `prefix-` and 17 hex digits derived from `seed`, AWS's id shape.
fn id(prefix: &str, seed: &str) -> String {
    let digest = hex::encode(Sha256::digest(format!("{prefix}/{seed}").as_bytes()));
    format!("{prefix}-0{}", &digest[..16])
}

/// `len` characters of `A–Z0–9` derived from `seed` (access key ids).
fn upper_alnum(seed: &str, len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    digest_chars(seed, len, ALPHABET)
}

/// `len` characters of the secret-key alphabet derived from `seed`.
fn base64ish(seed: &str, len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    digest_chars(seed, len, ALPHABET)
}

fn digest_chars(seed: &str, len: usize, alphabet: &[u8]) -> String {
    let mut out = String::with_capacity(len);
    let mut round = 0u32;
    while out.len() < len {
        for byte in Sha256::digest(format!("{seed}/{round}").as_bytes()) {
            if out.len() == len {
                break;
            }
            out.push(char::from(alphabet[usize::from(byte) % alphabet.len()]));
        }
        round += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_benchmark_scenario_generates_valid_and_to_size() {
        let spec: GenerateSpec = "profiles=30,regions=17,instances=200"
            .parse()
            .expect("parses");
        assert_eq!(spec.accounts, 30);
        let scenario = Scenario::generate(&spec).expect("a valid scenario");
        assert_eq!(scenario.profiles.len(), 30);
        assert_eq!(scenario.accounts.len(), 30);
        assert_eq!(scenario.regions.len(), 17);
        assert_eq!(scenario.instances.len(), 30 * 200);
        assert_eq!(scenario.eic_endpoints.len(), 30 * 17);
    }

    #[test]
    fn shared_accounts_and_many_instances_per_region() {
        let spec: GenerateSpec = "profiles=4,accounts=2,regions=2,instances=900"
            .parse()
            .expect("parses");
        let scenario = Scenario::generate(&spec).expect("a valid scenario");
        assert_eq!(scenario.accounts.len(), 2);
        assert_eq!(scenario.instances.len(), 1800);
        let in_first_region = scenario
            .instances
            .iter()
            .filter(|i| i.private_ip.octets()[1] == 1)
            .count();
        assert_eq!(in_first_region, 900, "450 per account in each of 2 regions");
    }

    #[test]
    fn generating_twice_gives_the_same_scenario() {
        let spec: GenerateSpec = "profiles=3,regions=2,instances=8".parse().expect("parses");
        assert_eq!(generate_toml(&spec), generate_toml(&spec));
    }

    #[test]
    fn bad_specs_say_what_is_wrong() {
        for (text, expected) in [
            ("profiles=3,regions=18,instances=1", "at most 17"),
            ("profiles=3,regions=2", "instances= is required"),
            ("profiles=3,regions=2,instances=0", "not a count above 0"),
            (
                "profiles=2,accounts=3,regions=2,instances=1",
                "each account needs a profile",
            ),
            ("hosts=3", "unknown `hosts`"),
        ] {
            let error = text.parse::<GenerateSpec>().expect_err(text);
            assert!(error.contains(expected), "{text}: {error}");
        }
    }
}
