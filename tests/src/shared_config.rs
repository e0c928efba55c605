//! The AWS shared config and credentials files that point an unmodified SDK at the simulator.
//!
//! Each scenario profile becomes a `[profile NAME]` with its region,
//! `endpoint_url = https://127.0.0.1:PORT` (which the SDKs honour for every service) and
//! `ca_bundle = <dir>/ca.pem` (the run's CA), and a `[NAME]` credentials entry with its access
//! key. The product reads them as it reads `~/.aws`, through `AWS_CONFIG_FILE` and
//! `AWS_SHARED_CREDENTIALS_FILE`, so it needs no test-only code path. The same private directory
//! holds the sshd servers' state.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use tempfile::TempDir;

use crate::scenario::Scenario;

/// The simulator's private temporary directory (removed on drop) and the files in it.
#[derive(Debug)]
pub struct SharedConfigFiles {
    dir: TempDir,
    config: PathBuf,
    credentials: PathBuf,
    ca_bundle: Option<PathBuf>,
}

impl SharedConfigFiles {
    /// Creates the directory; the files come with [`SharedConfigFiles::write`].
    pub fn create() -> std::io::Result<SharedConfigFiles> {
        let dir = tempfile::Builder::new()
            .prefix("bastionless-sim-")
            .tempdir()?;
        Ok(SharedConfigFiles {
            config: dir.path().join("config"),
            credentials: dir.path().join("credentials"),
            ca_bundle: None,
            dir,
        })
    }

    /// Writes the config and credentials files, and the CA bundle when there is one.
    pub fn write(
        &mut self,
        scenario: &Scenario,
        endpoint_url: &str,
        ca_pem: Option<&str>,
    ) -> std::io::Result<()> {
        if let Some(pem) = ca_pem {
            let bundle = self.dir.path().join("ca.pem");
            write_private(&bundle, pem)?;
            self.ca_bundle = Some(bundle);
        }
        write_private(
            &self.config,
            &config_text(scenario, endpoint_url, self.ca_bundle.as_deref()),
        )?;
        write_private(&self.credentials, &credentials_text(scenario))
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn config_file(&self) -> &Path {
        &self.config
    }

    pub fn credentials_file(&self) -> &Path {
        &self.credentials
    }

    pub fn ca_bundle(&self) -> Option<&Path> {
        self.ca_bundle.as_deref()
    }
}

fn config_text(scenario: &Scenario, endpoint_url: &str, ca_bundle: Option<&Path>) -> String {
    let mut text = String::from("# Written by bastionless-sim; removed when it stops.\n");
    for profile in &scenario.profiles {
        let section = if profile.name == "default" {
            "[default]".to_owned()
        } else {
            format!("[profile {}]", profile.name)
        };
        let _ = write!(
            text,
            "\n{section}\nregion = {}\nendpoint_url = {endpoint_url}\n",
            profile.region
        );
        if let Some(bundle) = ca_bundle {
            let _ = writeln!(text, "ca_bundle = {}", bundle.display());
        }
    }
    // IAM Identity Center instances, to sign in to with `bastionless login`.
    for sso in &scenario.sso {
        let _ = write!(
            text,
            "\n[sso-session {}]\nsso_start_url = {}\nsso_region = {}\nendpoint_url = {endpoint_url}\n",
            sso.name, sso.start_url, sso.region
        );
        if let Some(bundle) = ca_bundle {
            let _ = writeln!(text, "ca_bundle = {}", bundle.display());
        }
    }
    text
}

fn credentials_text(scenario: &Scenario) -> String {
    let mut text = String::from("# Written by bastionless-sim; removed when it stops.\n");
    for profile in &scenario.profiles {
        let _ = write!(
            text,
            "\n[{}]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
            profile.name, profile.access_key_id, profile.secret_access_key
        );
    }
    text
}

/// Creates `path` readable and writable by its owner only, as the AWS CLI does.
pub(crate) fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(contents.as_bytes())?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_profile_gets_a_config_section_and_a_credentials_entry() {
        let scenario = Scenario::demo();
        let config = config_text(
            &scenario,
            "https://127.0.0.1:4566",
            Some(Path::new("/tmp/sim/ca.pem")),
        );
        assert!(
            config.contains(
                "[profile prod]\nregion = us-east-1\nendpoint_url = https://127.0.0.1:4566\nca_bundle = /tmp/sim/ca.pem\n"
            ),
            "{config}"
        );
        let credentials = credentials_text(&scenario);
        let prod = scenario.profile("prod").expect("demo has prod");
        assert!(credentials.contains(&format!(
            "[prod]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
            prod.access_key_id, prod.secret_access_key
        )));
        for profile in &scenario.profiles {
            assert!(config.contains(&format!("[profile {}]", profile.name)));
        }
    }

    #[cfg(unix)]
    #[test]
    fn the_files_are_private_to_their_owner_and_removed_on_drop() {
        use std::os::unix::fs::PermissionsExt;
        let mut files = SharedConfigFiles::create().expect("created");
        files
            .write(&Scenario::demo(), "https://127.0.0.1:1", Some("PEM"))
            .expect("written");
        let bundle = files.ca_bundle().expect("a bundle").to_owned();
        assert_eq!(std::fs::read_to_string(&bundle).expect("readable"), "PEM");
        for path in [files.config_file(), files.credentials_file(), &bundle] {
            let mode = std::fs::metadata(path)
                .expect("exists")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{}", path.display());
        }
        let config = files.config_file().to_owned();
        drop(files);
        assert!(!config.exists());
    }
}
