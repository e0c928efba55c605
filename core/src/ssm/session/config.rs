//! Tuning for one session: how it connects, paces, keeps alive, resumes and ends.
//!
//! The defaults follow the spec's recommendations (§8, §9, §12) where the plugin's own values
//! are known to hurt: WebSocket pings every 30 s rather than 5 min (friendlier to proxies and
//! NAT), resuming for 3 minutes rather than ~6 s, and pacing instead of a 1 ms sleep.

use std::num::NonZeroU32;
use std::time::Duration;

use super::backoff::ResumePolicy;
use super::connect::DataChannelConnector;
use crate::ssm::proto::ChannelConfig;

/// See the module documentation. Build with [`SessionConfig::new`] and adjust fields.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// How to reach `ssmmessages` (proxy, CA bundles, connect timeouts).
    pub connector: DataChannelConnector,
    /// The data channel: payload size (1024 by default, spec §9), buffers, ack timeout.
    pub channel: ChannelConfig,
    /// At most this many stream messages (new or retransmitted) in any one-second window.
    /// The service is reported to drop connections above 1000.
    pub max_messages_per_second: NonZeroU32,
    /// How often a WebSocket Ping ("keepalive") is sent; the first goes out on connect.
    pub ping_interval: Duration,
    /// A connection on which nothing at all (not even a Pong) arrived for this long is taken
    /// as lost and resumed (the plugin never notices, spec §9 issue #47).
    pub liveness_timeout: Duration,
    /// How persistently a lost connection is resumed.
    pub resume: ResumePolicy,
    /// How long starting may take, from StartSession to the agent's completed handshake,
    /// including connection retries.
    pub open_timeout: Duration,
    /// After the TerminateSession flag, how long to wait for its acknowledgement before
    /// calling the TerminateSession API and dropping the connection.
    pub terminate_wait: Duration,
    /// Bytes buffered per local stream in each direction before it pushes back.
    pub stream_buffer: usize,
}

impl SessionConfig {
    /// The defaults, with `connector`.
    pub fn new(connector: DataChannelConnector) -> Self {
        SessionConfig {
            connector,
            channel: ChannelConfig::default(),
            max_messages_per_second: NonZeroU32::new(900).expect("non-zero"),
            ping_interval: Duration::from_secs(30),
            liveness_timeout: Duration::from_secs(90),
            resume: ResumePolicy::default(),
            open_timeout: Duration::from_secs(30),
            terminate_wait: Duration::from_secs(2),
            stream_buffer: 256 * 1024,
        }
    }
}
