//! The `bastionless` binary: parses the command line, sets up logging, and hands over to
//! [`bastionless::cli::run`].

use bastionless::cli::{self, Cli};
use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args = Cli::parse();
    // Logs go to stderr so `bastionless list --json` keeps stdout clean (`RUST_LOG` overrides),
    // and, redacted, to the window's log view.
    bastionless::logging::init();
    match cli::run(args) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("bastionless: {error:#}");
            ExitCode::FAILURE
        }
    }
}
