//! Routes: which ways to reach a host's port work — an EC2 Instance Connect Endpoint, Session
//! Manager, or directly over its public IP — each with a verdict and the reasons, in words a
//! user can act on ("sg-0ab… (cache-eu) has no inbound 22 from eice-0fa… (sg-0bb…)").
//!
//! Pure functions over inventory data, so every reason is a table test and the app can explain a
//! route without a network call. The verdicts are predictions from what the inventory shows
//! (endpoints, security groups, the SSM agent's registration); what it cannot see — network
//! ACLs, route tables, IAM, whether anything listens on the port — can still stop a connection.
//!
//! Ranking: routes that should work first, then those that might, then blocked ones; among
//! equals, EC2 Instance Connect (no agent, native tunnel), then Session Manager, then direct
//! (which needs the port open to the internet).

mod direct;
mod eic;
mod rules;
mod ssm;

use serde::ser::SerializeStruct;
use serde::{Serialize, Serializer};

use crate::inventory::{Host, InstanceState, Listing, Platform, RegionFacts, SsmInfo};

/// What the connection is for: the port on the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Purpose {
    Ssh,
    Rdp,
    Port(u16),
}

impl Purpose {
    /// SSH for Linux hosts, RDP for Windows ones: what the app connects with by default.
    pub fn for_host(host: &Host) -> Self {
        match host.platform {
            Platform::Windows => Self::Rdp,
            Platform::Linux => Self::Ssh,
        }
    }

    /// The purpose a port stands for (22 is SSH, 3389 RDP).
    pub fn from_port(port: u16) -> Self {
        match port {
            22 => Self::Ssh,
            3389 => Self::Rdp,
            other => Self::Port(other),
        }
    }

    pub fn port(self) -> u16 {
        match self {
            Self::Ssh => 22,
            Self::Rdp => 3389,
            Self::Port(port) => port,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Ssh => "ssh",
            Self::Rdp => "rdp",
            Self::Port(_) => "port",
        }
    }
}

impl std::fmt::Display for Purpose {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Ssh => f.write_str("SSH (port 22)"),
            Self::Rdp => f.write_str("RDP (port 3389)"),
            Self::Port(port) => write!(f, "port {port}"),
        }
    }
}

/// A way to reach a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// Through an EC2 Instance Connect Endpoint in the host's VPC.
    Eic,
    /// Through Session Manager and the host's SSM Agent.
    Ssm,
    /// To the host's public IP.
    Direct,
}

impl Method {
    /// The short name the app and CLI show (`EIC`, `SSM`, `Direct`).
    pub fn label(self) -> &'static str {
        match self {
            Self::Eic => "EIC",
            Self::Ssm => "SSM",
            Self::Direct => "Direct",
        }
    }
}

/// Whether a route should work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Everything the inventory shows allows it.
    Ready,
    /// It might: something it depends on is not known (the user's address, a listing that
    /// failed, a prefix list).
    Unsure,
    /// Something the inventory shows stops it.
    Blocked,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ready => "ready",
            Self::Unsure => "unsure",
            Self::Blocked => "blocked",
        }
    }
}

/// One route's verdict and why, each reason a sentence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RouteVerdict {
    pub method: Method,
    pub verdict: Verdict,
    pub reasons: Vec<String>,
}

/// Every route to one port of a host, best first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteReport {
    pub purpose: Purpose,
    /// Always one per [`Method`], ranked.
    pub routes: Vec<RouteVerdict>,
}

impl RouteReport {
    /// The route to use: the first one that is not blocked.
    pub fn best(&self) -> Option<&RouteVerdict> {
        self.routes
            .first()
            .filter(|r| r.verdict != Verdict::Blocked)
    }

    /// A short badge: the best route (`EIC`), with `?` when it only might work, or `none`.
    pub fn badge(&self) -> String {
        match self.best() {
            Some(route) if route.verdict == Verdict::Ready => route.method.label().to_owned(),
            Some(route) => format!("{}?", route.method.label()),
            None => "none".to_owned(),
        }
    }
}

impl Serialize for RouteReport {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut report = serializer.serialize_struct("RouteReport", 4)?;
        report.serialize_field("purpose", self.purpose.name())?;
        report.serialize_field("port", &self.purpose.port())?;
        report.serialize_field("best", &self.best().map(|r| r.method))?;
        report.serialize_field("routes", &self.routes)?;
        report.end()
    }
}

/// What Systems Manager is known to say about the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SsmFacts<'a> {
    /// Nothing is known; the text says why.
    Unknown(&'a str),
    /// Systems Manager was asked and does not manage the host.
    NotRegistered,
    Registered(&'a SsmInfo),
}

/// Everything a verdict is drawn from besides the host itself.
#[derive(Debug, Clone, Copy)]
pub struct RouteFacts<'a> {
    /// The endpoints and security groups of the host's account and region, once scanned.
    pub region: Option<&'a RegionFacts>,
    pub ssm: SsmFacts<'a>,
}

impl<'a> RouteFacts<'a> {
    /// What `region` (the scan of `host`'s account and region, if any) says about `host`.
    pub fn for_host(host: &Host, region: Option<&'a RegionFacts>) -> Self {
        let ssm = match region.map(|facts| &facts.ssm) {
            None => SsmFacts::Unknown(
                "the host's region has not been scanned yet, so whether Systems Manager \
                 manages it is not known",
            ),
            Some(Listing::Failed(why)) => SsmFacts::Unknown(why),
            Some(Listing::Listed(managed)) => managed
                .iter()
                .find(|info| info.instance_id == host.instance_id)
                .map_or(SsmFacts::NotRegistered, SsmFacts::Registered),
        };
        Self { region, ssm }
    }
}

/// Every route to `purpose`'s port on `host`, ranked.
pub fn assess(host: &Host, purpose: Purpose, facts: &RouteFacts<'_>) -> RouteReport {
    let port = purpose.port();
    let mut routes = match not_running(host) {
        Some(reason) => [Method::Eic, Method::Ssm, Method::Direct]
            .map(|method| RouteVerdict {
                method,
                verdict: Verdict::Blocked,
                reasons: vec![reason.clone()],
            })
            .to_vec(),
        None => vec![
            eic::assess(host, port, facts.region),
            ssm::assess(facts.ssm),
            direct::assess(host, port, facts.region),
        ],
    };
    routes.sort_by_key(|r| (r.verdict, r.method));
    RouteReport { purpose, routes }
}

/// Why no route can work while the instance is in this state.
fn not_running(host: &Host) -> Option<String> {
    let name = host.display_name();
    match host.state {
        InstanceState::Running => None,
        InstanceState::Stopped => Some(format!("{name} is stopped; start it, then refresh")),
        InstanceState::Pending => Some(format!(
            "{name} is starting (pending); wait until it is running, then refresh"
        )),
        state @ (InstanceState::Stopping
        | InstanceState::ShuttingDown
        | InstanceState::Terminated) => Some(format!("{name} is {}", state.as_str())),
    }
}

/// A route's reasons as they are found; its verdict is the worst one noted (blocked over unsure
/// over ready).
struct Findings {
    method: Method,
    verdict: Verdict,
    reasons: Vec<String>,
}

impl Findings {
    fn new(method: Method) -> Self {
        Self {
            method,
            verdict: Verdict::Ready,
            reasons: Vec::new(),
        }
    }

    fn note(&mut self, verdict: Verdict, reason: String) {
        self.verdict = self.verdict.max(verdict);
        self.reasons.push(reason);
    }

    fn done(self) -> RouteVerdict {
        RouteVerdict {
            method: self.method,
            verdict: self.verdict,
            reasons: self.reasons,
        }
    }
}

#[cfg(test)]
mod tests;
