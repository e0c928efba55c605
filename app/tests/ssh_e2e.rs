//! The real OpenSSH client, through EC2 Instance Connect Endpoint tunnels and Session Manager
//! sessions, into the simulator's real `sshd`: the listener that `bastionless ssh` opens, and
//! the stdio tunnel that `bastionless proxy` gives `ssh -o ProxyCommand` and `scp`.

use sha2::{Digest, Sha256};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

mod support;

use support::World;

impl World {
    fn login_user(&self) -> String {
        self.simulator
            .login_user()
            .expect("the simulator serves sshd as the local user")
            .to_owned()
    }

    /// Options for the system ssh/scp: the ephemeral key, ProxyCommand through `bastionless
    /// proxy --route ROUTE`, and no interaction.
    fn proxied_options(&self, key: &Path, host: &str, route: &str) -> Vec<String> {
        let proxy = format!(
            "{} proxy {host} --route {route}",
            env!("CARGO_BIN_EXE_bastionless")
        );
        [
            "-i",
            key.to_str().expect("a UTF-8 path"),
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "LogLevel=ERROR",
            "-o",
        ]
        .into_iter()
        .map(str::to_owned)
        .chain([format!("ProxyCommand={proxy}")])
        .collect()
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn bastionless_ssh_logs_in_through_eic_by_proxy_command_or_listener_with_a_fresh_key() {
    let world = World::start();
    // The best route of an EIC-only host is its endpoint. ProxyCommand by default, and a
    // listener in this process with --listen.
    for mode in [None, Some("--listen")] {
        let mut args = vec!["ssh", "web-eic-1", "--route", "auto"];
        args.extend(mode);
        args.extend(["--", "-o", "BatchMode=yes", "echo", "ok"]);
        let output = world.bastionless(&args);
        assert!(
            output.status.success(),
            "{mode:?} stderr:\n{}",
            text(&output.stderr)
        );
        assert_eq!(text(&output.stdout), "ok\n", "{mode:?}");
    }
    // Each login's tunnel is in the audit log: the proxy's ended with the session (ssh's
    // SIGHUP to its ProxyCommand does not cut it short; it may finish just after ssh exits),
    // the listener's with the process.
    let audit = world.data.path().join("bastionless/audit.jsonl");
    let ends = || -> Vec<String> {
        let text = std::fs::read_to_string(&audit).unwrap_or_default();
        text.lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["end"].to_string())
            .collect()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while ends().len() < 2 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut ends = ends();
    ends.sort();
    assert_eq!(ends, ["\"ended\"", "\"the app exited\""]);

    // The host key was pinned under the instance id in Bastionless's own known_hosts (which
    // ssh may hash, so ask ssh-keygen).
    let known = world.data.path().join("bastionless/known_hosts");
    let web = world
        .simulator
        .scenario()
        .instance_named("web-eic-1")
        .expect("web-eic-1 exists");
    let found = Command::new("ssh-keygen")
        .arg("-F")
        .arg(&web.instance_id)
        .arg("-f")
        .arg(&known)
        .output()
        .unwrap();
    assert!(
        found.status.success(),
        "{} is not in {}",
        web.instance_id,
        known.display()
    );
}

#[test]
fn ssh_and_scp_work_through_bastionless_proxy_and_bytes_arrive_intact() {
    let world = World::start();
    let engine = world.engine();
    let host = engine.snapshot().find_hosts("web-eic-1")[0].key();
    let key = engine
        .push_ssh_key_blocking(&host, &world.login_user())
        .expect("key pushed");
    let options = world.proxied_options(key.private_key_path(), "web-eic-1", "eic");
    let destination = format!("{}@web-eic-1", world.login_user());

    let output = world
        .command("ssh")
        .args(&options)
        .args([&destination, "echo", "ok"])
        .output()
        .unwrap();
    assert!(output.status.success(), "stderr:\n{}", text(&output.stderr));
    assert_eq!(text(&output.stdout), "ok\n");

    // 10 MiB there and back with scp (the sshd runs on this machine, so "remote" paths are local).
    let scratch = tempfile::tempdir().unwrap();
    let original: Vec<u8> = (0..10 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let local = scratch.path().join("blob");
    std::fs::write(&local, &original).unwrap();
    let remote = scratch.path().join("remote-copy");
    let back = scratch.path().join("back");
    for (from, to) in [
        (
            local.display().to_string(),
            format!("{destination}:{}", remote.display()),
        ),
        (
            format!("{destination}:{}", remote.display()),
            back.display().to_string(),
        ),
    ] {
        let output = world
            .command("scp")
            .arg("-q")
            .args(&options)
            .args([&from, &to])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "scp {from} {to}:\n{}",
            text(&output.stderr)
        );
    }
    let digest = |p: &Path| Sha256::digest(std::fs::read(p).unwrap());
    assert_eq!(digest(&remote), Sha256::digest(&original));
    assert_eq!(digest(&back), Sha256::digest(&original));
}

#[test]
fn bastionless_ssh_logs_in_through_session_manager_chosen_or_by_default() {
    let world = World::start();
    // app-ssm-1 has no endpoint in its VPC: the best route is Session Manager, and the key is
    // still pushed with EC2 Instance Connect.
    for route in ["ssm", "auto"] {
        let output = world.bastionless(&[
            "ssh",
            "app-ssm-1",
            "--route",
            route,
            "--",
            "-o",
            "BatchMode=yes",
            "echo",
            "ok",
        ]);
        assert!(
            output.status.success(),
            "--route {route}, stderr:\n{}",
            text(&output.stderr)
        );
        assert_eq!(text(&output.stdout), "ok\n", "--route {route}");
    }
}

#[test]
fn ssh_works_through_bastionless_proxy_over_session_manager() {
    let world = World::start();
    let engine = world.engine();
    let host = engine.snapshot().find_hosts("app-ssm-1")[0].key();
    let key = engine
        .push_ssh_key_blocking(&host, &world.login_user())
        .expect("key pushed");
    let output = world
        .command("ssh")
        .args(world.proxied_options(key.private_key_path(), "app-ssm-1", "ssm"))
        .args([&format!("{}@app-ssm-1", world.login_user()), "echo", "ok"])
        .output()
        .unwrap();
    assert!(output.status.success(), "stderr:\n{}", text(&output.stderr));
    assert_eq!(text(&output.stdout), "ok\n");
}

/// Runs `bastionless ssh HOST --route eic -- echo ok`, which must fail, and returns what it said
/// on stderr.
fn failed_login(world: &World, host: &str) -> String {
    let output = world.bastionless(&[
        "ssh",
        host,
        "--route",
        "eic",
        "--",
        "-o",
        "BatchMode=yes",
        "echo",
        "ok",
    ]);
    assert!(!output.status.success(), "ssh to {host} succeeded");
    text(&output.stderr)
}

#[test]
fn a_host_its_endpoint_cannot_reach_fails_with_the_reason_and_what_to_check() {
    let stderr = failed_login(&World::start(), "cache-eu-1");
    assert!(stderr.contains("Unable to connect to target"), "{stderr}");
    assert!(stderr.contains("security group"), "{stderr}");
}

#[test]
fn a_host_without_an_endpoint_in_its_vpc_is_refused_before_ssh_starts() {
    let stderr = failed_login(&World::start(), "app-ssm-1");
    assert!(
        stderr.contains("no EC2 Instance Connect Endpoint in vpc-"),
        "{stderr}"
    );
}

#[test]
fn a_private_ip_two_vpcs_share_lists_both_hosts_until_narrowed_by_profile() {
    let world = World::start();
    // web-eic-1 (prod) and web-clone-1 (sandbox) both have 10.10.1.21.
    let output = world.bastionless(&["doctor", "10.10.1.21"]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("`10.10.1.21` matches 2 hosts"), "{stderr}");
    for expected in [
        "web-eic-1  profile prod  region us-east-1",
        "web-clone-1  profile sandbox  region us-east-1",
    ] {
        assert!(stderr.contains(expected), "{expected} missing:\n{stderr}");
    }
    let output = world.bastionless(&["doctor", "10.10.1.21", "--profile", "sandbox"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(
        text(&output.stdout).starts_with("web-clone-1 ("),
        "{}",
        text(&output.stdout)
    );
}

#[test]
fn bastionless_connect_logs_in_to_a_linux_host_with_ssh() {
    let world = World::start();
    // No terminal and no command: the remote login shell reads end-of-input and exits, which
    // is a successful login (and first use accepts the key: nobody could answer a prompt).
    let output = world
        .command(env!("CARGO_BIN_EXE_bastionless"))
        .args(["connect", "app-ssm-1"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(output.status.success(), "stderr:\n{}", text(&output.stderr));
    let known = world.data.path().join("bastionless/known_hosts");
    let app = world
        .simulator
        .scenario()
        .instance_named("app-ssm-1")
        .unwrap();
    let found = Command::new("ssh-keygen")
        .arg("-F")
        .arg(&app.instance_id)
        .arg("-f")
        .arg(&known)
        .output()
        .unwrap();
    assert!(found.status.success(), "the host key was not pinned");
}

/// The ProxyCommand `bastionless ssh` and the app write names the instance id with its profile
/// and region; that proxy scans that one account's region (one STS call, one
/// DescribeInstances), not every profile's, and still logs in.
#[test]
fn a_proxy_named_by_instance_id_profile_and_region_scans_that_profile_alone() {
    let world = World::start();
    let engine = world.engine();
    let web = engine.snapshot().find_hosts("web-eic-1")[0].clone();
    let key = engine
        .push_ssh_key_blocking(&web.key(), &world.login_user())
        .expect("key pushed");
    let calls = || {
        (
            world.simulator.calls("GetCallerIdentity"),
            world.simulator.calls("DescribeInstances"),
        )
    };
    let mut options = world.proxied_options(key.private_key_path(), &web.instance_id, "eic");
    let proxy = options.pop().unwrap();
    options.push(format!(
        "{proxy} --profile {} --region {}",
        web.profile, web.region
    ));
    let before = calls();
    let output = world
        .command("ssh")
        .args(&options)
        .args([
            &format!("{}@{}", world.login_user(), web.instance_id),
            "echo",
            "ok",
        ])
        .output()
        .unwrap();
    assert!(output.status.success(), "stderr:\n{}", text(&output.stderr));
    assert_eq!(text(&output.stdout), "ok\n");
    let after = calls();
    assert_eq!(
        (after.0 - before.0, after.1 - before.1),
        (1, 1),
        "one profile identified, one region listed"
    );

    // A profile that does not exist is named as such, not as a missing host.
    let output = world.bastionless(&["doctor", &web.instance_id, "--profile", "no-such-profile"]);
    assert!(!output.status.success());
    assert!(
        text(&output.stderr).contains("there is no AWS profile named `no-such-profile`"),
        "{}",
        text(&output.stderr)
    );
}

#[test]
fn a_demo_login_keeps_its_proxy_out_of_the_user_s_audit_log() {
    // `--demo` with nothing else: the demo's own simulator, this test's home and data
    // directories. ssh's ProxyCommand is another `bastionless`, which must know that the AWS
    // files it is given are the demo's.
    let home = tempfile::tempdir().unwrap();
    let data = home.path().join("data");
    let output = Command::new(env!("CARGO_BIN_EXE_bastionless"))
        .args(["--demo", "ssh", "web-eic-1", "--"])
        .args(["-o", "BatchMode=yes", "echo", "ok"])
        .env("HOME", home.path())
        .env("XDG_DATA_HOME", &data)
        .env("XDG_CACHE_HOME", home.path().join("cache"))
        .env("XDG_CONFIG_HOME", home.path().join("config"))
        .env_remove("AWS_CONFIG_FILE")
        .env_remove("AWS_SHARED_CREDENTIALS_FILE")
        .output()
        .expect("bastionless runs");
    assert!(
        output.status.success(),
        "stdout: {}\nstderr: {}",
        text(&output.stdout),
        text(&output.stderr)
    );
    assert_eq!(text(&output.stdout).trim(), "ok");
    let audit = data
        .join("bastionless")
        .join(bastionless_core::audit::AUDIT_FILE_NAME);
    assert!(
        !audit.exists(),
        "the demo's session was recorded in the user's audit log: {}",
        std::fs::read_to_string(&audit).unwrap_or_default()
    );
}
