//! What the app sees of tunnels: one [`TunnelStatus`] per tunnel in every snapshot, and
//! [`TunnelEvent`]s for what deserves a toast (a refused or failed connection, a tunnel about to
//! reach its maximum duration).

use std::fmt;
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use crate::inventory::HostKey;

/// A tunnel's identity within one engine, in the order tunnels were asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TunnelId(pub u64);

impl fmt::Display for TunnelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "tunnel #{}", self.0)
    }
}

/// What the user asked a tunnel to reach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TunnelTarget {
    pub host: HostKey,
    /// What the user calls the host (its Name tag, else its id), for display.
    pub host_name: String,
    /// The port on the instance (22 for SSH, 3389 for RDP).
    pub remote_port: u16,
}

/// How a tunnel reaches the instance, as shown to the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteInfo {
    /// Through an EC2 Instance Connect Endpoint, with the profile's credentials.
    Eic {
        profile: String,
        endpoint_id: String,
    },
    /// Through Session Manager, with the profile's credentials.
    Ssm { profile: String },
}

/// Where the local end of a tunnel is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocalEnd {
    /// Not bound yet: the route is still being worked out.
    Pending,
    /// A listener on 127.0.0.1; every accepted connection gets its own tunnel connection.
    Listener(SocketAddr),
    /// This process's stdin and stdout (an `ssh -o ProxyCommand`).
    Stdio,
}

/// A tunnel's state, derived from its listener and its connections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TunnelState {
    /// Working out the route, or opening the first connection.
    Connecting,
    /// A listener waiting for local connections, none open.
    Listening,
    /// At least one connection is carrying bytes.
    Open,
    /// The Session Manager data channel was lost and is being restored (ResumeSession); the
    /// tunnel's connections wait and carry on once it is back.
    Resuming,
    /// The tunnel cannot work (or its only connection failed); the reason says what to do.
    Failed { reason: String },
    /// A stdio tunnel that ended normally.
    Closed,
}

/// One tunnel as the app shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct TunnelStatus {
    pub id: TunnelId,
    pub target: TunnelTarget,
    pub route: Option<RouteInfo>,
    pub local: LocalEnd,
    pub state: TunnelState,
    /// Bytes read locally and sent to the instance, over all connections.
    pub bytes_to_remote: u64,
    /// Bytes received from the instance and written locally, over all connections.
    pub bytes_from_remote: u64,
    /// Bytes per second to the instance, over the last second or so.
    pub rate_to_remote: u64,
    /// Bytes per second from the instance, over the last second or so.
    pub rate_from_remote: u64,
    /// Connections currently open or opening.
    pub open_connections: usize,
    /// Connections accepted so far, including refused and failed ones.
    pub connections_total: u64,
    /// When the tunnel was asked for.
    pub started: Instant,
    /// The most recent problem (a failed or refused connection), kept after the tunnel recovers.
    pub last_error: Option<String>,
    /// Times the route's connection to AWS was lost and restored (Session Manager resumes).
    pub resumes: u32,
    /// The round-trip time the route measures (Session Manager's acknowledgements), once it
    /// has a sample; `None` where the route measures none.
    pub rtt: Option<Duration>,
}

/// What a route knows about its link to AWS, for [`TunnelStatus`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct LinkHealth {
    /// The link is being restored now.
    pub resuming: bool,
    /// Restorations so far.
    pub resumes: u32,
    pub rtt: Option<Duration>,
}

impl TunnelStatus {
    /// How long ago the tunnel was asked for.
    pub fn age(&self) -> Duration {
        self.started.elapsed()
    }

    /// The listener's address, once bound.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        match self.local {
            LocalEnd::Listener(addr) => Some(addr),
            LocalEnd::Pending | LocalEnd::Stdio => None,
        }
    }

    /// Whether the tunnel is over (failed or closed) and only waits to be dismissed.
    pub fn is_finished(&self) -> bool {
        matches!(self.state, TunnelState::Failed { .. } | TunnelState::Closed)
    }
}

/// Something that happened to a tunnel that the user should hear about once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TunnelEvent {
    /// Increases by one per event, so a reader can tell which events it has shown.
    pub seq: u64,
    pub tunnel: TunnelId,
    pub at: SystemTime,
    pub kind: TunnelEventKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TunnelEventKind {
    /// A connection could not be opened, or broke; the tunnel itself keeps listening.
    ConnectionFailed { connection: u64, error: String },
    /// A local connection was turned away before any tunnel was opened for it.
    ConnectionRefused { reason: String },
    /// The endpoint will end this connection soon (EIC's maximum tunnel duration).
    EndingSoon {
        connection: u64,
        remaining: Duration,
    },
}

impl TunnelEventKind {
    /// Whether this is a failure rather than a warning.
    pub fn is_error(&self) -> bool {
        matches!(
            self,
            Self::ConnectionFailed { .. } | Self::ConnectionRefused { .. }
        )
    }
}

impl fmt::Display for TunnelEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            TunnelEventKind::ConnectionFailed { connection, error } => {
                write!(f, "{}, connection {connection}: {error}", self.tunnel)
            }
            TunnelEventKind::ConnectionRefused { reason } => {
                write!(f, "{}: refused a local connection: {reason}", self.tunnel)
            }
            TunnelEventKind::EndingSoon {
                connection,
                remaining,
            } => write!(
                f,
                "{}, connection {connection}: the endpoint will close it in {} s (its maximum \
                 tunnel duration); reconnect afterwards",
                self.tunnel,
                remaining.as_secs()
            ),
        }
    }
}
