//! `bastionless ssh HOST [-- ssh args]`: the system `ssh`, logged in with a fresh key.
//!
//! A fresh Ed25519 key is pushed with EC2 Instance Connect's SendSSHPublicKey (valid 60 s,
//! whatever the route) unless `-i` names the user's own key, and `ssh` runs with the host key
//! pinned to the instance id. By default ssh reaches the host through `-o ProxyCommand=
//! "bastionless proxy …"`, so no local port is opened at all; `--listen` puts a tunnel on
//! 127.0.0.1 in this process instead. The route — an EC2 Instance Connect Endpoint or Session
//! Manager (`--route`, best by default) — is chosen and checked here, before ssh starts, and
//! handed to the proxy. The process exits with ssh's status.
//!
//! The proxy is pointed at the same AWS files as this process (so `--demo`'s in-process
//! simulator serves it too), and narrowed to the host's profile and region.

use crate::aws_source::AwsSource;
use crate::cli::target::{self, HostArgs};
use anyhow::Context as _;
use bastionless_core::eic::guess_os_user;
use bastionless_core::engine::{RouteChoice, Snapshot};
use bastionless_core::inventory::Host;
use bastionless_core::launch::terminal::Os;
use bastionless_core::launch::{SshCommand, SshTransport, known_hosts_file, proxy_command};
use std::ffi::OsString;
use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// How long to wait for the tunnel's account of a failed login.
const REASON_WAIT: Duration = Duration::from_secs(2);

#[derive(Debug, clap::Args)]
pub struct SshArgs {
    #[command(flatten)]
    pub target: HostArgs,
    /// How to reach the host.
    #[arg(long, value_enum, default_value_t = RouteArg::Auto)]
    pub route: RouteArg,
    /// The OS user to log in as (default: the instance's `bastionless:user` tag, else its image's
    /// default user).
    #[arg(long, short = 'l')]
    pub user: Option<String>,
    /// The SSH port on the host.
    #[arg(long, default_value_t = 22)]
    pub port: u16,
    /// The `ssh` program to run.
    #[arg(long, default_value = "ssh")]
    pub ssh_program: OsString,
    /// Offer this private key (the instance's key pair, say) instead of pushing a fresh one.
    #[arg(long, short = 'i')]
    pub identity: Option<PathBuf>,
    /// Open the tunnel on a port of 127.0.0.1 in this process instead of running ssh with a
    /// ProxyCommand.
    #[arg(long)]
    pub listen: bool,
    /// Options and a remote command for ssh, after `--`.
    #[arg(last = true)]
    pub ssh_args: Vec<OsString>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RouteArg {
    /// The best route the host's checks allow (EIC before SSM when both are ready).
    Auto,
    /// Through an EC2 Instance Connect Endpoint in the host's VPC.
    Eic,
    /// Through Session Manager and the host's SSM Agent.
    Ssm,
}

impl From<RouteArg> for RouteChoice {
    fn from(arg: RouteArg) -> Self {
        match arg {
            RouteArg::Auto => RouteChoice::Auto,
            RouteArg::Eic => RouteChoice::Eic,
            RouteArg::Ssm => RouteChoice::Ssm,
        }
    }
}

pub fn run(args: &SshArgs, source: &AwsSource) -> anyhow::Result<ExitCode> {
    let (engine, snapshot) = target::inventory(source, args.target.region.as_deref())?;
    let host = target::resolve(&snapshot, &args.target)?;
    let key = host.key();
    let os_user = guess_os_user(host, args.user.as_deref());
    // Refuse a route that cannot work before ssh starts, and hand the proxy the one chosen.
    let route = engine
        .preflight(&key, args.port, args.route.into())
        .map_err(anyhow::Error::msg)?;
    let ephemeral = match &args.identity {
        Some(_) => None,
        None => Some(
            engine
                .push_ssh_key_blocking(&key, &os_user)
                .map_err(|e| anyhow::anyhow!("{e} (or log in with your own key: -i FILE)"))?,
        ),
    };
    let transport = if args.listen {
        let local = engine
            .open_tunnel_blocking(&key, args.port, None, route)
            .map_err(anyhow::Error::msg)?;
        SshTransport::LoopbackPort(local.port())
    } else {
        SshTransport::ProxyCommand(proxy_command_for(host, args.port, route)?)
    };
    let mut command = SshCommand {
        program: args.ssh_program.clone().into(),
        os_user,
        instance_id: host.instance_id.clone(),
        known_hosts: known_hosts_file()
            .context("could not prepare Bastionless's known_hosts file")?,
        identity: args
            .identity
            .clone()
            .or_else(|| ephemeral.as_ref().map(|k| k.private_key_path().to_owned())),
        transport,
        strict_host_key_checking: None,
        extra_args: args.ssh_args.clone(),
    };
    command.follow_first_use_default(std::io::stdin().is_terminal());
    let files = source.files();
    let status = command
        .to_command()
        .env("AWS_CONFIG_FILE", &files.config)
        .env("AWS_SHARED_CREDENTIALS_FILE", &files.credentials)
        .status()
        .with_context(|| format!("could not run {}", args.ssh_program.to_string_lossy()))?;
    if !status.success() && args.listen {
        // ssh only saw a closed connection; the tunnel knows why (and may still be recording
        // it). A ProxyCommand says it on stderr itself.
        let failed = |s: &Snapshot| {
            s.tunnels
                .iter()
                .any(|t| t.target.host == key && t.last_error.is_some())
        };
        let snapshot = engine.wait_until(REASON_WAIT, failed);
        let reasons = snapshot
            .tunnels
            .iter()
            .filter(|t| t.target.host == key)
            .filter_map(|t| t.last_error.as_deref());
        for reason in reasons {
            eprintln!(
                "bastionless: the tunnel to {} failed: {reason}",
                host.display_name()
            );
        }
    }
    // ssh's own exit code (255 for its own failures) is the caller's answer.
    Ok(ExitCode::from(status.code().map_or(255, |c| c as u8)))
}

/// `bastionless proxy` for exactly this host: its id, profile and region, and the route.
fn proxy_command_for(host: &Host, port: u16, route: RouteChoice) -> anyhow::Result<String> {
    let exe = std::env::current_exe().context("could not find the bastionless program")?;
    let port = port.to_string();
    let route = match route {
        RouteChoice::Eic => "eic",
        RouteChoice::Ssm => "ssm",
        RouteChoice::Auto => "auto",
    };
    Ok(proxy_command(
        Os::current(),
        &exe,
        &[
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
        ],
    ))
}
