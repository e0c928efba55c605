//! [`Command::Connect`](super::Command::Connect): what a double-click (or the tray) does —
//! open the tunnel, prepare credentials, launch the system client — with every outcome said in
//! the snapshot, as the tunnel in its list and as a [`Notice`](super::Notice).
//!
//! - **SSH**: a fresh key pushed with EC2 Instance Connect for the login (if that fails, ssh
//!   offers the user's own keys), and the system `ssh` in the user's terminal with the host key
//!   pinned to the instance id. By default ssh reaches the host through `-o ProxyCommand=
//!   "bastionless proxy <instance id> --profile … --region …"`, so no local port is opened at
//!   all; the tunnel then lives in ssh's proxy process, which records it in the audit log (the
//!   tunnels panel lists this process's tunnels only, so it does not show there). With the
//!   `ssh_via` setting at a loopback port, the tunnel listens on 127.0.0.1 in this engine (and
//!   shows in the tunnels panel), and closes itself once the login's connections have ended
//!   (or when nothing connects within [`FIRST_CONNECTION_WAIT`]). The key file is deleted after
//!   [`KEY_KEPT`] — the instance accepts a pushed key for 60 seconds only.
//! - **Shell**: `bastionless shell` in the user's terminal, pointed at the same AWS files.
//! - **Forward**: a tunnel listening on 127.0.0.1, kept until the user closes it.
//! - **RDP**: the Windows password decrypted and the system RDP client launched on a tunnel
//!   to port 3389 (`connect_rdp`).
//!
//! What is launched follows the settings, read from the engine's store at connect time (so a
//! change saved a moment ago applies): the user, SSH port, key, route, terminal and RDP
//! templates and ssh's way to the tunnel, resolved by [`LaunchPlan`] exactly as the CLI does.
//! The command's own route (`Eic`/`Ssm`) wins over the host's preferred one. When a connection
//! that did not go through Session Manager fails and Session Manager is not ruled out, the
//! notice offers [`NoticeAction::UseSessionManager`].

use std::ffi::OsString;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use super::snapshot::{NoticeAction, NoticeLevel};
use super::{RouteChoice, Shared, connect};
use crate::eic::EphemeralKey;
use crate::inventory::{Host, HostKey, Platform};
use crate::launch::settings::{LaunchAsk, LaunchPlan, LaunchSettings, SshIdentity};
use crate::launch::terminal::{
    CommandLine, Os, TerminalEnv, choose_terminal, terminal_command, window_title,
};
use crate::launch::{SshCommand, SshTransport, bastionless_proxy_command, known_hosts_file};
use crate::route::Method;
use crate::store::SshVia;
use crate::tunnel::TunnelId;

/// How long a pushed key's file is kept for ssh to read (the instance forgets the key after 60 s).
pub const KEY_KEPT: Duration = Duration::from_secs(90);
/// How long an SSH tunnel waits for the terminal's ssh to connect before it closes itself.
pub const FIRST_CONNECTION_WAIT: Duration = Duration::from_secs(300);
/// A terminal program that fails this soon after starting failed to open the window.
const TERMINAL_STARTUP: Duration = Duration::from_secs(5);

/// How the user wants to use a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectHow {
    /// The system ssh in the user's terminal.
    Ssh,
    /// The system RDP client.
    Rdp,
    /// A Session Manager shell in the user's terminal.
    Shell,
    /// A tunnel from 127.0.0.1:`local_port` (any free port when `None`) to `remote_port`.
    Forward {
        remote_port: u16,
        local_port: Option<u16>,
    },
}

impl ConnectHow {
    /// What a double-click means: RDP for Windows, SSH for everything else.
    pub fn default_for(host: &Host) -> Self {
        match host.platform {
            Platform::Windows => ConnectHow::Rdp,
            Platform::Linux => ConnectHow::Ssh,
        }
    }
}

/// A failure, with what the user can do about it.
struct Failure {
    text: String,
    action: Option<NoticeAction>,
}

impl From<String> for Failure {
    fn from(text: String) -> Self {
        Failure { text, action: None }
    }
}

/// Carries out one Connect command; the outcome goes to the snapshot.
pub(super) async fn run(shared: Arc<Shared>, key: HostKey, how: ConnectHow, route: RouteChoice) {
    let snapshot = shared.publisher.current();
    let name = snapshot
        .host(&key)
        .map_or_else(|| key.instance_id.clone(), |h| h.display_name().to_owned());
    let settings = {
        let shared = shared.clone();
        let key = key.clone();
        // Rereading the store checks its files on disk: off the async threads.
        tokio::task::spawn_blocking(move || launch_settings(&shared, &key))
            .await
            .unwrap_or_default()
    };
    let ask = LaunchAsk {
        route,
        ..LaunchAsk::default()
    };
    let prepared = snapshot
        .host(&key)
        .map(|host| LaunchPlan::new(host, &settings, &ask))
        .ok_or_else(|| format!("{key} is not in the host list; refresh and retry"))
        .and_then(|plan| {
            let method = match &how {
                ConnectHow::Shell if route == RouteChoice::Eic => Err(
                    "a shell runs through Session Manager only; connect by SSH to use EC2 \
                     Instance Connect"
                        .to_owned(),
                ),
                ConnectHow::Shell => Ok(Method::Ssm),
                _ => connect::connect_method(
                    &snapshot,
                    &key,
                    remote_port(&how, Some(&plan)),
                    plan.route,
                ),
            };
            method.map(|method| (plan, method))
        });
    let method = prepared.as_ref().ok().map(|(_, method)| *method);
    let outcome = match (prepared, &how) {
        (Err(why), _) => Err(Failure::from(why)),
        (Ok((plan, method)), ConnectHow::Ssh) => ssh(&shared, &key, method, plan).await,
        (Ok((plan, _)), ConnectHow::Shell) => shell(&shared, &key, plan).await,
        (
            Ok((_, method)),
            ConnectHow::Forward {
                remote_port,
                local_port,
            },
        ) => forward(&shared, &key, *remote_port, *local_port, method).await,
        (Ok((plan, method)), ConnectHow::Rdp) => {
            super::connect_rdp::rdp(&shared, &key, connect::choice_of(method), plan)
                .await
                .map_err(Failure::from)
        }
    };
    match outcome {
        Ok(text) => shared.publisher.notify(NoticeLevel::Info, text, None),
        Err(failure) => {
            let action = failure
                .action
                .or_else(|| sign_in_action(&shared, &key, &failure.text))
                .or_else(|| session_manager_action(&shared, &key, &how, method));
            shared.publisher.notify(
                NoticeLevel::Error,
                format!("{name}: {}", failure.text),
                action,
            );
        }
    }
}

/// The settings a launch to `key` reads from the engine's store, read now: a change saved by
/// the Settings window, or by another process (the CLI), applies to the next connect. All
/// defaults without a store.
pub(super) fn launch_settings(shared: &Shared, key: &HostKey) -> LaunchSettings {
    let Some(store) = &shared.store else {
        return LaunchSettings::default();
    };
    store.reload_if_changed();
    LaunchSettings {
        host: store.host_settings(&key.into()),
        app: store.settings(),
    }
}

impl super::Engine {
    /// The settings a launch to `key` uses (see [`launch_settings`]): the CLI builds its
    /// [`LaunchPlan`] from these, as the engine's Connect does.
    pub fn launch_settings(&self, key: &HostKey) -> LaunchSettings {
        launch_settings(&self.shared, key)
    }
}

/// The port on the instance a connection goes to.
fn remote_port(how: &ConnectHow, plan: Option<&LaunchPlan>) -> u16 {
    match how {
        ConnectHow::Ssh => plan.map_or(crate::launch::settings::SSH_PORT, |p| p.ssh_port),
        ConnectHow::Shell => crate::launch::settings::SSH_PORT,
        ConnectHow::Rdp => super::RDP_PORT,
        ConnectHow::Forward { remote_port, .. } => *remote_port,
    }
}

/// "Use Session Manager" when a connection that did not go through Session Manager failed
/// and Session Manager is not ruled out for the host.
fn session_manager_action(
    shared: &Shared,
    key: &HostKey,
    how: &ConnectHow,
    used: Option<Method>,
) -> Option<NoticeAction> {
    if matches!(how, ConnectHow::Shell) || used == Some(Method::Ssm) {
        return None;
    }
    let snapshot = shared.publisher.current();
    let host = snapshot.host(key)?;
    let report = connect::route_report(
        &snapshot,
        host,
        crate::route::Purpose::from_port(remote_port(how, None)),
    );
    report
        .routes
        .iter()
        .any(|r| r.method == Method::Ssm && r.verdict != crate::route::Verdict::Blocked)
        .then(|| NoticeAction::UseSessionManager {
            host: key.clone(),
            how: how.clone(),
        })
}

/// "Sign in" when the failure is about the profile's credentials.
fn sign_in_action(shared: &Shared, key: &HostKey, text: &str) -> Option<NoticeAction> {
    let lower = text.to_ascii_lowercase();
    let about_credentials = ["credential", "expired", "sign in", "token"]
        .iter()
        .any(|word| lower.contains(word));
    let snapshot = shared.publisher.current();
    let host = snapshot.host(key)?;
    about_credentials.then(|| NoticeAction::SignIn {
        profile: host.profile.clone(),
    })
}

async fn ssh(
    shared: &Arc<Shared>,
    key: &HostKey,
    method: Method,
    plan: LaunchPlan,
) -> Result<String, Failure> {
    let snapshot = shared.publisher.current();
    let host = snapshot
        .host(key)
        .cloned()
        .ok_or_else(|| format!("{key} is not in the host list; refresh and retry"))?;
    let os_user = plan.user.clone();
    let choice = connect::choice_of(method);
    // EC2 Instance Connect pushes keys whatever carries the connection; when it may not, ssh
    // offers the key pair's file from the settings, else the user's own keys.
    let (ephemeral, identity, key_warning) = match plan.identity(method) {
        SshIdentity::File(file) => (None, Some(file), None),
        SshIdentity::Ephemeral { fallback } => {
            match connect::push_ssh_key(shared, key, &os_user).await {
                Ok(ephemeral) => {
                    let file = ephemeral.private_key_path().to_owned();
                    (Some(ephemeral), Some(file), None)
                }
                Err(error) => {
                    let offered = if fallback.is_some() {
                        "the key pair's file from the settings"
                    } else {
                        "your own keys"
                    };
                    (None, fallback, Some((offered, error)))
                }
            }
        }
    };
    // The default, as for the CLI: no local port at all.
    let via = plan.ssh_via.unwrap_or(SshVia::ProxyCommand);
    let (tunnel, transport, reached) = match via {
        SshVia::LoopbackPort => {
            let (tunnel, addr) =
                connect::open_forward(shared, key, plan.ssh_port, None, None, choice).await?;
            (
                Some(tunnel),
                SshTransport::LoopbackPort(addr.port()),
                format!("on {addr}"),
            )
        }
        SshVia::ProxyCommand => {
            let exe = std::env::current_exe()
                .map_err(|e| format!("could not find the bastionless program: {e}"))?;
            let command = bastionless_proxy_command(
                Os::current(),
                &exe,
                Some(&shared.aws_files),
                &host,
                plan.ssh_port,
                choice,
            );
            (
                None,
                SshTransport::ProxyCommand(command),
                "by a ProxyCommand".to_owned(),
            )
        }
    };
    let close = |shared: &Arc<Shared>| {
        if let Some(tunnel) = tunnel {
            shared.tunnels.close(tunnel);
        }
    };
    let mut command = SshCommand {
        program: "ssh".into(),
        os_user: os_user.clone(),
        instance_id: host.instance_id.clone(),
        known_hosts: known_hosts_file()
            .map_err(|e| format!("could not prepare Bastionless's known_hosts file: {e}"))?,
        identity,
        transport,
        strict_host_key_checking: None,
        extra_args: Vec::new(),
    };
    let title = window_title("ssh", host.display_name());
    let template = plan.terminal_template.clone();
    // `ssh -G` and terminal detection read the disk and run programs: off the async threads.
    let launched = tokio::task::spawn_blocking(move || {
        command.follow_first_use_default(true);
        let terminal = choose_terminal(template.as_deref(), &TerminalEnv::current())?;
        terminal_command(&terminal, &title, &command.argv())
    })
    .await
    .map_err(|e| format!("could not prepare ssh: {e}"))?;
    let line = match launched {
        Ok(line) => line,
        Err(error) => {
            close(shared);
            return Err(error.to_string().into());
        }
    };
    if let Err(error) = spawn_terminal(shared, &line) {
        close(shared);
        return Err(error.into());
    }
    tokio::spawn(keep_key(ephemeral));
    if let Some(tunnel) = tunnel {
        tokio::spawn(close_when_done(shared.clone(), tunnel));
    }
    let mut text = format!(
        "ssh {os_user}@{} opened in a terminal, through {} {reached}",
        host.display_name(),
        method.label()
    );
    if let Some((offered, warning)) = key_warning {
        text.push_str(&format!(
            " (no key could be pushed, so ssh offers {offered}: {warning})"
        ));
    }
    Ok(text)
}

async fn shell(shared: &Arc<Shared>, key: &HostKey, plan: LaunchPlan) -> Result<String, Failure> {
    let snapshot = shared.publisher.current();
    let host = snapshot
        .host(key)
        .cloned()
        .ok_or_else(|| format!("{key} is not in the host list; refresh and retry"))?;
    let exe = std::env::current_exe()
        .map_err(|e| format!("could not find the bastionless program: {e}"))?;
    let title = window_title("shell", host.display_name());
    let argv = shell_argv(Os::current(), &exe, &shared.aws_files, &host);
    let template = plan.terminal_template;
    let line = tokio::task::spawn_blocking(move || {
        let terminal = choose_terminal(template.as_deref(), &TerminalEnv::current())?;
        terminal_command(&terminal, &title, &argv)
    })
    .await
    .map_err(|e| format!("could not prepare the shell: {e}"))?
    .map_err(|e| e.to_string())?;
    spawn_terminal(shared, &line)?;
    Ok(format!(
        "a Session Manager shell on {} opened in a terminal",
        host.display_name()
    ))
}

/// `bastionless shell` for `host`, through the same AWS files as this engine (the demo's
/// included): named with `env` on Unix and macOS, since some terminals start commands from a
/// server process that does not inherit the launcher's environment.
fn shell_argv(
    os: Os,
    exe: &std::path::Path,
    files: &crate::profiles::AwsFiles,
    host: &Host,
) -> Vec<OsString> {
    let mut argv: Vec<OsString> = Vec::new();
    if os != Os::Windows {
        argv.push("env".into());
        let mut config = OsString::from("AWS_CONFIG_FILE=");
        config.push(&files.config);
        let mut credentials = OsString::from("AWS_SHARED_CREDENTIALS_FILE=");
        credentials.push(&files.credentials);
        argv.push(config);
        argv.push(credentials);
    }
    argv.push(exe.into());
    if files.demo {
        argv.push(crate::profiles::DEMO_FILES_FLAG.into());
    }
    for word in [
        "shell",
        &host.instance_id,
        "--profile",
        &host.profile,
        "--region",
        &host.region,
    ] {
        argv.push(word.into());
    }
    argv
}

async fn forward(
    shared: &Arc<Shared>,
    key: &HostKey,
    remote_port: u16,
    local_port: Option<u16>,
    method: Method,
) -> Result<String, Failure> {
    let (_, addr): (TunnelId, SocketAddr) = connect::open_forward(
        shared,
        key,
        remote_port,
        local_port,
        None,
        connect::choice_of(method),
    )
    .await?;
    Ok(format!(
        "port {remote_port} is forwarded to {addr}; close the tunnel when done"
    ))
}

/// Starts the terminal, and reports it if it fails at once (a missing display, a bad
/// template). A terminal that runs on is left alone.
fn spawn_terminal(shared: &Arc<Shared>, line: &CommandLine) -> Result<(), String> {
    let mut command = tokio::process::Command::from(line.to_command());
    command
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let child = command
        .spawn()
        .map_err(|e| format!("could not start the terminal `{line}`: {e}"))?;
    let shared = shared.clone();
    let program = line.program.to_string_lossy().into_owned();
    tokio::spawn(async move {
        let started = tokio::time::Instant::now();
        let Ok(output) = child.wait_with_output().await else {
            return;
        };
        if !output.status.success() && started.elapsed() < TERMINAL_STARTUP {
            let said = String::from_utf8_lossy(&output.stderr);
            let said = said.trim();
            shared.publisher.notify(
                NoticeLevel::Error,
                format!(
                    "the terminal {program} failed ({}){}{said}; set a terminal command \
                     template in the settings",
                    output.status,
                    if said.is_empty() { "" } else { ": " }
                ),
                None,
            );
        }
    });
    Ok(())
}

/// Keeps the pushed key's file for ssh to read, then deletes it (by dropping it).
async fn keep_key(key: Option<EphemeralKey>) {
    tokio::time::sleep(KEY_KEPT).await;
    drop(key);
}

/// Closes an SSH tunnel once its connections have all ended, or when none came.
pub(super) async fn close_when_done(shared: Arc<Shared>, tunnel: TunnelId) {
    let mut snapshots = shared.publisher.subscribe();
    let used = tokio::time::timeout(
        FIRST_CONNECTION_WAIT,
        snapshots.wait_for(|s| {
            s.tunnels
                .iter()
                .find(|t| t.id == tunnel)
                .is_none_or(|t| t.connections_total > 0 || t.is_finished())
        }),
    )
    .await
    .is_ok();
    if !used {
        shared.tunnels.close(tunnel);
        return;
    }
    let _ = snapshots
        .wait_for(|s| {
            s.tunnels
                .iter()
                .find(|t| t.id == tunnel)
                .is_none_or(|t| t.open_connections == 0 || t.is_finished())
        })
        .await;
    let finished = shared
        .publisher
        .current()
        .tunnels
        .iter()
        .find(|t| t.id == tunnel)
        .is_some_and(|t| t.is_finished());
    // A failed tunnel stays listed with its reason until dismissed.
    if !finished {
        shared.tunnels.close(tunnel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profiles::AwsFiles;

    fn host(platform: Platform) -> Host {
        Host {
            name: Some("web-1".into()),
            platform,
            ..Host::bare("prod", "111122223333", "eu-west-1", "i-0aaa")
        }
    }

    #[test]
    fn windows_hosts_default_to_rdp_and_the_rest_to_ssh() {
        assert_eq!(
            ConnectHow::default_for(&host(Platform::Windows)),
            ConnectHow::Rdp
        );
        assert_eq!(
            ConnectHow::default_for(&host(Platform::Linux)),
            ConnectHow::Ssh
        );
    }

    #[test]
    fn a_shell_in_a_terminal_uses_the_engine_s_aws_files_and_names_one_instance() {
        let files = AwsFiles::at("/d/config", "/d/credentials");
        let words = |os| -> Vec<String> {
            shell_argv(
                os,
                std::path::Path::new("/opt/bastionless"),
                &files,
                &host(Platform::Linux),
            )
            .into_iter()
            .map(|w| w.into_string().unwrap())
            .collect()
        };
        let tail = [
            "/opt/bastionless",
            "shell",
            "i-0aaa",
            "--profile",
            "prod",
            "--region",
            "eu-west-1",
        ];
        let unix = words(Os::Unix);
        assert_eq!(
            unix[..3],
            [
                "env",
                "AWS_CONFIG_FILE=/d/config",
                "AWS_SHARED_CREDENTIALS_FILE=/d/credentials"
            ]
        );
        assert_eq!(unix[3..], tail);
        assert_eq!(words(Os::MacOs), unix);
        assert_eq!(words(Os::Windows), tail);
    }

    #[test]
    fn a_shell_for_the_demo_is_told_its_files_are_the_demo_s() {
        let files = AwsFiles {
            demo: true,
            ..AwsFiles::at("/d/config", "/d/credentials")
        };
        for os in [Os::Unix, Os::Windows] {
            let argv = shell_argv(
                os,
                std::path::Path::new("/opt/bastionless"),
                &files,
                &host(Platform::Linux),
            );
            let at = argv.iter().position(|w| w == "shell").unwrap();
            assert_eq!(argv[at - 1], "--demo-files", "{os:?}: {argv:?}");
        }
    }
}
