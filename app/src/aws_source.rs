//! Where the AWS files come from: the user's own, or the in-process simulator's (`--demo`).
//!
//! `--demo` starts the simulator on loopback and points the engine at the config and
//! credentials files it writes, so the demo runs the very same code as real use. The simulator
//! stops when the [`AwsSource`] is dropped, so whoever runs the engine keeps the source alive.
//! The demo keeps no host cache: its hosts must never show up, stale, in a real session.

use anyhow::Context as _;
use bastionless_core::engine::EngineConfig;
use bastionless_core::inventory::InventoryCache;
use bastionless_core::profiles::AwsFiles;
use bastionless_core::store::Store;
use bastionless_sim::{BackgroundSimulator, Scenario};

/// The AWS files to read, and the simulator behind them when there is one.
pub struct AwsSource {
    files: AwsFiles,
    /// Keeps the demo simulator running.
    _simulator: Option<BackgroundSimulator>,
}

impl AwsSource {
    /// The user's files: `AWS_CONFIG_FILE` / `AWS_SHARED_CREDENTIALS_FILE`, else `~/.aws/`.
    pub fn from_env() -> Self {
        Self {
            files: AwsFiles::from_env(),
            _simulator: None,
        }
    }

    /// The files in the environment, which a running demo named for a process it launched
    /// (`--demo-files`): the demo's settings, and no audit log or host cache, as in the demo.
    pub fn demo_files_from_env() -> Self {
        Self {
            files: AwsFiles {
                demo: true,
                ..AwsFiles::from_env()
            },
            _simulator: None,
        }
    }

    /// A simulator running the demo scenario, and the files that point at it.
    pub fn demo() -> anyhow::Result<Self> {
        let simulator = BackgroundSimulator::start(Scenario::demo())
            .context("could not start the demo simulator")?;
        let files = AwsFiles {
            demo: true,
            ..AwsFiles::at(simulator.config_file(), simulator.credentials_file())
        };
        Ok(Self {
            files,
            _simulator: Some(simulator),
        })
    }

    /// Where favorites, recents and settings are kept ([`Store::default_dir`]); the demo keeps
    /// its own in a `demo` directory inside it, so it never touches the user's.
    pub fn store_dir(&self) -> Option<std::path::PathBuf> {
        let dir = Store::default_dir()?;
        Some(if self.files.demo {
            dir.join("demo")
        } else {
            dir
        })
    }

    pub fn files(&self) -> &AwsFiles {
        &self.files
    }

    /// The engine's configuration: these files, every enabled region, and the host cache in the
    /// OS cache directory (none for the demo).
    pub fn engine_config(&self) -> EngineConfig {
        let mut config = EngineConfig::new(self.files.clone());
        // The demo's made-up sessions stay out of the user's audit log.
        if !self.files.demo {
            config.audit_file = bastionless_core::audit::AuditLog::default_path();
            config.cache_file = InventoryCache::default_path();
        }
        // Connections made are remembered in Recent (the demo's in its own store).
        config.store = self.store_dir().and_then(|dir| match Store::open(&dir) {
            Ok(store) => Some(store),
            Err(error) => {
                tracing::warn!("connections will not be remembered in Recent: {error}");
                None
            }
        });
        config
    }
}
