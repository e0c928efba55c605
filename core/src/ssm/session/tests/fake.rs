//! A fake Session Manager for driver tests: the control plane ([`FakeApi`]) and the data
//! channel (a tokio-tungstenite WebSocket server playing the service relay and the agent),
//! on loopback TCP or on in-memory pipes for paused-clock tests.
//!
//! The agent side (`fake_agent`) is the crate's test peers, `TestAgent` for the reliable
//! channel and `TestServer` for smux; streams go on to a real TCP echo server (or nowhere), the
//! way the agent dials the destination. Like the real service, a connection must open with the current
//! token: StartSession issues one, every ResumeSession a new one that replaces it. Everything
//! a client might get wrong is recorded in [`Record::violations`].

use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{
    Callback, ErrorResponse, Request, Response,
};

use super::super::api::{
    ApiError, SessionApi, SessionDocument, SessionToken, StartSessionRequest, StartedSession,
};
use super::super::connect::{ConnectError, DataChannelConnector, Dial, Io};
use super::super::url::StreamUrl;
use crate::eic::{ConnectOptions, EndpointAddress};
use crate::ssm::proto::PortForwarding;
use crate::ssm::proto::test_agent::TestAgent;

use super::fake_agent::AgentSide;

/// Where the agent's destination connections go.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Destination {
    /// A TCP server at this address (the echo server in these tests).
    Tcp(SocketAddr),
    /// Nowhere: the agent only counts what it receives.
    Discard,
}

/// How the service drops a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CutStyle {
    /// The TCP connection just goes away.
    Drop,
    /// A Close frame 1000 "Bye", as the service's hourly rotation sends.
    Bye,
    /// The connection stays open but nothing more is read or sent on it (a dead middlebox).
    Freeze,
}

/// What the fake does.
#[derive(Debug, Clone)]
pub(crate) struct Scenario {
    pub(crate) agent_version: &'static str,
    pub(crate) destination: Destination,
    /// Drop the connection once the agent has received this many client bytes, one entry
    /// per cut, in order.
    pub(crate) cuts: Vec<(usize, CutStyle)>,
    /// The first this many ResumeSession calls fail with InternalServerError.
    pub(crate) resume_failures: u32,
    /// The next this many are refused as signed with expired credentials.
    pub(crate) resume_expired: u32,
    /// ResumeSession answers without a token (the session timed out).
    pub(crate) resume_without_token: bool,
    /// The agent stops reading client frames after the handshake (it neither acks nor
    /// processes anything more).
    pub(crate) deaf_agent: bool,
    /// The agent never connects its side: the client hears nothing at all.
    pub(crate) absent_agent: bool,
    pub(crate) agent_resend_after: Duration,
}

impl Scenario {
    pub(crate) fn new(destination: Destination) -> Self {
        Scenario {
            agent_version: "3.1.1732.0",
            destination,
            cuts: Vec::new(),
            resume_failures: 0,
            resume_expired: 0,
            resume_without_token: false,
            deaf_agent: false,
            absent_agent: false,
            agent_resend_after: Duration::from_millis(300),
        }
    }
}

/// What happened to one session, for assertions.
#[derive(Debug, Default, Clone)]
pub(crate) struct Record {
    /// Tokens presented in OpenDataChannel, in order.
    pub(crate) tokens: Vec<String>,
    pub(crate) client_ids: Vec<String>,
    pub(crate) request_ids: Vec<String>,
    pub(crate) connections: usize,
    pub(crate) resume_calls: usize,
    pub(crate) terminate_calls: usize,
    /// Flags the agent processed.
    pub(crate) flags: Vec<u32>,
    /// Client Output bytes the agent processed.
    pub(crate) client_bytes: usize,
    /// Arrival time and payload length of every `input_stream_data` frame.
    pub(crate) stream_frames: Vec<(Instant, usize)>,
    pub(crate) violations: Vec<String>,
    pub(crate) ended: bool,
}

#[derive(Default)]
struct Sessions {
    next: u32,
    /// Per session: the only token currently accepted, and how many were issued.
    tokens: HashMap<String, (String, u32)>,
    records: HashMap<String, Record>,
    agents: HashMap<String, Arc<tokio::sync::Mutex<AgentSide>>>,
    resume_failures: u32,
    resume_expired: u32,
    started: Vec<StartSessionRequest>,
}

/// The fake service: control plane and data channel. Cheap to clone.
#[derive(Clone)]
pub(crate) struct FakeService {
    scenario: Arc<Scenario>,
    sessions: Arc<Mutex<Sessions>>,
    url_base: String,
}

impl FakeService {
    /// A service whose WebSocket listens on 127.0.0.1, and a connector that reaches it over
    /// the real network code (TCP, `ws://` to loopback).
    pub(crate) async fn on_loopback(scenario: Scenario) -> (FakeService, DataChannelConnector) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let service =
            FakeService::new(scenario, format!("ws://{}", listener.local_addr().unwrap()));
        let accepting = service.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(accepting.clone().serve(socket));
            }
        });
        (service, loopback_connector())
    }

    /// A service reached through in-memory pipes, for tests on tokio's paused clock.
    pub(crate) fn in_memory(scenario: Scenario) -> (FakeService, DataChannelConnector) {
        let service = FakeService::new(scenario, "ws://127.0.0.1:9".to_owned());
        let dial = MemoryDial {
            service: service.clone(),
        };
        (service, DataChannelConnector::from_dial(Arc::new(dial)))
    }

    fn new(scenario: Scenario, url_base: String) -> Self {
        let sessions = Sessions {
            resume_failures: scenario.resume_failures,
            resume_expired: scenario.resume_expired,
            ..Sessions::default()
        };
        FakeService {
            scenario: Arc::new(scenario),
            sessions: Arc::new(Mutex::new(sessions)),
            url_base,
        }
    }

    /// The control plane.
    pub(crate) fn api(&self) -> Arc<FakeApi> {
        Arc::new(FakeApi {
            service: self.clone(),
        })
    }

    pub(crate) fn record(&self, session_id: &str) -> Record {
        self.sessions.lock().unwrap().records[session_id].clone()
    }

    pub(crate) fn started(&self) -> Vec<StartSessionRequest> {
        self.sessions.lock().unwrap().started.clone()
    }

    pub(super) fn with_record<T>(&self, session_id: &str, f: impl FnOnce(&mut Record) -> T) -> T {
        let mut sessions = self.sessions.lock().unwrap();
        f(sessions.records.entry(session_id.to_owned()).or_default())
    }

    async fn serve<S: AsyncRead + AsyncWrite + Unpin>(self, io: S) {
        let path = Arc::new(Mutex::new(String::new()));
        let callback = RecordPath(path.clone());
        let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(io, callback).await else {
            return;
        };
        let uri = path.lock().unwrap().clone();
        let Some(session_id) = uri
            .strip_prefix("/v1/data-channel/")
            .map(|rest| rest.split('?').next().unwrap_or_default().to_owned())
        else {
            panic!("unexpected data channel request {uri}");
        };
        let open = match ws.next().await {
            Some(Ok(Message::Text(text))) => serde_json::from_str::<Value>(&text).unwrap(),
            other => {
                self.with_record(&session_id, |r| {
                    r.violations
                        .push(format!("first frame is not OpenDataChannel: {other:?}"))
                });
                return;
            }
        };
        let presented = open["TokenValue"].as_str().unwrap_or_default().to_owned();
        let (valid, agent) = {
            let mut guard = self.sessions.lock().unwrap();
            let sessions = &mut *guard;
            let valid = sessions
                .tokens
                .get(&session_id)
                .is_some_and(|(current, _)| *current == presented);
            let agent = sessions.agents.get(&session_id).cloned();
            let record = sessions.records.entry(session_id.clone()).or_default();
            record.tokens.push(presented);
            record
                .client_ids
                .push(open["ClientId"].as_str().unwrap_or_default().to_owned());
            record
                .request_ids
                .push(open["RequestId"].as_str().unwrap_or_default().to_owned());
            if open["MessageSchemaVersion"] != "1.0" {
                record
                    .violations
                    .push(format!("bad OpenDataChannel {open}"));
            }
            if !valid {
                record.violations.push("a stale or unknown token".into());
            }
            (valid, agent)
        };
        let (true, Some(agent)) = (valid, agent) else {
            return;
        };
        if self.scenario.absent_agent {
            while let Some(Ok(_)) = ws.next().await {}
            return;
        }
        let mut agent = agent.lock_owned().await;
        self.with_record(&session_id, |r| r.connections += 1);
        let now = Instant::now().into_std();
        if agent.connections > 0 {
            agent.agent.reconnected(now);
        }
        agent.connections += 1;
        let freeze = agent.run(&mut ws, &self, &session_id).await;
        drop(agent);
        if freeze {
            // Hold the connection, reading and writing nothing (not even a Pong), forever.
            std::future::pending::<()>().await;
            drop(ws);
        }
    }
}

/// Keeps the upgrade request's URI (or notes a credential header the client must not send).
struct RecordPath(Arc<Mutex<String>>);

impl Callback for RecordPath {
    fn on_request(self, request: &Request, response: Response) -> Result<Response, ErrorResponse> {
        *self.0.lock().unwrap() = if request.headers().contains_key("authorization") {
            "authorization header sent".into()
        } else {
            request.uri().to_string()
        };
        Ok(response)
    }
}

/// Dials the service through an in-memory pipe, whatever the address.
struct MemoryDial {
    service: FakeService,
}

impl Dial for MemoryDial {
    fn dial<'a>(
        &'a self,
        _endpoint: &'a EndpointAddress,
    ) -> BoxFuture<'a, Result<Pin<Box<dyn Io>>, ConnectError>> {
        let (client, server) = tokio::io::duplex(64 * 1024);
        tokio::spawn(self.service.clone().serve(server));
        Box::pin(async move { Ok(Box::pin(client) as Pin<Box<dyn Io>>) })
    }
}

/// The real network connector; a throwaway CA keeps it independent of the OS trust store.
fn loopback_connector() -> DataChannelConnector {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = params.self_signed(&key).unwrap();
    let mut file = tempfile::NamedTempFile::new().unwrap();
    std::io::Write::write_all(&mut file, ca.pem().as_bytes()).unwrap();
    DataChannelConnector::new(ConnectOptions {
        ca_bundles: vec![file.path().to_owned()],
        ..ConnectOptions::default()
    })
    .unwrap()
}

/// The control plane of a [`FakeService`].
pub(crate) struct FakeApi {
    service: FakeService,
}

impl SessionApi for FakeApi {
    async fn start_session(
        &self,
        request: &StartSessionRequest,
    ) -> Result<StartedSession, ApiError> {
        let scenario = &self.service.scenario;
        let properties = match &request.document {
            SessionDocument::PortForwarding { port } => json!({
                "portNumber": port.to_string(), "type": "LocalPortForwarding", "localPortNumber": "0"
            }),
            SessionDocument::PortForwardingToRemoteHost { host, port } => json!({
                "host": host, "portNumber": port.to_string(), "type": "LocalPortForwarding", "localPortNumber": "0"
            }),
            SessionDocument::Ssh { port } => json!({"portNumber": port.to_string()}),
            SessionDocument::Shell => Value::Null,
        };
        let mode = PortForwarding::choose(scenario.agent_version, &properties);
        let now = Instant::now().into_std();
        let agent = TestAgent::port(
            scenario.agent_version,
            properties,
            now,
            scenario.agent_resend_after,
        );
        let mut sessions = self.service.sessions.lock().unwrap();
        sessions.next += 1;
        let session_id = format!("tester-{:017x}", sessions.next);
        let token = format!("token-{}-0", sessions.next);
        sessions
            .tokens
            .insert(session_id.clone(), (token.clone(), 0));
        sessions
            .records
            .insert(session_id.clone(), Record::default());
        sessions.started.push(request.clone());
        let side = AgentSide::new(agent, mode, scenario);
        sessions
            .agents
            .insert(session_id.clone(), Arc::new(tokio::sync::Mutex::new(side)));
        let url = format!(
            "{}/v1/data-channel/{session_id}?role=publish_subscribe",
            self.service.url_base
        );
        Ok(StartedSession {
            session_id,
            token: SessionToken::new(token),
            stream_url: StreamUrl::parse(&url).unwrap(),
        })
    }

    async fn resume_session(&self, session_id: &str) -> Result<Option<SessionToken>, ApiError> {
        let mut guard = self.service.sessions.lock().unwrap();
        let sessions = &mut *guard;
        let record = sessions.records.entry(session_id.to_owned()).or_default();
        record.resume_calls += 1;
        if record.ended || self.service.scenario.resume_without_token {
            return Ok(None);
        }
        if sessions.resume_failures > 0 {
            sessions.resume_failures -= 1;
            return Err(ApiError::Internal {
                action: "ResumeSession",
                message: "try again".into(),
            });
        }
        if sessions.resume_expired > 0 {
            sessions.resume_expired -= 1;
            return Err(ApiError::CredentialsExpired {
                action: "ResumeSession",
                message: "The security token included in the request is expired".into(),
            });
        }
        let (token, issued) =
            sessions
                .tokens
                .get_mut(session_id)
                .ok_or(ApiError::SessionNotFound {
                    session_id: session_id.to_owned(),
                })?;
        *issued += 1;
        let number = session_id.trim_start_matches("tester-");
        *token = format!(
            "token-{}-{issued}",
            u32::from_str_radix(number, 16).unwrap()
        );
        Ok(Some(SessionToken::new(token.clone())))
    }

    /// The fake service's agent never asks for KMS encryption.
    async fn generate_data_key(
        &self,
        key_id: &str,
        _context: &std::collections::BTreeMap<String, String>,
    ) -> Result<crate::ssm::proto::DataKey, crate::ssm::kms::KmsError> {
        Err(crate::ssm::kms::KmsError::Other {
            key_id: key_id.to_owned(),
            detail: "the fake service has no KMS".to_owned(),
        })
    }

    async fn terminate_session(&self, session_id: &str) -> Result<(), ApiError> {
        self.service.with_record(session_id, |r| {
            r.terminate_calls += 1;
            r.ended = true;
        });
        Ok(())
    }
}

/// A TCP echo server on loopback: every connection gets its bytes back, then EOF after ours.
pub(crate) async fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut read, mut write) = socket.into_split();
                let _ = tokio::io::copy(&mut read, &mut write).await;
                let _ = write.shutdown().await;
            });
        }
    });
    addr
}
