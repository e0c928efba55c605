//! Recents: the last connections made, newest first, each with how it was made, so the tray and
//! the command palette can repeat one in a click.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::action::Action;
use super::document::Document;
use crate::inventory::HostKey;

/// How many connections are remembered.
pub const RECENTS_KEPT: usize = 20;

/// One connection made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recent {
    pub account_id: String,
    pub region: String,
    pub instance_id: String,
    /// The instance's Name tag at the time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The AWS profile the connection went through: the next refresh scans the account with
    /// it when several profiles reach the account. Absent in entries written before it was
    /// kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    pub action: Action,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_port: Option<u16>,
    pub at: DateTime<Utc>,
}

impl Recent {
    pub fn host_key(&self) -> HostKey {
        HostKey {
            account_id: self.account_id.clone(),
            region: self.region.clone(),
            instance_id: self.instance_id.clone(),
        }
    }

    /// The Name tag, else the instance id.
    pub fn label(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.instance_id)
    }
}

/// `recents.toml`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RecentsFile {
    #[serde(default, rename = "recent")]
    pub recents: Vec<Recent>,
}

impl RecentsFile {
    /// Puts `recent` first; an older entry for the same host and action is dropped, so repeating
    /// a connection moves it up rather than filling the list with one host.
    pub fn record(&mut self, recent: Recent) {
        self.recents.retain(|r| {
            !(r.account_id == recent.account_id
                && r.instance_id == recent.instance_id
                && r.action == recent.action)
        });
        self.recents.insert(0, recent);
        self.recents.truncate(RECENTS_KEPT);
    }
}

impl Document for RecentsFile {
    const FILE: &'static str = "recents.toml";
    const WHAT: &'static str = "recent connections";
    const SCHEMA: u32 = 1;

    fn migrate(from: u32, _table: &mut toml::Table) -> Result<(), String> {
        Err(format!("schema {from} was never written"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recent(id: &str, action: Action) -> Recent {
        Recent {
            account_id: "111111111111".into(),
            region: "us-east-1".into(),
            instance_id: id.into(),
            name: None,
            profile: None,
            action,
            local_port: None,
            at: Utc::now(),
        }
    }

    #[test]
    fn the_newest_comes_first_and_a_repeat_moves_up() {
        let mut file = RecentsFile::default();
        file.record(recent("i-1", Action::Ssh));
        file.record(recent("i-2", Action::Ssh));
        file.record(recent("i-1", Action::Forward { remote_port: 80 }));
        file.record(recent("i-2", Action::Ssh));
        let order: Vec<_> = file
            .recents
            .iter()
            .map(|r| format!("{} {}", r.instance_id, r.action))
            .collect();
        assert_eq!(order, ["i-2 ssh", "i-1 forward:80", "i-1 ssh"]);
    }

    #[test]
    fn only_the_last_few_are_kept() {
        let mut file = RecentsFile::default();
        for n in 0..RECENTS_KEPT + 5 {
            file.record(recent(&format!("i-{n}"), Action::Ssh));
        }
        assert_eq!(file.recents.len(), RECENTS_KEPT);
        assert_eq!(
            file.recents[0].instance_id,
            format!("i-{}", RECENTS_KEPT + 4)
        );
    }
}
