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
use bastionless_sim::{BackgroundSimulator, Scenario};

/// The AWS files to read, and the simulator behind them when there is one.
pub struct AwsSource {
    files: AwsFiles,
    /// Keeps the demo simulator running.
    simulator: Option<BackgroundSimulator>,
}

impl AwsSource {
    /// The user's files: `AWS_CONFIG_FILE` / `AWS_SHARED_CREDENTIALS_FILE`, else `~/.aws/`.
    pub fn from_env() -> Self {
        Self {
            files: AwsFiles::from_env(),
            simulator: None,
        }
    }

    /// A simulator running the demo scenario, and the files that point at it.
    pub fn demo() -> anyhow::Result<Self> {
        let simulator = BackgroundSimulator::start(Scenario::demo())
            .context("could not start the demo simulator")?;
        let files = AwsFiles::at(simulator.config_file(), simulator.credentials_file());
        Ok(Self {
            files,
            simulator: Some(simulator),
        })
    }

    pub fn files(&self) -> &AwsFiles {
        &self.files
    }

    /// The engine's configuration: these files, every enabled region, and the host cache in the
    /// OS cache directory (none for the demo).
    pub fn engine_config(&self) -> EngineConfig {
        let mut config = EngineConfig::new(self.files.clone());
        if self.simulator.is_none() {
            config.cache_file = InventoryCache::default_path();
        }
        config
    }
}
