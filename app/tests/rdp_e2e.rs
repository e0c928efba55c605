//! RDP end to end: the key pair's `.pem` imported into a real Secret Service (gnome-keyring on a
//! private session bus), `bastionless rdp` decrypting the simulator's `GetPasswordData` with it,
//! and FreeRDP (`xfreerdp +auth-only`, the password on its stdin) logging in to a real xrdp
//! behind the Windows instance, through an EC2 Instance Connect Endpoint tunnel. xrdp checks
//! the password after the client has gone, so the verdict comes from its sesman log; a wrong
//! password first shows the check is real.

mod support;

use bastionless_sim::xrdp::{LoginOutcome, XrdpServer};
use bastionless_sim::{BackgroundSimulator, Scenario};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};
use support::{SecretService, demo_with_xrdp};

/// The local user xrdp logs in (Windows' Administrator, renamed: Linux has no such user).
const RDP_USER: &str = "bastionless-rdp";
/// FreeRDP authenticating only, the password on stdin, under a virtual display (it needs one).
const CLIENT: &str = "xvfb-run -a xfreerdp /v:{address} /u:{user} /from-stdin:force +auth-only /cert:ignore /sec:tls";

struct World {
    simulator: BackgroundSimulator,
    home: tempfile::TempDir,
    key_file: PathBuf,
}

impl World {
    fn command(&self, bus: Option<&SecretService>) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_bastionless"));
        command
            .envs(self.simulator.env_vars())
            .env("HOME", self.home.path())
            .env("XDG_DATA_HOME", self.home.path().join("data"))
            .env("XDG_CONFIG_HOME", self.home.path().join("config"))
            .env("XDG_CACHE_HOME", self.home.path().join("cache"))
            .env("XDG_RUNTIME_DIR", self.home.path().join("run"))
            .env_remove("DBUS_SESSION_BUS_ADDRESS")
            .env_remove("WAYLAND_DISPLAY")
            .env_remove("DISPLAY");
        if let Some(bus) = bus {
            command.env("DBUS_SESSION_BUS_ADDRESS", &bus.address);
        }
        command
    }

    fn run(&self, bus: Option<&SecretService>, args: &[&str]) -> Output {
        self.command(bus)
            .args(args)
            .output()
            .expect("bastionless runs")
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn requirements() -> Result<(), String> {
    XrdpServer::available()?;
    for program in [
        "/usr/bin/xfreerdp",
        "/usr/bin/xvfb-run",
        "/usr/bin/dbus-run-session",
    ] {
        if !Path::new(program).exists() {
            return Err(format!("{program} is missing"));
        }
    }
    if !Path::new("/usr/bin/gnome-keyring-daemon").exists() {
        return Err("gnome-keyring-daemon is missing".to_owned());
    }
    Ok(())
}

#[test]
fn rdp_logs_in_to_xrdp_through_a_tunnel_with_the_decrypted_password_from_the_keyring() {
    requirements().expect("this test needs xrdp, FreeRDP, Xvfb and gnome-keyring (see .ci/run)");
    let xrdp = XrdpServer::start().expect("xrdp starts");
    let simulator =
        BackgroundSimulator::start(demo_with_xrdp(xrdp.address())).expect("simulator starts");
    let instance = simulator
        .scenario()
        .instance_named("win-eic-1")
        .expect("in the demo")
        .instance_id
        .clone();
    let password = simulator
        .windows_password(&instance)
        .expect("a Windows password")
        .to_owned();
    let world = World {
        key_file: simulator
            .key_pair_file("prod-windows")
            .expect("the key pair's pem")
            .to_owned(),
        simulator,
        home: tempfile::tempdir().unwrap(),
    };
    let key_file = world.key_file.to_str().unwrap().to_owned();
    let rdp = [
        "rdp",
        "win-eic-1",
        "--profile",
        "prod",
        "--user",
        RDP_USER,
        "--client-template",
        CLIENT,
    ];

    // No Secret Service: the key is refused, and said why.
    let output = world.run(
        None,
        &[
            "keypair",
            "import",
            "prod-windows",
            "--file",
            &key_file,
            "--account",
            "111122223333",
        ],
    );
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stderr));
    assert!(
        text(&output.stderr).contains("no OS keyring is available"),
        "{}",
        text(&output.stderr)
    );

    let bus = SecretService::start(world.home.path());
    // Before the import, rdp says what to do.
    let output = world.run(Some(&bus), &rdp);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stderr));
    assert!(
        text(&output.stderr).contains("bastionless keypair import prod-windows"),
        "{}",
        text(&output.stderr)
    );

    let output = world.run(
        Some(&bus),
        &[
            "keypair",
            "import",
            "prod-windows",
            "--file",
            &key_file,
            "--profile",
            "prod",
        ],
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    let stored = Command::new("secret-tool")
        .args(["search", "--all", "service", "bastionless key pair"])
        .env("DBUS_SESSION_BUS_ADDRESS", &bus.address)
        .output()
        .expect("secret-tool runs");
    assert!(
        text(&stored.stdout).contains("111122223333/prod-windows")
            || text(&stored.stderr).contains("111122223333/prod-windows"),
        "the key is in the Secret Service: {} {}",
        text(&stored.stdout),
        text(&stored.stderr)
    );

    // A wrong password on the server first: the login is refused, so the check is real.
    xrdp.set_login(RDP_USER, "not-the-instance-password")
        .unwrap();
    let since = xrdp.log_position();
    let output = world.run(Some(&bus), &rdp);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(
        xrdp.wait_for_login(RDP_USER, since, Duration::from_secs(15)),
        Some(LoginOutcome::Refused)
    );

    // The instance's password: granted.
    xrdp.set_login(RDP_USER, &password).unwrap();
    let since = xrdp.log_position();
    let started = Instant::now();
    let output = world.run(Some(&bus), &rdp);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(
        xrdp.wait_for_login(RDP_USER, since, Duration::from_secs(15)),
        Some(LoginOutcome::Granted)
    );
    eprintln!("rdp login through the tunnel took {:?}", started.elapsed());
    // Never on screen.
    assert!(!text(&output.stdout).contains(&password));
    assert!(!text(&output.stderr).contains(&password));
}

/// What the window's double-click on a Windows host does (`Command::Connect` with
/// `ConnectHow::Rdp`), when the password cannot be had: a notice that says why and what to do,
/// and no tunnel.
#[test]
fn connecting_by_rdp_without_a_password_to_use_says_why_and_opens_nothing() {
    use bastionless_core::engine::{
        Command as EngineCommand, ConnectHow, Engine, EngineConfig, NoticeLevel,
    };
    use bastionless_core::profiles::AwsFiles;

    let mut scenario = Scenario::demo();
    scenario
        .instances
        .iter_mut()
        .find(|i| i.name() == Some("win-eic-1"))
        .expect("in the demo")
        .launch_time = chrono::Utc::now();
    // A route to win-ad-1 (its agent online), so what stops it is the missing key pair.
    scenario
        .instances
        .iter_mut()
        .find(|i| i.name() == Some("win-ad-1"))
        .and_then(|i| i.ssm_agent.as_mut())
        .expect("win-ad-1 has an agent in the demo")
        .ping_status = bastionless_sim::scenario::PingStatus::Online;
    let simulator = BackgroundSimulator::start(scenario).expect("simulator starts");
    let files = AwsFiles::at(simulator.config_file(), simulator.credentials_file());
    let engine = Engine::start(EngineConfig::new(files)).expect("engine starts");
    let snapshot = engine.wait_until(Duration::from_secs(60), |s| !s.refreshing);
    for (name, expected) in [
        (
            "win-eic-1",
            "not ready yet (wait up to 15 min after launch)",
        ),
        ("win-ad-1", "was launched without a key pair"),
    ] {
        let host = snapshot
            .hosts
            .iter()
            .find(|h| h.name.as_deref() == Some(name))
            .expect("listed");
        let seen = engine.snapshot().notices.last().map_or(0, |n| n.seq);
        engine.send(EngineCommand::Connect {
            host: host.key(),
            how: ConnectHow::Rdp,
            route: bastionless_core::engine::RouteChoice::Auto,
        });
        let after = engine.wait_until(Duration::from_secs(30), |s| {
            s.notices.iter().any(|n| n.seq > seen)
        });
        let notice = after
            .notices
            .iter()
            .find(|n| n.seq > seen)
            .expect("a notice about the connection");
        assert_eq!(notice.level, NoticeLevel::Error, "{}", notice.text);
        assert!(notice.text.contains(expected), "{}", notice.text);
        assert!(after.tunnels.is_empty(), "{:?}", after.tunnels);
    }
}
