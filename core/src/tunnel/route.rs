//! How a tunnel reaches its instance, and how one connection over that route is opened.
//!
//! A [`Route`] is everything the manager needs to open connections without asking AWS anything
//! else: for EIC, the signed request's parameters, the [`Connector`] (proxy, CA bundles) and the
//! profile's credentials provider. The engine builds it from the inventory snapshot; tests build
//! it pointing at a local endpoint. For Session Manager, the route holds the profile's control
//! plane and the data channel's settings; in listener mode every connection is one stream of
//! a port-forwarding session — up to N sessions, started as connections need them, since one
//! session moves about 1 MB/s (`PortSessionPool`) — ended when the route is dropped (the tunnel
//! closed); in stdio mode the one connection is an `AWS-StartSSHSession`.

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_credential_types::provider::SharedCredentialsProvider;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::credentials::FreshCredentials;
use super::status::LinkHealth;
use super::{RouteInfo, TunnelError};
use crate::eic::{
    CloseInfo, Connector, MaxTunnelDuration, TunnelCounters, TunnelEnd, TunnelRequest,
    TunnelWebSocket,
};
use crate::ssm::session::{
    PoolError, PortSession, PortSessionPool, SessionConfig, SessionState, SessionStats,
    SessionStream, SsmSessionApi, StreamError, run_stdio,
};

/// How a tunnel reaches its instance.
///
/// One exists per tunnel, built once and kept behind an `Arc`, so the variants' size
/// difference costs a few hundred bytes per tunnel, never a copy on a hot path.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Route {
    /// Through an EC2 Instance Connect Endpoint: one WebSocket per connection.
    Eic(EicRoute),
    /// Through Session Manager and the instance's SSM Agent.
    Ssm(SsmRoute),
}

/// An EIC route: where to connect, and with what.
#[derive(Debug)]
pub struct EicRoute {
    profile: String,
    request: TunnelRequest,
    connector: Connector,
    credentials: FreshCredentials,
}

/// A Session Manager route: the instance, the port on it, and the profile's control plane.
#[derive(Debug)]
pub struct SsmRoute {
    profile: String,
    instance_id: String,
    port: u16,
    /// A host the instance forwards to (`AWS-StartPortForwardingSessionToRemoteHost`), instead
    /// of the port on the instance itself.
    remote_host: Option<String>,
    api: Arc<SsmSessionApi>,
    config: SessionConfig,
    /// The listener's port-forwarding sessions: started as connections need them, up to
    /// `sessions` of them, and ended when the route is dropped (the tunnel closed).
    pool: tokio::sync::OnceCell<PortSessionPool<SsmSessionApi>>,
    /// How many sessions the listener's connections are spread over.
    sessions: NonZeroUsize,
    /// What the tunnels panel shows of the sessions: resuming, resumes, RTT.
    link: Arc<std::sync::Mutex<SsmLink>>,
}

/// The listener's sessions as a status display sees them. Kept apart from the pool, whose lock
/// is held while a session starts, so a report never waits for AWS.
#[derive(Default)]
struct SsmLink {
    /// Each live session's counters and state.
    sessions: Vec<Box<dyn Fn() -> SessionStats + Send + Sync>>,
    /// Resumes of the sessions that have ended.
    earlier_resumes: u32,
    /// Called whenever a session's state changes (lost, resuming, open again).
    on_change: Option<Arc<dyn Fn() + Send + Sync>>,
}

impl std::fmt::Debug for SsmLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SsmLink")
            .field("sessions", &self.sessions.len())
            .field("earlier_resumes", &self.earlier_resumes)
            .finish_non_exhaustive()
    }
}

impl SsmRoute {
    /// A stream for one local connection, on one of the listener's sessions (the pool starts
    /// one when none can take it).
    async fn open_stream(&self) -> Result<SessionStream, TunnelError> {
        let pool = self.pool.get_or_init(|| async { self.new_pool() }).await;
        match pool.open_stream().await {
            // The session ended (timed out, terminated elsewhere) as the stream was asked
            // for; the pool drops it, and a second ask starts another.
            Err(PoolError::Stream(StreamError::Closed(_))) => pool.open_stream().await,
            opened => opened,
        }
        .map_err(|e| TunnelError::Ssm(e.to_string()))
    }

    fn new_pool(&self) -> PortSessionPool<SsmSessionApi> {
        let link = self.link.clone();
        PortSessionPool::new(
            self.api.clone(),
            &self.instance_id,
            self.port,
            self.remote_host.clone(),
            self.config.clone(),
            self.sessions,
        )
        .on_start(Box::new(move |session| follow(&link, session)))
    }

    fn health(&self) -> LinkHealth {
        let mut link = self.link.lock().unwrap_or_else(|p| p.into_inner());
        let mut health = LinkHealth::default();
        let mut ended = 0;
        link.sessions.retain(|read| {
            let stats = read();
            if matches!(stats.state, SessionState::Closed(_)) {
                ended += stats.resumes;
                return false;
            }
            health.resuming |= matches!(stats.state, SessionState::Resuming { .. });
            health.resumes += stats.resumes;
            health.rtt = match (health.rtt, stats.rtt) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            };
            true
        });
        link.earlier_resumes += ended;
        health.resumes += link.earlier_resumes;
        health
    }
}

/// Makes `session` one that [`SsmRoute::health`] reports, and calls the route's change hook
/// whenever its state changes (until the session ends).
fn follow(link: &std::sync::Mutex<SsmLink>, session: &PortSession) {
    let mut link = link.lock().unwrap_or_else(|p| p.into_inner());
    link.sessions.push(Box::new(session.stats_reader()));
    if let Some(on_change) = link.on_change.clone() {
        let mut state = session.state();
        tokio::spawn(async move {
            while state.changed().await.is_ok() {
                on_change();
            }
        });
    }
}

impl Route {
    /// A Session Manager route to `port` on `instance_id`, through `api` (the profile's control
    /// plane) with `config` (data channel connector, timeouts), its connections spread over up
    /// to `sessions` sessions.
    pub fn ssm(
        profile: impl Into<String>,
        instance_id: impl Into<String>,
        port: u16,
        api: SsmSessionApi,
        config: SessionConfig,
        sessions: NonZeroUsize,
    ) -> Self {
        Self::Ssm(SsmRoute {
            profile: profile.into(),
            instance_id: instance_id.into(),
            port,
            remote_host: None,
            api: Arc::new(api),
            config,
            pool: tokio::sync::OnceCell::new(),
            sessions,
            link: Default::default(),
        })
    }

    /// The same Session Manager route, forwarding to `host` as the instance reaches it (a
    /// database, another instance) instead of to the instance itself. EIC routes reach only
    /// the instance, so they are returned unchanged.
    pub fn to_remote_host(self, host: String) -> Self {
        match self {
            Self::Ssm(ssm) => Self::Ssm(SsmRoute {
                remote_host: Some(host),
                ..ssm
            }),
            eic @ Self::Eic(_) => eic,
        }
    }

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

    /// The link's health now: Session Manager's resumes; EIC's WebSockets carry no
    /// round-trip measure of their own, so nothing is known there.
    pub(super) fn health(&self) -> LinkHealth {
        match self {
            Self::Eic(_) => LinkHealth::default(),
            Self::Ssm(ssm) => ssm.health(),
        }
    }

    /// Calls `on_change` whenever the link's health changes (a Session Manager session lost
    /// or resumed), so the change is reported even while no bytes move.
    pub(super) fn on_link_change(&self, on_change: Arc<dyn Fn() + Send + Sync>) {
        if let Self::Ssm(ssm) = self {
            ssm.link.lock().unwrap_or_else(|p| p.into_inner()).on_change = Some(on_change);
        }
    }

    /// What the user sees of the route.
    pub fn info(&self) -> RouteInfo {
        match self {
            Self::Eic(eic) => RouteInfo::Eic {
                profile: eic.profile.clone(),
                endpoint_id: eic.request.endpoint_id.clone(),
            },
            Self::Ssm(ssm) => RouteInfo::Ssm {
                profile: ssm.profile.clone(),
            },
        }
    }

    /// The shared resource whose connection count is capped: the endpoint. Session Manager
    /// has no such cap.
    pub(super) fn slot_key(&self) -> Option<&str> {
        match self {
            Self::Eic(eic) => Some(&eic.request.endpoint_id),
            Self::Ssm(_) => None,
        }
    }

    /// How long the far side lets one connection live, when it says.
    pub(super) fn max_duration(&self) -> Option<Duration> {
        match self {
            Self::Eic(eic) => Some(Duration::from_secs(
                eic.request
                    .max_tunnel_duration
                    .unwrap_or(MaxTunnelDuration::MAX)
                    .as_secs(),
            )),
            Self::Ssm(_) => None,
        }
    }

    /// Opens one connection. EIC: fresh credentials, a freshly presigned URL, the WebSocket.
    /// SSM: a stream of the listener's session, or (`stdio`) a session of its own, started
    /// when the bytes start to flow.
    pub(super) async fn dial(&self, stdio: bool) -> Result<Dialed<'_>, TunnelError> {
        match self {
            Self::Ssm(ssm) if stdio => Ok(Dialed::SsmStdio(ssm)),
            Self::Ssm(ssm) => Ok(Dialed::Ssm(ssm.open_stream().await?)),
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
                Ok(Dialed::Eic(Box::new(ws)))
            }
        }
    }
}

/// One open connection over a route, ready to carry bytes.
pub(super) enum Dialed<'a> {
    Eic(Box<TunnelWebSocket>),
    Ssm(SessionStream),
    SsmStdio(&'a SsmRoute),
}

impl Dialed<'_> {
    /// Carries bytes between `local` and the instance until either side ends.
    pub(super) async fn carry<L>(
        self,
        local: L,
        counters: &TunnelCounters,
    ) -> Result<CloseInfo, TunnelError>
    where
        L: AsyncRead + AsyncWrite + Unpin,
    {
        let ended = |ended_by| CloseInfo {
            ended_by,
            code: None,
            reason: String::new(),
        };
        match self {
            Self::Eic(ws) => Ok(crate::eic::pump(local, *ws, counters).await?),
            Self::Ssm(mut stream) => {
                let mut local = Counted {
                    inner: local,
                    counters,
                };
                tokio::io::copy_bidirectional(&mut local, &mut stream)
                    .await
                    .map_err(|e| TunnelError::Ssm(format!("the connection failed: {e}")))?;
                Ok(ended(TunnelEnd::ConnectionEnded))
            }
            Self::SsmStdio(ssm) => {
                let local = Counted {
                    inner: local,
                    counters,
                };
                let (stdin, stdout) = tokio::io::split(local);
                run_stdio(
                    ssm.api.clone(),
                    &ssm.instance_id,
                    ssm.port,
                    stdin,
                    stdout,
                    ssm.config.clone(),
                )
                .await
                .map_err(|e| TunnelError::Ssm(e.to_string()))?;
                Ok(ended(TunnelEnd::ConnectionEnded))
            }
        }
    }
}

/// The local end of an SSM connection, counting bytes read (to the instance) and written
/// (from it).
struct Counted<'a, L> {
    inner: L,
    counters: &'a TunnelCounters,
}

impl<L: AsyncRead + Unpin> AsyncRead for Counted<'_, L> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = std::pin::Pin::new(&mut self.inner).poll_read(cx, buf);
        if polled.is_ready() {
            self.counters.add_to_remote(buf.filled().len() - before);
        }
        polled
    }
}

impl<L: AsyncWrite + Unpin> AsyncWrite for Counted<'_, L> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        data: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let polled = std::pin::Pin::new(&mut self.inner).poll_write(cx, data);
        if let std::task::Poll::Ready(Ok(n)) = polled {
            self.counters.add_from_remote(n);
        }
        polled
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
