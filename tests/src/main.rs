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
use bastionless_sim::scenario::{DEMO_TOML, GenerateSpec, generate_toml};
use bastionless_sim::{Clock, Scenario, SimOptions, Simulator};
use clap::Parser;
use tracing_subscriber::EnvFilter;

/// A faithful AWS stand-in on loopback.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// The scenario to simulate (TOML); the built-in demo scenario when omitted.
    #[arg(long, value_name = "FILE", conflicts_with = "generate")]
    scenario: Option<PathBuf>,
    /// Simulate a large generated scenario instead, e.g. `profiles=30,regions=17,instances=200`
    /// (instances per account; `accounts=N` shares N accounts between the profiles).
    #[arg(long, value_name = "SPEC")]
    generate: Option<GenerateSpec>,
    /// Print the scenario's TOML on stdout and exit, without starting anything.
    #[arg(long)]
    print_scenario: bool,
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

    if args.print_scenario {
        let text = match (&args.scenario, &args.generate) {
            (Some(path), _) => std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the scenario {}", path.display()))?,
            (None, Some(spec)) => generate_toml(spec),
            (None, None) => DEMO_TOML.to_owned(),
        };
        print!("{text}");
        return Ok(());
    }
    let scenario = match (&args.scenario, &args.generate) {
        (Some(path), _) => Scenario::load(path)?,
        (None, Some(spec)) => Scenario::generate(spec)?,
        (None, None) => Scenario::demo(),
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
    for (name, file) in simulator.key_pair_files() {
        tracing::info!(
            "Windows key pair {name}: bastionless keypair import {name} --file {}",
            file.display()
        );
    }

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
