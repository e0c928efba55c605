//! `bastionless proxy HOST [--port 22] [--route auto|eic|ssm]`: one tunnel on stdin/stdout, for
//! `ssh -o ProxyCommand`, scp, rsync and editors' remote-SSH.
//!
//! stdout carries the tunnel's bytes only: every message goes to stderr.

use crate::aws_source::AwsSource;
use crate::cli::ssh::RouteArg;
use crate::cli::target::{self, HostArgs};
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct ProxyArgs {
    #[command(flatten)]
    pub target: HostArgs,
    /// The port on the host to reach.
    #[arg(long, default_value_t = 22)]
    pub port: u16,
    /// How to reach the host.
    #[arg(long, value_enum, default_value_t = RouteArg::Auto)]
    pub route: RouteArg,
}

pub fn run(args: &ProxyArgs, source: &AwsSource) -> anyhow::Result<ExitCode> {
    let (engine, snapshot) = target::inventory(source, args.target.region.as_deref())?;
    let host = target::resolve(&snapshot, &args.target)?;
    engine
        .proxy_stdio_blocking(&host.key(), args.port, args.route.into())
        .map_err(anyhow::Error::msg)?;
    Ok(ExitCode::SUCCESS)
}
