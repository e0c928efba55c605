//! AWS profiles: which ones exist, which are usable, and an SDK configuration for each.
//!
//! Profiles come from the shared config file (`[profile NAME]`, `[default]`) and the credentials
//! file (`[NAME]`). A profile whose section is broken, or that lacks what Bastionless needs, is
//! kept as a [`BrokenProfile`] with a message saying what to fix; every other profile still works.
//! Valid sections are handed to `aws-config` unchanged, so credential chains, `credential_process`
//! and SSO behave exactly as in the AWS tools.

mod files;
mod ini;
mod sdk;

pub use files::AwsFiles;

use ini::{IniFile, Section};
use std::collections::BTreeMap;
use std::path::PathBuf;

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
    /// Problems that belong to no profile (lines before the first section).
    pub warnings: Vec<String>,
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
        if let Some(bundle) = &files.ca_bundle_env {
            for profile in &mut catalog.profiles {
                profile.ca_bundles.insert(0, bundle.clone());
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

        let mut broken_names = Vec::new();
        for (name, gathered) in &by_name {
            match assess(name, gathered, config_label, fallback_region) {
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

/// Decides whether one profile is usable, merging its sections (later settings win, config file
/// settings over credentials file ones only where both set the same key — as the AWS tools do).
fn assess(
    name: &str,
    gathered: &Gathered,
    config_label: &str,
    fallback_region: Option<&str>,
) -> Result<Profile, String> {
    let mut problems = Vec::new();
    let mut settings: BTreeMap<&str, &str> = BTreeMap::new();
    for (section, label) in &gathered.sections {
        for problem in &section.problems {
            problems.push(format!(
                "{label} line {}: {}",
                problem.line, problem.message
            ));
        }
        for (key, value) in &section.properties {
            settings.insert(key, value);
        }
    }
    if !problems.is_empty() {
        return Err(format!(
            "{}. Fix or remove {}.",
            problems.join("; "),
            plural_lines(problems.len())
        ));
    }
    let region = settings
        .get("region")
        .copied()
        .or(fallback_region)
        .map(str::to_owned)
        .ok_or_else(|| {
            let header = if name == "default" { "[default]".to_owned() } else { format!("[profile {name}]") };
            format!("No region: add `region = us-east-1` (or your region) under {header} in {config_label}.")
        })?;
    Ok(Profile {
        name: name.to_owned(),
        region,
        endpoint_url: settings.get("endpoint_url").map(|u| u.to_string()),
        ca_bundles: settings
            .get("ca_bundle")
            .map(PathBuf::from)
            .into_iter()
            .collect(),
    })
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
            "[prod]\naws_access_key_id = AKIA\naws_secret_access_key = s\n[default]\naws_access_key_id = x\n",
        );
        let names: Vec<_> = c.profiles.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["default", "prod"]);
        assert_eq!(c.get("prod").map(|p| p.region.as_str()), Some("us-east-1"));
        assert!(c.broken.is_empty());
    }

    #[test]
    fn a_garbage_line_breaks_only_its_profile_and_says_where() {
        let c = catalog(
            "[profile good]\nregion = us-east-1\n[profile bad]\nregion = us-east-1\noops no equals\n",
            "",
        );
        assert_eq!(c.profiles.len(), 1);
        assert_eq!(c.broken.len(), 1);
        assert_eq!(c.broken[0].name, "bad");
        assert!(
            c.broken[0].error.contains("config line 5"),
            "{}",
            c.broken[0].error
        );
        assert!(!c.usable_config.contains("oops"));
        assert!(c.usable_config.contains("[profile good]"));
    }

    #[test]
    fn a_profile_without_a_region_says_how_to_add_one() {
        let c = catalog("[profile noregion]\noutput = json\n", "");
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
            "[profile a]\n",
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
            "[sso-session corp]\nsso_start_url = https://x\nsso_region = us-east-1\n[profile a]\nsso_session = corp\nregion = us-east-1\n",
            "",
        );
        assert_eq!(c.profiles.len(), 1);
        assert!(c.usable_config.contains("[sso-session corp]"));
    }
}
