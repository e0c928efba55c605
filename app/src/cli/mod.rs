//! The command line: no subcommand opens the window, each subcommand has a file of its own.
//!
//! `--demo` is global, so `bastionless --demo list` and `bastionless list --demo` both work.

pub mod doctor;
pub mod list;
pub mod proxy;
pub mod ssh;
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
}

/// Runs what the command line asked for and says how the process should exit.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let source = if cli.demo {
        AwsSource::demo()?
    } else {
        AwsSource::from_env()
    };
    match cli.command {
        Some(Command::List(args)) => list::run(&args, &source),
        Some(Command::Doctor(args)) => doctor::run(&args, &source),
        Some(Command::Ssh(args)) => ssh::run(&args, &source),
        Some(Command::Proxy(args)) => proxy::run(&args, &source),
        None => {
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
    fn an_unknown_flag_is_rejected() {
        assert!(Cli::try_parse_from(["bastionless", "list", "--yaml"]).is_err());
    }
}
