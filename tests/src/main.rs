//! `bastionless-sim`: run the simulator by hand, e.g. to point the AWS CLI or the app at it.
//!
//! ```sh
//! eval "$(bastionless-sim)"            # the demo scenario
//! eval "$(bastionless-sim --scenario tests/scenarios/demo.toml)"
//! aws --profile prod ec2 describe-instances
//! ```
//!
//! The `export` lines on stdout (`AWS_CONFIG_FILE`, `AWS_SHARED_CREDENTIALS_FILE`,
//! `AWS_EC2_METADATA_DISABLED`, `AWS_CA_BUNDLE`) are all it prints there; logs go to stderr. It
//! serves HTTPS and WSS with a CA made for the run until SIGINT or SIGTERM, then removes the
//! files it wrote and stops the sshd servers it started.

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;
use bastionless_sim::{Clock, Scenario, SimOptions, Simulator};
use clap::Parser;
use tracing_subscriber::EnvFilter;

/// A faithful AWS stand-in on loopback.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// The scenario to simulate (TOML); the built-in demo scenario when omitted.
    #[arg(long, value_name = "FILE")]
    scenario: Option<PathBuf>,
    /// Serve plain HTTP and WS instead of HTTPS and WSS (loopback debugging only).
    #[arg(long)]
    plain_text: bool,
    /// Run pushed-key lifetimes and tunnel durations this many times faster than real time.
    #[arg(long, value_name = "FACTOR", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    clock_factor: u32,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();

    let scenario = match &args.scenario {
        Some(path) => Scenario::load(path)?,
        None => Scenario::demo(),
    };
    let mut options = SimOptions::default().clock(Clock::accelerated(args.clock_factor));
    if args.plain_text {
        options = options.plain_text();
    }
    let simulator = Simulator::start_with(scenario, options).await?;

    let mut stdout = std::io::stdout().lock();
    for (name, value) in simulator.env_vars() {
        writeln!(stdout, "export {name}={}", shell_quote(&value))?;
    }
    stdout.flush().context("cannot write to stdout")?;
    drop(stdout);

    let profiles: Vec<&str> = simulator
        .scenario()
        .profiles
        .iter()
        .map(|profile| profile.name.as_str())
        .collect();
    tracing::info!(
        endpoint = %simulator.endpoint_url(),
        tunnels = %simulator.tunnel_endpoint(),
        profiles = %profiles.join(", "),
        "simulating AWS; stop with Ctrl-C"
    );

    stop_signal().await?;
    tracing::info!("stopping");
    simulator.shutdown().await;
    Ok(())
}

/// Resolves on SIGINT (Ctrl-C) or, on Unix, SIGTERM.
async fn stop_signal() -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .context("cannot listen for SIGTERM")?;
        tokio::select! {
            interrupted = tokio::signal::ctrl_c() => interrupted.context("cannot listen for SIGINT"),
            _ = terminate.recv() => Ok(()),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c()
            .await
            .context("cannot listen for Ctrl-C")
    }
}

/// Single-quotes `value` for a POSIX shell.
fn shell_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}
