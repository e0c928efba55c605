//! `bastionless ssh HOST [-- ssh args]`: the system `ssh`, logged in with a fresh key.
//!
//! A fresh Ed25519 key is pushed with EC2 Instance Connect's SendSSHPublicKey (valid 60 s,
//! whatever the route) unless the user's own key is named — `-i`, the host's identity file
//! setting, or (off EC2 Instance Connect) the file set for the instance's key pair name — and
//! `ssh` runs with the host key pinned to the instance id. By default ssh reaches the host through `-o ProxyCommand=
//! "bastionless proxy …"`, so no local port is opened at all; `--listen` puts a tunnel on
//! 127.0.0.1 in this process instead. The route — an EC2 Instance Connect Endpoint or Session
//! Manager (`--route`, best by default) — is chosen and checked here, before ssh starts, and
//! handed to the proxy. The process exits with ssh's status.
//!
//! The proxy is pointed at the same AWS files as this process (so `--demo`'s in-process
//! simulator serves it too), and narrowed to the host's profile and region.
//!
//! The user, port, key, route and ProxyCommand-or-port come from the options, else the
//! settings, by the same resolution as the app's Connect ([`LaunchPlan`]).

use crate::aws_source::AwsSource;
use crate::cli::target::{self, HostArgs};
use anyhow::Context as _;
use bastionless_core::engine::{RouteChoice, Snapshot};
use bastionless_core::launch::settings::{LaunchAsk, LaunchPlan, SshIdentity};
use bastionless_core::launch::terminal::Os;
use bastionless_core::launch::{
    SshCommand, SshTransport, bastionless_proxy_command, known_hosts_file,
};
use bastionless_core::route::Method;
use bastionless_core::store::SshVia;
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
    /// The OS user to log in as (default: the host's settings, else the instance's
    /// `bastionless:user` tag, else the default users setting for its AMI name, else its
    /// image's usual user).
    #[arg(long, short = 'l')]
    pub user: Option<String>,
    /// The SSH port on the host (default: the host's settings, else 22).
    #[arg(long)]
    pub port: Option<u16>,
    /// The `ssh` program to run.
    #[arg(long, default_value = "ssh")]
    pub ssh_program: OsString,
    /// Offer this private key (the instance's key pair, say) instead of pushing a fresh one
    /// (default: the host's identity file setting, else the key pair's file from the settings
    /// off EC2 Instance Connect).
    #[arg(long, short = 'i')]
    pub identity: Option<PathBuf>,
    /// Open the tunnel on a port of 127.0.0.1 in this process instead of running ssh with a
    /// ProxyCommand (default: the `ssh_via` setting, else a ProxyCommand).
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
    let (engine, snapshot) = target::inventory_for(source, &args.target)?;
    let host = target::resolve(&snapshot, &args.target)?;
    let key = host.key();
    let ask = LaunchAsk {
        user: args.user.clone(),
        port: args.port,
        identity: args.identity.clone(),
        route: args.route.into(),
        ssh_via: args.listen.then_some(SshVia::LoopbackPort),
    };
    let plan = LaunchPlan::new(host, &engine.launch_settings(&key), &ask);
    let os_user = plan.user.clone();
    // Refuse a route that cannot work before ssh starts, and hand the proxy the one chosen.
    let route = engine
        .preflight(&key, plan.ssh_port, plan.route)
        .map_err(anyhow::Error::msg)?;
    let method = match route {
        RouteChoice::Ssm => Method::Ssm,
        _ => Method::Eic,
    };
    let (ephemeral, identity) = match plan.identity(method) {
        SshIdentity::File(file) => (None, Some(file)),
        SshIdentity::Ephemeral { fallback } => {
            match (engine.push_ssh_key_blocking(&key, &os_user), fallback) {
                (Ok(ephemeral), _) => {
                    let file = ephemeral.private_key_path().to_owned();
                    (Some(ephemeral), Some(file))
                }
                (Err(error), Some(fallback)) => {
                    eprintln!(
                        "bastionless: no key could be pushed ({error}); offering {} from the \
                         key pair setting",
                        fallback.display()
                    );
                    (None, Some(fallback))
                }
                (Err(error), None) => {
                    anyhow::bail!("{error} (or log in with your own key: -i FILE)")
                }
            }
        }
    };
    let listen = plan.ssh_via == Some(SshVia::LoopbackPort);
    let transport = if listen {
        let local = engine
            .open_tunnel_blocking(&key, plan.ssh_port, None, route)
            .map_err(anyhow::Error::msg)?;
        SshTransport::LoopbackPort(local.port())
    } else {
        let exe = std::env::current_exe().context("could not find the bastionless program")?;
        // The files are named (ssh passes them on in its environment too) so that a demo's
        // proxy is told they are the demo's.
        SshTransport::ProxyCommand(bastionless_proxy_command(
            Os::current(),
            &exe,
            Some(source.files()),
            host,
            plan.ssh_port,
            route,
        ))
    };
    let mut command = SshCommand {
        program: args.ssh_program.clone().into(),
        os_user,
        instance_id: host.instance_id.clone(),
        known_hosts: known_hosts_file()
            .context("could not prepare Bastionless's known_hosts file")?,
        identity,
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
    drop(ephemeral);
    if !status.success() && listen {
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
