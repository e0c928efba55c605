//! The control-plane HTTPS server: one loopback port for every simulated service.
//!
//! Each request goes through the same steps as at AWS: pick the service from the signature's
//! credential scope, authenticate, run the action, and answer in that service's wire format
//! with a request id. Connections are HTTP/1.1 (hyper), over the run's TLS by default.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::auth;
use crate::error::Protocol;
use crate::faults::Outcome;
use crate::listener::{BoxedIo, Listener, ShutdownSignal, stopped};
use crate::service::Service;
use crate::sigv4::{HttpRequest, SigV4Error};
use crate::world::{SignedCall, World};

/// Larger bodies than any control-plane call sends are refused.
const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Serves the control plane on `listener` until the returned [`Listener`] is stopped.
pub fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    world: Arc<World>,
) -> std::io::Result<Listener> {
    let app = Router::new().fallback(control_plane).with_state(world);
    Listener::serve("control plane", listener, tls, move |io, peer, shutdown| {
        serve_connection(app.clone(), io, peer, shutdown)
    })
}

/// One HTTP/1.1 connection, keep-alive included, until the client leaves or the simulator
/// stops (then the request in flight finishes and the connection closes).
async fn serve_connection(
    app: Router,
    io: BoxedIo,
    peer: SocketAddr,
    mut shutdown: ShutdownSignal,
) {
    let service = TowerToHyperService::new(app);
    // A response marked `DropConnection` becomes an error, on which hyper closes the
    // connection without writing anything: what a client sees when a connection is reset.
    let service = hyper::service::service_fn(move |request| {
        let answer = hyper::service::Service::call(&service, request);
        async move {
            let Ok(response) = answer.await;
            if response.extensions().get::<DropConnection>().is_some() {
                Err(std::io::Error::other(
                    "connection dropped by an injected fault",
                ))
            } else {
                Ok(response)
            }
        }
    });
    let connection =
        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(io), service);
    tokio::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        () = stopped(&mut shutdown) => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(error) = result {
        tracing::debug!(%peer, %error, "control-plane connection ended with an error");
    }
}

/// Marks a response that must not be sent: the connection is closed instead.
#[derive(Debug, Clone, Copy)]
struct DropConnection;

async fn control_plane(State(world): State<Arc<World>>, request: Request) -> Response {
    let request_id = world.request_ids.next();
    let (parts, body) = request.into_parts();
    let Ok(body) = to_bytes(body, MAX_BODY_BYTES).await else {
        return (
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "bastionless-sim could not read the request body (it accepts at most {MAX_BODY_BYTES} bytes)"
            ),
        )
            .into_response();
    };
    let request = HttpRequest {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query().unwrap_or(""),
        headers: &parts.headers,
        body: &body,
    };
    // IAM Identity Center's OIDC and portal calls are not SigV4-signed.
    if let Some(response) = crate::sso::serve(&world, &request, &request_id) {
        return response;
    }
    let service = match Service::of_request(&request) {
        Ok(service) => service,
        Err(message) => {
            tracing::warn!(%request_id, "{message}");
            return (StatusCode::BAD_REQUEST, message).into_response();
        }
    };

    let outcome = match auth::authenticate_signed(&world.scenario, &request, Utc::now()) {
        Ok((caller, _)) if world.faults.credentials_expired(&caller.profile.name) => {
            tracing::info!(%request_id, profile = %caller.profile.name, "credentials expired (injected)");
            Err(service.auth_error(&auth::AuthError::ExpiredToken))
        }
        Ok((caller, signed_by)) => {
            let action = service.action(&request).unwrap_or_default();
            world.calls.record(&action);
            world.trail.record(SignedCall {
                action: action.clone(),
                access_key_id: signed_by.access_key_id,
                credentials_expire: signed_by.expires,
                at: Utc::now(),
            });
            let decision = world.faults.decide(&action, caller.region);
            if !decision.delay.is_zero() {
                tokio::time::sleep(decision.delay).await;
            }
            let outcome = match decision.outcome {
                Outcome::Proceed => service.call(&world, caller, &request, &request_id),
                Outcome::Throttle => Err(service.throttling_error()),
                Outcome::ServerError => Err(service.server_error()),
                Outcome::Reset => {
                    tracing::info!(%request_id, %action, "dropping the connection (injected)");
                    let mut response = Response::default();
                    response.extensions_mut().insert(DropConnection);
                    return response;
                }
            };
            tracing::info!(
                %request_id,
                service = service.signing_name(),
                profile = %caller.profile.name,
                region = caller.region,
                error = outcome.as_ref().err().map(|e| e.code),
                "call"
            );
            outcome
        }
        Err(error) => {
            if let auth::AuthError::Signature(SigV4Error::SignatureMismatch {
                canonical_request,
                string_to_sign,
            }) = &error
            {
                tracing::warn!(
                    %request_id,
                    service = service.signing_name(),
                    "signature mismatch; the simulator's canonical request was:\n{canonical_request}\n--- string to sign:\n{string_to_sign}"
                );
            } else {
                tracing::warn!(%request_id, service = service.signing_name(), ?error, "not authenticated");
            }
            Err(service.auth_error(&error))
        }
    };

    let (status, document, error_code) = match outcome {
        Ok(document) => (StatusCode::OK, document, None),
        Err(error) => (
            error.status,
            service.protocol().error_body(&error, &request_id),
            Some(error.code),
        ),
    };
    let mut response = (status, Body::from(document)).into_response();
    let headers = response.headers_mut();
    if let (Protocol::Json, Some(code)) = (service.protocol(), error_code) {
        headers.insert("x-amzn-errortype", HeaderValue::from_static(code));
    }
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(service.content_type()),
    );
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        headers.insert("x-amzn-requestid", value);
    }
    response
}
