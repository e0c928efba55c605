//! `bastionless connect HOST`: what a double-click does — SSH for Linux hosts (as `bastionless
//! ssh HOST`), RDP for Windows hosts (the engine's RDP launch, kept running until Ctrl-C or the
//! tunnel ends).

use crate::aws_source::AwsSource;
use crate::cli::forward::wait_for_ctrl_c_or_failure;
use crate::cli::ssh::{self, RouteArg, SshArgs};
use crate::cli::target::{self, HostArgs};
use bastionless_core::engine::{Command, ConnectHow, NoticeLevel, RouteChoice};
use std::process::ExitCode;
use std::time::Duration;

/// How long the engine may take to launch a client.
const LAUNCH_WAIT: Duration = Duration::from_secs(60);

#[derive(Debug, clap::Args)]
pub struct ConnectArgs {
    #[command(flatten)]
    pub target: HostArgs,
}

pub fn run(args: &ConnectArgs, source: &AwsSource) -> anyhow::Result<ExitCode> {
    let (engine, snapshot) = target::inventory_for(source, &args.target)?;
    let host = target::resolve(&snapshot, &args.target)?;
    match ConnectHow::default_for(host) {
        ConnectHow::Ssh => {
            drop(engine);
            ssh::run(
                &SshArgs {
                    target: args.target.clone(),
                    route: RouteArg::Auto,
                    user: None,
                    port: None,
                    ssh_program: "ssh".into(),
                    identity: None,
                    listen: false,
                    ssh_args: Vec::new(),
                },
                source,
            )
        }
        how => {
            let seen = snapshot.notices.last().map_or(0, |n| n.seq);
            let tunnels_before = snapshot.tunnels.len();
            engine.send(Command::Connect {
                host: host.key(),
                how,
                route: RouteChoice::Auto,
            });
            let after = engine.wait_until(LAUNCH_WAIT, |s| s.notices.iter().any(|n| n.seq > seen));
            let Some(notice) = after.notices.iter().find(|n| n.seq > seen) else {
                anyhow::bail!("nothing was launched within {} s", LAUNCH_WAIT.as_secs());
            };
            if notice.level == NoticeLevel::Error {
                anyhow::bail!("{}", notice.text);
            }
            eprintln!("bastionless: {}", notice.text);
            match after.tunnels.get(tunnels_before..).and_then(|t| t.last()) {
                Some(tunnel) => match wait_for_ctrl_c_or_failure(&engine, tunnel.id)? {
                    None => Ok(ExitCode::SUCCESS),
                    Some(reason) => {
                        eprintln!("bastionless: the tunnel failed: {reason}");
                        Ok(ExitCode::FAILURE)
                    }
                },
                None => Ok(ExitCode::SUCCESS),
            }
        }
    }
}
