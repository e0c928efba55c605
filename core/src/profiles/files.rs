//! Where the AWS shared files live, following the AWS tools' environment variables.

use std::path::{Path, PathBuf};

/// The two shared files and the profile the environment prefers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsFiles {
    pub config: PathBuf,
    pub credentials: PathBuf,
    /// `AWS_PROFILE`, if set.
    pub preferred_profile: Option<String>,
    /// `AWS_REGION` / `AWS_DEFAULT_REGION`, used for profiles that name no region of their own.
    pub fallback_region: Option<String>,
    /// `AWS_CA_BUNDLE`, trusted by every profile.
    pub ca_bundle_env: Option<PathBuf>,
    /// Where SSO tokens are cached, shared with the AWS CLI: `~/.aws/sso/cache`.
    pub sso_cache_dir: PathBuf,
    /// Whether `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY` are set: they then appear as
    /// the pseudo-profile [`super::ENVIRONMENT_PROFILE`].
    pub environment_credentials: bool,
    /// Bastionless's own record of which SSO sessions have account discovery on, and what it
    /// found ([`crate::sso::Discovery`]).
    pub discovery_file: PathBuf,
    /// The files point at the `--demo` simulator. The `bastionless` processes launched with
    /// them (ssh's ProxyCommand, a shell's terminal) are told so ([`DEMO_FILES_FLAG`]), and keep,
    /// like the demo window, the demo's own settings and no audit log: the demo's made-up
    /// sessions never mix with the user's.
    pub demo: bool,
}

/// The command-line flag that tells a launched `bastionless` its AWS files are the demo's
/// ([`AwsFiles::demo`]).
pub const DEMO_FILES_FLAG: &str = "--demo-files";

impl AwsFiles {
    /// `AWS_CONFIG_FILE` / `AWS_SHARED_CREDENTIALS_FILE` / `AWS_PROFILE`, else `~/.aws/config` and
    /// `~/.aws/credentials`.
    pub fn from_env() -> Self {
        let home = directories::BaseDirs::new()
            .map(|d| d.home_dir().to_path_buf())
            .unwrap_or_default();
        let from = |var: &str, default: &str| {
            std::env::var_os(var)
                .map(PathBuf::from)
                .unwrap_or_else(|| home.join(".aws").join(default))
        };
        Self {
            config: from("AWS_CONFIG_FILE", "config"),
            credentials: from("AWS_SHARED_CREDENTIALS_FILE", "credentials"),
            preferred_profile: std::env::var("AWS_PROFILE").ok().filter(|p| !p.is_empty()),
            fallback_region: ["AWS_REGION", "AWS_DEFAULT_REGION"]
                .into_iter()
                .find_map(|var| std::env::var(var).ok().filter(|v| !v.is_empty())),
            ca_bundle_env: std::env::var_os("AWS_CA_BUNDLE")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from),
            sso_cache_dir: home.join(".aws").join("sso").join("cache"),
            discovery_file: directories::ProjectDirs::from("", "", "bastionless")
                .map(|dirs| dirs.config_dir().to_path_buf())
                .unwrap_or_else(|| home.join(".config").join("bastionless"))
                .join("sso-discovery.json"),
            environment_credentials: ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]
                .iter()
                .all(|var| std::env::var_os(var).is_some_and(|v| !v.is_empty())),
            demo: false,
        }
    }

    /// Explicit paths (tests, the simulator, `--demo`); SSO tokens are cached in `sso/cache`
    /// beside the config file, as `~/.aws/sso/cache` is beside `~/.aws/config`.
    pub fn at(config: impl Into<PathBuf>, credentials: impl Into<PathBuf>) -> Self {
        let config = config.into();
        let dir = config.parent().unwrap_or(Path::new(".")).to_path_buf();
        let sso_cache_dir = dir.join("sso").join("cache");
        Self {
            config,
            credentials: credentials.into(),
            preferred_profile: None,
            fallback_region: None,
            ca_bundle_env: None,
            sso_cache_dir,
            environment_credentials: false,
            discovery_file: dir.join("bastionless-sso-discovery.json"),
            demo: false,
        }
    }
}

/// The file's text, or empty when it does not exist.
pub(super) fn read_optional(path: &Path) -> anyhow::Result<String> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(anyhow::anyhow!("cannot read {}: {e}", path.display())),
    }
}
