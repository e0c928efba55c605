//! How a tunnel reaches its instance, and how one connection over that route is opened.
//!
//! A [`Route`] is everything the manager needs to open connections without asking AWS anything
//! else: for EIC, the signed request's parameters, the [`Connector`] (proxy, CA bundles) and the
//! profile's credentials provider. The engine builds it from the inventory snapshot; tests build
//! it pointing at a local endpoint. Session Manager becomes a second variant.

use std::time::{Duration, SystemTime};

use aws_credential_types::provider::SharedCredentialsProvider;
use tokio::io::{AsyncRead, AsyncWrite};

use super::credentials::FreshCredentials;
use super::{RouteInfo, TunnelError};
use crate::eic::{
    CloseInfo, Connector, MaxTunnelDuration, TunnelCounters, TunnelRequest, TunnelWebSocket,
};

/// How a tunnel reaches its instance.
#[derive(Debug)]
pub enum Route {
    /// Through an EC2 Instance Connect Endpoint: one WebSocket per connection.
    Eic(EicRoute),
}

/// An EIC route: where to connect, and with what.
#[derive(Debug)]
pub struct EicRoute {
    profile: String,
    request: TunnelRequest,
    connector: Connector,
    credentials: FreshCredentials,
}

impl Route {
    /// An EIC route for `request`, signed with credentials from `credentials` (the profile's
    /// provider), connecting through `connector`.
    pub fn eic(
        profile: impl Into<String>,
        request: TunnelRequest,
        connector: Connector,
        credentials: SharedCredentialsProvider,
    ) -> Self {
        Self::Eic(EicRoute {
            profile: profile.into(),
            request,
            connector,
            credentials: FreshCredentials::new(credentials),
        })
    }

    /// What the user sees of the route.
    pub fn info(&self) -> RouteInfo {
        match self {
            Self::Eic(eic) => RouteInfo::Eic {
                profile: eic.profile.clone(),
                endpoint_id: eic.request.endpoint_id.clone(),
            },
        }
    }

    /// The shared resource whose connection count is capped: the endpoint.
    pub(super) fn slot_key(&self) -> &str {
        match self {
            Self::Eic(eic) => &eic.request.endpoint_id,
        }
    }

    /// How long the far side lets one connection live.
    pub(super) fn max_duration(&self) -> Duration {
        match self {
            Self::Eic(eic) => Duration::from_secs(
                eic.request
                    .max_tunnel_duration
                    .unwrap_or(MaxTunnelDuration::MAX)
                    .as_secs(),
            ),
        }
    }

    /// Opens one connection: fresh credentials, a freshly presigned URL, the WebSocket.
    pub(super) async fn dial(&self) -> Result<Dialed, TunnelError> {
        match self {
            Self::Eic(eic) => {
                let now = SystemTime::now();
                let credentials =
                    eic.credentials
                        .get(now)
                        .await
                        .map_err(|reason| TunnelError::Credentials {
                            profile: eic.profile.clone(),
                            reason,
                        })?;
                let ws = eic
                    .connector
                    .open_tunnel(&eic.request, &credentials, now)
                    .await?;
                Ok(Dialed::Eic(ws))
            }
        }
    }
}

/// One open connection over a route, ready to carry bytes.
pub(super) enum Dialed {
    Eic(TunnelWebSocket),
}

impl Dialed {
    /// Carries bytes between `local` and the instance until either side ends.
    pub(super) async fn carry<L>(
        self,
        local: L,
        counters: &TunnelCounters,
    ) -> Result<CloseInfo, TunnelError>
    where
        L: AsyncRead + AsyncWrite,
    {
        match self {
            Self::Eic(ws) => Ok(crate::eic::pump(local, ws, counters).await?),
        }
    }
}
