//! Account discovery: for an SSO session the user opted in, every account and role the session
//! grants becomes a profile, with no hand-written config.
//!
//! The opt-in and the last listing are kept in a small JSON file of Bastionless's own
//! ([`crate::profiles::AwsFiles::discovery_file`]), so reading the profiles stays free of network
//! calls: the engine lists the roles (after a sign-in, or when the user opts in) and writes them
//! here, and the next refresh reads them like the config file.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::AccountRole;

/// The file's contents: per session name, whether discovery is on and what it last found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Discovery {
    #[serde(default)]
    pub sessions: BTreeMap<String, DiscoveredSession>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscoveredSession {
    pub enabled: bool,
    #[serde(default)]
    pub roles: Vec<DiscoveredRole>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscoveredRole {
    pub account_id: String,
    pub account_name: String,
    pub role_name: String,
}

impl From<AccountRole> for DiscoveredRole {
    fn from(role: AccountRole) -> Self {
        DiscoveredRole {
            account_id: role.account_id,
            account_name: role.account_name,
            role_name: role.role_name,
        }
    }
}

impl DiscoveredRole {
    /// The profile name a discovered role gets: `SESSION/ACCOUNT-NAME/ROLE`.
    pub fn profile_name(&self, session: &str) -> String {
        format!("{session}/{}/{}", self.account_name, self.role_name)
    }
}

impl Discovery {
    /// Reads `path`; a missing file is an empty one.
    pub fn load(path: &Path) -> Result<Discovery, String> {
        match std::fs::read_to_string(path) {
            Ok(text) => serde_json::from_str(&text).map_err(|e| {
                format!(
                    "{} is damaged ({e}); turn account discovery off and on again to rewrite it",
                    path.display()
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Discovery::default()),
            Err(e) => Err(format!("cannot read {}: {e}", path.display())),
        }
    }

    /// Writes the file whole (temporary file, then rename).
    pub fn store(&self, path: &Path) -> Result<(), String> {
        let dir = path.parent().unwrap_or(Path::new("."));
        let fail = |e: std::io::Error| format!("cannot write {}: {e}", path.display());
        std::fs::create_dir_all(dir).map_err(fail)?;
        let mut file = tempfile::NamedTempFile::new_in(dir).map_err(fail)?;
        file.write_all(&serde_json::to_vec_pretty(self).map_err(|e| e.to_string())?)
            .map_err(fail)?;
        file.persist(path).map_err(|e| fail(e.error))?;
        Ok(())
    }

    /// Whether discovery is on for `session`.
    pub fn enabled(&self, session: &str) -> bool {
        self.sessions.get(session).is_some_and(|s| s.enabled)
    }
}
