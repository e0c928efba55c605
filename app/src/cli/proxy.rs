//! `bastionless proxy HOST [--port 22] [--route auto|eic|ssm]`: one tunnel on stdin/stdout, for
//! `ssh -o ProxyCommand`, scp, rsync and editors' remote-SSH.
//!
//! stdout carries the tunnel's bytes only: every message goes to stderr.
//!
//! The ProxyCommands Bastionless writes (the app's Connect, `bastionless ssh`) name the instance
//! id with `--profile` and `--region`, so the proxy scans that one profile's region before the
//! tunnel opens, not every profile's: each ssh, scp or rsync pays for one account's scan.
//!
//! When its session ends, ssh sends its ProxyCommand SIGHUP. The proxy ignores it (on Unix):
//! ssh has closed the pipes by then, so the tunnel ends at once anyway, and ending it normally
//! is what closes it cleanly on the far side and records it in the audit log.

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
    #[cfg(unix)]
    ignore_hangup()?;
    let (engine, snapshot) = target::inventory_for(source, &args.target)?;
    let host = target::resolve(&snapshot, &args.target)?;
    engine
        .proxy_stdio_blocking(&host.key(), args.port, args.route.into())
        .map_err(anyhow::Error::msg)?;
    Ok(ExitCode::SUCCESS)
}

/// Replaces SIGHUP's default action (ending the process) with a handler that does nothing
/// with it, for the rest of the process's life.
#[cfg(unix)]
fn ignore_hangup() -> anyhow::Result<()> {
    use anyhow::Context as _;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .context("could not set up signal handling")?;
    let _guard = runtime.enter();
    // The handler stays installed after the stream is dropped; nobody reads from it.
    let _hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .context("could not set up signal handling")?;
    Ok(())
}
