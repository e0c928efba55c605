//! Opening the tunnel's WebSocket: TCP (direct or through an HTTP CONNECT proxy), TLS, then the
//! RFC 6455 upgrade.
//!
//! Each layer is done here rather than by `tokio_tungstenite::connect_async` because that
//! function can neither go through a proxy nor trust extra CAs, and because each phase needs
//! its own timeout and its own actionable error (AWS CLI issue #8880: a connect that never
//! times out hangs forever). The phases and their limits:
//!
//! 1. connect timeout: DNS, TCP connect, and the proxy's CONNECT reply;
//! 2. handshake timeout: TLS handshake and the WebSocket upgrade.
//!
//! The upgrade request is what the CLI sends: `GET /openTunnel?<presigned query>` with `Host`,
//! the WebSocket headers and a `User-Agent`; no subprotocol and no extensions (so no
//! permessage-deflate). The presigned URL goes into the request and nowhere else: no log line,
//! no error.

use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, handshake::client::Response};

use super::proxy::ProxySettings;
use super::{EicError, EndpointAddress, OpenTunnelUrl, TunnelRequest, UpgradeRejection};

/// Default for both [`ConnectOptions::connect_timeout`] and [`ConnectOptions::handshake_timeout`].
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// The WebSocket of one open tunnel.
pub type TunnelWebSocket = WebSocketStream<TunnelStream>;

/// How to reach endpoints: proxy, extra trust, and time limits.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// Proxy and `NO_PROXY` rules; [`ProxySettings::from_env`] reads the usual variables.
    pub proxy: ProxySettings,
    /// PEM files whose certificates are trusted in addition to the OS store: `AWS_CA_BUNDLE`
    /// if set, else the profile's `ca_bundle`.
    pub ca_bundles: Vec<PathBuf>,
    /// Limit for DNS + TCP connect + proxy CONNECT.
    pub connect_timeout: Duration,
    /// Limit for the TLS handshake + WebSocket upgrade.
    pub handshake_timeout: Duration,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        Self {
            proxy: ProxySettings::direct(),
            ca_bundles: Vec::new(),
            connect_timeout: DEFAULT_TIMEOUT,
            handshake_timeout: DEFAULT_TIMEOUT,
        }
    }
}

/// Opens EIC tunnel WebSockets. Build one per profile (it loads the OS trust store once) and
/// share it; cloning is cheap.
#[derive(Clone)]
pub struct Connector {
    tls: Arc<ClientConfig>,
    options: Arc<ConnectOptions>,
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connector")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl Connector {
    /// Loads the OS trust store plus `options.ca_bundles`. Blocking file I/O: call it off the
    /// async hot path (or in `spawn_blocking`).
    pub fn new(options: ConnectOptions) -> Result<Self, EicError> {
        let tls = super::tls::client_config(&options.ca_bundles)?;
        Ok(Self {
            tls,
            options: Arc::new(options),
        })
    }

    /// Presigns a fresh URL for `request` at `now` and opens its WebSocket. Call once per tunnel
    /// connection: a URL is single-use and expires after 60 seconds.
    pub async fn open_tunnel(
        &self,
        request: &TunnelRequest,
        credentials: &Credentials,
        now: SystemTime,
    ) -> Result<TunnelWebSocket, EicError> {
        let url = OpenTunnelUrl::presign(request, credentials, now)?;
        tracing::debug!(
            endpoint = %request.endpoint,
            endpoint_id = %request.endpoint_id,
            target = %request.private_ip,
            port = request.remote_port,
            "opening EIC tunnel"
        );
        self.connect(&url).await
    }

    /// Opens the WebSocket for an already presigned URL.
    pub async fn connect(&self, url: &OpenTunnelUrl) -> Result<TunnelWebSocket, EicError> {
        let endpoint = url.endpoint();
        let connect_timeout = self.options.connect_timeout;
        let handshake_timeout = self.options.handshake_timeout;

        let proxy = self
            .options
            .proxy
            .proxy_for(endpoint.host(), endpoint.port());
        let tcp = tokio::time::timeout(connect_timeout, async {
            match proxy {
                Some(proxy) => {
                    tracing::debug!(%endpoint, %proxy, "connecting through proxy");
                    let mut tcp = connect_tcp(
                        proxy.host(),
                        proxy.port(),
                        &format!("proxy {proxy}"),
                        connect_timeout,
                    )
                    .await?;
                    proxy.connect_through(&mut tcp, endpoint).await?;
                    Ok(tcp)
                }
                None => {
                    connect_tcp(
                        endpoint.host(),
                        endpoint.port(),
                        &endpoint.host_port(),
                        connect_timeout,
                    )
                    .await
                }
            }
        })
        .await
        .map_err(|_| EicError::ConnectTimeout {
            target: proxy.map_or_else(
                || endpoint.host_port(),
                |p| format!("{} via proxy {p}", endpoint.host_port()),
            ),
            after: connect_timeout,
        })??;

        tokio::time::timeout(handshake_timeout, async {
            let stream = if endpoint.uses_tls() {
                TunnelStream::Tls(Box::new(self.tls_handshake(endpoint, tcp).await?))
            } else {
                TunnelStream::Plain(tcp)
            };
            websocket_handshake(url, stream).await
        })
        .await
        .map_err(|_| EicError::HandshakeTimeout {
            host: endpoint.host().to_owned(),
            after: handshake_timeout,
        })?
    }

    async fn tls_handshake(
        &self,
        endpoint: &EndpointAddress,
        tcp: TcpStream,
    ) -> Result<TlsStream<TcpStream>, EicError> {
        let host = endpoint.host().to_owned();
        let server_name =
            ServerName::try_from(host.clone()).map_err(|e| EicError::InvalidEndpoint {
                address: host.clone(),
                reason: e.to_string(),
            })?;
        TlsConnector::from(self.tls.clone())
            .connect(server_name, tcp)
            .await
            .map_err(|source| classify_tls_error(host, source))
    }
}

/// Resolves `host` and connects to the first address that accepts, giving each address an equal
/// share of `budget` so that one black-holed address (say, IPv6 on a network that drops it)
/// cannot use up the whole connect timeout. Names the phase that failed.
pub(crate) async fn connect_tcp(
    host: &str,
    port: u16,
    label: &str,
    budget: Duration,
) -> Result<TcpStream, EicError> {
    let addrs: Vec<_> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|source| EicError::Resolve {
            host: host.to_owned(),
            source,
        })?
        .collect();
    let per_address = budget / u32::try_from(addrs.len().max(1)).unwrap_or(u32::MAX);
    let mut last_error = io::Error::new(io::ErrorKind::NotFound, "the name resolved to no address");
    for addr in addrs {
        let attempt = tokio::time::timeout(per_address, TcpStream::connect(addr))
            .await
            .unwrap_or_else(|_| Err(io::Error::new(io::ErrorKind::TimedOut, "no answer")));
        match attempt {
            Ok(tcp) => {
                // Tunnels carry interactive SSH/RDP: don't let Nagle hold keystrokes back.
                tcp.set_nodelay(true).map_err(|source| EicError::Connect {
                    target: label.to_owned(),
                    source,
                })?;
                return Ok(tcp);
            }
            Err(e) => {
                tracing::debug!(%addr, error = %e, "TCP connect failed, trying the next address");
                last_error = e;
            }
        }
    }
    Err(EicError::Connect {
        target: label.to_owned(),
        source: last_error,
    })
}

/// Certificate problems get their own variant: they are the ones a user fixes with a CA bundle.
pub(crate) fn classify_tls_error(host: String, source: io::Error) -> EicError {
    match source
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        Some(rustls::Error::InvalidCertificate(reason)) => EicError::Certificate {
            host,
            reason: reason.to_string(),
        },
        _ => EicError::Tls { host, source },
    }
}

/// `User-Agent` of the upgrade request (unsigned, so free-form).
pub(crate) const USER_AGENT: &str = concat!("bastionless/", env!("CARGO_PKG_VERSION"));

async fn websocket_handshake(
    url: &OpenTunnelUrl,
    stream: TunnelStream,
) -> Result<TunnelWebSocket, EicError> {
    let host = url.endpoint().host().to_owned();
    let handshake_error = |reason: String| EicError::Handshake {
        host: host.clone(),
        reason,
    };
    let mut request = url.expose_secret().into_client_request().map_err(|e| {
        handshake_error(format!(
            "the request could not be built ({})",
            safe_ws_error(&e)
        ))
    })?;
    request
        .headers_mut()
        .insert("User-Agent", HeaderValue::from_static(USER_AGENT));

    // Default limits (16 MiB frames, 64 MiB messages): the server's frames are not ours to cap.
    let config = WebSocketConfig::default();
    match tokio_tungstenite::client_async_with_config(request, stream, Some(config)).await {
        Ok((ws, response)) => {
            if let Some(id) = request_id(&response) {
                tracing::debug!(request_id = %id, "OpenTunnel RequestId");
            }
            Ok(ws)
        }
        Err(tungstenite::Error::Http(response)) => {
            let rejection = UpgradeRejection::from_response(&response);
            tracing::debug!(status = rejection.status, request_id = ?rejection.request_id, "openTunnel upgrade refused");
            Err(EicError::UpgradeRejected(rejection))
        }
        Err(e) => Err(handshake_error(safe_ws_error(&e))),
    }
}

fn request_id(response: &Response) -> Option<String> {
    response
        .headers()
        .get("x-amzn-requestid")
        .and_then(|v| v.to_str().ok())
        .map(super::error::scrub)
}

/// tungstenite's error text, minus anything that could echo the request (none of its variants
/// carry the URL today; this keeps it that way if one ever does).
fn safe_ws_error(error: &tungstenite::Error) -> String {
    super::error::scrub(&error.to_string())
}

/// The byte stream under a tunnel's WebSocket: TLS to the endpoint, or plain TCP to loopback.
#[derive(Debug)]
pub enum TunnelStream {
    /// Plain TCP; only ever to a loopback address (see [`EndpointAddress`]).
    Plain(TcpStream),
    /// TLS over TCP (possibly through a CONNECT proxy).
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for TunnelStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            TunnelStream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            TunnelStream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for TunnelStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            TunnelStream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            TunnelStream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            TunnelStream::Plain(s) => Pin::new(s).poll_flush(cx),
            TunnelStream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            TunnelStream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            TunnelStream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            TunnelStream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            TunnelStream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            TunnelStream::Plain(s) => s.is_write_vectored(),
            TunnelStream::Tls(s) => s.is_write_vectored(),
        }
    }
}
