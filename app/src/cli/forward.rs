//! `bastionless forward HOST --remote-port P [--local-port L] [--remote-host H]`: a tunnel from
//! 127.0.0.1 to a port on the instance — or, with `--remote-host`, to a host the instance
//! reaches (a database, say), through Session Manager's
//! `AWS-StartPortForwardingSessionToRemoteHost` — until Ctrl-C.
//!
//! stdout gets one line, the local address (`127.0.0.1:PORT`), for scripts; everything else
//! goes to stderr. The exit code is 0 after Ctrl-C and 1 when the tunnel fails.

use crate::aws_source::AwsSource;
use crate::cli::ssh::RouteArg;
use crate::cli::target::{self, HostArgs};
use anyhow::Context as _;
use bastionless_core::engine::{Engine, RouteChoice};
use bastionless_core::tunnel::{TunnelId, TunnelState};
use std::process::ExitCode;
use std::time::Duration;

#[derive(Debug, clap::Args)]
pub struct ForwardArgs {
    #[command(flatten)]
    pub target: HostArgs,
    /// The port to reach on the host (or on --remote-host).
    #[arg(long)]
    pub remote_port: u16,
    /// The port on 127.0.0.1 to listen on (default: any free port).
    #[arg(long)]
    pub local_port: Option<u16>,
    /// Forward to this host as the instance reaches it, instead of the instance itself
    /// (Session Manager only).
    #[arg(long)]
    pub remote_host: Option<String>,
    /// How to reach the host (with --remote-host: Session Manager).
    #[arg(long, value_enum, default_value_t = RouteArg::Auto)]
    pub route: RouteArg,
}

pub fn run(args: &ForwardArgs, source: &AwsSource) -> anyhow::Result<ExitCode> {
    let (engine, snapshot) = target::inventory_for(source, &args.target)?;
    let host = target::resolve(&snapshot, &args.target)?;
    let route = match (&args.remote_host, args.route) {
        (Some(_), RouteArg::Auto) => RouteChoice::Ssm,
        (_, route) => route.into(),
    };
    let (tunnel, local) = engine
        .open_forward_blocking(
            &host.key(),
            args.remote_port,
            args.local_port,
            args.remote_host.clone(),
            route,
        )
        .map_err(anyhow::Error::msg)?;
    let far = args.remote_host.as_deref().unwrap_or(host.display_name());
    println!("{local}");
    eprintln!(
        "bastionless: forwarding {local} to {far}:{} through {}; Ctrl-C to stop",
        args.remote_port,
        host.display_name()
    );
    match wait_for_ctrl_c_or_failure(&engine, tunnel)? {
        None => Ok(ExitCode::SUCCESS),
        Some(reason) => {
            eprintln!("bastionless: the tunnel failed: {reason}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// Blocks until Ctrl-C (`None`) or until the tunnel fails (its reason). Returning lets the
/// engine end the tunnel and record it in the audit log.
pub fn wait_for_ctrl_c_or_failure(
    engine: &Engine,
    tunnel: TunnelId,
) -> anyhow::Result<Option<String>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("could not wait for Ctrl-C")?;
    runtime.block_on(async {
        let mut ticks = tokio::time::interval(Duration::from_millis(250));
        loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => return Ok(None),
                _ = ticks.tick() => {
                    let snapshot = engine.snapshot();
                    match snapshot.tunnels.iter().find(|t| t.id == tunnel) {
                        None => return Ok(Some("it was closed".to_owned())),
                        Some(t) => {
                            if let TunnelState::Failed { reason } = &t.state {
                                return Ok(Some(reason.clone()));
                            }
                        }
                    }
                }
            }
        }
    })
}
