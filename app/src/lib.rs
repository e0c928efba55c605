//! Bastionless, the binary's library half.
//!
//! `main.rs` only parses arguments and sets up logging; everything it runs lives here so the
//! integration tests can build the GUI state ([`ui::BastionlessApp`]) and the CLI exactly as the
//! binary does, without a window or a subprocess.

pub mod aws_source;
pub mod cli;
pub mod logging;
pub mod single_instance;
pub mod tray;
pub mod ui;
