//! Opening the data channel's WebSocket (spec §2): TCP (direct or through an HTTP CONNECT
//! proxy), TLS, then a plain RFC 6455 upgrade to the StreamUrl.
//!
//! The network pieces are EIC's (`crate::eic`): the same proxy and `NO_PROXY` handling, the
//! same trust (OS roots plus `AWS_CA_BUNDLE`/`ca_bundle`, never switched off), the same
//! per-phase timeouts and the same actionable errors. What differs is the upgrade: the
//! StreamUrl is used verbatim and no credentials go with it — the token travels in the first
//! text frame. No subprotocol and no extensions (so no permessage-deflate), like the plugin.
//!
//! The byte stream under the WebSocket comes from a [`Dial`], so tests can put the driver on
//! an in-memory pipe and run it on tokio's paused clock.

use std::fmt;
use std::io;
use std::pin::Pin;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::TlsConnector;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self};

use super::url::StreamUrl;
use crate::eic::transport::{USER_AGENT, classify_tls_error, connect_tcp};
use crate::eic::{ConnectOptions, EicError, EndpointAddress, TunnelStream};

/// Any byte stream a WebSocket can run on.
pub(crate) trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

/// The data channel's WebSocket.
pub(crate) type DataChannelSocket = WebSocketStream<Pin<Box<dyn Io>>>;

/// Opens byte streams to an endpoint. The network implementation is [`NetworkDial`].
pub(crate) trait Dial: Send + Sync {
    fn dial<'a>(
        &'a self,
        endpoint: &'a EndpointAddress,
    ) -> BoxFuture<'a, Result<Pin<Box<dyn Io>>, ConnectError>>;
}

/// Why the data channel's WebSocket could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// DNS, TCP, proxy or TLS trouble (the message says which and what to check).
    #[error("cannot open the Session Manager data channel: {0}")]
    Network(#[from] EicError),
    /// The service answered the upgrade with an HTTP error.
    #[error(
        "the Session Manager data channel ({host}) refused the WebSocket upgrade with HTTP \
         {status}{}",
        if *status >= 500 || *status == 429 { "; retry in a moment" } else { "" }
    )]
    Rejected { host: String, status: u16 },
    /// The upgrade failed for another reason (the connection broke, a bad reply).
    #[error("the WebSocket handshake with {host} failed: {reason}")]
    Handshake { host: String, reason: String },
}

impl ConnectError {
    /// Whether trying again (with a fresh token) may succeed. Trust, proxy and address
    /// problems will not fix themselves; a network blip or a 5xx may.
    pub fn is_retryable(&self) -> bool {
        match self {
            ConnectError::Network(error) => matches!(
                error,
                EicError::Resolve { .. }
                    | EicError::Connect { .. }
                    | EicError::ConnectTimeout { .. }
                    | EicError::HandshakeTimeout { .. }
                    | EicError::Handshake { .. }
                    | EicError::Tls { .. }
                    | EicError::ProxyProtocol { .. }
            ),
            ConnectError::Rejected { status, .. } => *status >= 500 || *status == 429,
            ConnectError::Handshake { .. } => true,
        }
    }
}

/// How a session reaches `ssmmessages`: proxy, extra trust, time limits. Build one per
/// profile (loading the OS trust store reads files) and share it; clones are cheap.
#[derive(Clone)]
pub struct DataChannelConnector {
    dial: Arc<dyn Dial>,
}

impl fmt::Debug for DataChannelConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DataChannelConnector")
            .finish_non_exhaustive()
    }
}

impl DataChannelConnector {
    /// A connector over the network with `options` (proxy, CA bundles, timeouts). Blocking
    /// file I/O: call it off the async hot path.
    pub fn new(options: ConnectOptions) -> Result<Self, EicError> {
        let tls = crate::eic::tls::client_config(&options.ca_bundles)?;
        Ok(DataChannelConnector {
            dial: Arc::new(NetworkDial { tls, options }),
        })
    }

    /// A connector whose byte streams come from `dial` (tests: in-memory pipes).
    #[cfg(test)]
    pub(crate) fn from_dial(dial: Arc<dyn Dial>) -> Self {
        DataChannelConnector { dial }
    }

    /// Opens the WebSocket for `url`.
    pub(crate) async fn connect(&self, url: &StreamUrl) -> Result<DataChannelSocket, ConnectError> {
        let endpoint = url.endpoint();
        let stream = self.dial.dial(endpoint).await?;
        let host = endpoint.host().to_owned();
        let mut request =
            url.expose_secret()
                .into_client_request()
                .map_err(|e| ConnectError::Handshake {
                    host: host.clone(),
                    reason: format!("the request could not be built ({})", safe_ws_error(&e)),
                })?;
        request
            .headers_mut()
            .insert("User-Agent", HeaderValue::from_static(USER_AGENT));
        let config = WebSocketConfig::default();
        match tokio_tungstenite::client_async_with_config(request, stream, Some(config)).await {
            Ok((socket, _response)) => Ok(socket),
            Err(tungstenite::Error::Http(response)) => Err(ConnectError::Rejected {
                host,
                status: response.status().as_u16(),
            }),
            Err(e) => Err(ConnectError::Handshake {
                host,
                reason: safe_ws_error(&e),
            }),
        }
    }
}

/// tungstenite's error text. None of its variants carries the URL today; cutting at the
/// first `?` keeps a query out of messages should one ever do so.
fn safe_ws_error(error: &tungstenite::Error) -> String {
    let text = error.to_string();
    text.split('?').next().unwrap_or_default().to_owned()
}

/// TCP (or a CONNECT proxy), then TLS unless the endpoint is loopback `ws://`.
struct NetworkDial {
    tls: Arc<ClientConfig>,
    options: ConnectOptions,
}

impl Dial for NetworkDial {
    fn dial<'a>(
        &'a self,
        endpoint: &'a EndpointAddress,
    ) -> BoxFuture<'a, Result<Pin<Box<dyn Io>>, ConnectError>> {
        Box::pin(async move {
            let tcp = self.connect_tcp(endpoint).await?;
            if !endpoint.uses_tls() {
                return Ok(Box::pin(TunnelStream::Plain(tcp)) as Pin<Box<dyn Io>>);
            }
            let host = endpoint.host().to_owned();
            let server_name =
                ServerName::try_from(host.clone()).map_err(|e| EicError::InvalidEndpoint {
                    address: host.clone(),
                    reason: e.to_string(),
                })?;
            let timeout = self.options.handshake_timeout;
            let tls = tokio::time::timeout(
                timeout,
                TlsConnector::from(self.tls.clone()).connect(server_name, tcp),
            )
            .await
            .map_err(|_| EicError::HandshakeTimeout {
                host: host.clone(),
                after: timeout,
            })?
            .map_err(|source: io::Error| classify_tls_error(host, source))?;
            Ok(Box::pin(TunnelStream::Tls(Box::new(tls))) as Pin<Box<dyn Io>>)
        })
    }
}

impl NetworkDial {
    async fn connect_tcp(
        &self,
        endpoint: &EndpointAddress,
    ) -> Result<tokio::net::TcpStream, EicError> {
        let timeout = self.options.connect_timeout;
        let proxy = self
            .options
            .proxy
            .proxy_for(endpoint.host(), endpoint.port());
        let attempt = async {
            match proxy {
                Some(proxy) => {
                    let label = format!("proxy {proxy}");
                    let mut tcp = connect_tcp(proxy.host(), proxy.port(), &label, timeout).await?;
                    proxy.connect_through(&mut tcp, endpoint).await?;
                    Ok(tcp)
                }
                None => {
                    let label = endpoint.host_port();
                    connect_tcp(endpoint.host(), endpoint.port(), &label, timeout).await
                }
            }
        };
        tokio::time::timeout(timeout, attempt)
            .await
            .map_err(|_| EicError::ConnectTimeout {
                target: endpoint.host_port(),
                after: timeout,
            })?
    }
}
