//! The session driver: the async part of Session Manager sessions, over the sans-IO
//! [`proto`](super::proto) and [`mux`](super::mux) state machines.
//!
//! It does what the `session-manager-plugin` does after `ssm:StartSession`, for port
//! forwarding and `AWS-StartSSHSession`: the WebSocket to `ssmmessages`, the OpenDataChannel
//! frame, the loop between the socket, the state machines and local streams, pacing, pings,
//! resume after a lost connection (including the service's hourly rotation), and termination.
//!
//! What the tunnel manager uses:
//! - [`PortSession::start`] → [`PortSession::open_stream`] once per accepted local
//!   connection (an `AsyncRead + AsyncWrite` [`SessionStream`]), [`PortSession::stats`] /
//!   [`PortSession::state`], [`PortSession::close`];
//! - [`run_stdio`] for `ssh -o ProxyCommand`;
//! - [`run_shell`] for `bastionless shell` (an interactive shell on the user's terminal);
//! - [`PortSessionPool`] to spread parallel connections over several sessions;
//! - [`SsmSessionApi`] (the real control plane, from a profile's `SdkConfig`) and a
//!   [`DataChannelConnector`] (proxy, CA bundles, timeouts) in a [`SessionConfig`].
//!
//! ```no_run
//! # async fn demo(sdk: aws_types::SdkConfig, mut local: tokio::net::TcpStream) -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use bastionless_core::eic::{ConnectOptions, ProxySettings};
//! use bastionless_core::ssm::session::*;
//! let connector = DataChannelConnector::new(ConnectOptions {
//!     proxy: ProxySettings::from_env()?,
//!     ..Default::default()
//! })?;
//! let api = Arc::new(SsmSessionApi::new(&sdk));
//! let session = PortSession::start(api, "i-0123456789abcdef0", 5432, None, SessionConfig::new(connector)).await?;
//! // Once per accepted local connection:
//! let mut stream = session.open_stream().await?;
//! tokio::io::copy_bidirectional(&mut local, &mut stream).await?;
//! session.close().await?;
//! # Ok(()) }
//! ```
//!
//! One file per idea: `api` (the control-plane trait and its errors) and `aws` (its
//! `aws-sdk-ssm` implementation); `url` (the StreamUrl, a secret); `connect` (the WebSocket);
//! `config`, `backoff` (resume timing) and `pacer` (message rate); `driver` (the task, resume
//! and termination) and `connection` (the loop over one WebSocket); `plane` (mux, basic and
//! stream data planes) and `stream` (the local end); `state` (what the outside sees); `port`,
//! `stdio`, `shell` and `pool` (the surfaces above); `error`.

mod api;
mod aws;
mod backoff;
mod config;
mod connect;
mod connection;
mod driver;
mod error;
mod pacer;
mod plane;
mod pool;
mod port;
mod shell;
mod state;
mod stdio;
mod stream;
mod url;

pub use api::{
    ApiError, SessionApi, SessionDocument, SessionToken, StartSessionRequest, StartedSession,
};
pub use aws::SsmSessionApi;
pub use backoff::ResumePolicy;
pub use config::SessionConfig;
pub use connect::{ConnectError, DataChannelConnector};
pub use error::SessionError;
pub use plane::StreamError;
pub use pool::{PoolError, PortSessionPool, SessionObserver};
pub use port::PortSession;
pub use shell::{ShellExit, run_shell};
pub use state::{SessionEnd, SessionState, SessionStats};
pub use stdio::run_stdio;
pub use stream::SessionStream;
pub use url::StreamUrl;

#[cfg(test)]
mod tests;
