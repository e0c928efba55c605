//! The last inventory on disk, so the next start shows hosts at once instead of an empty list
//! while every region is scanned again.
//!
//! It holds what a scan found — hosts, EC2 Instance Connect Endpoints, security groups, which
//! account each profile reached — and nothing secret: no credentials, tokens or keys. It is
//! written whole after each completed refresh, to a temporary file in the same directory that
//! is then renamed over the old one, so a crash mid-write leaves the previous cache intact. A
//! file that cannot be read back (damaged, or written by another version) is only a warning:
//! the refresh that follows replaces it.
//!
//! The format is a header line naming the file, the format version, then the inventory in
//! postcard (a compact serde format): the window cannot show its first frame until the cache
//! is read, and 10,000 hosts took tens of milliseconds to parse as JSON. Each region's hosts
//! are stored in the order the host list shows them, so a start need not sort them. The version is read
//! before anything else, so a cache another version wrote is reported as such, not misread.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::{Host, RegionFacts};

/// Changed whenever the format changes in a way older readers would misread. Version 1 was
/// JSON.
const FORMAT_VERSION: u32 = 2;

/// How every cache file starts, followed by the format version (4 bytes, little-endian).
const MAGIC: &[u8] = b"bastionless host cache\n";

/// Everything the cache holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InventoryCache {
    pub version: u32,
    pub written_at: SystemTime,
    /// The account each profile reached, by profile name.
    pub accounts: BTreeMap<String, String>,
    pub regions: Vec<CachedRegion>,
}

/// One scanned account and region.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CachedRegion {
    pub account_id: String,
    pub region: String,
    pub facts: RegionFacts,
    pub hosts: Vec<Host>,
}

/// The order the host list shows hosts in: by profile, region and name (the instance id when
/// it has no name).
pub fn listing_order(a: &Host, b: &Host) -> std::cmp::Ordering {
    (&a.profile, &a.region, a.display_name()).cmp(&(&b.profile, &b.region, b.display_name()))
}

impl InventoryCache {
    /// The cache of `regions`, each region's hosts put in [`listing_order`]: sorted once here,
    /// so the next start's sort finds them in order (one comparison per host).
    pub fn new(accounts: BTreeMap<String, String>, mut regions: Vec<CachedRegion>) -> Self {
        for region in &mut regions {
            region.hosts.sort_by(listing_order);
        }
        Self {
            version: FORMAT_VERSION,
            written_at: SystemTime::now(),
            accounts,
            regions,
        }
    }

    /// Where the cache lives unless configured otherwise: the OS cache directory
    /// (`~/.cache/bastionless` on Linux, `~/Library/Caches/bastionless` on macOS,
    /// `%LOCALAPPDATA%\bastionless\cache` on Windows); `None` when there is no home directory.
    pub fn default_path() -> Option<PathBuf> {
        directories::ProjectDirs::from("", "", "bastionless")
            .map(|dirs| dirs.cache_dir().join("inventory.bin"))
    }

    /// The cache at `path`; `Ok(None)` when there is none yet. The error says what is wrong
    /// with the file; it is never a reason to stop.
    pub fn load(path: &Path) -> Result<Option<Self>, String> {
        let text = match std::fs::read(path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => {
                return Err(format!(
                    "could not read the host cache {}: {error}",
                    path.display()
                ));
            }
        };
        let unusable = |why: String| {
            format!(
                "the host cache {} is unusable ({why}); it is ignored and will be rewritten \
                 after this refresh",
                path.display()
            )
        };
        let Some(rest) = text.strip_prefix(MAGIC) else {
            return Err(unusable(if text.starts_with(b"{") {
                format!("format 1 where this version writes {FORMAT_VERSION}")
            } else {
                "not a Bastionless host cache".to_owned()
            }));
        };
        let Some((version, body)) = rest.split_first_chunk::<4>() else {
            return Err(unusable(
                "damaged: it ends before its format version".to_owned(),
            ));
        };
        let version = u32::from_le_bytes(*version);
        if version != FORMAT_VERSION {
            return Err(unusable(format!(
                "format {version} where this version writes {FORMAT_VERSION}"
            )));
        }
        match postcard::take_from_bytes::<Self>(body) {
            Ok((cache, [])) => Ok(Some(cache)),
            Ok((_, extra)) => Err(unusable(format!(
                "damaged: {} bytes after its end",
                extra.len()
            ))),
            Err(error) => Err(unusable(format!("damaged: {error}"))),
        }
    }

    /// Writes the cache to `path` atomically, creating its directory if needed.
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let dir = path
            .parent()
            .filter(|dir| !dir.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)?;
        let body = postcard::to_allocvec(self).map_err(std::io::Error::other)?;
        let mut file = tempfile::NamedTempFile::new_in(dir)?;
        file.write_all(MAGIC)?;
        file.write_all(&FORMAT_VERSION.to_le_bytes())?;
        file.write_all(&body)?;
        file.flush()?;
        file.as_file().sync_all()?;
        file.persist(path).map_err(|e| e.error)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::{
        EicEndpoint, EicEndpointState, InstanceState, Listing, Peer, PingStatus, Platform,
        RulePeer, RuleProtocol, SecurityGroup, SecurityGroupRule, SsmInfo,
    };

    fn region() -> CachedRegion {
        let host = Host {
            instance_id: "i-0123456789abcdef0".into(),
            name: Some("web-eic-1".into()),
            tags: [("Name".to_owned(), "web-eic-1".to_owned())].into(),
            state: InstanceState::Running,
            platform: Platform::Linux,
            private_ip: Some("10.10.1.21".into()),
            public_ip: None,
            vpc_id: Some("vpc-a".into()),
            subnet_id: Some("subnet-a1".into()),
            availability_zone: Some("us-east-1a".into()),
            key_name: None,
            image: None,
            security_group_ids: vec!["sg-web".into()],
            profile: "prod".into(),
            account_id: "111122223333".into(),
            region: "us-east-1".into(),
            stale: false,
        };
        let endpoint = EicEndpoint {
            id: "eice-0aaa".into(),
            state: EicEndpointState::CreateComplete,
            vpc_id: Some("vpc-a".into()),
            subnet_id: Some("subnet-a1".into()),
            subnet_cidr: Some("10.10.1.0/24".parse().unwrap()),
            dns_name: Some("eice-0aaa.example".into()),
            fips_dns_name: None,
            security_group_ids: vec!["sg-eice".into()],
            preserve_client_ip: false,
            profile: "prod".into(),
            account_id: "111122223333".into(),
            region: "us-east-1".into(),
        };
        let group = SecurityGroup {
            id: "sg-web".into(),
            name: "web".into(),
            ingress: vec![SecurityGroupRule {
                protocol: RuleProtocol::Tcp,
                ports: Some((22, 22)),
                peers: vec![RulePeer {
                    peer: Peer::Group("sg-eice".into()),
                    description: Some("SSH from the endpoint".into()),
                }],
            }],
            egress: vec![],
        };
        CachedRegion {
            account_id: "111122223333".into(),
            region: "us-east-1".into(),
            facts: RegionFacts {
                profile: "prod".into(),
                eic_endpoints: Listing::Listed(vec![endpoint]),
                security_groups: Listing::Listed(vec![group]),
                ssm: Listing::Listed(vec![SsmInfo {
                    instance_id: "i-0123456789abcdef0".into(),
                    ping_status: PingStatus::Online,
                    agent_version: Some("3.3.1142.0".into()),
                }]),
            },
            hosts: vec![host],
        }
    }

    #[test]
    fn a_saved_cache_reads_back_the_same_and_holds_no_credentials() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested").join("inventory.bin");
        assert_eq!(InventoryCache::load(&path), Ok(None));
        let cache = InventoryCache::new(
            [("prod".to_owned(), "111122223333".to_owned())].into(),
            vec![region()],
        );
        cache.save(&path).unwrap();
        assert_eq!(InventoryCache::load(&path), Ok(Some(cache.clone())));

        let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).to_lowercase();
        assert!(text.contains("web-eic-1"), "strings are stored as they are");
        for secret in ["secret", "session_token", "aws_access_key_id", "AKIA"] {
            assert!(!text.contains(&secret.to_lowercase()), "{secret}");
        }
        // Saving again replaces the file and leaves no temporary files behind.
        cache.save(&path).unwrap();
        let files: Vec<_> = std::fs::read_dir(path.parent().unwrap()).unwrap().collect();
        assert_eq!(files.len(), 1);
    }

    #[test]
    fn a_region_s_hosts_are_kept_in_listing_order() {
        let mut second = region();
        let mut unnamed = second.hosts[0].clone();
        unnamed.instance_id = "i-0000000000000000a".into();
        unnamed.name = None;
        let mut named = second.hosts[0].clone();
        named.name = Some("api-1".into());
        second.hosts.extend([unnamed, named]);
        let cache = InventoryCache::new(BTreeMap::new(), vec![second]);
        let names: Vec<&str> = cache.regions[0]
            .hosts
            .iter()
            .map(Host::display_name)
            .collect();
        assert_eq!(names, ["api-1", "i-0000000000000000a", "web-eic-1"]);
    }

    #[test]
    fn a_damaged_or_foreign_cache_is_reported_not_fatal() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("inventory.bin");
        InventoryCache::new(BTreeMap::new(), vec![region()])
            .save(&path)
            .unwrap();
        let good = std::fs::read(&path).unwrap();
        let header = MAGIC.len() + 4;
        let mut other_version = good.clone();
        other_version[MAGIC.len()..header].copy_from_slice(&99u32.to_le_bytes());
        let with_extra = [good.as_slice(), b"x"].concat();
        let table: &[(&[u8], &str)] = &[
            (&good[..good.len() - 3], "damaged: "),
            (&good[..MAGIC.len() + 2], "ends before its format version"),
            (&with_extra, "damaged: 1 bytes after its end"),
            (b"not a cache at all", "not a Bastionless host cache"),
            (b"", "not a Bastionless host cache"),
            (
                b"{\"version\": 1, \"regions\": []}",
                "format 1 where this version writes 2",
            ),
            (&other_version, "format 99 where this version writes 2"),
        ];
        for (text, why) in table {
            std::fs::write(&path, text).unwrap();
            let error = InventoryCache::load(&path).unwrap_err();
            assert!(error.contains("is unusable ("), "{error}");
            assert!(error.contains(why), "{why}: {error}");
            assert!(error.contains("will be rewritten"), "{error}");
        }
    }
}
