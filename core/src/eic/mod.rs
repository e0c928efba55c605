//! EC2 Instance Connect Endpoint (EIC) tunnels, client side: a TCP byte stream to a private
//! instance's port, carried over one WebSocket per connection, with no bastion host.
//!
//! The wire protocol is what `aws ec2-instance-connect open-tunnel` speaks (see
//! `shared/protocols/eic.md`): a SigV4-presigned `wss://<endpoint>/openTunnel?…` URL, a plain
//! RFC 6455 WebSocket, raw bytes in binary frames, and Close codes for errors.
//!
//! One file per idea:
//! - [`endpoint`](EndpointAddress): where to connect, validated (plain `ws://` only to loopback);
//! - `presign`: [`OpenTunnelUrl`], the presigned URL, a secret that never reaches a log;
//! - `proxy`: [`ProxySettings`], HTTP CONNECT proxies and `NO_PROXY`;
//! - `tls`: trust = OS roots + extra CA bundles, never switched off;
//! - `transport`: [`Connector`], TCP/proxy → TLS → WebSocket upgrade, with timeouts;
//! - `pump`: [`pump`], the bytes between a local stream and the WebSocket;
//! - `error`: [`EicError`], what went wrong and what to do about it;
//! - `choice`: [`choose_endpoint`], which endpoint carries a tunnel to an instance;
//! - `keys`: [`push_ephemeral_key`], a fresh Ed25519 key per connection via SendSSHPublicKey,
//!   and [`guess_os_user`].
//!
//! Typical use, once per accepted local connection:
//!
//! ```no_run
//! # async fn demo(local: tokio::net::TcpStream, creds: aws_credential_types::Credentials) -> Result<(), bastionless_core::eic::EicError> {
//! use bastionless_core::eic::*;
//! let connector = Connector::new(ConnectOptions { proxy: ProxySettings::from_env()?, ..Default::default() })?;
//! let request = TunnelRequest {
//!     endpoint: EndpointAddress::parse("eice-0123.abcd.ec2-instance-connect-endpoint.us-east-1.amazonaws.com")?,
//!     endpoint_id: "eice-0123".into(),
//!     private_ip: "10.0.1.23".parse().unwrap(),
//!     remote_port: 22,
//!     max_tunnel_duration: None,
//!     region: "us-east-1".into(),
//! };
//! let ws = connector.open_tunnel(&request, &creds, std::time::SystemTime::now()).await?;
//! let counters = TunnelCounters::new();
//! let ended = pump(local, ws, &counters).await?;
//! # let _ = ended; Ok(()) }
//! ```
//!
//! Not here: listing endpoints and instances (inventory), the 20-tunnels-per-endpoint cap and
//! listeners (the tunnel manager, `crate::tunnel`), and spawning ssh (launch).

mod choice;
mod endpoint;
mod error;
mod keys;
mod presign;
mod proxy;
mod pump;
pub(crate) mod tls;
pub(crate) mod transport;

pub use choice::{ChosenEndpoint, EndpointQuery, NoEndpoint, choose_endpoint};
pub use endpoint::EndpointAddress;
pub use error::{EicError, UpgradeRejection};
pub use keys::{
    DEFAULT_OS_USER, EphemeralKey, KEY_LIFETIME, KeyError, KeyFile, KeyTarget, LOGIN_USER_TAG,
    guess_os_user, push_ephemeral_key,
};
pub use presign::{MaxTunnelDuration, OpenTunnelUrl, TunnelRequest};
pub use proxy::{NoProxy, ProxySettings, ProxyUrl};
pub use pump::{CLOSE_WAIT, CloseInfo, MAX_FRAME_PAYLOAD, TunnelCounters, TunnelEnd, pump};
pub use transport::{ConnectOptions, Connector, DEFAULT_TIMEOUT, TunnelStream, TunnelWebSocket};
