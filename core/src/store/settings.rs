//! App settings: how to launch the terminal and the RDP client, default login users, which
//! regions to scan and how often, the theme, the tunnel limits, and what closing the window does.
//!
//! Every field has a default, so a file that sets only one of them is complete, and a new
//! field added later reads old files unchanged.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::document::Document;

/// Light, dark, or whatever the desktop uses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Theme {
    Light,
    Dark,
    #[default]
    System,
}

/// What closing the window does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CloseToTray {
    /// Always keep running in the tray.
    Always,
    /// Keep running in the tray while tunnels are open, so closing the window never cuts a
    /// session; quit otherwise.
    #[default]
    OnlyWithTunnels,
    /// Quit, closing every tunnel.
    Never,
}

impl CloseToTray {
    /// Whether closing the window should leave the app running in the tray.
    pub fn keeps_running(self, open_tunnels: usize) -> bool {
        match self {
            CloseToTray::Always => true,
            CloseToTray::OnlyWithTunnels => open_tunnels > 0,
            CloseToTray::Never => false,
        }
    }
}

/// How the system ssh reaches a host's tunnel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SshVia {
    /// `ProxyCommand bastionless proxy HOST`: no local port is opened at all.
    ProxyCommand,
    /// A tunnel listening on a port of 127.0.0.1 (it shows in the app's tunnels panel).
    LoopbackPort,
}

/// Session Manager port-forward sessions kept open per host, for reuse.
pub const SSM_POOL_RANGE: std::ops::RangeInclusive<u8> = 1..=16;

/// Every app-wide setting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AppSettings {
    /// How to open a terminal running a command: `{command}` is replaced by it. Unset means the
    /// platform's usual terminal.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub terminal_template: Option<String>,
    /// How to start the RDP client: `{file}` is replaced by the `.rdp` file, `{address}` by
    /// `127.0.0.1:PORT`, `{user}` by the login user. Unset means the platform's usual client.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rdp_template: Option<String>,
    /// Login users by AMI name: an instance whose image name contains the key logs in as the
    /// value (checked before the built-in guesses; per-host settings win over both).
    pub default_users: BTreeMap<String, String>,
    /// Regions to scan in every account; empty scans every enabled region.
    pub regions: Vec<String>,
    /// Minutes between automatic inventory refreshes; 0 refreshes only when asked.
    pub refresh_interval_minutes: u32,
    pub theme: Theme,
    /// Session Manager sessions kept open per host ([`SSM_POOL_RANGE`]).
    pub ssm_pool_size: u8,
    /// Our own connections per EC2 Instance Connect Endpoint, 1 to 20 (AWS allows 20).
    pub eic_connection_cap: u8,
    pub close_to_tray: CloseToTray,
    /// How ssh reaches the tunnel; unset means a ProxyCommand, for the CLI's `bastionless
    /// ssh` and the app alike (no local port is opened). A loopback port puts the app's
    /// tunnel in its tunnels panel. Per-launch options (`--listen`) win over it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ssh_via: Option<SshVia>,
    /// The user's private key file per EC2 key pair name, offered (with `IdentitiesOnly=yes`)
    /// when the host has no identity file of its own and the route is not EC2 Instance
    /// Connect with its ephemeral key (and when pushing that key fails).
    pub key_pair_identity_files: BTreeMap<String, PathBuf>,
}

impl Default for AppSettings {
    fn default() -> Self {
        Self {
            terminal_template: None,
            rdp_template: None,
            default_users: BTreeMap::new(),
            regions: Vec::new(),
            refresh_interval_minutes: 15,
            theme: Theme::System,
            ssm_pool_size: 4,
            eic_connection_cap: crate::tunnel::ConnectionCap::DEFAULT.get() as u8,
            close_to_tray: CloseToTray::OnlyWithTunnels,
            ssh_via: None,
            key_pair_identity_files: BTreeMap::new(),
        }
    }
}

impl AppSettings {
    /// Checks the ranges and templates; the error says which setting and what is allowed.
    pub fn check(&self) -> Result<(), String> {
        crate::tunnel::ConnectionCap::new(usize::from(self.eic_connection_cap))
            .map_err(|e| format!("eic_connection_cap: {e}"))?;
        if !SSM_POOL_RANGE.contains(&self.ssm_pool_size) {
            return Err(format!(
                "ssm_pool_size: {} is not possible: choose {} to {}",
                self.ssm_pool_size,
                SSM_POOL_RANGE.start(),
                SSM_POOL_RANGE.end()
            ));
        }
        if let Some(template) = &self.terminal_template
            && !template.contains("{command}")
        {
            return Err(format!(
                "terminal_template `{template}` has no `{{command}}` for the command to run"
            ));
        }
        if let Some(template) = &self.rdp_template
            && !["{file}", "{address}"].iter().any(|p| template.contains(p))
        {
            return Err(format!(
                "rdp_template `{template}` has neither `{{file}}` nor `{{address}}`"
            ));
        }
        if let Some((name, _)) = self
            .key_pair_identity_files
            .iter()
            .find(|(name, file)| name.trim().is_empty() || file.as_os_str().is_empty())
        {
            return Err(format!(
                "key_pair_identity_files: `{name}` needs both a key pair name and a key file"
            ));
        }
        if let Some(region) = self
            .regions
            .iter()
            .find(|r| r.is_empty() || !r.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
        {
            return Err(format!("regions: `{region}` is not a region name"));
        }
        Ok(())
    }
}

/// `settings.toml`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SettingsFile {
    #[serde(default)]
    pub settings: AppSettings,
}

impl Document for SettingsFile {
    const FILE: &'static str = "settings.toml";
    const WHAT: &'static str = "settings";
    const SCHEMA: u32 = 1;

    fn migrate(from: u32, _table: &mut toml::Table) -> Result<(), String> {
        Err(format!("schema {from} was never written"))
    }

    fn validate(&self) -> Result<(), String> {
        self.settings.check()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_valid_and_match_the_tunnel_defaults() {
        let settings = AppSettings::default();
        assert_eq!(settings.check(), Ok(()));
        assert_eq!(settings.eic_connection_cap, 10);
    }

    #[test]
    fn a_file_that_sets_one_thing_keeps_the_defaults_for_the_rest() {
        let file: SettingsFile =
            super::super::document::parse("[settings]\ntheme = \"dark\"\n").unwrap();
        assert_eq!(file.settings.theme, Theme::Dark);
        assert_eq!(file.settings.ssm_pool_size, 4);
    }

    #[test]
    fn out_of_range_settings_name_the_setting() {
        let mut settings = AppSettings {
            eic_connection_cap: 21,
            ..Default::default()
        };
        assert!(settings.check().unwrap_err().contains("eic_connection_cap"));
        settings.eic_connection_cap = 5;
        settings.ssm_pool_size = 0;
        assert!(settings.check().unwrap_err().contains("ssm_pool_size"));
        settings.ssm_pool_size = 2;
        settings.terminal_template = Some("xterm -e".into());
        assert!(settings.check().unwrap_err().contains("{command}"));
    }

    #[test]
    fn closing_the_window_keeps_the_app_as_the_setting_says() {
        assert!(CloseToTray::Always.keeps_running(0));
        assert!(!CloseToTray::OnlyWithTunnels.keeps_running(0));
        assert!(CloseToTray::OnlyWithTunnels.keeps_running(1));
        assert!(!CloseToTray::Never.keeps_running(3));
    }
}
