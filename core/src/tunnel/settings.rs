//! The tunnel manager's settings: how many connections we open through one endpoint, and the
//! `maxTunnelDuration` we ask for.

use std::fmt;

use crate::eic::MaxTunnelDuration;

/// How many of our own connections may run through one EC2 Instance Connect Endpoint at once.
///
/// AWS allows 20 per endpoint, across every client of that endpoint, and does not let that be
/// raised; the AWS CLI opens at most 10. Keeping below 20 leaves room for colleagues.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnectionCap(u8);

impl ConnectionCap {
    /// The AWS CLI's default (`--max-websocket-connections`).
    pub const DEFAULT: ConnectionCap = ConnectionCap(10);
    /// The service's limit per endpoint.
    pub const AWS_LIMIT: ConnectionCap = ConnectionCap(20);

    /// A cap of `connections`, which must be 1 to 20.
    pub fn new(connections: usize) -> Result<Self, InvalidCap> {
        match u8::try_from(connections) {
            Ok(n @ 1..=20) => Ok(Self(n)),
            _ => Err(InvalidCap(connections)),
        }
    }

    /// The number of connections.
    pub fn get(self) -> usize {
        usize::from(self.0)
    }
}

impl Default for ConnectionCap {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// A connection cap outside 1..=20.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidCap(pub usize);

impl fmt::Display for InvalidCap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} connections per endpoint is not possible: choose 1 to 20 (AWS allows 20 \
             concurrent connections per EC2 Instance Connect Endpoint)",
            self.0
        )
    }
}

impl std::error::Error for InvalidCap {}

/// Settings for every tunnel the manager opens from now on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TunnelSettings {
    /// Our own concurrent connections per endpoint; further local connections are refused.
    pub max_connections_per_endpoint: ConnectionCap,
    /// Sent as `maxTunnelDuration` when set (needed when an IAM policy caps it below 3600 s);
    /// the endpoint ends each connection after this long, or after 3600 s when unset.
    pub max_tunnel_duration: Option<MaxTunnelDuration>,
}

impl TunnelSettings {
    /// These settings with what the user saved in the app settings (the EIC connection cap;
    /// an out-of-range stored cap keeps the default).
    pub fn with_app_settings(self, app: &crate::store::AppSettings) -> Self {
        Self {
            max_connections_per_endpoint: ConnectionCap::new(usize::from(app.eic_connection_cap))
                .unwrap_or_default(),
            ..self
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_is_1_to_20_and_defaults_to_the_cli_s_10() {
        assert_eq!(ConnectionCap::default().get(), 10);
        assert_eq!(ConnectionCap::new(1).unwrap().get(), 1);
        assert_eq!(ConnectionCap::new(20).unwrap(), ConnectionCap::AWS_LIMIT);
        for bad in [0, 21, 300] {
            let error = ConnectionCap::new(bad).unwrap_err();
            assert!(error.to_string().contains("choose 1 to 20"), "{error}");
        }
    }
}
