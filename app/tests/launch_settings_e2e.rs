//! The settings in the launch path, end to end through the engine's `Command::Connect` (the
//! window's double-click) against the simulator, with the settings saved in the engine's store
//! between connects (no restart):
//!
//! - per-host user, port, identity file and route, and the app's ProxyCommand and key pair
//!   settings, change the ssh command the terminal template is given (recorded to a file), and
//!   a real sshd login goes through the per-host route as the per-host user;
//! - the RDP command template from the store runs `xfreerdp +auth-only` with the password on
//!   its stdin, as the per-host user, and xrdp grants the login with the instance's password
//!   decrypted from `GetPasswordData` with the key pair's key from a real Secret Service.
//!
//! The process environment (data directories, the session bus) is set once, before any engine
//! starts: the engine's launchers read it.

use bastionless_core::engine::{
    Command as EngineCommand, ConnectHow, Engine, EngineConfig, NoticeLevel, RouteChoice, Snapshot,
};
use bastionless_core::inventory::HostKey;
use bastionless_core::profiles::AwsFiles;
use bastionless_core::store::{AppSettings, HostSettings, RoutePreference, SshVia, Store};
mod support;

use bastionless_sim::xrdp::{LoginOutcome, XrdpServer};
use bastionless_sim::{BackgroundSimulator, Scenario};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use support::{SecretService, demo_with_xrdp};

/// The local user xrdp logs in (Windows' Administrator, renamed: Linux has no such user).
const RDP_USER: &str = "bastionless-launch-rdp";
/// FreeRDP authenticating only, the password on stdin, under a virtual display (it needs one).
const RDP_CLIENT: &str = "xvfb-run -a xfreerdp /v:{address} /u:{user} /from-stdin:force +auth-only /cert:ignore /sec:tls";

/// The process-wide environment: a private home with its data directories, and a session bus
/// with an unlocked gnome-keyring (kept for the whole run).
struct Home {
    dir: tempfile::TempDir,
    _bus: SecretService,
}

fn home() -> &'static Home {
    static HOME: OnceLock<Home> = OnceLock::new();
    HOME.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let runtime = dir.path().join("run");
        let bus = SecretService::start(dir.path());
        let address = bus.address.clone();
        // SAFETY: set once, by whichever test comes first, before any engine of this process
        // starts; nothing else in this binary sets or reads these concurrently.
        unsafe {
            std::env::set_var("HOME", dir.path());
            std::env::set_var("XDG_DATA_HOME", dir.path().join("data"));
            std::env::set_var("XDG_CONFIG_HOME", dir.path().join("config"));
            std::env::set_var("XDG_CACHE_HOME", dir.path().join("cache"));
            std::env::set_var("XDG_RUNTIME_DIR", &runtime);
            std::env::set_var("DBUS_SESSION_BUS_ADDRESS", &address);
            std::env::remove_var("DISPLAY");
            std::env::remove_var("WAYLAND_DISPLAY");
        }
        Home { dir, _bus: bus }
    })
}

/// An engine over `simulator`, remembering into (and reading settings from) `store`.
fn engine(simulator: &BackgroundSimulator, store: &Store) -> Engine {
    let files = AwsFiles::at(simulator.config_file(), simulator.credentials_file());
    let mut config = EngineConfig::new(files);
    config.store = Some(store.clone());
    let engine = Engine::start(config).expect("engine starts");
    engine.wait_until(Duration::from_secs(60), |s| !s.refreshing);
    engine
}

fn host_key(engine: &Engine, name: &str) -> HostKey {
    engine.snapshot().find_hosts(name)[0].key()
}

/// Sends a Connect and returns the snapshot with its notice.
fn connect(engine: &Engine, host: &HostKey, how: ConnectHow) -> (std::sync::Arc<Snapshot>, u64) {
    let seen = engine.snapshot().notices.last().map_or(0, |n| n.seq);
    engine.send(EngineCommand::Connect {
        host: host.clone(),
        how,
        route: RouteChoice::Auto,
    });
    let after = engine.wait_until(Duration::from_secs(60), |s| {
        s.notices.iter().any(|n| n.seq > seen)
    });
    (after, seen)
}

fn notice_text(snapshot: &Snapshot, seen: u64, level: NoticeLevel) -> String {
    let notice = snapshot
        .notices
        .iter()
        .find(|n| n.seq > seen)
        .expect("a notice about the connection");
    assert_eq!(notice.level, level, "{}", notice.text);
    notice.text.clone()
}

/// A terminal template whose "terminal" writes the command it is given, one word a line, to
/// `file`, and runs nothing.
fn recording_template(dir: &Path, file: &Path) -> String {
    let script = dir.join("record-terminal");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$@\" > '{}.part'\nmv '{0}.part' '{0}'\n",
            file.display()
        ),
    )
    .unwrap();
    executable(&script);
    format!("{} {{command}}", script.display())
}

fn executable(path: &Path) {
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
}

fn wait_for_file(path: &Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(text) = std::fs::read_to_string(path) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn lines(text: &str) -> Vec<&str> {
    text.lines().collect()
}

#[test]
fn per_host_and_app_settings_change_the_ssh_that_is_launched_and_a_real_login_follows_them() {
    home();
    assert!(
        Path::new("/usr/sbin/sshd").exists(),
        "this test needs OpenSSH's sshd (apt-get install openssh-server)"
    );
    let simulator = BackgroundSimulator::start(Scenario::demo()).expect("simulator starts");
    let scratch = tempfile::tempdir().unwrap();
    let store = Store::open(scratch.path().join("store")).unwrap();
    let engine = engine(&simulator, &store);
    let host = host_key(&engine, "db-both-1");
    let recorded = scratch.path().join("argv");
    store
        .set_settings(AppSettings {
            terminal_template: Some(recording_template(scratch.path(), &recorded)),
            // Not the default (a ProxyCommand): the tunnel shows in the engine's list.
            ssh_via: Some(SshVia::LoopbackPort),
            ..AppSettings::default()
        })
        .unwrap();

    // Per host: user, port, identity file and route. The key is the user's: none is pushed.
    store
        .set_host_settings(
            &(&host).into(),
            HostSettings {
                user: Some("alice".into()),
                identity_file: Some("/keys/db.pem".into()),
                port: Some(2222),
                route: Some(RoutePreference::Ssm),
            },
        )
        .unwrap();
    let pushed_before = simulator.calls("SendSSHPublicKey");
    let (snapshot, seen) = connect(&engine, &host, ConnectHow::Ssh);
    let said = notice_text(&snapshot, seen, NoticeLevel::Info);
    assert!(said.contains("ssh alice@db-both-1"), "{said}");
    assert!(said.contains("through SSM on 127.0.0.1:"), "{said}");
    let argv = wait_for_file(&recorded);
    let words = lines(&argv);
    assert_eq!(words[0], "ssh", "{argv}");
    assert!(words.ends_with(&["alice@127.0.0.1"]), "{argv}");
    assert!(
        argv.contains("\nIdentitiesOnly=yes\n-i\n/keys/db.pem\n"),
        "{argv}"
    );
    assert_eq!(simulator.calls("SendSSHPublicKey"), pushed_before);
    let tunnel = snapshot
        .tunnels
        .iter()
        .find(|t| t.target.host == host)
        .expect("the loopback tunnel is listed");
    assert_eq!(tunnel.target.remote_port, 2222, "the per-host port");
    engine.send(EngineCommand::CloseTunnel(tunnel.id));

    // App settings: ssh through a ProxyCommand, and the key pair's file off EC2 Instance Connect.
    std::fs::remove_file(&recorded).unwrap();
    let mut app = store.settings();
    app.ssh_via = Some(SshVia::ProxyCommand);
    app.key_pair_identity_files
        .insert("prod-ops".into(), "/keys/prod-ops.pem".into());
    store.set_settings(app).unwrap();
    store
        .set_host_settings(
            &(&host).into(),
            HostSettings {
                port: Some(2222),
                route: Some(RoutePreference::Ssm),
                ..HostSettings::default()
            },
        )
        .unwrap();
    let tunnels_before = engine.snapshot().tunnels.len();
    let (snapshot, seen) = connect(&engine, &host, ConnectHow::Ssh);
    let said = notice_text(&snapshot, seen, NoticeLevel::Info);
    assert!(said.contains("through SSM by a ProxyCommand"), "{said}");
    let argv = wait_for_file(&recorded);
    let instance = &host.instance_id;
    let proxy = lines(&argv)
        .into_iter()
        .find(|w| w.starts_with("ProxyCommand="))
        .unwrap_or_else(|| panic!("no ProxyCommand in {argv}"))
        .to_owned();
    assert!(
        proxy.contains(&format!(" proxy {instance} --profile "))
            && proxy.ends_with(" --port 2222 --route ssm"),
        "{proxy}"
    );
    assert!(
        proxy.starts_with("ProxyCommand=env ") && proxy.contains("AWS_CONFIG_FILE="),
        "the proxy reads the engine's AWS files: {proxy}"
    );
    assert!(argv.contains("\n-i\n/keys/prod-ops.pem\n"), "{argv}");
    assert!(
        lines(&argv)
            .last()
            .is_some_and(|w| w.ends_with(&format!("@{instance}"))),
        "the instance id is the destination: {argv}"
    );
    assert_eq!(simulator.calls("SendSSHPublicKey"), pushed_before);
    assert!(
        engine.snapshot().tunnels.len() <= tunnels_before,
        "a ProxyCommand opens no tunnel here"
    );

    // A real login through the per-host route as the per-host user: the terminal runs ssh.
    let login_user = simulator.login_user().expect("a login user").to_owned();
    let out = scratch.path().join("login");
    let run = scratch.path().join("run-terminal");
    std::fs::write(
        &run,
        format!(
            "#!/bin/sh\n\"$@\" -o BatchMode=yes -o StrictHostKeyChecking=accept-new 'echo logged-in-as; id -un' > '{}.part' 2>&1; mv '{0}.part' '{0}'\n",
            out.display()
        ),
    )
    .unwrap();
    executable(&run);
    let mut app = store.settings();
    app.ssh_via = Some(SshVia::LoopbackPort);
    // No key pair file: an ephemeral key is pushed for the login.
    app.key_pair_identity_files.clear();
    app.terminal_template = Some(format!("{} {{command}}", run.display()));
    store.set_settings(app).unwrap();
    store
        .set_host_settings(
            &(&host).into(),
            HostSettings {
                user: Some(login_user.clone()),
                route: Some(RoutePreference::Ssm),
                ..HostSettings::default()
            },
        )
        .unwrap();
    let (snapshot, seen) = connect(&engine, &host, ConnectHow::Ssh);
    let said = notice_text(&snapshot, seen, NoticeLevel::Info);
    assert!(
        said.contains(&format!("ssh {login_user}@db-both-1")),
        "{said}"
    );
    assert!(said.contains("through SSM on 127.0.0.1:"), "{said}");
    let logged = {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(text) = std::fs::read_to_string(&out) {
                break text;
            }
            assert!(Instant::now() < deadline, "ssh never finished");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    assert!(
        logged.ends_with(&format!("logged-in-as\n{login_user}\n")),
        "{logged}"
    );
}

#[test]
fn connect_by_rdp_logs_in_to_xrdp_with_the_store_s_client_template_and_the_host_s_user() {
    let home = home();
    XrdpServer::available().expect("this test needs xrdp (see .ci/run)");
    for program in ["/usr/bin/xfreerdp", "/usr/bin/xvfb-run"] {
        assert!(Path::new(program).exists(), "this test needs {program}");
    }
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
    let key_file: PathBuf = simulator
        .key_pair_file("prod-windows")
        .expect("the key pair's pem")
        .to_owned();
    // The key pair's key into the Secret Service, as a user does once.
    let import = Command::new(env!("CARGO_BIN_EXE_bastionless"))
        .envs(simulator.env_vars())
        .args(["keypair", "import", "prod-windows", "--file"])
        .arg(&key_file)
        .args(["--profile", "prod"])
        .output()
        .expect("bastionless runs");
    assert!(
        import.status.success(),
        "{}",
        String::from_utf8_lossy(&import.stderr)
    );

    let store = Store::open(home.dir.path().join("rdp-store")).unwrap();
    store
        .set_settings(AppSettings {
            rdp_template: Some(RDP_CLIENT.to_owned()),
            ..AppSettings::default()
        })
        .unwrap();
    let engine = engine(&simulator, &store);
    let host = host_key(&engine, "win-eic-1");
    store
        .set_host_settings(
            &(&host).into(),
            HostSettings {
                user: Some(RDP_USER.into()),
                ..HostSettings::default()
            },
        )
        .unwrap();

    // A wrong password on the server first: refused, so the check is real.
    xrdp.set_login(RDP_USER, "not-the-instance-password")
        .unwrap();
    let since = xrdp.log_position();
    let (snapshot, seen) = connect(&engine, &host, ConnectHow::Rdp);
    let said = notice_text(&snapshot, seen, NoticeLevel::Info);
    assert!(
        said.contains(&format!("as {RDP_USER} opened in xvfb-run")),
        "{said}"
    );
    assert_eq!(
        xrdp.wait_for_login(RDP_USER, since, Duration::from_secs(20)),
        Some(LoginOutcome::Refused)
    );

    // The instance's password: granted.
    xrdp.set_login(RDP_USER, &password).unwrap();
    let since = xrdp.log_position();
    let started = Instant::now();
    let (snapshot, seen) = connect(&engine, &host, ConnectHow::Rdp);
    let said = notice_text(&snapshot, seen, NoticeLevel::Info);
    assert_eq!(
        xrdp.wait_for_login(RDP_USER, since, Duration::from_secs(20)),
        Some(LoginOutcome::Granted),
        "{said}"
    );
    eprintln!("Connect to an xrdp login took {:?}", started.elapsed());
    // The password is never in what the user sees.
    assert!(
        engine
            .snapshot()
            .notices
            .iter()
            .all(|n| !n.text.contains(&password))
    );
}
