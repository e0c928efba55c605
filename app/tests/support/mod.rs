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

    /// [`World::engine`], reading its settings from `store` at each connect (as the app's does).
    pub fn engine_with_store(&self, store: &bastionless_core::store::Store) -> Engine {
        let files = AwsFiles::at(
            self.simulator.config_file(),
            self.simulator.credentials_file(),
        );
        let mut config = EngineConfig::new(files);
        config.store = Some(store.clone());
        let engine = Engine::start(config).expect("engine starts");
        engine.wait_until(Duration::from_secs(30), |s| !s.refreshing);
        engine
    }
}

/// A private D-Bus session with an unlocked gnome-keyring, for as long as it lives.
pub struct SecretService {
    session: std::process::Child,
    /// `DBUS_SESSION_BUS_ADDRESS` of the session.
    pub address: String,
}

impl SecretService {
    /// Starts the session with `home` as its user's home (its keyring lives there).
    pub fn start(home: &Path) -> SecretService {
        let runtime = home.join("run");
        std::fs::create_dir_all(&runtime).unwrap();
        std::fs::set_permissions(
            &runtime,
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .unwrap();
        let address_file = home.join("bus-address");
        let script = format!(
            "echo -n pw | gnome-keyring-daemon --unlock --components=secrets >/dev/null && \
             echo \"$DBUS_SESSION_BUS_ADDRESS\" > '{}' && exec sleep 900",
            address_file.display()
        );
        let mut command = Command::new("dbus-run-session");
        command
            .args(["--", "sh", "-c", &script])
            .env("HOME", home)
            .env("XDG_DATA_HOME", home.join("data"))
            .env("XDG_RUNTIME_DIR", &runtime)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let session = command.spawn().expect("dbus-run-session starts");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let address = loop {
            if let Ok(text) = std::fs::read_to_string(&address_file)
                && !text.trim().is_empty()
            {
                break text.trim().to_owned();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no Secret Service within 10 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        SecretService { session, address }
    }
}

impl Drop for SecretService {
    fn drop(&mut self) {
        // The whole session: dbus-daemon, the keyring daemon and the shell.
        let _ = Command::new("kill")
            .args(["-TERM", "--", &format!("-{}", self.session.id())])
            .status();
        let _ = self.session.wait();
    }
}

/// The demo, with win-eic-1's port 3389 answered by `xrdp`.
pub fn demo_with_xrdp(xrdp: std::net::SocketAddr) -> Scenario {
    let demo = include_str!("../../../tests/scenarios/demo.toml");
    let at = demo
        .find("Name = \"win-eic-1\"")
        .expect("win-eic-1 is in the demo");
    let echo = "backends = { 3389 = \"echo\" }";
    let offset = demo[at..].find(echo).expect("win-eic-1 echoes on 3389") + at;
    let text = format!(
        "{}backends = {{ 3389 = \"tcp:{xrdp}\" }}{}",
        &demo[..offset],
        &demo[offset + echo.len()..]
    );
    Scenario::from_toml_str(&text).expect("a valid scenario")
}
