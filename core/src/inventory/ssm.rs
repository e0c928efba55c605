//! What Systems Manager knows about the managed instances of a region
//! (`DescribeInstanceInformation`): whether each agent is connected, and which agent version
//! runs, which decides what Session Manager can do with it (spec `ssm.md` §7.1). An instance it
//! does not list has no registered agent (or is stopped: stopped instances are never listed).

use serde::{Deserialize, Serialize};

use super::calls::{CallBudget, CallFailure};

/// One managed instance's registration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SsmInfo {
    /// The EC2 instance id (`i-…`).
    pub instance_id: String,
    pub ping_status: PingStatus,
    /// `AgentVersion`, four dot-separated numbers (`3.3.1142.0`) on every real agent.
    pub agent_version: Option<String>,
}

/// Whether the agent is reachable, in Systems Manager's words (`PingStatus`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PingStatus {
    Online,
    ConnectionLost,
    Inactive,
    /// A status this version does not know, kept verbatim.
    Other(String),
}

impl PingStatus {
    /// Parses Systems Manager's `PingStatus`; unknown values are kept as [`PingStatus::Other`].
    pub fn from_ssm(status: &str) -> Self {
        match status {
            "Online" => Self::Online,
            "ConnectionLost" => Self::ConnectionLost,
            "Inactive" => Self::Inactive,
            other => Self::Other(other.to_owned()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Self::Online => "Online",
            Self::ConnectionLost => "ConnectionLost",
            Self::Inactive => "Inactive",
            Self::Other(status) => status,
        }
    }
}

/// Every managed instance of the client's region, in the order Systems Manager lists them.
pub(super) async fn describe_instance_information(
    ssm: &aws_sdk_ssm::Client,
    calls: &CallBudget,
) -> Result<Vec<SsmInfo>, CallFailure> {
    let mut pages = ssm
        .describe_instance_information()
        .max_results(50)
        .into_paginator()
        .send();
    let mut managed = Vec::new();
    while let Some(page) = calls.page(pages.next()).await? {
        managed.extend(page.instance_information_list().iter().filter_map(|info| {
            Some(SsmInfo {
                instance_id: info.instance_id()?.to_owned(),
                ping_status: PingStatus::from_ssm(info.ping_status()?.as_str()),
                agent_version: info.agent_version().map(str::to_owned),
            })
        }));
    }
    Ok(managed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ping_statuses_round_trip_and_unknown_ones_are_kept() {
        for name in ["Online", "ConnectionLost", "Inactive", "Rebooting"] {
            assert_eq!(PingStatus::from_ssm(name).as_str(), name);
        }
        assert_eq!(
            PingStatus::from_ssm("Rebooting"),
            PingStatus::Other("Rebooting".into())
        );
    }
}
