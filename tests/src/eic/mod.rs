//! The EC2 Instance Connect Endpoint data plane: the `openTunnel` WebSocket server.
//!
//! One listener (TLS with the run's CA by default) stands in for every endpoint of the
//! scenario; `DescribeInstanceConnectEndpoints` reports its address as each endpoint's
//! `DnsName`, and the presigned URL's `instanceConnectEndpointId` says which endpoint a client
//! means. Each connection is one tunnel, as with AWS:
//!
//! 1. the upgrade request is checked (`admission`): refused with an HTTP status and a JSON body
//!    when the URL, its parameters, the caller's permissions or the endpoint are wrong;
//! 2. after `101 Switching Protocols` the endpoint connects to the target (`relay`): when it
//!    cannot, the tunnel closes with "Unable to connect to target";
//! 3. binary frames carry the TCP bytes both ways until either side ends, the simulator stops,
//!    or `maxTunnelDuration` (simulated clock) runs out.

mod admission;
mod relay;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::HeaderValue;

use crate::listener::{BoxedIo, Listener, ShutdownSignal};
use crate::world::World;

/// How long a client may take to send its upgrade request.
const UPGRADE_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `openTunnel` on `listener` until the returned [`Listener`] is stopped.
pub fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    world: Arc<World>,
) -> std::io::Result<Listener> {
    Listener::serve(
        "EC2 Instance Connect Endpoint",
        listener,
        tls,
        move |io, peer, shutdown| tunnel(Arc::clone(&world), io, peer, shutdown),
    )
}

#[expect(
    clippy::result_large_err,
    reason = "tungstenite's handshake callback returns its ErrorResponse by value"
)]
async fn tunnel(world: Arc<World>, io: BoxedIo, peer: SocketAddr, shutdown: ShutdownSignal) {
    let request_id = world.request_ids.next();
    let mut admitted = None;
    let check = |request: &Request, mut response: Response| -> Result<Response, ErrorResponse> {
        // The presigned URL is a bearer credential: it goes into no log line.
        match admission::admit(&world, request, peer, Utc::now()) {
            Ok(admission) => {
                tracing::info!(
                    %request_id,
                    endpoint_id = %admission.endpoint_id,
                    target = %admission.private_ip,
                    port = admission.remote_port,
                    "openTunnel accepted"
                );
                if let Ok(id) = HeaderValue::from_str(&request_id) {
                    response.headers_mut().insert("x-amzn-requestid", id);
                }
                admitted = Some(admission);
                Ok(response)
            }
            Err(rejection) => {
                tracing::info!(
                    %request_id,
                    status = rejection.status.as_u16(),
                    code = rejection.code,
                    message = %rejection.message,
                    "openTunnel refused"
                );
                Err(rejection.response(&request_id))
            }
        }
    };
    // Default limits, no extensions: the CLI offers no permessage-deflate and we accept none.
    let upgrade = tokio_tungstenite::accept_hdr_async_with_config(io, check, None);
    match tokio::time::timeout(UPGRADE_TIMEOUT, upgrade).await {
        Ok(Ok(websocket)) => {
            if let Some(admitted) = admitted {
                relay::run(&world, websocket, admitted, shutdown).await;
            }
        }
        Ok(Err(error)) => tracing::debug!(%peer, %error, "openTunnel upgrade did not complete"),
        Err(_) => tracing::debug!(%peer, "openTunnel upgrade timed out"),
    }
}
