//! `bastionless forward` and `bastionless shell` as a user runs them, against the simulator:
//! bytes through a forwarded port (to the instance, over EIC and Session Manager, and to a host
//! the instance reaches), a command run in a Session Manager shell, and the audit log lines
//! both leave behind — with no token, URL or key in them.

use serde_json::Value;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

mod support;

use support::World;

impl World {
    /// The audit log's records.
    fn audit(&self) -> (String, Vec<Value>) {
        let text = std::fs::read_to_string(self.data.path().join("bastionless/audit.jsonl"))
            .unwrap_or_default();
        let records = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("each line is JSON"))
            .collect();
        (text, records)
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Ends `child` as Ctrl-C would, and returns its exit status and stderr.
fn interrupt(mut child: Child) -> (std::process::ExitStatus, String) {
    let killed = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    (status, stderr)
}

/// Starts `bastionless forward ARGS`, returns it and the address it printed.
fn forward(world: &World, args: &[&str]) -> (Child, String) {
    let mut child = world
        .bastionless_command(&[&["forward"], args].concat())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    if line.is_empty() {
        let (_, stderr) = interrupt(child);
        panic!("forward {args:?} printed no address; stderr:\n{stderr}");
    }
    (child, line.trim().to_owned())
}

/// The first line a server on `addr` sends (sshd's banner), after we say hello.
fn banner(addr: &str) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    stream.write_all(b"SSH-2.0-forward_e2e\r\n").unwrap();
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).unwrap();
    line
}

#[test]
fn bastionless_forward_carries_bytes_over_eic_ssm_and_to_a_remote_host_and_is_audited() {
    let world = World::start();
    let app = world
        .simulator
        .scenario()
        .instance_named("app-ssm-1")
        .unwrap();
    let app_ip = app.private_ip.to_string();
    for (host, extra) in [
        ("web-eic-1", vec![]),
        ("app-ssm-1", vec!["--route", "ssm"]),
        // The instance forwards to an address it reaches: its own private IP here.
        ("app-ssm-1", vec!["--remote-host", app_ip.as_str()]),
    ] {
        let args = [&[host, "--remote-port", "22"], extra.as_slice()].concat();
        let (child, addr) = forward(&world, &args);
        assert!(addr.starts_with("127.0.0.1:"), "{addr}");
        let banner = banner(&addr);
        assert!(
            banner.starts_with("SSH-2.0-OpenSSH"),
            "{args:?}: {banner:?}"
        );
        let (status, stderr) = interrupt(child);
        assert!(status.success(), "{args:?}: {status}\n{stderr}");
        assert!(stderr.contains("forwarding 127.0.0.1:"), "{stderr}");
    }

    let (text, records) = world.audit();
    assert_eq!(records.len(), 3, "{text}");
    let routes: Vec<&str> = records
        .iter()
        .map(|r| r["route"].as_str().unwrap())
        .collect();
    assert_eq!(routes, ["eic", "ssm", "ssm"]);
    for record in &records {
        assert_eq!(record["kind"], "tunnel");
        assert_eq!(record["account"], "111122223333");
        assert_eq!(record["remote_port"], 22);
        assert_eq!(record["end"], "the app exited");
        assert!(
            record["bytes_from_remote"].as_u64().unwrap() > 0,
            "{record}"
        );
        assert!(record["bytes_to_remote"].as_u64().unwrap() > 0, "{record}");
        assert!(record["profile"].is_string() && record["time"].is_string());
    }
    assert_eq!(records[0]["host_name"], "web-eic-1");
    assert!(
        records[0]["endpoint"]
            .as_str()
            .unwrap()
            .starts_with("eice-")
    );
    assert_no_secrets(&world, &text);
}

#[test]
fn bastionless_shell_runs_commands_in_a_session_manager_shell_and_is_audited() {
    let world = World::start();
    let mut child = world
        .bastionless_command(&["shell", "app-ssm-1"])
        .env("COLUMNS", "132")
        .env("LINES", "40")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The arithmetic shows the shell ran the line: its echo of the input does not hold "42".
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"echo shell-ok-$((40+2))\nstty size\n")
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "stderr:\n{}", text(&output.stderr));
    assert!(
        text(&output.stdout).contains("shell-ok-42"),
        "stdout:\n{}",
        text(&output.stdout)
    );

    // Without a terminal the size comes from COLUMNS and LINES; the remote pty took it.
    assert!(
        text(&output.stdout).contains(" 40 132\r\n"),
        "stdout:\n{:?}",
        text(&output.stdout)
    );

    let (text, records) = world.audit();
    assert_eq!(records.len(), 1, "{text}");
    let record = &records[0];
    assert_eq!(record["kind"], "shell");
    assert_eq!(record["host_name"], "app-ssm-1");
    assert_eq!(record["route"], "ssm");
    assert!(
        record["session"].as_str().is_some_and(|s| !s.is_empty()),
        "{record}"
    );
    assert!(
        record["bytes_from_remote"].as_u64().unwrap() > 0,
        "{record}"
    );
    assert_no_secrets(&world, &text);
}

#[test]
fn a_shell_on_a_host_without_session_manager_fails_with_the_reason_and_exit_code_1() {
    let world = World::start();
    let output = world
        .bastionless_command(&["shell", "web-eic-1"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stderr));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("the shell on web-eic-1 failed"), "{stderr}");
}

/// No credential from the simulator's files, nor anything URL- or token-like.
fn assert_no_secrets(world: &World, text: &str) {
    let credentials = std::fs::read_to_string(world.simulator.credentials_file()).unwrap();
    for line in credentials.lines() {
        if let Some((key, value)) = line.split_once('=')
            && (key.trim().contains("secret") || key.trim().contains("session_token"))
        {
            assert!(!text.contains(value.trim()), "a secret is in the audit log");
        }
    }
    for needle in ["://", "X-Amz", "Token", "token", "BEGIN OPENSSH"] {
        assert!(!text.contains(needle), "{needle} in the audit log:\n{text}");
    }
}

#[test]
fn connect_forward_from_the_engine_listens_on_loopback_until_closed() {
    use bastionless_core::engine::NoticeLevel;
    use bastionless_core::engine::{Command as EngineCommand, ConnectHow, Engine, EngineConfig};
    use bastionless_core::profiles::AwsFiles;
    let world = World::start();
    let files = AwsFiles::at(
        world.simulator.config_file(),
        world.simulator.credentials_file(),
    );
    let engine = Engine::start(EngineConfig::new(files)).expect("engine starts");
    let snapshot = engine.wait_until(Duration::from_secs(30), |s| !s.refreshing);
    let host = snapshot.find_hosts("db-both-1")[0].key();
    engine.send(EngineCommand::Connect {
        host: host.clone(),
        how: ConnectHow::Forward {
            remote_port: 22,
            local_port: None,
        },
        route: bastionless_core::engine::RouteChoice::Auto,
    });
    // The notice and the tunnel manager's report of the bound listener are published apart.
    let snapshot = engine.wait_until(Duration::from_secs(30), |s| {
        !s.notices.is_empty() && s.tunnels.iter().any(|t| t.local_addr().is_some())
    });
    let notice = snapshot.notices.last().expect("a notice");
    assert_eq!(notice.level, NoticeLevel::Info, "{}", notice.text);
    let tunnel = snapshot
        .tunnels
        .iter()
        .find(|t| t.target.host == host)
        .expect("the tunnel is listed");
    let addr = tunnel.local_addr().expect("listening").to_string();
    assert!(notice.text.contains(&addr), "{}", notice.text);
    // Two connections, one after the other: the tunnel stays until the user closes it.
    for _ in 0..2 {
        assert!(banner(&addr).starts_with("SSH-2.0-OpenSSH"));
    }
    engine.send(EngineCommand::CloseTunnel(tunnel.id));
    let id = tunnel.id;
    engine.wait_until(Duration::from_secs(10), |s| {
        s.tunnels.iter().all(|t| t.id != id)
    });
    assert!(TcpStream::connect(&addr).is_err(), "the listener is gone");
}
