//! What the end-to-end tests that run `bastionless` against the simulator share: a simulator of
//! the demo scenario whose Linux hosts run a real sshd, and a data and cache directory of the
//! test's own, so nothing of the user's (known_hosts, the host cache, the audit log) is read or
//! written.

// Each test binary uses its own part of this module.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use bastionless_core::engine::{Engine, EngineConfig};
use bastionless_core::profiles::AwsFiles;
use bastionless_sim::{BackgroundSimulator, Scenario};

pub struct World {
    pub simulator: BackgroundSimulator,
    pub data: tempfile::TempDir,
}

impl World {
    pub fn start() -> Self {
        assert!(
            Path::new("/usr/sbin/sshd").exists(),
            "these tests need OpenSSH's sshd (apt-get install openssh-server)"
        );
        Self {
            simulator: BackgroundSimulator::start(Scenario::demo()).expect("simulator starts"),
            data: tempfile::tempdir().expect("a temporary directory"),
        }
    }

    /// `program` with the simulator's AWS environment and this test's data and cache
    /// directories.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut command = Command::new(program);
        command
            .envs(self.simulator.env_vars())
            .env("XDG_DATA_HOME", self.data.path())
            .env("XDG_CACHE_HOME", self.data.path());
        command
    }

    /// `bastionless ARGS…`, ready to run.
    pub fn bastionless_command(&self, args: &[&str]) -> Command {
        let mut command = self.command(env!("CARGO_BIN_EXE_bastionless"));
        command.args(args);
        command
    }

    /// Runs `bastionless ARGS…` to the end.
    pub fn bastionless(&self, args: &[&str]) -> Output {
        self.bastionless_command(args)
            .output()
            .expect("bastionless runs")
    }

    /// The engine over the simulator's profiles, with its first refresh done.
    pub fn engine(&self) -> Engine {
        let files = AwsFiles::at(
            self.simulator.config_file(),
            self.simulator.credentials_file(),
        );
        let engine = Engine::start(EngineConfig::new(files)).expect("engine starts");
        engine.wait_until(Duration::from_secs(30), |s| !s.refreshing);
        engine
    }
}
