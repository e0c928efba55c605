//! Session Manager against the simulator: the control plane through the real `aws-sdk-ssm`
//! (TLS with the simulator's CA), and the data channel two ways — the product's sans-IO
//! client (`bastionless_core::ssm::proto::DataChannel`, `bastionless_core::ssm::mux::MuxClient`)
//! driven by a small WebSocket loop written here, which lets a test reach every protocol
//! corner (flags, basic mode, a shell, bad tokens), and the product's own session driver
//! (`bastionless_core::ssm::session`: `PortSession`, `run_stdio`) end to end. The simulator's
//! agent is written from the spec independently of all of them, so every byte that makes it
//! through is an interop check.
//!
//! Loopback only; the SSH test needs OpenSSH (`openssh-server`, `openssh-client`).

mod support;

use std::collections::VecDeque;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_credential_types::Credentials;
use aws_sdk_ssm::error::ProvideErrorMetadata;
use aws_sdk_ssm::types::{InstanceInformation, InstanceInformationStringFilter, PingStatus};
use bastionless_core::ssm::mux::{MuxClient, MuxConfig, MuxEvent};
use bastionless_core::ssm::proto::{
    ChannelConfig, ClientFlag, CloseReason, DataChannel, Event, OpenDataChannel, PortForwarding,
    SendError, TerminalSize,
};
use bastionless_core::ssm::session::{PortSession, SsmSessionApi, run_stdio};
use bastionless_sim::{Clock, DataChannelFaults, Scenario, SessionState, SimOptions, Simulator};
use futures_util::{SinkExt as _, StreamExt as _};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _, DuplexStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

/// app-ssm-1: Linux, agent online, port 22 is a real sshd.
const APP_SSM_1: &str = "i-0153167d68d708c5f";
/// win-ssm-1: Windows, agent online, port 3389 echoes.
const WIN_SSM_1: &str = "i-02da2c9431ae0ef4e";
/// db-both-1: Linux, agent online.
const DB_BOTH_1: &str = "i-0c14caf9ce1804b38";
/// win-ad-1: running, but its agent has lost its connection.
const WIN_AD_1: &str = "i-0d0ee499e62e71ce8";
/// web-eic-1: no SSM Agent.
const WEB_EIC_1: &str = "i-06133c3aacf6f15d2";
/// stopped-1: stopped (its agent is ConnectionLost).
const STOPPED_1: &str = "i-09cb4e55db51d4c1b";

const PORT_FORWARDING: &str = "AWS-StartPortForwardingSession";
const SSH_SESSION: &str = "AWS-StartSSHSession";

// ---------------------------------------------------------------------------------------------
// Helpers: the simulator, the SDK, the WebSocket

async fn simulator(scenario: Scenario, options: SimOptions) -> Simulator {
    Simulator::start_with(scenario, options)
        .await
        .expect("the simulator starts")
}

async fn demo() -> Simulator {
    simulator(Scenario::demo(), SimOptions::default()).await
}

use support::sdk_config;
use support::ssh;

async fn ssm(sim: &Simulator, profile: &str) -> aws_sdk_ssm::Client {
    aws_sdk_ssm::Client::new(&sdk_config(sim, profile).await)
}

/// The error code of a failed SDK call.
fn code<T: std::fmt::Debug, E: ProvideErrorMetadata + std::fmt::Debug>(
    result: Result<T, aws_sdk_ssm::error::SdkError<E>>,
) -> (String, String) {
    let error = result.expect_err("the call fails");
    let service = error
        .as_service_error()
        .unwrap_or_else(|| panic!("{error:?}"));
    (
        service.code().unwrap_or_default().to_owned(),
        service.message().unwrap_or_default().to_owned(),
    )
}

use support::{WebSocket, open_websocket_with_ca, session_config};

/// Opens a StreamUrl over TLS, trusting the simulator's CA — no credentials, as the plugin.
async fn open_websocket(sim: &Simulator, url: &str) -> WebSocket {
    open_websocket_with_ca(sim.ca_bundle().expect("TLS"), url).await
}

/// The OpenDataChannel text frame (spec §2), built by the product.
fn open_frame(token: &str, client_id: Uuid) -> Message {
    Message::text(OpenDataChannel::new(token, Uuid::new_v4(), client_id).to_text())
}

fn unix_ms() -> u64 {
    u64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("after 1970")
            .as_millis(),
    )
    .expect("fits")
}

// ---------------------------------------------------------------------------------------------
// A minimal client: the product's DataChannel on a WebSocket, resuming when it drops

/// What the test sees of a session besides its bytes.
#[derive(Debug)]
enum Seen {
    Channel(Event),
    /// The WebSocket dropped and the client resumed on a new one.
    Resumed,
}

enum Command {
    Flag(ClientFlag),
    Size(TerminalSize),
}

/// A running session: Output bytes come out of `pipe` and data written to it goes to the
/// agent; events and resumptions arrive on `seen`.
struct Session {
    id: String,
    pipe: DuplexStream,
    seen: mpsc::UnboundedReceiver<Seen>,
    commands: mpsc::UnboundedSender<Command>,
}

/// What a client needs to resume.
struct Resume {
    ssm: aws_sdk_ssm::Client,
    session_id: String,
    stream_url: String,
    client_id: Uuid,
}

impl Session {
    /// StartSession, then the data channel, driven by a task of its own.
    async fn start(
        sim: &Simulator,
        profile: &str,
        target: &str,
        document: Option<&str>,
        parameters: &[(&str, &str)],
    ) -> Session {
        let client = ssm(sim, profile).await;
        let mut request = client.start_session().target(target);
        if let Some(document) = document {
            request = request.document_name(document);
        }
        for (name, value) in parameters {
            request = request.parameters(*name, vec![(*value).to_owned()]);
        }
        let started = request.send().await.expect("StartSession succeeds");
        let id = started.session_id().expect("a session id").to_owned();
        let stream_url = started.stream_url().expect("a StreamUrl").to_owned();
        let client_id = Uuid::new_v4();
        let mut websocket = open_websocket(sim, &stream_url).await;
        websocket
            .send(open_frame(
                started.token_value().expect("a token"),
                client_id,
            ))
            .await
            .expect("OpenDataChannel sent");
        let (pipe, driver_end) = tokio::io::duplex(8 * 1024 * 1024);
        let (seen_tx, seen) = mpsc::unbounded_channel();
        let (commands, commands_rx) = mpsc::unbounded_channel();
        let channel = DataChannel::new(ChannelConfig::default(), Instant::now(), unix_ms());
        let resume = Resume {
            ssm: client,
            session_id: id.clone(),
            stream_url,
            client_id,
        };
        let ca = sim.ca_bundle().expect("TLS").to_owned();
        tokio::spawn(drive(
            websocket,
            channel,
            driver_end,
            seen_tx,
            commands_rx,
            resume,
            ca,
        ));
        Session {
            id,
            pipe,
            seen,
            commands,
        }
    }

    /// The next event, within `limit`.
    async fn next_seen(&mut self, limit: Duration) -> Seen {
        tokio::time::timeout(limit, self.seen.recv())
            .await
            .expect("an event in time")
            .expect("the client is running")
    }

    /// Waits for the handshake and returns the port-forwarding mode both sides agreed on.
    async fn handshake(&mut self) -> (String, PortForwarding) {
        loop {
            if let Seen::Channel(Event::HandshakeComplete(handshake)) =
                self.next_seen(Duration::from_secs(10)).await
            {
                let mode = handshake.port_forwarding().expect("a port session");
                return (handshake.agent_version, mode);
            }
        }
    }

    /// Waits for `channel_closed` and returns its Output.
    async fn closed(&mut self) -> String {
        loop {
            match self.next_seen(Duration::from_secs(15)).await {
                Seen::Channel(Event::Closed(CloseReason::ChannelClosed { session_id, output })) => {
                    assert_eq!(session_id, self.id);
                    return output;
                }
                Seen::Channel(Event::Closed(other)) => panic!("closed by the client: {other:?}"),
                _ => {}
            }
        }
    }

    fn flag(&self, flag: ClientFlag) {
        self.commands
            .send(Command::Flag(flag))
            .expect("the client runs");
    }

    /// Reads exactly `len` bytes of Output.
    async fn read_exact(&mut self, len: usize) -> Vec<u8> {
        let mut data = vec![0; len];
        tokio::time::timeout(Duration::from_secs(30), self.pipe.read_exact(&mut data))
            .await
            .expect("the data in time")
            .expect("the pipe is open");
        data
    }
}

/// The client loop: WebSocket frames ↔ DataChannel, Output ↔ the pipe, timers, flags, and
/// ResumeSession + a new WebSocket whenever the old one fails (spec §8.3).
async fn drive(
    mut websocket: WebSocket,
    mut channel: DataChannel,
    pipe: DuplexStream,
    seen: mpsc::UnboundedSender<Seen>,
    mut commands: mpsc::UnboundedReceiver<Command>,
    resume: Resume,
    ca: std::path::PathBuf,
) {
    let (mut from_test, mut to_test) = tokio::io::split(pipe);
    let mut output: VecDeque<Vec<u8>> = VecDeque::new();
    let mut unsent: Vec<u8> = Vec::new();
    let mut data_flows = false;
    let mut test_done = false;
    let mut commands_open = true;
    let mut buffer = vec![0; 16 * 1024];
    loop {
        let mut broken = false;
        if !unsent.is_empty() {
            match channel.send_data(&unsent) {
                Ok(taken) => {
                    unsent.drain(..taken);
                }
                Err(SendError::Full) => {}
                Err(SendError::Closed) => return,
            }
        }
        while let Some(frame) = channel.poll_transmit(Instant::now()) {
            if websocket.send(Message::binary(frame)).await.is_err() {
                broken = true;
                break;
            }
        }
        while let Some(event) = channel.poll_event() {
            match event {
                Event::Output(data) => output.push_back(data.to_vec()),
                Event::Closed(reason) => {
                    let _ = seen.send(Seen::Channel(Event::Closed(reason)));
                    return;
                }
                other => {
                    if matches!(other, Event::HandshakeComplete(_) | Event::NoHandshake) {
                        data_flows = true;
                    }
                    let _ = seen.send(Seen::Channel(other));
                }
            }
        }
        while let Some(data) = output.pop_front() {
            if to_test.write_all(&data).await.is_err() {
                return;
            }
        }
        if !broken {
            let timeout = channel.poll_timeout();
            tokio::select! {
                // Flags before data the test wrote after asking for them.
                biased;
                command = commands.recv(), if commands_open => match command {
                    Some(Command::Flag(flag)) => { let _ = channel.send_flag(flag); }
                    Some(Command::Size(size)) => { let _ = channel.send_terminal_size(size); }
                    None => commands_open = false,
                },
                frame = websocket.next() => match frame {
                    Some(Ok(Message::Binary(data))) => {
                        let _ = channel.handle_incoming(&data, Instant::now());
                    }
                    Some(Ok(Message::Text(text))) => {
                        let _ = channel.handle_incoming(text.as_bytes(), Instant::now());
                    }
                    Some(Ok(_)) => {}
                    Some(Err(_)) | None => broken = true,
                },
                read = from_test.read(&mut buffer), if data_flows && unsent.is_empty() && !test_done => {
                    match read {
                        Ok(0) | Err(_) => test_done = true,
                        Ok(n) => unsent.extend_from_slice(&buffer[..n]),
                    }
                }
                () = sleep_until(timeout) => channel.handle_timeout(Instant::now()),
            }
        }
        if broken {
            match reconnect(&resume, &ca).await {
                Some(fresh) => {
                    websocket = fresh;
                    channel.reconnected(Instant::now());
                    let _ = seen.send(Seen::Resumed);
                }
                None => return,
            }
        }
    }
}

/// ResumeSession, then the original StreamUrl with the new token (the plugin ignores the
/// returned URL, §1.2). `None` once the session is over.
async fn reconnect(resume: &Resume, ca: &Path) -> Option<WebSocket> {
    for _ in 0..10 {
        let resumed = resume
            .ssm
            .resume_session()
            .session_id(&resume.session_id)
            .send()
            .await
            .ok()?;
        let token = resumed.token_value().filter(|token| !token.is_empty())?;
        let mut websocket = open_websocket_with_ca(ca, &resume.stream_url).await;
        if websocket
            .send(open_frame(token, resume.client_id))
            .await
            .is_ok()
        {
            return Some(websocket);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

/// Sends `data` through one smux stream of a mux session and returns what comes back on it;
/// `progress` hears how much has come back so far.
async fn mux_round_trip(
    session: &mut Session,
    mux: &mut MuxClient,
    data: &[u8],
    mut progress: impl FnMut(usize),
) -> Vec<u8> {
    let id = mux.open_stream().expect("a stream");
    let mut written = 0;
    let mut echoed = Vec::with_capacity(data.len());
    let mut buffer = vec![0; 64 * 1024];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while echoed.len() < data.len() {
        if written < data.len()
            && let Ok(taken) = mux.write(id, &data[written..])
        {
            written += taken;
        }
        while let Some(out) = mux.poll_output(usize::MAX) {
            session
                .pipe
                .write_all(&out)
                .await
                .expect("the pipe is open");
        }
        let read = tokio::time::timeout_at(deadline, session.pipe.read(&mut buffer))
            .await
            .expect("the echo in time")
            .expect("the pipe is open");
        assert!(read > 0, "the session ended");
        let mut input = &buffer[..read];
        while !input.is_empty() {
            let taken = mux.handle_input(input);
            input = &input[taken..];
            while let Some(event) = mux.poll_event() {
                match event {
                    MuxEvent::StreamData { id: from, data } if from == id => {
                        echoed.extend_from_slice(&data);
                    }
                    other => panic!("unexpected {other:?}"),
                }
            }
        }
        progress(echoed.len());
    }
    mux.close(id);
    while let Some(out) = mux.poll_output(usize::MAX) {
        session
            .pipe
            .write_all(&out)
            .await
            .expect("the pipe is open");
    }
    echoed
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 251) as u8).collect()
}

/// Polls the session's state for up to five seconds.
async fn wait_for_state(sim: &Simulator, id: &str, wanted: impl Fn(&SessionState) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let state = sim.ssm_session(id).expect("a known session");
        if wanted(&state) {
            return;
        }
        assert!(Instant::now() < deadline, "session {id} stayed {state:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn terminated(state: &SessionState) -> bool {
    matches!(state, SessionState::Terminated { .. })
}

// ---------------------------------------------------------------------------------------------
// Control plane

fn names(list: &[InstanceInformation]) -> Vec<&str> {
    list.iter()
        .filter_map(InstanceInformation::instance_id)
        .collect()
}

#[tokio::test]
async fn describe_instance_information_lists_managed_nodes_with_their_agents() {
    let sim = demo().await;
    let ssm = ssm(&sim, "prod").await;
    let mut all = Vec::new();
    let mut pages = 0;
    let mut token = None;
    loop {
        let page = ssm
            .describe_instance_information()
            .max_results(5)
            .set_next_token(token)
            .send()
            .await
            .expect("described");
        pages += 1;
        assert!(page.instance_information_list().len() <= 5);
        all.extend_from_slice(page.instance_information_list());
        token = page.next_token().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    assert!(pages > 1, "five per page takes more than one page");
    let ids = names(&all);
    for online in [APP_SSM_1, DB_BOTH_1, WIN_SSM_1] {
        assert!(ids.contains(&online), "{online} in {ids:?}");
    }
    assert!(ids.contains(&WIN_AD_1));
    assert!(!ids.contains(&WEB_EIC_1), "no agent, not managed");
    assert!(!ids.contains(&STOPPED_1), "stopped nodes are not returned");

    let app = all
        .iter()
        .find(|i| i.instance_id() == Some(APP_SSM_1))
        .expect("app-ssm-1");
    assert_eq!(app.ping_status(), Some(&PingStatus::Online));
    assert_eq!(app.agent_version(), Some("3.3.1142.0"));
    assert_eq!(app.platform_type().map(|p| p.as_str()), Some("Linux"));
    assert_eq!(app.platform_name(), Some("Amazon Linux"));
    assert_eq!(app.ip_address(), Some("10.20.1.31"));
    assert_eq!(app.computer_name(), Some("ip-10-20-1-31.ec2.internal"));
    assert!(app.last_ping_date_time().is_some());
    let win = all
        .iter()
        .find(|i| i.instance_id() == Some(WIN_AD_1))
        .expect("win-ad-1");
    assert_eq!(win.ping_status(), Some(&PingStatus::ConnectionLost));
    assert_eq!(win.platform_type().map(|p| p.as_str()), Some("Windows"));

    let filter = |key: &str, values: &[&str]| {
        InstanceInformationStringFilter::builder()
            .key(key)
            .set_values(Some(values.iter().map(|v| (*v).to_owned()).collect()))
            .build()
            .expect("a filter")
    };
    let online = ssm
        .describe_instance_information()
        .filters(filter("PingStatus", &["Online"]))
        .max_results(50)
        .send()
        .await
        .expect("filtered");
    let online = names(online.instance_information_list());
    assert!(
        online.contains(&APP_SSM_1) && !online.contains(&WIN_AD_1),
        "{online:?}"
    );
    let two = ssm
        .describe_instance_information()
        .filters(filter("InstanceIds", &[APP_SSM_1, WIN_SSM_1]))
        .send()
        .await
        .expect("by id");
    let mut two = names(two.instance_information_list());
    two.sort_unstable();
    assert_eq!(two, [APP_SSM_1, WIN_SSM_1]);

    let errors = [
        (
            code(
                ssm.describe_instance_information()
                    .filters(filter("Color", &["blue"]))
                    .send()
                    .await,
            ),
            "InvalidFilterKey",
        ),
        (
            code(
                ssm.describe_instance_information()
                    .filters(filter("PingStatus", &["Sleepy"]))
                    .send()
                    .await,
            ),
            "InvalidInstanceInformationFilterValue",
        ),
        (
            code(
                ssm.describe_instance_information()
                    .filters(filter("InstanceIds", &[WEB_EIC_1]))
                    .send()
                    .await,
            ),
            "InvalidInstanceId",
        ),
        (
            code(
                ssm.describe_instance_information()
                    .max_results(51)
                    .send()
                    .await,
            ),
            "ValidationException",
        ),
        (
            code(
                ssm.describe_instance_information()
                    .next_token("not-a-token")
                    .send()
                    .await,
            ),
            "InvalidNextToken",
        ),
    ];
    for ((code, message), expected) in errors {
        assert_eq!(code, expected, "{message}");
    }
}

#[tokio::test]
async fn start_session_validates_like_aws_and_refuses_unreachable_targets() {
    let sim = demo().await;
    let ssm = ssm(&sim, "prod").await;
    let started = ssm
        .start_session()
        .target(WIN_SSM_1)
        .document_name(PORT_FORWARDING)
        .parameters("portNumber", vec!["3389".into()])
        .parameters("localPortNumber", vec!["0".into()])
        .send()
        .await
        .expect("started");
    let id = started.session_id().expect("an id");
    assert!(id.starts_with("alice-"), "{id}");
    let url = started.stream_url().expect("a url");
    assert!(
        url.starts_with("wss://127.0.0.1:")
            && url.contains(&format!(
                "/v1/data-channel/{id}?role=publish_subscribe&cell-number="
            ))
    );
    assert!(!started.token_value().unwrap_or_default().is_empty());
    assert_eq!(sim.ssm_session(id), Some(SessionState::Connecting));

    for target in [WIN_AD_1, WEB_EIC_1, STOPPED_1, "i-0123456789abcdef0"] {
        let (code, message) = code(ssm.start_session().target(target).send().await);
        assert_eq!(
            (code.as_str(), message),
            ("TargetNotConnected", format!("{target} is not connected.")),
        );
    }
    // Another account's instance is "not connected" too.
    let staging = self::ssm(&sim, "staging").await;
    assert_eq!(
        code(staging.start_session().target(APP_SSM_1).send().await).0,
        "TargetNotConnected"
    );
    let cases = [
        (
            ssm.start_session()
                .target(APP_SSM_1)
                .document_name("AWS-NoSuchDocument")
                .send()
                .await,
            "InvalidDocument",
        ),
        (
            ssm.start_session()
                .target(APP_SSM_1)
                .document_name(PORT_FORWARDING)
                .parameters("portNumber", vec!["70000".into()])
                .send()
                .await,
            "InvalidParameters",
        ),
        (
            ssm.start_session()
                .target(APP_SSM_1)
                .document_name("AWS-StartPortForwardingSessionToRemoteHost")
                .send()
                .await,
            "InvalidParameters",
        ),
        (
            ssm.start_session()
                .target(APP_SSM_1)
                .document_name("no")
                .send()
                .await,
            "ValidationException",
        ),
    ];
    for (result, expected) in cases {
        assert_eq!(code(result).0, expected);
    }
    let readonly = self::ssm(&sim, "prod-readonly").await;
    let (denied, message) = code(readonly.start_session().target(APP_SSM_1).send().await);
    assert_eq!(denied, "AccessDeniedException");
    assert!(message.contains("ssm:StartSession"), "{message}");
}

#[tokio::test]
async fn resume_terminate_and_connection_status() {
    let sim = demo().await;
    let ssm = ssm(&sim, "prod").await;
    let started = ssm
        .start_session()
        .target(APP_SSM_1)
        .document_name(SSH_SESSION)
        .send()
        .await
        .expect("started");
    let id = started.session_id().expect("an id");
    let resumed = ssm
        .resume_session()
        .session_id(id)
        .send()
        .await
        .expect("resumed");
    assert_eq!(resumed.session_id(), Some(id));
    assert_eq!(resumed.stream_url(), started.stream_url());
    assert!(
        resumed
            .token_value()
            .is_some_and(|t| Some(t) != started.token_value())
    );
    assert_eq!(
        code(
            ssm.resume_session()
                .session_id("alice-00000000000000000")
                .send()
                .await
        )
        .0,
        "DoesNotExistException"
    );
    let other_account = self::ssm(&sim, "staging").await;
    assert_eq!(
        code(other_account.resume_session().session_id(id).send().await).0,
        "DoesNotExistException"
    );

    let terminated = ssm
        .terminate_session()
        .session_id(id)
        .send()
        .await
        .expect("terminated");
    assert_eq!(terminated.session_id(), Some(id));
    assert!(matches!(
        sim.ssm_session(id),
        Some(SessionState::Terminated { .. })
    ));
    let after = ssm
        .resume_session()
        .session_id(id)
        .send()
        .await
        .expect("answered");
    assert_eq!(
        after.token_value(),
        None,
        "a terminated session has no token"
    );
    ssm.terminate_session()
        .session_id(id)
        .send()
        .await
        .expect("terminating again succeeds");

    for (target, status) in [
        (APP_SSM_1, "connected"),
        (WIN_AD_1, "notconnected"),
        (WEB_EIC_1, "notconnected"),
        (STOPPED_1, "notconnected"),
    ] {
        let answer = ssm
            .get_connection_status()
            .target(target)
            .send()
            .await
            .expect("answered");
        assert_eq!(answer.target(), Some(target));
        assert_eq!(
            answer.status().map(|s| s.as_str()),
            Some(status),
            "{target}"
        );
    }
}

#[tokio::test]
async fn unknown_keys_wrong_secrets_and_throttling_get_the_json_services_errors() {
    let sim = demo().await;
    let config = sdk_config(&sim, "prod").await;
    let profile = sim.scenario().profile("prod").expect("prod");
    let with = |key: &str, secret: &str| {
        aws_sdk_ssm::Client::from_conf(
            aws_sdk_ssm::config::Builder::from(&config)
                .credentials_provider(Credentials::new(key, secret, None, None, "test"))
                .build(),
        )
    };
    let unknown = with("AKIAIOSFODNN7EXAMPLE", "secret");
    assert_eq!(
        code(
            unknown
                .get_connection_status()
                .target(APP_SSM_1)
                .send()
                .await
        ),
        (
            "UnrecognizedClientException".to_owned(),
            "The security token included in the request is invalid.".to_owned()
        )
    );
    let wrong_secret = with(&profile.access_key_id, "not-the-secret");
    assert_eq!(
        code(
            wrong_secret
                .get_connection_status()
                .target(APP_SSM_1)
                .send()
                .await
        )
        .0,
        "InvalidSignatureException"
    );
    // The SDK makes three attempts: two throttled calls are absorbed, three are not.
    let ssm = aws_sdk_ssm::Client::new(&config);
    sim.throttle("StartSession", 2);
    ssm.start_session()
        .target(APP_SSM_1)
        .send()
        .await
        .expect("retried past two throttled attempts");
    sim.throttle("StartSession", 3);
    assert_eq!(
        code(ssm.start_session().target(APP_SSM_1).send().await),
        ("ThrottlingException".to_owned(), "Rate exceeded".to_owned())
    );
    assert_eq!(sim.calls("StartSession"), 6);
}

// ---------------------------------------------------------------------------------------------
// Data channel

#[tokio::test]
async fn a_mux_stream_to_an_echo_backend_returns_its_bytes_intact() {
    let sim = demo().await;
    let mut session = Session::start(
        &sim,
        "prod",
        WIN_SSM_1,
        Some(PORT_FORWARDING),
        &[("portNumber", "3389"), ("localPortNumber", "0")],
    )
    .await;
    let (agent_version, mode) = session.handshake().await;
    assert_eq!(agent_version, "3.3.1142.0");
    assert_eq!(
        mode,
        PortForwarding::Mux {
            smux_keepalive: false
        }
    );
    wait_for_state(&sim, &session.id, |s| *s == SessionState::Connected).await;
    let mut mux = MuxClient::new(MuxConfig::for_agent(false), Instant::now());
    // Two streams one after the other, the first larger than many 1024-byte messages.
    for len in [100_000, 3000] {
        let data = pattern(len);
        let echoed = mux_round_trip(&mut session, &mut mux, &data, |_| {}).await;
        assert!(echoed == data, "{len} bytes came back changed");
    }
    // TerminateSession reaches the client as channel_closed.
    ssm(&sim, "prod")
        .await
        .terminate_session()
        .session_id(&session.id)
        .send()
        .await
        .expect("terminated");
    assert_eq!(session.closed().await, "");
    wait_for_state(&sim, &session.id, terminated).await;
}

#[tokio::test]
async fn a_stream_to_a_port_without_a_backend_gets_connect_to_port_error_and_fin() {
    let sim = demo().await;
    let mut session = Session::start(
        &sim,
        "prod",
        WIN_SSM_1,
        Some(PORT_FORWARDING),
        &[("portNumber", "3390")],
    )
    .await;
    session.handshake().await;
    let mut mux = MuxClient::new(MuxConfig::for_agent(false), Instant::now());
    let id = mux.open_stream().expect("a stream");
    while let Some(out) = mux.poll_output(usize::MAX) {
        session.pipe.write_all(&out).await.expect("open");
    }
    loop {
        if let Seen::Channel(Event::ConnectToPortError) =
            session.next_seen(Duration::from_secs(10)).await
        {
            break;
        }
    }
    let mut buffer = vec![0; 64];
    let read = tokio::time::timeout(Duration::from_secs(10), session.pipe.read(&mut buffer))
        .await
        .expect("a FIN in time")
        .expect("open");
    mux.handle_input(&buffer[..read]);
    assert_eq!(mux.poll_event(), Some(MuxEvent::StreamClosed { id }));
}

#[tokio::test]
async fn remote_host_forwarding_reaches_another_instance_through_its_security_groups() {
    let sim = demo().await;
    // win-ssm-1 (10.20.3.51) admits 3389 from its VPC, where app-ssm-1 is; by address and
    // by EC2 host name.
    for host in ["10.20.3.51", "ip-10-20-3-51.ec2.internal"] {
        let mut session = Session::start(
            &sim,
            "prod",
            APP_SSM_1,
            Some("AWS-StartPortForwardingSessionToRemoteHost"),
            &[("host", host), ("portNumber", "3389")],
        )
        .await;
        session.handshake().await;
        let mut mux = MuxClient::new(MuxConfig::for_agent(false), Instant::now());
        let data = pattern(20_000);
        assert!(mux_round_trip(&mut session, &mut mux, &data, |_| {}).await == data);
    }
    // web-eic-1 is in another VPC: the stream is refused.
    let mut session = Session::start(
        &sim,
        "prod",
        APP_SSM_1,
        Some("AWS-StartPortForwardingSessionToRemoteHost"),
        &[("host", "10.10.1.21"), ("portNumber", "22")],
    )
    .await;
    session.handshake().await;
    let mut mux = MuxClient::new(MuxConfig::for_agent(false), Instant::now());
    mux.open_stream().expect("a stream");
    while let Some(out) = mux.poll_output(usize::MAX) {
        session.pipe.write_all(&out).await.expect("open");
    }
    loop {
        if let Seen::Channel(Event::ConnectToPortError) =
            session.next_seen(Duration::from_secs(10)).await
        {
            break;
        }
    }
}

#[tokio::test]
async fn an_old_agent_forwards_in_basic_mode_with_disconnect_and_terminate_flags() {
    let mut scenario = Scenario::demo();
    let win = scenario
        .instances
        .iter_mut()
        .find(|i| i.instance_id == WIN_SSM_1)
        .expect("win-ssm-1");
    // Before smux (3.0.196.0) but with the TerminateSession flag (after 2.3.722.0).
    win.ssm_agent.as_mut().expect("an agent").version = "3.0.161.0".into();
    let sim = simulator(scenario, SimOptions::default()).await;
    let mut session = Session::start(
        &sim,
        "prod",
        WIN_SSM_1,
        Some(PORT_FORWARDING),
        &[("portNumber", "3389")],
    )
    .await;
    let (version, mode) = session.handshake().await;
    assert_eq!(version, "3.0.161.0");
    assert_eq!(
        mode,
        PortForwarding::Basic {
            terminate_flag_supported: true
        }
    );
    // Raw bytes, no smux framing: the echo returns them as they are.
    let first = pattern(5000);
    session.pipe.write_all(&first).await.expect("open");
    assert!(session.read_exact(first.len()).await == first);
    // The local connection "closed": the agent drops its destination connection and dials a
    // new one for the next data.
    session.flag(ClientFlag::DisconnectToPort);
    session.pipe.write_all(b"again").await.expect("open");
    assert_eq!(session.read_exact(5).await, b"again");
    session.flag(ClientFlag::TerminateSession);
    assert_eq!(session.closed().await, "");
    wait_for_state(&sim, &session.id, terminated).await;
}

#[tokio::test]
async fn resuming_after_the_websocket_is_cut_keeps_every_byte() {
    let sim = simulator(Scenario::demo(), SimOptions::default().agent_pacing(false)).await;
    let mut session = Session::start(
        &sim,
        "prod",
        WIN_SSM_1,
        Some(PORT_FORWARDING),
        &[("portNumber", "3389")],
    )
    .await;
    session.handshake().await;
    let mut mux = MuxClient::new(MuxConfig::for_agent(false), Instant::now());
    let data = pattern(2 * 1024 * 1024);
    let id = session.id.clone();
    // Cut the WebSocket at a third and at two thirds, with data in flight both ways.
    let mut cuts = 0;
    let echoed = mux_round_trip(&mut session, &mut mux, &data, |echoed| {
        if echoed * 3 >= data.len() * (cuts + 1) && cuts < 2 && sim.cut_data_channel(&id) {
            cuts += 1;
        }
    })
    .await;
    assert_eq!(cuts, 2);
    assert!(echoed == data, "the echo differs after resuming");
    let mut resumed = 0;
    while let Ok(seen) = session.seen.try_recv() {
        if matches!(seen, Seen::Resumed) {
            resumed += 1;
        }
    }
    assert!(resumed >= 2, "resumed {resumed} times");
}

#[tokio::test]
async fn a_bad_token_and_a_terminated_session_are_refused() {
    let sim = demo().await;
    let ssm = ssm(&sim, "prod").await;
    let started = ssm
        .start_session()
        .target(WIN_SSM_1)
        .document_name(PORT_FORWARDING)
        .parameters("portNumber", vec!["3389".into()])
        .send()
        .await
        .expect("started");
    let url = started.stream_url().expect("a url");
    let id = started.session_id().expect("an id");
    let refused = |mut websocket: WebSocket, token: String| async move {
        websocket
            .send(open_frame(&token, Uuid::new_v4()))
            .await
            .expect("sent");
        match tokio::time::timeout(Duration::from_secs(5), websocket.next())
            .await
            .expect("an answer in time")
        {
            Some(Ok(Message::Close(Some(frame)))) => {
                (u16::from(frame.code), frame.reason.to_string())
            }
            Some(Ok(Message::Binary(_))) => {
                panic!("the agent talked to an unauthenticated client")
            }
            other => panic!("not a Close frame: {other:?}"),
        }
    };
    let bad = refused(open_websocket(&sim, url).await, "bm90IGEgdG9rZW4=".into()).await;
    assert_eq!(
        bad,
        (1008, "The token is not valid for this session".into())
    );
    // A token of another session does not open this one.
    let other = ssm
        .start_session()
        .target(APP_SSM_1)
        .document_name(SSH_SESSION)
        .send()
        .await
        .expect("started");
    let crossed = refused(
        open_websocket(&sim, url).await,
        other.token_value().expect("a token").to_owned(),
    )
    .await;
    assert_eq!(crossed.0, 1008);
    // A text frame that is not OpenDataChannel is a protocol error.
    let mut garbage = open_websocket(&sim, url).await;
    garbage.send(Message::text("hello")).await.expect("sent");
    match garbage.next().await {
        Some(Ok(Message::Close(Some(frame)))) => assert_eq!(u16::from(frame.code), 1002),
        other => panic!("not a Close frame: {other:?}"),
    }
    ssm.terminate_session()
        .session_id(id)
        .send()
        .await
        .expect("terminated");
    let late = refused(
        open_websocket(&sim, url).await,
        started.token_value().expect("a token").to_owned(),
    )
    .await;
    assert_eq!(
        late,
        (1008, "The token is not valid for this session".into())
    );
}

#[tokio::test]
async fn the_idle_timeout_ends_a_quiet_session_on_the_simulated_clock() {
    let mut scenario = Scenario::demo();
    scenario.session_manager.idle_session_timeout_minutes = 1;
    // One simulated minute is two real seconds.
    let sim = simulator(
        scenario,
        SimOptions::default().clock(Clock::accelerated(30)),
    )
    .await;
    let mut session = Session::start(
        &sim,
        "prod",
        WIN_SSM_1,
        Some(PORT_FORWARDING),
        &[("portNumber", "3389")],
    )
    .await;
    session.handshake().await;
    let started = Instant::now();
    assert_eq!(
        session.closed().await,
        "Your session timed out due to inactivity and has been terminated."
    );
    assert!(
        started.elapsed() >= Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
    let resumed = ssm(&sim, "prod")
        .await
        .resume_session()
        .session_id(&session.id)
        .send()
        .await
        .expect("answered");
    assert_eq!(resumed.token_value(), None);
}

#[tokio::test]
async fn the_maximum_session_duration_ends_a_session_before_its_idle_timeout() {
    let mut scenario = Scenario::demo();
    scenario.session_manager.max_session_duration_minutes = Some(1);
    let sim = simulator(
        scenario,
        SimOptions::default().clock(Clock::accelerated(30)),
    )
    .await;
    let mut session = Session::start(
        &sim,
        "prod",
        WIN_SSM_1,
        Some(PORT_FORWARDING),
        &[("portNumber", "3389")],
    )
    .await;
    session.handshake().await;
    assert!(
        session.closed().await.contains("maximum session duration"),
        "the session outlived its maximum duration"
    );
}

#[tokio::test]
async fn a_shell_session_runs_commands_on_a_terminal() {
    let sim = demo().await;
    let mut session = Session::start(&sim, "prod", APP_SSM_1, None, &[]).await;
    // No handshake for shells: the first output (the prompt) starts the session.
    loop {
        if let Seen::Channel(Event::NoHandshake) = session.next_seen(Duration::from_secs(10)).await
        {
            break;
        }
    }
    session
        .commands
        .send(Command::Size(TerminalSize {
            cols: 100,
            rows: 30,
        }))
        .expect("running");
    session
        .pipe
        .write_all(b"stty size; echo answer-$((6*7))\r")
        .await
        .expect("open");
    let mut seen = Vec::new();
    let mut buffer = vec![0; 4096];
    while !String::from_utf8_lossy(&seen).contains("answer-42") {
        let read = tokio::time::timeout(Duration::from_secs(10), session.pipe.read(&mut buffer))
            .await
            .expect("output in time")
            .expect("open");
        assert!(read > 0);
        seen.extend_from_slice(&buffer[..read]);
    }
    assert!(
        String::from_utf8_lossy(&seen).contains("30 100"),
        "{}",
        String::from_utf8_lossy(&seen)
    );
    session.pipe.write_all(b"exit\r").await.expect("open");
    assert_eq!(session.closed().await, "");
}

#[tokio::test]
async fn real_ssh_runs_a_command_through_the_products_ssh_session() {
    assert!(
        Path::new("/usr/sbin/sshd").exists(),
        "this test needs OpenSSH's sshd (Debian: apt-get install openssh-server)"
    );
    let sim = demo().await;
    let user = sim
        .login_user()
        .expect("the sshd backend is active")
        .to_owned();
    let dir = tempfile::tempdir().expect("a temp dir");
    let key = dir.path().join("id_ed25519");
    let keygen = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key)
        .status()
        .expect("ssh-keygen runs");
    assert!(keygen.success());
    let public_key = std::fs::read_to_string(key.with_extension("pub")).expect("a public key");
    let config = sdk_config(&sim, "prod").await;
    aws_sdk_ec2instanceconnect::Client::new(&config)
        .send_ssh_public_key()
        .instance_id(APP_SSM_1)
        .instance_os_user(&user)
        .ssh_public_key(public_key.trim())
        .send()
        .await
        .expect("the key is pushed");

    // What `ssh -o ProxyCommand` would hand the product on stdin/stdout arrives here on a
    // local TCP connection; the product's `run_stdio` carries it through an
    // AWS-StartSSHSession.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let port = listener.local_addr().expect("an address").port();
    let api = Arc::new(SsmSessionApi::new(&config));
    let session_config = session_config(&sim);
    let relay = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.expect("ssh connects");
        let (stdin, stdout) = tcp.into_split();
        run_stdio(api, APP_SSM_1, 22, stdin, stdout, session_config).await
    });
    assert_eq!(ssh(&key, &user, port).await, Ok("ok\n".to_owned()));
    let ended = tokio::time::timeout(Duration::from_secs(15), relay)
        .await
        .expect("the session ends with ssh")
        .expect("the relay task");
    assert!(ended.is_ok(), "{ended:?}");
}

#[tokio::test]
async fn the_products_port_session_carries_concurrent_streams_across_a_cut() {
    let sim = simulator(Scenario::demo(), SimOptions::default().agent_pacing(false)).await;
    let api = Arc::new(SsmSessionApi::new(&sdk_config(&sim, "prod").await));
    let session = PortSession::start(api, WIN_SSM_1, 3389, None, session_config(&sim))
        .await
        .expect("the session starts");
    assert_eq!(
        session.mode(),
        PortForwarding::Mux {
            smux_keepalive: false
        }
    );
    let id = session.session_id().to_owned();
    let mut streams = Vec::new();
    for _ in 0..3 {
        streams.push(session.open_stream().await.expect("a stream"));
    }
    let transfers = streams
        .into_iter()
        .enumerate()
        .map(|(n, stream)| async move {
            let sent: Vec<u8> = pattern(300_000).into_iter().map(|b| b ^ n as u8).collect();
            let (mut from, mut to) = tokio::io::split(stream);
            let writing = async {
                to.write_all(&sent).await.expect("written");
            };
            let reading = async {
                let mut echoed = vec![0; sent.len()];
                from.read_exact(&mut echoed).await.expect("echoed");
                echoed
            };
            let ((), echoed) = tokio::join!(writing, reading);
            (echoed, sent)
        });
    let cutting = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        sim.cut_data_channel(&id)
    };
    let (results, cut) = tokio::time::timeout(Duration::from_secs(60), async {
        tokio::join!(futures_util::future::join_all(transfers), cutting)
    })
    .await
    .expect("the echoes in time");
    assert!(cut, "a client was attached to cut");
    for (echoed, sent) in results {
        assert!(echoed == sent, "a stream's echo differs");
    }
    session.close().await.expect("closed");
    wait_for_state(&sim, &id, terminated).await;
}

/// Bytes per stream for the lossy-link test: `BASTIONLESS_SSM_SOAK_MIB` (a soak by hand, e.g.
/// 32 for 8 × 32 = 256 MiB), 2 MiB by default.
fn soak_bytes_per_stream() -> usize {
    std::env::var("BASTIONLESS_SSM_SOAK_MIB")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|mib| *mib > 0)
        .unwrap_or(2)
        << 20
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_streams_lose_no_byte_over_a_lossy_duplicating_reordering_link_with_cuts() {
    use sha2::{Digest as _, Sha256};
    let sim = simulator(Scenario::demo(), SimOptions::default().agent_pacing(false)).await;
    sim.set_data_channel_faults(DataChannelFaults {
        loss_rate: 0.01,
        duplicate_rate: 0.01,
        reorder_rate: 0.01,
    });
    let api = Arc::new(SsmSessionApi::new(&sdk_config(&sim, "prod").await));
    let session = PortSession::start(api, WIN_SSM_1, 3389, None, session_config(&sim))
        .await
        .expect("the session starts");
    let id = session.session_id().to_owned();
    let bytes = soak_bytes_per_stream();
    let mut streams = Vec::new();
    for _ in 0..8 {
        streams.push(session.open_stream().await.expect("a stream"));
    }
    let started = Instant::now();
    let transfers = streams
        .into_iter()
        .enumerate()
        .map(|(n, stream)| async move {
            let (mut from, mut to) = tokio::io::split(stream);
            let writing = async {
                let mut sent = Sha256::new();
                let chunk: Vec<u8> = pattern(64 * 1024)
                    .into_iter()
                    .map(|b| b ^ n as u8)
                    .collect();
                let mut left = bytes;
                while left > 0 {
                    let part = &chunk[..left.min(chunk.len())];
                    to.write_all(part).await.expect("written");
                    sent.update(part);
                    left -= part.len();
                }
                sent.finalize()
            };
            let reading = async {
                let mut echoed = Sha256::new();
                let mut buf = vec![0; 64 * 1024];
                let mut left = bytes;
                while left > 0 {
                    let n = from
                        .read(&mut buf[..left.min(64 * 1024)])
                        .await
                        .expect("echo read");
                    assert!(n > 0, "the echo ended early with {left} bytes to go");
                    echoed.update(&buf[..n]);
                    left -= n;
                }
                echoed.finalize()
            };
            tokio::join!(writing, reading)
        });
    let done = std::sync::atomic::AtomicBool::new(false);
    let cutting = async {
        let mut cuts = 0;
        while !done.load(std::sync::atomic::Ordering::Relaxed) {
            tokio::time::sleep(Duration::from_millis(700)).await;
            if sim.cut_data_channel(&id) {
                cuts += 1;
            }
        }
        cuts
    };
    let transferring = async {
        let results = futures_util::future::join_all(transfers).await;
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        results
    };
    let (results, cuts) = tokio::time::timeout(Duration::from_secs(600), async {
        tokio::join!(transferring, cutting)
    })
    .await
    .expect("the transfers end");
    let elapsed = started.elapsed();
    for (n, (sent, echoed)) in results.into_iter().enumerate() {
        assert_eq!(sent, echoed, "stream {n}'s echo differs from what it sent");
    }
    eprintln!(
        "8 × {} MiB echoed through 1 % loss, duplication and reordering with {cuts} cuts in {elapsed:.1?}",
        bytes >> 20
    );
    assert!(cuts >= 1, "the link was cut at least once while data moved");
    session.close().await.expect("closed");
    wait_for_state(&sim, &id, terminated).await;
}
