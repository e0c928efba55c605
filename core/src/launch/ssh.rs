//! The system OpenSSH `ssh` command line for a host reached through a tunnel.
//!
//! Two ways to reach the tunnel ([`SshTransport`]): a `ProxyCommand` that runs `bastionless
//! proxy HOST` (the default for the CLI and the app: no local port is opened at all, and every
//! ssh, scp or rsync gets its own tunnel), or a port on 127.0.0.1 where the engine's tunnel
//! listens (the `ssh_via` setting or `--listen`: the app's tunnels panel then shows it).
//!
//! Host keys are pinned per instance (`HostKeyAlias=<instance id>`) in Bastionless's own
//! known_hosts file: tunnels make every host look like 127.0.0.1, and private IPs repeat across
//! VPCs, so keying trust on the address would mix hosts up.
//!
//! First use of a host key follows the user's `StrictHostKeyChecking`, read with `ssh -G` (so
//! `~/.ssh/config`, `/etc/ssh/ssh_config` and `-o` options all count): `yes`, `no` and
//! `accept-new` are left to ssh as they are. OpenSSH's default, `ask`, is kept where a person
//! can answer (a terminal, with the instance id in the prompt); where nobody can (BatchMode, or
//! no terminal on stdin) `ask` could only fail, so Bastionless passes `accept-new` — the key is
//! recorded in its own file, pinned to the instance id the user named, and a *changed* key is
//! still refused.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::terminal::{Os, shell_quote};

/// How ssh reaches the host's tunnel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SshTransport {
    /// The engine's tunnel listens on this port of 127.0.0.1.
    LoopbackPort(u16),
    /// ssh runs this command line (already rendered for the OS) and speaks over its
    /// stdin/stdout.
    ProxyCommand(String),
}

/// How to run `ssh` against one tunnelled host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshCommand {
    /// The `ssh` program (`ssh` on PATH unless configured).
    pub program: PathBuf,
    pub os_user: String,
    /// Pins the host key to the instance, not to the tunnel's address.
    pub instance_id: String,
    pub known_hosts: PathBuf,
    /// The key to offer, when one is given (an ephemeral EC2 Instance Connect key, or the
    /// user's key for the instance's key pair); ssh's own identities otherwise.
    pub identity: Option<PathBuf>,
    pub transport: SshTransport,
    /// `StrictHostKeyChecking` to pass; `None` leaves the user's setting alone (see the module
    /// docs and [`first_use_override`]).
    pub strict_host_key_checking: Option<&'static str>,
    /// The user's own options and remote command, appended after the destination.
    pub extra_args: Vec<OsString>,
}

impl SshCommand {
    /// The destination argument: the tunnel's loopback address, or the instance id (which the
    /// ProxyCommand ignores and the prompt shows).
    pub fn destination(&self) -> String {
        match &self.transport {
            SshTransport::LoopbackPort(_) => format!("{}@127.0.0.1", self.os_user),
            SshTransport::ProxyCommand(_) => format!("{}@{}", self.os_user, self.instance_id),
        }
    }

    /// The options Bastionless sets, before the destination. OpenSSH takes the first value it
    /// sees for an option, so these win over the user's config files.
    pub fn options(&self) -> Vec<OsString> {
        let mut args: Vec<OsString> = Vec::new();
        let mut option = |o: String| {
            args.push("-o".into());
            args.push(o.into());
        };
        option(format!("HostKeyAlias={}", self.instance_id));
        option(format!("UserKnownHostsFile={}", self.known_hosts.display()));
        if let Some(value) = self.strict_host_key_checking {
            option(format!("StrictHostKeyChecking={value}"));
        }
        if let SshTransport::ProxyCommand(command) = &self.transport {
            option(format!("ProxyCommand={command}"));
        }
        if let Some(identity) = &self.identity {
            option("IdentitiesOnly=yes".to_owned());
            args.push("-i".into());
            args.push(identity.clone().into());
        }
        if let SshTransport::LoopbackPort(port) = self.transport {
            args.push("-p".into());
            args.push(port.to_string().into());
        }
        args
    }

    /// The arguments after the program name.
    pub fn args(&self) -> Vec<OsString> {
        let mut args = self.options();
        args.push(self.destination().into());
        // OpenSSH parses options after the destination too, up to the remote command.
        args.extend(self.extra_args.iter().cloned());
        args
    }

    /// The program and its arguments, as one list (for a terminal to run).
    pub fn argv(&self) -> Vec<OsString> {
        std::iter::once(self.program.clone().into_os_string())
            .chain(self.args())
            .collect()
    }

    pub fn to_command(&self) -> std::process::Command {
        let mut command = std::process::Command::new(&self.program);
        command.args(self.args());
        command
    }

    /// `ssh -G` with the same options, destination and user arguments: the configuration ssh
    /// would use, without connecting.
    pub fn effective_config_command(&self) -> std::process::Command {
        let mut command = std::process::Command::new(&self.program);
        command
            .arg("-G")
            .args(self.options())
            .arg(self.destination())
            .args(&self.extra_args)
            .stdin(std::process::Stdio::null());
        command
    }

    /// Asks `ssh -G` for the user's `StrictHostKeyChecking` and `BatchMode` and sets
    /// [`strict_host_key_checking`](Self::strict_host_key_checking) by
    /// [`first_use_override`]. When ssh cannot say (an old ssh, a broken config), the setting
    /// is left to ssh itself.
    pub fn follow_first_use_default(&mut self, interactive: bool) {
        self.strict_host_key_checking = None;
        let output = self.effective_config_command().output();
        if let Some(output) = output.ok().filter(|o| o.status.success()) {
            let config = String::from_utf8_lossy(&output.stdout);
            self.strict_host_key_checking = first_use_override(&config, interactive);
        }
    }
}

/// The `StrictHostKeyChecking` Bastionless passes, given `ssh -G`'s output: `accept-new` only
/// when the user's setting is OpenSSH's default `ask` and nobody can answer the question
/// (BatchMode, or not `interactive`); otherwise none, so ssh applies the user's own setting.
pub fn first_use_override(ssh_g_output: &str, interactive: bool) -> Option<&'static str> {
    let value = |key: &str| {
        ssh_g_output.lines().find_map(|line| {
            let (k, v) = line.trim().split_once(' ')?;
            k.eq_ignore_ascii_case(key)
                .then(|| v.trim().to_ascii_lowercase())
        })
    };
    let batch = value("batchmode").is_some_and(|v| v == "yes" || v == "true");
    let ask = value("stricthostkeychecking").is_some_and(|v| v == "ask");
    (ask && (batch || !interactive)).then_some("accept-new")
}

/// The ProxyCommand that runs `exe` with `args` (e.g. `proxy i-0123 --region eu-west-1`),
/// quoted for the shell ssh runs it with on `os` (`sh -c` on Unix and macOS; none on Windows,
/// where ssh splits it like a C program's command line). `%` is doubled, since ssh expands
/// `%`-tokens in ProxyCommand; append `%h` yourself when wanted.
pub fn proxy_command(os: Os, exe: &Path, args: &[&str]) -> String {
    let words = std::iter::once(exe.to_string_lossy().into_owned())
        .chain(args.iter().map(|a| (*a).to_owned()));
    let quoted: Vec<String> = match os {
        Os::Unix | Os::MacOs => words.map(|w| shell_quote(&w)).collect(),
        Os::Windows => words
            .map(|w| {
                if w.is_empty() || w.contains([' ', '\t', '"']) {
                    format!("\"{}\"", w.replace('"', "\\\""))
                } else {
                    w
                }
            })
            .collect(),
    };
    quoted.join(" ").replace('%', "%%")
}

/// The ProxyCommand that runs `bastionless proxy` (the program `exe`) for exactly this host:
/// its instance id, profile and region, the SSH port and the route already chosen. With
/// `files` (Unix and macOS), the proxy is pointed at those AWS files through `env`, since
/// some terminals start commands from a server process that does not inherit the launcher's
/// environment.
pub fn bastionless_proxy_command(
    os: Os,
    exe: &Path,
    files: Option<&crate::profiles::AwsFiles>,
    host: &crate::inventory::Host,
    port: u16,
    route: crate::engine::RouteChoice,
) -> String {
    let port = port.to_string();
    let route = match route {
        crate::engine::RouteChoice::Eic => "eic",
        crate::engine::RouteChoice::Ssm => "ssm",
        crate::engine::RouteChoice::Auto => "auto",
    };
    let exe_text = exe.to_string_lossy();
    let mut proxy = vec![exe_text.as_ref()];
    if files.is_some_and(|f| f.demo) {
        proxy.push(crate::profiles::DEMO_FILES_FLAG);
    }
    proxy.extend([
        "proxy",
        &host.instance_id,
        "--profile",
        &host.profile,
        "--region",
        &host.region,
        "--port",
        &port,
        "--route",
        route,
    ]);
    match files.filter(|_| os != Os::Windows) {
        Some(files) => {
            let config = format!("AWS_CONFIG_FILE={}", files.config.display());
            let credentials = format!(
                "AWS_SHARED_CREDENTIALS_FILE={}",
                files.credentials.display()
            );
            let mut args = vec![config.as_str(), credentials.as_str()];
            args.extend(&proxy);
            proxy_command(os, Path::new("env"), &args)
        }
        None => proxy_command(os, exe, &proxy[1..]),
    }
}

/// Bastionless's own data directory (`$XDG_DATA_HOME/bastionless` on Linux), created on
/// first use: known_hosts, the ssh-config include file and the audit log live here.
pub fn data_dir() -> std::io::Result<PathBuf> {
    let dirs = directories::ProjectDirs::from("", "", "bastionless").ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "no home directory to keep Bastionless's data in",
        )
    })?;
    std::fs::create_dir_all(dirs.data_dir())?;
    Ok(dirs.data_dir().to_owned())
}

/// Bastionless's own known_hosts file, in its data directory, created on first use so ssh can
/// add to it.
pub fn known_hosts_file() -> std::io::Result<PathBuf> {
    Ok(data_dir()?.join("known_hosts"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn command(identity: Option<&str>, transport: SshTransport) -> SshCommand {
        SshCommand {
            program: "ssh".into(),
            os_user: "ec2-user".into(),
            instance_id: "i-0123456789abcdef0".into(),
            known_hosts: "/home/u/.local/share/bastionless/known_hosts".into(),
            identity: identity.map(PathBuf::from),
            transport,
            strict_host_key_checking: Some("accept-new"),
            extra_args: vec![
                "-o".into(),
                "BatchMode=yes".into(),
                "echo".into(),
                "ok".into(),
            ],
        }
    }

    fn strings(args: Vec<OsString>) -> Vec<String> {
        args.into_iter().map(|a| a.into_string().unwrap()).collect()
    }

    #[test]
    fn listener_mode_pins_the_host_key_to_the_instance_and_offers_the_key_alone() {
        let args =
            strings(command(Some("/tmp/k/id_ed25519"), SshTransport::LoopbackPort(40022)).args());
        assert_eq!(
            args,
            [
                "-o",
                "HostKeyAlias=i-0123456789abcdef0",
                "-o",
                "UserKnownHostsFile=/home/u/.local/share/bastionless/known_hosts",
                "-o",
                "StrictHostKeyChecking=accept-new",
                "-o",
                "IdentitiesOnly=yes",
                "-i",
                "/tmp/k/id_ed25519",
                "-p",
                "40022",
                "ec2-user@127.0.0.1",
                "-o",
                "BatchMode=yes",
                "echo",
                "ok",
            ]
        );
    }

    #[test]
    fn proxy_mode_opens_no_port_and_names_the_instance() {
        let proxy = proxy_command(
            Os::Unix,
            Path::new("/opt/my tools/bastionless"),
            &["proxy", "i-0123456789abcdef0", "--region", "eu-west-1"],
        );
        assert_eq!(
            proxy,
            "'/opt/my tools/bastionless' proxy i-0123456789abcdef0 --region eu-west-1"
        );
        let mut ssh = command(None, SshTransport::ProxyCommand(proxy.clone()));
        ssh.strict_host_key_checking = None;
        let args = strings(ssh.args());
        assert_eq!(
            args[..6],
            [
                "-o",
                "HostKeyAlias=i-0123456789abcdef0",
                "-o",
                "UserKnownHostsFile=/home/u/.local/share/bastionless/known_hosts",
                "-o",
                &format!("ProxyCommand={proxy}"),
            ]
        );
        assert_eq!(args[6], "ec2-user@i-0123456789abcdef0");
        assert!(
            !args
                .iter()
                .any(|a| a == "-p" || a.starts_with("StrictHostKeyChecking"))
        );
    }

    #[test]
    fn without_a_key_ssh_uses_its_own_identities() {
        let args = command(None, SshTransport::LoopbackPort(1)).args();
        assert!(!args.iter().any(|a| a == "-i" || a == "IdentitiesOnly=yes"));
    }

    #[test]
    fn proxy_commands_are_quoted_for_each_os_and_percent_is_escaped() {
        let exe = Path::new("C:\\Program Files\\Bastionless\\bastionless.exe");
        assert_eq!(
            proxy_command(Os::Windows, exe, &["proxy", "web 1"]),
            "\"C:\\Program Files\\Bastionless\\bastionless.exe\" proxy \"web 1\""
        );
        assert_eq!(
            proxy_command(
                Os::MacOs,
                Path::new("/Applications/B.app/bastionless"),
                &["proxy", "it's"]
            ),
            "/Applications/B.app/bastionless proxy \"it's\""
        );
        assert_eq!(
            proxy_command(Os::Unix, Path::new("/x/100%/b"), &["proxy"]),
            "'/x/100%%/b' proxy"
        );
    }

    #[test]
    fn first_use_follows_the_user_s_setting_and_accepts_new_keys_only_when_nobody_can_answer() {
        let g = |strict: &str, batch: &str| {
            format!("user u\nbatchmode {batch}\nstricthostkeychecking {strict}\nport 22\n")
        };
        // OpenSSH's default, in a terminal: ssh asks (the prompt names the instance id).
        assert_eq!(first_use_override(&g("ask", "no"), true), None);
        // Nobody to ask.
        assert_eq!(
            first_use_override(&g("ask", "yes"), true),
            Some("accept-new")
        );
        assert_eq!(
            first_use_override(&g("ask", "no"), false),
            Some("accept-new")
        );
        // The user's explicit choices stand, whoever runs ssh.
        for strict in ["true", "false", "accept-new"] {
            assert_eq!(
                first_use_override(&g(strict, "yes"), false),
                None,
                "{strict}"
            );
        }
        assert_eq!(first_use_override("garbage", false), None);
    }

    #[test]
    fn the_effective_config_is_read_from_the_real_ssh_with_the_user_s_options() {
        let mut ssh = command(None, SshTransport::LoopbackPort(40022));
        ssh.extra_args = vec!["-o".into(), "StrictHostKeyChecking=yes".into()];
        ssh.follow_first_use_default(false);
        assert_eq!(
            ssh.strict_host_key_checking, None,
            "the user's -o yes stands"
        );
        ssh.extra_args = vec!["-o".into(), "BatchMode=yes".into(), "echo".into()];
        ssh.follow_first_use_default(true);
        // The test machine's ssh_config leaves StrictHostKeyChecking at its default.
        assert_eq!(ssh.strict_host_key_checking, Some("accept-new"));
    }

    fn proxied_host() -> crate::inventory::Host {
        crate::inventory::Host {
            instance_id: "i-0aaa".into(),
            name: None,
            tags: Default::default(),
            state: crate::inventory::InstanceState::Running,
            platform: crate::inventory::Platform::Linux,
            private_ip: None,
            public_ip: None,
            vpc_id: None,
            subnet_id: None,
            availability_zone: None,
            key_name: None,
            image: None,
            security_group_ids: Vec::new(),
            profile: "my prod".into(),
            account_id: "111122223333".into(),
            region: "eu-west-1".into(),
            stale: false,
        }
    }

    #[test]
    fn the_proxy_command_names_the_host_port_and_route_and_points_at_the_aws_files() {
        use crate::engine::RouteChoice;
        let host = proxied_host();
        let exe = Path::new("/opt/b less/bastionless");
        let files = crate::profiles::AwsFiles::at("/d/config", "/d/credentials");
        // As `sh -c` will split it.
        let words = |command: String| shlex::split(&command).unwrap();
        let proxy = |port: &str, route: &str| {
            let mut w = vec!["/opt/b less/bastionless", "proxy", "i-0aaa", "--profile"];
            w.extend([
                "my prod",
                "--region",
                "eu-west-1",
                "--port",
                port,
                "--route",
                route,
            ]);
            w.into_iter().map(String::from).collect::<Vec<_>>()
        };
        assert_eq!(
            words(bastionless_proxy_command(
                Os::Unix,
                exe,
                None,
                &host,
                2222,
                RouteChoice::Ssm
            )),
            proxy("2222", "ssm")
        );
        let with_files = words(bastionless_proxy_command(
            Os::MacOs,
            exe,
            Some(&files),
            &host,
            22,
            RouteChoice::Eic,
        ));
        assert_eq!(
            with_files[..3],
            [
                "env",
                "AWS_CONFIG_FILE=/d/config",
                "AWS_SHARED_CREDENTIALS_FILE=/d/credentials"
            ]
        );
        assert_eq!(with_files[3..], proxy("22", "eic"));
        // Windows: no `env`, and Windows quoting.
        assert_eq!(
            bastionless_proxy_command(
                Os::Windows,
                Path::new("C:\\Program Files\\bastionless.exe"),
                Some(&files),
                &host,
                22,
                RouteChoice::Auto
            ),
            "\"C:\\Program Files\\bastionless.exe\" proxy i-0aaa --profile \"my prod\" \
             --region eu-west-1 --port 22 --route auto"
        );
        // The demo's files: the proxy is told so, on every OS.
        let demo = crate::profiles::AwsFiles {
            demo: true,
            ..files.clone()
        };
        for os in [Os::Unix, Os::Windows] {
            let words = words(bastionless_proxy_command(
                os,
                exe,
                Some(&demo),
                &host,
                22,
                RouteChoice::Auto,
            ));
            let at = words.iter().position(|w| w == "proxy").unwrap();
            assert_eq!(words[at - 1], "--demo-files", "{os:?}: {words:?}");
        }
    }
}
