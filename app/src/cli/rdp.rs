//! `bastionless rdp HOST`: the system RDP client, logged in (as Administrator unless the
//! options or the settings name another user) with the instance's Windows password.
//!
//! The password is fetched with `GetPasswordData` and decrypted here with the key pair's private
//! key from the OS keyring (imported once with `bastionless keypair import`); it reaches the
//! client on its stdin (FreeRDP `/from-stdin`), the clipboard for 30 s or the Windows
//! Credential Manager, and never its command line, a file or this terminal. The user, route
//! and client template follow the options, else the settings ([`LaunchPlan`]). A tunnel to port 3389 listens on 127.0.0.1 in this process until the client exits;
//! the process exits with the client's status.

use crate::aws_source::AwsSource;
use crate::cli::ssh::RouteArg;
use crate::cli::target::{self, HostArgs};
use anyhow::{Context as _, bail};
use bastionless_core::engine::RDP_PORT;
use bastionless_core::launch::rdp::{
    RdpClient, RdpEnv, RdpSession, choose_rdp_client, hand_over_password, rdp_file_contents,
    rdp_launch, spawn_rdp_client,
};
use bastionless_core::launch::settings::{LaunchAsk, LaunchPlan};
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct RdpArgs {
    #[command(flatten)]
    pub target: HostArgs,
    /// How to reach the host.
    #[arg(long, value_enum, default_value_t = RouteArg::Auto)]
    pub route: RouteArg,
    /// The Windows user to log in as, with the password Windows set at launch (default: the
    /// host's settings, else the default users setting for its AMI name, else Administrator).
    #[arg(long, short = 'l')]
    pub user: Option<String>,
    /// The RDP client: xfreerdp, wlfreerdp, xfreerdp3, wlfreerdp3, remmina, mstsc or open
    /// (default: the platform's, FreeRDP first on Linux).
    #[arg(long, value_parser = parse_client)]
    pub client: Option<RdpClient>,
    /// A command line to start the client instead, with `{address}`, `{port}`, `{user}`,
    /// `{file}` (the .rdp file) and `{title}` placeholders; a `/from-stdin` argument gets the
    /// password on stdin. Default: the `rdp_template` setting.
    #[arg(long)]
    pub client_template: Option<String>,
}

fn parse_client(name: &str) -> Result<RdpClient, String> {
    RdpClient::from_name(name).ok_or_else(|| {
        format!(
            "`{name}` is not a known RDP client; use xfreerdp, wlfreerdp, xfreerdp3, wlfreerdp3, \
             remmina, mstsc or open, or --client-template"
        )
    })
}

pub fn run(args: &RdpArgs, source: &AwsSource) -> anyhow::Result<ExitCode> {
    let (engine, snapshot) = target::inventory_for(source, &args.target)?;
    let host = target::resolve(&snapshot, &args.target)?;
    let key = host.key();
    let ask = LaunchAsk {
        user: args.user.clone(),
        route: args.route.into(),
        ..LaunchAsk::default()
    };
    let plan = LaunchPlan::new(host, &engine.launch_settings(&key), &ask);
    let template = args.client_template.clone().or(plan.rdp_template.clone());
    let client = choose_rdp_client(template.as_deref(), args.client.clone(), &RdpEnv::current())?;
    let password = engine
        .windows_password_blocking(&key)
        .map_err(anyhow::Error::msg)?;
    let local = engine
        .open_tunnel_blocking(&key, RDP_PORT, None, plan.route)
        .map_err(anyhow::Error::msg)?;
    let session = RdpSession {
        local_port: local.port(),
        username: plan.user.clone(),
        host_name: host.display_name().to_owned(),
    };
    let dir = tempfile::Builder::new()
        .prefix("bastionless-rdp-")
        .tempdir()
        .context("could not create a private directory for the .rdp file")?;
    let file = dir.path().join(format!("{}.rdp", host.instance_id));
    std::fs::write(&file, rdp_file_contents(&session))
        .with_context(|| format!("could not write {}", file.display()))?;
    let launch = rdp_launch(&client, &session, &file)?;
    let handover = hand_over_password(&launch, &session, &password);
    if let Some(said) = &handover.said {
        eprintln!("bastionless: {said}");
    }
    let mut child = spawn_rdp_client(&launch, Some(&password))
        .with_context(|| format!("could not run {}", launch.program.to_string_lossy()))?;
    drop(password);
    let status = child
        .wait()
        .with_context(|| format!("{} did not run", launch.program.to_string_lossy()))?;
    if !status.success() {
        let reasons: Vec<String> = engine
            .snapshot()
            .tunnels
            .iter()
            .filter(|t| t.target.host == key)
            .filter_map(|t| t.last_error.clone())
            .collect();
        for reason in reasons {
            eprintln!(
                "bastionless: the tunnel to {} failed: {reason}",
                host.display_name()
            );
        }
    }
    drop(handover);
    drop(dir);
    match status.code() {
        Some(code) => Ok(ExitCode::from(u8::try_from(code).unwrap_or(1))),
        None => bail!(
            "{} was killed by a signal",
            launch.program.to_string_lossy()
        ),
    }
}

#[cfg(test)]
mod tests {
    use crate::cli::{Cli, Command};
    use bastionless_core::launch::rdp::RdpClient;
    use clap::Parser as _;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(["bastionless", "rdp"].iter().chain(args))
    }

    #[test]
    fn a_known_client_is_taken_and_an_unknown_one_is_refused_with_the_choices() {
        let Some(Command::Rdp(args)) = parse(&["win-1", "--client", "wlfreerdp"]).unwrap().command
        else {
            panic!("not rdp")
        };
        assert_eq!(args.client, Some(RdpClient::FreeRdp("wlfreerdp".into())));
        assert_eq!(args.user, None, "the settings decide, else Administrator");
        let error = parse(&["win-1", "--client", "rdesktop"])
            .unwrap_err()
            .to_string();
        assert!(error.contains("use xfreerdp, wlfreerdp"), "{error}");
    }

    #[test]
    fn no_option_puts_the_password_on_the_command_line_or_screen() {
        for flag in ["--password", "--print-password", "-p"] {
            assert!(parse(&["win-1", flag, "x"]).is_err(), "{flag}");
        }
    }
}
