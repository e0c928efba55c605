//! The `bastionless` binary: parses the command line, sets up logging, and hands over to
//! [`bastionless::cli::run`].

use bastionless::cli::{self, Cli};
use clap::Parser;
use std::process::ExitCode;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::LevelFilter;

fn main() -> ExitCode {
    let args = Cli::parse();
    // Logs go to stderr so `bastionless list --json` keeps stdout clean; `RUST_LOG` overrides.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            EnvFilter::builder()
                .with_default_directive(LevelFilter::WARN.into())
                .from_env_lossy(),
        )
        .init();
    match cli::run(args) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("bastionless: {error:#}");
            ExitCode::FAILURE
        }
    }
}
