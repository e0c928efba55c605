//! AWS profiles: which ones exist, which are usable, and an SDK configuration for each.
//!
//! Profiles come from the shared config file (`[profile NAME]`, `[default]`) and the credentials
//! file (`[NAME]`). A profile whose section is broken, or that lacks what Bastionless needs, is
//! kept as a [`BrokenProfile`] with a message saying what to fix; every other profile still works.
//! Valid sections are handed to `aws-config` unchanged, so credential chains, `credential_process`
//! and SSO behave exactly as in the AWS tools.

mod chain;
mod files;
mod https;
mod ini;
mod provider;
mod sdk;

pub use chain::{CredentialSource, Secret};
pub use files::{AwsFiles, DEMO_FILES_FLAG};
pub use https::HttpsClients;
pub use provider::{MfaPrompt, set_default_mfa_prompt, set_mfa_prompt};
pub(crate) use sdk::anonymous_sdk_config;

pub use crate::sso::{SsoSession, SsoSessionKey};
use ini::{IniFile, Section};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

/// The name of the pseudo-profile that stands for `AWS_ACCESS_KEY_ID` and friends.
pub const ENVIRONMENT_PROFILE: &str = "(environment)";

/// A profile Bastionless can use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    pub name: String,
    /// The profile's home region: where its API calls go.
    pub region: String,
    /// `endpoint_url` from the profile, when set (custom endpoints, the simulator).
    pub endpoint_url: Option<String>,
    /// Extra trusted CAs (PEM files) for every TLS connection this profile makes, besides the OS
    /// roots: `AWS_CA_BUNDLE` and the profile's `ca_bundle`. The AWS CLI lets the variable replace
    /// the setting; Bastionless trusts both, since the variable usually names a corporate root
    /// every profile needs while the setting names what one profile's endpoint needs.
    pub ca_bundles: Vec<PathBuf>,
    /// Where its credentials come from.
    pub credentials: CredentialSource,
}

impl Profile {
    /// The SSO session this profile signs in through, if any.
    pub fn sso_session(&self) -> Option<&SsoSessionKey> {
        self.credentials.sso_session()
    }
}

/// A profile that exists in the files but cannot be used as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokenProfile {
    pub name: String,
    /// What is wrong and how to fix it, with file and line.
    pub error: String,
}

/// Every profile found in the user's AWS files, usable or not.
#[derive(Debug, Clone, Default)]
pub struct ProfileCatalog {
    pub profiles: Vec<Profile>,
    pub broken: Vec<BrokenProfile>,
    /// The profile named by `AWS_PROFILE`, when it exists.
    pub preferred: Option<String>,
    /// Problems that belong to no profile (lines before the first section, a broken
    /// `[sso-session]` section).
    pub warnings: Vec<String>,
    /// Every SSO session: `[sso-session]` sections and legacy profiles' start URLs.
    pub sso_sessions: Arc<Vec<SsoSession>>,
    /// Where SSO tokens are cached.
    pub sso_cache_dir: PathBuf,
    /// The SSO sessions with account discovery on: their accounts and roles are profiles.
    pub discovering: Vec<String>,
    /// The HTTPS clients the profiles' SDK configurations use: the engine's, so that its
    /// connections outlive each refresh's catalog ([`ProfileCatalog::share_https_clients`]).
    https: HttpsClients,
    /// The valid sections of the config and credentials files, for `aws-config`.
    usable_config: String,
    usable_credentials: String,
}

/// What is collected about one profile name across both files.
#[derive(Default)]
struct Gathered<'a> {
    sections: Vec<(&'a Section, &'a str)>,
}

impl ProfileCatalog {
    /// Makes the profiles' SDK configurations use `clients` (and the connections they hold).
    pub fn share_https_clients(&mut self, clients: &HttpsClients) {
        self.https = clients.clone();
    }

    /// Reads the files named by `files`. A missing file counts as empty; an unreadable one is an
    /// error, since nothing sensible can be shown without it.
    pub fn load(files: &AwsFiles) -> anyhow::Result<Self> {
        let config_text = files::read_optional(&files.config)?;
        let credentials_text = files::read_optional(&files.credentials)?;
        let mut catalog = Self::from_texts(
            &config_text,
            &files.config.display().to_string(),
            &credentials_text,
            &files.credentials.display().to_string(),
            files.fallback_region.as_deref(),
        );
        if files.environment_credentials {
            catalog.add_environment_profile(files.fallback_region.as_deref());
        }
        catalog.sso_cache_dir = files.sso_cache_dir.clone();
        match crate::sso::Discovery::load(&files.discovery_file) {
            Ok(discovery) => catalog.add_discovered_profiles(&discovery),
            Err(problem) => catalog.warnings.push(problem),
        }
        if let Some(bundle) = &files.ca_bundle_env {
            for profile in &mut catalog.profiles {
                profile.ca_bundles.insert(0, bundle.clone());
            }
            for session in Arc::make_mut(&mut catalog.sso_sessions) {
                session.ca_bundles.insert(0, bundle.clone());
            }
        }
        catalog.preferred = files
            .preferred_profile
            .clone()
            .filter(|name| catalog.profiles.iter().any(|p| &p.name == name));
        Ok(catalog)
    }

    /// The catalog for the given file contents; `*_label` names each file in messages.
    pub fn from_texts(
        config_text: &str,
        config_label: &str,
        credentials_text: &str,
        credentials_label: &str,
        fallback_region: Option<&str>,
    ) -> Self {
        let config = ini::parse(config_text);
        let credentials = ini::parse(credentials_text);
        let mut by_name: BTreeMap<String, Gathered> = BTreeMap::new();
        let mut catalog = ProfileCatalog::default();

        for problem in &config.stray {
            catalog.warnings.push(format!(
                "{config_label} line {}: {}",
                problem.line, problem.message
            ));
        }
        for problem in &credentials.stray {
            catalog.warnings.push(format!(
                "{credentials_label} line {}: {}",
                problem.line, problem.message
            ));
        }
        for section in &config.sections {
            if let Some(name) = config_profile_name(&section.header) {
                by_name
                    .entry(name.to_owned())
                    .or_default()
                    .sections
                    .push((section, config_label));
            }
        }
        for section in &credentials.sections {
            by_name
                .entry(section.header.clone())
                .or_default()
                .sections
                .push((section, credentials_label));
        }

        let mut sessions = BTreeMap::new();
        for section in &config.sections {
            if let Some(name) = section.header.strip_prefix("sso-session ") {
                match sso_session(name.trim(), section, config_label) {
                    Ok(session) => {
                        sessions.insert(name.trim().to_owned(), session);
                    }
                    Err(problem) => catalog.warnings.push(problem),
                }
            }
        }
        let mut broken_names = Vec::new();
        let mut settings = BTreeMap::new();
        for (name, gathered) in &by_name {
            match merged(gathered) {
                Ok(merged) => {
                    settings.insert(name.clone(), merged);
                }
                Err(error) => {
                    broken_names.push(name.clone());
                    catalog.broken.push(BrokenProfile {
                        name: name.clone(),
                        error,
                    });
                }
            }
        }
        for (name, merged) in &settings {
            let assessed = assess(
                name,
                merged,
                || chain::resolve(name, &settings, &sessions),
                config_label,
                fallback_region,
            );
            match assessed {
                Ok(profile) => catalog.profiles.push(profile),
                Err(error) => {
                    broken_names.push(name.clone());
                    catalog.broken.push(BrokenProfile {
                        name: name.clone(),
                        error,
                    });
                }
            }
        }
        catalog.broken.sort_by(|a, b| a.name.cmp(&b.name));
        catalog.sso_sessions = Arc::new(all_sso_sessions(sessions, &catalog.profiles));
        catalog.usable_config = usable_text(&config, |s| {
            config_profile_name(&s.header).is_none_or(|n| !broken_names.iter().any(|b| b == n))
        });
        catalog.usable_credentials = usable_text(&credentials, |s| {
            !broken_names.iter().any(|b| b == &s.header)
        });
        catalog
    }

    /// The profile called `name`, if it is usable.
    pub fn get(&self, name: &str) -> Option<&Profile> {
        self.profiles.iter().find(|p| p.name == name)
    }
}

/// The profile name a config-file header declares, if it declares one.
fn config_profile_name(header: &str) -> Option<&str> {
    if header == "default" {
        return Some("default");
    }
    header
        .strip_prefix("profile ")
        .map(str::trim)
        .filter(|n| !n.is_empty())
}

/// One profile's settings from all its sections (later settings win), or its syntax problems.
fn merged(gathered: &Gathered) -> Result<chain::Settings, String> {
    let mut problems = Vec::new();
    let mut settings = chain::Settings::new();
    for (section, label) in &gathered.sections {
        for problem in &section.problems {
            problems.push(format!(
                "{label} line {}: {}",
                problem.line, problem.message
            ));
        }
        for (key, value) in &section.properties {
            settings.insert(key.clone(), value.clone());
        }
    }
    if problems.is_empty() {
        Ok(settings)
    } else {
        Err(format!(
            "{}. Fix or remove {}.",
            problems.join("; "),
            plural_lines(problems.len())
        ))
    }
}

/// Decides whether one profile is usable: it needs a region besides its credentials.
fn assess(
    name: &str,
    settings: &chain::Settings,
    credentials: impl FnOnce() -> Result<CredentialSource, String>,
    config_label: &str,
    fallback_region: Option<&str>,
) -> Result<Profile, String> {
    let region = settings
        .get("region")
        .map(String::as_str)
        .or(fallback_region)
        .map(str::to_owned)
        .ok_or_else(|| {
            let header = if name == "default" { "[default]".to_owned() } else { format!("[profile {name}]") };
            format!("No region: add `region = us-east-1` (or your region) under {header} in {config_label}.")
        })?;
    Ok(Profile {
        name: name.to_owned(),
        region,
        endpoint_url: settings.get("endpoint_url").cloned(),
        ca_bundles: settings
            .get("ca_bundle")
            .map(PathBuf::from)
            .into_iter()
            .collect(),
        credentials: credentials()?,
    })
}

/// An `[sso-session NAME]` section, or why it cannot be used.
fn sso_session(name: &str, section: &Section, config_label: &str) -> Result<SsoSession, String> {
    let get = |key: &str| {
        section
            .properties
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .filter(|v| !v.is_empty())
    };
    if let Some(problem) = section.problems.first() {
        return Err(format!(
            "{config_label} line {}: {} (in [sso-session {name}])",
            problem.line, problem.message
        ));
    }
    let (Some(start_url), Some(region)) = (get("sso_start_url"), get("sso_region")) else {
        return Err(format!(
            "[sso-session {name}] in {config_label} needs sso_start_url and sso_region"
        ));
    };
    Ok(SsoSession {
        key: SsoSessionKey::Named(name.to_owned()),
        start_url,
        region,
        scopes: get("sso_registration_scopes")
            .map(|s| {
                s.split(',')
                    .map(|x| x.trim().to_owned())
                    .filter(|x| !x.is_empty())
                    .collect()
            })
            .unwrap_or_default(),
        endpoint_url: get("endpoint_url"),
        ca_bundles: get("ca_bundle").map(PathBuf::from).into_iter().collect(),
    })
}

/// The named sessions (taking an endpoint and CAs from the first profile using one that has
/// none of its own) and one legacy session per distinct start URL of legacy profiles.
fn all_sso_sessions(named: BTreeMap<String, SsoSession>, profiles: &[Profile]) -> Vec<SsoSession> {
    let mut sessions: Vec<SsoSession> = named.into_values().collect();
    for profile in profiles {
        let Some(key) = profile.sso_session() else {
            continue;
        };
        match sessions.iter_mut().find(|s| &s.key == key) {
            Some(session) => {
                if session.endpoint_url.is_none() {
                    session.endpoint_url = profile.endpoint_url.clone();
                }
                if session.ca_bundles.is_empty() {
                    session.ca_bundles = profile.ca_bundles.clone();
                }
            }
            None => {
                if let SsoSessionKey::Legacy { start_url, region } = key {
                    let mut session = SsoSession::legacy(start_url, region);
                    session.endpoint_url = profile.endpoint_url.clone();
                    session.ca_bundles = profile.ca_bundles.clone();
                    sessions.push(session);
                }
            }
        }
    }
    sessions
}

impl ProfileCatalog {
    /// Adds the pseudo-profile for credentials in the environment (`AWS_ACCESS_KEY_ID`, …).
    fn add_environment_profile(&mut self, region: Option<&str>) {
        match region {
            Some(region) => self.profiles.push(Profile {
                name: ENVIRONMENT_PROFILE.to_owned(),
                region: region.to_owned(),
                endpoint_url: std::env::var("AWS_ENDPOINT_URL")
                    .ok()
                    .filter(|u| !u.is_empty()),
                ca_bundles: Vec::new(),
                credentials: CredentialSource::Environment,
            }),
            None => self.broken.push(BrokenProfile {
                name: ENVIRONMENT_PROFILE.to_owned(),
                error: "AWS_ACCESS_KEY_ID is set but no region: set AWS_REGION too.".to_owned(),
            }),
        }
    }

    /// A profile per account and role that account discovery found for an opted-in session,
    /// unless a configured profile already uses that session, account and role.
    fn add_discovered_profiles(&mut self, discovery: &crate::sso::Discovery) {
        let sessions = self.sso_sessions.clone();
        for session in sessions.iter() {
            let label = session.key.label();
            let Some(found) = discovery.sessions.get(label).filter(|d| d.enabled) else {
                continue;
            };
            self.discovering.push(label.to_owned());
            for role in &found.roles {
                let configured = self.profiles.iter().any(|p| {
                    matches!(&p.credentials, CredentialSource::Sso { session: s, account_id, role_name }
                        if *s == session.key && *account_id == role.account_id && *role_name == role.role_name)
                });
                let name = role.profile_name(label);
                if configured || self.get(&name).is_some() {
                    continue;
                }
                self.profiles.push(Profile {
                    name,
                    region: session.region.clone(),
                    endpoint_url: session.endpoint_url.clone(),
                    ca_bundles: session.ca_bundles.clone(),
                    credentials: CredentialSource::Sso {
                        session: session.key.clone(),
                        account_id: role.account_id.clone(),
                        role_name: role.role_name.clone(),
                    },
                });
            }
        }
    }

    /// The SSO session `name` (an `[sso-session]` name, or a legacy start URL).
    pub fn sso_session(&self, name: &str) -> Option<&SsoSession> {
        self.sso_sessions.iter().find(|s| s.key.label() == name)
    }
}

fn plural_lines(count: usize) -> &'static str {
    if count == 1 {
        "that line"
    } else {
        "those lines"
    }
}

fn usable_text(file: &IniFile, keep: impl Fn(&Section) -> bool) -> String {
    file.sections
        .iter()
        .filter(|s| s.problems.is_empty() && keep(s))
        .map(|s| s.raw.as_str())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog(config: &str, credentials: &str) -> ProfileCatalog {
        ProfileCatalog::from_texts(config, "config", credentials, "credentials", None)
    }

    #[test]
    fn profiles_from_both_files_are_merged_by_name() {
        let c = catalog(
            "[profile prod]\nregion = us-east-1\n[default]\nregion = eu-west-1\n",
            "[prod]\naws_access_key_id = AKIA\naws_secret_access_key = s\n[default]\naws_access_key_id = x\naws_secret_access_key = y\n",
        );
        let names: Vec<_> = c.profiles.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["default", "prod"]);
        assert_eq!(c.get("prod").map(|p| p.region.as_str()), Some("us-east-1"));
        assert!(c.broken.is_empty());
    }

    #[test]
    fn a_garbage_line_breaks_only_its_profile_and_says_where() {
        let c = catalog(
            "[profile good]\nregion = us-east-1\ncredential_process = x\n[profile bad]\nregion = us-east-1\noops no equals\n",
            "",
        );
        assert_eq!(c.profiles.len(), 1);
        assert_eq!(c.broken.len(), 1);
        assert_eq!(c.broken[0].name, "bad");
        assert!(
            c.broken[0].error.contains("config line 6"),
            "{}",
            c.broken[0].error
        );
        assert!(!c.usable_config.contains("oops"));
        assert!(c.usable_config.contains("[profile good]"));
    }

    #[test]
    fn a_profile_without_a_region_says_how_to_add_one() {
        let c = catalog(
            "[profile noregion]\noutput = json\ncredential_process = x\n",
            "",
        );
        assert_eq!(c.broken.len(), 1);
        assert!(
            c.broken[0].error.contains("region = us-east-1"),
            "{}",
            c.broken[0].error
        );
        assert!(c.broken[0].error.contains("[profile noregion]"));
    }

    #[test]
    fn the_environment_region_serves_profiles_that_name_none() {
        let c = ProfileCatalog::from_texts(
            "[profile a]\ncredential_process = /bin/false\n",
            "config",
            "",
            "credentials",
            Some("eu-north-1"),
        );
        assert_eq!(c.get("a").map(|p| p.region.as_str()), Some("eu-north-1"));
    }

    #[test]
    fn sso_session_sections_are_not_profiles_but_are_kept_for_the_sdk() {
        let c = catalog(
            "[sso-session corp]\nsso_start_url = https://x\nsso_region = us-east-1\n[profile a]\nsso_session = corp\nsso_account_id = 111122223333\nsso_role_name = Admin\nregion = us-east-1\n",
            "",
        );
        assert_eq!(c.profiles.len(), 1, "{:?}", c.broken);
        assert!(c.usable_config.contains("[sso-session corp]"));
        assert_eq!(
            c.get("a").and_then(Profile::sso_session),
            Some(&SsoSessionKey::Named("corp".into()))
        );
        assert_eq!(
            c.sso_session("corp").map(|s| s.start_url.as_str()),
            Some("https://x")
        );
    }

    #[test]
    fn environment_credentials_are_a_profile_of_their_own_and_need_a_region() {
        let mut with_region = catalog("", "");
        with_region.add_environment_profile(Some("eu-west-1"));
        let env = with_region
            .get(ENVIRONMENT_PROFILE)
            .expect("the pseudo-profile");
        assert_eq!(env.credentials, CredentialSource::Environment);
        assert_eq!(env.region, "eu-west-1");
        let mut without = catalog("", "");
        without.add_environment_profile(None);
        assert!(without.broken[0].error.contains("AWS_REGION"));
    }
}
