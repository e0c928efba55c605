//! Bastionless core: every behaviour of the app, and no pixels.
//!
//! The app talks to one façade, [`engine::Engine`]: it sends [`engine::Command`]s and renders the
//! latest immutable [`engine::Snapshot`]. Everything below the engine is a capability with one job:
//!
//! - [`profiles`]: the AWS shared config and credentials files, read per profile, so that one broken
//!   section hides one profile and never the others.
//! - [`inventory`]: the fan-out over accounts and their enabled regions that finds EC2 instances,
//!   EC2 Instance Connect Endpoints and security groups, and the disk cache of the last result.
//! - [`route`]: which way to a host's port works (EC2 Instance Connect, Session Manager, direct),
//!   with the reasons, as pure functions over the inventory.
//! - [`eic`]: EC2 Instance Connect Endpoint tunnels (the WebSocket protocol, endpoint choice,
//!   ephemeral SSH keys).
//! - [`tunnel`]: the tunnel manager: loopback listeners and stdio pipes over a route, with stats.
//! - [`store`]: favorites, recent connections, per-host and app settings, kept as TOML files.
//! - [`engine`]: the background tokio runtime that owns all network work.
//! - [`launch`]: the system ssh and terminal command lines, and the `ssh_config` export.
//! - [`audit`]: the local log of ended tunnels and sessions.

pub mod audit;
pub mod eic;
pub mod engine;
pub mod inventory;
pub mod launch;
pub mod profiles;
pub mod route;
mod sdk_error;
pub mod secrets;
pub mod ssm;
pub mod sso;
pub mod store;
pub mod tunnel;
