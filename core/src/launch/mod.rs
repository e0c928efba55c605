//! Launching the system clients the user already trusts, pointed at Bastionless's tunnels.
//!
//! Builders here are pure (argument vectors from a description), so every command line is
//! unit-tested on every OS; spawning is left to the caller.

pub mod password_handover;
pub mod rdp;
pub mod settings;
mod ssh;
pub mod ssh_config;
pub mod terminal;
pub mod windows_password;

pub use ssh::{
    SshCommand, SshTransport, bastionless_proxy_command, data_dir, first_use_override,
    known_hosts_file, proxy_command,
};
