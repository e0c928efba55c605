//! The exported ssh_config, used by the real OpenSSH tools: `bastionless ssh-config
//! --add-include` writes the Host blocks and the Include line, then `scp` and `rsync` reach
//! the simulator's sshd by the host's Name tag alone; host keys pinned by instance id keep two
//! instances with the same private IP apart; and the engine's `Command::Connect` (the GUI's
//! double-click) runs ssh in "the user's terminal" — a stand-in named by `$TERMINAL` that runs
//! the command it is given — through a ProxyCommand by default, or a loopback tunnel.

use bastionless_core::engine::{Command as EngineCommand, ConnectHow, NoticeLevel};
use sha2::{Digest, Sha256};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

mod support;

use support::World;

impl World {
    fn known_hosts(&self) -> std::path::PathBuf {
        self.data.path().join("bastionless/known_hosts")
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn scp_and_rsync_reach_a_host_by_name_through_the_exported_ssh_config() {
    let world = World::start();
    let ssh_dir = tempfile::tempdir().unwrap();
    let config = ssh_dir.path().join("config");
    std::fs::write(&config, "Host elsewhere\n    User nobody\n").unwrap();

    let output = world.bastionless(&[
        "ssh-config",
        "--add-include",
        "--ssh-config",
        config.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "stderr:\n{}", text(&output.stderr));
    let include = world.data.path().join("bastionless/ssh_config");
    assert_eq!(
        text(&output.stdout),
        format!("Include {}\n", include.display())
    );
    let written = std::fs::read_to_string(&config).unwrap();
    assert!(written.contains(&format!("Include {}\n", include.display())));
    assert!(
        written.ends_with("Host elsewhere\n    User nobody\n"),
        "{written}"
    );
    assert!(ssh_dir.path().join("config.bastionless-backup").exists());
    let blocks = std::fs::read_to_string(&include).unwrap();
    assert!(blocks.contains("Host web-eic-1 i-"), "{blocks}");

    // ssh's own key for the login: pushed with EC2 Instance Connect (valid 60 s).
    let engine = world.engine();
    let key = engine.snapshot().find_hosts("web-eic-1")[0].key();
    let user = world
        .simulator
        .login_user()
        .expect("a login user")
        .to_owned();
    let pushed = engine
        .push_ssh_key_blocking(&key, &user)
        .expect("key pushed");
    let ssh_options = format!(
        "-F {} -i {} -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=accept-new",
        config.display(),
        pushed.private_key_path().display()
    );
    let ssh_options: Vec<&str> = ssh_options.split(' ').collect();

    let scratch = tempfile::tempdir().unwrap();
    let original: Vec<u8> = (0..3 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
        .collect();
    let local = scratch.path().join("blob");
    std::fs::write(&local, &original).unwrap();
    let by_scp = scratch.path().join("by-scp");
    let output = world
        .command("scp")
        .arg("-q")
        .args(&ssh_options)
        .arg(&local)
        .arg(format!("web-eic-1:{}", by_scp.display()))
        .output()
        .unwrap();
    assert!(output.status.success(), "scp:\n{}", text(&output.stderr));

    let by_rsync = scratch.path().join("by-rsync");
    let output = world
        .command("rsync")
        .arg("-e")
        .arg(format!("ssh {}", ssh_options.join(" ")))
        .arg(format!("web-eic-1:{}", by_scp.display()))
        .arg(&by_rsync)
        .output()
        .unwrap();
    assert!(output.status.success(), "rsync:\n{}", text(&output.stderr));
    let digest = |p: &Path| Sha256::digest(std::fs::read(p).unwrap());
    assert_eq!(digest(&by_scp), Sha256::digest(&original));
    assert_eq!(digest(&by_rsync), Sha256::digest(&original));

    // The host key was recorded under the instance id, in Bastionless's known_hosts.
    let found = Command::new("ssh-keygen")
        .arg("-F")
        .arg(&key.instance_id)
        .arg("-f")
        .arg(world.known_hosts())
        .output()
        .unwrap();
    assert!(found.status.success(), "{}", text(&found.stderr));
}

/// The host key `bastionless ssh` recorded for `instance_id`.
fn recorded_key(world: &World, instance_id: &str) -> String {
    let found = Command::new("ssh-keygen")
        .arg("-F")
        .arg(instance_id)
        .arg("-f")
        .arg(world.known_hosts())
        .output()
        .unwrap();
    assert!(found.status.success(), "{instance_id} is not recorded");
    let line = text(&found.stdout)
        .lines()
        .find(|l| !l.starts_with('#'))
        .expect("a key line")
        .to_owned();
    // "<hashed host> <type> <key>": the key itself.
    line.split_whitespace()
        .skip(1)
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn two_instances_with_the_same_private_ip_in_different_vpcs_keep_their_own_host_keys() {
    let world = World::start();
    let scenario = world.simulator.scenario();
    let web = scenario.instance_named("web-eic-1").unwrap();
    let clone = scenario.instance_named("web-clone-1").unwrap();
    assert_eq!(
        web.private_ip, clone.private_ip,
        "the scenario reuses the IP"
    );

    // Twice each, alternating: a key recorded for one must never be checked against the other.
    for name in ["web-eic-1", "web-clone-1", "web-eic-1", "web-clone-1"] {
        let output = world.bastionless(&["ssh", name, "--", "-o", "BatchMode=yes", "echo", "ok"]);
        assert!(
            output.status.success(),
            "ssh {name}, stderr:\n{}",
            text(&output.stderr)
        );
        assert_eq!(text(&output.stdout), "ok\n", "ssh {name}");
    }
    let web_key = recorded_key(&world, &web.instance_id);
    let clone_key = recorded_key(&world, &clone.instance_id);
    assert_ne!(
        web_key, clone_key,
        "each instance has its own sshd and host key"
    );
}

/// The engine's Connect (the window's double-click) runs ssh in "the user's terminal": by
/// default through `-o ProxyCommand="bastionless proxy <instance id> --profile … --region …"`,
/// with no tunnel of the engine's own (the proxy process records it in the audit log); with the
/// `ssh_via` setting at a loopback port, through a tunnel on 127.0.0.1 that closes itself after
/// the login. Both log in to the simulator's sshd.
///
/// The engine runs in this test process, so the ProxyCommand names this test binary as "the
/// bastionless program"; the terminal stand-in swaps that one path for the real `bastionless`
/// and leaves every other word of the launched command line as the engine wrote it.
#[test]
fn connect_from_the_engine_runs_ssh_in_the_terminal_by_proxy_command_or_on_a_loopback_port() {
    use bastionless_core::store::{AppSettings, SshVia, Store};

    let world = World::start();
    let scratch = tempfile::tempdir().unwrap();
    let out = scratch.path().join("terminal-output");
    let args_file = scratch.path().join("terminal-args");
    let this_test = std::env::current_exe().unwrap();
    // A terminal as `$TERMINAL` runs one: `PROGRAM -e COMMAND…`. This one records its arguments
    // and runs the command without a person at it (so the remote command and BatchMode are
    // added, and first use accepts the host key).
    let terminal = scratch.path().join("fake-terminal");
    std::fs::write(
        &terminal,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$@\" > '{args}'\nshift\n\
             for word do\n  shift\n  case \"$word\" in ProxyCommand=*) word=$(printf '%s' \"$word\" | sed 's#{test}#{real}#g') ;; esac\n  set -- \"$@\" \"$word\"\ndone\n\
             exec \"$@\" -o BatchMode=yes -o StrictHostKeyChecking=accept-new echo connected-in-terminal > '{out}' 2>&1\n",
            args = args_file.display(),
            test = this_test.display(),
            real = env!("CARGO_BIN_EXE_bastionless"),
            out = out.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&terminal, std::fs::Permissions::from_mode(0o755)).unwrap();
    // SAFETY: set before this test starts any thread of its own; the variables are read by the
    // engine's launch code only, which no other test in this file runs.
    unsafe {
        std::env::set_var("TERMINAL", &terminal);
        std::env::set_var("XDG_DATA_HOME", world.data.path());
    }
    let store = Store::open(scratch.path().join("store")).unwrap();
    let engine = world.engine_with_store(&store);
    let web = engine.snapshot().find_hosts("web-eic-1")[0].clone();
    let host = web.key();
    let connect = || {
        let seen = engine.snapshot().notices.last().map_or(0, |n| n.seq);
        engine.send(EngineCommand::Connect {
            host: host.clone(),
            how: ConnectHow::Ssh,
            route: bastionless_core::engine::RouteChoice::Auto,
        });
        let snapshot = engine.wait_until(Duration::from_secs(30), |s| {
            s.notices.iter().any(|n| n.seq > seen)
        });
        let notice = snapshot.notices.last().expect("a notice").clone();
        assert_eq!(notice.level, NoticeLevel::Info, "{}", notice.text);
        assert!(
            notice.text.contains("opened in a terminal"),
            "{}",
            notice.text
        );
        notice.text
    };
    let terminal_said = || {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let said = std::fs::read_to_string(&out).unwrap_or_default();
            if said.ends_with("connected-in-terminal\n") || std::time::Instant::now() > deadline {
                return said;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    };

    // The default: a ProxyCommand, and no tunnel in this engine.
    let notice = connect();
    assert!(notice.contains("through EIC by a ProxyCommand"), "{notice}");
    let said = terminal_said();
    assert!(said.ends_with("\nconnected-in-terminal\n"), "{said}");
    // The window's title, then ssh recording the key under the instance id.
    assert!(
        said.starts_with("\u{1b}]0;ssh web-eic-1 — Bastionless\u{7}"),
        "{said}"
    );
    assert!(
        said.contains(&format!("Permanently added '{}'", host.instance_id)),
        "{said}"
    );
    let args = std::fs::read_to_string(&args_file).unwrap();
    assert!(args.starts_with("-e\nsh\n-c\n"), "{args}");
    let proxy = args
        .lines()
        .find(|w| w.starts_with("ProxyCommand="))
        .unwrap_or_else(|| panic!("no ProxyCommand in {args}"));
    assert!(
        proxy.starts_with("ProxyCommand=env ")
            && proxy.contains("AWS_CONFIG_FILE=")
            && proxy.ends_with(&format!(
                " proxy {} --profile {} --region {} --port 22 --route eic",
                host.instance_id, web.profile, web.region
            )),
        "the proxy names the instance, its profile and region: {proxy}"
    );
    assert!(!args.lines().any(|w| w == "-p"), "no local port: {args}");
    assert!(
        engine.snapshot().tunnels.is_empty(),
        "the tunnel runs in ssh's proxy process, not in the engine"
    );
    // The proxy process recorded its tunnel in the audit log (it may finish just after ssh).
    let audit = world.data.path().join("bastionless/audit.jsonl");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let record = loop {
        let text = std::fs::read_to_string(&audit).unwrap_or_default();
        if let Some(line) = text.lines().next() {
            break serde_json::from_str::<serde_json::Value>(line).unwrap();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the proxy wrote no audit record"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(record["host"], host.instance_id.as_str(), "{record}");
    assert_eq!(record["route"], "eic", "{record}");
    assert_eq!(record["end"], "ended", "{record}");
    assert!(record["bytes_from_remote"].as_u64() > Some(0), "{record}");

    // The setting: a tunnel on 127.0.0.1 in the engine, closed after the login.
    store
        .set_settings(AppSettings {
            ssh_via: Some(SshVia::LoopbackPort),
            ..AppSettings::default()
        })
        .unwrap();
    std::fs::remove_file(&out).unwrap();
    let notice = connect();
    // The listener's address, from the notice (the tunnel may already have closed itself).
    let local: std::net::SocketAddr = notice
        .rsplit(" on ")
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no address in {notice:?}"));
    assert!(local.ip().is_loopback());
    // ssh ran in the terminal through that tunnel (the key pinned in the first login is
    // known now), then the tunnel closed itself.
    let said = terminal_said();
    assert!(
        said.ends_with("Bastionless\u{7}connected-in-terminal\n"),
        "{said}"
    );
    let closed = engine.wait_until(Duration::from_secs(30), |s| {
        s.tunnels.iter().all(|t| t.target.host != host)
    });
    assert!(closed.tunnels.iter().all(|t| t.target.host != host));
    let args = std::fs::read_to_string(&args_file).unwrap();
    assert!(
        args.contains("ssh web-eic-1 — Bastionless\n"),
        "the title: {args}"
    );
    assert!(
        args.contains(&format!("HostKeyAlias={}\n", host.instance_id)),
        "{args}"
    );
    assert!(!args.contains("ProxyCommand="), "{args}");
    assert!(
        args.contains(&format!("\n-p\n{}\n", local.port())),
        "{args}"
    );
}

/// The exported blocks log in as `bastionless ssh` would: a user set in the host's settings
/// (in the store the CLI shares with the window) wins over the guess from the image.
#[test]
fn the_exported_user_follows_the_host_settings() {
    use bastionless_core::eic::guess_os_user;
    use bastionless_core::store::{HostSettings, Store};

    let world = World::start();
    let config_dir = tempfile::tempdir().unwrap();
    let host = world.engine().snapshot().find_hosts("web-eic-1")[0].clone();
    Store::open(config_dir.path())
        .unwrap()
        .set_host_settings(
            &(&host.key()).into(),
            HostSettings {
                user: Some("deploy".to_owned()),
                ..HostSettings::default()
            },
        )
        .unwrap();
    let export = |config: Option<&Path>| {
        let empty = world.data.path().join("no-settings");
        let output = world
            .bastionless_command(&["ssh-config"])
            .env("BASTIONLESS_CONFIG_DIR", config.unwrap_or(&empty))
            .output()
            .expect("bastionless runs");
        assert!(output.status.success(), "stderr:\n{}", text(&output.stderr));
        text(&output.stdout)
    };
    let block = |text: &str| -> String {
        let start = text
            .find(&format!("Host web-eic-1 {}", host.instance_id))
            .expect("web-eic-1 is exported");
        text[start..].split("\n\n").next().unwrap().to_owned()
    };
    let guessed = guess_os_user(&host, None);
    assert_ne!(guessed, "deploy");
    let without_settings = block(&export(None));
    assert!(
        without_settings.contains(&format!("    User {guessed}\n")),
        "the image's user without settings: {without_settings}"
    );
    let with_settings = block(&export(Some(config_dir.path())));
    assert!(
        with_settings.contains("    User deploy\n"),
        "{with_settings}"
    );
}
