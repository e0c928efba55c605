//! `bastionless ssh HOST [-- ssh args]`: the system `ssh`, logged in with a fresh key.
//!
//! A fresh Ed25519 key is pushed with EC2 Instance Connect's SendSSHPublicKey (valid 60 s,
//! whatever the route), a tunnel listens on 127.0.0.1 in this process — through an EC2 Instance
//! Connect Endpoint or a Session Manager port-forwarding session (`--route`, best by default) —
//! and `ssh` runs against it with the host key pinned to the instance id. The process exits
//! with ssh's status.

use crate::aws_source::AwsSource;
use crate::cli::target::{self, HostArgs};
use anyhow::Context as _;
use bastionless_core::eic::guess_os_user;
use bastionless_core::engine::{RouteChoice, Snapshot};
use bastionless_core::launch::{SshCommand, known_hosts_file};
use std::ffi::OsString;
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
    let ephemeral = engine
        .push_ssh_key_blocking(&key, &os_user)
        .map_err(anyhow::Error::msg)?;
    let local = engine
        .open_tunnel_blocking(&key, args.port, None, args.route.into())
        .map_err(anyhow::Error::msg)?;
    let command = SshCommand {
        program: args.ssh_program.clone().into(),
        os_user,
        instance_id: host.instance_id.clone(),
        known_hosts: known_hosts_file()
            .context("could not prepare Bastionless's known_hosts file")?,
        identity: Some(ephemeral.private_key_path().to_owned()),
        local_port: local.port(),
        extra_args: args.ssh_args.clone(),
    };
    let status = command
        .to_command()
        .status()
        .with_context(|| format!("could not run {}", args.ssh_program.to_string_lossy()))?;
    if !status.success() {
        // ssh only saw a closed connection; the tunnel knows why (and may still be recording it).
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
