//! Launching the system clients the user already trusts, pointed at Bastionless's tunnels.
//!
//! Builders here are pure (argument vectors from a description), so every command line is
//! unit-tested on every OS; spawning is left to the caller.

mod ssh;

pub use ssh::{SshCommand, known_hosts_file};
