//! The `bastionless` binary: parses the command line, sets up logging, and hands over to
//! [`bastionless::cli::run`].

use bastionless::cli::{self, Cli};
use clap::Parser;
use std::process::ExitCode;

/// mimalloc rather than the system allocator: an inventory refresh allocates heavily on many
/// threads at once (the SDK's per-call work, thousands of hosts), and glibc's malloc spent a
/// fifth of the engine's CPU there. With mimalloc a large refresh takes 1.87 s instead of
/// 2.28 s (`docs/benchmarks.md`, "Inventory at scale"). The benches declare the same.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
