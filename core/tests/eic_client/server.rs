//! A tiny stand-in for an EIC endpoint on 127.0.0.1: a throwaway CA, a TLS (or plain) listener,
//! and a scripted WebSocket server built on tokio-tungstenite's server side. It records every
//! upgrade request so tests can check what the client actually sent.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use rustls::ServerConfig;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderMap, StatusCode};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

/// A CA and a server certificate for `localhost` and `127.0.0.1`, with the CA in a PEM file.
pub struct TestPki {
    pub server_config: Arc<ServerConfig>,
    pub ca_file: tempfile::NamedTempFile,
}

impl TestPki {
    pub fn new() -> Self {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "bastionless test CA");
        ca_params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();

        let leaf_key = rcgen::KeyPair::generate().unwrap();
        let leaf_params =
            rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
                .unwrap();
        let leaf = leaf_params.signed_by(&leaf_key, &ca).unwrap();

        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let server_config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![CertificateDer::from(leaf.der().to_vec())],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
            )
            .unwrap();

        let ca_file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(ca_file.path(), ca.pem()).unwrap();
        Self {
            server_config: Arc::new(server_config),
            ca_file,
        }
    }
}

/// What the server does with each connection.
#[derive(Clone)]
pub enum Script {
    /// Echo binary frames; report the client's close code (None = empty Close payload).
    Echo {
        closes: mpsc::UnboundedSender<Option<u16>>,
    },
    /// Refuse the upgrade with this status, JSON body and request id.
    Reject {
        status: u16,
        body: &'static str,
        request_id: &'static str,
    },
    /// Accept, then close with this code and reason.
    CloseWith { code: u16, reason: &'static str },
    /// Accept, send one text frame, report the client's close code.
    SendText {
        closes: mpsc::UnboundedSender<Option<u16>>,
    },
    /// Accept TCP and say nothing (for handshake timeouts); hangs up after 30 s.
    Silent,
}

/// One upgrade request as the server saw it.
#[derive(Debug, Clone)]
pub struct SeenRequest {
    pub path_and_query: String,
    pub headers: HeaderMap,
}

pub struct TestServer {
    pub addr: SocketAddr,
    pub seen: Arc<Mutex<Vec<SeenRequest>>>,
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

impl TestServer {
    /// Serves `script` on 127.0.0.1 with TLS when `tls` is given, plain TCP otherwise.
    pub async fn start(tls: Option<Arc<ServerConfig>>, script: Script) -> Self {
        Self::start_with(tls, move |_| script.clone()).await
    }

    /// Like [`TestServer::start`], with the script of the n-th accepted connection (from 0)
    /// chosen by `script_for`.
    pub async fn start_with(
        tls: Option<Arc<ServerConfig>>,
        script_for: impl Fn(usize) -> Script + Send + 'static,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let seen_by_server = seen.clone();
        tokio::spawn(async move {
            for n in 0.. {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let (script, seen, tls) = (script_for(n), seen_by_server.clone(), tls.clone());
                tokio::spawn(async move {
                    if let Script::Silent = script {
                        tokio::time::sleep(Duration::from_secs(30)).await;
                        drop(tcp);
                        return;
                    }
                    let io: Box<dyn Io> = match tls {
                        Some(config) => match TlsAcceptor::from(config).accept(tcp).await {
                            Ok(tls) => Box::new(tls),
                            Err(_) => return, // the client refused our certificate
                        },
                        None => Box::new(tcp),
                    };
                    serve(io, script, seen).await;
                });
            }
        });
        Self { addr, seen }
    }

    pub fn requests(&self) -> Vec<SeenRequest> {
        self.seen.lock().unwrap().clone()
    }
}

// The callback's error type is tungstenite's `ErrorResponse`; its size is not ours to choose.
#[allow(clippy::result_large_err)]
async fn serve(io: Box<dyn Io>, script: Script, seen: Arc<Mutex<Vec<SeenRequest>>>) {
    let reject = match &script {
        Script::Reject {
            status,
            body,
            request_id,
        } => Some((*status, *body, *request_id)),
        _ => None,
    };
    let callback =
        move |request: &Request, response: Response| -> Result<Response, ErrorResponse> {
            seen.lock().unwrap().push(SeenRequest {
                path_and_query: request
                    .uri()
                    .path_and_query()
                    .map(|p| p.to_string())
                    .unwrap_or_default(),
                headers: request.headers().clone(),
            });
            match reject {
                Some((status, body, request_id)) => {
                    Err(tokio_tungstenite::tungstenite::http::Response::builder()
                        .status(StatusCode::from_u16(status).unwrap())
                        .header("Content-Type", "application/json")
                        .header("Content-Length", body.len().to_string())
                        .header("x-amzn-RequestId", request_id)
                        .body(Some(body.to_owned()))
                        .unwrap())
                }
                None => Ok(response),
            }
        };
    let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(io, callback).await else {
        return;
    };
    match script {
        Script::Echo { closes } => {
            while let Some(Ok(message)) = ws.next().await {
                match message {
                    Message::Binary(data) => {
                        let echoed = ws.send(Message::Binary(data)).await;
                        if echoed.is_err() {
                            return;
                        }
                    }
                    Message::Close(frame) => {
                        let _ = closes.send(frame.map(|f| u16::from(f.code)));
                    }
                    _ => {}
                }
            }
        }
        Script::CloseWith { code, reason } => {
            let frame = CloseFrame {
                code: CloseCode::from(code),
                reason: reason.into(),
            };
            let _ = ws.send(Message::Close(Some(frame))).await;
            while let Some(Ok(_)) = ws.next().await {}
        }
        Script::SendText { closes } => {
            let _ = ws.send(Message::text("hello")).await;
            while let Some(Ok(message)) = ws.next().await {
                if let Message::Close(frame) = message {
                    let _ = closes.send(frame.map(|f| u16::from(f.code)));
                }
            }
        }
        Script::Reject { .. } | Script::Silent => {}
    }
}
