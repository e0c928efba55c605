//! The immutable picture of everything the app shows, swapped whole by the engine.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::SystemTime;

use crate::inventory::{AccountRegion, Host, HostKey, HostQuery, KeyParts, RegionFacts};
use crate::route::{self, Purpose, RouteFacts, RouteReport};
use crate::tunnel::{TunnelEvent, TunnelStatus};

/// How many tunnel events a snapshot keeps (the newest).
pub const TUNNEL_EVENTS_KEPT: usize = 50;

/// How many notices a snapshot keeps (the newest).
pub const NOTICES_KEPT: usize = 20;

/// What the UI renders. Cheap to share: the engine publishes a new `Arc<Snapshot>` per change.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Increases with every published change, so a reader can tell two snapshots apart cheaply.
    pub generation: u64,
    pub profiles: Vec<ProfileStatus>,
    /// Every host found, sorted by profile, region and name. Hosts from the disk cache are
    /// marked `stale` until their region is scanned again. Shared, like `routes`: the engine
    /// copies the snapshot for every change (a tunnel's byte count, a notice), and a deep copy
    /// of 10,000 hosts and their routes cost milliseconds and tens of MB each time.
    pub hosts: Arc<Vec<Host>>,
    /// What each scanned account and region holds besides hosts: EC2 Instance Connect Endpoints
    /// and security groups.
    pub regions: BTreeMap<AccountRegion, RegionFacts>,
    /// Each host's routes for its usual purpose (SSH, or RDP on Windows), best first.
    pub routes: Arc<BTreeMap<HostKey, RouteReport>>,
    /// How far the refresh under way (or the last one) has got.
    pub progress: ScanProgress,
    /// When the disk cache the stale hosts come from was written; `None` when nothing shown
    /// came from it.
    pub cached_at: Option<SystemTime>,
    /// The disk cache is being read: its hosts (if any) are in the next snapshot. Only the
    /// engine's first snapshot says so, and only with a cache file configured.
    pub loading_cache: bool,
    /// Every tunnel, in the order they were asked for.
    pub tunnels: Vec<TunnelStatus>,
    /// The newest tunnel events (at most [`TUNNEL_EVENTS_KEPT`]), oldest first; each `seq` is
    /// larger than the last, so a reader shows the ones it has not seen.
    pub tunnel_events: Vec<TunnelEvent>,
    /// Whether an inventory refresh is under way.
    pub refreshing: bool,
    /// Problems that belong to no single profile (an unreadable config file, stray lines, a
    /// damaged cache).
    pub warnings: Vec<String>,
    /// Messages for the user about what they asked for (a connect that could not start, a
    /// terminal that was opened), at most [`NOTICES_KEPT`], oldest first; each `seq` is larger
    /// than the last, so a reader shows the ones it has not seen (as toasts).
    pub notices: Vec<Notice>,
    /// Each SSO session and whether it is signed in; sign in with `Command::SignIn`.
    pub sso_sessions: Vec<super::SsoSessionStatus>,
    /// A role assumption waiting for an MFA code; answer with `Command::SupplyMfaCode`.
    pub mfa_request: Option<super::MfaRequest>,
    /// Account aliases by account id, where a profile of the account may list them.
    pub account_aliases: BTreeMap<String, String>,
}

/// A user-facing message about something the user asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// Increases by one per notice.
    pub seq: u64,
    pub level: NoticeLevel,
    pub text: String,
    /// What the user can do about it, as a button next to the text.
    pub action: Option<NoticeAction>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeLevel {
    Info,
    Warning,
    Error,
}

/// A follow-up the UI can offer with a notice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoticeAction {
    /// The profile's credentials are missing or expired: sign in (SSO) or refresh them.
    SignIn { profile: String },
    /// EC2 Instance Connect cannot reach the host: connect the same way through Session
    /// Manager instead.
    UseSessionManager {
        host: crate::inventory::HostKey,
        how: super::ConnectHow,
    },
}

/// Regions scanned so far out of those known to need scanning; the total grows as each
/// account's enabled regions become known.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScanProgress {
    pub regions_done: usize,
    pub regions_total: usize,
}

/// One profile and how its last scan went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileStatus {
    pub name: String,
    /// The profile's home region, when it names one.
    pub region: Option<String>,
    /// Known once STS has answered (or from the disk cache until it does).
    pub account_id: Option<String>,
    /// Another profile that reaches the same account and scans its regions for both (the
    /// `AWS_PROFILE` one, else the first by name): this one then lists no hosts of its own.
    pub same_account_as: Option<String>,
    pub state: ProfileState,
    /// Parts of the last scan that failed without failing it (a region, EIC endpoints, security
    /// groups or AMI names could not be listed), each saying what is missing.
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProfileState {
    /// A scan is under way.
    Loading,
    /// The last scan succeeded; `hosts` were listed through this profile.
    Ready { hosts: usize },
    /// The profile cannot be used, or its last scan failed; the text says why and what to do.
    Failed { error: String },
}

impl Snapshot {
    /// Profiles whose last scan failed, with their error.
    pub fn failed_profiles(&self) -> impl Iterator<Item = (&str, &str)> {
        self.profiles.iter().filter_map(|p| match &p.state {
            ProfileState::Failed { error } => Some((p.name.as_str(), error.as_str())),
            _ => None,
        })
    }

    /// The hosts `query` names exactly: an instance id, a Name tag (ignoring case), or a private
    /// or public IP. More than one result means the query is ambiguous (two instances share a
    /// name, or private IPs repeat across VPCs).
    pub fn find_hosts(&self, query: &str) -> Vec<&Host> {
        let query = query.trim();
        if query.is_empty() {
            return Vec::new();
        }
        self.hosts
            .iter()
            .filter(|host| {
                host.instance_id.eq_ignore_ascii_case(query)
                    || host
                        .name
                        .as_deref()
                        .is_some_and(|n| n.eq_ignore_ascii_case(query))
                    || host.private_ip.as_deref() == Some(query)
                    || host.public_ip.as_deref() == Some(query)
            })
            .collect()
    }

    /// The instance `key` names, if the inventory has it.
    pub fn host(&self, key: &HostKey) -> Option<&Host> {
        self.hosts.iter().find(|h| h.has_key(key))
    }

    /// Profiles that can act on `host`: the one it was found through first, then every other
    /// profile whose last scan reached the same account, in name order. Any profile of an
    /// account reaches all its enabled regions, and a read-only role may list an instance that
    /// only an admin role of the same account may tunnel to.
    pub fn profiles_for<'a>(&'a self, host: &'a Host) -> impl Iterator<Item = &'a str> {
        let others = self.profiles.iter().filter(move |p| {
            p.name != host.profile
                && matches!(p.state, ProfileState::Ready { .. })
                && p.account_id.as_deref() == Some(host.account_id.as_str())
        });
        std::iter::once(host.profile.as_str()).chain(others.map(|p| p.name.as_str()))
    }

    /// The endpoints and security groups of `host`'s account and region, once scanned.
    pub fn region_facts(&self, host: &Host) -> Option<&RegionFacts> {
        self.regions.get(&AccountRegion {
            account_id: host.account_id.clone(),
            region: host.region.clone(),
        })
    }

    /// `host`'s routes for its usual purpose, as last worked out.
    pub fn route(&self, host: &Host) -> Option<&RouteReport> {
        self.routes.get(host as &dyn KeyParts)
    }

    /// Whether `host` matches the search `query`, judging `route:` terms by the host's best
    /// route as last worked out (looked up only when the query has one).
    pub fn matches(&self, query: &HostQuery, host: &Host) -> bool {
        let best = if query.needs_route() {
            self.route(host)
                .map(|report| report.best().map_or("none", |best| best.method.label()))
        } else {
            None
        };
        query.matches(host, best)
    }

    /// `host`'s routes to `purpose`'s port, from what the inventory knows now.
    pub fn assess_route(&self, host: &Host, purpose: Purpose) -> RouteReport {
        let facts = RouteFacts::for_host(host, self.region_facts(host));
        route::assess(host, purpose, &facts)
    }

    /// Works out the routes of the hosts in the regions `scope` names (every host when `None`)
    /// again, and drops those of hosts that are gone.
    pub(super) fn update_routes(&mut self, scope: Option<&BTreeSet<AccountRegion>>) {
        // Hosts come sorted by profile and region, so runs of them share the answer.
        let mut last_region: Option<(&str, &str, bool)> = None;
        // Built anew from the hosts, so routes of hosts that are gone are dropped; those out
        // of scope are carried over unchanged.
        let previous = std::mem::take(&mut self.routes);
        let mut routes = BTreeMap::new();
        for host in self.hosts.iter() {
            let in_scope = match (scope, last_region) {
                (None, _) => true,
                (Some(_), Some((account, region, answer)))
                    if account == host.account_id && region == host.region =>
                {
                    answer
                }
                (Some(regions), _) => {
                    let answer = regions.contains(&AccountRegion {
                        account_id: host.account_id.clone(),
                        region: host.region.clone(),
                    });
                    last_region = Some((&host.account_id, &host.region, answer));
                    answer
                }
            };
            let report = if in_scope {
                Some(self.assess_route(host, Purpose::for_host(host)))
            } else {
                previous.get(host as &dyn KeyParts).cloned()
            };
            if let Some(report) = report {
                routes.insert(host.key(), report);
            }
        }
        self.routes = Arc::new(routes);
    }
}

impl Snapshot {
    /// Adds `worked_out`, the routes of `for_hosts`, for the hosts that still lack one; routes
    /// already here were worked out later and stay, and routes of hosts that are gone are
    /// dropped.
    pub(super) fn add_routes(
        &mut self,
        for_hosts: &Arc<Vec<Host>>,
        mut worked_out: BTreeMap<HostKey, RouteReport>,
    ) {
        if self.routes.is_empty() && Arc::ptr_eq(&self.hosts, for_hosts) {
            self.routes = Arc::new(worked_out);
            return;
        }
        let mut routes = BTreeMap::new();
        for host in self.hosts.iter() {
            let key = host as &dyn KeyParts;
            let report = match self.routes.get(key) {
                Some(report) => Some(report.clone()),
                None => worked_out.remove(key),
            };
            if let Some(report) = report {
                routes.insert(host.key(), report);
            }
        }
        self.routes = Arc::new(routes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(profile: &str, account: &str, id: &str, name: Option<&str>, ip: &str) -> Host {
        Host {
            name: name.map(str::to_owned),
            private_ip: Some(ip.into()),
            ..Host::bare(profile, account, "us-east-1", id)
        }
    }

    fn profile(name: &str, account: Option<&str>, region: &str, ready: bool) -> ProfileStatus {
        ProfileStatus {
            name: name.into(),
            region: Some(region.into()),
            account_id: account.map(str::to_owned),
            same_account_as: None,
            state: if ready {
                ProfileState::Ready { hosts: 1 }
            } else {
                ProfileState::Failed {
                    error: "expired".into(),
                }
            },
            warnings: Vec::new(),
        }
    }

    fn snapshot() -> Snapshot {
        Snapshot {
            profiles: vec![
                profile("admin", Some("111"), "us-east-1", true),
                profile("broken", Some("111"), "us-east-1", false),
                profile("eu", Some("111"), "eu-west-1", true),
                profile("other", Some("222"), "us-east-1", true),
                profile("readonly", Some("111"), "us-east-1", true),
            ],
            hosts: vec![
                host("readonly", "111", "i-0aaa", Some("web-1"), "10.0.0.1"),
                host("admin", "111", "i-0bbb", Some("Web-1"), "10.0.0.2"),
                host("admin", "111", "i-0ccc", None, "10.0.0.3"),
                // Another account reuses the private IP.
                host("other", "222", "i-0ddd", Some("db"), "10.0.0.3"),
            ]
            .into(),
            ..Snapshot::default()
        }
    }

    fn ids(found: Vec<&Host>) -> Vec<&str> {
        found.iter().map(|h| h.instance_id.as_str()).collect()
    }

    #[test]
    fn hosts_are_found_by_id_name_or_ip() {
        let s = snapshot();
        assert_eq!(ids(s.find_hosts("i-0AAA")), ["i-0aaa"]);
        assert_eq!(ids(s.find_hosts(" db ")), ["i-0ddd"]);
        assert_eq!(ids(s.find_hosts("10.0.0.2")), ["i-0bbb"]);
        assert_eq!(
            s.host(&s.hosts[3].key()).map(|h| h.profile.as_str()),
            Some("other")
        );
    }

    #[test]
    fn ambiguous_queries_return_every_match() {
        let s = snapshot();
        assert_eq!(ids(s.find_hosts("web-1")), ["i-0aaa", "i-0bbb"]);
        assert_eq!(ids(s.find_hosts("10.0.0.3")), ["i-0ccc", "i-0ddd"]);
    }

    #[test]
    fn nothing_matches_an_empty_or_partial_query() {
        let s = snapshot();
        assert!(s.find_hosts("").is_empty());
        assert!(s.find_hosts("web").is_empty());
        assert!(s.find_hosts("10.0.0").is_empty());
    }

    #[test]
    fn a_host_s_own_profile_comes_first_then_working_profiles_of_its_account_in_any_region() {
        let s = snapshot();
        let profiles: Vec<&str> = s.profiles_for(&s.hosts[0]).collect();
        assert_eq!(profiles, ["readonly", "admin", "eu"]);
        let profiles: Vec<&str> = s.profiles_for(&s.hosts[3]).collect();
        assert_eq!(profiles, ["other"]);
    }

    #[test]
    fn routes_worked_out_late_fill_gaps_but_never_replace_newer_ones() {
        use crate::route::Verdict;
        let mut worked = snapshot();
        worked.update_routes(None);
        let for_hosts = worked.hosts.clone();

        // Unchanged meanwhile: the routes are taken whole.
        let mut s = snapshot();
        s.hosts = for_hosts.clone();
        s.add_routes(&for_hosts, (*worked.routes).clone());
        assert_eq!(s.routes, worked.routes);

        // Meanwhile a host went and another's route was worked out again, differently.
        let mut s = snapshot();
        Arc::make_mut(&mut s.hosts).remove(2);
        let newer = route::RouteReport {
            purpose: Purpose::Ssh,
            routes: vec![route::RouteVerdict {
                method: route::Method::Ssm,
                verdict: Verdict::Ready,
                reasons: Vec::new(),
            }],
        };
        Arc::make_mut(&mut s.routes).insert(s.hosts[0].key(), newer.clone());
        s.add_routes(&for_hosts, (*worked.routes).clone());
        assert_eq!(s.routes.len(), 3, "none for the host that went");
        assert_eq!(s.route(&s.hosts[0]), Some(&newer), "the newer route stays");
        assert_eq!(s.route(&s.hosts[1]), worked.route(&s.hosts[1]));
    }

    #[test]
    fn routes_follow_the_hosts_and_the_facts_of_their_region() {
        use crate::inventory::{Listing, RegionFacts};
        use crate::route::{Method, Verdict};
        let mut s = snapshot();
        s.update_routes(None);
        assert_eq!(s.routes.len(), 4);
        // Nothing scanned yet: EIC is unsure, and says why.
        let web = s.route(&s.hosts[0]).expect("a route");
        assert_eq!(web.purpose, Purpose::Ssh);
        assert_eq!(web.routes[0].method, Method::Eic);
        assert_eq!(web.routes[0].verdict, Verdict::Unsure);

        let key = AccountRegion {
            account_id: "111".into(),
            region: "us-east-1".into(),
        };
        s.regions.insert(
            key.clone(),
            RegionFacts {
                profile: "admin".into(),
                eic_endpoints: Listing::Listed(Vec::new()),
                security_groups: Listing::Listed(Vec::new()),
                ssm: Listing::Listed(Vec::new()),
            },
        );
        Arc::make_mut(&mut s.hosts).remove(2);
        s.update_routes(Some(&BTreeSet::from([key])));
        assert_eq!(s.routes.len(), 3, "the removed host's route is gone");
        let web = s.route(&s.hosts[0]).expect("a route");
        let eic = web.routes.iter().find(|r| r.method == Method::Eic).unwrap();
        assert_eq!(eic.verdict, Verdict::Blocked, "{eic:?}");
        assert!(eic.reasons[0].contains("reports no VPC"), "{eic:?}");
        let ssm = web.routes.iter().find(|r| r.method == Method::Ssm).unwrap();
        assert_eq!(
            ssm.verdict,
            Verdict::Blocked,
            "not in the SSM listing: {ssm:?}"
        );
        // Another account's host kept its route.
        let other = s.route(&s.hosts[2]).expect("a route");
        assert_eq!(other.routes[0].verdict, Verdict::Unsure);

        let rdp = s.assess_route(&s.hosts[0], Purpose::Rdp);
        assert_eq!(rdp.purpose.port(), 3389);
    }
}
