//! Per-host settings: the login user, identity file, SSH port and route a user chose for one
//! instance, overriding what Bastionless would guess.
//!
//! Keyed like favorites, by account id and instance id. The identity file is a path: the key
//! itself never enters the store.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::document::Document;
use super::favorites::AccountInstance;

/// Which way to reach a host, when the user has a preference.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RoutePreference {
    /// The best route the inventory allows.
    #[default]
    Auto,
    /// Through an EC2 Instance Connect Endpoint.
    Eic,
    /// Through Session Manager.
    Ssm,
}

impl From<RoutePreference> for crate::engine::RouteChoice {
    fn from(route: RoutePreference) -> Self {
        match route {
            RoutePreference::Auto => Self::Auto,
            RoutePreference::Eic => Self::Eic,
            RoutePreference::Ssm => Self::Ssm,
        }
    }
}

/// A user's choices for one host; every field unset means "guess as usual".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostSettings {
    /// The OS user to log in as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// A private key file of the user's own, used instead of a fresh ephemeral key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_file: Option<PathBuf>,
    /// The SSH port on the instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<RoutePreference>,
}

impl HostSettings {
    /// Whether nothing is set (such entries are not kept).
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }
}

/// One entry of `hosts.toml`: the key and the settings side by side. (Not `#[serde(flatten)]`:
/// serde then ignores unknown keys, and a misspelt key must be reported, not dropped.)
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HostEntry {
    pub account_id: String,
    pub instance_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_file: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<RoutePreference>,
}

impl HostEntry {
    fn new(key: &AccountInstance, settings: HostSettings) -> Self {
        Self {
            account_id: key.account_id.clone(),
            instance_id: key.instance_id.clone(),
            user: settings.user,
            identity_file: settings.identity_file,
            port: settings.port,
            route: settings.route,
        }
    }

    pub fn key(&self) -> AccountInstance {
        AccountInstance {
            account_id: self.account_id.clone(),
            instance_id: self.instance_id.clone(),
        }
    }

    pub fn settings(&self) -> HostSettings {
        HostSettings {
            user: self.user.clone(),
            identity_file: self.identity_file.clone(),
            port: self.port,
            route: self.route,
        }
    }
}

/// `hosts.toml`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HostsFile {
    #[serde(default, rename = "host")]
    pub hosts: Vec<HostEntry>,
}

impl HostsFile {
    pub fn get(&self, key: &AccountInstance) -> Option<HostSettings> {
        self.hosts
            .iter()
            .find(|h| &h.key() == key)
            .map(HostEntry::settings)
    }

    /// Sets `key`'s settings; empty settings remove the entry.
    pub fn set(&mut self, key: &AccountInstance, settings: HostSettings) -> Result<(), String> {
        check(&settings)?;
        self.hosts.retain(|h| &h.key() != key);
        if !settings.is_empty() {
            self.hosts.push(HostEntry::new(key, settings));
        }
        Ok(())
    }
}

fn check(settings: &HostSettings) -> Result<(), String> {
    if settings.port == Some(0) {
        return Err("port 0 is not a port: use 1 to 65535".into());
    }
    if let Some(user) = &settings.user
        && (user.trim().is_empty() || user.chars().any(char::is_whitespace))
    {
        return Err(format!("`{user}` is not a user name"));
    }
    Ok(())
}

impl Document for HostsFile {
    const FILE: &'static str = "hosts.toml";
    const WHAT: &'static str = "host settings";
    const SCHEMA: u32 = 1;

    fn migrate(from: u32, _table: &mut toml::Table) -> Result<(), String> {
        Err(format!("schema {from} was never written"))
    }

    fn validate(&self) -> Result<(), String> {
        let mut seen = std::collections::BTreeSet::new();
        for entry in &self.hosts {
            if !seen.insert(entry.key()) {
                return Err(format!("{} is listed twice", entry.key()));
            }
            check(&entry.settings()).map_err(|why| format!("{}: {why}", entry.key()))?;
        }
        Ok(())
    }
}
