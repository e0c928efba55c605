//! The command line: no subcommand opens the window, each subcommand has a file of its own.
//!
//! `--demo` is global, so `bastionless --demo list` and `bastionless list --demo` both work.

pub mod connect;
pub mod doctor;
pub mod favorites;
pub mod forward;
pub mod keypair;
pub mod list;
pub mod login;
pub mod proxy;
pub mod rdp;
pub mod recent;
pub mod shell;
pub mod ssh;
pub mod ssh_config;
pub mod target;

use crate::aws_source::AwsSource;
use crate::ui;
use anyhow::Context as _;
use bastionless_core::engine::Engine;
use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Connect to private EC2 instances without bastion hosts.
#[derive(Debug, Parser)]
#[command(name = "bastionless", version, about)]
pub struct Cli {
    /// Run against a built-in AWS simulator with demo accounts and instances instead of your
    /// AWS profiles.
    #[arg(long, global = true)]
    pub demo: bool,

    /// The AWS files in the environment are a running demo's (what the demo window and
    /// `bastionless --demo ssh` pass to the `bastionless` they launch): keep the demo's
    /// settings and no audit log.
    #[arg(long = "demo-files", global = true, hide = true)]
    pub demo_files: bool,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print every EC2 instance that every AWS profile can see, in every enabled region.
    List(list::ListArgs),
    /// Explain how HOST can be reached: each route (EC2 Instance Connect, Session Manager,
    /// direct), best first, with the reasons. Exits with 0 when a route is ready, 1 otherwise.
    Doctor(doctor::DoctorArgs),
    /// Log in with the system ssh through a tunnel, with a fresh key pushed for this login.
    Ssh(ssh::SshArgs),
    /// Carry one connection to HOST on stdin/stdout (for ssh -o ProxyCommand, scp, rsync).
    Proxy(proxy::ProxyArgs),
    /// Connect the usual way: SSH for Linux hosts, RDP for Windows hosts.
    Connect(connect::ConnectArgs),
    /// An interactive Session Manager shell on this terminal.
    Shell(shell::ShellArgs),
    /// Forward a port on 127.0.0.1 to a port on HOST (or on a host it reaches) until Ctrl-C.
    Forward(forward::ForwardArgs),
    /// Print ssh_config Host blocks for every Linux host (--write: into an include file), so
    /// plain ssh, scp and rsync go through Bastionless.
    SshConfig(ssh_config::SshConfigArgs),
    /// List, add or remove favorite hosts (an alias names its host in every other command), or
    /// import and export them with their host settings.
    Favorites(favorites::FavoritesArgs),
    /// The last connections made, newest first.
    Recent(recent::RecentArgs),
    /// Open the system RDP client on a Windows host through a tunnel, logged in as
    /// Administrator with the instance's password (decrypted with its key pair's key).
    Rdp(rdp::RdpArgs),
    /// Keep a key pair's private key in the OS keyring, to decrypt Windows passwords.
    Keypair(keypair::KeypairArgs),
    /// Sign in to an IAM Identity Center (SSO) session: prints a URL and a code, opens the
    /// browser, and caches the token where the AWS CLI shares it.
    Login(login::LoginArgs),
}

/// Runs what the command line asked for and says how the process should exit.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let source = if cli.demo {
        AwsSource::demo()?
    } else if cli.demo_files {
        AwsSource::demo_files_from_env()
    } else {
        AwsSource::from_env()
    };
    favorites::use_aliases_from(source.store_dir());
    if cli.command.is_some() {
        login::ask_mfa_codes_on_terminal();
    }
    match cli.command {
        Some(Command::List(args)) => list::run(&args, &source),
        Some(Command::Doctor(args)) => doctor::run(&args, &source),
        Some(Command::Ssh(args)) => ssh::run(&args, &source),
        Some(Command::Proxy(args)) => proxy::run(&args, &source),
        Some(Command::Connect(args)) => connect::run(&args, &source),
        Some(Command::Shell(args)) => shell::run(&args, &source),
        Some(Command::Forward(args)) => forward::run(&args, &source),
        Some(Command::SshConfig(args)) => ssh_config::run(&args, &source),
        Some(Command::Favorites(args)) => favorites::run(&args, &source),
        Some(Command::Recent(args)) => recent::run(&args, &source),
        Some(Command::Rdp(args)) => rdp::run(&args, &source),
        Some(Command::Keypair(args)) => keypair::run(&args, &source),
        Some(Command::Login(args)) => login::run(&args, &source),
        None => {
            // One window per user: a second launch brings the first forward and exits.
            let store_dir = source.store_dir();
            let instance = match store_dir.as_deref().map(|dir| {
                crate::single_instance::claim(dir, crate::single_instance::Request::Show)
            }) {
                Some(Ok(crate::single_instance::Claim::HandedOver)) => {
                    eprintln!("Bastionless is already running; its window was brought forward.");
                    return Ok(ExitCode::SUCCESS);
                }
                Some(Ok(crate::single_instance::Claim::First(instance))) => Some(instance),
                Some(Err(error)) => {
                    tracing::warn!("could not check for a running Bastionless: {error}");
                    None
                }
                None => None,
            };
            crate::tray::prepare(instance, store_dir);
            let engine = Engine::start(source.engine_config())
                .context("could not start the background engine")?;
            ui::run(engine)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_subcommand_means_the_window() {
        let cli = Cli::try_parse_from(["bastionless"]).expect("parses");
        assert!(cli.command.is_none());
        assert!(!cli.demo);
    }

    #[test]
    fn demo_is_accepted_before_and_after_the_subcommand() {
        for args in [
            ["bastionless", "--demo", "list", "--json"],
            ["bastionless", "list", "--demo", "--json"],
            ["bastionless", "list", "--json", "--demo"],
        ] {
            let cli = Cli::try_parse_from(args).expect("parses");
            assert!(cli.demo, "{args:?}");
            let Some(Command::List(list)) = cli.command else {
                panic!("{args:?} is not list")
            };
            assert!(list.json, "{args:?}");
        }
    }

    #[test]
    fn forward_needs_a_remote_port_and_takes_a_remote_host() {
        assert!(Cli::try_parse_from(["bastionless", "forward", "web-1"]).is_err());
        let cli = Cli::try_parse_from([
            "bastionless",
            "forward",
            "db-1",
            "--remote-port",
            "5432",
            "--remote-host",
            "mydb.internal",
            "--local-port",
            "15432",
        ])
        .expect("parses");
        let Some(Command::Forward(forward)) = cli.command else {
            panic!("not forward")
        };
        assert_eq!(forward.remote_port, 5432);
        assert_eq!(forward.local_port, Some(15432));
        assert_eq!(forward.remote_host.as_deref(), Some("mydb.internal"));
    }

    #[test]
    fn ssh_config_writes_only_when_asked() {
        let cli = Cli::try_parse_from(["bastionless", "ssh-config"]).expect("parses");
        let Some(Command::SshConfig(args)) = cli.command else {
            panic!("not ssh-config")
        };
        assert!(!args.write && !args.add_include);
        for subcommand in ["connect", "shell"] {
            assert!(Cli::try_parse_from(["bastionless", subcommand, "web-1"]).is_ok());
            assert!(Cli::try_parse_from(["bastionless", subcommand]).is_err());
        }
    }

    #[test]
    fn an_unknown_flag_is_rejected() {
        assert!(Cli::try_parse_from(["bastionless", "list", "--yaml"]).is_err());
    }
}
